//! DESIGN.md rule 1, proven at rest: no user content in plaintext anywhere the worker keeps
//! state. D1 holds only auth, billing, metadata and marketplace data; blobs are opaque
//! client-encrypted bytes; chat context is used and dropped (Durable Object memory, never its
//! storage); logs carry ids and sizes, never content; passwords are stored as argon2id hashes.
//!
//! The test runs a whole session on a stack of its own (the shared stack's persist directory
//! holds every other test's data), with a unique canary string in every place user content can
//! enter: passwords (good, wrong, refused), every chat field and context field, the scripted
//! model's answers and tool calls (and an upstream error body), plan variables, the WebSocket
//! stream, records, a backup and vectors (the last three "client-encrypted": the canary XORed
//! with a key stream, so its plaintext is never sent). It then stops the stack and scans every
//! byte at rest — every file under the persist directory (D1, R2 metadata and blobs, Durable
//! Object SQLite storage, the local observability store, …, `-wal` files included), the
//! worker's log, and wrangler's own debug logs written during the run — for each canary in
//! plain text, standard and URL-safe base64 at the three alignments, lower- and upper-case
//! hex, and UTF-16LE, plus the canary's random core alone (a truncated copy).
//!
//! Positive controls, proving the scan sees stored bytes in each kind of store: canaries put
//! where the design *does* keep them, each of which must be found there and only there —
//! - a record stored with a canary in its *raw* bytes (a client that did not encrypt): in the
//!   R2 blob area (`v3/r2/adiuva-records/blobs/`);
//! - an email (auth data): in D1, and in the user's home (its copy of the account);
//! - a vector id (metadata): in the user's `UserHome` Durable Object's SQLite storage;
//! - a client's `X-Request-Id` (an id): in the worker's log (and the local observability store).
//!
//! Not covered: plugin manifests (public marketplace data by design, so no canaries there);
//! compressed copies (nothing in the local stack compresses); `user_profile` fields other than
//! `utc_offset_minutes` never reach the model (the agents do not read them) but are scanned too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::harness::stream_model::Script;
use crate::harness::Stack;
use crate::helpers::{script, sha, text, tool_call};
use crate::helpers::{unique_email, unique_ip, TestApp, TestUser};

/// One canary: a unique string planted in one place.
struct Canary {
    place: &'static str,
    text: String,
    /// The random core alone (catches a truncated copy).
    core: String,
    /// For a positive control: where it may be found at rest (area prefixes, see [`area`]),
    /// and where it must be found. `None`: nowhere.
    expect: Option<(&'static [&'static str], &'static str)>,
}

/// Every canary of the run, by place.
#[derive(Default)]
struct Canaries(Vec<Canary>);

impl Canaries {
    /// A new canary for `place`: `CANARY-<place>-<32 hex>` (letters, digits and `-` only, so
    /// JSON escaping never changes it).
    fn plant(&mut self, place: &'static str) -> String {
        let core = uuid::Uuid::new_v4().simple().to_string();
        let text = format!("CANARY-{place}-{core}");
        self.0.push(Canary {
            place,
            text: text.clone(),
            core,
            expect: None,
        });
        text
    }

    /// A positive control: a canary in a place the design keeps at rest (ids, auth data, a
    /// client's own bytes), which the scan must find in `must` and may find only in `allowed`.
    /// Lower case (emails are lower-cased by the server).
    fn control(
        &mut self,
        place: &'static str,
        allowed: &'static [&'static str],
        must: &'static str,
    ) -> String {
        let core = uuid::Uuid::new_v4().simple().to_string();
        let text = format!("canary-{place}-{core}");
        self.0.push(Canary {
            place,
            text: text.clone(),
            core,
            expect: Some((allowed, must)),
        });
        text
    }
}

