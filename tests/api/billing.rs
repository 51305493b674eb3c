//! Billing end to end: Checkout against the scripted Stripe server, and webhooks signed here
//! with an independent HMAC (not the server's code) driving the user's tier.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::harness::{stripe_signature, PRICE_POWER, PRICE_TEAM, STRIPE_WEBHOOK_SECRET};
use crate::helpers::{assert_error, TestApp, TestUser};

fn now_secs() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

async fn post_event(app: &TestApp, payload: &str, signature: Option<&str>) -> reqwest::Response {
    let mut req = app
        .req(Method::POST, "/billing/webhook")
        .header("Content-Type", "application/json")
        .body(payload.to_owned());
    if let Some(s) = signature {
        req = req.header("Stripe-Signature", s);
    }
    req.send().await.unwrap()
}

/// Sends a correctly signed event; asserts 200.
async fn send(app: &TestApp, id: &str, kind: &str, created: i64, object: Value) {
    let payload =
        json!({"id": id, "object": "event", "type": kind, "created": created, "data": {"object": object}})
            .to_string();
    let sig = stripe_signature(&payload, now_secs(), STRIPE_WEBHOOK_SECRET);
    let r = post_event(app, &payload, Some(&sig)).await;
    assert_eq!(r.status(), 200, "{kind} {id}");
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"ok": true}));
}

fn user_id(user: &TestUser) -> String {
    use base64::Engine;
    let payload = user.access_token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

fn completed(user: &str, sub: &str, customer: &str, tier: &str) -> Value {
    json!({"object": "checkout.session", "mode": "subscription", "client_reference_id": user,
           "customer": customer, "subscription": sub, "metadata": {"tier": tier, "user_id": user}})
}

fn subscription(sub: &str, customer: &str, status: &str, price: &str, period_end: i64) -> Value {
    json!({"object": "subscription", "id": sub, "customer": customer, "status": status,
           "cancel_at_period_end": false,
           "items": {"data": [{"quantity": 1, "current_period_end": period_end, "price": {"id": price}}]}})
}

/// Gives `user` an active subscription to `tier` with `seats` through a signed checkout
/// completion, as Stripe would send it.
pub async fn subscribe(app: &TestApp, user: &TestUser, tier: &str, seats: u32) {
    let id = user_id(user);
    let mut session = completed(&id, &unique("sub"), &unique("cus"), tier);
    session["metadata"]["seats"] = json!(seats.to_string());
    let evt = unique("evt");
    send(app, &evt, "checkout.session.completed", now_secs(), session).await;
}

/// As [`subscribe`] (one seat); returns the subscription and customer ids.
pub async fn subscribe_with_ids(app: &TestApp, user: &TestUser, tier: &str) -> (String, String) {
    let (sub, cus) = (unique("sub"), unique("cus"));
    let session = completed(&user_id(user), &sub, &cus, tier);
    send(
        app,
        &unique("evt"),
        "checkout.session.completed",
        now_secs(),
        session,
    )
    .await;
    (sub, cus)
}

/// Stripe ends the subscription `sub` (`customer.subscription.deleted`, signed).
pub async fn delete_subscription(app: &TestApp, sub: &str, cus: &str) {
    send(
        app,
        &unique("evt"),
        "customer.subscription.deleted",
        now_secs() + 1,
        subscription(sub, cus, "canceled", PRICE_POWER, now_secs()),
    )
    .await;
}

async fn tier_of(app: &TestApp, user: &TestUser) -> String {
    let me: Value = app
        .get_auth("/auth/me", &user.access_token)
        .await
        .json()
        .await
        .unwrap();
    me["tier"].as_str().unwrap().to_owned()
}

async fn subscription_info(app: &TestApp, user: &TestUser) -> Value {
    let r = app
        .get_auth("/billing/subscription", &user.access_token)
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub async fn checkout_creates_the_right_stripe_session(app: TestApp) {
    let user = app.register("checkout").await;
    let id = user_id(&user);
    let session_url = format!("https://checkout.stripe.test/c/pay/{}", unique("cs"));
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .and(body_string_contains(id.as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "cs_mine", "url": session_url})),
        )
        .with_priority(1)
        .mount(&app.stack.stripe)
        .await;

    let r = app
        .req(Method::POST, "/billing/checkout")
        .bearer_auth(&user.access_token)
        .json(&json!({"tier": "team", "seats": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"checkout_url": session_url})
    );

    let requests = app.stack.stripe.received_requests().await.unwrap();
    let sent = requests
        .iter()
        .find(|r| String::from_utf8_lossy(&r.body).contains(id.as_str()))
        .expect("the worker called Stripe");
    assert_eq!(sent.headers["authorization"], "Bearer sk_test_e2e");
    assert!(!sent.headers["idempotency-key"].is_empty());
    assert_eq!(
        sent.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&sent.body)
        .into_owned()
        .collect();
    for (k, v) in [
        ("mode", "subscription"),
        ("line_items[0][price]", PRICE_TEAM),
        ("line_items[0][quantity]", "3"),
        ("client_reference_id", id.as_str()),
        ("metadata[tier]", "team"),
        ("subscription_data[metadata][user_id]", id.as_str()),
        ("customer_email", user.email.as_str()),
    ] {
        assert!(
            form.contains(&(k.to_owned(), v.to_owned())),
            "{k}={v} missing from {form:?}"
        );
    }
}

