//! Accounts and authentication, end to end. JWT attacks are built with the independent
//! `jsonwebtoken` crate (and by hand for `alg: none`), never with the server's own signer.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{percentile_ms, JWT_SECRET};
use crate::helpers::{assert_error, unique_email, unique_ip, TestApp, TestUser};

async fn login(app: &TestApp, email: &str, password: &str, ip: &str) -> reqwest::Response {
    app.req(Method::POST, "/auth/login")
        .header("CF-Connecting-IP", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_json("/auth/refresh", &json!({"refresh_token": token}))
        .await
}

async fn tokens(r: reqwest::Response) -> (String, String) {
    assert_eq!(r.status(), StatusCode::OK);
    let b: Value = r.json().await.unwrap();
    (
        b["access_token"].as_str().unwrap().to_owned(),
        b["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn user_id_of(user: &TestUser) -> String {
    let payload = user.access_token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

pub async fn the_full_register_login_me_refresh_reuse_logout_flow(app: TestApp) {
    let user = app.register("flow").await;
    let ip = unique_ip();

    // Register's tokens work.
    let r = app.get_auth("/auth/me", &user.access_token).await;
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["email"], user.email.as_str());
    assert_eq!(me["tier"], "free");
    assert!(uuid::Uuid::try_parse(me["id"].as_str().unwrap()).is_ok());

    // Login gives a pair whose expiry is ~15 minutes out, in epoch ms.
    let r = login(&app, &user.email, &user.password, &ip).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let expires_at = body["expires_at"].as_i64().unwrap();
    let now_ms = i64::try_from(now_secs() * 1000).unwrap();
    assert!(
        (expires_at - now_ms - 900_000).abs() < 60_000,
        "{expires_at}"
    );
    let access = body["access_token"].as_str().unwrap().to_owned();
    let r1 = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get_auth("/auth/me", &access).await.status(), 200);

    // Refresh rotates.
    let (access2, r2) = tokens(refresh(&app, &r1).await).await;
    assert_ne!(r2, r1);
    assert_eq!(app.get_auth("/auth/me", &access2).await.status(), 200);
    let (_, r3) = tokens(refresh(&app, &r2).await).await;

    // Reusing r1 long after it was rotated is theft: 401 and the family dies with it...
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    assert_error(refresh(&app, &r1).await, 401, "unauthorized").await;
    assert_error(refresh(&app, &r3).await, 401, "unauthorized").await;
    // ...but the registration's own session (another family) lives on.
    let (_, rr) = tokens(refresh(&app, &user.refresh_token).await).await;

    // Logout needs the caller's access token...
    let r = app
        .post_json("/auth/logout", &json!({"refresh_token": rr}))
        .await;
    assert_error(r, 401, "unauthorized").await;
    // ...and another user's cannot end this session.
    let stranger = app.register("stranger").await;
    assert_eq!(
        logout(&app, &stranger.access_token, &rr).await.status(),
        200
    );
    let (_, rr) = tokens(refresh(&app, &rr).await).await;
    // Logout revokes that family; logging out again is harmless.
    let r = logout(&app, &access, &rr).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"ok": true}));
    assert_error(refresh(&app, &rr).await, 401, "unauthorized").await;
    assert_eq!(logout(&app, &access, &rr).await.status(), 200);
}

async fn logout(app: &TestApp, access: &str, refresh_token: &str) -> reqwest::Response {
    app.req(Method::POST, "/auth/logout")
        .bearer_auth(access)
        .json(&json!({"refresh_token": refresh_token}))
        .send()
        .await
        .unwrap()
}

