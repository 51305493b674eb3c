//! What every LLM client shares, whatever its wire format: retries with backoff, the deadline of
//! each attempt, error bodies read within a deadline, usage logs, and the driver of a streamed
//! answer (a deadline between chunks, incremental SSE parsing, exactly one last item).
//!
//! Each attempt times out after the client's timeout; 429, 5xx (Anthropic's 529 "overloaded"
//! included), timeouts and network errors are retried [`RETRIES`] times with backoff
//! ([`BACKOFF_MS`], then twice that), after which the call fails as
//! [`UpstreamError::Unavailable`]. A 2xx or another 4xx ends the retries at once: the client
//! reads the 2xx and turns the 4xx into [`UpstreamError::Rejected`].
//!
//! A stream is retried the same way until the headers of a 2xx answer arrive; after that a
//! protocol's `StreamDecoder` reads the events as they come, and `drive` bounds every gap
//! between chunks by the timeout. A gap longer than that, a broken body, or a body that ends
//! before the protocol's end marker is unavailable; an unparsable stream is a bad response.
//! Either comes as the stream's last item.

use std::collections::VecDeque;
use std::future::Future;

use futures_util::future::{select, Either};
use futures_util::{stream, StreamExt};

use super::sse::{SseEvent, SseParser};
use crate::ports::{
    ByteStream, HttpClient, HttpError, LlmDelta, LlmResponse, LlmStream, UpstreamError,
};

/// The usual per-attempt timeout, also the longest gap allowed between chunks of a stream
/// (the default of `OPENAI_TIMEOUT_MS`; each client takes its value from the configuration).
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Retries after the first attempt.
pub const RETRIES: u32 = 2;
/// Backoff before retry `n` (1-based) is `n` times this.
pub const BACKOFF_MS: u64 = 500;
/// Distinct tool calls accepted in one streamed answer.
pub(crate) const MAX_STREAMED_TOOL_CALLS: usize = 64;
/// Text and tool-call bytes accepted in one streamed answer.
pub(crate) const MAX_STREAMED_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Bytes of an error body read (for its type and code).
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Whether an answer with this status is worth another attempt (429 and every 5xx).
pub(crate) fn is_retryable(status: u16) -> bool {
    status == 429 || status >= 500
}

/// Whether the status is a 2xx.
pub(crate) fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// Sends with retries (see the module docs). Answers the first response not worth retrying
/// (2xx or a 4xx other than 429) and the number of attempts made; `service` names the API in
/// the error's detail.
pub(crate) async fn send_with_retries<H, R, F, Fut>(
    http: &H,
    service: &str,
    mut send: F,
    status: impl Fn(&R) -> u16,
) -> Result<(R, u32), UpstreamError>
where
    H: HttpClient + ?Sized,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<R, HttpError>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        let outcome = send().await;
        match outcome {
            Ok(r) if !is_retryable(status(&r)) => return Ok((r, attempts)),
            // The same answer again would be as long.
            Err(HttpError::TooLarge) => {
                return Err(UpstreamError::Unavailable(format!(
                    "{service}: {}",
                    HttpError::TooLarge
                )))
            }
            _ if attempts <= RETRIES => {
                http.sleep(BACKOFF_MS * u64::from(attempts)).await;
            }
            Ok(r) => {
                return Err(UpstreamError::Unavailable(format!(
                    "{service}: status {} after {attempts} attempts",
                    status(&r)
                )))
            }
            Err(e) => {
                return Err(UpstreamError::Unavailable(format!(
                    "{service}: {e} after {attempts} attempts"
                )))
            }
        }
    }
}

/// Reads at most 64 KiB of an error body, giving up at a gap longer than `timeout_ms` or a
/// break.
pub(crate) async fn read_error_body<H: HttpClient + ?Sized>(
    http: &H,
    mut body: ByteStream,
    timeout_ms: u64,
) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < MAX_ERROR_BODY_BYTES {
        let Either::Left((Some(Ok(chunk)), _)) = select(body.next(), http.sleep(timeout_ms)).await
        else {
            break;
        };
        out.extend_from_slice(&chunk);
    }
    out
}

/// A JSON error's position and kind, without the offending value (it may be content).
pub(crate) fn json_problem(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

/// What one call used, logged per call: counts only, never content.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UsageLog<'a> {
    /// The API (`openai`, `anthropic`).
    pub api: &'static str,
    /// What the call was for (the request's label).
    pub label: &'a str,
    /// The model asked for.
    pub model: &'a str,
    /// Attempts made.
    pub attempts: u32,
    /// Whether the answer was streamed.
    pub streamed: bool,
}

impl UsageLog<'_> {
    /// Logs the token counts of the call.
    pub(crate) fn log(&self, prompt_tokens: u32, completion_tokens: u32) {
        tracing::info!(
            api = self.api,
            label = self.label,
            model = %self.model,
            prompt_tokens,
            completion_tokens,
            attempts = self.attempts,
            streamed = self.streamed,
            "llm usage"
        );
    }
}

