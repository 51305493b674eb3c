//! The admin endpoints end to end: who is an admin (and who is not: a user, an unverified
//! admin address, a suspended admin's token), user lookup, suspension (requests, login,
//! refresh, sockets), comps at the gates, the review queue, payouts and the audit log.

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::billing::subscribe;
use crate::harness::{random_ip, OPS_ADMIN_EMAIL, UNVERIFIED_ADMIN_EMAIL};
use crate::helpers::{assert_error, sha, user_id_of, TestApp, TestUser};
use crate::helpers::{ok_json as ok, send_as as call};
use crate::home::{next, socket, Next};

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

async fn login(app: &TestApp, email: &str, password: &str) -> Response {
    app.req(Method::POST, "/auth/login")
        .header("CF-Connecting-IP", random_ip())
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("request")
}

/// Registers (or signs in) `email` with a fixed password and verifies it: an admin when the
/// address is in `ADMIN_EMAILS`.
pub(crate) async fn verified(app: &TestApp, email: &str) -> TestUser {
    let password = "an admin's own password";
    let r = app
        .post_json(
            "/auth/register",
            &json!({"email": email, "password": password}),
        )
        .await;
    assert!(r.status() == StatusCode::CREATED || r.status() == StatusCode::CONFLICT);
    let b: Value = login(app, email, password).await.json().await.unwrap();
    let user = TestUser {
        email: email.to_owned(),
        password: password.to_owned(),
        access_token: b["access_token"].as_str().expect("tokens").to_owned(),
        refresh_token: b["refresh_token"].as_str().unwrap().to_owned(),
    };
    app.verify(email, &user.access_token).await;
    user
}

/// The newest audit entries (as the run's admin sees them).
async fn audit(app: &TestApp, admin: &TestUser) -> Vec<Value> {
    let b = ok(
        call(app, admin, Method::GET, "/admin/audit", None).await,
        "audit",
    )
    .await;
    b["entries"].as_array().unwrap().clone()
}

fn has_entry(log: &[Value], admin: &TestUser, action: &str, target: &str) -> bool {
    let admin_id = user_id_of(admin);
    log.iter().any(|e| {
        e["action"] == action && e["target"] == target && e["admin_id"] == admin_id.as_str()
    })
}

/// Every admin endpoint, as (method, path, body).
fn endpoints(target: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, "/admin/users?email=a@example.com".into(), None),
        (Method::POST, format!("/admin/users/{target}/suspend"), None),
        (
            Method::POST,
            format!("/admin/users/{target}/unsuspend"),
            None,
        ),
        (
            Method::POST,
            format!("/admin/users/{target}/comp"),
            Some(json!({"tier": "pro", "until": now_ms() + 86_400_000})),
        ),
        (Method::GET, "/admin/plugins/pending".into(), None),
        (Method::GET, "/admin/payouts".into(), None),
        (Method::GET, "/admin/audit".into(), None),
    ]
}

pub async fn a_user_who_is_not_an_admin_is_forbidden_every_admin_endpoint(app: TestApp) {
    let attacker = app.register("admin-attacker").await;
    app.verify(&attacker.email, &attacker.access_token).await;
    let victim = app.register("admin-victim").await;
    let target = user_id_of(&victim);
    for (method, path, body) in endpoints(&target) {
        let r = call(&app, &attacker, method, &path, body.as_ref()).await;
        assert_error(r, 403, "forbidden").await;
    }
    // Nothing happened to the victim.
    let me = ok(app.get_auth("/auth/me", &victim.access_token).await, "me").await;
    assert_eq!(me["tier"], "free");
    // And no token at all is 401.
    let r = app.req(Method::GET, "/admin/audit").send().await.unwrap();
    assert_error(r, 401, "unauthorized").await;
}

