//! Accounts people can trust, end to end against `wrangler dev` with the scripted email API:
//! the email port (retries, no addresses in logs, 503 without configuration), verification,
//! password reset and change, sessions, and the security log — each with its attacks (reused,
//! expired and foreign tokens; enumeration by answer or timing; another user's session).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::harness::{percentile_ms, Stack, EMAIL_API_KEY, SECOND_ADMIN_EMAIL};
use crate::helpers::{
    assert_error, emails_to, last_email_to, link_token, unique_email, unique_ip, TestApp, TestUser,
};

async fn login_as(
    app: &TestApp,
    email: &str,
    password: &str,
    device: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .req(Method::POST, "/auth/login")
        .header("CF-Connecting-IP", unique_ip())
        .json(&json!({"email": email, "password": password}));
    if let Some(d) = device {
        req = req.header("X-Device-Name", d);
    }
    req.send().await.unwrap()
}

async fn signed_in(app: &TestApp, user: &TestUser, device: Option<&str>) -> TestUser {
    let r = login_as(app, &user.email, &user.password, device).await;
    assert_eq!(r.status(), 200, "login");
    let body: Value = r.json().await.unwrap();
    TestUser {
        access_token: body["access_token"].as_str().unwrap().to_owned(),
        refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
        ..user.clone()
    }
}

async fn me(app: &TestApp, user: &TestUser) -> Value {
    let r = app.get_auth("/auth/me", &user.access_token).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn post_auth(
    app: &TestApp,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.req(Method::POST, path).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

async fn refresh(app: &TestApp, token: &str) -> StatusCode {
    app.post_json("/auth/refresh", &json!({"refresh_token": token}))
        .await
        .status()
}

/// Asks for a reset of `email` from `ip`; returns the status.
async fn forgot(app: &TestApp, email: &str, ip: &str) -> reqwest::Response {
    app.req(Method::POST, "/auth/password/forgot")
        .header("CF-Connecting-IP", ip)
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap()
}

// ---- 1. The email port ----

pub async fn registration_posts_a_verification_email_to_the_email_api_with_its_key(app: TestApp) {
    let user = app.register("mail-shape").await;
    let m = last_email_to(&app, &user.email, 0).await;
    assert_eq!(m["from"], "Adiuva <no-reply@e2e.example.com>");
    assert_eq!(m["to"], json!([user.email]));
    assert_eq!(m["subject"], "Verify your Adiuva email address");
    let token = link_token(&app, &m, "/verify-email");
    assert_eq!(token.len(), 43, "256 bits in URL-safe base64");
    let requests = app.stack.email.received_requests().await.unwrap();
    let sent = requests
        .iter()
        .find(|r| String::from_utf8_lossy(&r.body).contains(&user.email))
        .unwrap();
    assert_eq!(sent.url.path(), "/emails");
    assert_eq!(
        sent.headers.get("authorization").unwrap().to_str().unwrap(),
        format!("Bearer {EMAIL_API_KEY}")
    );
    // Only the token's hash is stored.
    assert!(!crate::helpers::state_contains(&app, token.as_bytes()));
}

pub async fn an_email_api_answering_503_then_429_is_retried_and_the_message_arrives(app: TestApp) {
    let user = app.register("mail-retry").await;
    last_email_to(&app, &user.email, 0).await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .and(body_string_contains(&user.email))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.stack.email)
        .await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .and(body_string_contains(&user.email))
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&app.stack.email)
        .await;
    let r = post_auth(&app, "/auth/verify-email/resend", &user.access_token, None).await;
    assert_eq!(r.status(), 202);
    // Registration's message, then three attempts of the resend: 503, 429, 200.
    assert_eq!(emails_to(&app, &user.email).await.len(), 4);
    let m = last_email_to(&app, &user.email, 3).await;
    let token = link_token(&app, &m, "/verify-email");
    let r = app
        .post_json("/auth/verify-email", &json!({ "token": token }))
        .await;
    assert_eq!(r.status(), 200);
}

