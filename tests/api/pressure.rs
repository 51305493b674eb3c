//! Concurrency correctness under pressure: many clients racing on one record, one refresh
//! token, and one user's storage usage.

use std::collections::HashSet;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::billing::subscribe;
use crate::helpers::{assert_error, unique_ip, TestApp, TestUser};
use crate::helpers::{random_bytes, sha};

/// A user with a 10-seat team plan: 2000 requests a minute, unlimited storage.
async fn team_user(app: &TestApp, tag: &str) -> TestUser {
    let user = app.register(tag).await;
    subscribe(app, &user, "team", 10).await;
    user
}

async fn create(app: &TestApp, user: &TestUser, table: &str, bytes: &[u8]) -> (String, String) {
    let r = app
        .req(Method::POST, "/storage/records")
        .bearer_auth(&user.access_token)
        .json(&json!({"table": table, "blob": STANDARD.encode(bytes), "checksum": sha(bytes)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    (body["id"].as_str().unwrap().to_owned(), etag)
}

async fn put(
    app: &TestApp,
    user: &TestUser,
    id: &str,
    if_match: Option<&str>,
    bytes: &[u8],
) -> reqwest::Response {
    let mut req = app
        .req(Method::PUT, &format!("/storage/records/{id}"))
        .bearer_auth(&user.access_token)
        .json(&json!({"blob": STANDARD.encode(bytes), "checksum": sha(bytes)}));
    if let Some(etag) = if_match {
        req = req.header("If-Match", etag);
    }
    req.send().await.unwrap()
}

async fn delete(app: &TestApp, user: &TestUser, id: &str) -> reqwest::Response {
    app.req(Method::DELETE, &format!("/storage/records/{id}"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap()
}

/// The record's ETag and bytes.
async fn fetch(app: &TestApp, user: &TestUser, id: &str) -> (String, Vec<u8>) {
    let r = app
        .get_auth(&format!("/storage/records/{id}"), &user.access_token)
        .await;
    assert_eq!(r.status(), 200, "GET {id}");
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    (etag, r.bytes().await.unwrap().to_vec())
}

/// The version in an ETag `"<version>.<checksum prefix>"`.
fn version_of(etag: &str) -> u64 {
    etag.trim_matches('"')
        .split('.')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("an ETag of the form \"<version>.<prefix>\": {etag}"))
}

pub async fn racing_conditional_writers_have_exactly_one_winner_per_round(app: TestApp) {
    const WRITERS: usize = 20;
    const ROUNDS: usize = 4;
    let user = team_user(&app, "press-ifmatch").await;
    let base = random_bytes(100);
    let (id, mut etag) = create(&app, &user, "tasks", &base).await;
    let mut last_winner = base;
    for round in 0..ROUNDS {
        let bodies: Vec<Vec<u8>> = (0..WRITERS)
            .map(|w| {
                let mut b = format!("round {round} writer {w} ").into_bytes();
                b.extend(random_bytes(200 + w));
                b
            })
            .collect();
        let answers = join_all(
            bodies
                .iter()
                .map(|b| put(&app, &user, &id, Some(etag.as_str()), b)),
        )
        .await;
        let mut winners = Vec::new();
        let mut losers = Vec::new();
        for (w, r) in answers.into_iter().enumerate() {
            match r.status().as_u16() {
                200 => {
                    let new_etag = r.headers()["etag"].to_str().unwrap().to_owned();
                    winners.push((w, new_etag));
                }
                412 => losers.push(r),
                other => panic!(
                    "round {round} writer {w}: {other} {}",
                    r.text().await.unwrap_or_default()
                ),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one conditional write wins: {winners:?}"
        );
        assert_eq!(losers.len(), WRITERS - 1, "round {round}");
        for r in losers {
            assert_error(r, 412, "precondition_failed").await;
        }
        let (w, new_etag) = winners.pop().unwrap();
        assert_ne!(new_etag, etag, "round {round}: a new ETag");
        assert_eq!(
            version_of(&new_etag),
            version_of(&etag) + 1,
            "round {round}: one write, one version ({etag} -> {new_etag})"
        );
        let (stored_etag, stored) = fetch(&app, &user, &id).await;
        assert_eq!(stored_etag, new_etag, "round {round}");
        assert!(
            stored == bodies[w],
            "round {round}: the stored bytes are writer {w}'s, whole"
        );
        etag = new_etag;
        last_winner = bodies[w].clone();
    }
    // No lost update: the record is the last winner's, at version 1 + ROUNDS.
    let (final_etag, final_bytes) = fetch(&app, &user, &id).await;
    assert_eq!(final_etag, etag);
    assert_eq!(version_of(&final_etag), 1 + ROUNDS as u64);
    assert!(final_bytes == last_winner, "the last winner's bytes");
    // A stale ETag from any earlier round still writes nothing.
    let r = put(&app, &user, &id, Some("\"1.00000000\""), b"stale").await;
    assert_error(r, 412, "precondition_failed").await;
    assert!(fetch(&app, &user, &id).await.1 == last_winner);
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_json("/auth/refresh", &json!({"refresh_token": token}))
        .await
}

async fn refreshed(r: reqwest::Response) -> String {
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body["refresh_token"].as_str().unwrap().to_owned()
}

/// The implemented rule (`shared/src/auth/service.rs`, README "Rotation rule"): a refresh token
/// is rotated by its first use; presenting it again *within 10 s of that rotation*
/// (`REFRESH_GRACE_MS`) yields another fresh pair in the same family (racing refreshes from one
/// device), later it is reuse and revokes the whole family. So N concurrent refreshes of one
/// token all get distinct new pairs; a presentation after the grace is 401 and kills every
/// token of the family; other families (logins) of the user live on.
pub async fn racing_refreshes_of_one_token_follow_the_grace_rule_and_reuse_revokes_the_family(
    app: TestApp,
) {
    const RACERS: usize = 10;
    let user = app.register("press-refresh").await;
    // A second login: another family, which reuse of the first must not touch.
    let r = app
        .req(Method::POST, "/auth/login")
        .header("CF-Connecting-IP", unique_ip())
        .json(&json!({"email": user.email, "password": user.password}))
        .send()
        .await
        .unwrap();
    let other_family = refreshed(r).await;

    let answers = join_all((0..RACERS).map(|_| refresh(&app, &user.refresh_token))).await;
    let mut children = Vec::new();
    for r in answers {
        children.push(refreshed(r).await);
    }
    let distinct: HashSet<&String> = children.iter().collect();
    assert_eq!(distinct.len(), RACERS, "every racer got its own new token");
    assert!(!distinct.contains(&user.refresh_token));

    // Every child is a live token of the family: each refreshes once more.
    let grandchildren = join_all(children.iter().map(|c| refresh(&app, c))).await;
    let mut family = children.clone();
    for r in grandchildren {
        family.push(refreshed(r).await);
    }

    // Past the grace, the original token is reuse: 401, whoever presents it, however often.
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    let reuses = join_all((0..RACERS).map(|_| refresh(&app, &user.refresh_token))).await;
    for r in reuses {
        assert_error(r, 401, "unauthorized").await;
    }
    // ... and no token of the family works any more, children and grandchildren alike.
    let after = join_all(family.iter().map(|t| refresh(&app, t))).await;
    for (i, r) in after.into_iter().enumerate() {
        assert_eq!(r.status(), 401, "family token {i} survived the reuse");
        assert_error(r, 401, "unauthorized").await;
    }
    // The other login's family is untouched.
    refreshed(refresh(&app, &other_family).await).await;
}

/// All at once on `ids` (24 records): 6 grow, 6 shrink, 6 are deleted, 6 see an update racing a
/// delete, and 8 new records are created. Returns every answer's status.
async fn churn(app: &TestApp, user: &TestUser, ids: &[String]) -> Vec<u16> {
    let mut jobs: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = u16> + Send + '_>>> =
        Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let (app, user, id) = (app, user, id.clone());
        match i / 6 {
            0 => jobs.push(Box::pin(async move {
                put(app, user, &id, None, &random_bytes(5000 + i))
                    .await
                    .status()
                    .as_u16()
            })),
            1 => jobs.push(Box::pin(async move {
                put(app, user, &id, None, &random_bytes(10 + i))
                    .await
                    .status()
                    .as_u16()
            })),
            2 => jobs.push(Box::pin(async move {
                delete(app, user, &id).await.status().as_u16()
            })),
            _ => {
                let id2 = id.clone();
                jobs.push(Box::pin(async move {
                    put(app, user, &id, None, &random_bytes(7000 + i))
                        .await
                        .status()
                        .as_u16()
                }));
                jobs.push(Box::pin(async move {
                    delete(app, user, &id2).await.status().as_u16()
                }));
            }
        }
    }
    for i in 0..8usize {
        let (app, user) = (app, user);
        jobs.push(Box::pin(async move {
            create(app, user, "notes", &random_bytes(3000 + i)).await;
            201
        }));
    }
    let statuses = join_all(jobs).await;
    assert!(
        statuses.iter().all(|s| [200, 201, 404].contains(s)),
        "{statuses:?}"
    );
    statuses
}

pub async fn storage_usage_equals_the_live_records_after_concurrent_writes(app: TestApp) {
    let user = team_user(&app, "press-usage").await;
    // 24 records of different sizes, created at once.
    let created = join_all((0..24usize).map(|i| {
        let bytes = random_bytes(1000 + 37 * i);
        let (app, user) = (&app, &user);
        async move {
            let table = if i % 2 == 0 { "tasks" } else { "notes" };
            create(app, user, table, &bytes).await
        }
    }))
    .await;
    let ids: Vec<String> = created.iter().map(|(id, _)| id.clone()).collect();

    let statuses = churn(&app, &user, &ids).await;

    // The listing's live records, each downloaded: its bytes match its size and checksum.
    let r = app
        .get_auth("/storage/records?limit=500", &user.access_token)
        .await;
    assert_eq!(r.status(), 200);
    let listed: Vec<Value> = r.json().await.unwrap();
    let live: Vec<&Value> = listed.iter().filter(|m| m["deleted"] != true).collect();
    // 24 - 6 deleted - 6 deleted while being updated + 8 new: a racing update never revives
    // a deleted record.
    assert_eq!(
        live.len(),
        20,
        "{} live of {}: {statuses:?}",
        live.len(),
        listed.len()
    );
    let mut sum = 0u64;
    for m in &live {
        let id = m["id"].as_str().unwrap();
        let (_, bytes) = fetch(&app, &user, id).await;
        assert_eq!(bytes.len() as u64, m["size_bytes"].as_u64().unwrap(), "{m}");
        assert_eq!(sha(&bytes), m["checksum"].as_str().unwrap(), "{m}");
        sum += bytes.len() as u64;
    }
    for m in listed.iter().filter(|m| m["deleted"] == true) {
        let r = app
            .get_auth(
                &format!("/storage/records/{}", m["id"].as_str().unwrap()),
                &user.access_token,
            )
            .await;
        assert_error(r, 404, "not_found").await;
    }

    // The usage the quota check reads, as the user's home reports it: exactly the sum of the
    // live records' sizes.
    let r = app.get_auth("/usage", &user.access_token).await;
    assert_eq!(r.status(), 200);
    let usage: Value = r.json().await.unwrap();
    assert_eq!(
        usage["cloud_storage"]["used_bytes"].as_u64(),
        Some(sum),
        "usage equals the sum of the live records' sizes: {usage}"
    );
}