pub async fn checkout_validates_the_tier_and_seats(app: TestApp) {
    let user = app.register("checkout-bad").await;
    for body in [
        json!({"tier": "free"}),
        json!({"tier": "enterprise"}),
        json!({"tier": "pro", "seats": 2}),
        json!({"tier": "team", "seats": 0}),
    ] {
        let r = app
            .req(Method::POST, "/billing/checkout")
            .bearer_auth(&user.access_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_error(r, 422, "validation_failed").await;
    }
    let r = app
        .req(Method::POST, "/billing/checkout")
        .json(&json!({"tier": "pro"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "unauthorized").await;
}

pub async fn checkout_reports_stripe_outages_as_503_after_retrying(app: TestApp) {
    let user = app.register("checkout-down").await;
    let id = user_id(&user);
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .and(body_string_contains(id.as_str()))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .expect(3)
        .mount(&app.stack.stripe)
        .await;
    let r = app
        .req(Method::POST, "/billing/checkout")
        .bearer_auth(&user.access_token)
        .json(&json!({"tier": "pro"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 503, "upstream_unavailable").await;
    assert_eq!(body["error"]["details"]["service"], "payments");
    let attempts = app
        .stack
        .stripe
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains(id.as_str()))
        .count();
    assert_eq!(attempts, 3, "one attempt and two retries");
}

pub async fn a_signed_checkout_completion_upgrades_the_user(app: TestApp) {
    let user = app.register("upgrade").await;
    let id = user_id(&user);
    assert_eq!(tier_of(&app, &user).await, "free");
    let sub = unique("sub");
    send(
        &app,
        &unique("evt"),
        "checkout.session.completed",
        now_secs(),
        completed(&id, &sub, &unique("cus"), "power"),
    )
    .await;
    assert_eq!(tier_of(&app, &user).await, "power");
    let info = subscription_info(&app, &user).await;
    assert_eq!(info["tier"], "power");
    assert_eq!(info["status"], "active");
    assert_eq!(info["seats"], 1);
    assert_eq!(info["cancel_at_period_end"], false);
    // A second checkout while subscribed is refused.
    let r = app
        .req(Method::POST, "/billing/checkout")
        .bearer_auth(&user.access_token)
        .json(&json!({"tier": "pro"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, "conflict").await;
}

pub async fn bad_or_stale_signatures_are_400_and_change_nothing(app: TestApp) {
    let user = app.register("badsig").await;
    let id = user_id(&user);
    let payload = json!({"id": unique("evt"), "object": "event", "type": "checkout.session.completed",
        "created": now_secs(), "data": {"object": completed(&id, &unique("sub"), &unique("cus"), "team")}})
    .to_string();
    let now = now_secs();
    let cases = [
        None,
        Some("garbage".to_owned()),
        Some(stripe_signature(&payload, now, "whsec_not_the_secret")),
        Some(stripe_signature(&payload, now - 301, STRIPE_WEBHOOK_SECRET)),
        Some(stripe_signature(
            &format!("{payload} "),
            now,
            STRIPE_WEBHOOK_SECRET,
        )),
    ];
    for sig in cases {
        let r = post_event(&app, &payload, sig.as_deref()).await;
        assert_error(r, 400, "invalid_signature").await;
    }
    assert_eq!(tier_of(&app, &user).await, "free");
    // Several v1 entries: one valid one suffices.
    let good = stripe_signature(&payload, now, STRIPE_WEBHOOK_SECRET);
    let v1 = good.split(",v1=").nth(1).unwrap();
    let multi = format!("t={now},v1={},v1={v1}", "0".repeat(64));
    assert_eq!(
        post_event(&app, &payload, Some(&multi)).await.status(),
        StatusCode::OK
    );
    assert_eq!(tier_of(&app, &user).await, "team");
}

pub async fn a_replayed_event_has_no_effect(app: TestApp) {
    let user = app.register("replay").await;
    let id = user_id(&user);
    let (sub, cus, evt) = (unique("sub"), unique("cus"), unique("evt"));
    let t = now_secs();
    send(
        &app,
        &evt,
        "checkout.session.completed",
        t,
        completed(&id, &sub, &cus, "pro"),
    )
    .await;
    send(
        &app,
        &unique("evt"),
        "customer.subscription.deleted",
        t + 1,
        subscription(&sub, &cus, "canceled", "price_pro_e2e", t + 60),
    )
    .await;
    assert_eq!(tier_of(&app, &user).await, "free");
    // Stripe delivers the completion again: acknowledged, ignored.
    send(
        &app,
        &evt,
        "checkout.session.completed",
        t,
        completed(&id, &sub, &cus, "pro"),
    )
    .await;
    assert_eq!(tier_of(&app, &user).await, "free");
}

pub async fn an_out_of_order_update_never_rolls_back(app: TestApp) {
    let user = app.register("order").await;
    let id = user_id(&user);
    let (sub, cus) = (unique("sub"), unique("cus"));
    let t = now_secs();
    send(
        &app,
        &unique("evt"),
        "checkout.session.completed",
        t,
        completed(&id, &sub, &cus, "pro"),
    )
    .await;
    send(
        &app,
        &unique("evt"),
        "customer.subscription.updated",
        t + 20,
        subscription(&sub, &cus, "active", PRICE_POWER, t + 3600),
    )
    .await;
    assert_eq!(tier_of(&app, &user).await, "power");
    // An update created before the upgrade arrives last.
    send(
        &app,
        &unique("evt"),
        "customer.subscription.updated",
        t + 10,
        subscription(&sub, &cus, "active", "price_pro_e2e", t + 3600),
    )
    .await;
    assert_eq!(tier_of(&app, &user).await, "power");
    let info = subscription_info(&app, &user).await;
    assert_eq!(info["current_period_end"], (t + 3600) * 1000);
}

pub async fn a_failed_payment_keeps_the_tier_and_payment_restores_it(app: TestApp) {
    let user = app.register("pastdue").await;
    let id = user_id(&user);
    let (sub, cus) = (unique("sub"), unique("cus"));
    let t = now_secs();
    send(
        &app,
        &unique("evt"),
        "checkout.session.completed",
        t,
        completed(&id, &sub, &cus, "pro"),
    )
    .await;
    send(
        &app,
        &unique("evt"),
        "customer.subscription.updated",
        t + 1,
        subscription(&sub, &cus, "active", "price_pro_e2e", t + 3600),
    )
    .await;
    send(
        &app,
        &unique("evt"),
        "invoice.payment_failed",
        t + 2,
        json!({"object": "invoice", "subscription": sub, "customer": cus}),
    )
    .await;
    assert_eq!(subscription_info(&app, &user).await["status"], "past_due");
    assert_eq!(
        tier_of(&app, &user).await,
        "pro",
        "kept until the period ends"
    );
    send(
        &app,
        &unique("evt"),
        "invoice.paid",
        t + 3,
        json!({"object": "invoice", "subscription": sub, "customer": cus}),
    )
    .await;
    assert_eq!(subscription_info(&app, &user).await["status"], "active");
    // A past-due subscription whose period already ended grants nothing.
    send(
        &app,
        &unique("evt"),
        "customer.subscription.updated",
        t + 4,
        subscription(&sub, &cus, "past_due", "price_pro_e2e", t - 10),
    )
    .await;
    assert_eq!(tier_of(&app, &user).await, "free");
}

pub async fn cancellation_goes_through_stripe_and_deletion_makes_the_user_free(app: TestApp) {
    let user = app.register("cancel").await;
    let id = user_id(&user);
    let r = app
        .req(Method::DELETE, "/billing/subscription")
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "not_found").await;

    let (sub, cus) = (unique("sub"), unique("cus"));
    let t = now_secs();
    send(
        &app,
        &unique("evt"),
        "checkout.session.completed",
        t,
        completed(&id, &sub, &cus, "team"),
    )
    .await;
    let r = app
        .req(Method::DELETE, "/billing/subscription")
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let requests = app.stack.stripe.received_requests().await.unwrap();
    let cancel = requests
        .iter()
        .find(|r| r.url.path() == format!("/v1/subscriptions/{sub}"))
        .expect("the worker asked Stripe to cancel");
    assert_eq!(
        String::from_utf8_lossy(&cancel.body),
        "cancel_at_period_end=true"
    );
    assert!(!cancel.headers["idempotency-key"].is_empty());
    let info = subscription_info(&app, &user).await;
    assert_eq!(info["cancel_at_period_end"], true);
    assert_eq!(info["tier"], "team", "paid until the period ends");

    send(
        &app,
        &unique("evt"),
        "customer.subscription.deleted",
        t + 5,
        subscription(&sub, &cus, "canceled", PRICE_TEAM, t + 5),
    )
    .await;
    assert_eq!(tier_of(&app, &user).await, "free");
    assert_eq!(subscription_info(&app, &user).await["status"], "canceled");
}

pub async fn unknown_events_are_acknowledged_and_ignored(app: TestApp) {
    send(
        &app,
        &unique("evt"),
        "charge.dispute.created",
        now_secs(),
        json!({"object": "dispute", "id": "dp_1"}),
    )
    .await;
    let payload = "not json at all";
    let sig = stripe_signature(payload, now_secs(), STRIPE_WEBHOOK_SECRET);
    assert_error(
        post_event(&app, payload, Some(&sig)).await,
        400,
        "malformed_json",
    )
    .await;
}

/// Defect 8 of the December review: a `checkout.session.completed` still `unpaid` (a delayed
/// payment method) granted the tier at once.
pub async fn an_unpaid_checkout_grants_nothing_until_its_payment_succeeds(app: TestApp) {
    let user = app.register("unpaid-checkout").await;
    let id = user_id(&user);
    let (sub, cus) = (unique("sub"), unique("cus"));
    let mut session = completed(&id, &sub, &cus, "power");
    session["payment_status"] = json!("unpaid");
    let t = now_secs();
    send(
        &app,
        &unique("evt"),
        "checkout.session.completed",
        t,
        session.clone(),
    )
    .await;
    assert_eq!(tier_of(&app, &user).await, "free", "not paid yet");
    send(
        &app,
        &unique("evt"),
        "checkout.session.async_payment_failed",
        t + 1,
        session.clone(),
    )
    .await;
    assert_eq!(tier_of(&app, &user).await, "free", "the payment failed");

    // Another buyer's delayed payment succeeds: then the tier is granted.
    let payer = app.register("async-paid").await;
    let payer_id = user_id(&payer);
    let mut session = completed(&payer_id, &unique("sub"), &unique("cus"), "pro");
    session["payment_status"] = json!("unpaid");
    send(
        &app,
        &unique("evt"),
        "checkout.session.completed",
        t,
        session.clone(),
    )
    .await;
    assert_eq!(tier_of(&app, &payer).await, "free");
    session["payment_status"] = json!("paid");
    send(
        &app,
        &unique("evt"),
        "checkout.session.async_payment_succeeded",
        t + 2,
        session,
    )
    .await;
    assert_eq!(tier_of(&app, &payer).await, "pro");
}

/// Defect 9: `customer.subscription.deleted` followed by an `updated` (status `active`) of the
/// same `created` second revived the tier.
pub async fn a_deleted_subscription_never_comes_back_to_life(app: TestApp) {
    let user = app.register("zombie-sub").await;
    let id = user_id(&user);
    let (sub, cus) = (unique("sub"), unique("cus"));
    let t = now_secs();
    send(
        &app,
        &unique("evt"),
        "checkout.session.completed",
        t,
        completed(&id, &sub, &cus, "power"),
    )
    .await;
    assert_eq!(tier_of(&app, &user).await, "power");
    send(
        &app,
        &unique("evt"),
        "customer.subscription.deleted",
        t + 5,
        subscription(&sub, &cus, "canceled", PRICE_POWER, t + 5),
    )
    .await;
    assert_eq!(tier_of(&app, &user).await, "free");
    for created in [t + 5, t + 6] {
        send(
            &app,
            &unique("evt"),
            "customer.subscription.updated",
            created,
            subscription(&sub, &cus, "active", PRICE_POWER, t + 3600),
        )
        .await;
        assert_eq!(tier_of(&app, &user).await, "free", "update at {created}");
    }
    assert_eq!(subscription_info(&app, &user).await["status"], "canceled");
}

/// Defect 11: a Stripe error quoting the customer's email was logged verbatim.
pub async fn an_upstream_error_quoting_the_email_never_reaches_the_logs(app: TestApp) {
    let user = app.register("leaky-stripe").await;
    let id = user_id(&user);
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .and(body_string_contains(id.as_str()))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "type": "invalid_request_error", "code": "email_invalid",
            "message": format!("Invalid email address: {} (sk_test_e2e_0123456789abcdefghij)", user.email),
        }})))
        .with_priority(1)
        .mount(&app.stack.stripe)
        .await;
    let r = app
        .req(Method::POST, "/billing/checkout")
        .bearer_auth(&user.access_token)
        .json(&json!({"tier": "pro"}))
        .send()
        .await
        .unwrap();
    let raw = r.text().await.unwrap();
    assert!(raw.contains("upstream_unavailable"), "{raw}");
    assert!(
        !raw.contains(&user.email),
        "the answer quotes nothing: {raw}"
    );
    // The request's own log lines have arrived once the access line has.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let log = app.stack.log();
    let local = user.email.split('@').next().unwrap();
    assert!(!log.contains(local), "the email reached the logs");
    assert!(
        !log.contains("Invalid email address"),
        "Stripe's words reached the logs"
    );
    assert!(
        log.contains("invalid_request_error (email_invalid)"),
        "the status, type and code are logged"
    );
}