/// Where a decoder puts what a stream yields. After [`Emitter::done`] or [`Emitter::fail`]
/// nothing more is read.
#[derive(Default)]
pub(crate) struct Emitter {
    pending: VecDeque<Result<LlmDelta, UpstreamError>>,
    ended: bool,
}

impl Emitter {
    /// More of the assistant's text.
    pub(crate) fn text(&mut self, text: String) {
        if !self.ended {
            self.pending.push_back(Ok(LlmDelta::Text(text)));
        }
    }

    /// The whole answer: the stream's last item.
    pub(crate) fn done(&mut self, response: LlmResponse) {
        if !self.ended {
            self.pending.push_back(Ok(LlmDelta::Done(response)));
            self.ended = true;
        }
    }

    /// A failure: the stream's last item.
    pub(crate) fn fail(&mut self, e: UpstreamError) {
        if !self.ended {
            self.pending.push_back(Err(e));
            self.ended = true;
        }
    }
}

/// A wire protocol's reading of a stream's events.
pub(crate) trait StreamDecoder {
    /// The API, for error details (`openai`, `anthropic`).
    const API: &'static str;
    /// What the protocol ends a stream with (for the error when the body ends before it).
    const END_MARKER: &'static str;

    /// Handles one event: text through `out.text`, the end through `out.done`, a problem
    /// through `out.fail`.
    fn on_event(&mut self, event: &SseEvent, out: &mut Emitter);

    /// The body ended before the decoder ended the stream; `open` is a last event without its
    /// blank line, if there was one. Call `out.done` to accept the answer as complete; leaving
    /// `out` open makes the stream fail as cut short.
    fn on_body_end(&mut self, open: Option<SseEvent>, out: &mut Emitter);
}

/// Reads `body` as an event stream through `decoder`, each gap between chunks bounded by
/// `timeout_ms` (measured with `http`'s sleep).
pub(crate) fn drive<'a, H, D>(
    http: &'a H,
    timeout_ms: u64,
    body: ByteStream,
    decoder: D,
) -> LlmStream<'a>
where
    H: HttpClient + ?Sized,
    D: StreamDecoder + 'a,
{
    let state = Driver {
        http,
        timeout_ms,
        body,
        parser: SseParser::new(),
        events_seen: false,
        bytes_seen: false,
        decoder,
        out: Emitter::default(),
    };
    Box::pin(stream::unfold(state, Driver::next_item))
}

/// A streamed answer being read.
struct Driver<'a, H: ?Sized, D> {
    http: &'a H,
    timeout_ms: u64,
    body: ByteStream,
    parser: SseParser,
    /// Whether any event arrived (a 2xx body with none is not an event stream).
    events_seen: bool,
    bytes_seen: bool,
    decoder: D,
    out: Emitter,
}

impl<H: HttpClient + ?Sized, D: StreamDecoder> Driver<'_, H, D> {
    async fn next_item(mut self) -> Option<(Result<LlmDelta, UpstreamError>, Self)> {
        loop {
            if let Some(item) = self.out.pending.pop_front() {
                return Some((item, self));
            }
            if self.out.ended {
                return None;
            }
            self.read_more().await;
            if self.out.ended {
                // No more reading; dropping the body cancels the request where it can.
                self.body = Box::pin(stream::empty());
            }
        }
    }

    /// Waits for the next chunk (at most the timeout) and handles it.
    async fn read_more(&mut self) {
        let next = match select(self.body.next(), self.http.sleep(self.timeout_ms)).await {
            Either::Left((item, _)) => Some(item),
            Either::Right(((), _)) => None,
        };
        let api = D::API;
        match next {
            Some(Some(Ok(chunk))) => {
                self.bytes_seen |= !chunk.is_empty();
                match self.parser.push(&chunk) {
                    Ok(events) => {
                        for event in events {
                            self.events_seen = true;
                            self.decoder.on_event(&event, &mut self.out);
                            if self.out.ended {
                                break;
                            }
                        }
                    }
                    Err(e) => self
                        .out
                        .fail(UpstreamError::BadResponse(format!("{api} stream: {e}"))),
                }
            }
            Some(Some(Err(e))) => {
                self.out.fail(UpstreamError::Unavailable(format!(
                    "{api} stream broke: {e}"
                )));
            }
            Some(None) => {
                let open = self.parser.finish();
                self.decoder.on_body_end(open, &mut self.out);
                if self.bytes_seen && !self.events_seen {
                    self.out.fail(UpstreamError::BadResponse(format!(
                        "{api} stream: the body is not an event stream"
                    )));
                }
                self.out.fail(UpstreamError::Unavailable(format!(
                    "{api} stream ended before {}",
                    D::END_MARKER
                )));
            }
            None => self.out.fail(UpstreamError::Unavailable(format!(
                "{api} stream stalled: no data for {} ms",
                self.timeout_ms
            ))),
        }
    }
}