pub async fn an_admin_address_that_was_never_verified_is_not_an_admin(app: TestApp) {
    let password = "unverified admin password";
    let r = app
        .post_json(
            "/auth/register",
            &json!({"email": UNVERIFIED_ADMIN_EMAIL, "password": password}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let b: Value = r.json().await.unwrap();
    let pretender = TestUser {
        email: UNVERIFIED_ADMIN_EMAIL.to_owned(),
        password: password.to_owned(),
        access_token: b["access_token"].as_str().unwrap().to_owned(),
        refresh_token: b["refresh_token"].as_str().unwrap().to_owned(),
    };
    let victim = app.register("unverified-admin-victim").await;
    for (method, path, body) in endpoints(&user_id_of(&victim)) {
        let r = call(&app, &pretender, method, &path, body.as_ref()).await;
        assert_error(r, 403, "forbidden").await;
    }
    let r = call(
        &app,
        &pretender,
        Method::POST,
        &format!("/plugins/{}/review", uuid::Uuid::new_v4()),
        Some(&json!({"decision": "approve"})),
    )
    .await;
    assert_error(r, 403, "forbidden").await;
}

pub async fn a_lookup_shows_tier_seats_creation_last_sign_in_and_sessions_and_is_audited(
    app: TestApp,
) {
    let admin = app.admin().await;
    let before = now_ms();
    let user = app.register("admin-lookup").await;
    subscribe(&app, &user, "team", 4).await;
    // A second device: two open sessions.
    assert_eq!(login(&app, &user.email, &user.password).await.status(), 200);
    let r = app
        .req(Method::GET, "/admin/users")
        .query(&[("email", format!(" {} ", user.email.to_uppercase()))])
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    let b = ok(r, "lookup").await;
    let users = b["users"].as_array().unwrap();
    assert_eq!(users.len(), 1, "{b}");
    let u = &users[0];
    assert_eq!(u["id"], user_id_of(&user).as_str());
    assert_eq!(u["email"], user.email.as_str());
    assert_eq!(
        (u["tier"].as_str(), u["paid_tier"].as_str()),
        (Some("team"), Some("team"))
    );
    assert_eq!(u["seats"], 4);
    assert_eq!(u["sessions"], 2);
    assert!(u["created_at"].as_i64().unwrap() >= before - 5_000, "{u}");
    assert!(u["last_seen_at"].as_i64().unwrap() >= u["created_at"].as_i64().unwrap());
    assert!(u["suspended_at"].is_null() && u["comp"].is_null(), "{u}");
    assert!(u.get("password_hash").is_none(), "{u}");
    // An address nobody has: nothing, and still 200.
    let b = ok(
        call(
            &app,
            &admin,
            Method::GET,
            "/admin/users?email=nobody-at-all@e2e.example.com",
            None,
        )
        .await,
        "lookup",
    )
    .await;
    assert_eq!(b["users"], json!([]));
    let r = call(
        &app,
        &admin,
        Method::GET,
        "/admin/users?email=not-an-address",
        None,
    )
    .await;
    assert_error(r, 422, "validation_failed").await;
    assert!(has_entry(
        &audit(&app, &admin).await,
        &admin,
        "user_lookup",
        &user_id_of(&user)
    ));
}

#[allow(clippy::too_many_lines)] // one scenario, step by step
pub async fn a_suspended_account_is_refused_everywhere_its_socket_closes_and_it_can_be_restored(
    app: TestApp,
) {
    let admin = app.admin().await;
    let user = app.register("admin-suspend").await;
    subscribe(&app, &user, "pro", 1).await;
    let id = user_id_of(&user);
    let mut ws = socket(&app, &user, "/sync/stream").await;

    let b = ok(
        call(
            &app,
            &admin,
            Method::POST,
            &format!("/admin/users/{id}/suspend"),
            None,
        )
        .await,
        "suspend",
    )
    .await;
    assert!(b["suspended_at"].is_i64(), "{b}");
    // The socket hears it at once and closes with 4003.
    match next(&mut ws, Duration::from_secs(5)).await {
        Next::Frame(f) => assert_eq!(f["code"], "account_suspended", "{f}"),
        other => panic!("an account_suspended frame, not {other:?}"),
    }
    match next(&mut ws, Duration::from_secs(5)).await {
        Next::Closed(code) => assert!(code.is_none_or(|c| c == 4003), "{code:?}"),
        other => panic!("then the close, not {other:?}"),
    }
    // Every request, a new login, a refresh and a new socket are refused.
    assert_error(
        app.get_auth("/auth/me", &user.access_token).await,
        403,
        "account_suspended",
    )
    .await;
    assert_error(
        app.get_auth("/storage/records", &user.access_token).await,
        403,
        "account_suspended",
    )
    .await;
    assert_error(
        login(&app, &user.email, &user.password).await,
        403,
        "account_suspended",
    )
    .await;
    // A wrong password still reads as a wrong password.
    assert_error(
        login(&app, &user.email, "not the password").await,
        401,
        "unauthorized",
    )
    .await;
    let r = app
        .post_json(
            "/auth/refresh",
            &json!({"refresh_token": user.refresh_token}),
        )
        .await;
    assert_error(r, 403, "account_suspended").await;
    // Suspending again keeps the first time.
    let again = ok(
        call(
            &app,
            &admin,
            Method::POST,
            &format!("/admin/users/{id}/suspend"),
            None,
        )
        .await,
        "suspend again",
    )
    .await;
    assert_eq!(again["suspended_at"], b["suspended_at"]);

    let b = ok(
        call(
            &app,
            &admin,
            Method::POST,
            &format!("/admin/users/{id}/unsuspend"),
            None,
        )
        .await,
        "unsuspend",
    )
    .await;
    assert!(b["suspended_at"].is_null(), "{b}");
    // Restored: the same token works again, and so does a login.
    ok(
        app.get_auth("/auth/me", &user.access_token).await,
        "me after",
    )
    .await;
    assert_eq!(login(&app, &user.email, &user.password).await.status(), 200);
    let log = audit(&app, &admin).await;
    assert!(has_entry(&log, &admin, "suspend", &id), "{log:?}");
    assert!(has_entry(&log, &admin, "unsuspend", &id), "{log:?}");
    // Unknown accounts are 404, and nothing about them is recorded.
    let ghost = uuid::Uuid::new_v4().to_string();
    let r = call(
        &app,
        &admin,
        Method::POST,
        &format!("/admin/users/{ghost}/suspend"),
        None,
    )
    .await;
    assert_error(r, 404, "not_found").await;
    let r = call(
        &app,
        &admin,
        Method::POST,
        "/admin/users/not-a-uuid/suspend",
        None,
    )
    .await;
    assert_error(r, 404, "not_found").await;
    assert!(!audit(&app, &admin)
        .await
        .iter()
        .any(|e| e["target"] == ghost.as_str()));
}

pub async fn an_admins_token_stops_working_once_the_admin_is_suspended(app: TestApp) {
    let admin = app.admin().await;
    let ops = verified(&app, OPS_ADMIN_EMAIL).await;
    ok(
        call(&app, &ops, Method::GET, "/admin/audit", None).await,
        "a verified admin",
    )
    .await;
    // Nobody suspends themselves.
    let own = format!("/admin/users/{}/suspend", user_id_of(&ops));
    assert_error(
        call(&app, &ops, Method::POST, &own, None).await,
        409,
        "conflict",
    )
    .await;

    ok(
        call(&app, &admin, Method::POST, &own, None).await,
        "suspend the admin",
    )
    .await;
    let victim = app.register("suspended-admin-victim").await;
    for (method, path, body) in endpoints(&user_id_of(&victim)) {
        let r = call(&app, &ops, method, &path, body.as_ref()).await;
        assert_error(r, 403, "account_suspended").await;
    }
    let me = ok(
        app.get_auth("/auth/me", &victim.access_token).await,
        "victim",
    )
    .await;
    assert_eq!(
        me["tier"], "free",
        "the suspended admin's comp did not happen"
    );
    let unsuspend = format!("/admin/users/{}/unsuspend", user_id_of(&ops));
    ok(
        call(&app, &admin, Method::POST, &unsuspend, None).await,
        "restore",
    )
    .await;
    ok(
        call(&app, &ops, Method::GET, "/admin/audit", None).await,
        "an admin again",
    )
    .await;
}

pub async fn a_comp_reaches_the_gates_until_it_ends_and_is_validated(app: TestApp) {
    let admin = app.admin().await;
    let user = app.register("admin-comp").await;
    let id = user_id_of(&user);
    let path = format!("/admin/users/{id}/comp");
    let put = |bytes: &'static [u8]| {
        app.req(Method::POST, "/storage/records")
            .bearer_auth(&user.access_token)
            .header("Content-Type", "application/octet-stream")
            .header("X-Table", "tasks")
            .header("X-Checksum", sha(bytes))
            .body(bytes.to_vec())
            .send()
    };
    assert_error(put(b"before the comp").await.unwrap(), 403, "tier_required").await;

    let day = 86_400_000;
    for (body, field) in [
        (json!({"tier": "free", "until": now_ms() + day}), "tier"),
        (json!({"tier": "platinum", "until": now_ms() + day}), "tier"),
        (json!({"tier": "pro", "until": now_ms() - 1}), "until"),
        (
            json!({"tier": "pro", "until": now_ms() + 367 * day}),
            "until",
        ),
    ] {
        let r = call(&app, &admin, Method::POST, &path, Some(&body)).await;
        let e = assert_error(r, 422, "validation_failed").await;
        assert_eq!(e["error"]["details"]["fields"][0]["field"], field, "{e}");
    }
    let r = call(
        &app,
        &admin,
        Method::POST,
        &path,
        Some(&json!({"tier": "pro"})),
    )
    .await;
    assert_error(r, 422, "validation_failed").await;
    let ghost = format!("/admin/users/{}/comp", uuid::Uuid::new_v4());
    let body = json!({"tier": "pro", "until": now_ms() + day});
    assert_error(
        call(&app, &admin, Method::POST, &ghost, Some(&body)).await,
        404,
        "not_found",
    )
    .await;

    // A comp of 4 seconds: the gates open at once, and close again when it ends.
    let until = now_ms() + 4_000;
    let b = ok(
        call(
            &app,
            &admin,
            Method::POST,
            &path,
            Some(&json!({"tier": "pro", "until": until})),
        )
        .await,
        "comp",
    )
    .await;
    assert_eq!(
        (b["tier"].as_str(), b["paid_tier"].as_str()),
        (Some("pro"), Some("free"))
    );
    assert_eq!(b["comp"], json!({"tier": "pro", "until": until}));
    let me = ok(app.get_auth("/auth/me", &user.access_token).await, "me").await;
    assert_eq!(me["tier"], "pro");
    assert_eq!(put(b"during the comp").await.unwrap().status(), 201);
    let wait = u64::try_from((until - now_ms()).max(0)).unwrap() + 500;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let me = ok(app.get_auth("/auth/me", &user.access_token).await, "me").await;
    assert_eq!(me["tier"], "free", "the paid tier again");
    assert_error(put(b"after the comp").await.unwrap(), 403, "tier_required").await;
    let log = audit(&app, &admin).await;
    let entry = log
        .iter()
        .find(|e| e["action"] == "comp" && e["target"] == id.as_str())
        .expect("the comp is recorded");
    assert_eq!(entry["detail"], json!({"tier": "pro", "until": until}));
}

#[allow(clippy::too_many_lines)] // one scenario, step by step
pub async fn the_review_queue_shows_a_submission_whole_and_each_decision_is_audited(app: TestApp) {
    let admin = app.admin().await;
    let author = app.register("admin-review-author").await;
    let package = crate::plugins::package("admin-review");
    let name = format!(
        "Admin queue {}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut manifest = crate::plugins::manifest(&name, "1.0.0", "productivity", 0);
    manifest["agents"] = json!([{
        "name": "sorter",
        "description": "Sorts the user's tasks.",
        "instructions": "Sort the tasks you are given by their due date.",
        "tools": [{"name": "sort", "description": "Sorts tasks.", "parameters": {"type": "object", "properties": {"by": {"type": "string"}}}, "permissions": ["tasks:read"]}]
    }]);
    let body = json!({
        "manifest": manifest,
        "package": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &package),
        "package_checksum": sha(&package),
    });
    let r = call(&app, &author, Method::POST, "/plugins", Some(&body)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let queue = ok(
        call(&app, &admin, Method::GET, "/admin/plugins/pending", None).await,
        "queue",
    )
    .await;
    let item = queue["pending"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plugin_id"] == id.as_str())
        .expect("the submission is in the queue")
        .clone();
    assert_eq!(item["manifest"]["name"], name.as_str());
    assert_eq!(item["package_checksum"], sha(&package).as_str());
    assert_eq!(
        item["agents"][0]["instructions"],
        manifest["agents"][0]["instructions"]
    );
    assert_eq!(
        item["agents"][0]["tools"][0]["parameters"]["properties"]["by"]["type"],
        "string"
    );
    // The download link serves the package to the reviewer.
    let url = item["download_url"].as_str().unwrap();
    let r = app
        .client
        .get(url)
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), package.as_slice());

    // Rejecting needs notes; approving records the decision.
    let review = format!("/plugins/{id}/review");
    let r = call(
        &app,
        &admin,
        Method::POST,
        &review,
        Some(&json!({"decision": "reject"})),
    )
    .await;
    assert_error(r, 422, "validation_failed").await;
    let b = ok(
        call(
            &app,
            &admin,
            Method::POST,
            &review,
            Some(&json!({"decision": "approve", "notes": "Looks fine."})),
        )
        .await,
        "approve",
    )
    .await;
    assert_eq!(b["status"], "approved");
    let log = audit(&app, &admin).await;
    let entry = log
        .iter()
        .find(|e| e["action"] == "plugin_review" && e["target"] == id.as_str())
        .expect("the review is recorded");
    assert_eq!(
        entry["detail"],
        json!({"decision": "approve", "version": "1.0.0"})
    );
    let queue = ok(
        call(&app, &admin, Method::GET, "/admin/plugins/pending", None).await,
        "queue",
    )
    .await;
    assert!(!queue["pending"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["plugin_id"] == id.as_str()));
}

pub async fn payouts_are_listed_per_month_with_the_months_status(app: TestApp) {
    let admin = app.admin().await;
    let (a, b) = (
        app.register("payout-a").await,
        app.register("payout-b").await,
    );
    let (ida, idb) = (user_id_of(&a), user_id_of(&b));
    // A month no other test uses; the cron pays from revenue events, never these rows.
    let sql = format!(
        "INSERT INTO payouts (id, developer_id, period, amount_cents, destination, \
           idempotency_key, status, transfer_id, created_at, paid_at) VALUES \
         ('{}', '{ida}', '2099-12', 700, 'acct_e2e_a', 'payout:{ida}:2099-12', 'paid', 'tr_1', 1, 2), \
         ('{}', '{idb}', '2099-12', 300, 'acct_e2e_b', 'payout:{idb}:2099-12', 'pending', NULL, 1, NULL)",
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4()
    );
    app.stack.d1_execute(&sql).await.expect("payout rows");
    let body = ok(
        call(&app, &admin, Method::GET, "/admin/payouts", None).await,
        "payouts",
    )
    .await;
    let month = &body["months"][0];
    assert_eq!(month["period"], "2099-12", "{body}");
    assert_eq!(month["status"], "pending");
    assert_eq!(
        (month["total_cents"].as_u64(), month["paid_cents"].as_u64()),
        (Some(1000), Some(700))
    );
    let payouts = month["payouts"].as_array().unwrap();
    assert_eq!(payouts.len(), 2);
    let paid = payouts
        .iter()
        .find(|p| p["developer_id"] == ida.as_str())
        .unwrap();
    assert_eq!(
        (paid["status"].as_str(), paid["paid_at"].as_i64()),
        (Some("paid"), Some(2))
    );
    assert!(paid.get("destination").is_none() && paid.get("idempotency_key").is_none());
}
