//! Structured logs: one JSON object per line on the console, which Workers Logs and
//! `wrangler dev` collect. Lines carry ids, sizes and outcomes; never bodies, tokens or passwords.
//! Every line passes through [`shared::redact::redact_log_line`] on its way out, so an email
//! address, key or token quoted by some error text never reaches the logs either (request ids
//! are kept).

use std::io::Write;

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_web::{ConsoleWriter, MakeConsoleWriter};

/// RFC 3339 timestamps from the JS clock (`SystemTime` traps on wasm32).
struct JsTime;

impl FormatTime for JsTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        let iso: String = js_sys::Date::new_0().to_iso_string().into();
        w.write_str(&iso)
    }
}

/// [`MakeConsoleWriter`] with every line redacted first.
struct MakeRedactingWriter;

/// Collects one log line, and on drop hands its redaction to the console writer.
struct RedactingWriter {
    line: Vec<u8>,
    console: Option<ConsoleWriter>,
}

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingWriter {
    fn drop(&mut self) {
        if let Some(mut console) = self.console.take() {
            let clean = shared::redact::redact_log_line(&String::from_utf8_lossy(&self.line));
            let _ = console.write_all(clean.as_bytes());
            // Dropping the console writer emits the line.
        }
    }
}

impl<'a> MakeWriter<'a> for MakeRedactingWriter {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            line: Vec::new(),
            console: Some(MakeConsoleWriter.make_writer()),
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        RedactingWriter {
            line: Vec::new(),
            console: Some(MakeConsoleWriter.make_writer_for(meta)),
        }
    }
}

/// Installs the JSON subscriber once per isolate.
pub fn init() {
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_timer(JsTime)
        .with_writer(MakeRedactingWriter);
    // A second init (a re-used isolate) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::registry().with(layer).try_init();
}
