//! The vector store end to end under `wrangler dev` (the local backend: the user's home is the index).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::billing::subscribe;
use crate::helpers::{assert_error, TestApp, TestUser};

fn item(id: &str, values: Option<&[f32]>, blob: &[u8]) -> Value {
    let mut v = json!({"id": id, "blob": STANDARD.encode(blob),
        "checksum": hex::encode(Sha256::digest(blob))});
    if let Some(values) = values {
        v["values"] = json!(values);
    }
    v
}

async fn call(
    app: &TestApp,
    user: &TestUser,
    method: Method,
    path: &str,
    body: &Value,
) -> reqwest::Response {
    app.req(method, path)
        .bearer_auth(&user.access_token)
        .json(body)
        .send()
        .await
        .expect("request")
}

async fn upsert(app: &TestApp, user: &TestUser, items: Vec<Value>) -> reqwest::Response {
    call(
        app,
        user,
        Method::POST,
        "/storage/vectors/upsert",
        &json!({ "vectors": items }),
    )
    .await
}

async fn search(app: &TestApp, user: &TestUser, body: &Value) -> Vec<(String, f64, String)> {
    let r = call(app, user, Method::POST, "/storage/vectors/search", body).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap().to_owned(),
                h["score"].as_f64().unwrap(),
                h["blob"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn pro_user(app: &TestApp, tag: &str) -> TestUser {
    let user = app.register(tag).await;
    subscribe(app, &user, "pro", 1).await;
    user
}

pub async fn vectors_are_stored_searched_best_first_and_deleted(app: TestApp) {
    let user = pro_user(&app, "vectors-crud").await;
    let r = upsert(
        &app,
        &user,
        vec![
            item("north", Some(&[0.0, 1.0, 0.0]), b"enc-north"),
            item("east", Some(&[1.0, 0.0, 0.0]), b"enc-east"),
            item("north-east", Some(&[0.7, 0.7, 0.0]), b"enc-ne"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["upserted"], 3);

    let hits = search(&app, &user, &json!({"vector": [0.9, 0.2, 0.0], "top_k": 3})).await;
    let ids: Vec<&str> = hits.iter().map(|h| h.0.as_str()).collect();
    assert_eq!(ids, ["east", "north-east", "north"]);
    assert!(hits[0].1 > hits[1].1 && hits[1].1 > hits[2].1, "{hits:?}");
    assert_eq!(
        hits[0].2,
        STANDARD.encode(b"enc-east"),
        "the payload comes back as stored"
    );
    assert_eq!(
        search(&app, &user, &json!({"vector": [0.9, 0.2, 0.0], "top_k": 1}))
            .await
            .len(),
        1
    );

    // Replacing keeps one entry per id.
    let r = upsert(
        &app,
        &user,
        vec![item("east", Some(&[0.0, 0.0, 1.0]), b"enc-east-2")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let hits = search(
        &app,
        &user,
        &json!({"vector": [0.0, 0.0, 1.0], "top_k": 10}),
    )
    .await;
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0].0, "east");
    assert_eq!(hits[0].2, STANDARD.encode(b"enc-east-2"));

    let r = call(
        &app,
        &user,
        Method::DELETE,
        "/storage/vectors",
        &json!({"ids": ["east", "nope"]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let hits = search(
        &app,
        &user,
        &json!({"vector": [0.0, 0.0, 1.0], "top_k": 10}),
    )
    .await;
    let ids: Vec<&str> = hits.iter().map(|h| h.0.as_str()).collect();
    assert!(!ids.contains(&"east"), "{ids:?}");
    assert_eq!(ids.len(), 2);
}

pub async fn a_blob_without_values_is_found_by_the_same_blob_only(app: TestApp) {
    let user = pro_user(&app, "vectors-blob").await;
    let r = upsert(
        &app,
        &user,
        vec![item("a", None, b"cipher-a"), item("b", None, b"cipher-b")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let hits = search(
        &app,
        &user,
        &json!({"query_blob": STANDARD.encode(b"cipher-b"), "top_k": 2}),
    )
    .await;
    assert_eq!(hits[0].0, "b");
    assert!((hits[0].1 - 1.0).abs() < 1e-4, "{hits:?}");
    assert!(hits[1].1 < 0.9, "another blob is not a match: {hits:?}");
}

pub async fn one_users_vectors_are_invisible_to_another(app: TestApp) {
    let alice = pro_user(&app, "vectors-alice").await;
    let bob = pro_user(&app, "vectors-bob").await;
    let r = upsert(
        &app,
        &alice,
        vec![item("secret", Some(&[1.0, 0.0]), b"alice-only")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(search(&app, &bob, &json!({"vector": [1.0, 0.0]}))
        .await
        .is_empty());
    let r = call(
        &app,
        &bob,
        Method::DELETE,
        "/storage/vectors",
        &json!({"ids": ["secret"]}),
    )
    .await;
    assert_eq!(
        r.status(),
        200,
        "deleting what one does not have is a no-op"
    );
    assert_eq!(
        search(&app, &alice, &json!({"vector": [1.0, 0.0]}))
            .await
            .len(),
        1
    );
}

pub async fn a_second_dimension_is_refused_until_the_vectors_are_deleted(app: TestApp) {
    let user = pro_user(&app, "vectors-dims").await;
    assert_eq!(
        upsert(&app, &user, vec![item("a", Some(&[1.0, 2.0]), b"a")])
            .await
            .status(),
        200
    );
    let r = upsert(&app, &user, vec![item("b", Some(&[1.0, 2.0, 3.0]), b"b")]).await;
    let err = assert_error(r, 422, "validation_failed").await;
    assert_eq!(
        err["error"]["details"]["fields"][0]["field"],
        "vectors[0].values"
    );
    let r = call(
        &app,
        &user,
        Method::POST,
        "/storage/vectors/search",
        &json!({"vector": [1.0, 2.0, 3.0]}),
    )
    .await;
    assert_error(r, 422, "validation_failed").await;
    let r = call(
        &app,
        &user,
        Method::DELETE,
        "/storage/vectors",
        &json!({"ids": ["a"]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        upsert(&app, &user, vec![item("b", Some(&[1.0, 2.0, 3.0]), b"b")])
            .await
            .status(),
        200
    );
}

pub async fn bad_items_are_named_and_nothing_is_stored(app: TestApp) {
    let user = pro_user(&app, "vectors-bad").await;
    let mut wrong = item("x", Some(&[1.0]), b"one");
    wrong["checksum"] = json!(hex::encode(Sha256::digest(b"two")));
    let r = upsert(&app, &user, vec![item("ok", Some(&[1.0]), b"fine"), wrong]).await;
    assert_error(r, 400, "checksum_mismatch").await;
    assert!(
        search(&app, &user, &json!({"vector": [1.0]}))
            .await
            .is_empty(),
        "all or nothing"
    );

    let r = upsert(
        &app,
        &user,
        vec![
            item("bad id!", Some(&[1.0]), b"x"),
            item("z", Some(&[]), b"x"),
        ],
    )
    .await;
    let err = assert_error(r, 422, "validation_failed").await;
    let fields: Vec<&str> = err["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["vectors[0].id", "vectors[1].values"]);
    let many: Vec<Value> = (0..101)
        .map(|i| item(&format!("v{i}"), Some(&[1.0]), b"x"))
        .collect();
    assert_error(upsert(&app, &user, many).await, 422, "validation_failed").await;
    for bad in [
        json!({"vector": [1.0], "top_k": 0}),
        json!({}),
        json!({"vector": [1.0], "extra": 1}),
    ] {
        let r = call(&app, &user, Method::POST, "/storage/vectors/search", &bad).await;
        assert_error(r, 422, "validation_failed").await;
    }
}

pub async fn free_users_have_no_vector_storage(app: TestApp) {
    let user = app.register("vectors-free").await;
    let r = upsert(&app, &user, vec![item("a", Some(&[1.0]), b"a")]).await;
    let err = assert_error(r, 403, "tier_required").await;
    assert_eq!(err["error"]["details"]["feature"], "cloud_storage_gb");
    let r = call(
        &app,
        &user,
        Method::POST,
        "/storage/vectors/search",
        &json!({"vector": [1.0]}),
    )
    .await;
    assert_error(r, 403, "tier_required").await;
}

pub async fn a_full_batch_of_a_hundred_is_stored_replaced_and_deleted(app: TestApp) {
    // D1 binds at most 100 parameters per statement; a full batch must not hit that.
    let user = pro_user(&app, "vectors-batch").await;
    let ids: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
    let batch = |tag: &str| -> Vec<Value> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                #[allow(clippy::cast_precision_loss)]
                let v = [1.0, i as f32 + 1.0];
                item(id, Some(&v), format!("{tag}-{id}").as_bytes())
            })
            .collect()
    };
    assert_eq!(upsert(&app, &user, batch("first")).await.status(), 200);
    assert_eq!(upsert(&app, &user, batch("second")).await.status(), 200);
    let hits = search(&app, &user, &json!({"vector": [1.0, 100.0], "top_k": 100})).await;
    assert_eq!(hits.len(), 100);
    assert!(hits
        .iter()
        .all(|h| STANDARD.decode(&h.2).unwrap().starts_with(b"second-")));
    let r = call(
        &app,
        &user,
        Method::DELETE,
        "/storage/vectors",
        &json!({ "ids": ids }),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(search(&app, &user, &json!({"vector": [1.0, 2.0]}))
        .await
        .is_empty());
}
