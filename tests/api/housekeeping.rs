//! Housekeeping on the cron, end to end: each job fired through wrangler dev's `/__scheduled`
//! on a stack of its own whose ages are shrunk to 1.5 s (`DEV_HOUSEKEEPING_AGE_MS`, dev only),
//! so what is due and what is not are both real. Each test tries to make the purge take
//! something live: a session whose first token expired, a young tombstone, a referenced blob,
//! the live version's package, an object outside the key layout.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::Stack;
use crate::helpers::{sha, state_contains, user_id_of, TestApp, TestUser};
use crate::plugins::{approve, manifest, package, publish, submit_version};

/// The shrunken age of every job (ms), and how long a test waits for it to pass.
const AGE_MS: &str = "1500";
const PAST_AGE: Duration = Duration::from_secs(2);

pub(crate) async fn stack(batch: Option<&str>) -> TestApp {
    let mut vars = vec![("DEV_HOUSEKEEPING_AGE_MS", AGE_MS)];
    if let Some(b) = batch {
        vars.push(("DEV_HOUSEKEEPING_BATCH", b));
    }
    let stack = Stack::start_with(&vars)
        .await
        .expect("the housekeeping stack starts");
    TestApp::new(Arc::new(stack))
}

/// The single number a `SELECT COUNT(*) AS n …` answers.
pub(crate) async fn count(app: &TestApp, sql: &str) -> i64 {
    let out = app.stack.d1_execute(sql).await.expect("d1 query");
    out[0]["results"][0]["n"]
        .as_i64()
        .unwrap_or_else(|| panic!("a count from {sql}: {out}"))
}

pub(crate) async fn d1(app: &TestApp, sql: &str) {
    app.stack.d1_execute(sql).await.expect("d1 statement");
}

pub(crate) async fn cron(app: &TestApp) {
    app.stack.run_cron().await.expect("the cron runs");
}

