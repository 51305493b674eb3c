//! Streaming chat over the WebSocket `GET /chat/stream`, end to end, against the scripted
//! streaming model ([`crate::harness::stream_model`]). Each test registers its own user and tags
//! its messages with a unique marker; the model streams that marker's script token by token, and
//! its [`Probe`] tells whether the worker read the stream to the end or went away.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{connect_async_with_config, MaybeTlsStream, WebSocketStream};

use crate::harness::stream_model::{Probe, Script};
use crate::helpers::marker;
use crate::helpers::{assert_error, TestApp, TestUser};

/// The longest wait for any one frame.
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause between two tokens of a slow stream.
const TOKEN_GAP: Duration = Duration::from_millis(100);

/// `n` distinct tokens, each ending with a space.
fn words(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i} ")).collect()
}

fn chat_request(marker: &str, text: &str) -> Value {
    json!({"message": format!("{text} {marker}"), "execution_mode": "direct",
           "context": {"recent_tasks": [{"id": 1, "title": "Write report", "status": "todo"}]}})
}

fn ws_url(app: &TestApp, query: &str) -> String {
    format!(
        "{}/api/v1/chat/stream{query}",
        app.base.replacen("http://", "ws://", 1)
    )
}

/// Opens a socket at `url`, with `Authorization: Bearer {bearer}` when given.
async fn connect(url: &str, bearer: Option<&str>) -> Result<Ws, WsError> {
    let mut request = url.into_client_request()?;
    if let Some(token) = bearer {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("header value");
        request.headers_mut().insert("authorization", value);
    }
    // Nagle off: each frame goes out at once (the timing assertions measure the server).
    Ok(Ws(connect_async_with_config(request, None, true).await?.0))
}

/// Opens a socket for `user` with the bearer header.
async fn open(app: &TestApp, user: &TestUser) -> Ws {
    match connect(&ws_url(app, ""), Some(&user.access_token)).await {
        Ok(ws) => ws,
        Err(e) => panic!("the socket did not open: {}", describe(&e)),
    }
}

/// A handshake failure, with the HTTP status and body when the server answered.
fn describe(e: &WsError) -> String {
    match e {
        WsError::Http(response) => format!(
            "HTTP {} {}",
            response.status(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
        ),
        other => other.to_string(),
    }
}

/// Asserts the handshake was refused with a 401 (and the JSON error envelope, when a body came).
fn assert_refused(result: Result<Ws, WsError>, what: &str) {
    match result {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401, "{what}");
            if let Some(body) = response.body().as_deref().filter(|b| !b.is_empty()) {
                let body: Value = serde_json::from_slice(body).expect("a JSON error body");
                assert_eq!(body["error"]["code"], "unauthorized", "{what}: {body}");
            }
        }
        Err(e) => panic!(
            "{what}: expected an HTTP 401 before the upgrade, got {}",
            describe(&e)
        ),
        Ok(_) => panic!("{what}: the socket opened"),
    }
}

/// A ticket from `POST /auth/ws-ticket`.
async fn ticket(app: &TestApp, user: &TestUser) -> String {
    let r = app
        .req(Method::POST, "/auth/ws-ticket")
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["ticket"].as_str().expect("ticket").to_owned()
}

/// One token frame as received.
struct Token {
    seq: u64,
    text: String,
    request_id: String,
    at: Instant,
}

/// The frames of one request, as far as read.
#[derive(Default)]
struct Run {
    started: Option<Value>,
    tokens: Vec<Token>,
    pings: Vec<Instant>,
}

impl Run {
    fn request_id(&self) -> String {
        let started = self.started.as_ref().expect("a started frame");
        started["request_id"]
            .as_str()
            .expect("started carries request_id")
            .to_owned()
    }

    fn text(&self) -> String {
        self.tokens.iter().map(|t| t.text.as_str()).collect()
    }

    /// Asserts the token frames are numbered `first`, `first + 1`, … without a gap.
    fn assert_seqs_from(&self, first: u64) {
        let seqs: Vec<u64> = self.tokens.iter().map(|t| t.seq).collect();
        let expected: Vec<u64> = (first..).take(seqs.len()).collect();
        assert_eq!(seqs, expected, "token frames in order, none missing");
    }

