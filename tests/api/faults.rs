//! Fault injection: the scripted OpenAI and Stripe servers failing every way, clients vanishing
//! mid-upload and mid-stream, and `wrangler dev` killed and restarted on its state. The service
//! must answer clear errors, hang nothing (every request here is bounded by a client timeout),
//! and lose no stored data (every checksum stored is verified again at the end).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::billing::subscribe;
use crate::harness::stream_model::{Probe, Script};
use crate::harness::Stack;
use crate::helpers::{assert_error, user_id_of, TestApp, TestUser};
use crate::helpers::{marker, sha};

/// The longest any one answer may take here, unless a test says otherwise.
const BOUND: Duration = Duration::from_secs(10);

fn bytes_of(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| u8::try_from(i % 251).unwrap() ^ seed)
        .collect()
}

/// Sends `req` with a client-side deadline of `bound`; panics if no answer comes by then.
async fn within(bound: Duration, what: &str, req: reqwest::RequestBuilder) -> reqwest::Response {
    let started = Instant::now();
    match req.timeout(bound).send().await {
        Ok(r) => r,
        Err(e) => panic!(
            "{what}: no answer within {bound:?} (after {:?}): {e}",
            started.elapsed()
        ),
    }
}

fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-faults", "object": "chat.completion", "created": 1_795_000_000,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
    })
}

/// Scripts every model call carrying `m` with `answer`.
async fn model_answers(app: &TestApp, m: &str, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains(m))
        .respond_with(answer)
        .with_priority(1)
        .mount(&app.stack.openai)
        .await;
}

async fn model_calls(app: &TestApp, m: &str) -> usize {
    app.stack
        .openai
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains(m))
        .count()
}

/// `POST /chat` for a message carrying `m`: the answer and how long it took.
async fn chat(
    app: &TestApp,
    user: &TestUser,
    m: &str,
    bound: Duration,
) -> (reqwest::Response, Duration) {
    let started = Instant::now();
    let r = within(
        bound,
        "POST /chat",
        app.req(Method::POST, "/chat")
            .bearer_auth(&user.access_token)
            .json(&json!({"message": format!("What is on my list? {m}")})),
    )
    .await;
    (r, started.elapsed())
}

