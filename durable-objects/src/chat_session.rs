//! Logic of the `ChatSession` Durable Object: the WebSocket chat protocol and the per-user
//! session state machine, free of any platform type (time comes in as `now_ms`, sockets as
//! [`SocketId`]s). The class (in the `workers` crate) moves frames between the sockets, the
//! orchestrator and a [`Runs`].
//!
//! # Privacy
//!
//! Chat content (requests, streamed tokens, final answers) lives only in the in-memory
//! [`Runs`] of the object and is dropped when a run expires, is evicted, or the object is
//! evicted from memory. Nothing here — and nothing of chat content anywhere — is written to the
//! object's storage.
//!
//! # Protocol
//!
//! Every frame is a JSON text frame (binary frames are answered with
//! [`binary_frame_error`]; the socket stays open). Client → server ([`ClientFrame`],
//! [`parse_client_frame`], at most [`MAX_FRAME_BYTES`]):
//!
//! - a `ChatRequest` object with no `type` key: starts a request;
//! - `{"type":"cancel"}` cancels the socket's running request, `{"type":"cancel","request_id"}`
//!   a given one;
//! - `{"type":"resume","request_id","after":N}` asks for the rest of a request's stream after
//!   the last `seq` the client has (`after` absent or `null`: from the first token);
//! - `{"type":"ping"}` is answered `{"type":"pong"}` (normally by the runtime's auto-response,
//!   without waking the object).
//!
//! Server → client ([`ServerFrame`]): `started` (`request_id`), `token` (`request_id`, `seq`
//! from 0, `text`), `ping` (every [`PING_INTERVAL_MS`] while a request streams), `pong`,
//! `error` (`code`, `message`, `request_id`?, `details`?: the HTTP error envelope's fields), and
//! finally `done` (`done: true`, `request_id`, `response`, `actions`, `plan`?, `cancelled`?). A
//! run ends with exactly one `done` or `error` frame.
//!
//! # Policies
//!
//! - **One request at a time per socket.** A chat request on a socket that is following a
//!   streaming run (started there or resumed there) is refused with `conflict`; the running one
//!   goes on. Requests are never queued. Other sockets of the same user run independently.
//! - **Cancel.** An explicit cancel, or a socket closed deliberately (1000/1001) that leaves a
//!   run without subscribers, ends the run `done` with `cancelled: true`.
//! - **Orphan grace.** A socket that drops abnormally leaves its run streaming for
//!   [`ORPHAN_GRACE_MS`] with no subscriber; tokens keep being buffered. A `resume` from any
//!   socket of the user in that time re-attaches it; otherwise [`Runs::orphans_due`] reports it
//!   for cancellation.
//! - **Resume.** Replays the buffered tokens with `seq > after`, then the final frame when the
//!   run has ended (`live = false`), or subscribes the socket to the live stream (`live =
//!   true`). Finished runs stay resumable for [`RESUME_WINDOW_MS`]; afterwards, or for an id
//!   never seen, `not_found`. If the missed tokens were dropped from the bounded buffer,
//!   `conflict`. A socket may follow several runs by resuming them.
//! - **Bounds.** At most [`MAX_RUNS`] runs per object (the oldest finished run is evicted to
//!   make room; when all are streaming a new request is refused with `conflict`), and
//!   [`MAX_BUFFER_BYTES`] of token text per run (the oldest tokens are dropped beyond it).

use std::collections::VecDeque;

use serde::Serialize;
use serde_json::{Map, Value};
use shared::api::{ChatRequest, ExecutionPlan, PlanAction};
use shared::error::{AppError, FieldError};
use shared::input::parse_json;

/// The largest client text frame accepted (bytes).
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;
/// How often the class pings a streaming run's sockets (ms).
pub const PING_INTERVAL_MS: i64 = 30_000;
/// How long a finished run stays resumable (ms).
pub const RESUME_WINDOW_MS: i64 = 60_000;
/// How long a run whose sockets all dropped abnormally keeps streaming, waiting for a resume
/// (ms).
pub const ORPHAN_GRACE_MS: i64 = 10_000;
/// Runs kept per object: the oldest finished is evicted first; if all are streaming,
/// [`Runs::start`] refuses.
pub const MAX_RUNS: usize = 16;
/// Token text kept per run for resumes (bytes); the oldest tokens are dropped beyond it.
pub const MAX_BUFFER_BYTES: usize = 256 * 1024;

/// Longest `request_id` a client frame may carry (the server's ids are 36-character UUIDs).
const MAX_REQUEST_ID_CHARS: usize = 128;
/// The name of a whole frame in validation errors.
const FRAME: &str = "frame";
/// Sent if a frame ever fails to serialize (it cannot: every field is plain JSON).
const FALLBACK_FRAME: &str = r#"{"type":"error","code":"internal","message":"internal error"}"#;

/// One accepted WebSocket of the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketId(pub u64);

/// A frame from the client.
#[derive(Debug, PartialEq)]
pub enum ClientFrame {
    /// A chat request (a JSON object without `type`), already validated.
    Chat(Box<ChatRequest>),
    /// `{"type":"cancel"}`: the socket's running request, or the one named.
    Cancel {
        /// The request to cancel; `None`: the socket's streaming run.
        request_id: Option<String>,
    },
    /// `{"type":"resume","request_id","after"}`: the rest of a stream.
    Resume {
        /// The request to resume.
        request_id: String,
        /// The last `seq` the client has; `None`: from the first token.
        after: Option<u64>,
    },
    /// `{"type":"ping"}`, when it reaches the object.
    Ping,
}

