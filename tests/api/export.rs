//! Account export end to end (`GET /auth/export`): everything held about the caller, links to
//! the caller's blobs that work only for the caller and only intact, and the throttle.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, sha, user_id_of, TestApp, TestUser};

async fn export(app: &TestApp, user: &TestUser) -> reqwest::Response {
    app.get_auth("/auth/export", &user.access_token).await
}

async fn fetch(app: &TestApp, token: &str, url: &str) -> reqwest::Response {
    app.client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

#[allow(clippy::too_many_lines)] // one scenario, step by step
pub async fn an_export_holds_everything_with_links_only_its_user_can_open(app: TestApp) {
    let mark = uuid::Uuid::new_v4().simple().to_string();
    let user = app.register("export").await;
    app.subscribe_as_customer(&user, "power", Some(&format!("cus_{mark}")))
        .await;
    let record = format!("export-record-{mark}");
    let r = app
        .req(Method::POST, "/storage/records")
        .bearer_auth(&user.access_token)
        .json(&json!({"table": "notes", "blob": STANDARD.encode(&record), "checksum": sha(record.as_bytes())}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let backup = format!("export-backup-{mark}");
    let r = app
        .req(Method::PUT, "/backup")
        .bearer_auth(&user.access_token)
        .header("Content-Type", "application/octet-stream")
        .header("X-Backup-Version", "2")
        .header("X-Backup-Timestamp", "1700000000000")
        .header("X-Backup-Checksum", sha(backup.as_bytes()))
        .body(backup.clone())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let blob = format!("vector-{mark}");
    let r = app
        .req(Method::POST, "/storage/vectors/upsert")
        .bearer_auth(&user.access_token)
        .json(&json!({"vectors": [{"id": "v1", "blob": STANDARD.encode(&blob), "checksum": sha(blob.as_bytes())}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A grant as the admin console makes it (stored on the account).
    app.stack
        .d1_execute(&format!(
            "UPDATE users SET comp_tier = 'team', comp_until = 4102444800000 WHERE id = '{}'",
            user_id_of(&user)
        ))
        .await
        .expect("d1");
    let r = export(&app, &user).await;
    assert_eq!(r.status(), 200);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["profile"]["id"], user_id_of(&user).as_str(), "{e}");
    assert_eq!(e["profile"]["email"], user.email.as_str());
    assert_eq!(e["profile"]["tier"], "power");
    assert_eq!(e["profile"]["two_factor_enabled"], false);
    assert_eq!(
        e["profile"]["comp_tier"], "team",
        "an administrator's grant: {e}"
    );
    assert_eq!(e["profile"]["comp_until"], 4_102_444_800_000_i64);
    assert!(e["profile"]["suspended_at"].is_null(), "{e}");
    assert!(e["team"].is_null(), "outside a team: {e}");
    assert_eq!(e["subscriptions"].as_array().unwrap().len(), 1, "{e}");
    assert_eq!(e["subscriptions"][0]["status"], "active");
    assert!(
        e["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["current"] == true),
        "{e}"
    );
    assert!(
        e["security_events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["kind"] == "export"),
        "the export is in the security log: {e}"
    );
    assert_eq!(
        e["vectors"],
        json!([{"id": "v1", "dims": 32, "size_bytes": e["vectors"][0]["size_bytes"], "checksum": sha(blob.as_bytes())}])
    );
    for key in [
        "plugins_authored",
        "installs",
        "ratings",
        "purchases",
        "earnings",
        "uploads",
    ] {
        assert_eq!(e[key], json!([]), "{key}: {e}");
    }
    let records = e["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{e}");
    assert_eq!(records[0]["table"], "notes");
    assert_eq!(records[0]["checksum"], sha(record.as_bytes()).as_str());
    let backups = e["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 1, "{e}");
    assert_eq!(backups[0]["version"], 2);
    let expires = e["links_expire_at"].as_i64().unwrap();
    let exported = e["exported_at"].as_i64().unwrap();
    assert_eq!(expires - exported, 15 * 60 * 1000);

    // The links open the encrypted bytes for their user.
    let record_url = records[0]["download_url"].as_str().unwrap();
    assert!(record_url.starts_with(&format!("{}/api/v1/auth/export/blob?token=", app.base)));
    let r = fetch(&app, &user.access_token, record_url).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), record.as_bytes());
    let r = fetch(
        &app,
        &user.access_token,
        backups[0]["download_url"].as_str().unwrap(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), backup.as_bytes());

    // Another user's token, an altered token, a token moved to another object, none: 403.
    let other = app.register("export-other").await;
    assert_error(
        fetch(&app, &other.access_token, record_url).await,
        403,
        "forbidden",
    )
    .await;
    let (base, token) = record_url.split_once("token=").unwrap();
    let (payload, mac) = token.split_once('.').unwrap();
    let mut flipped = mac.to_owned().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let altered = format!(
        "{base}token={payload}.{}",
        String::from_utf8(flipped).unwrap()
    );
    assert_error(
        fetch(&app, &user.access_token, &altered).await,
        403,
        "forbidden",
    )
    .await;
    let backup_token = backups[0]["download_url"]
        .as_str()
        .unwrap()
        .split_once("token=")
        .unwrap()
        .1;
    let (backup_payload, _) = backup_token.split_once('.').unwrap();
    let moved = format!("{base}token={backup_payload}.{mac}");
    assert_error(
        fetch(&app, &user.access_token, &moved).await,
        403,
        "forbidden",
    )
    .await;
    let bare = format!("{}/api/v1/auth/export/blob", app.base);
    assert_error(
        fetch(&app, &user.access_token, &bare).await,
        403,
        "forbidden",
    )
    .await;
    // Without a bearer token the link is nothing.
    let r = app.client.get(record_url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Another user's export shows nothing of this one.
    let theirs: Value = export(&app, &other).await.json().await.unwrap();
    assert_eq!(theirs["records"], json!([]));
    assert_eq!(theirs["profile"]["email"], other.email.as_str());
}

pub async fn exports_stop_at_three_an_hour_per_account(app: TestApp) {
    let user = app.register("export-throttle").await;
    for i in 0..3 {
        assert_eq!(export(&app, &user).await.status(), 200, "export {i}");
    }
    let r = export(&app, &user).await;
    assert!(r.headers().contains_key("retry-after"), "{:?}", r.headers());
    assert_error(r, 429, "rate_limited").await;
    // Another account is not affected.
    let other = app.register("export-throttle-other").await;
    assert_eq!(export(&app, &other).await.status(), 200);
}