/// One fault of the model for `POST /chat`: the status and code expected, the model calls
/// expected (`None`: not asserted), and the slowest acceptable answer.
async fn chat_fault(
    app: &TestApp,
    tag: &str,
    answer: ResponseTemplate,
    status: u16,
    code: Option<&str>,
    calls: Option<usize>,
    slowest: Duration,
) -> Duration {
    let user = app.register(tag).await;
    let m = marker();
    model_answers(app, &m, answer).await;
    let (r, took) = chat(app, &user, &m, slowest).await;
    if let Some(code) = code {
        let body = assert_error(r, status, code).await;
        assert!(
            !body.to_string().contains("127.0.0.1"),
            "{tag}: no upstream detail leaks: {body}"
        );
    } else {
        assert_eq!(r.status().as_u16(), status, "{tag}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["response"], "Slow but fine.", "{tag}: {body}");
    }
    assert!(took < slowest, "{tag}: took {took:?}");
    if let Some(calls) = calls {
        assert_eq!(model_calls(app, &m).await, calls, "{tag}: model calls");
    }
    eprintln!("{tag}: answered in {took:?}");
    took
}

pub async fn a_failing_model_gets_clear_chat_errors_in_bounded_time(app: TestApp) {
    let a = &app;
    let (e500, e429, slow, hang, garbage, shapeless, refused) = tokio::join!(
        // 500 every time: tried 3 times (0.5 s, 1 s backoff), then 503.
        chat_fault(
            a,
            "fault-500",
            ResponseTemplate::new(500).set_body_string("boom"),
            503,
            Some("upstream_unavailable"),
            Some(3),
            BOUND
        ),
        chat_fault(
            a,
            "fault-429",
            ResponseTemplate::new(429)
                .set_body_json(json!({"error": {"message": "slow down", "type": "rate_limit"}})),
            503,
            Some("upstream_unavailable"),
            Some(3),
            BOUND
        ),
        // 1 s per call (classifier and agent), within OPENAI_TIMEOUT_MS = 2 s: a success.
        chat_fault(
            a,
            "fault-slow",
            ResponseTemplate::new(200)
                .set_body_json(completion("Slow but fine."))
                .set_delay(Duration::from_secs(1)),
            200,
            None,
            Some(2),
            BOUND
        ),
        // Never answers: 3 attempts of 2 s plus 1.5 s of backoff (7.5 s), then 503; 12 s allowed
        // for a loaded machine.
        chat_fault(
            a,
            "fault-hang",
            ResponseTemplate::new(200)
                .set_body_json(completion("never"))
                .set_delay(Duration::from_secs(60)),
            503,
            Some("upstream_unavailable"),
            Some(3),
            Duration::from_secs(12)
        ),
        // Unreadable answers are 502, not retried into a 503.
        chat_fault(
            a,
            "fault-garbage",
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/json")
                .set_body_string("{\"id\": \"chatcmpl-x\", \"choices\": [{\"mess"),
            502,
            Some("upstream_unavailable"),
            None,
            BOUND
        ),
        chat_fault(
            a,
            "fault-shapeless",
            ResponseTemplate::new(200).set_body_json(json!({"hello": "world"})),
            502,
            Some("upstream_unavailable"),
            None,
            BOUND
        ),
        // A refusal (400) is 502 at once.
        chat_fault(
            a,
            "fault-400",
            ResponseTemplate::new(400).set_body_json(
                json!({"error": {"message": "bad request sk-e2e", "type": "invalid_request_error"}})
            ),
            502,
            Some("upstream_unavailable"),
            Some(1),
            BOUND
        ),
    );
    assert!(e500 >= Duration::from_millis(1400), "backoff: {e500:?}");
    assert!(e429 >= Duration::from_millis(1400), "backoff: {e429:?}");
    assert!(
        slow >= Duration::from_millis(1900),
        "two slow calls: {slow:?}"
    );
    assert!(
        hang >= Duration::from_secs(6),
        "three timed-out attempts: {hang:?}"
    );
    eprintln!("garbage {garbage:?}, shapeless {shapeless:?}, refused {refused:?}");
    // Afterwards the service answers normally.
    let user = app.register("fault-after").await;
    let m = marker();
    model_answers(
        &app,
        &m,
        ResponseTemplate::new(200).set_body_json(completion("Slow but fine.")),
    )
    .await;
    let (r, _) = chat(&app, &user, &m, BOUND).await;
    assert_eq!(r.status(), 200);
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn open_socket(app: &TestApp, user: &TestUser) -> Socket {
    let url = format!(
        "{}/api/v1/chat/stream",
        app.base.replacen("http://", "ws://", 1)
    );
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", user.access_token)).unwrap(),
    );
    tokio::time::timeout(BOUND, connect_async(request))
        .await
        .expect("the socket opens within 10 s")
        .expect("the socket opens")
        .0
}

/// The next JSON text frame within [`BOUND`]; `None` if the server closed the socket cleanly.
async fn next_frame(ws: &mut Socket) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(BOUND, ws.next())
            .await
            .expect("a frame within 10 s");
        match message {
            None | Some(Ok(Message::Close(_))) => return None,
            Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Binary(_))) => panic!("binary frame"),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("socket error (not a clean close): {e}"),
        }
    }
}

/// Sends a request for `m`; reads to its `done` or `error` frame (`None`: closed cleanly).
async fn stream_request(ws: &mut Socket, m: &str) -> Option<Value> {
    let request = json!({"message": format!("Tell me a story {m}"), "execution_mode": "direct"});
    ws.send(Message::text(request.to_string())).await.unwrap();
    loop {
        let frame = next_frame(ws).await?;
        match frame["type"].as_str() {
            Some("done" | "error") => return Some(frame),
            Some("started" | "token" | "ping") => {}
            _ => panic!("unexpected frame {frame}"),
        }
    }
}

/// Scripts the wiremock model for `m`: the classifier names `note_agent`; the streamed agent
/// call gets `sse` as a `text/event-stream` body.
async fn model_streams(app: &TestApp, m: &str, sse: &str) {
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains(m))
        .and(body_string_contains("\"stream\":true"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(sse),
        )
        .with_priority(1)
        .mount(&app.stack.openai)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains(m))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("note_agent")))
        .with_priority(2)
        .mount(&app.stack.openai)
        .await;
}

fn chunk(content: &str) -> String {
    let c = json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]});
    format!("data: {c}\n\n")
}