/// Parses a client text frame.
///
/// # Errors
/// [`AppError::PayloadTooLarge`] beyond [`MAX_FRAME_BYTES`]; [`AppError::MalformedJson`] for
/// text that is not JSON; [`AppError::Validation`] naming the field for anything else wrong (not
/// an object, an unknown `type`, a bad or unknown field, an invalid chat request).
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, AppError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(AppError::PayloadTooLarge {
            limit: MAX_FRAME_BYTES as u64,
        });
    }
    let value: Value = parse_json(Some("application/json"), text.as_bytes())?;
    let Value::Object(object) = value else {
        return Err(AppError::field(
            FRAME,
            "expected a JSON object (a chat request, or a frame with a `type`)",
        ));
    };
    match object.get("type") {
        None => chat(object, text).map(|req| ClientFrame::Chat(Box::new(req))),
        Some(Value::String(kind)) => control(kind, &object),
        Some(_) => Err(AppError::field(
            "type",
            "expected one of `cancel`, `resume`, `ping` (a chat request has no `type`)",
        )),
    }
}

/// A chat request: deserialised from the parsed value; on failure, parsed again from the text
/// so the error names the field's path exactly as `POST /chat` does.
fn chat(object: Map<String, Value>, text: &str) -> Result<ChatRequest, AppError> {
    let req = match serde_json::from_value::<ChatRequest>(Value::Object(object)) {
        Ok(req) => req,
        Err(_) => match parse_json::<ChatRequest>(Some("application/json"), text.as_bytes()) {
            Ok(req) => req,
            Err(AppError::Validation(fields)) => {
                return Err(AppError::Validation(
                    fields
                        .into_iter()
                        .map(|f| {
                            if f.field == "body" {
                                FieldError::new(FRAME, f.message)
                            } else {
                                f
                            }
                        })
                        .collect(),
                ))
            }
            Err(e) => return Err(e),
        },
    };
    req.validate()?;
    Ok(req)
}

/// A frame with a `type`: every field known, every value checked.
fn control(kind: &str, object: &Map<String, Value>) -> Result<ClientFrame, AppError> {
    let allowed: &[&str] = match kind {
        "cancel" => &["type", "request_id"],
        "resume" => &["type", "request_id", "after"],
        "ping" => &["type"],
        _ => {
            return Err(AppError::field(
                "type",
                "expected one of `cancel`, `resume`, `ping` (a chat request has no `type`)",
            ))
        }
    };
    let unknown: Vec<FieldError> = object
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| FieldError::new(k.as_str(), format!("unknown field of a `{kind}` frame")))
        .collect();
    if !unknown.is_empty() {
        return Err(AppError::Validation(unknown));
    }
    match kind {
        "cancel" => Ok(ClientFrame::Cancel {
            request_id: request_id(object)?,
        }),
        "resume" => {
            let request_id = request_id(object)?
                .ok_or_else(|| AppError::field("request_id", "required to resume"))?;
            Ok(ClientFrame::Resume {
                request_id,
                after: after(object)?,
            })
        }
        _ => Ok(ClientFrame::Ping),
    }
}

/// The optional `request_id`: a non-blank string of at most [`MAX_REQUEST_ID_CHARS`].
fn request_id(object: &Map<String, Value>) -> Result<Option<String>, AppError> {
    match object.get("request_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id))
            if !id.trim().is_empty() && id.chars().count() <= MAX_REQUEST_ID_CHARS =>
        {
            Ok(Some(id.clone()))
        }
        Some(_) => Err(AppError::field(
            "request_id",
            format!("expected a request id (1–{MAX_REQUEST_ID_CHARS} characters)"),
        )),
    }
}

/// The optional `after`: a whole number ≥ 0 (`7` or `7.0`), or `null`.
fn after(object: &Map<String, Value>) -> Result<Option<u64>, AppError> {
    let bad = || {
        AppError::field(
            "after",
            "expected the last `seq` received: a whole number from 0, or null",
        )
    };
    match object.get("after") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9.007_199_254_740_992e15)
                    .map(|f| {
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        let v = f as u64;
                        v
                    })
            })
            .map(Some)
            .ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

/// The error for a binary frame: the protocol is JSON text.
pub fn binary_frame_error() -> AppError {
    AppError::UnsupportedMediaType {
        expected: "text frames of JSON",
    }
}

/// A frame to the client.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// A request was accepted; its tokens and final frame carry this id.
    Started {
        /// The request's id.
        request_id: String,
    },
    /// One piece of the streamed (sanitized) answer.
    Token {
        /// The request's id.
        request_id: String,
        /// Position in the stream, from 0 (what `resume` takes as `after`).
        seq: u64,
        /// The text.
        text: String,
    },
    /// The server's heartbeat while a request streams.
    Ping,
    /// The answer to a client's `ping`.
    Pong,
    /// A failure: of a frame (no `request_id`) or of a request (which it ends).
    Error {
        /// The stable error code (as in the HTTP error envelope).
        code: String,
        /// The client-safe message.
        message: String,
        /// The request it ends, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        /// Structured extras (invalid fields, limits, …), if the code has any.
        #[serde(skip_serializing_if = "Option::is_none")]
        details: Option<Value>,
    },
    /// The end of a request: the authoritative whole answer.
    Done {
        /// Always `true`.
        done: bool,
        /// The request's id.
        request_id: String,
        /// The whole (sanitized) reply.
        response: String,
        /// Changes for the app to apply locally, in order.
        actions: Vec<PlanAction>,
        /// The execution plan, in `plan` mode.
        #[serde(skip_serializing_if = "Option::is_none")]
        plan: Option<ExecutionPlan>,
        /// Whether the request was cancelled (then `response` holds nothing authoritative).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        cancelled: bool,
    },
}

impl ServerFrame {
    /// The error frame of `e`: its code, public message and public details — never its
    /// internal detail.
    pub fn error(e: &AppError, request_id: Option<&str>) -> Self {
        let body = e.body(request_id.unwrap_or_default());
        Self::Error {
            code: body.error.code,
            message: body.error.message,
            request_id: request_id.map(str::to_owned),
            details: body.error.details,
        }
    }

    /// The frame as JSON text.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| FALLBACK_FRAME.to_owned())
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Tokens are being produced.
    Streaming,
    /// Ended with a `done` frame.
    Done,
    /// Ended by a cancel (a `done` frame with `cancelled: true`).
    Cancelled,
    /// Ended with an `error` frame.
    Failed,
}

