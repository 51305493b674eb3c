//! The plugin marketplace end to end: submission and admin review, the Power-only catalog,
//! installs with signed download links, paid installs charged through the scripted Stripe,
//! ratings, developer earnings and the payout run of the worker's cron.
//!
//! Every test writes its own plugins, named with a unique marker so catalog searches see only
//! them, and scopes its Stripe answers by its own customer or Connect account.

// A scenario reads best top to bottom, in one function.
#![allow(clippy::too_many_lines)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{assert_error, state_contains, user_id_of, TestApp, TestUser};
use crate::helpers::{ok_json, send_as as call};

/// Largest package the API takes (10 MiB).
const MAX_PACKAGE_BYTES: usize = 10 * 1024 * 1024;

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A unique word for names, customers and accounts.
fn marker() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// The current UTC month, `YYYY-MM` (civil-from-days, proleptic Gregorian).
fn current_period() -> String {
    let days = now_ms().div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}")
}

/// Some zip-looking bytes, different for every call.
pub(crate) fn package(tag: &str) -> Vec<u8> {
    let mut out = b"PK\x03\x04".to_vec();
    out.extend_from_slice(tag.as_bytes());
    while out.len() < 3000 {
        out.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    out
}

pub(crate) fn manifest(name: &str, version: &str, category: &str, price_cents: u64) -> Value {
    json!({
        "name": name,
        "description": format!("{name}: a plugin written by the end-to-end tests."),
        "version": version,
        "author": "E2E Author",
        "permissions": ["tasks:read", "notifications"],
        "category": category,
        "price_cents": price_cents,
    })
}

fn submission(manifest: &Value, package: &[u8]) -> Value {
    json!({"manifest": manifest, "package": STANDARD.encode(package), "package_checksum": sha(package)})
}

/// Submits a new plugin; asserts the 201 and returns the plugin id.
async fn submit(app: &TestApp, author: &TestUser, manifest: Value, package: &[u8]) -> String {
    let version = manifest["version"].as_str().unwrap().to_owned();
    let r = call(
        app,
        author,
        Method::POST,
        "/plugins",
        Some(&submission(&manifest, package)),
    )
    .await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "submit: {body}");
    assert_eq!(body["version"], version.as_str(), "{body}");
    assert_eq!(body["status"], "pending_review", "{body}");
    assert_eq!(body["package_checksum"], sha(package).as_str(), "{body}");
    assert_eq!(body["package_size"], package.len(), "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::try_parse(&id).is_ok(), "{body}");
    id
}

pub(crate) async fn submit_version(
    app: &TestApp,
    author: &TestUser,
    id: &str,
    manifest: Value,
    package: &[u8],
) -> Response {
    call(
        app,
        author,
        Method::POST,
        &format!("/plugins/{id}/versions"),
        Some(&submission(&manifest, package)),
    )
    .await
}

async fn pending(app: &TestApp, admin: &TestUser) -> Vec<Value> {
    let r = app
        .get_auth("/plugins/review/pending", &admin.access_token)
        .await;
    let body = ok_json(r, "pending reviews").await;
    body["pending"].as_array().unwrap().clone()
}

/// The queue entry of plugin `id`.
async fn pending_entry(app: &TestApp, admin: &TestUser, id: &str) -> Option<Value> {
    pending(app, admin)
        .await
        .into_iter()
        .find(|p| p["plugin_id"] == id)
}

async fn review(
    app: &TestApp,
    reviewer: &TestUser,
    id: &str,
    decision: &str,
    notes: Option<&str>,
) -> Response {
    let mut body = json!({ "decision": decision });
    if let Some(n) = notes {
        body["notes"] = json!(n);
    }
    call(
        app,
        reviewer,
        Method::POST,
        &format!("/plugins/{id}/review"),
        Some(&body),
    )
    .await
}

/// The admin approves the pending version of `id`; returns the review result.
pub(crate) async fn approve(app: &TestApp, id: &str) -> Value {
    let admin = app.admin().await;
    ok_json(review(app, &admin, id, "approve", None).await, "approve").await
}

/// Submits and approves a plugin; returns its id.
pub(crate) async fn publish(
    app: &TestApp,
    author: &TestUser,
    manifest: Value,
    package: &[u8],
) -> String {
    let id = submit(app, author, manifest, package).await;
    let result = approve(app, &id).await;
    assert_eq!(result["status"], "approved", "{result}");
    id
}

/// A fresh user on `tier` whose Stripe customer is `cus_{marker}`; returns it and the customer.
async fn subscriber(app: &TestApp, tag: &str, tier: &str) -> (TestUser, String) {
    let user = app.register(tag).await;
    let customer = format!("cus_{}", marker());
    app.subscribe_as_customer(&user, tier, Some(&customer))
        .await;
    (user, customer)
}

pub(crate) async fn power_user(app: &TestApp, tag: &str) -> (TestUser, String) {
    subscriber(app, tag, "power").await
}

async fn info(app: &TestApp, user: &TestUser, id: &str) -> Value {
    ok_json(
        app.get_auth(&format!("/plugins/{id}"), &user.access_token)
            .await,
        "plugin info",
    )
    .await
}

async fn list(app: &TestApp, user: &TestUser, query: &str) -> Value {
    ok_json(
        app.get_auth(&format!("/plugins?{query}"), &user.access_token)
            .await,
        "catalog",
    )
    .await
}

fn ids(listing: &Value) -> Vec<String> {
    listing["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Installs as the app does: agreeing to the price the catalog shows (the plugin's page is
/// read first, when the user may see it).
async fn install(app: &TestApp, user: &TestUser, id: &str) -> Response {
    let page = app
        .get_auth(&format!("/plugins/{id}"), &user.access_token)
        .await;
    let body = if page.status() == StatusCode::OK {
        let page: Value = page.json().await.unwrap();
        Some(json!({"plugin_id": id, "price_cents": page["price_cents"]}))
    } else {
        None
    };
    call(
        app,
        user,
        Method::POST,
        &format!("/plugins/{id}/install"),
        body.as_ref(),
    )
    .await
}

/// Installs; asserts the answer's shape and returns it.
pub(crate) async fn installed(app: &TestApp, user: &TestUser, id: &str) -> Value {
    let before = now_ms();
    let body = ok_json(install(app, user, id).await, "install").await;
    assert_eq!(body["ok"], true, "{body}");
    assert_download_url(app, &body["download_url"], id);
    let expires = body["expires_at"].as_i64().unwrap();
    assert!(
        expires > before && expires <= now_ms() + 10 * 60 * 1000 + 5000,
        "a link valid for about 10 minutes: {body}"
    );
    body
}

fn assert_download_url(app: &TestApp, url: &Value, id: &str) {
    let prefix = format!("{}/api/v1/plugins/{id}/package?token=", app.base);
    let url = url.as_str().unwrap();
    assert!(
        url.starts_with(&prefix) && url.len() > prefix.len(),
        "{url} is not under {prefix}"
    );
}

async fn uninstall(app: &TestApp, user: &TestUser, id: &str) -> Response {
    call(
        app,
        user,
        Method::DELETE,
        &format!("/plugins/{id}/install"),
        None,
    )
    .await
}

/// GETs an absolute download link with `user`'s bearer token.
async fn download(app: &TestApp, user: &TestUser, url: &str) -> Response {
    app.client
        .get(url)
        .bearer_auth(&user.access_token)
        .send()
        .await
        .expect("request")
}

/// Downloads `url` and asserts it is exactly `package`.
async fn assert_downloads(app: &TestApp, user: &TestUser, url: &str, package: &[u8]) {
    let r = download(app, user, url).await;
    assert_eq!(r.status(), StatusCode::OK, "download {url}");
    assert_eq!(r.headers()["content-type"], "application/zip");
    assert_eq!(r.headers()["x-checksum"], sha(package).as_str());
    let bytes = r.bytes().await.unwrap();
    assert!(
        bytes.as_ref() == package,
        "downloaded {} bytes, not the {} submitted",
        bytes.len(),
        package.len()
    );
}

async fn rate(app: &TestApp, user: &TestUser, id: &str, rating: i64) -> Response {
    call(
        app,
        user,
        Method::POST,
        &format!("/plugins/{id}/rating"),
        Some(&json!({ "rating": rating })),
    )
    .await
}

/// Rates; asserts the answer and returns it.
pub(crate) async fn rated(app: &TestApp, user: &TestUser, id: &str, rating: i64) -> Value {
    let body = ok_json(rate(app, user, id, rating).await, "rating").await;
    assert_eq!(body["ok"], true, "{body}");
    assert_eq!(body["rating"], rating, "{body}");
    body
}

async fn earnings(app: &TestApp, user: &TestUser, query: &str) -> Value {
    ok_json(
        app.get_auth(&format!("/plugins/earnings{query}"), &user.access_token)
            .await,
        "earnings",
    )
    .await
}

fn period<'a>(earnings: &'a Value, period: &str) -> Option<&'a Value> {
    earnings["periods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["period"] == period)
}

/// The field names of a 422 envelope.
fn fields(body: &Value) -> Vec<String> {
    body["error"]["details"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no details.fields in {body}"))
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_owned())
        .collect()
}

/// Asserts a 422 naming `field` (a path in the body, e.g. `manifest.permissions[0]`).
async fn assert_names_field(r: Response, field: &str) {
    let body = assert_error(r, 422, "validation_failed").await;
    assert!(
        fields(&body).iter().any(|f| f == field),
        "{field} not named in {body}"
    );
}

async fn assert_tier_required(r: Response, what: &str) {
    assert_eq!(r.status(), 403, "{what}");
    let body = assert_error(r, 403, "tier_required").await;
    assert_eq!(
        body["error"]["details"]["feature"], "plugin_marketplace",
        "{what}: {body}"
    );
    assert_eq!(
        body["error"]["details"]["required_tier"], "power",
        "{what}: {body}"
    );
}

/// What the worker sent the scripted Stripe to `path` whose body contains `needle`.
async fn stripe_requests(app: &TestApp, path: &str, needle: &str) -> Vec<wiremock::Request> {
    app.stack
        .stripe
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == path && String::from_utf8_lossy(&r.body).contains(needle))
        .collect()
}

fn form(r: &wiremock::Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&r.body).into_owned().collect()
}