/// After an error frame the socket either takes the next request or was closed cleanly.
async fn socket_goes_on(app: &TestApp, ws: &mut Socket, tag: &str) {
    let m = marker();
    app.stack
        .stream_model
        .script(&m, Script::new("note_agent", ["All ", "good."]));
    match stream_request(ws, &m).await {
        None => eprintln!("{tag}: the server closed the socket cleanly after the error"),
        Some(done) => {
            assert_eq!(done["type"], "done", "{tag}: {done}");
            assert_eq!(done["response"], "All good.", "{tag}: {done}");
        }
    }
}

pub async fn a_truncated_or_garbled_model_stream_ends_in_an_error_frame(app: TestApp) {
    let user = app.register("fault-sse").await;
    let mut ws = open_socket(&app, &user).await;
    let cases = [
        // Cut inside a chunk's JSON.
        (
            "garbled",
            format!(
                "{}data: {{\"id\":\"chatcmpl-s\",\"choices\":[{{\"delta\":{{\"cont",
                chunk("Once ")
            ),
        ),
        // Whole chunks, then the body ends: no finish_reason, no [DONE].
        ("truncated", format!("{}{}", chunk("Once "), chunk("upon "))),
        // Not SSE at all.
        ("not-sse", "<html>502 Bad Gateway</html>".to_owned()),
    ];
    for (tag, sse) in cases {
        let m = marker();
        model_streams(&app, &m, &sse).await;
        let started = Instant::now();
        let end = stream_request(&mut ws, &m)
            .await
            .unwrap_or_else(|| panic!("{tag}: closed without an error frame"));
        eprintln!("{tag}: {end} after {:?}", started.elapsed());
        assert_eq!(end["type"], "error", "{tag}: {end}");
        let code = end["code"].as_str().unwrap_or_default();
        assert!(
            ["upstream_unavailable", "internal"].contains(&code),
            "{tag}: a clear code: {end}"
        );
        assert!(end["message"].is_string(), "{tag}: {end}");
        assert!(!end.to_string().contains("127.0.0.1"), "{tag}: {end}");
        socket_goes_on(&app, &mut ws, tag).await;
    }
}

async fn checkout(
    app: &TestApp,
    user: &TestUser,
    bound: Duration,
) -> (reqwest::Response, Duration) {
    let started = Instant::now();
    let r = within(
        bound,
        "POST /billing/checkout",
        app.req(Method::POST, "/billing/checkout")
            .bearer_auth(&user.access_token)
            .json(&json!({"tier": "pro"})),
    )
    .await;
    (r, started.elapsed())
}

async fn stripe_calls(app: &TestApp, path: &str, needle: &str) -> usize {
    app.stack
        .stripe
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == path && String::from_utf8_lossy(&r.body).contains(needle))
        .count()
}

/// Checkout for a fresh user while Stripe answers `answer`.
async fn checkout_fault(
    app: &TestApp,
    tag: &str,
    answer: ResponseTemplate,
    status: u16,
    attempts: usize,
    bound: Duration,
) -> Duration {
    let user = app.register(tag).await;
    let id = user_id_of(&user);
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .and(body_string_contains(id.as_str()))
        .respond_with(answer)
        .with_priority(1)
        .mount(&app.stack.stripe)
        .await;
    let (r, took) = checkout(app, &user, bound).await;
    let body = assert_error(r, status, "upstream_unavailable").await;
    assert_eq!(
        body["error"]["details"]["service"], "payments",
        "{tag}: {body}"
    );
    assert!(!body.to_string().contains("sk_test"), "{tag}: {body}");
    assert_eq!(
        stripe_calls(app, "/v1/checkout/sessions", &id).await,
        attempts,
        "{tag}: attempts"
    );
    eprintln!("{tag}: {status} after {took:?}");
    took
}

/// Stripe answers a checkout after 2 s (within its 10 s timeout): the checkout succeeds.
async fn slow_checkout(app: &TestApp) -> Duration {
    let user = app.register("stripe-slow").await;
    let id = user_id_of(&user);
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .and(body_string_contains(id.as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "cs_slow", "url": "https://checkout.stripe.test/slow"}))
                .set_delay(Duration::from_secs(2)),
        )
        .with_priority(1)
        .mount(&app.stack.stripe)
        .await;
    let (r, took) = checkout(app, &user, BOUND).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["checkout_url"], "https://checkout.stripe.test/slow",
        "{body}"
    );
    assert_eq!(stripe_calls(app, "/v1/checkout/sessions", &id).await, 1);
    took
}

