//! Cloud records end to end: opaque bytes in R2 (local), metadata in D1, integrity, ETags,
//! sync listing, tiers.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::billing::subscribe;
use crate::helpers::{assert_error, TestApp, TestUser};
use crate::helpers::{random_bytes, sha};

async fn pro_user(app: &TestApp, tag: &str) -> TestUser {
    let user = app.register(tag).await;
    subscribe(app, &user, "pro", 1).await;
    user
}

async fn create_json(
    app: &TestApp,
    user: &TestUser,
    table: &str,
    bytes: &[u8],
) -> reqwest::Response {
    app.req(Method::POST, "/storage/records")
        .bearer_auth(&user.access_token)
        .json(&json!({"table": table, "blob": STANDARD.encode(bytes), "checksum": sha(bytes)}))
        .send()
        .await
        .unwrap()
}

async fn created(r: reqwest::Response) -> (String, String) {
    assert_eq!(r.status(), StatusCode::CREATED);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["etag"], etag.as_str());
    assert!(b["created_at"].as_i64().unwrap() > 1_700_000_000_000);
    (b["id"].as_str().unwrap().to_owned(), etag)
}

async fn get(app: &TestApp, user: &TestUser, id: &str) -> reqwest::Response {
    app.get_auth(&format!("/storage/records/{id}"), &user.access_token)
        .await
}

async fn list(app: &TestApp, user: &TestUser, query: &str) -> (Vec<Value>, Option<String>) {
    let r = app
        .get_auth(&format!("/storage/records{query}"), &user.access_token)
        .await;
    assert_eq!(r.status(), 200);
    let next = r
        .headers()
        .get("x-next-cursor")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.json::<Vec<Value>>().await.unwrap(), next)
}

pub async fn a_free_user_is_refused_cloud_storage_with_tier_required(app: TestApp) {
    let user = app.register("free-storage").await;
    let r = create_json(&app, &user, "tasks", b"secret").await;
    let body = assert_error(r, 403, "tier_required").await;
    assert_eq!(body["error"]["details"]["feature"], "cloud_storage_gb");
    assert_eq!(body["error"]["details"]["required_tier"], "pro");
}