pub async fn registration_normalises_the_email_and_refuses_duplicates(app: TestApp) {
    let email = unique_email("dup");
    let r = app
        .post_json(
            "/auth/register",
            &json!({"email": format!("  {}  ", email.to_uppercase()), "password": "long enough"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let b: Value = r.json().await.unwrap();
    let me: Value = app
        .get_auth("/auth/me", b["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], email.as_str());
    let r = app
        .post_json(
            "/auth/register",
            &json!({"email": email, "password": "other password"}),
        )
        .await;
    assert_error(r, 409, "conflict").await;
    // Login is case-insensitive on the email too.
    let r = login(&app, &email.to_uppercase(), "long enough", &unique_ip()).await;
    assert_eq!(r.status(), 200);
}

pub async fn registration_validates_email_and_password_naming_the_field(app: TestApp) {
    let cases = [
        (
            json!({"email": "not-an-email", "password": "long enough"}),
            vec!["email"],
        ),
        (
            json!({"email": unique_email("v"), "password": "short"}),
            vec!["password"],
        ),
        (
            json!({"email": unique_email("v"), "password": "x".repeat(257)}),
            vec!["password"],
        ),
        (
            json!({"email": "", "password": ""}),
            vec!["email", "password"],
        ),
    ];
    for (body, fields) in cases {
        let r = app.post_json("/auth/register", &body).await;
        let err = assert_error(r, 422, "validation_failed").await;
        let named: Vec<&str> = err["error"]["details"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(named, fields, "{body}");
    }
    // Exactly 8 and exactly 256 characters are fine.
    for pw in ["12345678".to_owned(), "é".repeat(256)] {
        let r = app
            .post_json(
                "/auth/register",
                &json!({"email": unique_email("v"), "password": pw}),
            )
            .await;
        assert_eq!(r.status(), 201);
    }
}

pub async fn admin_emails_register_as_admins(app: TestApp) {
    // The admin account is shared by the run: registered (if nobody has) and verified.
    let admin = app.admin().await;
    let me: Value = app
        .get_auth("/auth/me", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email_verified"], true, "{me}");
    let log = app.stack.log();
    assert!(
        log.lines()
            .any(|l| l.contains("email verified") && l.contains("\"role\":\"admin\"")),
        "the admin role is granted when the address is verified, and logged"
    );
    assert!(
        !log.lines()
            .any(|l| l.contains("account registered") && l.contains("\"role\":\"admin\"")),
        "nobody is an admin by registering alone"
    );
}

pub async fn a_wrong_password_and_an_unknown_email_are_the_same_401(app: TestApp) {
    let user = app.register("same401").await;
    let a = login(&app, &user.email, "wrong password", &unique_ip()).await;
    let b = login(&app, &unique_email("ghost"), "wrong password", &unique_ip()).await;
    assert_eq!(a.headers()["www-authenticate"], "Bearer");
    let mut ea = assert_error(a, 401, "unauthorized").await;
    let mut eb = assert_error(b, 401, "unauthorized").await;
    ea["error"]["request_id"] = Value::Null;
    eb["error"]["request_id"] = Value::Null;
    assert_eq!(ea, eb);
}

pub async fn an_unknown_email_takes_about_as_long_as_a_wrong_password(app: TestApp) {
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..5 {
        // A fresh account each time so no throttle interferes.
        let user = app.register("timing").await;
        let t = Instant::now();
        let r = login(&app, &user.email, "wrong password", &unique_ip()).await;
        wrong.push(t.elapsed());
        assert_eq!(r.status(), 401);
        let t = Instant::now();
        let r = login(&app, &unique_email("ghost"), "wrong password", &unique_ip()).await;
        unknown.push(t.elapsed());
        assert_eq!(r.status(), 401);
    }
    let (w, u) = (percentile_ms(&wrong, 0.5), percentile_ms(&unknown, 0.5));
    // Without the dummy hash an unknown email answers several times faster.
    assert!(
        u > w * 0.5,
        "median unknown {u:.1} ms vs wrong password {w:.1} ms"
    );
}

pub async fn protected_routes_require_a_bearer_token(app: TestApp) {
    for (method, path) in [
        (Method::GET, "/auth/me"),
        (Method::POST, "/auth/logout"),
        (Method::POST, "/auth/logout-all"),
        (Method::POST, "/auth/ws-ticket"),
    ] {
        let r = app.req(method.clone(), path).send().await.unwrap();
        assert_eq!(r.headers()["www-authenticate"], "Bearer", "{path}");
        assert_error(r, 401, "unauthorized").await;
        let r = app
            .req(method.clone(), path)
            .header("Authorization", "Basic dXNlcjpwYXNz")
            .send()
            .await
            .unwrap();
        assert_error(r, 401, "unauthorized").await;
    }
}

fn claims(sub: Option<&str>, exp_offset: i64) -> Value {
    let now = i64::try_from(now_secs()).unwrap();
    let mut c = json!({"tier": "team", "iat": now, "exp": now + exp_offset, "jti": "x"});
    if let Some(sub) = sub {
        c["sub"] = json!(sub);
    }
    c
}

fn sign(alg: Algorithm, claims: &Value, secret: &[u8]) -> String {
    encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
}

pub async fn forged_and_broken_tokens_are_rejected(app: TestApp) {
    let user = app.register("jwt").await;
    let sub = user_id_of(&user);
    let secret = JWT_SECRET.as_bytes();

    // Control: a token the independent library signs correctly is accepted.
    let good = sign(Algorithm::HS256, &claims(Some(&sub), 300), secret);
    assert_eq!(app.get_auth("/auth/me", &good).await.status(), 200);

    let none = {
        let head = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
        let body = URL_SAFE_NO_PAD.encode(claims(Some(&sub), 300).to_string());
        format!("{head}.{body}.")
    };
    let attacks = [
        ("alg none", none),
        (
            "HS512 with the real secret",
            sign(Algorithm::HS512, &claims(Some(&sub), 300), secret),
        ),
        (
            "HS384 with the real secret",
            sign(Algorithm::HS384, &claims(Some(&sub), 300), secret),
        ),
        (
            "another secret",
            sign(
                Algorithm::HS256,
                &claims(Some(&sub), 300),
                b"not-the-secret-not-the-secret-00",
            ),
        ),
        (
            "expired",
            sign(Algorithm::HS256, &claims(Some(&sub), -5), secret),
        ),
        ("no sub", sign(Algorithm::HS256, &claims(None, 300), secret)),
        (
            "sub not a user id",
            sign(Algorithm::HS256, &claims(Some("admin"), 300), secret),
        ),
        ("garbage", "abc.def.ghi".to_owned()),
        ("empty", String::new()),
    ];
    for (name, token) in attacks {
        let r = app.get_auth("/auth/me", &token).await;
        assert_eq!(r.status(), 401, "{name} must be rejected");
        assert_error(r, 401, "unauthorized").await;
    }

    // A token for a user id that does not exist passes the signature check but not /me.
    let ghost = sign(
        Algorithm::HS256,
        &claims(Some(&uuid::Uuid::new_v4().to_string()), 300),
        secret,
    );
    assert_error(app.get_auth("/auth/me", &ghost).await, 401, "unauthorized").await;
}

pub async fn racing_refreshes_from_one_device_keep_it_signed_in(app: TestApp) {
    let user = app.register("race").await;
    let (a, b) = tokio::join!(
        refresh(&app, &user.refresh_token),
        refresh(&app, &user.refresh_token)
    );
    let (_, ra) = tokens(a).await;
    let (_, rb) = tokens(b).await;
    assert_ne!(ra, rb);
    // Whichever answer the device kept, it can go on refreshing.
    tokens(refresh(&app, &ra).await).await;
    tokens(refresh(&app, &rb).await).await;
}

pub async fn logout_revokes_one_session_and_logout_all_every_session(app: TestApp) {
    let user = app.register("logout").await;
    let (_, laptop) = tokens(login(&app, &user.email, &user.password, &unique_ip()).await).await;
    let (phone_access, phone) =
        tokens(login(&app, &user.email, &user.password, &unique_ip()).await).await;

    let r = logout(&app, &phone_access, &laptop).await;
    assert_eq!(r.status(), 200);
    assert_error(refresh(&app, &laptop).await, 401, "unauthorized").await;
    let (_, phone2) = tokens(refresh(&app, &phone).await).await;

    let r = app
        .req(Method::POST, "/auth/logout-all")
        .bearer_auth(&phone_access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["ok"], true);
    assert_eq!(
        b["revoked"], 2,
        "the registration's and the phone's sessions"
    );
    assert_error(refresh(&app, &phone2).await, 401, "unauthorized").await;
    assert_error(
        refresh(&app, &user.refresh_token).await,
        401,
        "unauthorized",
    )
    .await;
}

pub async fn repeated_failures_throttle_the_account_from_that_address(app: TestApp) {
    let user = app.register("throttle").await;
    let ip = unique_ip();
    for i in 0..5 {
        let r = login(&app, &user.email, "wrong password", &ip).await;
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    // Locked from that address, even with the right password.
    let r = login(&app, &user.email, &user.password, &ip).await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=180).contains(&retry), "{retry}");
    let body = assert_error(r, 429, "rate_limited").await;
    assert_eq!(body["error"]["details"]["retry_after"], retry);
    // The owner elsewhere, and other accounts from that address, are unaffected.
    assert_eq!(
        login(&app, &user.email, &user.password, &unique_ip())
            .await
            .status(),
        200
    );
    let other = app.register("throttle-other").await;
    assert_eq!(
        login(&app, &other.email, &other.password, &ip)
            .await
            .status(),
        200
    );
}

pub async fn repeated_failures_throttle_the_client_ip(app: TestApp) {
    // 50 failures per 15 minutes per IP: a burst of 50, then one more every 18 s (GCRA). Under
    // load the burst itself may take a while, so allow what the sustained rate gives back.
    let ip = unique_ip();
    let started = Instant::now();
    let mut failures = 0u64;
    let refused = loop {
        let r = login(&app, &unique_email("spray"), "wrong password", &ip).await;
        if r.status() == 429 {
            break r;
        }
        assert_eq!(r.status(), 401);
        failures += 1;
        assert!(failures <= 80, "never throttled");
    };
    let regained = started.elapsed().as_secs() / 18 + 1;
    assert!(
        (50..=50 + regained).contains(&failures),
        "{failures} failures before the first 429 ({regained} units regained)"
    );
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=18).contains(&retry), "{retry}");
    assert_error(refused, 429, "rate_limited").await;
    // The right password from that IP is refused too while the throttle holds; another IP is fine.
    let user = app.register("ip-victim").await;
    if retry >= 3 {
        let r = login(&app, &user.email, &user.password, &ip).await;
        assert_error(r, 429, "rate_limited").await;
    }
    assert_eq!(
        login(&app, &user.email, &user.password, &unique_ip())
            .await
            .status(),
        200
    );
}

/// An address in a fresh documentation /64 (RFC 3849), and a function of the interface id
/// giving every address of that /64.
fn ipv6_network() -> impl Fn(u16) -> String {
    let b = uuid::Uuid::new_v4().into_bytes();
    let prefix = format!(
        "2001:db8:{:x}:{:x}",
        u16::from_be_bytes([b[0], b[1]]),
        u16::from_be_bytes([b[2], b[3]])
    );
    move |host| format!("{prefix}:{host:x}:0:0:1")
}

pub async fn failures_from_one_ipv6_64_share_one_client_throttle(app: TestApp) {
    // An IPv6 client holds a whole /64: each failure from another address in it still counts
    // against the same 50 per 15 minutes.
    let addr = ipv6_network();
    let started = Instant::now();
    let mut failures = 0u16;
    let refused = loop {
        let r = login(
            &app,
            &unique_email("spray6"),
            "wrong password",
            &addr(failures),
        )
        .await;
        if r.status() == 429 {
            break r;
        }
        assert_eq!(r.status(), 401);
        failures += 1;
        assert!(failures <= 80, "never throttled");
    };
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_error(refused, 429, "rate_limited").await;
    let regained = u16::try_from(started.elapsed().as_secs() / 18 + 1).unwrap();
    assert!(
        (50..=50 + regained).contains(&failures),
        "{failures} failures before the first 429 ({regained} units regained)"
    );
    // The right password from yet another address of that /64 is refused; another /64 is fine.
    let user = app.register("ipv6-victim").await;
    if retry >= 3 {
        let r = login(&app, &user.email, &user.password, &addr(999)).await;
        assert_error(r, 429, "rate_limited").await;
    }
    let elsewhere = ipv6_network();
    assert_eq!(
        login(&app, &user.email, &user.password, &elsewhere(1))
            .await
            .status(),
        200
    );
}

pub async fn ws_tickets_are_issued_for_thirty_seconds(app: TestApp) {
    let user = app.register("ticket").await;
    let before = i64::try_from(now_secs() * 1000).unwrap();
    let r = app
        .req(Method::POST, "/auth/ws-ticket")
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    let ticket = b["ticket"].as_str().unwrap();
    assert!(ticket.len() >= 43, "256 bits of randomness: {ticket}");
    let ttl = b["expires_at"].as_i64().unwrap() - before;
    assert!((25_000..=35_000).contains(&ttl), "{ttl}");
    // Two tickets are never the same.
    let b2: Value = app
        .req(Method::POST, "/auth/ws-ticket")
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(b2["ticket"], b["ticket"]);
}

pub async fn passwords_and_tokens_never_reach_the_logs(app: TestApp) {
    let canary = format!("canary-pw-{}", uuid::Uuid::new_v4().simple());
    let email = unique_email("canary");
    let r = app
        .post_json(
            "/auth/register",
            &json!({"email": email, "password": canary}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let b: Value = r.json().await.unwrap();
    let refresh_token = b["refresh_token"].as_str().unwrap().to_owned();
    let access = b["access_token"].as_str().unwrap().to_owned();
    let _ = login(&app, &email, &canary, &unique_ip()).await;
    let _ = login(&app, &email, &format!("{canary}-wrong"), &unique_ip()).await;
    let _ = refresh(&app, &refresh_token).await;
    let _ = app.get_auth("/auth/me", &access).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = app.stack.log();
    assert!(!log.contains(&canary), "a password reached the logs");
    assert!(
        !log.contains(&refresh_token),
        "a refresh token reached the logs"
    );
    assert!(!log.contains(&access), "an access token reached the logs");
    assert!(!log.contains(&email), "an email reached the logs");
}