pub async fn an_email_api_that_keeps_failing_is_a_503_and_never_reaches_the_logs(app: TestApp) {
    let user = app.register("mail-down").await;
    last_email_to(&app, &user.email, 0).await;
    // The service's error text quotes the address, as real ones do.
    Mock::given(method("POST"))
        .and(path("/emails"))
        .and(body_string_contains(&user.email))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"message": format!("cannot deliver to {}", user.email)})),
        )
        .with_priority(1)
        .mount(&app.stack.email)
        .await;
    let r = post_auth(&app, "/auth/verify-email/resend", &user.access_token, None).await;
    let body = assert_error(r, 503, "upstream_unavailable").await;
    assert_eq!(body["error"]["details"]["service"], "email");
    assert!(!body.to_string().contains(&user.email));
    assert_eq!(
        emails_to(&app, &user.email).await.len(),
        4,
        "1 + 3 attempts"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = app.stack.log();
    assert!(!log.contains(&user.email), "no address in the logs");
    assert!(
        !log.contains("cannot deliver"),
        "no upstream text in the logs"
    );
}

pub async fn without_an_email_api_the_flows_that_need_mail_answer_503_email_not_configured(
    _app: TestApp,
) {
    let stack = Stack::start_with(&[("EMAIL_API_BASE", ""), ("E2E_STACK", "no-email")])
        .await
        .expect("a stack without email");
    let app = TestApp::new(Arc::new(stack));
    // Registration still works (the user may verify once mail is configured)…
    let user = app.register("no-mail").await;
    assert_eq!(me(&app, &user).await["email_verified"], false);
    // …but a resend and a reset cannot, for every address alike.
    let r = post_auth(&app, "/auth/verify-email/resend", &user.access_token, None).await;
    assert_error(r, 503, "email_not_configured").await;
    for email in [user.email.clone(), unique_email("ghost")] {
        let r = forgot(&app, &email, &unique_ip()).await;
        assert_error(r, 503, "email_not_configured").await;
    }
    assert!(app
        .stack
        .email
        .received_requests()
        .await
        .unwrap()
        .is_empty());
}

// ---- 2. Verification ----

pub async fn a_verification_link_works_once_and_me_shows_the_address_verified(app: TestApp) {
    let user = app.register("verify").await;
    assert_eq!(me(&app, &user).await["email_verified"], false);
    let m = last_email_to(&app, &user.email, 0).await;
    let token = link_token(&app, &m, "/verify-email");
    let r = app
        .post_json("/auth/verify-email", &json!({ "token": token }))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(me(&app, &user).await["email_verified"], true);
    // Reused: the same 401 as a forged token.
    let reused = app
        .post_json("/auth/verify-email", &json!({ "token": token }))
        .await;
    let reused = assert_error(reused, 401, "unauthorized").await;
    let forged = app
        .post_json("/auth/verify-email", &json!({ "token": "A".repeat(43) }))
        .await;
    let forged = assert_error(forged, 401, "unauthorized").await;
    assert_eq!(reused["error"]["message"], forged["error"]["message"]);
    // Once verified, no more links.
    let r = post_auth(&app, "/auth/verify-email/resend", &user.access_token, None).await;
    assert_error(r, 409, "conflict").await;
    let r = app
        .post_json("/auth/verify-email", &json!({ "token": "" }))
        .await;
    assert_error(r, 422, "validation_failed").await;
}