async fn publish_paid_plugin(app: &TestApp, m: &str) -> String {
    let author = app.register("fault-author").await;
    let mut package = b"PK\x03\x04".to_vec();
    package.extend(bytes_of(3000, 11));
    let manifest = json!({
        "name": format!("Faulty {m}"), "description": "A paid plugin of the fault tests.",
        "version": "1.0.0", "author": "E2E Author", "permissions": ["tasks:read"],
        "category": "analytics", "price_cents": 799,
    });
    let r = app
        .req(Method::POST, "/plugins")
        .bearer_auth(&author.access_token)
        .json(
            &json!({"manifest": manifest, "package": STANDARD.encode(&package),
                      "package_checksum": sha(&package)}),
        )
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "submit: {body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let admin = app.admin().await;
    let r = app
        .req(Method::POST, &format!("/plugins/{id}/review"))
        .bearer_auth(&admin.access_token)
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "approve");
    id
}

/// A paid install while Stripe fails `what` for the buyer's customer: 503, nothing installed.
async fn install_fault(app: &TestApp, plugin: &str, what: &str) {
    let user = app.register("fault-buyer").await;
    let customer = format!("cus_{}", uuid::Uuid::new_v4().simple());
    app.subscribe_as_customer(&user, "power", Some(&customer))
        .await;
    match what {
        "cards" => {
            Mock::given(method("GET"))
                .and(path(format!("/v1/customers/{customer}/payment_methods")))
                .respond_with(ResponseTemplate::new(500))
                .with_priority(1)
                .mount(&app.stack.stripe)
                .await;
        }
        _ => {
            Mock::given(method("POST"))
                .and(path("/v1/payment_intents"))
                .and(body_string_contains(format!("customer={customer}&")))
                .respond_with(ResponseTemplate::new(503))
                .with_priority(1)
                .mount(&app.stack.stripe)
                .await;
        }
    }
    let started = Instant::now();
    let r = within(
        BOUND,
        "POST /plugins/{id}/install",
        app.req(Method::POST, &format!("/plugins/{plugin}/install"))
            .bearer_auth(&user.access_token)
            .json(&json!({"plugin_id": plugin, "price_cents": 799})),
    )
    .await;
    let body = assert_error(r, 503, "upstream_unavailable").await;
    eprintln!(
        "install with failing {what}: {body} after {:?}",
        started.elapsed()
    );
    // Nothing installed: no rating allowed, nothing to uninstall.
    let r = app
        .req(Method::POST, &format!("/plugins/{plugin}/rating"))
        .bearer_auth(&user.access_token)
        .json(&json!({"rating": 5}))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "forbidden").await;
    let r = app
        .req(Method::DELETE, &format!("/plugins/{plugin}/install"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "not_found").await;
}

pub async fn a_failing_stripe_gets_clear_errors_and_charges_or_installs_nothing(app: TestApp) {
    let a = &app;
    let m = marker();
    let plugin = publish_paid_plugin(a, &m).await;
    let (e500, e429, garbled, slow, e400, hang, (), ()) = tokio::join!(
        checkout_fault(a, "stripe-500", ResponseTemplate::new(500), 503, 3, BOUND),
        checkout_fault(a, "stripe-429", ResponseTemplate::new(429), 503, 3, BOUND),
        // A 200 whose body is not JSON: an unusable answer, not retried.
        checkout_fault(
            a,
            "stripe-garbled",
            ResponseTemplate::new(200).set_body_string("<html>oops"),
            502,
            1,
            BOUND
        ),
        slow_checkout(a),
        checkout_fault(
            a,
            "stripe-400",
            ResponseTemplate::new(400).set_body_json(json!({"error": {
                "type": "invalid_request_error", "message": "No such price: sk_test_e2e"}})),
            502,
            1,
            BOUND
        ),
        // Stripe never answers: 3 attempts of 10 s (the fixed per-attempt timeout) + 1.5 s.
        checkout_fault(
            a,
            "stripe-hang",
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "cs_late", "url": "https://late.example"}))
                .set_delay(Duration::from_secs(120)),
            503,
            3,
            Duration::from_secs(40)
        ),
        install_fault(a, &plugin, "cards"),
        install_fault(a, &plugin, "intent"),
    );
    assert!(e500 >= Duration::from_millis(1400), "backoff: {e500:?}");
    assert!(e429 >= Duration::from_millis(1400), "backoff: {e429:?}");
    assert!(garbled < Duration::from_secs(5), "not retried: {garbled:?}");
    assert!(slow >= Duration::from_secs(2), "{slow:?}");
    assert!(
        e400 < Duration::from_secs(5),
        "a refusal is not retried: {e400:?}"
    );
    assert!(e429 >= Duration::from_millis(1400), "backoff: {e429:?}");
    assert!(garbled < Duration::from_secs(5), "not retried: {garbled:?}");
    assert!(slow >= Duration::from_secs(2), "{slow:?}");
    assert!(hang >= Duration::from_secs(30), "{hang:?}");
    let admin = app.admin().await;
    let info: Value = app
        .get_auth(&format!("/plugins/{plugin}"), &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["install_count"], 0, "{info}");
}