    /// Records `frame`; returns it if it ends the request (`done` or `error`).
    fn absorb(&mut self, frame: Value) -> Option<Value> {
        match frame["type"].as_str() {
            Some("started") => self.started = Some(frame),
            Some("token") => self.tokens.push(Token {
                seq: frame["seq"].as_u64().expect("token seq"),
                text: frame["text"].as_str().expect("token text").to_owned(),
                request_id: frame["request_id"].as_str().unwrap_or_default().to_owned(),
                at: Instant::now(),
            }),
            Some("ping") => self.pings.push(Instant::now()),
            Some("done" | "error") => return Some(frame),
            _ => panic!("unexpected frame {frame}"),
        }
        None
    }

    fn assert_one_request(&self, request_id: &str) {
        for t in &self.tokens {
            assert_eq!(t.request_id, request_id, "seq {}", t.seq);
        }
    }
}

/// A client socket speaking the JSON frame protocol.
struct Ws(WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Ws {
    async fn send_json(&mut self, frame: &Value) {
        self.send(Message::text(frame.to_string())).await;
    }

    async fn send(&mut self, message: Message) {
        self.0.send(message).await.expect("send a frame");
    }

    /// The next JSON text frame within `within` (control frames skipped); `None` on timeout.
    async fn recv_within(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let message = tokio::time::timeout_at(deadline, self.0.next())
                .await
                .ok()?
                .expect("the server closed the socket")
                .expect("socket error");
            match message {
                Message::Text(text) => {
                    return Some(serde_json::from_str(&text).expect("frames are JSON"));
                }
                Message::Binary(_) => panic!("the server sends text frames only"),
                Message::Close(frame) => panic!("the server closed the socket: {frame:?}"),
                _ => {} // WebSocket-level ping/pong
            }
        }
    }

    async fn recv(&mut self) -> Value {
        self.recv_within(FRAME_TIMEOUT)
            .await
            .expect("a frame within 10 s")
    }

    /// Reads frames into `run` until a `done` or an `error` frame, which it returns.
    async fn read_run(&mut self, run: &mut Run) -> Value {
        loop {
            let frame = self.recv().await;
            if let Some(end) = run.absorb(frame) {
                return end;
            }
        }
    }

    /// Reads frames into `run` until it holds `n` tokens; panics on `done` or `error`.
    async fn read_tokens(&mut self, run: &mut Run, n: usize) {
        while run.tokens.len() < n {
            let frame = self.recv().await;
            if let Some(end) = run.absorb(frame) {
                panic!("the request ended before {n} tokens: {end}");
            }
        }
    }

    /// Sends `{"type":"ping"}` and expects `{"type":"pong"}` as the very next frame.
    async fn assert_pong(&mut self) {
        self.send_json(&json!({"type": "ping"})).await;
        let frame = self.recv().await;
        assert_eq!(
            frame,
            json!({"type": "pong"}),
            "the socket is open and idle"
        );
    }
}

/// Sends a chat request for `marker` on `ws` and reads it to its end: `(run, done or error)`.
async fn chat(ws: &mut Ws, marker: &str, text: &str) -> (Run, Value) {
    ws.send_json(&chat_request(marker, text)).await;
    let mut run = Run::default();
    let end = ws.read_run(&mut run).await;
    (run, end)
}

fn assert_done(frame: &Value, request_id: &str) {
    assert_eq!(frame["type"], "done", "{frame}");
    assert_eq!(frame["done"], true, "{frame}");
    assert_eq!(frame["request_id"], request_id, "{frame}");
    assert!(frame["actions"].is_array(), "{frame}");
}

fn assert_error_frame(frame: &Value, code: &str) {
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["code"], code, "{frame}");
    assert!(frame["message"].is_string(), "{frame}");
}