pub async fn a_verification_link_expires_after_a_day(app: TestApp) {
    let user = app.register("verify-late").await;
    let m = last_email_to(&app, &user.email, 0).await;
    let token = link_token(&app, &m, "/verify-email");
    // Age the stored token by a day (its row is found by the hash of the token).
    let hash = crate::helpers::sha(token.as_bytes());
    app.stack
        .d1_execute(&format!(
            "UPDATE account_tokens SET expires_at = expires_at - 86400000 WHERE token_hash = '{hash}'"
        ))
        .await
        .unwrap();
    let r = app
        .post_json("/auth/verify-email", &json!({ "token": token }))
        .await;
    assert_error(r, 401, "unauthorized").await;
    assert_eq!(me(&app, &user).await["email_verified"], false);
}

pub async fn resending_the_verification_link_stops_at_three_an_hour(app: TestApp) {
    let user = app.register("resend").await;
    for _ in 0..3 {
        let r = post_auth(&app, "/auth/verify-email/resend", &user.access_token, None).await;
        assert_eq!(r.status(), 202);
    }
    let r = post_auth(&app, "/auth/verify-email/resend", &user.access_token, None).await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, 429, "rate_limited").await;
    assert_eq!(emails_to(&app, &user.email).await.len(), 4);
    // Every link sent works until one is used; then the address is verified.
    let m = last_email_to(&app, &user.email, 3).await;
    let r = app
        .post_json(
            "/auth/verify-email",
            &json!({ "token": link_token(&app, &m, "/verify-email") }),
        )
        .await;
    assert_eq!(r.status(), 200);
}

