//! Account deletion end to end (`DELETE /auth/account`): the account stops working at once, its
//! data is erased everywhere the worker keeps state (proven by a scan of every local D1, R2 and
//! Durable Object file for the email and the user id), a crash mid-way is finished by the cron,
//! and the attacks: another user's token, wrong passwords and codes, a replayed token.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::accounts::{totp, with_two_factor};
use crate::harness::Stack;
use crate::helpers::{assert_error, sha, state_contains, unique_ip, user_id_of, TestApp, TestUser};
use crate::home::{assert_socket_ended, socket};
use crate::plugins::{
    installed, manifest, mount_cards, mount_intent, package, power_user, publish, rated,
};

pub(crate) async fn delete_account(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.req(Method::DELETE, "/auth/account")
        .bearer_auth(token)
        .header("CF-Connecting-IP", unique_ip())
        .json(body)
        .send()
        .await
        .expect("request")
}

async fn login_status(app: &TestApp, email: &str, password: &str) -> StatusCode {
    app.req(Method::POST, "/auth/login")
        .header("CF-Connecting-IP", unique_ip())
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("request")
        .status()
}

async fn rows(app: &TestApp, sql: &str) -> Vec<Value> {
    let out = app.stack.d1_execute(sql).await.expect("d1 query");
    out[0]["results"].as_array().cloned().unwrap_or_default()
}

async fn subscription_of(app: &TestApp, user: &str) -> String {
    let r = rows(
        app,
        &format!("SELECT stripe_subscription_id AS s FROM subscriptions WHERE user_id = '{user}'"),
    )
    .await;
    r[0]["s"].as_str().expect("a subscription").to_owned()
}

/// Stripe answers the immediate cancellation of `sub` (after `failures` answers of 500).
pub(crate) async fn mount_cancel(app: &TestApp, sub: &str, failures: u64) {
    if failures > 0 {
        Mock::given(method("DELETE"))
            .and(path(format!("/v1/subscriptions/{sub}")))
            .respond_with(ResponseTemplate::new(500).set_body_json(
                json!({"error": {"type": "api_error", "message": "scripted outage"}}),
            ))
            .up_to_n_times(failures)
            .with_priority(1)
            .mount(&app.stack.stripe)
            .await;
    }
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/subscriptions/{sub}")))
        .and(header(
            "idempotency-key",
            format!("account-deletion:{sub}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": sub, "object": "subscription", "status": "canceled"})),
        )
        .with_priority(2)
        .mount(&app.stack.stripe)
        .await;
}

async fn create_record(app: &TestApp, user: &TestUser, bytes: &[u8]) {
    let r = app
        .req(Method::POST, "/storage/records")
        .bearer_auth(&user.access_token)
        .json(&json!({"table": "notes", "blob": STANDARD.encode(bytes), "checksum": sha(bytes)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "record");
}

async fn create_backup(app: &TestApp, user: &TestUser, bytes: &[u8]) {
    let r = app
        .req(Method::PUT, "/backup")
        .bearer_auth(&user.access_token)
        .header("Content-Type", "application/octet-stream")
        .header("X-Backup-Version", "3")
        .header("X-Backup-Timestamp", "1700000000000")
        .header("X-Backup-Checksum", sha(bytes))
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "backup: {}", r.status());
}

/// Opens a multipart upload and stores one part; leaves it open.
async fn open_upload(app: &TestApp, user: &TestUser, bytes: &[u8]) {
    let r = app
        .req(Method::POST, "/backup/uploads")
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "upload");
    let started: Value = r.json().await.unwrap();
    let id = started["upload_id"].as_str().unwrap();
    let r = app
        .req(Method::PUT, &format!("/backup/uploads/{id}/parts/1"))
        .bearer_auth(&user.access_token)
        .header("Content-Type", "application/octet-stream")
        .header("X-Part-Checksum", sha(bytes))
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "part");
}