/// What [`Runs::resume`] gives the resuming socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Serialized [`ServerFrame`]s to send the socket now, in order.
    pub frames: Vec<String>,
    /// The run is still streaming and the socket now receives its next frames.
    pub live: bool,
}

/// One buffered token.
#[derive(Debug)]
struct Token {
    seq: u64,
    text: String,
}

/// One request of the session.
#[derive(Debug)]
struct Run {
    id: String,
    state: RunState,
    /// Sockets receiving the live stream (empty once the run ends).
    subscribers: Vec<SocketId>,
    /// The newest tokens, at most [`MAX_BUFFER_BYTES`] of text.
    tokens: VecDeque<Token>,
    bytes: usize,
    next_seq: u64,
    /// The `done` or `error` frame, once ended.
    final_frame: Option<String>,
    finished_at: Option<i64>,
    /// Set while streaming with no subscriber after an abnormal close.
    orphan_deadline: Option<i64>,
}

impl Run {
    fn streaming(&self) -> bool {
        self.state == RunState::Streaming
    }

    fn expired(&self, now_ms: i64) -> bool {
        self.finished_at
            .is_some_and(|at| now_ms.saturating_sub(at) >= RESUME_WINDOW_MS)
    }

    /// The oldest `seq` still held (the next one when nothing is).
    fn first_held(&self) -> u64 {
        self.tokens.front().map_or(self.next_seq, |t| t.seq)
    }

    fn token_frame(&self, token: &Token) -> String {
        ServerFrame::Token {
            request_id: self.id.clone(),
            seq: token.seq,
            text: token.text.clone(),
        }
        .to_text()
    }
}

/// The runs of one session object, oldest first: the state machine behind the class.
#[derive(Debug, Default)]
pub struct Runs {
    runs: Vec<Run>,
}

