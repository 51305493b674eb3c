//! Backups end to end.

use reqwest::Method;
use serde_json::Value;

use crate::billing::subscribe;
use crate::helpers::sha;
use crate::helpers::{assert_error, TestApp, TestUser};

fn bytes_of(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| u8::try_from(i % 251).unwrap() ^ seed)
        .collect()
}

async fn put(
    app: &TestApp,
    user: &TestUser,
    body: &[u8],
    checksum: &str,
    timestamp: i64,
) -> reqwest::Response {
    app.req(Method::PUT, "/backup")
        .bearer_auth(&user.access_token)
        .header("Content-Type", "application/octet-stream")
        .header("X-Backup-Version", "3")
        .header("X-Backup-Timestamp", timestamp.to_string())
        .header("X-Backup-Checksum", checksum)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

async fn history(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let r = app.get_auth("/backup/history", &user.access_token).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub async fn a_free_user_is_refused_backups_with_tier_required(app: TestApp) {
    let user = app.register("free-backup").await;
    let body = bytes_of(10, 1);
    let e = assert_error(
        put(&app, &user, &body, &sha(&body), 1).await,
        403,
        "tier_required",
    )
    .await;
    assert_eq!(e["error"]["details"]["feature"], "backup_gb");
    assert_eq!(e["error"]["details"]["required_tier"], "pro");
}

pub async fn backups_round_trip_with_history_and_conditional_get(app: TestApp) {
    let user = app.register("backup").await;
    subscribe(&app, &user, "pro", 1).await;
    assert_error(
        app.get_auth("/backup", &user.access_token).await,
        404,
        "not_found",
    )
    .await;

    let first = bytes_of(2 * 1024 * 1024 + 5, 7);
    let r = put(&app, &user, &first, &sha(&first), 1_700_000_000_000).await;
    assert_eq!(r.status(), 200);
    let first_id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = bytes_of(1000, 9);
    let r = put(&app, &user, &second, &sha(&second), 1_700_000_100_000).await;
    let second_id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = app.get_auth("/backup", &user.access_token).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["x-backup-id"], second_id.as_str());
    assert_eq!(h["x-backup-version"], "3");
    assert_eq!(h["x-backup-timestamp"], "1700000100000");
    assert_eq!(h["x-backup-checksum"], sha(&second).as_str());
    assert_eq!(r.bytes().await.unwrap().as_ref(), second.as_slice());

    let last_modified = h["last-modified"].to_str().unwrap().to_owned();
    let r = app
        .req(Method::GET, "/backup")
        .bearer_auth(&user.access_token)
        .header("If-Modified-Since", &last_modified)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = app
        .req(Method::GET, "/backup")
        .bearer_auth(&user.access_token)
        .header("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let list = history(&app, &user).await;
    let ids: Vec<&str> = list.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec![second_id.as_str(), first_id.as_str()],
        "newest first"
    );
    assert_eq!(list[1]["size_bytes"], first.len());
    assert_eq!(list[1]["chunk_count"], 1);
    assert_eq!(list[1]["checksum"], sha(&first).as_str());
    assert!(list.iter().all(|b| b.get("blob").is_none()));

    // Someone else cannot delete it; the owner can, and the older one becomes the latest.
    let other = app.register("backup-other").await;
    let r = app
        .req(Method::DELETE, &format!("/backup/{second_id}"))
        .bearer_auth(&other.access_token)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "not_found").await;
    let r = app
        .req(Method::DELETE, &format!("/backup/{second_id}"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app.get_auth("/backup", &user.access_token).await;
    assert_eq!(r.headers()["x-backup-id"], first_id.as_str());
    assert_eq!(sha(&r.bytes().await.unwrap()), sha(&first));
}

pub async fn a_bad_backup_is_refused_and_stores_nothing(app: TestApp) {
    let user = app.register("backup-bad").await;
    subscribe(&app, &user, "power", 1).await;
    let body = bytes_of(5000, 3);
    assert_error(
        put(&app, &user, &body, &sha(b"not it"), 1).await,
        400,
        "checksum_mismatch",
    )
    .await;
    let r = app
        .req(Method::PUT, "/backup")
        .bearer_auth(&user.access_token)
        .header("X-Backup-Prune", "newest")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let e = assert_error(r, 422, "validation_failed").await;
    let fields: Vec<&str> = e["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec![
            "X-Backup-Version",
            "X-Backup-Timestamp",
            "X-Backup-Checksum",
            "X-Backup-Prune"
        ]
    );
    assert!(history(&app, &user).await.is_empty());
}

pub async fn a_multipart_backup_of_three_parts_round_trips(app: TestApp) {
    let user = app.register("multipart").await;
    subscribe(&app, &user, "power", 1).await;
    let r = app
        .req(Method::POST, "/backup/uploads")
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let started: Value = r.json().await.unwrap();
    let id = started["upload_id"].as_str().unwrap().to_owned();
    let part_size = usize::try_from(started["part_size"].as_u64().unwrap()).unwrap();
    let parts = [
        bytes_of(part_size, 1),
        bytes_of(part_size, 2),
        bytes_of(1024 * 1024 + 7, 3),
    ];

    let send_part = |n: usize, body: Vec<u8>, checksum: String| {
        app.req(Method::PUT, &format!("/backup/uploads/{id}/parts/{n}"))
            .bearer_auth(&user.access_token)
            .header("Content-Type", "application/octet-stream")
            .header("X-Part-Checksum", checksum)
            .body(body)
            .send()
    };
    // A corrupted part is refused; the good one is then accepted.
    let r = send_part(2, parts[1].clone(), sha(&parts[0]))
        .await
        .unwrap();
    assert_error(r, 400, "checksum_mismatch").await;
    for (i, p) in parts.iter().enumerate().rev() {
        let r = send_part(i + 1, p.clone(), sha(p)).await.unwrap();
        assert_eq!(r.status(), 200, "part {}", i + 1);
    }
    let whole: Vec<u8> = parts.concat();
    let r = app
        .req(Method::POST, &format!("/backup/uploads/{id}/complete"))
        .bearer_auth(&user.access_token)
        .json(&serde_json::json!({"version": 4, "timestamp": 1_700_000_000_123_i64, "checksum": sha(&whole)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let backup_id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = app.get_auth("/backup", &user.access_token).await;
    assert_eq!(r.headers()["x-backup-id"], backup_id.as_str());
    let back = r.bytes().await.unwrap();
    assert_eq!(back.len(), whole.len());
    assert_eq!(
        sha(&back),
        sha(&whole),
        "the downloaded bytes are what was sent"
    );
    let h = history(&app, &user).await;
    assert_eq!(h[0]["chunk_count"], 3);
    assert_eq!(h[0]["size_bytes"], whole.len());
    // The upload is closed.
    let r = send_part(1, parts[0].clone(), sha(&parts[0]))
        .await
        .unwrap();
    assert_error(r, 404, "not_found").await;
}

pub async fn a_multipart_backup_with_a_wrong_whole_checksum_or_aborted_stores_nothing(
    app: TestApp,
) {
    let user = app.register("multipart-bad").await;
    subscribe(&app, &user, "team", 1).await;
    let begin = || async {
        let r = app
            .req(Method::POST, "/backup/uploads")
            .bearer_auth(&user.access_token)
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["upload_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let id = begin().await;
    let part = bytes_of(1000, 5);
    let r = app
        .req(Method::PUT, &format!("/backup/uploads/{id}/parts/1"))
        .bearer_auth(&user.access_token)
        .header("X-Part-Checksum", sha(&part))
        .body(part.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .req(Method::POST, &format!("/backup/uploads/{id}/complete"))
        .bearer_auth(&user.access_token)
        .json(&serde_json::json!({"version": 1, "timestamp": 1, "checksum": sha(b"not the whole")}))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "checksum_mismatch").await;

    let id = begin().await;
    let r = app
        .req(Method::DELETE, &format!("/backup/uploads/{id}"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .req(Method::POST, &format!("/backup/uploads/{id}/complete"))
        .bearer_auth(&user.access_token)
        .json(&serde_json::json!({"version": 1, "timestamp": 1, "checksum": sha(&part)}))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "not_found").await;
    assert!(history(&app, &user).await.is_empty());
}