async fn put_backup(app: &TestApp, user: &TestUser, body: &[u8], ts: i64) -> String {
    let r = within(
        Duration::from_secs(30),
        "PUT /backup",
        app.req(Method::PUT, "/backup")
            .bearer_auth(&user.access_token)
            .header("Content-Type", "application/octet-stream")
            .header("X-Backup-Version", "3")
            .header("X-Backup-Timestamp", ts.to_string())
            .header("X-Backup-Checksum", sha(body))
            .body(body.to_vec()),
    )
    .await;
    let status = r.status();
    let b: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{b}");
    b["id"].as_str().unwrap().to_owned()
}

async fn backup_history(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let r = app.get_auth("/backup/history", &user.access_token).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The latest backup downloads as `id` with exactly `bytes`.
async fn assert_latest_backup(app: &TestApp, user: &TestUser, id: &str, bytes: &[u8]) {
    let r = within(
        Duration::from_secs(30),
        "GET /backup",
        app.req(Method::GET, "/backup")
            .bearer_auth(&user.access_token),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-backup-id"], id);
    assert_eq!(r.headers()["x-backup-checksum"], sha(bytes).as_str());
    let got = r.bytes().await.unwrap();
    assert_eq!(got.len(), bytes.len());
    assert_eq!(sha(&got), sha(bytes), "the backup's bytes are intact");
}

/// Starts `PUT {path}` with `headers` announcing `declared` bytes, sends `sent` of them, then
/// drops the connection without reading an answer.
async fn vanish_mid_body(
    app: &TestApp,
    path: &str,
    headers: &[(&str, String)],
    declared: usize,
    sent: usize,
) {
    let host = app.base.trim_start_matches("http://").to_owned();
    let mut tcp = TcpStream::connect(&host).await.unwrap();
    let mut head =
        format!("PUT /api/v1{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {declared}\r\n");
    for (k, v) in headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).await.unwrap();
    let chunk = bytes_of(64 * 1024, 42);
    let mut written = 0;
    while written < sent {
        let n = chunk.len().min(sent - written);
        tcp.write_all(&chunk[..n]).await.unwrap();
        written += n;
    }
    tcp.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(tcp); // gone: no more bytes, no FIN handshake awaited
}

/// Waits (up to 10 s) for the access-log line of request `id` and asserts it was answered 400
/// `request_aborted` with a warning and no error line.
async fn assert_logged_as_client_abort(app: &TestApp, id: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<Value> = app
            .stack
            .log()
            .lines()
            // wrangler dev wraps warnings and errors in a coloured `[WARNING]` frame.
            .filter_map(|l| serde_json::from_str::<Value>(&l[l.find('{')?..=l.rfind('}')?]).ok())
            .filter(|v| v["span"]["request_id"] == id)
            .collect();
        if let Some(access) = lines.iter().find(|v| v["message"] == "request") {
            assert_eq!(access["status"], 400, "{id}: {lines:?}");
            assert!(
                lines
                    .iter()
                    .any(|v| v["level"] == "WARN" && v["code"] == "request_aborted"),
                "{id}: {lines:?}"
            );
            assert!(
                lines.iter().all(|v| v["level"] != "ERROR"),
                "{id}: {lines:?}"
            );
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{id}: no access-log line yet"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts a slow streamed answer on a new socket of `user`, reads 3 tokens, then drops the
/// socket without a close frame; returns the model's probe.
async fn drop_socket_mid_stream(app: &TestApp, user: &TestUser) -> Arc<Probe> {
    let m = marker();
    let probe = app.stack.stream_model.script(
        &m,
        Script::new("note_agent", (0..40).map(|i| format!("w{i} ")))
            .delay(Duration::from_millis(100)),
    );
    let mut ws = open_socket(app, user).await;
    let request =
        json!({"message": format!("Tell me a long story {m}"), "execution_mode": "direct"});
    ws.send(Message::text(request.to_string())).await.unwrap();
    let mut tokens = 0;
    while tokens < 3 {
        let frame = next_frame(&mut ws).await.expect("frames before the drop");
        if frame["type"] == "token" {
            tokens += 1;
        }
        assert_ne!(frame["type"], "error", "{frame}");
    }
    drop(ws); // no close frame
    probe
}

async fn begin_upload(app: &TestApp, user: &TestUser) -> String {
    let r = app
        .req(Method::POST, "/backup/uploads")
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["upload_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

// One story: three vanishing clients, then everything re-verified.
#[allow(clippy::too_many_lines)]
pub async fn clients_vanishing_mid_upload_or_mid_stream_lose_nothing(app: TestApp) {
    let user = app.register("fault-vanish").await;
    subscribe(&app, &user, "power", 1).await;
    let first = bytes_of(300 * 1024 + 3, 5);
    let first_id = put_backup(&app, &user, &first, 1_700_000_000_000).await;

    // A raw backup upload that stops after 2 of its 6 MiB.
    let whole = bytes_of(6 * 1024 * 1024, 42);
    let auth = format!("Bearer {}", user.access_token);
    let (put_id, part_id) = (
        format!("vanish-{}", marker()),
        format!("vanish-{}", marker()),
    );
    vanish_mid_body(
        &app,
        "/backup",
        &[
            ("X-Request-Id", put_id.clone()),
            ("Authorization", auth.clone()),
            ("Content-Type", "application/octet-stream".to_owned()),
            ("X-Backup-Version", "3".to_owned()),
            ("X-Backup-Timestamp", "1700000100000".to_owned()),
            ("X-Backup-Checksum", sha(&whole)),
        ],
        whole.len(),
        2 * 1024 * 1024,
    )
    .await;

    // A multipart part that stops halfway.
    let upload = begin_upload(&app, &user).await;
    let part = bytes_of(200 * 1024, 9);
    vanish_mid_body(
        &app,
        &format!("/backup/uploads/{upload}/parts/1"),
        &[
            ("X-Request-Id", part_id.clone()),
            ("Authorization", auth.clone()),
            ("Content-Type", "application/octet-stream".to_owned()),
            ("X-Part-Checksum", sha(&part)),
        ],
        part.len(),
        part.len() / 2,
    )
    .await;

    // A socket that goes away in the middle of a streamed answer.
    let probe = drop_socket_mid_stream(&app, &user).await;

    // The worker logged both as the client going away (400 `request_aborted`, a warning), not
    // as its own failure.
    for id in [&put_id, &part_id] {
        assert_logged_as_client_abort(&app, id).await;
    }

    // The previous backup is the latest, whole; nothing partial reached the history.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_latest_backup(&app, &user, &first_id, &first).await;
    let h = backup_history(&app, &user).await;
    assert_eq!(h.len(), 1, "no partial backup: {h:?}");
    assert_eq!(h[0]["checksum"], sha(&first).as_str());

    // The interrupted upload can still be finished properly.
    let r = within(
        BOUND,
        "PUT part",
        app.req(Method::PUT, &format!("/backup/uploads/{upload}/parts/1"))
            .bearer_auth(&user.access_token)
            .header("Content-Type", "application/octet-stream")
            .header("X-Part-Checksum", sha(&part))
            .body(part.clone()),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = within(
        BOUND,
        "complete",
        app.req(Method::POST, &format!("/backup/uploads/{upload}/complete"))
            .bearer_auth(&user.access_token)
            .json(
                &json!({"version": 3, "timestamp": 1_700_000_200_000_i64, "checksum": sha(&part)}),
            ),
    )
    .await;
    let status = r.status();
    let b: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{b}");
    let second_id = b["id"].as_str().unwrap().to_owned();

    // The service answers normally: a new socket streams a whole answer.
    let mut ws = open_socket(&app, &user).await;
    let m2 = marker();
    app.stack
        .stream_model
        .script(&m2, Script::new("note_agent", ["Still ", "here."]));
    let done = stream_request(&mut ws, &m2).await.expect("an answer");
    assert_eq!(done["type"], "done", "{done}");
    assert_eq!(done["response"], "Still here.", "{done}");
    eprintln!(
        "the abandoned stream: {} of 40 tokens sent, disconnected: {:?}",
        probe.tokens_sent(),
        probe.disconnected_at().is_some()
    );

    // Everything stored, verified again.
    assert_latest_backup(&app, &user, &second_id, &part).await;
    let h = backup_history(&app, &user).await;
    let sums: Vec<&str> = h.iter().map(|b| b["checksum"].as_str().unwrap()).collect();
    assert_eq!(sums, [sha(&part).as_str(), sha(&first).as_str()], "{h:?}");
    let r = app
        .req(Method::DELETE, &format!("/backup/{second_id}"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_latest_backup(&app, &user, &first_id, &first).await;
}

/// Records and a backup a user stored, to verify after the restart.
struct Stored {
    records: Vec<(String, Vec<u8>)>,
    backup: (String, Vec<u8>),
}

async fn store_everything(app: &TestApp, user: &TestUser) -> Stored {
    let mut records = Vec::new();
    for i in 0..5u8 {
        let bytes = bytes_of(1000 + usize::from(i) * 4096, i);
        let r = app
            .req(Method::POST, "/storage/records")
            .bearer_auth(&user.access_token)
            .json(&json!({"table": "tasks", "blob": STANDARD.encode(&bytes), "checksum": sha(&bytes)}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let id = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        records.push((id, bytes));
    }
    // One updated, to have a second version whose first blob was replaced.
    let v2 = bytes_of(7777, 99);
    let r = app
        .req(Method::PUT, &format!("/storage/records/{}", records[0].0))
        .bearer_auth(&user.access_token)
        .json(&json!({"blob": STANDARD.encode(&v2), "checksum": sha(&v2)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    records[0].1 = v2;
    let backup = bytes_of(1024 * 1024 + 1, 77);
    let id = put_backup(app, user, &backup, 1_700_000_000_000).await;
    Stored {
        records,
        backup: (id, backup),
    }
}

async fn verify_everything(app: &TestApp, user: &TestUser, stored: &Stored) {
    for (id, bytes) in &stored.records {
        let r = within(
            BOUND,
            "GET record",
            app.req(Method::GET, &format!("/storage/records/{id}"))
                .bearer_auth(&user.access_token),
        )
        .await;
        assert_eq!(r.status(), 200, "record {id}");
        assert_eq!(r.headers()["x-checksum"], sha(bytes).as_str());
        assert_eq!(sha(&r.bytes().await.unwrap()), sha(bytes), "record {id}");
    }
    assert_latest_backup(app, user, &stored.backup.0, &stored.backup.1).await;
    assert_eq!(backup_history(app, user).await.len(), 1);
}

pub async fn a_wrangler_restart_on_the_same_state_loses_nothing(app: TestApp) {
    // A stack of its own (scripted servers, worker, persist directory), killed and restarted.
    let stack = Stack::start_with(&[("E2E_STACK", "restart")])
        .await
        .expect("a second stack");
    let own = TestApp::new(Arc::new(stack));
    let user = own.register("fault-restart").await;
    subscribe(&own, &user, "power", 1).await;
    let stored = store_everything(&own, &user).await;
    verify_everything(&own, &user, &stored).await;

    let TestApp { stack, .. } = own;
    let mut stack = Arc::into_inner(stack).expect("nobody else holds the second stack");
    let started = Instant::now();
    stack.restart().await.expect("wrangler dev restarts");
    eprintln!("wrangler dev restarted in {:?}", started.elapsed());
    let own = TestApp::new(Arc::new(stack));

    // Every checksum verified again; the session and its refresh token survived too.
    verify_everything(&own, &user, &stored).await;
    let r = own
        .post_json(
            "/auth/refresh",
            &json!({"refresh_token": user.refresh_token}),
        )
        .await;
    assert_eq!(r.status(), 200, "the refresh token survived the restart");
    let me = own.get_auth("/auth/me", &user.access_token).await;
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Value>().await.unwrap()["tier"], "power");
    drop(app);
}