impl Runs {
    /// No runs.
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, request_id: &str) -> Option<&Run> {
        self.runs.iter().find(|r| r.id == request_id)
    }

    fn get_mut(&mut self, request_id: &str) -> Option<&mut Run> {
        self.runs.iter_mut().find(|r| r.id == request_id)
    }

    /// Starts a run on `socket`, which becomes its subscriber. Expired runs are dropped first,
    /// then, if [`MAX_RUNS`] are still held, the oldest finished one.
    ///
    /// # Errors
    /// [`AppError::Conflict`] when the socket already follows a streaming run (one request at
    /// a time per socket: the client cancels it or waits), when [`MAX_RUNS`] runs are all
    /// streaming, or when `request_id` is already taken.
    pub fn start(
        &mut self,
        request_id: &str,
        socket: SocketId,
        now_ms: i64,
    ) -> Result<(), AppError> {
        if self.active_on(socket).is_some() {
            return Err(AppError::Conflict(
                "one request at a time per socket: cancel it or wait for its done frame",
            ));
        }
        self.prune(now_ms);
        if self.get(request_id).is_some() {
            return Err(AppError::Conflict("a request with this id exists"));
        }
        if self.runs.len() >= MAX_RUNS {
            let oldest = self
                .runs
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.finished_at.map(|at| (at, i)))
                .min()
                .map(|(_, i)| i);
            match oldest {
                Some(i) => {
                    self.runs.remove(i);
                }
                None => {
                    return Err(AppError::Conflict(
                        "too many requests are streaming: wait for one to finish",
                    ))
                }
            }
        }
        self.runs.push(Run {
            id: request_id.to_owned(),
            state: RunState::Streaming,
            subscribers: vec![socket],
            tokens: VecDeque::new(),
            bytes: 0,
            next_seq: 0,
            final_frame: None,
            finished_at: None,
            orphan_deadline: None,
        });
        Ok(())
    }

    /// The run's state, if it is held.
    pub fn state(&self, request_id: &str) -> Option<RunState> {
        self.get(request_id).map(|r| r.state)
    }

    /// The streaming run the socket follows (the newest, if it resumed several).
    pub fn active_on(&self, socket: SocketId) -> Option<String> {
        self.runs
            .iter()
            .rev()
            .find(|r| r.streaming() && r.subscribers.contains(&socket))
            .map(|r| r.id.clone())
    }

    /// Buffers a token under the next `seq` (from 0), dropping the oldest tokens beyond
    /// [`MAX_BUFFER_BYTES`]; returns its frame and the sockets to send it to. `None` if the
    /// run is unknown or not streaming.
    pub fn token(&mut self, request_id: &str, text: &str) -> Option<(String, Vec<SocketId>)> {
        let run = self.get_mut(request_id).filter(|r| r.streaming())?;
        let token = Token {
            seq: run.next_seq,
            text: text.to_owned(),
        };
        run.next_seq += 1;
        let frame = run.token_frame(&token);
        run.bytes += token.text.len();
        run.tokens.push_back(token);
        while run.bytes > MAX_BUFFER_BYTES {
            let Some(dropped) = run.tokens.pop_front() else {
                break;
            };
            run.bytes -= dropped.text.len();
        }
        Some((frame, run.subscribers.clone()))
    }

    /// Ends a streaming run with `state` (`Done`, `Cancelled` or `Failed`) and its final frame
    /// (a serialized `done` or `error` [`ServerFrame`]), kept for resumes; returns the sockets
    /// to send that frame to. Ignored (empty) if the run is not streaming or `state` is
    /// `Streaming`.
    pub fn finish(
        &mut self,
        request_id: &str,
        state: RunState,
        final_frame: String,
        now_ms: i64,
    ) -> Vec<SocketId> {
        if state == RunState::Streaming {
            return Vec::new();
        }
        let Some(run) = self.get_mut(request_id).filter(|r| r.streaming()) else {
            return Vec::new();
        };
        run.state = state;
        run.final_frame = Some(final_frame);
        run.finished_at = Some(now_ms);
        run.orphan_deadline = None;
        std::mem::take(&mut run.subscribers)
    }

    /// The rest of `request_id` for `socket` after seq `after` (`None`: from the start): the
    /// buffered token frames with `seq > after`, then the final frame if the run has ended
    /// (`live: false`); if it still streams, the socket is subscribed (`live: true`) and the
    /// run is no longer an orphan.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for an unknown or expired run; [`AppError::Conflict`] when
    /// tokens the client lacks were dropped from the bounded buffer; [`AppError::Validation`]
    /// (`after`) when `after` is beyond the last token sent.
    pub fn resume(
        &mut self,
        request_id: &str,
        after: Option<u64>,
        socket: SocketId,
        now_ms: i64,
    ) -> Result<Replay, AppError> {
        self.prune(now_ms);
        let run = self.get_mut(request_id).ok_or(AppError::NotFound)?;
        let from = match after {
            None => 0,
            Some(a) => a
                .checked_add(1)
                .filter(|from| *from <= run.next_seq)
                .ok_or_else(|| {
                    AppError::field(
                        "after",
                        format!(
                            "beyond the last token sent ({} tokens so far)",
                            run.next_seq
                        ),
                    )
                })?,
        };
        if from < run.first_held() {
            return Err(AppError::Conflict(
                "the missed part of this stream is no longer held",
            ));
        }
        let mut frames: Vec<String> = run
            .tokens
            .iter()
            .filter(|t| t.seq >= from)
            .map(|t| run.token_frame(t))
            .collect();
        if let Some(last) = &run.final_frame {
            frames.push(last.clone());
            return Ok(Replay {
                frames,
                live: false,
            });
        }
        if !run.subscribers.contains(&socket) {
            run.subscribers.push(socket);
        }
        run.orphan_deadline = None;
        Ok(Replay { frames, live: true })
    }

    /// A socket closed: it leaves every run. Returns the streaming runs to cancel now — those
    /// it left without a subscriber when the close was deliberate (`clean`: 1000/1001). After an
    /// abnormal close such runs become orphans instead, cancelled by [`Runs::orphans_due`] at
    /// `now_ms + ORPHAN_GRACE_MS` unless resumed.
    pub fn detach(&mut self, socket: SocketId, clean: bool, now_ms: i64) -> Vec<String> {
        let mut cancel = Vec::new();
        for run in &mut self.runs {
            let before = run.subscribers.len();
            run.subscribers.retain(|s| *s != socket);
            if !run.streaming() || before == run.subscribers.len() || !run.subscribers.is_empty() {
                continue;
            }
            if clean {
                cancel.push(run.id.clone());
            } else {
                run.orphan_deadline = Some(now_ms.saturating_add(ORPHAN_GRACE_MS));
            }
        }
        cancel
    }

    /// Streaming runs whose orphan deadline has passed, to cancel. A run stays due until it is
    /// finished or resumed, so every caller polling (one per running request) sees it. Also
    /// drops expired finished runs.
    pub fn orphans_due(&mut self, now_ms: i64) -> Vec<String> {
        self.prune(now_ms);
        self.runs
            .iter()
            .filter(|r| r.streaming() && r.orphan_deadline.is_some_and(|at| at <= now_ms))
            .map(|r| r.id.clone())
            .collect()
    }

    /// Drops finished runs that ended [`RESUME_WINDOW_MS`] or more ago.
    pub fn prune(&mut self, now_ms: i64) {
        self.runs.retain(|r| !r.expired(now_ms));
    }

    /// The sockets following a streaming run (empty otherwise).
    pub fn subscribers(&self, request_id: &str) -> Vec<SocketId> {
        self.get(request_id)
            .filter(|r| r.streaming())
            .map(|r| r.subscribers.clone())
            .unwrap_or_default()
    }

    /// Whether any run is streaming (the class pings only then).
    pub fn any_streaming(&self) -> bool {
        self.runs.iter().any(Run::streaming)
    }

    /// Bytes of token text buffered across runs.
    pub fn buffered_bytes(&self) -> usize {
        self.runs.iter().map(|r| r.bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use shared::api::ExecutionMode;

    use super::*;

    const A: SocketId = SocketId(1);
    const B: SocketId = SocketId(2);

    fn fields(e: &AppError) -> Vec<String> {
        match e {
            AppError::Validation(fields) => fields.iter().map(|f| f.field.clone()).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    fn done(request_id: &str, response: &str) -> String {
        ServerFrame::Done {
            done: true,
            request_id: request_id.into(),
            response: response.into(),
            actions: Vec::new(),
            plan: None,
            cancelled: false,
        }
        .to_text()
    }

    fn token_text(request_id: &str, seq: u64, text: &str) -> String {
        ServerFrame::Token {
            request_id: request_id.into(),
            seq,
            text: text.into(),
        }
        .to_text()
    }

    /// A run `r` on socket A with tokens "t0".."t{n-1}".
    fn streaming(n: u64) -> Runs {
        let mut runs = Runs::new();
        runs.start("r", A, 0).unwrap();
        for i in 0..n {
            runs.token("r", &format!("t{i}")).unwrap();
        }
        runs
    }

    // --- client frames -------------------------------------------------------------------

    #[test]
    fn a_json_object_without_type_is_a_validated_chat_request() {
        let frame = parse_client_frame(r#"{"message":"hi","execution_mode":"plan"}"#).unwrap();
        let ClientFrame::Chat(req) = frame else {
            panic!("expected a chat request, got {frame:?}")
        };
        assert_eq!(req.message, "hi");
        assert_eq!(req.execution_mode, ExecutionMode::Plan);
    }

    #[test]
    fn cancel_is_parsed_with_or_without_a_request_id() {
        assert_eq!(
            parse_client_frame(r#"{"type":"cancel"}"#).unwrap(),
            ClientFrame::Cancel { request_id: None }
        );
        assert_eq!(
            parse_client_frame(r#"{"type":"cancel","request_id":"r1"}"#).unwrap(),
            ClientFrame::Cancel {
                request_id: Some("r1".into())
            }
        );
    }

    #[test]
    fn resume_is_parsed_with_or_without_after() {
        assert_eq!(
            parse_client_frame(r#"{"type":"resume","request_id":"r1","after":7}"#).unwrap(),
            ClientFrame::Resume {
                request_id: "r1".into(),
                after: Some(7)
            }
        );
        assert_eq!(
            parse_client_frame(r#"{"type":"resume","request_id":"r1","after":7.0}"#).unwrap(),
            ClientFrame::Resume {
                request_id: "r1".into(),
                after: Some(7)
            }
        );
        for text in [
            r#"{"type":"resume","request_id":"r1"}"#,
            r#"{"type":"resume","request_id":"r1","after":null}"#,
        ] {
            assert_eq!(
                parse_client_frame(text).unwrap(),
                ClientFrame::Resume {
                    request_id: "r1".into(),
                    after: None
                },
                "{text}"
            );
        }
    }

    #[test]
    fn ping_is_parsed() {
        assert_eq!(
            parse_client_frame(r#"{"type":"ping"}"#).unwrap(),
            ClientFrame::Ping
        );
    }

    #[test]
    fn a_frame_over_one_mib_is_payload_too_large() {
        let text = format!(r#"{{"message":"{}"}}"#, "a".repeat(MAX_FRAME_BYTES));
        let e = parse_client_frame(&text).unwrap_err();
        assert!(
            matches!(e, AppError::PayloadTooLarge { limit } if limit == MAX_FRAME_BYTES as u64),
            "{e:?}"
        );
        assert_eq!(e.code(), "payload_too_large");
    }

    #[test]
    fn text_that_is_not_json_is_malformed_json() {
        for text in ["", "hello", r#"{"message":"#, r#"{"type":"ping"} trailing"#] {
            let e = parse_client_frame(text).unwrap_err();
            assert_eq!(e.code(), "malformed_json", "{text:?}");
        }
    }

    #[test]
    fn json_that_is_not_an_object_names_the_frame() {
        for text in ["[]", r#"[{"type":"ping"}]"#, "42", r#""ping""#, "null"] {
            let e = parse_client_frame(text).unwrap_err();
            assert_eq!(fields(&e), ["frame"], "{text}");
        }
    }

    #[test]
    fn an_unknown_or_non_string_type_names_the_type() {
        for text in [
            r#"{"type":"chat","message":"hi"}"#,
            r#"{"type":"PING"}"#,
            r#"{"type":1}"#,
            r#"{"type":null}"#,
        ] {
            let e = parse_client_frame(text).unwrap_err();
            assert_eq!(fields(&e), ["type"], "{text}");
        }
    }

    #[test]
    fn resume_without_a_request_id_names_the_request_id() {
        for text in [
            r#"{"type":"resume"}"#,
            r#"{"type":"resume","after":3}"#,
            r#"{"type":"resume","request_id":null}"#,
            r#"{"type":"resume","request_id":""}"#,
            r#"{"type":"resume","request_id":5}"#,
        ] {
            let e = parse_client_frame(text).unwrap_err();
            assert_eq!(fields(&e), ["request_id"], "{text}");
        }
    }

    #[test]
    fn a_bad_after_names_after() {
        for after in ["-1", "1.5", r#""3""#, "true", "[1]", "1e300"] {
            let text = format!(r#"{{"type":"resume","request_id":"r","after":{after}}}"#);
            let e = parse_client_frame(&text).unwrap_err();
            assert_eq!(fields(&e), ["after"], "{text}");
        }
    }

    #[test]
    fn an_unknown_field_of_a_typed_frame_is_named() {
        let e = parse_client_frame(r#"{"type":"ping","extra":1}"#).unwrap_err();
        assert_eq!(fields(&e), ["extra"]);
        let e = parse_client_frame(r#"{"type":"cancel","after":1}"#).unwrap_err();
        assert_eq!(fields(&e), ["after"]);
    }

    #[test]
    fn a_chat_request_with_an_unknown_field_is_refused_naming_it() {
        let e = parse_client_frame(r#"{"message":"hi","mesage":"typo"}"#).unwrap_err();
        assert_eq!(fields(&e), ["mesage"]);
        assert_eq!(e.status(), 422);
    }

    #[test]
    fn a_chat_request_with_a_bad_nested_field_names_its_path() {
        let e = parse_client_frame(r#"{"message":"hi","context":{"recent_tasks":[{},5]}}"#)
            .unwrap_err();
        assert_eq!(fields(&e), ["context.recent_tasks[1]"]);
    }

    #[test]
    fn a_chat_request_without_a_message_names_the_frame() {
        let e = parse_client_frame(r#"{"context":{}}"#).unwrap_err();
        assert_eq!(fields(&e), ["frame"]);
    }

    #[test]
    fn a_blank_message_fails_the_chat_requests_own_validation() {
        let e = parse_client_frame(r#"{"message":" \n\t"}"#).unwrap_err();
        assert_eq!(fields(&e), ["message"]);
        assert_eq!(e.status(), 422);
    }

    #[test]
    fn binary_frames_are_an_unsupported_media_type() {
        let e = binary_frame_error();
        assert_eq!(e.code(), "unsupported_media_type");
        assert_eq!(
            serde_json::from_str::<Value>(&ServerFrame::error(&e, None).to_text()).unwrap()
                ["details"],
            json!({"expected": "text frames of JSON"})
        );
    }

    // --- server frames -------------------------------------------------------------------

    fn json_of(frame: &ServerFrame) -> Value {
        serde_json::from_str(&frame.to_text()).unwrap()
    }

    #[test]
    fn started_token_ping_and_pong_serialize_exactly() {
        assert_eq!(
            ServerFrame::Started {
                request_id: "r".into()
            }
            .to_text(),
            r#"{"type":"started","request_id":"r"}"#
        );
        assert_eq!(
            token_text("r", 0, "a"),
            r#"{"type":"token","request_id":"r","seq":0,"text":"a"}"#
        );
        assert_eq!(ServerFrame::Ping.to_text(), r#"{"type":"ping"}"#);
        assert_eq!(ServerFrame::Pong.to_text(), r#"{"type":"pong"}"#);
    }

    #[test]
    fn done_without_plan_or_cancel_omits_them() {
        assert_eq!(
            done("r", "hi"),
            r#"{"type":"done","done":true,"request_id":"r","response":"hi","actions":[]}"#
        );
    }

    #[test]
    fn a_cancelled_done_says_so() {
        let frame = ServerFrame::Done {
            done: true,
            request_id: "r".into(),
            response: String::new(),
            actions: Vec::new(),
            plan: None,
            cancelled: true,
        };
        assert_eq!(
            frame.to_text(),
            r#"{"type":"done","done":true,"request_id":"r","response":"","actions":[],"cancelled":true}"#
        );
    }

    #[test]
    fn a_done_with_actions_and_a_plan_carries_them() {
        let mut data = Map::new();
        data.insert("title".into(), json!("x"));
        let frame = ServerFrame::Done {
            done: true,
            request_id: "r".into(),
            response: String::new(),
            actions: vec![PlanAction::create("tasks", data)],
            plan: Some(ExecutionPlan {
                id: "p".into(),
                agent: "a".into(),
                steps: Vec::new(),
            }),
            cancelled: false,
        };
        assert_eq!(
            json_of(&frame),
            json!({"type": "done", "done": true, "request_id": "r", "response": "",
                "actions": [{"type": "create_record", "table": "tasks", "data": {"title": "x"}}],
                "plan": {"id": "p", "agent": "a", "steps": []}})
        );
    }

    #[test]
    fn an_error_frame_carries_code_message_request_id_and_details() {
        let e = AppError::field("message", "must not be blank");
        assert_eq!(
            ServerFrame::error(&e, Some("r")).to_text(),
            r#"{"type":"error","code":"validation_failed","message":"validation failed","request_id":"r","details":{"fields":[{"field":"message","message":"must not be blank"}]}}"#
        );
        assert_eq!(
            ServerFrame::error(&AppError::NotFound, None).to_text(),
            r#"{"type":"error","code":"not_found","message":"not found"}"#
        );
    }

    #[test]
    fn an_error_frame_never_leaks_internal_detail() {
        let text =
            ServerFrame::error(&AppError::internal("db exploded: secret"), Some("r")).to_text();
        assert_eq!(
            text,
            r#"{"type":"error","code":"internal","message":"internal error","request_id":"r"}"#
        );
        let e = AppError::UpstreamUnavailable {
            service: shared::error::Upstream::Llm,
            bad_gateway: true,
            detail: "sk-secret".into(),
        };
        let text = ServerFrame::error(&e, None).to_text();
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains(r#""details":{"service":"llm"}"#), "{text}");
    }

    // --- the state machine ---------------------------------------------------------------

    #[test]
    fn a_run_streams_numbered_tokens_to_its_socket_then_ends_done() {
        let mut runs = Runs::new();
        runs.start("r", A, 0).unwrap();
        assert_eq!(runs.state("r"), Some(RunState::Streaming));
        assert_eq!(runs.active_on(A).as_deref(), Some("r"));
        assert!(runs.any_streaming());
        assert_eq!(
            runs.token("r", "a"),
            Some((token_text("r", 0, "a"), vec![A]))
        );
        assert_eq!(
            runs.token("r", "b"),
            Some((token_text("r", 1, "b"), vec![A]))
        );
        assert_eq!(runs.finish("r", RunState::Done, done("r", "ab"), 5), [A]);
        assert_eq!(runs.state("r"), Some(RunState::Done));
        assert_eq!(runs.active_on(A), None);
        assert!(!runs.any_streaming());
        assert!(runs.subscribers("r").is_empty());
    }

    #[test]
    fn tokens_and_finishes_of_runs_that_are_not_streaming_are_ignored() {
        let mut runs = streaming(0);
        assert_eq!(runs.token("unknown", "a"), None);
        assert!(runs
            .finish("unknown", RunState::Done, done("unknown", ""), 0)
            .is_empty());
        assert!(runs
            .finish("r", RunState::Streaming, String::new(), 0)
            .is_empty());
        assert_eq!(runs.state("r"), Some(RunState::Streaming));
        runs.finish("r", RunState::Done, done("r", ""), 0);
        assert_eq!(runs.token("r", "late"), None);
        assert!(runs
            .finish("r", RunState::Failed, String::new(), 0)
            .is_empty());
        assert_eq!(runs.state("r"), Some(RunState::Done));
    }

    #[test]
    fn a_second_request_on_a_busy_socket_is_refused_and_the_first_goes_on() {
        let mut runs = streaming(1);
        let e = runs.start("r2", A, 1).unwrap_err();
        assert_eq!(e.code(), "conflict");
        assert_eq!(runs.state("r2"), None);
        assert_eq!(runs.active_on(A).as_deref(), Some("r"));
        assert!(runs.token("r", "more").is_some());
    }

    #[test]
    fn a_socket_may_start_again_once_its_run_ended() {
        let mut runs = streaming(1);
        runs.finish("r", RunState::Done, done("r", ""), 1);
        runs.start("r2", A, 2).unwrap();
        assert_eq!(runs.active_on(A).as_deref(), Some("r2"));
    }

    #[test]
    fn another_socket_starts_concurrently_and_streams_independently() {
        let mut runs = streaming(1);
        runs.start("s", B, 1).unwrap();
        assert_eq!(runs.active_on(B).as_deref(), Some("s"));
        assert_eq!(
            runs.token("s", "x"),
            Some((token_text("s", 0, "x"), vec![B]))
        );
        assert_eq!(
            runs.token("r", "y"),
            Some((token_text("r", 1, "y"), vec![A]))
        );
    }

    #[test]
    fn a_duplicate_request_id_is_refused() {
        let mut runs = streaming(0);
        assert_eq!(runs.start("r", B, 0).unwrap_err().code(), "conflict");
    }

    #[test]
    fn a_cancelled_run_ends_with_its_cancelled_frame() {
        let mut runs = streaming(2);
        let frame = ServerFrame::Done {
            done: true,
            request_id: "r".into(),
            response: String::new(),
            actions: Vec::new(),
            plan: None,
            cancelled: true,
        }
        .to_text();
        assert_eq!(runs.finish("r", RunState::Cancelled, frame.clone(), 3), [A]);
        assert_eq!(runs.state("r"), Some(RunState::Cancelled));
        assert_eq!(runs.active_on(A), None);
        let replay = runs.resume("r", Some(1), B, 4).unwrap();
        assert_eq!(
            replay,
            Replay {
                frames: vec![frame],
                live: false
            }
        );
    }

    #[test]
    fn resume_replays_exactly_the_missed_tokens_then_the_final_frame() {
        let mut runs = streaming(5);
        runs.finish("r", RunState::Done, done("r", "t0t1t2t3t4"), 10);
        let replay = runs.resume("r", Some(2), B, 20).unwrap();
        assert_eq!(
            replay,
            Replay {
                frames: vec![
                    token_text("r", 3, "t3"),
                    token_text("r", 4, "t4"),
                    done("r", "t0t1t2t3t4")
                ],
                live: false
            }
        );
        // A finished run does not subscribe anyone.
        assert_eq!(runs.active_on(B), None);
    }

    #[test]
    fn resume_without_after_replays_from_the_first_token() {
        let mut runs = streaming(2);
        runs.finish("r", RunState::Done, done("r", ""), 10);
        let replay = runs.resume("r", None, B, 20).unwrap();
        assert_eq!(
            replay.frames,
            [
                token_text("r", 0, "t0"),
                token_text("r", 1, "t1"),
                done("r", "")
            ]
        );
    }

    #[test]
    fn resume_after_the_last_token_replays_only_the_final_frame() {
        let mut runs = streaming(2);
        runs.finish("r", RunState::Failed, "err".into(), 10);
        assert_eq!(
            runs.resume("r", Some(1), B, 20).unwrap().frames,
            ["err".to_owned()]
        );
    }

    #[test]
    fn resume_after_a_token_never_sent_is_refused_naming_after() {
        let mut runs = streaming(2);
        for after in [2, u64::MAX] {
            let e = runs.resume("r", Some(after), B, 1).unwrap_err();
            assert_eq!(fields(&e), ["after"], "{after}");
        }
        assert!(runs.subscribers("r") == [A]);
    }

    #[test]
    fn resume_of_a_live_run_replays_then_subscribes_the_socket() {
        let mut runs = streaming(3);
        let replay = runs.resume("r", Some(0), B, 1).unwrap();
        assert_eq!(
            replay,
            Replay {
                frames: vec![token_text("r", 1, "t1"), token_text("r", 2, "t2")],
                live: true
            }
        );
        assert_eq!(runs.subscribers("r"), [A, B]);
        assert_eq!(runs.active_on(B).as_deref(), Some("r"));
        let (frame, to) = runs.token("r", "t3").unwrap();
        assert_eq!(frame, token_text("r", 3, "t3"));
        assert_eq!(to, [A, B]);
        // Resuming twice does not subscribe twice.
        runs.resume("r", Some(3), B, 2).unwrap();
        assert_eq!(runs.subscribers("r"), [A, B]);
        assert_eq!(runs.finish("r", RunState::Done, done("r", ""), 3), [A, B]);
    }

    #[test]
    fn a_socket_following_a_resumed_run_cannot_start_another_meanwhile() {
        let mut runs = streaming(1);
        runs.resume("r", Some(0), B, 1).unwrap();
        assert_eq!(runs.start("s", B, 1).unwrap_err().code(), "conflict");
    }

    #[test]
    fn resume_after_the_buffer_dropped_the_missed_tokens_is_a_conflict() {
        let mut runs = Runs::new();
        runs.start("r", A, 0).unwrap();
        let chunk = "x".repeat(1024);
        for _ in 0..300 {
            runs.token("r", &chunk).unwrap();
        }
        // 256 tokens of 1 KiB fit: seqs 44..=299 are held.
        for after in [None, Some(0), Some(42)] {
            let e = runs.resume("r", after, B, 1).unwrap_err();
            assert_eq!(e.code(), "conflict", "{after:?}");
            assert_eq!(
                e.public_message(),
                "conflict: the missed part of this stream is no longer held"
            );
        }
        let replay = runs.resume("r", Some(43), B, 1).unwrap();
        assert_eq!(replay.frames.len(), 256);
        assert!(replay.live);
    }

    #[test]
    fn resume_of_an_unknown_run_is_not_found() {
        let mut runs = streaming(1);
        let e = runs.resume("nope", None, B, 0).unwrap_err();
        assert!(matches!(e, AppError::NotFound), "{e:?}");
    }

    #[test]
    fn a_finished_run_is_resumable_until_the_resume_window_ends() {
        let mut runs = streaming(1);
        runs.finish("r", RunState::Done, done("r", ""), 1_000);
        assert!(runs
            .resume("r", None, B, 1_000 + RESUME_WINDOW_MS - 1)
            .is_ok());
        let e = runs
            .resume("r", None, B, 1_000 + RESUME_WINDOW_MS)
            .unwrap_err();
        assert!(matches!(e, AppError::NotFound), "{e:?}");
        assert_eq!(runs.state("r"), None);
    }

    #[test]
    fn prune_drops_only_expired_finished_runs() {
        let mut runs = streaming(1);
        runs.start("s", B, 0).unwrap();
        runs.finish("s", RunState::Done, done("s", ""), 0);
        runs.prune(RESUME_WINDOW_MS * 10);
        assert_eq!(runs.state("r"), Some(RunState::Streaming));
        assert_eq!(runs.state("s"), None);
    }

    #[test]
    fn a_clean_close_cancels_the_run_it_leaves_without_subscribers() {
        let mut runs = streaming(1);
        runs.start("s", B, 0).unwrap();
        assert_eq!(runs.detach(A, true, 5), ["r".to_owned()]);
        assert!(runs.subscribers("r").is_empty());
        assert_eq!(runs.subscribers("s"), [B]);
        // Cancelled now, not after a grace period.
        assert!(runs.orphans_due(5 + ORPHAN_GRACE_MS).is_empty());
    }

    #[test]
    fn a_clean_close_of_one_of_two_subscribers_cancels_nothing() {
        let mut runs = streaming(1);
        runs.resume("r", Some(0), B, 1).unwrap();
        assert!(runs.detach(A, true, 2).is_empty());
        assert_eq!(runs.subscribers("r"), [B]);
    }

    #[test]
    fn an_abnormal_close_orphans_the_run_until_the_grace_period_passes() {
        let mut runs = streaming(1);
        assert!(runs.detach(A, false, 1_000).is_empty());
        assert_eq!(runs.state("r"), Some(RunState::Streaming));
        // Tokens keep being buffered for a resume, sent to nobody.
        assert_eq!(runs.token("r", "t1").unwrap().1, []);
        assert!(runs.orphans_due(1_000).is_empty());
        assert!(runs.orphans_due(1_000 + ORPHAN_GRACE_MS - 1).is_empty());
        assert_eq!(runs.orphans_due(1_000 + ORPHAN_GRACE_MS), ["r".to_owned()]);
        // Every poller sees it until the run is finished.
        assert_eq!(
            runs.orphans_due(1_000 + ORPHAN_GRACE_MS + 1),
            ["r".to_owned()]
        );
        runs.finish(
            "r",
            RunState::Cancelled,
            String::new(),
            1_000 + ORPHAN_GRACE_MS,
        );
        assert!(runs.orphans_due(1_000 + ORPHAN_GRACE_MS + 2).is_empty());
    }

    #[test]
    fn a_resumed_orphan_is_never_due() {
        let mut runs = streaming(2);
        runs.detach(A, false, 1_000);
        let replay = runs.resume("r", Some(0), B, 5_000).unwrap();
        assert_eq!(replay.frames, [token_text("r", 1, "t1")]);
        assert!(replay.live);
        assert!(runs.orphans_due(1_000 + ORPHAN_GRACE_MS * 10).is_empty());
        assert_eq!(runs.subscribers("r"), [B]);
    }

    #[test]
    fn closing_a_socket_leaves_finished_runs_resumable() {
        let mut runs = streaming(1);
        runs.finish("r", RunState::Done, done("r", ""), 1);
        assert!(runs.detach(A, true, 2).is_empty());
        assert!(runs.resume("r", Some(0), B, 3).is_ok());
    }

    #[test]
    fn at_max_runs_the_oldest_finished_run_is_evicted() {
        let mut runs = Runs::new();
        for i in 0..MAX_RUNS as u64 {
            runs.start(&format!("r{i}"), SocketId(i), 0).unwrap();
        }
        // Finished in the order r5, r3, r9: r5 is the oldest finished.
        for (id, at) in [("r5", 10), ("r3", 20), ("r9", 30)] {
            runs.finish(id, RunState::Done, done(id, ""), at);
        }
        runs.start("new", SocketId(100), 40).unwrap();
        assert_eq!(runs.state("r5"), None);
        assert_eq!(runs.state("r3"), Some(RunState::Done));
        runs.start("newer", SocketId(101), 50).unwrap();
        assert_eq!(runs.state("r3"), None);
        assert_eq!(runs.state("r9"), Some(RunState::Done));
        assert_eq!(runs.state("r0"), Some(RunState::Streaming));
    }

    #[test]
    fn at_max_runs_all_streaming_a_new_run_is_refused() {
        let mut runs = Runs::new();
        for i in 0..MAX_RUNS as u64 {
            runs.start(&format!("r{i}"), SocketId(i), 0).unwrap();
        }
        let e = runs.start("new", SocketId(100), 1).unwrap_err();
        assert_eq!(e.code(), "conflict");
        assert_eq!(runs.state("new"), None);
        runs.finish("r0", RunState::Done, done("r0", ""), 2);
        runs.start("new", SocketId(100), 3).unwrap();
    }

    #[test]
    fn the_buffer_never_holds_more_than_its_bound_per_run() {
        let mut runs = Runs::new();
        runs.start("r", A, 0).unwrap();
        runs.start("s", B, 0).unwrap();
        for i in 0..2_000 {
            let text = "y".repeat(1 + i % 997);
            runs.token("r", &text).unwrap();
            runs.token("s", "z").unwrap();
            let r_bytes = runs.get("r").unwrap().bytes;
            assert!(r_bytes <= MAX_BUFFER_BYTES, "{r_bytes}");
            assert_eq!(
                r_bytes,
                runs.get("r")
                    .unwrap()
                    .tokens
                    .iter()
                    .map(|t| t.text.len())
                    .sum::<usize>()
            );
        }
        assert!(runs.buffered_bytes() <= 2 * MAX_BUFFER_BYTES);
        // A single token larger than the bound is sent but not kept.
        let huge = "h".repeat(MAX_BUFFER_BYTES + 1);
        let (frame, to) = runs.token("r", &huge).unwrap();
        assert!(frame.contains(&huge));
        assert_eq!(to, [A]);
        assert_eq!(runs.get("r").unwrap().bytes, 0);
        assert_eq!(runs.buffered_bytes(), 2_000);
    }

    #[test]
    fn buffered_bytes_count_the_token_text_of_every_run() {
        let mut runs = streaming(0);
        runs.start("s", B, 0).unwrap();
        runs.token("r", "abc").unwrap();
        runs.token("s", "de").unwrap();
        assert_eq!(runs.buffered_bytes(), 5);
    }
}