async fn login(app: &TestApp, user: &TestUser) -> (String, String) {
    let r = app
        .req(Method::POST, "/auth/login")
        .header("CF-Connecting-IP", crate::harness::random_ip())
        .json(&json!({"email": user.email, "password": user.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let b: Value = r.json().await.unwrap();
    (
        b["access_token"].as_str().unwrap().to_owned(),
        b["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_json("/auth/refresh", &json!({"refresh_token": token}))
        .await
}

async fn ticket(app: &TestApp, user: &TestUser) {
    let r = app
        .req(Method::POST, "/auth/ws-ticket")
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

pub async fn the_cron_forgets_expired_tickets_tokens_and_dead_sessions_but_never_a_live_one(
    _app: TestApp,
) {
    let app = stack(None).await;
    let victim = app.register("hk-sessions").await;
    let other = app.register("hk-bystander").await;
    let v = user_id_of(&victim);
    let o = user_id_of(&other);

    // The registration's session, rotated once: its first token is then made expired. The
    // live token's parent link to it must not take the live token down (ON DELETE CASCADE).
    let r = refresh(&app, &victim.refresh_token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let live: Value = r.json().await.unwrap();
    let live = live["refresh_token"].as_str().unwrap().to_owned();
    d1(
        &app,
        &format!("UPDATE refresh_tokens SET expires_at = 1 WHERE user_id = '{v}' AND rotated_at IS NOT NULL"),
    )
    .await;
    // A second session, logged out: revoked, hence dead once older than the age.
    let (access2, refresh2) = login(&app, &victim).await;
    let r = app
        .req(Method::POST, "/auth/logout")
        .bearer_auth(&access2)
        .json(&json!({"refresh_token": refresh2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A third session whose only token expired: emptied by the purge, then gone with it.
    let (_, refresh3) = login(&app, &victim).await;
    let third = sha(refresh3.as_bytes());
    d1(
        &app,
        &format!("UPDATE refresh_tokens SET expires_at = 1 WHERE token_hash = '{third}'"),
    )
    .await;
    // Tickets: the victim's made expired, the bystander's fresh.
    ticket(&app, &victim).await;
    ticket(&app, &other).await;
    d1(
        &app,
        &format!("UPDATE ws_tickets SET expires_at = 1 WHERE user_id = '{v}'"),
    )
    .await;
    let families = format!("SELECT COUNT(*) AS n FROM refresh_families WHERE user_id = '{v}'");
    assert_eq!(count(&app, &families).await, 3);

    tokio::time::sleep(PAST_AGE).await;
    cron(&app).await;

    let tickets = |u: &str| format!("SELECT COUNT(*) AS n FROM ws_tickets WHERE user_id = '{u}'");
    assert_eq!(
        count(&app, &tickets(&v)).await,
        0,
        "the expired ticket is gone"
    );
    assert_eq!(count(&app, &tickets(&o)).await, 1, "a live ticket stays");
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT COUNT(*) AS n FROM refresh_tokens WHERE user_id = '{v}' AND expires_at = 1"
            )
        )
        .await,
        0,
        "expired tokens are gone"
    );
    assert_eq!(
        count(&app, &families).await,
        1,
        "the revoked and the emptied session are gone, the live one stays"
    );
    // The live session still refreshes, and the bystander's was never touched.
    assert_eq!(refresh(&app, &live).await.status(), StatusCode::OK);
    assert_eq!(
        refresh(&app, &other.refresh_token).await.status(),
        StatusCode::OK
    );
    // Forgetting a rotated token loses nothing: it was refused anyway (expired).
    assert_eq!(
        refresh(&app, &victim.refresh_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        app.stack.log().contains("housekeeping run finished"),
        "the run reports what it did"
    );
}

async fn create_record(app: &TestApp, user: &TestUser, bytes: &[u8]) -> String {
    let r = app
        .req(Method::POST, "/storage/records")
        .bearer_auth(&user.access_token)
        .json(&json!({"table": "notes", "blob": STANDARD.encode(bytes), "checksum": sha(bytes)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let b: Value = r.json().await.unwrap();
    b["id"].as_str().unwrap().to_owned()
}

/// The user's listing with `query` appended, and whether it carried `X-Sync-Reset: true`.
async fn listing(app: &TestApp, user: &TestUser, query: &str) -> (Vec<Value>, bool) {
    let r = app
        .get_auth(
            &format!("/storage/records?limit=500{query}"),
            &user.access_token,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let reset = r.headers().get("X-Sync-Reset").is_some_and(|v| v == "true");
    (r.json().await.unwrap(), reset)
}

/// The ids the user's listing shows as tombstones.
async fn tombstones(app: &TestApp, user: &TestUser) -> Vec<String> {
    let r = app
        .get_auth("/storage/records?limit=500", &user.access_token)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let items: Vec<Value> = r.json().await.unwrap();
    items
        .iter()
        .filter(|m| m["deleted"] == true)
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

pub async fn the_cron_purges_old_tombstones_in_every_home_a_few_homes_per_run(_app: TestApp) {
    // Two homes per run: five users take three runs, each home visited once.
    let app = stack(Some("2")).await;
    let mut users = Vec::new();
    // The first user's other device synced up to `position`, before the deletion.
    let mut position = 0;
    for i in 0..5 {
        let user = app.register(&format!("hk-tomb-{i}")).await;
        app.subscribe_as_customer(&user, "pro", None).await;
        if i == 0 {
            create_record(&app, &user, b"synced").await;
            position = listing(&app, &user, "").await.0[0]["updated_at"]
                .as_i64()
                .unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let gone = create_record(&app, &user, format!("gone-{i}").as_bytes()).await;
        let r = app
            .req(Method::DELETE, &format!("/storage/records/{gone}"))
            .bearer_auth(&user.access_token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        users.push((user, gone));
    }
    let keeper = &users[0].0;
    let kept = create_record(&app, keeper, b"kept record").await;
    for (user, gone) in &users {
        assert_eq!(tombstones(&app, user).await, vec![gone.clone()]);
    }
    let since = format!("&updated_since={position}");
    let (items, reset) = listing(&app, keeper, &since).await;
    assert!(
        items.iter().any(|m| m["deleted"] == true),
        "the listing tells"
    );
    assert!(!reset, "no reset while the tombstone is listed");
    tokio::time::sleep(PAST_AGE).await;

    let purged = |app: &TestApp, users: &[(TestUser, String)]| {
        let log = app.stack.log();
        users
            .iter()
            .filter(|(u, _)| {
                let id = user_id_of(u);
                log.lines()
                    .filter(|l| l.contains("home housekept") && l.contains(&id))
                    .count()
                    == 1
            })
            .count()
    };
    cron(&app).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(purged(&app, &users), 2, "a run visits two homes");
    cron(&app).await;
    cron(&app).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        purged(&app, &users),
        5,
        "three runs reach every home, each once"
    );
    for (user, _) in &users {
        assert!(
            tombstones(&app, user).await.is_empty(),
            "the old tombstone is purged"
        );
    }
    // The other device cannot learn of the purged deletion from the listing: told to reset,
    // by `updated_since` or by a cursor; a listing from the start or from after it is not.
    let (items, reset) = listing(&app, keeper, &since).await;
    assert!(items.iter().all(|m| m["deleted"] != true));
    assert!(reset, "X-Sync-Reset after the purge");
    let (_, reset) = listing(&app, keeper, &format!("&cursor={position}.0")).await;
    assert!(reset, "a cursor as old resets too");
    let (_, reset) = listing(&app, keeper, "").await;
    assert!(!reset, "a listing from the start has nothing to miss");
    // Another user's home knows nothing of it.
    let other = app.register("hk-tomb-other").await;
    app.subscribe_as_customer(&other, "pro", None).await;
    create_record(&app, &other, b"other").await;
    let (_, reset) = listing(&app, &other, &since).await;
    assert!(!reset, "another user's listing is not reset");
    let r = app
        .get_auth(&format!("/storage/records/{kept}"), &keeper.access_token)
        .await;
    assert_eq!(r.status(), StatusCode::OK, "a live record is never purged");

    // A tombstone younger than the age survives a run.
    let fresh = create_record(&app, keeper, b"fresh").await;
    let r = app
        .req(Method::DELETE, &format!("/storage/records/{fresh}"))
        .bearer_auth(&keeper.access_token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    for _ in 0..3 {
        cron(&app).await;
    }
    assert_eq!(tombstones(&app, keeper).await, vec![fresh]);
}

#[allow(clippy::too_many_lines)] // one scenario: what is kept is asserted next to what goes
pub async fn the_cron_deletes_r2_leftovers_and_discarded_packages_but_nothing_referenced(
    _app: TestApp,
) {
    let app = stack(None).await;
    let mark = uuid::Uuid::new_v4().simple().to_string();
    let user = app.register("hk-r2").await;
    app.subscribe_as_customer(&user, "pro", None).await;
    let uid = user_id_of(&user);

    // Referenced: a record and a backup.
    let live_record = format!("live-record-{mark}");
    let record = create_record(&app, &user, live_record.as_bytes()).await;
    let live_backup = format!("live-backup-{mark}");
    let r = app
        .req(Method::PUT, "/backup")
        .bearer_auth(&user.access_token)
        .header("Content-Type", "application/octet-stream")
        .header("X-Backup-Version", "3")
        .header("X-Backup-Timestamp", "1700000000000")
        .header("X-Backup-Checksum", sha(live_backup.as_bytes()))
        .body(live_backup.clone())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "backup: {}", r.status());

    // Leftovers no row references, under the user's prefix and outside any layout.
    let leftovers = [
        (
            "adiuva-records",
            format!("{uid}/notes/leftover-{mark}"),
            format!("leftover-record-{mark}"),
        ),
        (
            "adiuva-backups",
            format!("{uid}/1700000000000/leftover-{mark}"),
            format!("leftover-backup-{mark}"),
        ),
        (
            "adiuva-plugins",
            format!("plugins/leftover-{mark}"),
            format!("leftover-package-{mark}"),
        ),
    ];
    for (bucket, key, bytes) in &leftovers {
        app.stack
            .r2_put(bucket, key, bytes.as_bytes())
            .await
            .expect("r2 put");
    }
    let stray = format!("stray-{mark}");
    app.stack
        .r2_put(
            "adiuva-records",
            &format!("not-a-user/{mark}"),
            stray.as_bytes(),
        )
        .await
        .expect("r2 put");

    // A plugin whose first version is superseded by the second.
    let author = app.register("hk-author").await;
    let name = format!("Housekept {mark}");
    let v1 = package(&format!("v1-{mark}"));
    let id = publish(
        &app,
        &author,
        manifest(&name, "1.0.0", "development", 0),
        &v1,
    )
    .await;
    let v2 = package(&format!("v2-{mark}"));
    let r = submit_version(
        &app,
        &author,
        &id,
        manifest(&name, "1.1.0", "development", 0),
        &v2,
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    approve(&app, &id).await;
    let v1_marker = format!("v1-{mark}");
    let v2_marker = format!("v2-{mark}");
    assert!(state_contains(&app, v1_marker.as_bytes()));

    tokio::time::sleep(PAST_AGE).await;
    cron(&app).await;
    // A second run finds nothing more to do (and nothing it kept is taken on a later pass).
    cron(&app).await;

    for (_, _, bytes) in &leftovers {
        assert!(
            !state_contains(&app, bytes.as_bytes()),
            "{bytes} is deleted"
        );
    }
    assert!(
        !state_contains(&app, v1_marker.as_bytes()),
        "the superseded package is deleted"
    );
    assert!(
        state_contains(&app, v2_marker.as_bytes()),
        "the live package stays"
    );
    assert!(
        state_contains(&app, live_record.as_bytes()),
        "the record's blob stays"
    );
    assert!(
        state_contains(&app, live_backup.as_bytes()),
        "the backup stays"
    );
    assert!(
        state_contains(&app, stray.as_bytes()),
        "an object outside the key layout is not the sweep's to judge"
    );
    let r = app
        .get_auth(&format!("/storage/records/{record}"), &user.access_token)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let purged = count(
        &app,
        &format!(
            "SELECT COUNT(*) AS n FROM plugin_versions WHERE plugin_id = '{id}' \
             AND package_purged_at IS NOT NULL"
        ),
    )
    .await;
    assert_eq!(purged, 1, "only the superseded version is marked");
}

pub async fn the_cron_purges_expired_account_tokens_a_batch_at_a_time_and_keeps_live_ones(
    _app: TestApp,
) {
    let app = stack(Some("2")).await;
    let user = app.register("hk-account-tokens").await;
    let u = user_id_of(&user);
    // The registration's verification link stays live; three reset links are made expired.
    for _ in 0..3 {
        let r = app
            .req(Method::POST, "/auth/password/forgot")
            .header("CF-Connecting-IP", crate::harness::random_ip())
            .json(&json!({"email": user.email}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let all = format!("SELECT COUNT(*) AS n FROM account_tokens WHERE user_id = '{u}'");
    let expired = format!("{all} AND expires_at < 1000");
    let live_verify = format!("{all} AND purpose = 'verify_email' AND expires_at > 1000");
    // The reset tokens are stored by one statement each; wait until all three are there.
    for _ in 0..50 {
        if count(&app, &all).await == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        count(&app, &all).await,
        4,
        "one verification and three reset tokens"
    );
    d1(
        &app,
        &format!("UPDATE account_tokens SET expires_at = 1 WHERE user_id = '{u}' AND purpose = 'reset_password'"),
    )
    .await;
    assert_eq!(count(&app, &expired).await, 3);

    cron(&app).await;
    assert_eq!(count(&app, &expired).await, 1, "two per run (the batch)");
    assert_eq!(count(&app, &live_verify).await, 1);
    cron(&app).await;
    assert_eq!(count(&app, &expired).await, 0);
    assert_eq!(
        count(&app, &live_verify).await,
        1,
        "a live token is never purged"
    );
    assert_eq!(count(&app, &all).await, 1);
}
