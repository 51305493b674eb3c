//! Structured logs: one JSON object per line on the console, which Workers Logs and
//! `wrangler dev` collect. Lines carry ids, sizes and outcomes; never bodies, tokens or passwords.

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::prelude::*;
use tracing_web::MakeConsoleWriter;

/// RFC 3339 timestamps from the JS clock (`SystemTime` traps on wasm32).
struct JsTime;

impl FormatTime for JsTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        let iso: String = js_sys::Date::new_0().to_iso_string().into();
        w.write_str(&iso)
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
        .with_writer(MakeConsoleWriter);
    // A second init (a re-used isolate) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::registry().with(layer).try_init();
}