pub async fn records_round_trip_with_etags_and_conditional_requests(app: TestApp) {
    let user = pro_user(&app, "rec-roundtrip").await;
    let v1 = random_bytes(300);
    let (id, etag1) = created(create_json(&app, &user, "tasks", &v1).await).await;

    let r = get(&app, &user, &id).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], etag1.as_str());
    assert_eq!(r.headers()["x-checksum"], sha(&v1).as_str());
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.bytes().await.unwrap().as_ref(), v1.as_slice());

    let r = app
        .req(Method::GET, &format!("/storage/records/{id}"))
        .bearer_auth(&user.access_token)
        .header("If-None-Match", &etag1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    let v2 = random_bytes(500);
    let r = app
        .req(Method::PUT, &format!("/storage/records/{id}"))
        .bearer_auth(&user.access_token)
        .header("If-Match", &etag1)
        .json(&json!({"blob": STANDARD.encode(&v2), "checksum": sha(&v2)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let etag2 = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(etag2, etag1);
    assert_eq!(
        get(&app, &user, &id).await.bytes().await.unwrap().as_ref(),
        v2.as_slice()
    );

    // The stale ETag no longer writes or deletes.
    let r = app
        .req(Method::PUT, &format!("/storage/records/{id}"))
        .bearer_auth(&user.access_token)
        .header("If-Match", &etag1)
        .json(&json!({"blob": STANDARD.encode(b"lost"), "checksum": sha(b"lost")}))
        .send()
        .await
        .unwrap();
    assert_error(r, 412, "precondition_failed").await;
    let r = app
        .req(Method::DELETE, &format!("/storage/records/{id}"))
        .bearer_auth(&user.access_token)
        .header("If-Match", &etag1)
        .send()
        .await
        .unwrap();
    assert_error(r, 412, "precondition_failed").await;

    let r = app
        .req(Method::DELETE, &format!("/storage/records/{id}"))
        .bearer_auth(&user.access_token)
        .header("If-Match", &etag2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_error(get(&app, &user, &id).await, 404, "not_found").await;
}

pub async fn raw_bodies_stream_through_and_are_verified_by_storage(app: TestApp) {
    let user = pro_user(&app, "rec-raw").await;
    let bytes = random_bytes(3 * 1024 * 1024 + 17);
    let r = app
        .req(Method::POST, "/storage/records")
        .bearer_auth(&user.access_token)
        .header("Content-Type", "application/octet-stream")
        .header("X-Table", "notes")
        .header("X-Checksum", sha(&bytes))
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    let (id, _) = created(r).await;
    let r = get(&app, &user, &id).await;
    assert_eq!(
        r.headers()["content-length"],
        bytes.len().to_string().as_str()
    );
    assert_eq!(sha(&r.bytes().await.unwrap()), sha(&bytes));

    // A wrong checksum on a raw body: refused by R2 itself, nothing stored.
    let (before, _) = list(&app, &user, "").await;
    let r = app
        .req(Method::POST, "/storage/records")
        .bearer_auth(&user.access_token)
        .header("Content-Type", "application/octet-stream")
        .header("X-Table", "notes")
        .header("X-Checksum", sha(b"something else"))
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "checksum_mismatch").await;
    let (after, _) = list(&app, &user, "").await;
    assert_eq!(before.len(), after.len());

    // Raw updates too.
    let v2 = random_bytes(1000);
    let r = app
        .req(Method::PUT, &format!("/storage/records/{id}"))
        .bearer_auth(&user.access_token)
        .header("Content-Type", "application/octet-stream")
        .header("X-Checksum", sha(&v2))
        .body(v2.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        get(&app, &user, &id).await.bytes().await.unwrap().as_ref(),
        v2.as_slice()
    );

    // Missing headers are named.
    let r = app
        .req(Method::POST, "/storage/records")
        .bearer_auth(&user.access_token)
        .header("Content-Type", "application/octet-stream")
        .header("X-Checksum", sha(b"x"))
        .body(b"x".to_vec())
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 422, "validation_failed").await;
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "X-Table");
}

pub async fn bad_input_is_refused_and_stores_nothing(app: TestApp) {
    let user = pro_user(&app, "rec-bad").await;
    let r = app
        .req(Method::POST, "/storage/records")
        .bearer_auth(&user.access_token)
        .json(&json!({"table": "tasks", "blob": STANDARD.encode(b"abc"), "checksum": sha(b"abd")}))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "checksum_mismatch").await;
    for table in ["../etc", "a/b", "", "x y"] {
        let r = create_json(&app, &user, table, b"abc").await;
        let body = assert_error(r, 422, "validation_failed").await;
        assert_eq!(
            body["error"]["details"]["fields"][0]["field"], "table",
            "{table}"
        );
    }
    let r = app
        .req(Method::POST, "/storage/records")
        .bearer_auth(&user.access_token)
        .json(&json!({"table": "tasks", "blob": "***", "checksum": "zz"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 422, "validation_failed").await;
    assert_eq!(
        body["error"]["details"]["fields"].as_array().unwrap().len(),
        2
    );
    let r = app
        .req(Method::POST, "/storage/records")
        .bearer_auth(&user.access_token)
        .header("Content-Type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_error(r, 415, "unsupported_media_type").await;
    let (all, _) = list(&app, &user, "").await;
    assert!(all.is_empty(), "{all:?}");
}

pub async fn listing_syncs_by_time_and_cursor_with_tombstones(app: TestApp) {
    let user = pro_user(&app, "rec-list").await;
    let mut ids = Vec::new();
    for i in 0..5u8 {
        let table = if i % 2 == 0 { "tasks" } else { "notes" };
        ids.push(
            created(create_json(&app, &user, table, &[i; 10]).await)
                .await
                .0,
        );
    }
    let (first, _) = list(&app, &user, "").await;
    let checkpoint = first.last().unwrap()["updated_at"].as_i64().unwrap();
    let r = app
        .req(Method::DELETE, &format!("/storage/records/{}", ids[0]))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Page through two at a time.
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let (page, next) = list(&app, &user, &query).await;
        assert!(page.len() <= 2);
        seen.extend(page);
        match next {
            Some(c) => query = format!("?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let last = seen.last().unwrap();
    assert_eq!(last["id"], ids[0].as_str());
    assert_eq!(last["deleted"], true, "the deletion syncs as a tombstone");
    assert!(
        seen.iter().all(|m| m.get("blob").is_none()),
        "metadata only"
    );

    // Another device asks for what changed since its checkpoint: only the tombstone.
    let (changed, _) = list(&app, &user, &format!("?updated_since={checkpoint}")).await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["deleted"], true);

    let (tasks, _) = list(&app, &user, "?table=tasks").await;
    assert!(tasks.iter().all(|m| m["table"] == "tasks"));
    assert_eq!(tasks.len(), 3);
    let (page2, _) = list(&app, &user, "?limit=2&page=2").await;
    assert_eq!(page2.len(), 2);
    for bad in [
        "?limit=0",
        "?limit=501",
        "?page=0",
        "?cursor=garbage",
        "?updated_since=-1",
        "?table=../x",
    ] {
        let r = app
            .get_auth(&format!("/storage/records{bad}"), &user.access_token)
            .await;
        assert_error(r, 422, "validation_failed").await;
    }
}

pub async fn another_users_record_is_404_for_every_verb(app: TestApp) {
    let owner = pro_user(&app, "rec-owner").await;
    let thief = pro_user(&app, "rec-thief").await;
    let (id, etag) = created(create_json(&app, &owner, "tasks", b"private").await).await;
    assert_error(get(&app, &thief, &id).await, 404, "not_found").await;
    let r = app
        .req(Method::PUT, &format!("/storage/records/{id}"))
        .bearer_auth(&thief.access_token)
        .header("If-Match", &etag)
        .json(&json!({"blob": STANDARD.encode(b"x"), "checksum": sha(b"x")}))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "not_found").await;
    let r = app
        .req(Method::DELETE, &format!("/storage/records/{id}"))
        .bearer_auth(&thief.access_token)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "not_found").await;
    let (theirs, _) = list(&app, &thief, "").await;
    assert!(theirs.is_empty());
    assert_eq!(
        get(&app, &owner, &id).await.bytes().await.unwrap().as_ref(),
        b"private"
    );
}

pub async fn concurrent_conditional_updates_lose_no_update(app: TestApp) {
    let user = pro_user(&app, "rec-race").await;
    let (id, etag) = created(create_json(&app, &user, "tasks", b"base").await).await;
    let writers = (0..6u8).map(|i| {
        let body = vec![i; 64];
        app.req(Method::PUT, &format!("/storage/records/{id}"))
            .bearer_auth(&user.access_token)
            .header("If-Match", &etag)
            .json(&json!({"blob": STANDARD.encode(&body), "checksum": sha(&body)}))
            .send()
    });
    let results = join_all(writers).await;
    let statuses: Vec<u16> = results
        .iter()
        .map(|r| r.as_ref().unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 412),
        "{statuses:?}"
    );
    // The stored bytes are the winner's, whole.
    let bytes = get(&app, &user, &id).await.bytes().await.unwrap();
    assert_eq!(bytes.len(), 64);
    assert!(bytes.iter().all(|b| *b == bytes[0]));
}