pub async fn an_admin_address_gets_the_admin_role_only_once_verified(app: TestApp) {
    // Whoever registers the address first is not an admin until the mailbox proves it.
    let r = app
        .post_json(
            "/auth/register",
            &json!({"email": SECOND_ADMIN_EMAIL, "password": "second admin password"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let r = app.get_auth("/plugins/review/pending", &token).await;
    assert_error(r, 403, "forbidden").await;
    let m = last_email_to(&app, SECOND_ADMIN_EMAIL, 0).await;
    let r = app
        .post_json(
            "/auth/verify-email",
            &json!({ "token": link_token(&app, &m, "/verify-email") }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app.get_auth("/plugins/review/pending", &token).await;
    assert_eq!(r.status(), 200, "an admin once verified");
}

// ---- 3. Reset and change ----

pub async fn a_reset_link_sets_the_password_once_and_ends_every_session_and_socket(app: TestApp) {
    use crate::home::{assert_socket_ended, socket};
    let user = app.register("reset").await;
    let phone = signed_in(&app, &user, Some("phone")).await;
    let mut ws = socket(&app, &phone, "/sync/stream").await;
    let r = forgot(&app, &user.email, &unique_ip()).await;
    assert_eq!(r.status(), 202);
    let m = last_email_to(&app, &user.email, 1).await;
    assert_eq!(m["subject"], "Reset your Adiuva password");
    assert!(m["text"]
        .as_str()
        .unwrap()
        .contains("cannot be recovered with the new one"));
    let token = link_token(&app, &m, "/reset-password");
    let r = app
        .post_json(
            "/auth/password/reset",
            &json!({"token": token, "password": "a brand new password"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    // Every session is over: tokens, refresh tokens and sockets.
    for u in [&user, &phone] {
        assert_error(
            app.get_auth("/auth/me", &u.access_token).await,
            401,
            "unauthorized",
        )
        .await;
        assert_eq!(refresh(&app, &u.refresh_token).await, 401);
    }
    assert_socket_ended(&mut ws).await;
    // The old password is gone, the new one works, and the link is spent.
    assert_eq!(
        login_as(&app, &user.email, &user.password, None)
            .await
            .status(),
        401
    );
    assert_eq!(
        login_as(&app, &user.email, "a brand new password", None)
            .await
            .status(),
        200
    );
    let r = app
        .post_json(
            "/auth/password/reset",
            &json!({"token": token, "password": "the attacker's password"}),
        )
        .await;
    assert_error(r, 401, "unauthorized").await;
}

pub async fn reset_links_that_expired_belong_to_another_purpose_or_were_superseded_fail(
    app: TestApp,
) {
    let user = app.register("reset-attacks").await;
    let verify = link_token(
        &app,
        &last_email_to(&app, &user.email, 0).await,
        "/verify-email",
    );
    // A verification token is no reset token.
    let r = app
        .post_json(
            "/auth/password/reset",
            &json!({"token": verify, "password": "attacker password"}),
        )
        .await;
    assert_error(r, 401, "unauthorized").await;
    assert_eq!(forgot(&app, &user.email, &unique_ip()).await.status(), 202);
    let first = link_token(
        &app,
        &last_email_to(&app, &user.email, 1).await,
        "/reset-password",
    );
    assert_eq!(forgot(&app, &user.email, &unique_ip()).await.status(), 202);
    let second = link_token(
        &app,
        &last_email_to(&app, &user.email, 2).await,
        "/reset-password",
    );
    // The second link expires: 30 minutes.
    let hash = crate::helpers::sha(second.as_bytes());
    app.stack
        .d1_execute(&format!(
            "UPDATE account_tokens SET expires_at = expires_at - 1800000 WHERE token_hash = '{hash}'"
        ))
        .await
        .unwrap();
    let r = app
        .post_json(
            "/auth/password/reset",
            &json!({"token": second, "password": "attacker password"}),
        )
        .await;
    assert_error(r, 401, "unauthorized").await;
    // The first still works, once; a reset of one user never touches another.
    let bystander = app.register("reset-bystander").await;
    let r = app
        .post_json(
            "/auth/password/reset",
            &json!({"token": first, "password": "owner's new password"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        me(&app, &bystander).await["email"],
        bystander.email.as_str()
    );
    assert_eq!(
        login_as(&app, &user.email, "owner's new password", None)
            .await
            .status(),
        200
    );
}

pub async fn forgot_password_answers_alike_for_unknown_addresses_in_body_and_time(app: TestApp) {
    let mut known_times = Vec::new();
    let mut unknown_times = Vec::new();
    let mut bodies = Vec::new();
    for _ in 0..6 {
        let user = app.register("forgot-timing").await;
        let t = Instant::now();
        let r = forgot(&app, &user.email, &unique_ip()).await;
        known_times.push(t.elapsed());
        bodies.push((r.status(), r.text().await.unwrap()));
        let ghost = unique_email("ghost");
        let t = Instant::now();
        let r = forgot(&app, &ghost, &unique_ip()).await;
        unknown_times.push(t.elapsed());
        bodies.push((r.status(), r.text().await.unwrap()));
        assert!(emails_to(&app, &ghost).await.is_empty());
    }
    for (status, body) in &bodies {
        assert_eq!(*status, 202);
        assert_eq!(body, &bodies[0].1);
    }
    let (k, u) = (
        percentile_ms(&known_times, 0.5),
        percentile_ms(&unknown_times, 0.5),
    );
    // Mail goes out after the answer and the lookup is the token's own insert: no path does
    // measurably more work.
    assert!(
        u > k * 0.6 && k > u * 0.6,
        "median known {k:.1} ms vs unknown {u:.1} ms"
    );
}

pub async fn forgot_password_is_throttled_per_address_asked_for_and_per_client(app: TestApp) {
    // Per address asked for: three an hour, alike for a registered and an unknown one.
    let user = app.register("forgot-throttle").await;
    let ghost = unique_email("ghost");
    for email in [&user.email, &ghost] {
        for _ in 0..3 {
            assert_eq!(forgot(&app, email, &unique_ip()).await.status(), 202);
        }
        let r = forgot(&app, email, &unique_ip()).await;
        assert!(r.headers().contains_key("retry-after"));
        assert_error(r, 429, "rate_limited").await;
    }
    last_email_to(&app, &user.email, 3).await;
    assert_eq!(emails_to(&app, &user.email).await.len(), 1 + 3);
    // Per client: ten an hour, whatever addresses it asks for.
    let ip = unique_ip();
    for _ in 0..10 {
        assert_eq!(
            forgot(&app, &unique_email("spray"), &ip).await.status(),
            202
        );
    }
    assert_error(
        forgot(&app, &unique_email("spray"), &ip).await,
        429,
        "rate_limited",
    )
    .await;
}

pub async fn a_password_change_needs_the_current_one_and_ends_only_the_other_sessions(
    app: TestApp,
) {
    use crate::home::{assert_socket_ended, socket};
    let user = app.register("change").await;
    let other = signed_in(&app, &user, Some("old tablet")).await;
    let mut ws = socket(&app, &other, "/sync/stream").await;
    let body = json!({"current_password": "not it", "new_password": "a changed password"});
    let r = post_auth(
        &app,
        "/auth/password/change",
        &user.access_token,
        Some(body),
    )
    .await;
    assert_error(r, 401, "unauthorized").await;
    let body = json!({"current_password": user.password, "new_password": "short"});
    let r = post_auth(
        &app,
        "/auth/password/change",
        &user.access_token,
        Some(body),
    )
    .await;
    let e = assert_error(r, 422, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "new_password");
    let body = json!({"current_password": user.password, "new_password": "a changed password"});
    let r = post_auth(
        &app,
        "/auth/password/change",
        &user.access_token,
        Some(body),
    )
    .await;
    assert_eq!(r.status(), 200);
    let changed: Value = r.json().await.unwrap();
    assert_eq!(changed, json!({"ok": true, "revoked": 1}));
    assert_eq!(
        me(&app, &user).await["email"],
        user.email.as_str(),
        "this session lives on"
    );
    assert_error(
        app.get_auth("/auth/me", &other.access_token).await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(refresh(&app, &other.refresh_token).await, 401);
    assert_socket_ended(&mut ws).await;
    assert_eq!(
        login_as(&app, &user.email, "a changed password", None)
            .await
            .status(),
        200
    );
}

pub async fn wrong_current_passwords_stop_at_five_before_any_check(app: TestApp) {
    let user = app.register("change-guess").await;
    for _ in 0..5 {
        let body = json!({"current_password": "guess", "new_password": "a changed password"});
        let r = post_auth(
            &app,
            "/auth/password/change",
            &user.access_token,
            Some(body),
        )
        .await;
        assert_eq!(r.status(), 401);
    }
    let body = json!({"current_password": user.password, "new_password": "a changed password"});
    let r = post_auth(
        &app,
        "/auth/password/change",
        &user.access_token,
        Some(body),
    )
    .await;
    assert_error(r, 429, "rate_limited").await;
}

// ---- 4. Sessions ----

pub async fn sessions_list_devices_mark_the_current_one_and_end_one_with_its_sockets(app: TestApp) {
    use crate::home::{assert_socket_ended, socket};
    let user = app.register("sessions").await;
    let laptop = signed_in(&app, &user, Some("Ada's laptop")).await;
    let phone = signed_in(&app, &user, Some("Ada's phone")).await;
    let r = app.get_auth("/auth/sessions", &laptop.access_token).await;
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.unwrap();
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3, "{list}");
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["device_name"], "Ada's laptop");
    for s in sessions {
        assert!(s["created_at"].as_i64().unwrap() > 0);
        assert!(s["last_used_at"].as_i64().unwrap() >= s["created_at"].as_i64().unwrap());
    }
    let phone_id = sessions
        .iter()
        .find(|s| s["device_name"] == "Ada's phone")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ws = socket(&app, &phone, "/sync/stream").await;
    let r = app
        .req(Method::DELETE, &format!("/auth/sessions/{phone_id}"))
        .bearer_auth(&laptop.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_socket_ended(&mut ws).await;
    assert_error(
        app.get_auth("/auth/me", &phone.access_token).await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(refresh(&app, &phone.refresh_token).await, 401);
    assert_eq!(me(&app, &laptop).await["email"], user.email.as_str());
    // A refresh moves last_used_at; the ended session is no longer listed.
    let list: Value = app
        .get_auth("/auth/sessions", &laptop.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["sessions"].as_array().unwrap().len(), 2);
    // Again: 404.
    let r = app
        .req(Method::DELETE, &format!("/auth/sessions/{phone_id}"))
        .bearer_auth(&laptop.access_token)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "not_found").await;
}

pub async fn another_users_session_is_404_and_keeps_working(app: TestApp) {
    let victim = app.register("session-victim").await;
    let attacker = app.register("session-attacker").await;
    let list: Value = app
        .get_auth("/auth/sessions", &victim.access_token)
        .await
        .json()
        .await
        .unwrap();
    let id = list["sessions"][0]["id"].as_str().unwrap().to_owned();
    let mine: Value = app
        .get_auth("/auth/sessions", &attacker.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !mine.to_string().contains(&id),
        "nobody sees another user's sessions"
    );
    for path in [
        format!("/auth/sessions/{id}"),
        "/auth/sessions/not-a-uuid".to_owned(),
    ] {
        let r = app
            .req(Method::DELETE, &path)
            .bearer_auth(&attacker.access_token)
            .send()
            .await
            .unwrap();
        assert_error(r, 404, "not_found").await;
    }
    assert_eq!(me(&app, &victim).await["email"], victim.email.as_str());
    assert_eq!(refresh(&app, &victim.refresh_token).await, 200);
}

pub async fn a_device_name_longer_than_64_characters_is_refused_by_name(app: TestApp) {
    let user = app.register("device-name").await;
    let r = login_as(&app, &user.email, &user.password, Some(&"x".repeat(65))).await;
    let e = assert_error(r, 422, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "X-Device-Name");
    let r = login_as(&app, &user.email, &user.password, Some(&"x".repeat(64))).await;
    assert_eq!(r.status(), 200);
}

// ---- 6. The security log ----

pub async fn the_security_log_shows_what_happened_without_secrets_or_full_addresses(app: TestApp) {
    let user = app.register("events").await;
    let ip = "10.20.30.40";
    let r = app
        .req(Method::POST, "/auth/login")
        .header("CF-Connecting-IP", ip)
        .header("X-Device-Name", "desk")
        .json(&json!({"email": user.email, "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .req(Method::POST, "/auth/login")
        .header("CF-Connecting-IP", ip)
        .header("X-Device-Name", "desk")
        .json(&json!({"email": user.email, "password": user.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let m = last_email_to(&app, &user.email, 0).await;
    app.post_json(
        "/auth/verify-email",
        &json!({ "token": link_token(&app, &m, "/verify-email") }),
    )
    .await;
    let body = json!({"current_password": user.password, "new_password": "a changed password"});
    let r = post_auth(
        &app,
        "/auth/password/change",
        &user.access_token,
        Some(body),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = app.get_auth("/auth/events", &user.access_token).await;
    assert_eq!(r.status(), 200);
    let log: Value = r.json().await.unwrap();
    let kinds: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "password_changed",
            "email_verified",
            "login_succeeded",
            "login_failed"
        ],
        "newest first: {log}"
    );
    let failed = &log["events"][3];
    assert_eq!(failed["device_name"], "desk");
    assert_eq!(failed["network"], "10.20.30.0/24");
    let text = log.to_string();
    for secret in [
        ip,
        "wrong password",
        user.password.as_str(),
        "a changed password",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    // Nobody else sees it.
    let other = app.register("events-other").await;
    let theirs: Value = app
        .get_auth("/auth/events", &other.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["events"], json!([]));
}

// ---- 5. TOTP two-factor ----

/// The RFC 6238 code of `secret` (base32) at `steps` from now, computed here with `hmac` and
/// `sha1`, independently of the server's code.
pub(crate) fn totp(secret_b32: &str, steps: i64) -> String {
    use hmac::{Hmac, Mac};
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_b32.as_bytes())
        .unwrap();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let step = now / 30 + steps;
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(&secret).unwrap();
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = usize::from(h[19] & 0x0f);
    let bin = (u32::from(h[o]) & 0x7f) << 24
        | u32::from(h[o + 1]) << 16
        | u32::from(h[o + 2]) << 8
        | u32::from(h[o + 3]);
    format!("{:06}", bin % 1_000_000)
}

/// Turns two-factor on for `user`; its secret, recovery codes and the code that confirmed it.
async fn with_two_factor_confirmed(
    app: &TestApp,
    user: &TestUser,
) -> (String, Vec<String>, String) {
    let r = post_auth(app, "/auth/2fa/setup", &user.access_token, None).await;
    assert_eq!(r.status(), 200);
    let setup: Value = r.json().await.unwrap();
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let uri = setup["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Adiuva%3A"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")) && uri.contains("digits=6&period=30"));
    // Pending: login is still one step.
    assert_eq!(
        login_as(app, &user.email, &user.password, None)
            .await
            .status(),
        200
    );
    let confirm = totp(&secret, 0);
    let r = post_auth(
        app,
        "/auth/2fa/enable",
        &user.access_token,
        Some(json!({ "code": confirm })),
    )
    .await;
    assert_eq!(r.status(), 200);
    let codes: Value = r.json().await.unwrap();
    let codes: Vec<String> = codes["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes, confirm)
}

/// Turns two-factor on for `user`; its secret and recovery codes.
pub(crate) async fn with_two_factor(app: &TestApp, user: &TestUser) -> (String, Vec<String>) {
    let (secret, codes, _) = with_two_factor_confirmed(app, user).await;
    (secret, codes)
}

/// Signs in with the password: the `mfa_token` of the `mfa_required` answer.
async fn first_step(app: &TestApp, user: &TestUser) -> String {
    let r = login_as(
        app,
        &user.email,
        &user.password,
        Some("authenticator phone"),
    )
    .await;
    let body = assert_error(r, 401, "mfa_required").await;
    assert!(body["error"]["details"]["expires_at"].as_i64().is_some());
    body["error"]["details"]["mfa_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn second_step(app: &TestApp, token: &str, factor: Value) -> reqwest::Response {
    let mut body = factor;
    body["mfa_token"] = json!(token);
    app.req(Method::POST, "/auth/login/mfa")
        .header("CF-Connecting-IP", unique_ip())
        .header("X-Device-Name", "authenticator phone")
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn two_factor_login_needs_a_fresh_code_that_works_once_and_only_for_its_account(
    app: TestApp,
) {
    let user = app.register("totp").await;
    let (secret, codes, confirm) = with_two_factor_confirmed(&app, &user).await;
    assert_eq!(codes.len(), 10);
    // The secret is stored sealed: neither its base32 nor its bytes are anywhere at rest.
    let raw = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .unwrap();
    assert!(!crate::helpers::state_contains(&app, secret.as_bytes()));
    assert!(!crate::helpers::state_contains(&app, &raw));
    let r = post_auth(&app, "/auth/2fa/setup", &user.access_token, None).await;
    assert_error(r, 409, "conflict").await;

    let token = first_step(&app, &user).await;
    // The code that confirmed the setup was accepted once already: replay refused.
    let r = second_step(&app, &token, json!({ "code": confirm })).await;
    assert_error(r, 401, "unauthorized").await;
    let r = second_step(&app, &token, json!({"code": "000000"})).await;
    assert_error(r, 401, "unauthorized").await;
    // Another account's code and token do not mix.
    let other = app.register("totp-other").await;
    let (other_secret, _) = with_two_factor(&app, &other).await;
    let other_token = first_step(&app, &other).await;
    let r = second_step(&app, &other_token, json!({"code": totp(&secret, 1)})).await;
    assert_error(r, 401, "unauthorized").await;
    let r = second_step(&app, &token, json!({"code": totp(&other_secret, 1)})).await;
    assert_error(r, 401, "unauthorized").await;
    // The next step's code is within the ±1 window and newer: accepted, once.
    let fresh = totp(&secret, 1);
    let r = second_step(&app, &token, json!({ "code": fresh })).await;
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    let signed_in = TestUser {
        access_token: tokens["access_token"].as_str().unwrap().to_owned(),
        refresh_token: tokens["refresh_token"].as_str().unwrap().to_owned(),
        ..user.clone()
    };
    assert_eq!(me(&app, &signed_in).await["email"], user.email.as_str());
    let r = second_step(&app, &token, json!({ "code": fresh })).await;
    assert_error(r, 401, "unauthorized").await;
    let again = first_step(&app, &user).await;
    let r = second_step(&app, &again, json!({ "code": fresh })).await;
    assert_error(r, 401, "unauthorized").await;
    // The session carries the device named by the request that opened it.
    let list: Value = app
        .get_auth("/auth/sessions", &signed_in.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert!(list.to_string().contains("authenticator phone"), "{list}");
    let r = second_step(&app, &again, json!({})).await;
    assert_error(r, 422, "validation_failed").await;
}

pub async fn recovery_codes_work_once_and_wrong_codes_stop_at_five(app: TestApp) {
    let user = app.register("totp-recovery").await;
    let (secret, codes) = with_two_factor(&app, &user).await;
    let token = first_step(&app, &user).await;
    let r = second_step(
        &app,
        &token,
        json!({"recovery_code": codes[0].to_uppercase()}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let token = first_step(&app, &user).await;
    let r = second_step(&app, &token, json!({"recovery_code": codes[0]})).await;
    assert_error(r, 401, "unauthorized").await;
    // That was one wrong attempt; four more, then even the right code waits.
    for _ in 0..4 {
        let r = second_step(&app, &token, json!({"code": "999999"})).await;
        assert_eq!(r.status(), 401);
    }
    let r = second_step(&app, &token, json!({"code": totp(&secret, 1)})).await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, 429, "rate_limited").await;
    let log: Value = app
        .get_auth("/auth/events", &user.access_token)
        .await
        .json()
        .await
        .unwrap();
    let kinds = log.to_string();
    for k in ["mfa_enabled", "recovery_code_used", "login_failed"] {
        assert!(kinds.contains(k), "{k} in {kinds}");
    }
    for c in &codes {
        assert!(!kinds.contains(c.as_str()));
    }
}

pub async fn disabling_two_factor_needs_the_password_and_a_code(app: TestApp) {
    let user = app.register("totp-off").await;
    let (secret, codes) = with_two_factor(&app, &user).await;
    let body = json!({"password": "wrong password", "code": totp(&secret, 1)});
    let r = post_auth(&app, "/auth/2fa/disable", &user.access_token, Some(body)).await;
    assert_error(r, 401, "unauthorized").await;
    let body = json!({"password": user.password, "code": "123456"});
    let r = post_auth(&app, "/auth/2fa/disable", &user.access_token, Some(body)).await;
    assert_error(r, 401, "unauthorized").await;
    let body = json!({"password": user.password, "code": codes[5]});
    let r = post_auth(&app, "/auth/2fa/disable", &user.access_token, Some(body)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        login_as(&app, &user.email, &user.password, None)
            .await
            .status(),
        200
    );
    let body = json!({"password": user.password, "code": codes[6]});
    let r = post_auth(&app, "/auth/2fa/disable", &user.access_token, Some(body)).await;
    assert_error(r, 409, "conflict").await;
    let log: Value = app
        .get_auth("/auth/events", &user.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(log["events"][1]["kind"], "mfa_disabled", "{log}");
}