async fn upsert_vector(app: &TestApp, user: &TestUser, id: &str, blob: &[u8]) {
    let r = app
        .req(Method::POST, "/storage/vectors/upsert")
        .bearer_auth(&user.access_token)
        .json(
            &json!({"vectors": [{"id": id, "blob": STANDARD.encode(blob), "checksum": sha(blob)}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "vectors");
}

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

/// Where a needle was found: the file (relative to the persist dir), the table for a SQLite
/// database's live content, and some context.
struct Hit {
    file: String,
    table: Option<String>,
    text: String,
}

impl std::fmt::Display for Hit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.table {
            Some(t) => write!(f, "{} (table {t}): {}", self.file, self.text),
            None => write!(f, "{}: {}", self.file, self.text),
        }
    }
}

fn context(data: &[u8], needle: &[u8]) -> Option<String> {
    let pos = data.windows(needle.len()).position(|w| w == needle)?;
    let from = pos.saturating_sub(40);
    let to = (pos + needle.len() + 40).min(data.len());
    Some(format!(
        "{} …{}…",
        String::from_utf8_lossy(needle),
        String::from_utf8_lossy(&data[from..to])
            .chars()
            .map(|c| if c.is_control() { '.' } else { c })
            .collect::<String>()
    ))
}

/// Every text and blob value of every table of the SQLite database `file` (read from a copy
/// with its write-ahead log, so committed but not checkpointed rows count): the database's live
/// content. Bytes of deleted rows that SQLite leaves in freed pages are not content; the
/// README says so.
fn sqlite_values(file: &Path) -> rusqlite::Result<Vec<(String, Vec<u8>)>> {
    let dir = std::env::temp_dir().join(format!("deletion-scan-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let copy = dir.join("db.sqlite");
    std::fs::copy(file, &copy).expect("copy of a database");
    let wal = PathBuf::from(format!("{}-wal", file.display()));
    if wal.exists() {
        std::fs::copy(&wal, dir.join("db.sqlite-wal")).expect("copy of a write-ahead log");
    }
    let out = (|| {
        let db = rusqlite::Connection::open(&copy)?;
        let tables: Vec<String> = db
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut values = Vec::new();
        for t in tables {
            let mut st = db.prepare(&format!("SELECT * FROM \"{}\"", t.replace('"', "\"\"")))?;
            let n = st.column_count();
            let mut rows = st.query([])?;
            while let Some(row) = rows.next()? {
                for i in 0..n {
                    match row.get_ref(i)? {
                        rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                            values.push((t.clone(), b.to_vec()));
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(values)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// Every place of the local D1, R2 and Durable Object state that holds one of `needles`: the
/// live content of every SQLite database (D1, R2's metadata, every object's storage), and the
/// raw bytes of every other file (R2's blobs).
fn scan_state(persist: &Path, needles: &[String]) -> Vec<Hit> {
    let mut files = Vec::new();
    for area in ["v3/d1", "v3/r2", "v3/do"] {
        files_under(&persist.join(area), &mut files);
    }
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().contains("do/adiuva-api-dev-UserHome")),
        "the scan sees the homes' storage: {files:?}"
    );
    let mut hits = Vec::new();
    for f in &files {
        let name = f.to_string_lossy();
        // A log or shared-memory file is read with its database.
        if name.ends_with("-wal") || name.ends_with("-shm") {
            continue;
        }
        let Ok(data) = std::fs::read(f) else { continue };
        let rel = f.strip_prefix(persist).unwrap_or(f).display().to_string();
        if data.starts_with(b"SQLite format 3\0") {
            let values = sqlite_values(f)
                .unwrap_or_else(|e| panic!("{rel} is a database the scan cannot read: {e}"));
            for (table, v) in &values {
                for n in needles {
                    if let Some(text) = context(v, n.as_bytes()) {
                        hits.push(Hit {
                            file: rel.clone(),
                            table: Some(table.clone()),
                            text,
                        });
                    }
                }
            }
        } else {
            for n in needles {
                if let Some(text) = context(&data, n.as_bytes()) {
                    hits.push(Hit {
                        file: rel.clone(),
                        table: None,
                        text,
                    });
                }
            }
        }
    }
    hits
}

/// Whether every multipart upload miniflare remembers under `prefix` in the R2 database
/// `file` is aborted (its `state` 2; its parts are deleted on abort).
fn only_aborted_uploads(file: &Path, prefix: &str) -> bool {
    let db =
        rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the R2 database opens");
    let states: Vec<i64> = db
        .prepare("SELECT state FROM _mf_multipart_uploads WHERE substr(key, 1, length(?1)) = ?1")
        .and_then(|mut st| {
            st.query_map([prefix], |r| r.get(0))?
                .collect::<Result<Vec<i64>, _>>()
        })
        .expect("the uploads table reads");
    !states.is_empty() && states.iter().all(|s| *s == 2)
}

/// Whether a hit is one of the README's exceptions ("What survives, and why"), all of which
/// name the account by its id only, never its email or its content, and none of which exists
/// in production's stores as such:
/// - a rate limiter's counter (the bucket names the account; the limiter deletes it once
///   drained, at most its rule's window later);
/// - the local emulator's index of Durable Object names (`metadata.sqlite`: the home and the
///   limiters are addressed by a name holding the id);
/// - the local emulator's record of an *aborted* multipart upload (miniflare keeps the key with
///   `state` 2 once its parts are deleted; R2 forgets an aborted upload).
fn explained(persist: &Path, hit: &Hit, id: &str) -> bool {
    if !hit.text.starts_with(id) {
        return false;
    }
    let limiter = hit.file.starts_with("v3/do/adiuva-api-dev-RateLimiter/");
    let names = hit.file.starts_with("v3/do/") && hit.file.ends_with("/metadata.sqlite");
    let aborted = hit.file.starts_with("v3/r2/")
        && hit.table.as_deref() == Some("_mf_multipart_uploads")
        && only_aborted_uploads(&persist.join(&hit.file), &format!("{id}/"));
    limiter || names || aborted
}

#[allow(clippy::too_many_lines)] // one scenario, step by step
pub async fn deleting_an_account_stops_it_at_once_and_leaves_nothing_of_it_at_rest(_app: TestApp) {
    let stack = Stack::start_with(&[("E2E_STACK", "deletion")])
        .await
        .expect("the deletion stack starts");
    let app = TestApp::new(Arc::new(stack));
    let mark = uuid::Uuid::new_v4().simple().to_string();

    // Someone else's paid plugin, which the victim buys and rates: the developer's revenue.
    let (developer, dev_customer) = power_user(&app, "deletion-dev").await;
    let paid = publish(
        &app,
        &developer,
        manifest(&format!("Paid Thing {mark}"), "1.0.0", "analytics", 1999),
        &package("paid-thing"),
    )
    .await;
    let (victim, customer) = power_user(&app, "deletion-victim").await;
    let victim_id = user_id_of(&victim);
    mount_cards(&app, &customer, &[&format!("pm_{mark}")]).await;
    mount_intent(
        &app,
        &customer,
        200,
        json!({"id": format!("pi_{mark}"), "object": "payment_intent", "status": "succeeded"}),
    )
    .await;
    assert_eq!(installed(&app, &victim, &paid).await["charged_cents"], 1999);
    rated(&app, &victim, &paid, 5).await;
    // The victim's own plugin, installed by the developer.
    let own = publish(
        &app,
        &victim,
        manifest(&format!("Victim Tool {mark}"), "1.0.0", "productivity", 0),
        &package("victim-tool"),
    )
    .await;
    installed(&app, &developer, &own).await;
    // Content everywhere: a record, a backup, an open multipart upload, a vector.
    let record = format!("record-bytes-{mark}");
    create_record(&app, &victim, record.as_bytes()).await;
    let backup = format!("backup-bytes-{mark}");
    create_backup(&app, &victim, backup.as_bytes()).await;
    let part = format!("open-part-bytes-{mark}");
    open_upload(&app, &victim, part.as_bytes()).await;
    let vector_id = format!("vector-{mark}");
    upsert_vector(
        &app,
        &victim,
        &vector_id,
        format!("vector-blob-{mark}").as_bytes(),
    )
    .await;
    let (secret, _codes) = with_two_factor(&app, &victim).await;
    let sub = subscription_of(&app, &victim_id).await;
    mount_cancel(&app, &sub, 0).await;
    let mut ws = socket(&app, &victim, "/sync/stream").await;

    // Another user's token with the victim's password deletes nothing.
    let other = app.register("deletion-other").await;
    let r = delete_account(
        &app,
        &other.access_token,
        &json!({"password": victim.password}),
    )
    .await;
    assert_error(r, 401, "unauthorized").await;
    assert_eq!(
        app.get_auth("/auth/me", &victim.access_token)
            .await
            .status(),
        200
    );
    // Two-factor on: the password alone is not enough, nor a wrong code.
    let r = delete_account(
        &app,
        &victim.access_token,
        &json!({"password": victim.password}),
    )
    .await;
    let body = assert_error(r, 422, "validation_failed").await;
    assert!(body.to_string().contains("\"code\""), "{body}");
    let r = delete_account(
        &app,
        &victim.access_token,
        &json!({"password": victim.password, "code": "000000"}),
    )
    .await;
    assert_error(r, 401, "unauthorized").await;
    let r = delete_account(
        &app,
        &victim.access_token,
        &json!({"password": "not the password", "code": totp(&secret, 1)}),
    )
    .await;
    assert_error(r, 401, "unauthorized").await;
    assert_eq!(
        app.get_auth("/auth/me", &victim.access_token)
            .await
            .status(),
        200
    );

    let r = delete_account(
        &app,
        &victim.access_token,
        &json!({"password": victim.password, "code": totp(&secret, 1)}),
    )
    .await;
    assert_eq!(r.status(), 202);
    let accepted: Value = r.json().await.unwrap();
    assert_eq!(accepted, json!({"ok": true, "completed": true}));

    // At once: the socket closed, the token (replayed) and the refresh token refused, login 401.
    assert_socket_ended(&mut ws).await;
    assert_error(
        app.get_auth("/auth/me", &victim.access_token).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        app.get_auth("/storage/records", &victim.access_token).await,
        401,
        "unauthorized",
    )
    .await;
    let r = app
        .post_json(
            "/auth/refresh",
            &json!({"refresh_token": victim.refresh_token}),
        )
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        login_status(&app, &victim.email, &victim.password).await,
        401
    );
    // Stripe: one immediate cancellation with its idempotency key.
    let sent = app.stripe_cancellations(&sub).await;
    assert_eq!(sent.len(), 1, "one cancellation");
    assert_eq!(
        sent[0].headers["idempotency-key"],
        format!("account-deletion:{sub}").as_str()
    );

    // What stays: the purchase the developer is paid for, under a random id with no account
    // data; the victim's plugin, delisted, under the same id.
    let revenue = rows(
        &app,
        &format!("SELECT user_id, amount_cents, developer_share_cents FROM revenue_events WHERE plugin_id = '{paid}'"),
    )
    .await;
    assert_eq!(revenue.len(), 1, "{revenue:?}");
    assert_eq!(revenue[0]["amount_cents"], 1999);
    let anon = revenue[0]["user_id"].as_str().unwrap().to_owned();
    assert_ne!(anon, victim_id);
    let placeholder = rows(
        &app,
        &format!("SELECT email, password_hash, stripe_customer_id FROM users WHERE id = '{anon}'"),
    )
    .await;
    assert_eq!(
        placeholder,
        vec![
            json!({"email": format!("deleted:{anon}"), "password_hash": "!", "stripe_customer_id": null})
        ]
    );
    let plugins = rows(&app, &format!("SELECT author_id, status, live_version_id, rating_count, install_count FROM plugins WHERE id IN ('{paid}', '{own}') ORDER BY id = '{own}'")).await;
    assert_eq!(
        plugins[0]["rating_count"], 0,
        "the victim's rating is gone: {plugins:?}"
    );
    assert_eq!(
        plugins[0]["install_count"], 0,
        "and the victim's install: {plugins:?}"
    );
    assert_eq!(plugins[1]["author_id"], anon.as_str(), "{plugins:?}");
    assert_eq!(plugins[1]["status"], "rejected", "delisted: {plugins:?}");
    let r = app
        .get_auth(&format!("/plugins/{own}"), &developer.access_token)
        .await;
    assert_eq!(r.status(), 404, "the victim's plugin is no longer listed");
    assert!(rows(&app, "SELECT 1 FROM account_deletions")
        .await
        .is_empty());

    // At rest (the worker stopped, so every file is flushed): neither the email nor the id.
    let mut stack = Arc::into_inner(app.stack).expect("no other handle on the deletion stack");
    stack.restart().await.expect("the stack restarts");
    let needles = vec![
        victim.email.clone(),
        victim_id.clone(),
        victim_id.replace('-', ""),
        record.clone(),
        backup.clone(),
        part.clone(),
        vector_id.clone(),
    ];
    let hits = scan_state(&stack.persist_dir, &needles);
    let left: Vec<String> = hits
        .iter()
        .filter(|h| !explained(&stack.persist_dir, h, &victim_id))
        .map(ToString::to_string)
        .collect();
    assert!(
        left.is_empty(),
        "left at rest after the deletion:\n{}",
        left.join("\n")
    );
    // Positive control: the scan sees an account that still exists in D1's live content.
    let developer_id = user_id_of(&developer);
    let control = scan_state(
        &stack.persist_dir,
        &[developer.email.clone(), developer_id.clone()],
    );
    assert!(
        control
            .iter()
            .any(|h| h.file.starts_with("v3/d1/") && h.text.starts_with(&developer.email)),
        "the developer's email is found in D1: {}",
        control
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        control
            .iter()
            .any(|h| h.file.starts_with("v3/d1/") && h.text.starts_with(&developer_id)),
        "and the developer's id"
    );
    let app = TestApp::new(Arc::new(stack));

    // The address is free again, and the new account sees nothing of the old one.
    let r = app
        .post_json(
            "/auth/register",
            &json!({"email": victim.email, "password": "a new password 123"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let fresh: Value = r.json().await.unwrap();
    let token = fresh["access_token"].as_str().unwrap();
    let me: Value = app.get_auth("/auth/me", token).await.json().await.unwrap();
    assert_ne!(me["id"], victim_id.as_str());
    assert_eq!(me["tier"], "free");
    let events: Value = app
        .get_auth("/auth/events", token)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["kind"] != "deletion_requested"),
        "{events}"
    );
    let sessions: Value = app
        .get_auth("/auth/sessions", token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        sessions["sessions"].as_array().unwrap().len(),
        1,
        "{sessions}"
    );
    let usage: Value = app.get_auth("/usage", token).await.json().await.unwrap();
    assert_eq!(usage["cloud_storage"]["used_bytes"], 0, "{usage}");
    assert_eq!(usage["backup"]["used_bytes"], 0, "{usage}");
    let _ = dev_customer;
}

pub async fn a_deletion_interrupted_by_a_failing_stripe_is_finished_by_the_cron(_app: TestApp) {
    let stack = Stack::start_with(&[("E2E_STACK", "deletion-crash")])
        .await
        .expect("the stack starts");
    let app = TestApp::new(Arc::new(stack));
    let mark = uuid::Uuid::new_v4().simple().to_string();
    let user = app.register("deletion-crash").await;
    app.subscribe_as_customer(&user, "pro", Some(&format!("cus_{mark}")))
        .await;
    let id = user_id_of(&user);
    let record = format!("crash-record-{mark}");
    create_record(&app, &user, record.as_bytes()).await;
    let sub = subscription_of(&app, &id).await;
    // Stripe fails the first request and both its retries.
    mount_cancel(&app, &sub, 3).await;

    let r = delete_account(
        &app,
        &user.access_token,
        &json!({"password": user.password}),
    )
    .await;
    assert_eq!(r.status(), 202);
    let accepted: Value = r.json().await.unwrap();
    assert_eq!(accepted, json!({"ok": true, "completed": false}));
    // Stopped at once all the same; the work is pending at its first step.
    assert_error(
        app.get_auth("/auth/me", &user.access_token).await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(login_status(&app, &user.email, &user.password).await, 401);
    let pending = rows(
        &app,
        &format!("SELECT step FROM account_deletions WHERE user_id = '{id}'"),
    )
    .await;
    assert_eq!(pending, vec![json!({"step": "stripe"})]);
    assert!(
        state_contains(&app, record.as_bytes()),
        "nothing erased yet"
    );
    assert_eq!(app.stripe_cancellations(&sub).await.len(), 3);

    app.stack.run_cron().await.expect("the cron runs");
    assert!(rows(
        &app,
        &format!("SELECT 1 FROM account_deletions WHERE user_id = '{id}'")
    )
    .await
    .is_empty());
    assert!(
        rows(&app, &format!("SELECT 1 FROM users WHERE id = '{id}'"))
            .await
            .is_empty()
    );
    assert!(rows(
        &app,
        &format!("SELECT 1 FROM subscriptions WHERE user_id = '{id}'")
    )
    .await
    .is_empty());
    let sent = app.stripe_cancellations(&sub).await;
    assert_eq!(sent.len(), 4, "one more call, which succeeded");
    assert!(sent
        .iter()
        .all(|r| r.headers["idempotency-key"] == format!("account-deletion:{sub}").as_str()));
    assert!(
        !state_contains(&app, record.as_bytes()),
        "the record's blob is gone"
    );
    // A second run finds nothing to do.
    app.stack.run_cron().await.expect("the cron runs again");
    assert_eq!(app.stripe_cancellations(&sub).await.len(), 4);
}

pub async fn wrong_passwords_on_deletion_stop_at_five_and_another_users_token_deletes_nothing(
    app: TestApp,
) {
    let victim = app.register("deletion-throttle").await;
    let attacker = app.register("deletion-attacker").await;
    // The attacker's token with the victim's password: a wrong password for the attacker.
    for _ in 0..5 {
        let r = delete_account(
            &app,
            &attacker.access_token,
            &json!({"password": victim.password}),
        )
        .await;
        assert_error(r, 401, "unauthorized").await;
    }
    // The attacker's own throttle is spent — even the right password waits now.
    let r = delete_account(
        &app,
        &attacker.access_token,
        &json!({"password": attacker.password}),
    )
    .await;
    assert_error(r, 429, "rate_limited").await;
    assert_eq!(
        app.get_auth("/auth/me", &attacker.access_token)
            .await
            .status(),
        200
    );
    // The victim is untouched and can still delete their own account.
    assert_eq!(
        app.get_auth("/auth/me", &victim.access_token)
            .await
            .status(),
        200
    );
    let r = delete_account(
        &app,
        &victim.access_token,
        &json!({"password": victim.password}),
    )
    .await;
    assert_eq!(r.status(), 202);
    assert_error(
        app.get_auth("/auth/me", &victim.access_token).await,
        401,
        "unauthorized",
    )
    .await;
    // A second request with the replayed token is refused before anything runs.
    let r = delete_account(
        &app,
        &victim.access_token,
        &json!({"password": victim.password}),
    )
    .await;
    assert_error(r, 401, "unauthorized").await;
}