/// `POST /billing/portal` as `user`.
async fn open_portal(app: &TestApp, user: &TestUser) -> reqwest::Response {
    app.req(Method::POST, "/billing/portal")
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap()
}

/// The billing portal requests Stripe received for `customer`, oldest first.
async fn portal_requests(app: &TestApp, customer: &str) -> Vec<wiremock::Request> {
    app.stack
        .stripe
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.url.path() == "/v1/billing_portal/sessions"
                && url::form_urlencoded::parse(&r.body)
                    .any(|(k, v)| k == "customer" && v == customer)
        })
        .collect()
}

/// Answers portal sessions for `customer` with `url`.
async fn mount_portal(app: &TestApp, customer: &str, url: &str) {
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .and(body_string_contains(format!("customer={customer}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": unique("bps"), "object": "billing_portal.session", "url": url}),
        ))
        .with_priority(2)
        .mount(&app.stack.stripe)
        .await;
}

pub async fn the_billing_portal_opens_for_the_callers_own_customer_only(app: TestApp) {
    let victim = app.register("portal-victim").await;
    let attacker = app.register("portal-attacker").await;
    let (_, victim_cus) = subscribe_with_ids(&app, &victim, "pro").await;
    let (_, attacker_cus) = subscribe_with_ids(&app, &attacker, "power").await;
    let victim_url = format!("https://billing.stripe.test/p/session/{}", unique("v"));
    let attacker_url = format!("https://billing.stripe.test/p/session/{}", unique("a"));
    mount_portal(&app, &victim_cus, &victim_url).await;
    mount_portal(&app, &attacker_cus, &attacker_url).await;

    let r = open_portal(&app, &attacker).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"url": attacker_url})
    );
    let r = open_portal(&app, &attacker).await;
    assert_eq!(r.status(), 200);
    assert!(
        portal_requests(&app, &victim_cus).await.is_empty(),
        "the attacker's requests never name the victim's customer"
    );

    let sent = portal_requests(&app, &attacker_cus).await;
    assert_eq!(sent.len(), 2, "one Stripe call per request");
    for r in &sent {
        assert_eq!(r.headers["authorization"], "Bearer sk_test_e2e");
        assert_eq!(
            r.headers["content-type"],
            "application/x-www-form-urlencoded"
        );
        let form: Vec<(String, String)> =
            url::form_urlencoded::parse(&r.body).into_owned().collect();
        assert_eq!(
            form,
            vec![
                ("customer".to_owned(), attacker_cus.clone()),
                (
                    "return_url".to_owned(),
                    "https://adiuva.app/billing".to_owned()
                ),
            ]
        );
    }
    let keys: Vec<&str> = sent
        .iter()
        .map(|r| r.headers["idempotency-key"].to_str().unwrap())
        .collect();
    assert!(keys.iter().all(|k| k.len() > 8), "{keys:?}");
    assert_ne!(keys[0], keys[1], "each request is a new session");

    let r = open_portal(&app, &victim).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"url": victim_url}));
}

