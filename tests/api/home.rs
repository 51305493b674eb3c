//! One home per user, end to end: live change notices to a user's other devices, the hop
//! budget of the main routes (read from the access log's `do_calls` / `d1_calls`), and quotas
//! that hold at their edge under concurrency (on a stack of its own with shrunken quotas).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

use crate::billing::subscribe;
use crate::harness::Stack;
use crate::helpers::{assert_error, random_bytes, sha, TestApp, TestUser};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `path` (`/sync/stream`, `/chat/stream`) as `user`.
pub async fn socket(app: &TestApp, user: &TestUser, path: &str) -> Socket {
    let url = format!("{}/api/v1{path}", app.base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().expect("a socket request");
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", user.access_token)).unwrap(),
    );
    connect_async(request).await.expect("the socket opens").0
}

/// What a socket did next within `within`.
#[derive(Debug)]
pub enum Next {
    /// A JSON text frame.
    Frame(Value),
    /// The server closed it, with this code.
    Closed(Option<u16>),
    /// Nothing.
    Quiet,
}

/// The next frame (or close) of `ws` within `within`.
/// The server ended `ws`'s session: an `unauthorized` error frame, then the close (4001).
pub async fn assert_socket_ended(ws: &mut Socket) {
    match next(ws, Duration::from_secs(5)).await {
        Next::Frame(f) => assert_eq!(f["code"], "unauthorized", "{f}"),
        other => panic!("an unauthorized frame, not {other:?}"),
    }
    match next(ws, Duration::from_secs(5)).await {
        Next::Closed(code) => assert!(code.is_none_or(|c| c == 4001), "{code:?}"),
        other => panic!("then the close, not {other:?}"),
    }
}

pub async fn next(ws: &mut Socket, within: Duration) -> Next {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Next::Quiet,
            Ok(None | Some(Err(_))) => return Next::Closed(None),
            Ok(Some(Ok(Message::Text(t)))) => {
                return Next::Frame(serde_json::from_str(&t).expect("JSON frames"))
            }
            Ok(Some(Ok(Message::Close(f)))) => return Next::Closed(f.map(|f| u16::from(f.code))),
            Ok(Some(Ok(_))) => {}
        }
    }
}

async fn create(app: &TestApp, user: &TestUser, table: &str, bytes: &[u8]) -> reqwest::Response {
    app.req(Method::POST, "/storage/records")
        .bearer_auth(&user.access_token)
        .header("Content-Type", "application/octet-stream")
        .header("X-Table", table)
        .header("X-Checksum", sha(bytes))
        .body(bytes.to_vec())
        .send()
        .await
        .expect("request")
}