/// The client's "encryption": `plain` XORed with SHA-256(key ‖ block counter). Enough that
/// no form of the plaintext survives in what is sent.
fn encrypt(key: &[u8], plain: &[u8]) -> Vec<u8> {
    plain
        .chunks(32)
        .enumerate()
        .flat_map(|(i, chunk)| {
            let mut h = Sha256::new();
            h.update(key);
            h.update((i as u64).to_le_bytes());
            let pad = h.finalize();
            chunk
                .iter()
                .zip(pad)
                .map(|(b, p)| b ^ p)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The byte strings the scan looks for, for one canary: `(form, needle)`.
fn forms(c: &Canary) -> Vec<(String, Vec<u8>)> {
    let t = c.text.as_bytes();
    let mut out: Vec<(String, Vec<u8>)> = vec![
        ("plain".into(), t.to_vec()),
        ("core".into(), c.core.as_bytes().to_vec()),
        ("hex".into(), hex::encode(t).into_bytes()),
        ("HEX".into(), hex::encode_upper(t).into_bytes()),
        (
            "utf16le".into(),
            c.text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        ),
    ];
    for (name, engine) in [("base64", STANDARD), ("base64url", URL_SAFE)] {
        for k in 0..3 {
            // The canary at offset k (mod 3) of an encoded stream: the groups wholly inside it.
            let mut data = vec![0u8; k];
            data.extend_from_slice(t);
            let enc = engine.encode(&data);
            let start = if k == 0 { 0 } else { 4 };
            let end = 4 * ((k + t.len()) / 3);
            out.push((format!("{name}@{k}"), enc.as_bytes()[start..end].to_vec()));
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|(_, n)| seen.insert(n.clone()));
    out
}

/// One canary found at rest.
struct Hit {
    place: &'static str,
    expect: Option<(&'static [&'static str], &'static str)>,
    form: String,
    file: PathBuf,
    offset: usize,
    around: String,
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => files_under(&p, out),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
}

/// Scans `files` for every form of every canary; returns the hits and the bytes read.
fn scan(files: &[PathBuf], canaries: &Canaries) -> (Vec<Hit>, u64) {
    let needles: Vec<(&Canary, String, Vec<u8>)> = canaries
        .0
        .iter()
        .flat_map(|c| forms(c).into_iter().map(move |(f, n)| (c, f, n)))
        .collect();
    // Needles by their first two bytes: one table look-up per byte of the file.
    let mut by_prefix: Vec<Vec<usize>> = vec![Vec::new(); 1 << 16];
    for (i, (_, _, n)) in needles.iter().enumerate() {
        by_prefix[usize::from(n[0]) << 8 | usize::from(n[1])].push(i);
    }
    let mut hits = Vec::new();
    let mut total = 0u64;
    for file in files {
        let Ok(data) = std::fs::read(file) else {
            continue;
        };
        total += data.len() as u64;
        for pos in 0..data.len().saturating_sub(1) {
            let candidates = &by_prefix[usize::from(data[pos]) << 8 | usize::from(data[pos + 1])];
            for &i in candidates {
                let (c, form, n) = &needles[i];
                if data[pos..].starts_with(n) {
                    let from = pos.saturating_sub(48);
                    let to = (pos + n.len() + 48).min(data.len());
                    hits.push(Hit {
                        place: c.place,
                        expect: c.expect,
                        form: form.clone(),
                        file: file.clone(),
                        offset: pos,
                        around: String::from_utf8_lossy(&data[from..to])
                            .chars()
                            .map(|ch| if ch.is_control() { '.' } else { ch })
                            .collect(),
                    });
                }
            }
        }
    }
    (hits, total)
}

/// Which part of the state a file belongs to, for the report.
fn area(file: &Path, persist: &Path) -> String {
    match file.strip_prefix(persist) {
        Ok(rel) => {
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            match parts.as_slice() {
                [v, kind, bucket, blobs, ..] if v == "v3" && kind == "r2" && blobs == "blobs" => {
                    format!("r2 blobs ({bucket})")
                }
                [v, kind, sub, ..] if v == "v3" => format!("{kind}/{sub}"),
                _ => rel.display().to_string(),
            }
        }
        Err(_) => "logs".to_owned(),
    }
}

/// A chat context with a canary in every field.
fn context(c: &mut Canaries, tag: &'static [&'static str; 7]) -> Value {
    json!({
        "user_profile": {"name": c.plant(tag[0]), "locale": "en-GB", "utc_offset_minutes": 60},
        "relevant_documents": [c.plant(tag[1])],
        "recent_tasks": [{"id": 1, "title": c.plant(tag[2]), "status": "todo"}],
        "conversation_history": [{"role": "user", "content": c.plant(tag[3])},
                                 {"role": "assistant", "content": "Noted."}],
        "projects": [{"id": 7, "name": c.plant(tag[4])}],
        "notes": [{"id": 3, "title": "n", "content": c.plant(tag[5])}],
        "checkpoints": [{"id": 2, "title": c.plant(tag[6]), "project_id": 7}],
    })
}

async fn send(
    app: &TestApp,
    token: &str,
    m: Method,
    path: &str,
    body: &Value,
) -> reqwest::Response {
    app.req(m, path)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request")
}

async fn register(app: &TestApp, email: &str, password: &str) -> TestUser {
    let email = email.to_owned();
    let r = app
        .req(Method::POST, "/auth/register")
        .header("CF-Connecting-IP", unique_ip())
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::CREATED, "register");
    let body: Value = r.json().await.expect("json");
    TestUser {
        email,
        password: password.to_owned(),
        access_token: body["access_token"].as_str().expect("access").to_owned(),
        refresh_token: body["refresh_token"].as_str().expect("refresh").to_owned(),
    }
}

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.req(Method::POST, "/auth/login")
        .header("CF-Connecting-IP", unique_ip())
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("request")
}

/// Passwords: registered, logged in with, mistyped, refused; tokens refreshed.
async fn auth_session(app: &TestApp, c: &mut Canaries) -> TestUser {
    // A positive control: an email is auth data, kept in D1 (and only there).
    // The account's email lives in D1 and in the copy of the account the user's home keeps.
    let email = format!(
        "{}@e2e.example.com",
        c.control("email", &["d1/", "do/adiuva-api-dev-UserHome"], "d1/")
    );
    let user = register(app, &email, &c.plant("password-registered")).await;
    // A positive control: a client's request id is an id, logged (and only logged).
    let r = app
        .req(Method::GET, "/auth/me")
        .bearer_auth(&user.access_token)
        .header(
            "X-Request-Id",
            c.control("request-id", &["logs", "observability/"], "logs"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(login(app, &user.email, &user.password).await.status(), 200);
    let r = login(app, &user.email, &c.plant("password-wrong")).await;
    assert_eq!(r.status(), 401, "a wrong password");
    let r = app
        .post_json(
            "/auth/refresh",
            &json!({"refresh_token": user.refresh_token}),
        )
        .await;
    assert_eq!(r.status(), 200, "refresh");
    let second = register(
        app,
        &unique_email("privacy"),
        &c.plant("password-second-user"),
    )
    .await;
    assert_eq!(
        login(app, &second.email, &second.password).await.status(),
        200
    );
    // Refused registrations: a duplicate, and a password too long (the canary inside it).
    let r = app
        .req(Method::POST, "/auth/register")
        .header("CF-Connecting-IP", unique_ip())
        .json(&json!({"email": user.email, "password": c.plant("password-duplicate")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "a duplicate");
    let long = format!("{}{}", c.plant("password-too-long"), "x".repeat(300));
    let r = app
        .req(Method::POST, "/auth/register")
        .header("CF-Connecting-IP", unique_ip())
        .json(&json!({"email": unique_email("privacy"), "password": long}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "a password too long");
    user
}

#[allow(clippy::too_many_lines)] // one scripted conversation after another
/// `POST /chat` (direct, with a tool call, and plan mode), `POST /plans/run-step` twice, and a
/// chat whose upstream fails with a canary in its error body.
async fn chat_session(app: &TestApp, user: &TestUser, c: &mut Canaries) {
    let token = &user.access_token;
    // Direct: the classifier, a tool call, then an answer echoing the request's canaries.
    let msg = c.plant("chat-message");
    let first_ctx = c.0.len();
    let ctx = context(
        c,
        &[
            "ctx-user-profile",
            "ctx-relevant-documents",
            "ctx-recent-tasks",
            "ctx-conversation-history",
            "ctx-projects",
            "ctx-notes",
            "ctx-checkpoints",
        ],
    );
    let tool_title = c.plant("model-tool-call-args");
    let answer = format!(
        "Done: {} (you said {msg}; doc {})",
        c.plant("model-answer"),
        ctx["relevant_documents"][0].as_str().unwrap()
    );
    script(
        app,
        &msg,
        "task_agent",
        tool_call(
            "create_task",
            &json!({"title": tool_title, "priority": "high"}),
        ),
        Some(text(&answer)),
    )
    .await;
    let r = send(
        app,
        token,
        Method::POST,
        "/chat",
        &json!({"message": format!("Remind me: {msg}"), "context": ctx}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["response"], answer.as_str(), "{body}");
    assert_eq!(body["actions"][0]["data"]["title"], tool_title.as_str());
    // The same context to each agent that reads it through a tool, so every field is used.
    for (intent, tool, args, place) in [
        (
            "task_agent",
            "list_tasks",
            json!({}),
            "chat-message-task-agent",
        ),
        (
            "project_agent",
            "list_projects",
            json!({}),
            "chat-message-project-agent",
        ),
        (
            "note_agent",
            "list_notes",
            json!({}),
            "chat-message-note-agent",
        ),
        (
            "checkpoint_agent",
            "list_checkpoints",
            json!({"project_id": 7}),
            "chat-message-checkpoint-agent",
        ),
    ] {
        let m = c.plant(place);
        script(
            app,
            &m,
            intent,
            tool_call(tool, &args),
            Some(text(&format!(
                "Listed: {}",
                c.plant("model-answer-after-list")
            ))),
        )
        .await;
        let body = json!({"message": m, "context": ctx});
        let r = send(app, token, Method::POST, "/chat", &body).await;
        assert_eq!(r.status(), 200, "{intent}");
    }
    // The context was used: every field's canary reached the model (and was then dropped),
    // but `user_profile`, of which the agents read only `utc_offset_minutes`.
    let to_model: String = app
        .stack
        .openai
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    let unused: Vec<&str> = c.0[first_ctx..first_ctx + 7]
        .iter()
        .filter(|k| !to_model.contains(&k.text))
        .map(|k| k.place)
        .collect();
    assert_eq!(
        unused,
        ["ctx-user-profile"],
        "context fields never sent to the model"
    );

    // Plan mode, then one of its steps with canary variables.
    let plan_msg = c.plant("plan-message");
    let note = c.plant("model-note-content");
    script(
        app,
        &plan_msg,
        "task_agent, note_agent",
        tool_call("create_note", &json!({"title": "Summary", "content": note})),
        Some(text(&format!("Saved {}", c.plant("model-step-answer")))),
    )
    .await;
    let r = send(
        app,
        token,
        Method::POST,
        "/chat",
        &json!({"message": plan_msg, "execution_mode": "plan",
                "context": {"notes": [{"id": 1, "content": c.plant("plan-ctx-note")}]}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let plan: Value = r.json().await.unwrap();
    assert_eq!(plan["id"], "chat.task_agent+note_agent", "{plan}");
    let r = send(
        app,
        token,
        Method::POST,
        "/plans/run-step",
        &json!({"plan_id": "chat.task_agent+note_agent", "step_index": 1,
                "variables": {"message": plan_msg, "previous_output": c.plant("plan-previous-output")}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["actions"][0]["data"]["content"], note.as_str(), "{out}");

    // A playbook step with canary variables.
    let email_body = c.plant("playbook-email-body");
    script(
        app,
        &email_body,
        "task_agent",
        tool_call(
            "create_task",
            &json!({"title": c.plant("playbook-tool-args")}),
        ),
        Some(text(&c.plant("playbook-answer"))),
    )
    .await;
    let r = send(
        app,
        token,
        Method::POST,
        "/plans/run-step",
        &json!({"plan_id": "create_task_from_email", "step_index": 0,
                "variables": {"email_subject": c.plant("playbook-email-subject"),
                              "email_body": email_body}}),
    )
    .await;
    assert_eq!(r.status(), 200);

    // An upstream that fails with a canary in its error body (retried, then a 503).
    let failing = c.plant("chat-message-upstream-500");
    let upstream_error = c.plant("upstream-error-body");
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains(failing.as_str()))
        .respond_with(ResponseTemplate::new(500).set_body_string(upstream_error))
        .with_priority(1)
        .mount(&app.stack.openai)
        .await;
    let r = send(
        app,
        token,
        Method::POST,
        "/chat",
        &json!({"message": failing}),
    )
    .await;
    assert_eq!(r.status(), 503);
}

/// A streamed chat over `GET /chat/stream`, read to its `done` frame.
async fn stream_session(app: &TestApp, user: &TestUser, c: &mut Canaries) {
    let msg = c.plant("ws-message");
    let ctx = context(
        c,
        &[
            "ws-ctx-user-profile",
            "ws-ctx-relevant-documents",
            "ws-ctx-recent-tasks",
            "ws-ctx-conversation-history",
            "ws-ctx-projects",
            "ws-ctx-notes",
            "ws-ctx-checkpoints",
        ],
    );
    let streamed = c.plant("ws-model-tokens");
    let (head, tail) = streamed.split_at(streamed.len() / 2);
    let tokens = [
        "Here ",
        "it ",
        "is: ",
        head,
        tail,
        " — echoing ",
        msg.as_str(),
    ];
    let script = Script::new("note_agent", tokens);
    let probe = app.stack.stream_model.script(&msg, script.clone());
    let url = format!(
        "{}/api/v1/chat/stream",
        app.base.replacen("http://", "ws://", 1)
    );
    let mut request = url.into_client_request().unwrap();
    let auth = HeaderValue::from_str(&format!("Bearer {}", user.access_token)).unwrap();
    request.headers_mut().insert("authorization", auth);
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the socket opens");
    let frame = json!({"message": msg, "execution_mode": "direct", "context": ctx});
    ws.send(Message::text(frame.to_string())).await.unwrap();
    let mut text_seen = String::new();
    let done = loop {
        let next = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket stays open")
            .expect("no socket error");
        let Message::Text(t) = next else { continue };
        let f: Value = serde_json::from_str(&t).expect("JSON frames");
        match f["type"].as_str() {
            Some("token") => text_seen.push_str(f["text"].as_str().unwrap_or_default()),
            Some("done" | "error") => break f,
            _ => {}
        }
    };
    assert_eq!(done["type"], "done", "{done}");
    assert_eq!(text_seen, script.text());
    assert_eq!(probe.streams(), 1);
    let _ = ws.close(None).await;
}

#[allow(clippy::too_many_lines)] // one storage call after another
/// Records (JSON and raw, created and updated), the positive control, a backup, vectors.
async fn storage_session(app: &TestApp, user: &TestUser, c: &mut Canaries) {
    let token = &user.access_token;
    let key = uuid::Uuid::new_v4().into_bytes();
    let enc = |s: &str| encrypt(&key, format!("{{\"title\":\"{s}\"}}").as_bytes());

    let create = |bytes: Vec<u8>, table: &'static str| {
        let body =
            json!({"table": table, "blob": STANDARD.encode(&bytes), "checksum": sha(&bytes)});
        async move {
            let r = send(app, token, Method::POST, "/storage/records", &body).await;
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let id = create(enc(&c.plant("record-json")), "notes").await;
    let v2 = enc(&c.plant("record-json-updated"));
    let r = send(
        app,
        token,
        Method::PUT,
        &format!("/storage/records/{id}"),
        &json!({"blob": STANDARD.encode(&v2), "checksum": sha(&v2)}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let raw = enc(&c.plant("record-raw-body"));
    let r = app
        .req(Method::POST, "/storage/records")
        .bearer_auth(token)
        .header("Content-Type", "application/octet-stream")
        .header("X-Table", "tasks")
        .header("X-Checksum", sha(&raw))
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let raw_id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .get_auth(&format!("/storage/records/{raw_id}"), token)
        .await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), raw.as_slice());
    let r = app.get_auth("/storage/records", token).await;
    assert_eq!(r.status(), 200);

    // The main positive control: a record whose raw bytes carry a canary (a client that did
    // not encrypt). The scan must find it in the R2 blob area, and only there.
    let records = &["r2 blobs (adiuva-records)"];
    let control = format!(
        "{{\"title\":\"{}\"}}",
        c.control("record-raw-bytes", records, records[0])
    );
    create(control.into_bytes(), "notes").await;

    // A backup.
    let backup = enc(&c.plant("backup-bytes"));
    let r = app
        .req(Method::PUT, "/backup")
        .bearer_auth(token)
        .header("Content-Type", "application/octet-stream")
        .header("X-Backup-Version", "3")
        .header("X-Backup-Timestamp", "1795000000000")
        .header("X-Backup-Checksum", sha(&backup))
        .body(backup.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app.get_auth("/backup", token).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), backup.as_slice());

    // Vectors: with values, and one without (its vector derived from the blob).
    let item = |id: &str, values: Option<[f32; 3]>, blob: &[u8]| {
        let mut v = json!({"id": id, "blob": STANDARD.encode(blob), "checksum": sha(blob)});
        if let Some(values) = values {
            v["values"] = json!(values);
        }
        v
    };
    let b1 = enc(&c.plant("vector-blob-1"));
    let b2 = enc(&c.plant("vector-blob-2"));
    // A positive control: a vector id (metadata) lives in the user's home, and only there.
    let vector_id = c.control(
        "vector-id",
        &["do/adiuva-api-dev-UserHome"],
        "do/adiuva-api-dev-UserHome",
    );
    let r = send(
        app,
        token,
        Method::POST,
        "/storage/vectors/upsert",
        &json!({"vectors": [item("doc-1", Some([0.0, 1.0, 0.0]), &b1),
                            item(&vector_id, Some([1.0, 0.0, 0.0]), &b2)]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = send(
        app,
        token,
        Method::POST,
        "/storage/vectors/search",
        &json!({"vector": [0.9, 0.1, 0.0], "top_k": 2}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let hits: Value = r.json().await.unwrap();
    assert_eq!(hits["results"][0]["blob"], STANDARD.encode(&b2).as_str());

    // A second user (no values: 32-dimension derived vectors) searched by blob.
    let b3 = enc(&c.plant("vector-blob-derived"));
    let other = register(app, &unique_email("privacy"), "a plain password").await;
    app.subscribe_as_customer(&other, "power", None).await;
    let r = send(
        app,
        &other.access_token,
        Method::POST,
        "/storage/vectors/upsert",
        &json!({"vectors": [item("doc-3", None, &b3)]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = send(
        app,
        &other.access_token,
        Method::POST,
        "/storage/vectors/search",
        &json!({"query_blob": STANDARD.encode(&b3), "top_k": 1}),
    )
    .await;
    assert_eq!(r.status(), 200);
}

/// wrangler's own debug logs (`~/.config/.wrangler/logs`) written since `since`.
fn wrangler_debug_logs(since: SystemTime) -> Vec<PathBuf> {
    let Some(home) = std::env::var_os("HOME") else {
        return Vec::new();
    };
    let dir = PathBuf::from(home).join(".config/.wrangler/logs");
    let mut all = Vec::new();
    files_under(&dir, &mut all);
    all.into_iter()
        .filter(|p| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since)
        })
        .collect()
}

pub async fn no_user_content_is_at_rest_in_plaintext_anywhere_after_a_full_session(
    _shared: TestApp,
) {
    let started = SystemTime::now() - Duration::from_secs(1);
    // A stack of its own (and, with an extra setting, a log of its own).
    let stack = Stack::start_with(&[("E2E_STACK", "privacy")])
        .await
        .expect("the privacy stack starts");
    let persist = stack.persist_dir.clone();
    let log_path = stack.log_path.clone();
    let app = TestApp::new(Arc::new(stack));
    let mut c = Canaries::default();

    let user = auth_session(&app, &mut c).await;
    app.subscribe_as_customer(&user, "power", None).await;
    chat_session(&app, &user, &mut c).await;
    stream_session(&app, &user, &mut c).await;
    storage_session(&app, &user, &mut c).await;

    // Stop the worker (the whole process group) so everything is flushed, then scan.
    let TestApp { stack, .. } = app;
    drop(Arc::into_inner(stack).expect("no other handle on the privacy stack"));

    let mut files = Vec::new();
    files_under(&persist, &mut files);
    files.push(log_path.clone());
    files.extend(wrangler_debug_logs(started));
    let (hits, total) = scan(&files, &c);

    let mut by_area: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for f in &files {
        let e = by_area.entry(area(f, &persist)).or_default();
        e.0 += 1;
        e.1 += std::fs::metadata(f).map_or(0, |m| m.len());
    }
    let needles: usize = c.0.iter().map(|k| forms(k).len()).sum();
    eprintln!(
        "==> privacy scan: {} canaries ({} controls) in {needles} byte forms; {} files, {total} bytes (persist dir {}, log {})",
        c.0.len(),
        c.0.iter().filter(|k| k.expect.is_some()).count(),
        files.len(),
        persist.display(),
        log_path.display()
    );
    for (a, (n, bytes)) in &by_area {
        eprintln!("    {a:<48} {n:>4} files {bytes:>10} bytes");
    }

    let in_area = |h: &Hit, prefix: &str| area(&h.file, &persist).starts_with(prefix);
    let (leaks, allowed): (Vec<&Hit>, Vec<&Hit>) = hits.iter().partition(|h| match h.expect {
        None => true,
        Some((allowed, _)) => !allowed.iter().any(|a| in_area(h, a)),
    });
    let mut controls: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for h in &allowed {
        *controls
            .entry((h.place, area(&h.file, &persist)))
            .or_default() += 1;
    }
    for ((place, a), n) in &controls {
        eprintln!("    control {place:<18} found {n:>3}x in {a} (expected)");
    }
    for h in &leaks {
        eprintln!(
            "    LEAK {} ({}) in {} at offset {}: …{}…",
            h.place,
            h.form,
            h.file.display(),
            h.offset,
            h.around
        );
    }
    if leaks.is_empty() {
        eprintln!("    no canary anywhere else");
    }
    let unseen: Vec<String> =
        c.0.iter()
            .filter_map(|k| {
                let (_, must) = k.expect?;
                let seen = hits
                    .iter()
                    .any(|h| h.place == k.place && h.form == "plain" && in_area(h, must));
                (!seen).then(|| format!("{} (expected in {must})", k.place))
            })
            .collect();
    assert!(
        unseen.is_empty(),
        "positive control(s) not found where the design keeps them, so the scan missed stored bytes: {}",
        unseen.join("; ")
    );
    assert!(
        leaks.is_empty(),
        "{} canary hit(s) at rest where no user content may be: {}",
        leaks.len(),
        leaks
            .iter()
            .map(|h| format!(
                "{} ({}) in {} @{}: …{}…",
                h.place,
                h.form,
                h.file.display(),
                h.offset,
                h.around
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    // Clean: the persist directory is not needed any more.
    let _ = std::fs::remove_dir_all(&persist);
}