pub async fn the_billing_portal_is_a_conflict_without_a_customer(app: TestApp) {
    let user = app.register("portal-none").await;
    let r = open_portal(&app, &user).await;
    let body = assert_error(r, 409, "conflict").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("subscribe first"),
        "{body}"
    );
    let r = app
        .req(Method::POST, "/billing/portal")
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "unauthorized").await;
    let r = app
        .req(Method::POST, "/billing/portal")
        .bearer_auth("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged")
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "unauthorized").await;
}

pub async fn a_retried_portal_request_keeps_its_idempotency_key(app: TestApp) {
    let user = app.register("portal-retry").await;
    let (_, cus) = subscribe_with_ids(&app, &user, "pro").await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .and(body_string_contains(format!("customer={cus}")))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.stack.stripe)
        .await;
    let url = format!("https://billing.stripe.test/p/session/{}", unique("r"));
    mount_portal(&app, &cus, &url).await;

    let r = open_portal(&app, &user).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"url": url}));
    let sent = portal_requests(&app, &cus).await;
    assert_eq!(sent.len(), 2, "a failed attempt and its retry");
    assert_eq!(
        sent[0].headers["idempotency-key"], sent[1].headers["idempotency-key"],
        "a retry is the same request to Stripe"
    );
}

pub async fn a_portal_stripe_refuses_or_garbles_quotes_nothing_it_said(app: TestApp) {
    let user = app.register("portal-refused").await;
    let (_, cus) = subscribe_with_ids(&app, &user, "pro").await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .and(body_string_contains(format!("customer={cus}")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "type": "invalid_request_error", "code": "resource_missing",
            "message": format!("No configuration for {} ({cus})", user.email),
        }})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.stack.stripe)
        .await;
    // Then a 200 without a url: a lying upstream is no success either.
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .and(body_string_contains(format!("customer={cus}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "bps_x"})))
        .with_priority(2)
        .mount(&app.stack.stripe)
        .await;

    for _ in 0..2 {
        let r = open_portal(&app, &user).await;
        assert_eq!(r.status(), 502);
        let raw = r.text().await.unwrap();
        assert!(raw.contains("upstream_unavailable"), "{raw}");
        assert!(
            !raw.contains(&user.email) && !raw.contains("No configuration"),
            "{raw}"
        );
    }
    assert_eq!(
        portal_requests(&app, &cus).await.len(),
        2,
        "a 4xx is not retried"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let log = app.stack.log();
    assert!(
        !log.contains("No configuration"),
        "Stripe's words reached the logs"
    );
    assert!(!log.contains(user.email.split('@').next().unwrap()));
}