/// A second login of `user`: another device, with a session of its own.
async fn second_device(app: &TestApp, user: &TestUser) -> TestUser {
    let r = app
        .req(Method::POST, "/auth/login")
        .header("CF-Connecting-IP", crate::helpers::unique_ip())
        .json(&json!({"email": user.email, "password": user.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    TestUser {
        access_token: b["access_token"].as_str().unwrap().to_owned(),
        refresh_token: b["refresh_token"].as_str().unwrap().to_owned(),
        ..user.clone()
    }
}

pub async fn a_second_device_hears_of_a_write_within_a_second(app: TestApp) {
    let phone = app.register("two-devices").await;
    subscribe(&app, &phone, "pro", 1).await;
    let laptop = second_device(&app, &phone).await;
    let mut ws = socket(&app, &laptop, "/sync/stream").await;
    ws.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    assert!(
        matches!(next(&mut ws, Duration::from_secs(5)).await, Next::Frame(f) if f["type"] == "pong"),
        "the socket is open"
    );
    let other = app.register("two-devices-stranger").await;
    subscribe(&app, &other, "pro", 1).await;

    let started = Instant::now();
    let r = create(&app, &phone, "notes", b"encrypted note").await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let Next::Frame(notice) = next(&mut ws, Duration::from_secs(1)).await else {
        panic!("no notice within a second");
    };
    let waited = started.elapsed();
    assert_eq!(notice["type"], "changed", "{notice}");
    assert_eq!(notice["kind"], "record", "{notice}");
    let cursor = notice["cursor"].as_str().unwrap();
    assert!(cursor.ends_with(&format!(".{id}")), "{notice}");
    eprintln!("notice after {waited:?}");
    // Pulling from just before the cursor's time finds the change.
    let since = cursor.split('.').next().unwrap().parse::<i64>().unwrap() - 1;
    let r = app
        .get_auth(
            &format!("/storage/records?updated_since={since}"),
            &laptop.access_token,
        )
        .await;
    let listed: Vec<Value> = r.json().await.unwrap();
    assert!(listed.iter().any(|m| m["id"] == id.as_str()));
    // Another user's writes are never announced here.
    assert_eq!(create(&app, &other, "notes", b"theirs").await.status(), 201);
    assert!(
        matches!(next(&mut ws, Duration::from_millis(700)).await, Next::Quiet),
        "nothing of another user's"
    );
    // Backups and vectors are announced too.
    let body = b"a backup";
    let r = app
        .req(Method::PUT, "/backup")
        .bearer_auth(&phone.access_token)
        .header("X-Backup-Version", "1")
        .header("X-Backup-Timestamp", "1")
        .header("X-Backup-Checksum", sha(body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let Next::Frame(notice) = next(&mut ws, Duration::from_secs(1)).await else {
        panic!("no backup notice");
    };
    assert_eq!(notice["kind"], "backup", "{notice}");
}

/// The `do_calls` and `d1_calls` of the access-log line of `request_id`.
async fn hops(app: &TestApp, request_id: &str) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = app.stack.log();
        let line = log
            .lines()
            .find(|l| l.contains(request_id) && l.contains("\"message\":\"request\""));
        if let Some(line) = line {
            let start = line.find('{').unwrap_or(0);
            let v: Value = serde_json::from_str(&line[start..]).expect("a JSON log line");
            return (
                v["do_calls"].as_u64().expect("do_calls"),
                v["d1_calls"].as_u64().expect("d1_calls"),
            );
        }
        assert!(
            Instant::now() < deadline,
            "no access log line for {request_id}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn rid(tag: &str) -> String {
    format!("hops-{tag}-{}", uuid::Uuid::new_v4().simple())
}

/// Sends `req` with a fresh request id; returns its status and its hops.
async fn measured(app: &TestApp, tag: &str, req: reqwest::RequestBuilder) -> (u16, (u64, u64)) {
    let id = rid(tag);
    let r = req.header("X-Request-Id", &id).send().await.unwrap();
    let status = r.status().as_u16();
    let _ = r.bytes().await;
    (status, hops(app, &id).await)
}

pub async fn the_main_routes_cost_one_home_call_and_no_d1_statement(app: TestApp) {
    let user = app.register("hops").await;
    subscribe(&app, &user, "pro", 1).await;
    let t = &user.access_token;
    // The first call of a fresh home loads its copy of the account from D1 once.
    let (_, first) = measured(
        &app,
        "warm",
        app.req(Method::GET, "/auth/me").bearer_auth(t),
    )
    .await;
    assert_eq!(first.0, 1);
    let one = (1, 0);
    let (s, h) = measured(&app, "me", app.req(Method::GET, "/auth/me").bearer_auth(t)).await;
    assert_eq!((s, h), (200, one), "GET /auth/me");
    let (s, h) = measured(&app, "usage", app.req(Method::GET, "/usage").bearer_auth(t)).await;
    assert_eq!((s, h), (200, one), "GET /usage");
    let bytes = random_bytes(1024);
    let (s, h) = measured(
        &app,
        "create",
        app.req(Method::POST, "/storage/records")
            .bearer_auth(t)
            .header("Content-Type", "application/octet-stream")
            .header("X-Table", "tasks")
            .header("X-Checksum", sha(&bytes))
            .body(bytes.clone()),
    )
    .await;
    assert_eq!(
        (s, h),
        (201, (2, 0)),
        "POST /storage/records: reserve, commit"
    );
    let listed: Vec<Value> = app
        .get_auth("/storage/records", t)
        .await
        .json()
        .await
        .unwrap();
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    let path = format!("/storage/records/{id}");
    let (s, h) = measured(&app, "get", app.req(Method::GET, &path).bearer_auth(t)).await;
    assert_eq!((s, h), (200, one), "GET /storage/records/{{id}}");
    let (s, h) = measured(
        &app,
        "list",
        app.req(Method::GET, "/storage/records").bearer_auth(t),
    )
    .await;
    assert_eq!((s, h), (200, one), "GET /storage/records");
    let etag = app.get_auth(&path, t).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let (s, h) = measured(
        &app,
        "update",
        app.req(Method::PUT, &path)
            .bearer_auth(t)
            .header("If-Match", etag)
            .header("Content-Type", "application/octet-stream")
            .header("X-Checksum", sha(&bytes))
            .body(bytes.clone()),
    )
    .await;
    assert_eq!(
        (s, h),
        (200, (2, 0)),
        "PUT /storage/records/{{id}} with If-Match"
    );
    let (s, h) = measured(
        &app,
        "delete",
        app.req(Method::DELETE, &path).bearer_auth(t),
    )
    .await;
    assert_eq!((s, h), (200, one), "DELETE /storage/records/{{id}}");
    backups_vectors_and_plans_cost_one_home_call(&app, t).await;
}

async fn backups_vectors_and_plans_cost_one_home_call(app: &TestApp, t: &str) {
    let one = (1, 0);
    let bytes = random_bytes(1024);
    let (s, h) = measured(
        app,
        "backup",
        app.req(Method::PUT, "/backup")
            .bearer_auth(t)
            .header("X-Backup-Version", "1")
            .header("X-Backup-Timestamp", "5")
            .header("X-Backup-Checksum", sha(&bytes))
            .body(bytes.clone()),
    )
    .await;
    assert_eq!((s, h), (200, (2, 0)), "PUT /backup");
    let (s, h) = measured(
        app,
        "history",
        app.req(Method::GET, "/backup/history").bearer_auth(t),
    )
    .await;
    assert_eq!((s, h), (200, one), "GET /backup/history");
    let blob = base64_of(b"vector payload");
    let (s, h) = measured(
        app,
        "vectors",
        app.req(Method::POST, "/storage/vectors/upsert")
            .bearer_auth(t)
            .json(
                &json!({"vectors": [{"id": "v1", "values": [0.5, 0.5], "blob": blob,
                                       "checksum": sha(b"vector payload")}]}),
            ),
    )
    .await;
    assert_eq!((s, h), (200, one), "POST /storage/vectors/upsert");
    let (s, h) = measured(
        app,
        "search",
        app.req(Method::POST, "/storage/vectors/search")
            .bearer_auth(t)
            .json(&json!({"vector": [0.5, 0.5]})),
    )
    .await;
    assert_eq!((s, h), (200, one), "POST /storage/vectors/search");
    let (s, h) = measured(
        app,
        "playbooks",
        app.req(Method::GET, "/plans/playbook").bearer_auth(t),
    )
    .await;
    assert_eq!((s, h), (200, one), "GET /plans/playbook");
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn put_backup(
    app: &TestApp,
    user: &TestUser,
    body: &[u8],
    checksum: &str,
    prune: bool,
) -> reqwest::Response {
    let mut req = app
        .req(Method::PUT, "/backup")
        .bearer_auth(&user.access_token)
        .header("X-Backup-Version", "1")
        .header("X-Backup-Timestamp", "7")
        .header("X-Backup-Checksum", checksum);
    if prune {
        req = req.header("X-Backup-Prune", "oldest");
    }
    req.body(body.to_vec()).send().await.unwrap()
}

async fn history_ids(app: &TestApp, user: &TestUser) -> Vec<String> {
    let h: Vec<Value> = app
        .get_auth("/backup/history", &user.access_token)
        .await
        .json()
        .await
        .unwrap();
    h.iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn begin(app: &TestApp, user: &TestUser) -> reqwest::Response {
    app.req(Method::POST, "/backup/uploads")
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap()
}

async fn part(
    app: &TestApp,
    user: &TestUser,
    upload: &str,
    n: u16,
    body: &[u8],
) -> reqwest::Response {
    app.req(Method::PUT, &format!("/backup/uploads/{upload}/parts/{n}"))
        .bearer_auth(&user.access_token)
        .header("X-Part-Checksum", sha(body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

/// Bytes per quota GB on the quota stack: pro has 50 000 bytes of cloud and of backup storage.
const QUOTA_GB: u64 = 10_000;

pub async fn quotas_hold_at_their_edge_and_open_parts_count_as_backup_bytes(_app: TestApp) {
    let stack = Stack::start_with(&[("DEV_BYTES_PER_GB", "10000")])
        .await
        .expect("the quota stack starts");
    let app = TestApp::new(Arc::new(stack));
    let limit = 5 * QUOTA_GB;

    // Ten writers of 9 000 bytes at once: exactly five fit in 50 000.
    let user = app.register("quota-edge").await;
    subscribe(&app, &user, "pro", 1).await;
    let blobs: Vec<Vec<u8>> = (0..10).map(|_| random_bytes(9_000)).collect();
    let answers = join_all(blobs.iter().map(|b| create(&app, &user, "t", b))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 403).count(),
        5,
        "{statuses:?}"
    );
    for r in answers.into_iter().filter(|r| r.status() == 403) {
        let body = assert_error(r, 403, "quota_exceeded").await;
        assert_eq!(body["error"]["details"]["limit"], limit);
    }
    let usage: Value = app
        .get_auth("/usage", &user.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usage["cloud_storage"]["used_bytes"], 45_000, "{usage}");
    assert_eq!(usage["cloud_storage"]["limit_bytes"], limit, "{usage}");
    open_parts_count_as_backup_bytes(&app).await;
    a_downgraded_user_stores_no_more_parts(&app).await;
    pruning_happens_only_once_the_new_backup_is_verified(&app).await;
}

/// Open uploads' parts count as backup bytes; at most four uploads are open.
async fn open_parts_count_as_backup_bytes(app: &TestApp) {
    let owner = app.register("quota-parts").await;
    subscribe(app, &owner, "pro", 1).await;
    let mut uploads = Vec::new();
    for _ in 0..4 {
        let r = begin(app, &owner).await;
        assert_eq!(r.status(), 201);
        uploads.push(
            r.json::<Value>().await.unwrap()["upload_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_error(begin(app, &owner).await, 409, "conflict").await;
    assert_eq!(
        part(app, &owner, &uploads[0], 1, &random_bytes(30_000))
            .await
            .status(),
        200
    );
    assert_error(
        part(app, &owner, &uploads[1], 1, &random_bytes(30_000)).await,
        403,
        "quota_exceeded",
    )
    .await;
    let body = random_bytes(25_000);
    assert_error(
        put_backup(app, &owner, &body, &sha(&body), false).await,
        403,
        "quota_exceeded",
    )
    .await;
    let usage: Value = app
        .get_auth("/usage", &owner.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        usage["backup"]["used_bytes"], 30_000,
        "an open part counts: {usage}"
    );
    let r = app
        .req(Method::DELETE, &format!("/backup/uploads/{}", uploads[0]))
        .bearer_auth(&owner.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        put_backup(app, &owner, &body, &sha(&body), false)
            .await
            .status(),
        200
    );
}

/// A downgraded user stores no more parts.
async fn a_downgraded_user_stores_no_more_parts(app: &TestApp) {
    let downgraded = app.register("quota-downgrade").await;
    let (sub, cus) = crate::billing::subscribe_with_ids(app, &downgraded, "pro").await;
    let r = begin(app, &downgraded).await;
    let upload = r.json::<Value>().await.unwrap()["upload_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        part(app, &downgraded, &upload, 1, b"first").await.status(),
        200
    );
    crate::billing::delete_subscription(app, &sub, &cus).await;
    let r = part(app, &downgraded, &upload, 2, b"second").await;
    assert_error(r, 403, "tier_required").await;
}

/// Pruning happens only once the new backup is verified.
async fn pruning_happens_only_once_the_new_backup_is_verified(app: &TestApp) {
    let pruner = app.register("quota-prune").await;
    subscribe(app, &pruner, "pro", 1).await;
    let (b1, b2) = (random_bytes(20_000), random_bytes(20_000));
    assert_eq!(
        put_backup(app, &pruner, &b1, &sha(&b1), false)
            .await
            .status(),
        200
    );
    assert_eq!(
        put_backup(app, &pruner, &b2, &sha(&b2), false)
            .await
            .status(),
        200
    );
    let before = history_ids(app, &pruner).await;
    let b3 = random_bytes(20_000);
    let r = put_backup(app, &pruner, &b3, &sha(b"not these bytes"), true).await;
    assert_error(r, 400, "checksum_mismatch").await;
    assert_eq!(
        history_ids(app, &pruner).await,
        before,
        "a corrupt upload prunes nothing"
    );
    assert_eq!(
        put_backup(app, &pruner, &b3, &sha(&b3), true)
            .await
            .status(),
        200
    );
    let after = history_ids(app, &pruner).await;
    assert_eq!(after.len(), 2);
    assert_eq!(after[1], before[0], "the newer of the old two stays");
    // A multipart backup whose whole checksum is wrong prunes nothing either.
    let r = begin(app, &pruner).await;
    let upload = r.json::<Value>().await.unwrap()["upload_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b4 = random_bytes(5_000);
    assert_eq!(part(app, &pruner, &upload, 1, &b4).await.status(), 200);
    let r = app
        .req(Method::POST, &format!("/backup/uploads/{upload}/complete"))
        .bearer_auth(&pruner.access_token)
        .json(&json!({"version": 1, "timestamp": 9, "checksum": sha(b"wrong"), "prune": "oldest"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "checksum_mismatch").await;
    assert_eq!(history_ids(app, &pruner).await, after);
}