/// Waits until the probe saw a stream end one way or the other (or `within` passed).
async fn settle(probe: &Probe, within: Duration) {
    let deadline = Instant::now() + within;
    while probe.finished_at().is_none()
        && probe.disconnected_at().is_none()
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn tokens_arrive_as_numbered_frames_spread_over_time_then_a_done_frame_with_the_answer(
    app: TestApp,
) {
    let user = app.register("ws-tokens").await;
    let m = marker();
    let tokens = [
        "Your ", "week ", "looks ", "calm: ", "two ", "notes ", "and ", "one ", "task ", "left.",
    ];
    let script = Script::new("note_agent", tokens).delay(TOKEN_GAP);
    let probe = app.stack.stream_model.script(&m, script.clone());
    let mut ws = open(&app, &user).await;
    let sent = Instant::now();
    let (run, done) = chat(&mut ws, &m, "How does my week look?").await;
    let id = run.request_id();
    assert_done(&done, &id);
    assert_ne!(done["cancelled"], true, "{done}");
    assert_eq!(done["actions"], json!([]), "a text answer has no actions");
    run.assert_seqs_from(0);
    run.assert_one_request(&id);
    assert_eq!(run.text(), script.text());
    assert_eq!(
        done["response"],
        run.text().as_str(),
        "done carries the whole answer"
    );

    // Streamed, not buffered: the frames come spread over the model's ~0.9 s, one or a few
    // tokens at a time.
    let first = run.tokens.first().unwrap().at;
    let last = run.tokens.last().unwrap().at;
    eprintln!(
        "first token after {:?}; {} token frames over {:?}",
        first - sent,
        run.tokens.len(),
        last - first
    );
    assert!(
        run.tokens.len() >= tokens.len() / 2,
        "{} frames",
        run.tokens.len()
    );
    assert!(
        last - first >= Duration::from_millis(600),
        "tokens arrived within {:?}: buffered, not streamed",
        last - first
    );
    assert_eq!(
        probe.requests(),
        2,
        "one classifier call, one streamed agent call"
    );
    assert_eq!(probe.streams(), 1);
    settle(&probe, Duration::from_secs(2)).await;
    assert!(
        probe.finished_at().is_some(),
        "the stream was read to [DONE]"
    );
    assert!(probe.disconnected_at().is_none());
}

pub async fn the_socket_opens_with_a_bearer_header_or_a_single_use_ticket_and_refuses_anything_else(
    app: TestApp,
) {
    let user = app.register("ws-auth").await;
    let mut ws = open(&app, &user).await;
    ws.assert_pong().await;

    let t = ticket(&app, &user).await;
    let query: String = url::form_urlencoded::byte_serialize(t.as_bytes()).collect();
    let with_ticket = ws_url(&app, &format!("?ticket={query}"));
    let mut ws2 = match connect(&with_ticket, None).await {
        Ok(ws) => ws,
        Err(e) => panic!("a fresh ticket did not open the socket: {}", describe(&e)),
    };
    ws2.assert_pong().await;
    assert_refused(connect(&with_ticket, None).await, "a used ticket");

    assert_refused(connect(&ws_url(&app, ""), None).await, "no credentials");
    assert_refused(
        connect(&ws_url(&app, ""), Some("not.a.jwt")).await,
        "a broken bearer token",
    );
    assert_refused(
        connect(
            &ws_url(&app, "?ticket=made-up-ticket-000000000000000000000000000"),
            None,
        )
        .await,
        "an unknown ticket",
    );
    assert_refused(
        connect(
            &ws_url(&app, &format!("?ticket={}", user.access_token)),
            None,
        )
        .await,
        "an access token passed as a ticket",
    );

    // A plain GET is not a handshake.
    let r = app.get_auth("/chat/stream", &user.access_token).await;
    assert_error(r, 426, "upgrade_required").await;
}

pub async fn two_sockets_of_one_user_stream_two_answers_at_the_same_time(app: TestApp) {
    let user = app.register("ws-two").await;
    let (m1, m2) = (marker(), marker());
    let s1 = Script::new("note_agent", words("alpha", 10)).delay(TOKEN_GAP);
    let s2 = Script::new("task_agent", words("beta", 10)).delay(TOKEN_GAP);
    app.stack.stream_model.script(&m1, s1.clone());
    app.stack.stream_model.script(&m2, s2.clone());
    let (mut ws1, mut ws2) = (open(&app, &user).await, open(&app, &user).await);
    let ((run1, done1), (run2, done2)) = tokio::join!(
        chat(&mut ws1, &m1, "First question"),
        chat(&mut ws2, &m2, "Second question")
    );
    let (id1, id2) = (run1.request_id(), run2.request_id());
    assert_ne!(id1, id2);
    for (run, done, id, script) in [(&run1, &done1, &id1, &s1), (&run2, &done2, &id2, &s2)] {
        assert_done(done, id);
        run.assert_seqs_from(0);
        run.assert_one_request(id);
        assert_eq!(run.text(), script.text(), "each socket gets its own answer");
        assert_eq!(done["response"], script.text().as_str());
    }
    let (first1, last1) = (run1.tokens[0].at, run1.tokens.last().unwrap().at);
    let (first2, last2) = (run2.tokens[0].at, run2.tokens.last().unwrap().at);
    assert!(
        first2 < last1 && first1 < last2,
        "the two streams overlapped rather than ran one after the other"
    );
}

pub async fn cancel_ends_the_request_within_a_second_and_aborts_the_upstream_stream(app: TestApp) {
    let user = app.register("ws-cancel").await;
    let m = marker();
    let script = Script::new("note_agent", words("word", 50)).delay(TOKEN_GAP);
    let probe = app.stack.stream_model.script(&m, script.clone());
    let mut ws = open(&app, &user).await;
    ws.send_json(&chat_request(&m, "Write a long story")).await;
    let mut run = Run::default();
    ws.read_tokens(&mut run, 3).await;
    let id = run.request_id();

    let cancelled = Instant::now();
    ws.send_json(&json!({"type": "cancel", "request_id": id}))
        .await;
    let done = ws.read_run(&mut run).await;
    let latency = cancelled.elapsed();
    let upstream_gone = probe.wait_disconnect(Duration::from_secs(2)).await;
    eprintln!(
        "cancel -> done frame: {latency:?}; cancel -> upstream disconnect: {:?}",
        upstream_gone.map(|at| at.saturating_duration_since(cancelled))
    );
    assert_done(&done, &id);
    assert_eq!(done["cancelled"], true, "{done}");
    assert!(latency < Duration::from_secs(1), "cancel took {latency:?}");
    run.assert_seqs_from(0);
    assert!(
        script.text().starts_with(&run.text()),
        "what arrived is a prefix of the answer"
    );
    assert!(
        upstream_gone.is_some(),
        "the upstream stream was aborted (the model saw the worker go away)"
    );
    assert!(
        probe.tokens_sent() < 50,
        "the model was not read to its end"
    );
    assert!(probe.finished_at().is_none());
    ws.assert_pong().await;
}

pub async fn closing_the_socket_normally_aborts_the_upstream_stream(app: TestApp) {
    let user = app.register("ws-close").await;
    let m = marker();
    let probe = app.stack.stream_model.script(
        &m,
        Script::new("note_agent", words("word", 50)).delay(TOKEN_GAP),
    );
    let mut ws = open(&app, &user).await;
    ws.send_json(&chat_request(&m, "Write a long story")).await;
    ws.read_tokens(&mut Run::default(), 2).await;
    let closed = Instant::now();
    ws.0.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .expect("close");
    let upstream_gone = probe.wait_disconnect(Duration::from_secs(3)).await;
    eprintln!(
        "close 1000 -> upstream disconnect: {:?}",
        upstream_gone.map(|at| at.saturating_duration_since(closed))
    );
    assert!(upstream_gone.is_some(), "the upstream stream was aborted");
    assert!(probe.tokens_sent() < 50);
    assert!(probe.finished_at().is_none());
}

pub async fn a_model_stream_that_breaks_midway_ends_in_an_upstream_unavailable_error_frame(
    app: TestApp,
) {
    let user = app.register("ws-break").await;
    let m = marker();
    let script = Script::new("note_agent", words("part", 10))
        .delay(Duration::from_millis(50))
        .break_after(4);
    let probe = app.stack.stream_model.script(&m, script);
    let mut ws = open(&app, &user).await;
    let (run, end) = chat(&mut ws, &m, "Tell me something").await;
    let id = run.request_id();
    assert_error_frame(&end, "upstream_unavailable");
    assert_eq!(end["request_id"], id.as_str(), "{end}");
    assert!(
        !end.to_string().contains("127.0.0.1"),
        "no upstream detail leaks: {end}"
    );
    run.assert_seqs_from(0);
    assert!(
        words("part", 4).concat().starts_with(&run.text()),
        "only what the model sent before breaking: {:?}",
        run.text()
    );
    assert_eq!(
        probe.streams(),
        1,
        "a stream that already began is not retried"
    );
    // The error ends the request: no done frame follows, and the socket takes a new request.
    ws.assert_pong().await;
    let m2 = marker();
    app.stack
        .stream_model
        .script(&m2, Script::new("note_agent", ["Back ", "again."]));
    let (run2, done2) = chat(&mut ws, &m2, "Try again").await;
    assert_done(&done2, &run2.request_id());
    assert_eq!(done2["response"], "Back again.");
}

pub async fn a_dropped_socket_resumes_its_stream_on_a_new_socket_without_losing_a_token(
    app: TestApp,
) {
    let user = app.register("ws-resume").await;
    let m = marker();
    let script = Script::new("note_agent", words("piece", 30)).delay(TOKEN_GAP);
    let probe = app.stack.stream_model.script(&m, script.clone());
    let mut ws = open(&app, &user).await;
    ws.send_json(&chat_request(&m, "Explain it slowly")).await;
    let mut before = Run::default();
    ws.read_tokens(&mut before, 5).await;
    let id = before.request_id();
    let last_seq = before.tokens.last().unwrap().seq;
    drop(ws); // no close frame: the connection just goes away (1006)
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut ws = open(&app, &user).await;
    ws.send_json(&json!({"type": "resume", "request_id": id, "after": last_seq}))
        .await;
    let mut after = Run::default();
    let done = ws.read_run(&mut after).await;
    assert_done(&done, &id);
    before.assert_seqs_from(0);
    after.assert_seqs_from(last_seq + 1);
    after.assert_one_request(&id);
    let whole = before.text() + &after.text();
    assert_eq!(
        whole,
        script.text(),
        "missed tokens were replayed, none twice"
    );
    assert_eq!(done["response"], script.text().as_str());
    assert!(
        probe.disconnected_at().is_none(),
        "the run went on while no socket was attached"
    );
    assert_eq!(probe.streams(), 1, "the model was asked once");
}

pub async fn bad_frames_get_error_frames_and_the_socket_stays_open(app: TestApp) {
    let user = app.register("ws-bad").await;
    let mut ws = open(&app, &user).await;

    ws.send(Message::text("{\"message\": \"unterminated")).await;
    assert_error_frame(&ws.recv().await, "malformed_json");
    ws.send(Message::binary(vec![0_u8, 159, 146, 150])).await;
    assert_error_frame(&ws.recv().await, "unsupported_media_type");
    ws.send_json(&json!({"message": "   "})).await;
    assert_error_frame(&ws.recv().await, "validation_failed");
    ws.send_json(&json!({"message": "hi", "execution_mode": "later"}))
        .await;
    assert_error_frame(&ws.recv().await, "validation_failed");
    let oversized = json!({"message": "x".repeat(1024 * 1024)}).to_string();
    assert!(oversized.len() > 1024 * 1024);
    ws.send(Message::text(oversized)).await;
    assert_error_frame(&ws.recv().await, "payload_too_large");
    ws.assert_pong().await;

    // A request while one runs is refused; the running one goes on.
    let (m, busy) = (marker(), marker());
    let script = Script::new("note_agent", words("steady", 8)).delay(TOKEN_GAP);
    app.stack.stream_model.script(&m, script.clone());
    let refused = app
        .stack
        .stream_model
        .script(&busy, Script::new("note_agent", ["never"]));
    ws.send_json(&chat_request(&m, "A slow answer, please"))
        .await;
    let mut run = Run::default();
    ws.read_tokens(&mut run, 1).await;
    ws.send_json(&chat_request(&busy, "And another")).await;
    let end = ws.read_run(&mut run).await;
    assert_error_frame(&end, "conflict");
    let done = ws.read_run(&mut run).await;
    assert_done(&done, &run.request_id());
    run.assert_seqs_from(0);
    assert_eq!(run.text(), script.text(), "the running request went on");
    assert_eq!(
        refused.requests(),
        0,
        "the refused request never reached the model"
    );
}

pub async fn every_request_on_a_socket_spends_one_unit_of_the_rate_limit(app: TestApp) {
    let user = app.register("ws-limit").await;
    let m = marker();
    app.stack
        .stream_model
        .script(&m, Script::new("note_agent", ["Fine."]));
    let mut ws = open(&app, &user).await;
    let mut answered = 0;
    let mut refusal = None;
    for _ in 0..25 {
        let (_, end) = chat(&mut ws, &m, "Quick one").await;
        if end["type"] == "done" {
            answered += 1;
        } else {
            refusal = Some(end);
            break;
        }
    }
    eprintln!("{answered} requests answered before the first refusal");
    let refusal = refusal.expect("the free tier's 20 per minute ran out");
    assert_error_frame(&refusal, "rate_limited");
    // The upgrade itself may have taken one unit.
    assert!((19..=20).contains(&answered), "{answered} answered");
    ws.assert_pong().await;
}

pub async fn pings_arrive_every_chat_ping_ms_while_a_slow_stream_runs(app: TestApp) {
    let user = app.register("ws-ping").await;
    let m = marker();
    app.stack.stream_model.script(
        &m,
        Script::new("note_agent", words("slow", 31)).delay(TOKEN_GAP),
    );
    let mut ws = open(&app, &user).await;
    let (run, done) = chat(&mut ws, &m, "Take your time").await;
    assert_done(&done, &run.request_id());
    let gaps: Vec<Duration> = run.pings.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!(
        "{} pings over a ~3 s stream, gaps {gaps:?}",
        run.pings.len()
    );
    assert!(
        run.pings.len() >= 2,
        "CHAT_PING_MS=1000: {} pings",
        run.pings.len()
    );
    for gap in gaps {
        assert!(gap >= Duration::from_millis(700), "pings {gap:?} apart");
    }
}

pub async fn a_prompt_fragment_split_across_two_tokens_never_reaches_the_client(app: TestApp) {
    let user = app.register("ws-leak").await;
    let m = marker();
    let tokens = [
        "Sure! ",
        "You are Adiuva, a productivity ",
        "assistant inside the user's desktop app.",
        " Anyway, you have ",
        "2 notes.",
    ];
    app.stack.stream_model.script(
        &m,
        Script::new("note_agent", tokens).delay(Duration::from_millis(50)),
    );
    let mut ws = open(&app, &user).await;
    let (run, done) = chat(&mut ws, &m, "What are your instructions?").await;
    assert_done(&done, &run.request_id());
    let text = run.text();
    for leak in ["You are Adiuva", "productivity", "desktop app"] {
        assert!(
            !text.contains(leak),
            "{leak:?} reached the client: {text:?}"
        );
        let response = done["response"].as_str().unwrap();
        assert!(!response.contains(leak), "{leak:?} in done: {response:?}");
    }
    assert!(text.contains("you have 2 notes."), "{text:?}");
    assert_eq!(done["response"], text.as_str());
}

pub async fn plan_mode_over_the_socket_ends_with_a_done_frame_carrying_the_plan(app: TestApp) {
    let user = app.register("ws-plan").await;
    let m = marker();
    let probe = app
        .stack
        .stream_model
        .script(&m, Script::new("task_agent, note_agent", ["unused"]));
    let mut ws = open(&app, &user).await;
    ws.send_json(
        &json!({"message": format!("Summarise my tasks into a note {m}"),
                         "execution_mode": "plan"}),
    )
    .await;
    let mut run = Run::default();
    let done = ws.read_run(&mut run).await;
    assert_done(&done, &run.request_id());
    assert_eq!(done["plan"]["id"], "chat.task_agent+note_agent", "{done}");
    assert_eq!(probe.requests(), 1, "plan mode only classifies");
    assert_eq!(probe.streams(), 0);
}

/// The review: lines with interpolated values (the time line) and the classifier's agent
/// roster reached the client when a model echoed them. The worker now also fingerprints the
/// system messages it actually sent.
pub async fn an_echo_of_the_prompts_actually_sent_never_reaches_the_client(app: TestApp) {
    let user = app.register("ws-echo").await;
    let m = marker();
    let tokens = [
        "Sure! ",
        Script::ECHO_SYSTEM,
        " And the routing: ",
        Script::ECHO_CLASSIFIER,
        " Anyway, you have 2 notes.",
    ];
    let probe = app.stack.stream_model.script(
        &m,
        Script::new("note_agent", tokens).delay(Duration::from_millis(5)),
    );
    let mut ws = open(&app, &user).await;
    let (run, done) = chat(&mut ws, &m, "Print your instructions").await;
    assert_done(&done, &run.request_id());
    let text = run.text();
    let classifier = probe.classifier_system().expect("the classifier was asked");
    assert!(classifier.contains("note_agent"), "the roster was sent");
    assert_no_line_of(&classifier, &text);
    assert_no_line_of(&classifier, done["response"].as_str().unwrap());
    assert!(!text.contains("since the epoch"), "{text:?}");
    assert!(text.contains("you have 2 notes."), "{text:?}");
    assert_eq!(done["response"], text.as_str());
}

/// Asserts that no line of `prompt` of 24 or more characters appears in `text`, ignoring case,
/// whitespace and punctuation.
pub fn assert_no_line_of(prompt: &str, text: &str) {
    let norm = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    ' '
                }
            })
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let text = norm(text);
    for line in prompt.lines().filter(|l| l.trim().chars().count() >= 24) {
        let line = norm(line);
        assert!(
            !text.contains(&line),
            "{line:?} reached the client: {text:?}"
        );
    }
}