fn assert_form(r: &wiremock::Request, expected: &[(&str, &str)]) {
    let form = form(r);
    for (k, v) in expected {
        assert!(
            form.contains(&((*k).to_owned(), (*v).to_owned())),
            "{k}={v} missing from {form:?}"
        );
    }
}

/// Answers the payment-method list of `customer` with `cards`.
pub(crate) async fn mount_cards(app: &TestApp, customer: &str, cards: &[&str]) {
    let data: Vec<Value> = cards
        .iter()
        .map(|id| json!({"id": id, "object": "payment_method", "type": "card"}))
        .collect();
    Mock::given(method("GET"))
        .and(path(format!("/v1/customers/{customer}/payment_methods")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"object": "list", "has_more": false, "data": data})),
        )
        .with_priority(1)
        .mount(&app.stack.stripe)
        .await;
}

/// Answers payment intents of `customer` with `status` and `body`.
pub(crate) async fn mount_intent(app: &TestApp, customer: &str, status: u16, body: Value) {
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(body_string_contains(format!("customer={customer}&")))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .with_priority(1)
        .mount(&app.stack.stripe)
        .await;
}

pub async fn a_plugin_goes_from_submission_through_review_to_installs_ratings_and_uninstall(
    app: TestApp,
) {
    let mark = marker();
    let author = app.register("plugin-author").await;
    let (buyer, _) = power_user(&app, "plugin-buyer").await;
    let (second, _) = power_user(&app, "plugin-buyer2").await;
    let admin = app.admin().await;
    let (id, pkg) = submitted_and_reviewed(&app, &author, &buyer, &admin, &mark).await;
    let id2 = listed_and_installed(&app, &author, &buyer, &mark, &id, &pkg).await;
    rated_and_uninstalled(&app, &buyer, &second, &mark, &id, &id2).await;
}

/// Submission, the review queue and the review rules; returns the approved plugin and its
/// package.
async fn submitted_and_reviewed(
    app: &TestApp,
    author: &TestUser,
    buyer: &TestUser,
    admin: &TestUser,
    mark: &str,
) -> (String, Vec<u8>) {
    // The author (on the free tier) submits; nothing is in the catalog yet.
    let pkg = package("focus-timer");
    let id = submit(
        app,
        author,
        manifest(&format!("Focus Timer {mark}"), "1.0.0", "research", 0),
        &pkg,
    )
    .await;
    assert_error(
        app.get_auth(&format!("/plugins/{id}"), &buyer.access_token)
            .await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        list(app, buyer, &format!("q={mark}")).await["total"],
        0,
        "pending plugins are not listed"
    );

    // The admin sees it in the queue, oldest first, and downloads exactly what was sent.
    let queue = pending(app, admin).await;
    let submitted: Vec<i64> = queue
        .iter()
        .map(|p| p["submitted_at"].as_i64().unwrap())
        .collect();
    assert!(
        submitted.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {submitted:?}"
    );
    let entry = queue
        .iter()
        .find(|p| p["plugin_id"] == id.as_str())
        .expect("the submission is pending review")
        .clone();
    assert_eq!(entry["author_id"], user_id_of(author).as_str());
    assert_eq!(entry["manifest"]["id"], id.as_str());
    assert_eq!(
        entry["manifest"]["name"],
        format!("Focus Timer {mark}").as_str()
    );
    assert_eq!(entry["manifest"]["version"], "1.0.0");
    assert_eq!(entry["manifest"]["category"], "research");
    assert_eq!(entry["live_version"], Value::Null);
    assert_eq!(entry["package_checksum"], sha(&pkg).as_str());
    assert_eq!(entry["package_size"], pkg.len());
    assert!(entry["submitted_at"].as_i64().unwrap() > 1_700_000_000_000);
    assert_download_url(app, &entry["download_url"], &id);
    assert_downloads(app, admin, entry["download_url"].as_str().unwrap(), &pkg).await;

    // Only admins see the queue and review, and nobody reviews their own plugin.
    assert_error(
        app.get_auth("/plugins/review/pending", &author.access_token)
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        review(app, author, &id, "approve", None).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        review(app, buyer, &id, "approve", None).await,
        403,
        "forbidden",
    )
    .await;
    let own = submit(
        app,
        admin,
        manifest(&format!("Admin Tool {mark}"), "1.0.0", "other", 0),
        &package("admin-tool"),
    )
    .await;
    assert_error(
        review(app, admin, &own, "approve", None).await,
        403,
        "forbidden",
    )
    .await;
    assert!(
        pending_entry(app, admin, &own).await.is_some(),
        "a refused self-review leaves the version pending"
    );
    assert_error(
        review(
            app,
            admin,
            &uuid::Uuid::new_v4().to_string(),
            "approve",
            None,
        )
        .await,
        404,
        "not_found",
    )
    .await;

    // Approval publishes it; a second decision finds nothing pending.
    let result = ok_json(review(app, admin, &id, "approve", None).await, "approve").await;
    assert_eq!(
        result,
        json!({"ok": true, "version": "1.0.0", "status": "approved"})
    );
    assert_error(
        review(app, admin, &id, "approve", None).await,
        409,
        "conflict",
    )
    .await;
    assert!(pending_entry(app, admin, &id).await.is_none());

    (id, pkg)
}

/// A second plugin, the catalog's filters and orders, the details, an install and its
/// download; returns the second plugin.
async fn listed_and_installed(
    app: &TestApp,
    author: &TestUser,
    buyer: &TestUser,
    mark: &str,
    id: &str,
    pkg: &[u8],
) -> String {
    // A second plugin of the same author, approved later.
    let pkg2 = package("focus-journal");
    let id2 = publish(
        app,
        author,
        manifest(&format!("Focus Journal {mark}"), "2.0.0", "research", 0),
        &pkg2,
    )
    .await;

    // A Power user finds them by text and category, in the order asked for.
    let found = list(app, buyer, &format!("q={mark}&category=research")).await;
    assert_eq!(found["total"], 2, "{found}");
    assert_eq!(found["page"], 1, "{found}");
    let mut got = ids(&found);
    got.sort();
    let mut want = vec![id.to_owned(), id2.clone()];
    want.sort();
    assert_eq!(got, want);
    let other = list(app, buyer, &format!("q={mark}&category=writing")).await;
    assert_eq!(other["total"], 0, "{other}");
    assert_eq!(other["plugins"], json!([]));
    let journal = list(app, buyer, &format!("q=journal%20{mark}")).await;
    assert_eq!(ids(&journal), vec![id2.clone()], "{journal}");
    assert_eq!(
        ids(&list(app, buyer, &format!("q={mark}&sort=newest")).await),
        vec![id2.clone(), id.to_owned()]
    );
    let page = list(app, buyer, &format!("q={mark}&sort=newest&limit=1&page=2")).await;
    assert_eq!(ids(&page), vec![id.to_owned()], "{page}");
    assert_eq!(page["total"], 2);
    assert_eq!(page["page"], 2);

    let shown = info(app, buyer, id).await;
    assert_eq!(shown["id"], id);
    assert_eq!(shown["name"], format!("Focus Timer {mark}").as_str());
    assert_eq!(shown["version"], "1.0.0");
    assert_eq!(shown["author"], "E2E Author");
    assert_eq!(shown["category"], "research");
    assert_eq!(shown["price_cents"], 0);
    let mut permissions: Vec<&str> = shown["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    permissions.sort_unstable();
    assert_eq!(permissions, ["notifications", "tasks:read"]);
    assert_eq!(shown["avg_rating"], Value::Null);
    assert_eq!(shown["rating_count"], 0);
    assert_eq!(shown["install_count"], 0);

    // Install (the body may name the plugin, but only this one), then download it.
    let r = call(
        app,
        buyer,
        Method::POST,
        &format!("/plugins/{id}/install"),
        Some(&json!({ "plugin_id": id2 })),
    )
    .await;
    assert_names_field(r, "plugin_id").await;
    let r = call(
        app,
        buyer,
        Method::POST,
        &format!("/plugins/{id}/install"),
        Some(&json!({ "plugin_id": id })),
    )
    .await;
    let done = ok_json(r, "install with a body").await;
    assert_eq!(done["charged_cents"], 0, "{done}");
    assert_eq!(done["version"], "1.0.0", "{done}");
    assert_download_url(app, &done["download_url"], id);
    assert_downloads(app, buyer, done["download_url"].as_str().unwrap(), pkg).await;
    assert_eq!(
        ids(&list(app, buyer, &format!("q={mark}&sort=installs")).await),
        vec![id.to_owned(), id2.clone()]
    );

    id2
}

/// Ratings by two installed users, then an uninstall.
async fn rated_and_uninstalled(
    app: &TestApp,
    buyer: &TestUser,
    second: &TestUser,
    mark: &str,
    id: &str,
    id2: &str,
) {
    // Ratings: installed users only, 1 to 5, one per user, averages exact.
    assert_error(rate(app, second, id, 4).await, 403, "forbidden").await;
    let r = rated(app, buyer, id, 5).await;
    assert_eq!(r["avg_rating"], 5.0);
    assert_eq!(r["rating_count"], 1);
    assert_eq!(
        ids(&list(app, buyer, &format!("q={mark}&sort=rating")).await),
        vec![id.to_owned(), id2.to_owned()]
    );
    installed(app, second, id).await;
    for bad in [0, 6] {
        assert_names_field(rate(app, second, id, bad).await, "rating").await;
    }
    let r = rated(app, second, id, 2).await;
    assert_eq!(r["avg_rating"], 3.5);
    assert_eq!(r["rating_count"], 2);
    let r = rated(app, second, id, 4).await;
    assert_eq!(r["avg_rating"], 4.5, "a new rating replaces the old one");
    assert_eq!(r["rating_count"], 2);
    let shown = info(app, buyer, id).await;
    assert_eq!(shown["avg_rating"], 4.5, "{shown}");
    assert_eq!(shown["rating_count"], 2, "{shown}");
    assert_eq!(shown["install_count"], 2, "{shown}");

    // Uninstalling removes the installation and the rating with it.
    let r = ok_json(uninstall(app, second, id).await, "uninstall").await;
    assert_eq!(r, json!({"ok": true}));
    assert_error(uninstall(app, second, id).await, 404, "not_found").await;
    let shown = info(app, buyer, id).await;
    assert_eq!(shown["install_count"], 1, "{shown}");
    assert_eq!(shown["rating_count"], 1, "{shown}");
    assert_eq!(shown["avg_rating"], 5.0, "{shown}");
    assert_error(rate(app, second, id, 3).await, 403, "forbidden").await;
}

pub async fn free_and_pro_users_are_refused_the_marketplace_with_tier_required(app: TestApp) {
    let mark = marker();
    // Authors need no tier: a free user submits and reads their earnings.
    let author = app.register("plugin-free-author").await;
    let id = publish(
        &app,
        &author,
        manifest(&format!("Tier Probe {mark}"), "1.0.0", "productivity", 0),
        &package("tier-probe"),
    )
    .await;
    assert_eq!(
        earnings(&app, &author, "").await["periods"],
        json!([]),
        "no sales yet"
    );

    let free = app.register("plugin-free").await;
    let (pro, _) = subscriber(&app, "plugin-pro", "pro").await;
    for (who, user) in [("free", &free), ("pro", &pro)] {
        assert_tier_required(
            app.get_auth("/plugins", &user.access_token).await,
            &format!("{who}: catalog"),
        )
        .await;
        assert_tier_required(
            app.get_auth(&format!("/plugins/{id}"), &user.access_token)
                .await,
            &format!("{who}: details"),
        )
        .await;
        assert_tier_required(install(&app, user, &id).await, &format!("{who}: install")).await;
        assert_tier_required(rate(&app, user, &id, 5).await, &format!("{who}: rating")).await;
    }

    // Power and Team have it.
    let (power, _) = power_user(&app, "plugin-power").await;
    let (team, _) = subscriber(&app, "plugin-team", "team").await;
    for user in [&power, &team] {
        assert_eq!(info(&app, user, &id).await["id"], id.as_str());
        assert_eq!(
            ids(&list(&app, user, &format!("q={mark}")).await),
            vec![id.clone()]
        );
    }
}

pub async fn a_submission_failing_the_checklist_is_refused_by_name_and_stores_nothing(
    app: TestApp,
) {
    let mark = marker();
    let author = app.register("plugin-checklist").await;
    let pkg = package("checklist");
    let good = manifest(&format!("Checklist {mark}"), "1.0.0", "writing", 0);
    let with = |key: &str, value: Value| {
        let mut m = good.clone();
        m[key] = value;
        m
    };
    let post = |body: Value| {
        let app = app.clone();
        let author = author.clone();
        async move { call(&app, &author, Method::POST, "/plugins", Some(&body)).await }
    };

    for (manifest, field) in [
        (
            with("permissions", json!(["filesystem", "tasks:read"])),
            "manifest.permissions[0]",
        ),
        (
            with("permissions", json!(["tasks:read", "camera"])),
            "manifest.permissions[1]",
        ),
        (with("version", json!("1.0")), "manifest.version"),
        (with("version", json!("v1.0.0")), "manifest.version"),
        (with("category", json!("games")), "manifest.category"),
        (with("price_cents", json!(50)), "manifest.price_cents"),
        (with("price_cents", json!(100_000)), "manifest.price_cents"),
        (
            with("id", json!(uuid::Uuid::new_v4().to_string())),
            "manifest.id",
        ),
    ] {
        let r = post(submission(&manifest, &pkg)).await;
        assert_names_field(r, field).await;
    }

    // The package must be what the checksum says, and at most 10 MiB.
    let mut wrong = submission(&good, &pkg);
    wrong["package_checksum"] = json!(sha(b"something else"));
    assert_error(post(wrong).await, 400, "checksum_mismatch").await;
    let mut big = package("big");
    big.resize(MAX_PACKAGE_BYTES + 1, 7);
    assert_error(
        post(submission(&good, &big)).await,
        413,
        "payload_too_large",
    )
    .await;

    // Fields the manifest does not have, anywhere in the body, are refused by name (the API's
    // rule for a body of the wrong shape: 422, not 400).
    let r = post(submission(
        &with("homepage", json!("https://x.example")),
        &pkg,
    ))
    .await;
    assert_names_field(r, "manifest.homepage").await;
    let mut extra = submission(&good, &pkg);
    extra["signature"] = json!("abc");
    assert_names_field(post(extra).await, "signature").await;

    // Nothing of it waits for review.
    let admin = app.admin().await;
    let author_id = user_id_of(&author);
    assert!(
        !pending(&app, &admin)
            .await
            .iter()
            .any(|p| p["author_id"] == author_id.as_str()),
        "a refused submission is not queued"
    );
    // The same body with the checklist satisfied goes through.
    submit(&app, &author, good, &pkg).await;
}

pub async fn a_new_version_goes_through_review_again_while_the_approved_one_stays_live(
    app: TestApp,
) {
    let mark = marker();
    let name = format!("Versioned {mark}");
    let author = app.register("plugin-versions").await;
    let (user, _) = power_user(&app, "plugin-versions-user").await;
    let admin = app.admin().await;
    let v1 = package("v1.0.0");
    let id = publish(
        &app,
        &author,
        manifest(&name, "1.0.0", "development", 0),
        &v1,
    )
    .await;

    // Only the author submits versions, and only above every version submitted so far.
    let v11 = package("v1.1.0");
    let r = submit_version(
        &app,
        &user,
        &id,
        manifest(&name, "1.1.0", "development", 0),
        &v11,
    )
    .await;
    assert_error(r, 404, "not_found").await;
    for lower in ["1.0.0", "0.9.9", "1.0.0-beta.1"] {
        let r = submit_version(
            &app,
            &author,
            &id,
            manifest(&name, lower, "development", 0),
            &v11,
        )
        .await;
        assert_names_field(r, "manifest.version").await;
    }
    let r = submit_version(
        &app,
        &author,
        &id,
        manifest(&name, "1.1.0", "development", 0),
        &v11,
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["version"], "1.1.0");
    assert_eq!(body["status"], "pending_review");

    // One version waits at a time; the catalog keeps showing the approved one.
    let r = submit_version(
        &app,
        &author,
        &id,
        manifest(&name, "1.2.0", "development", 0),
        &package("v1.2.0"),
    )
    .await;
    assert_error(r, 409, "conflict").await;
    assert_eq!(info(&app, &user, &id).await["version"], "1.0.0");
    let listed = list(&app, &user, &format!("q={mark}")).await;
    assert_eq!(listed["plugins"][0]["version"], "1.0.0", "{listed}");
    let entry = pending_entry(&app, &admin, &id)
        .await
        .expect("the new version is pending");
    assert_eq!(entry["manifest"]["version"], "1.1.0");
    assert_eq!(entry["live_version"], "1.0.0");
    assert_downloads(&app, &admin, entry["download_url"].as_str().unwrap(), &v11).await;
    let done = installed(&app, &user, &id).await;
    assert_eq!(done["version"], "1.0.0");
    assert_downloads(&app, &user, done["download_url"].as_str().unwrap(), &v1).await;

    // Rejecting needs a reason; the plugin stays approved at 1.0.0.
    assert_names_field(review(&app, &admin, &id, "reject", None).await, "notes").await;
    assert_names_field(
        review(&app, &admin, &id, "reject", Some("   ")).await,
        "notes",
    )
    .await;
    let r = ok_json(
        review(
            &app,
            &admin,
            &id,
            "reject",
            Some("Asks for more than it needs."),
        )
        .await,
        "reject",
    )
    .await;
    assert_eq!(
        r,
        json!({"ok": true, "version": "1.1.0", "status": "approved"})
    );
    assert!(pending_entry(&app, &admin, &id).await.is_none());
    let shown = info(&app, &user, &id).await;
    assert_eq!(shown["version"], "1.0.0", "{shown}");
    assert_eq!(shown["install_count"], 1, "{shown}");

    // A rejected version still counts: the next one must be above it.
    let r = submit_version(
        &app,
        &author,
        &id,
        manifest(&name, "1.1.0", "development", 0),
        &v11,
    )
    .await;
    assert_names_field(r, "manifest.version").await;
    let v12 = package("v1.2.0");
    let r = submit_version(
        &app,
        &author,
        &id,
        manifest(&name, "1.2.0", "development", 0),
        &v12,
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = approve(&app, &id).await;
    assert_eq!(
        r,
        json!({"ok": true, "version": "1.2.0", "status": "approved"})
    );
    assert_eq!(info(&app, &user, &id).await["version"], "1.2.0");
    let done = installed(&app, &user, &id).await;
    assert_eq!(done["version"], "1.2.0");
    assert_downloads(&app, &user, done["download_url"].as_str().unwrap(), &v12).await;
}

pub async fn a_download_link_works_only_for_its_user_and_plugin_with_its_token_intact(
    app: TestApp,
) {
    let mark = marker();
    let author = app.register("plugin-links-author").await;
    let (alice, _) = power_user(&app, "plugin-links-a").await;
    let (bob, _) = power_user(&app, "plugin-links-b").await;
    let pkg = package("links-p");
    let p = publish(
        &app,
        &author,
        manifest(&format!("Links P {mark}"), "1.0.0", "automation", 0),
        &pkg,
    )
    .await;
    let q = publish(
        &app,
        &author,
        manifest(&format!("Links Q {mark}"), "1.0.0", "automation", 0),
        &package("links-q"),
    )
    .await;
    let alice_url = installed(&app, &alice, &p).await["download_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_url = installed(&app, &bob, &p).await["download_url"]
        .as_str()
        .unwrap()
        .to_owned();
    installed(&app, &alice, &q).await;
    assert_downloads(&app, &alice, &alice_url, &pkg).await;
    assert_downloads(&app, &bob, &bob_url, &pkg).await;

    let token = alice_url.split("token=").nth(1).unwrap().to_owned();
    let (payload, mac) = token.split_once('.').expect("payload.mac");
    for (what, i) in [
        ("payload", payload.len() / 2),
        ("mac", payload.len() + 1 + mac.len() / 2),
    ] {
        let mut chars: Vec<char> = token.chars().collect();
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        let url = alice_url.replace(&token, &tampered);
        let r = download(&app, &alice, &url).await;
        assert_eq!(r.status(), 403, "a token with its {what} changed");
        assert_error(r, 403, "forbidden").await;
    }
    // The same claims signed with `JWT_SECRET` itself, as links once were: the download key is
    // derived for this one purpose, so the access-token secret never signs a link.
    {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        use hmac::{Hmac, Mac};
        let claims = URL_SAFE_NO_PAD.decode(payload).unwrap();
        let mut m =
            <Hmac<sha2::Sha256> as Mac>::new_from_slice(crate::harness::JWT_SECRET.as_bytes())
                .unwrap();
        m.update(b"adiuva/plugin-download/v1\n");
        m.update(&claims);
        let forged = format!(
            "{payload}.{}",
            URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
        );
        assert_ne!(forged, token);
        let r = download(&app, &alice, &alice_url.replace(&token, &forged)).await;
        assert_error(r, 403, "forbidden").await;
    }
    // Another user's link, a link used for another plugin, no token at all.
    assert_error(download(&app, &bob, &alice_url).await, 403, "forbidden").await;
    let other_plugin = alice_url.replace(&format!("/plugins/{p}/"), &format!("/plugins/{q}/"));
    assert_error(
        download(&app, &alice, &other_plugin).await,
        403,
        "forbidden",
    )
    .await;
    for bare in [
        format!("{}/api/v1/plugins/{p}/package", app.base),
        format!("{}/api/v1/plugins/{p}/package?token=", app.base),
    ] {
        assert_error(download(&app, &alice, &bare).await, 403, "forbidden").await;
    }
    // The link is not a credential by itself.
    let r = app.client.get(&alice_url).send().await.unwrap();
    assert_error(r, 401, "unauthorized").await;
    // The untouched link still works.
    assert_downloads(&app, &alice, &alice_url, &pkg).await;
}

pub async fn a_paid_install_charges_the_saved_card_once_and_books_the_revenue(app: TestApp) {
    let mark = marker();
    let author = app.register("plugin-seller").await;
    let (buyer, customer) = power_user(&app, "plugin-payer").await;
    let card = format!("pm_{mark}");
    let intent = format!("pi_{mark}");
    mount_cards(&app, &customer, &[&card, "pm_second"]).await;
    mount_intent(
        &app,
        &customer,
        200,
        json!({"id": intent, "object": "payment_intent", "status": "succeeded"}),
    )
    .await;
    let pkg = package("paid");
    let id = publish(
        &app,
        &author,
        manifest(&format!("Paid Digest {mark}"), "1.0.0", "analytics", 1999),
        &pkg,
    )
    .await;
    assert_eq!(info(&app, &buyer, &id).await["price_cents"], 1999);

    let done = installed(&app, &buyer, &id).await;
    assert_eq!(done["charged_cents"], 1999, "{done}");
    assert_downloads(&app, &buyer, done["download_url"].as_str().unwrap(), &pkg).await;

    // Stripe saw: the customer's cards, then one confirmed off-session intent on the first.
    let buyer_id = user_id_of(&buyer);
    let lists: Vec<_> = app
        .stack
        .stripe
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == format!("/v1/customers/{customer}/payment_methods"))
        .collect();
    assert_eq!(lists.len(), 1, "one look at the saved cards");
    assert_eq!(lists[0].method.as_str(), "GET");
    assert_eq!(lists[0].headers["authorization"], "Bearer sk_test_e2e");
    let query: Vec<(String, String)> = lists[0].url.query_pairs().into_owned().collect();
    assert!(query.contains(&("type".into(), "card".into())), "{query:?}");
    assert!(query.contains(&("limit".into(), "1".into())), "{query:?}");

    let intents = stripe_requests(
        &app,
        "/v1/payment_intents",
        &format!("customer={customer}&"),
    )
    .await;
    assert_eq!(intents.len(), 1, "one payment intent");
    let sent = &intents[0];
    assert_eq!(sent.method.as_str(), "POST");
    assert_eq!(sent.headers["authorization"], "Bearer sk_test_e2e");
    assert_eq!(
        sent.headers["idempotency-key"],
        format!("plugin-purchase:{id}:{buyer_id}:1999:{card}").as_str()
    );
    assert_eq!(
        sent.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_form(
        sent,
        &[
            ("amount", "1999"),
            ("currency", "eur"),
            ("customer", &customer),
            ("payment_method", &card),
            ("confirm", "true"),
            ("off_session", "true"),
            ("transfer_group", &format!("plugin_{id}")),
            ("metadata[plugin_id]", &id),
            ("metadata[user_id]", &buyer_id),
        ],
    );
    assert!(
        form(sent)
            .iter()
            .any(|(k, v)| k == "description" && !v.is_empty()),
        "a description for the statement"
    );

    // Installing again, even after uninstalling, charges nothing.
    let again = installed(&app, &buyer, &id).await;
    assert_eq!(again["charged_cents"], 0, "{again}");
    ok_json(uninstall(&app, &buyer, &id).await, "uninstall").await;
    let again = installed(&app, &buyer, &id).await;
    assert_eq!(again["charged_cents"], 0, "a purchase is kept: {again}");
    assert_eq!(
        stripe_requests(
            &app,
            "/v1/payment_intents",
            &format!("customer={customer}&")
        )
        .await
        .len(),
        1,
        "no second payment intent"
    );

    // The sale is the developer's: 70 % rounded down, the platform keeps the rest.
    let e = earnings(&app, &author, "").await;
    let this_month = current_period();
    assert_eq!(e["periods"].as_array().unwrap().len(), 1, "{e}");
    let p = period(&e, &this_month).unwrap_or_else(|| panic!("{this_month} in {e}"));
    assert_eq!(p["sales"], 1, "{e}");
    assert_eq!(p["gross_cents"], 1999, "{e}");
    assert_eq!(p["developer_cents"], 1399, "{e}");
    assert_eq!(p["platform_cents"], 600, "{e}");
    assert_eq!(
        p["developer_cents"].as_u64().unwrap() + p["platform_cents"].as_u64().unwrap(),
        p["gross_cents"].as_u64().unwrap()
    );
    assert_eq!(p["payout_status"], "unpaid", "{e}");
    assert_eq!(p["transfer_id"], Value::Null, "{e}");
    assert_eq!(e["payout_account"], Value::Null, "{e}");
    let only = earnings(&app, &author, &format!("?period={this_month}")).await;
    assert_eq!(only["periods"], json!([p]));
    assert_eq!(
        earnings(&app, &author, "?period=2020-01").await["periods"],
        json!([])
    );
    assert_names_field(
        app.get_auth("/plugins/earnings?period=2026-13", &author.access_token)
            .await,
        "period",
    )
    .await;
    assert_eq!(
        earnings(&app, &buyer, "").await["periods"],
        json!([]),
        "buying earns nothing"
    );
    let shown = info(&app, &buyer, &id).await;
    assert_eq!(shown["install_count"], 1, "{shown}");
}

pub async fn a_declined_card_or_a_missing_customer_is_402_and_installs_nothing(app: TestApp) {
    let mark = marker();
    let author = app.register("plugin-declines").await;
    let id = publish(
        &app,
        &author,
        manifest(&format!("Declined {mark}"), "1.0.0", "integrations", 499),
        &package("declined"),
    )
    .await;

    // No saved card: no payment intent is even attempted.
    let (no_card, no_card_customer) = power_user(&app, "plugin-nocard").await;
    mount_cards(&app, &no_card_customer, &[]).await;
    let r = install(&app, &no_card, &id).await;
    let body = assert_error(r, 402, "payment_required").await;
    assert!(
        !body.to_string().contains("sk_test_e2e"),
        "no secret in {body}"
    );
    assert!(
        stripe_requests(
            &app,
            "/v1/payment_intents",
            &format!("customer={no_card_customer}&")
        )
        .await
        .is_empty(),
        "no intent without a card"
    );

    // The bank declines the card.
    let (declined, declined_customer) = power_user(&app, "plugin-declined").await;
    mount_intent(
        &app,
        &declined_customer,
        402,
        json!({"error": {"type": "card_error", "code": "card_declined",
            "decline_code": "insufficient_funds", "message": "Your card has insufficient funds."}}),
    )
    .await;
    assert_error(install(&app, &declined, &id).await, 402, "payment_required").await;
    assert_eq!(
        stripe_requests(
            &app,
            "/v1/payment_intents",
            &format!("customer={declined_customer}&")
        )
        .await
        .len(),
        1,
        "a decline is not retried"
    );

    // The card needs the buyer present (3-D Secure): not charged either.
    let (sca, sca_customer) = power_user(&app, "plugin-sca").await;
    mount_intent(
        &app,
        &sca_customer,
        200,
        json!({"id": format!("pi_{mark}"), "object": "payment_intent", "status": "requires_action"}),
    )
    .await;
    assert_error(install(&app, &sca, &id).await, 402, "payment_required").await;

    // A Power user Stripe has no customer for.
    let nobody = app.register("plugin-nocustomer").await;
    app.subscribe_as_customer(&nobody, "power", None).await;
    assert_error(install(&app, &nobody, &id).await, 402, "payment_required").await;

    // None of them has the plugin.
    for user in [&no_card, &declined, &sca, &nobody] {
        assert_error(rate(&app, user, &id, 5).await, 403, "forbidden").await;
        assert_error(uninstall(&app, user, &id).await, 404, "not_found").await;
    }
    assert_eq!(info(&app, &no_card, &id).await["install_count"], 0);
    assert_eq!(earnings(&app, &author, "").await["periods"], json!([]));
}

pub async fn a_closed_period_is_paid_out_by_the_cron_exactly_once(app: TestApp) {
    let mark = marker();
    let author = app.register("plugin-payee").await;
    let account = format!("acct_{mark}");
    let transfer = format!("tr_{mark}");

    for bad in ["acct_", "ba_123", "acct_with-dash", "acct_1 2"] {
        let r = call(
            &app,
            &author,
            Method::PUT,
            "/plugins/earnings/account",
            Some(&json!({ "stripe_account_id": bad })),
        )
        .await;
        assert_names_field(r, "stripe_account_id").await;
    }
    let r = call(
        &app,
        &author,
        Method::PUT,
        "/plugins/earnings/account",
        Some(&json!({ "stripe_account_id": account })),
    )
    .await;
    assert_eq!(ok_json(r, "payout account").await, json!({"ok": true}));
    assert_eq!(
        earnings(&app, &author, "").await["payout_account"],
        account.as_str()
    );

    Mock::given(method("POST"))
        .and(path("/v1/transfers"))
        .and(body_string_contains(format!("destination={account}")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": transfer, "object": "transfer"})),
        )
        .with_priority(1)
        .mount(&app.stack.stripe)
        .await;

    let id = publish(
        &app,
        &author,
        manifest(&format!("Payout {mark}"), "1.0.0", "analytics", 1999),
        &package("payout"),
    )
    .await;
    let (buyer, _) = power_user(&app, "plugin-payout-buyer").await;
    assert_eq!(installed(&app, &buyer, &id).await["charged_cents"], 1999);

    // The open period is not paid out.
    app.stack.run_cron().await.expect("cron");
    assert!(
        stripe_requests(&app, "/v1/transfers", &format!("destination={account}"))
            .await
            .is_empty(),
        "the current month is still open"
    );

    // Move the sale into January 2026, a closed period, then let the cron run twice.
    app.stack
        .d1_execute(&format!(
            "UPDATE revenue_events SET period = '2026-01', created_at = 1767225600000 \
             WHERE plugin_id = '{id}'"
        ))
        .await
        .expect("backdating the sale");
    app.stack.run_cron().await.expect("cron");
    let paid = wait_for_paid(&app, &author, "2026-01").await;
    assert_eq!(paid["sales"], 1, "{paid}");
    assert_eq!(paid["gross_cents"], 1999, "{paid}");
    assert_eq!(paid["developer_cents"], 1399, "{paid}");
    assert_eq!(paid["platform_cents"], 600, "{paid}");
    assert_eq!(paid["transfer_id"], transfer.as_str(), "{paid}");

    let sent = stripe_requests(&app, "/v1/transfers", &format!("destination={account}")).await;
    assert_eq!(sent.len(), 1, "exactly one transfer");
    assert_eq!(sent[0].headers["authorization"], "Bearer sk_test_e2e");
    let key = sent[0].headers["idempotency-key"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!key.is_empty());
    assert_form(
        &sent[0],
        &[
            ("amount", "1399"),
            ("currency", "eur"),
            ("destination", &account),
        ],
    );
    assert!(
        form(&sent[0])
            .iter()
            .any(|(k, v)| k == "transfer_group" && !v.is_empty()),
        "a transfer group"
    );

    app.stack.run_cron().await.expect("cron");
    assert_eq!(
        stripe_requests(&app, "/v1/transfers", &format!("destination={account}"))
            .await
            .len(),
        1,
        "a paid period is not paid again"
    );
    let e = earnings(&app, &author, "?period=2026-01").await;
    assert_eq!(e["periods"][0]["payout_status"], "paid", "{e}");
    assert_eq!(e["periods"][0]["transfer_id"], transfer.as_str(), "{e}");
    assert!(
        period(&earnings(&app, &author, "").await, &current_period()).is_none(),
        "the sale moved out of the current month"
    );
}

/// Polls the developer's earnings until `period` is paid (the cron answers when it is done,
/// but give the write a moment anyway).
async fn wait_for_paid(app: &TestApp, developer: &TestUser, wanted: &str) -> Value {
    let started = Instant::now();
    loop {
        let e = earnings(app, developer, "").await;
        if let Some(p) = period(&e, wanted) {
            if p["payout_status"] == "paid" {
                return p.clone();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{wanted} not paid: {e}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Defect 6 of the December review: one free account submitted 12 packages in seconds, all
/// pending. Now: at most 5 pending per author (403 `quota_exceeded`), 20 submissions an hour
/// (429), and a rejected package is deleted from storage.
pub async fn an_author_has_at_most_five_pending_versions_and_rejected_packages_are_deleted(
    app: TestApp,
) {
    let mark = marker();
    let author = app.register("plugin-flood").await;
    let admin = app.admin().await;
    let mut ids = Vec::new();
    let mut packages = Vec::new();
    for i in 0..5 {
        let pkg = package(&format!("flood-{mark}-{i}"));
        ids.push(
            submit(
                &app,
                &author,
                manifest(&format!("Flood {mark} {i}"), "1.0.0", "productivity", 0),
                &pkg,
            )
            .await,
        );
        packages.push(pkg);
    }
    let sixth = package(&format!("flood-{mark}-6"));
    let r = call(
        &app,
        &author,
        Method::POST,
        "/plugins",
        Some(&submission(
            &manifest(&format!("Flood {mark} 6"), "1.0.0", "productivity", 0),
            &sixth,
        )),
    )
    .await;
    let body = assert_error(r, 403, "quota_exceeded").await;
    assert_eq!(body["error"]["details"]["limit"], 5, "{body}");
    assert!(
        !state_contains(&app, format!("flood-{mark}-6").as_bytes()),
        "a refused package is not stored"
    );
    // New versions of the author's plugins count too.
    let r = submit_version(
        &app,
        &author,
        &ids[0],
        manifest(&format!("Flood {mark} 0"), "1.1.0", "productivity", 0),
        &package("v"),
    )
    .await;
    // (the plugin already has a version pending: that is refused by the per-plugin rule or the
    // author's limit, never stored)
    assert!(r.status() == 403 || r.status() == 409, "{}", r.status());

    // Rejecting frees a slot and deletes the package.
    let marker_bytes = format!("flood-{mark}-0");
    assert!(
        state_contains(&app, marker_bytes.as_bytes()),
        "stored while pending"
    );
    let r = review(&app, &admin, &ids[0], "reject", Some("not useful")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        !state_contains(&app, marker_bytes.as_bytes()),
        "the rejected package is gone from R2"
    );
    submit(
        &app,
        &author,
        manifest(&format!("Flood {mark} 6"), "1.0.0", "productivity", 0),
        &sixth,
    )
    .await;

    // Eight submissions so far; twelve more are allowed this hour (refused by the pending
    // limit), the next is over the rate.
    for _ in 0..12 {
        let r = call(
            &app,
            &author,
            Method::POST,
            "/plugins",
            Some(&submission(
                &manifest(&format!("Flood {mark} x"), "1.0.0", "productivity", 0),
                &package("x"),
            )),
        )
        .await;
        assert_error(r, 403, "quota_exceeded").await;
    }
    let r = call(
        &app,
        &author,
        Method::POST,
        "/plugins",
        Some(&submission(
            &manifest(&format!("Flood {mark} y"), "1.0.0", "productivity", 0),
            &package("y"),
        )),
    )
    .await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, 429, "rate_limited").await;
}

/// Defect 7: an author installed their own plugin for free and rated it 5 stars.
pub async fn an_author_cannot_rate_their_own_plugin(app: TestApp) {
    let mark = marker();
    let (author, _) = power_user(&app, "plugin-self-rater").await;
    let id = publish(
        &app,
        &author,
        manifest(&format!("Self Rated {mark}"), "1.0.0", "productivity", 0),
        &package("self"),
    )
    .await;
    installed(&app, &author, &id).await;
    assert_error(rate(&app, &author, &id, 5).await, 403, "forbidden").await;
    let page = info(&app, &author, &id).await;
    assert_eq!(page["rating_count"], 0, "{page}");
}

/// A raised price was charged silently. Now the buyer names the price they saw: a different
/// one is 409 and charges nothing; none at all is 422.
pub async fn a_paid_install_charges_only_the_price_the_buyer_confirmed(app: TestApp) {
    let mark = marker();
    let author = app.register("plugin-repricer").await;
    let (buyer, customer) = power_user(&app, "plugin-careful-buyer").await;
    mount_cards(&app, &customer, &[&format!("pm_{mark}")]).await;
    mount_intent(
        &app,
        &customer,
        200,
        json!({"id": format!("pi_{mark}"), "object": "payment_intent", "status": "succeeded"}),
    )
    .await;
    let id = publish(
        &app,
        &author,
        manifest(&format!("Repriced {mark}"), "1.0.0", "analytics", 499),
        &package("repriced"),
    )
    .await;
    let path = format!("/plugins/{id}/install");
    let r = call(&app, &buyer, Method::POST, &path, None).await;
    let body = assert_error(r, 422, "validation_failed").await;
    assert_eq!(
        body["error"]["details"]["fields"][0]["field"],
        "price_cents"
    );
    let r = call(
        &app,
        &buyer,
        Method::POST,
        &path,
        Some(&json!({"plugin_id": id, "price_cents": 299})),
    )
    .await;
    assert_error(r, 409, "conflict").await;
    assert!(
        stripe_requests(
            &app,
            "/v1/payment_intents",
            &format!("customer={customer}&")
        )
        .await
        .is_empty(),
        "nothing was charged"
    );
    let r = call(
        &app,
        &buyer,
        Method::POST,
        &path,
        Some(&json!({"plugin_id": id, "price_cents": 499})),
    )
    .await;
    let done = ok_json(r, "install at the confirmed price").await;
    assert_eq!(done["charged_cents"], 499);
}
