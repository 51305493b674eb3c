//! What every test uses: a client for the running worker, unique users, assertions on the
//! error envelope.

use std::sync::Arc;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

use crate::harness::{stripe_signature, Stack, ADMIN_EMAIL, ADMIN_PASSWORD, STRIPE_WEBHOOK_SECRET};

/// The running stack as tests see it.
#[derive(Clone)]
pub struct TestApp {
    /// Base URL of the worker.
    pub base: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The stack (scripted servers, logs).
    pub stack: Arc<Stack>,
}

/// A registered user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub email: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// A unique email for one test.
pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@e2e.example.com", uuid::Uuid::new_v4().simple())
}

/// A unique documentation-range IP (RFC 5737) so per-IP throttles never cross tests.
pub fn unique_ip() -> String {
    let b = uuid::Uuid::new_v4().into_bytes();
    format!("198.51.{}.{}", b[0], b[1].max(1))
}

impl TestApp {
    pub fn new(stack: Arc<Stack>) -> Self {
        Self {
            base: stack.base_url.clone(),
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("client"),
            stack,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// POSTs `body` as JSON. Registrations come each from an address of their own, so the
    /// per-address registration throttle (20 an hour) never crosses tests; the throttle's own
    /// test sends its address explicitly.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        let mut req = self.req(Method::POST, path).json(body);
        if path == "/auth/register" {
            req = req.header("CF-Connecting-IP", unique_ip());
        }
        req.send().await.expect("request")
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Response {
        self.req(Method::GET, path)
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// Registers a fresh user.
    pub async fn register(&self, tag: &str) -> TestUser {
        let email = unique_email(tag);
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        let r = self
            .post_json(
                "/auth/register",
                &json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "register {email}");
        let body: Value = r.json().await.expect("json");
        TestUser {
            email,
            password,
            access_token: body["access_token"].as_str().expect("access").to_owned(),
            refresh_token: body["refresh_token"].as_str().expect("refresh").to_owned(),
        }
    }
}

/// The user id (`sub`) inside an access token.
pub fn user_id_of(user: &TestUser) -> String {
    use base64::Engine;
    let payload = user.access_token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url claims"),
    )
    .expect("JSON claims");
    claims["sub"].as_str().expect("sub").to_owned()
}

/// Every message the worker sent to `to` through the scripted email API, oldest first (the
/// JSON bodies as posted: `{from, to, subject, text, html}`).
pub async fn emails_to(app: &TestApp, to: &str) -> Vec<Value> {
    app.stack
        .email
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .filter(|m| {
            m["to"]
                .as_array()
                .is_some_and(|a| a.iter().any(|t| t.as_str() == Some(to)))
        })
        .collect()
}

/// The last message sent to `to`, waiting up to 5 s for it (mail sent after the answer).
pub async fn last_email_to(app: &TestApp, to: &str, after: usize) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let all = emails_to(app, to).await;
        if all.len() > after {
            return all.last().cloned().expect("a message");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no message to {to} after the {after} seen"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The token of the link to `path` (`/verify-email`, `/reset-password`) in `message`; the
/// link must point at the worker's public base (here: the origin the request came to), in both
/// the text and the HTML body.
pub fn link_token(app: &TestApp, message: &Value, path: &str) -> String {
    let prefix = format!("{}{path}?token=", app.base);
    let text = message["text"].as_str().expect("a text body");
    let start = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no {prefix} link in {text}"))
        + prefix.len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert!(
        message["html"]
            .as_str()
            .is_some_and(|h| h.contains(&format!("{prefix}{token}"))),
        "the HTML body carries the same link"
    );
    token
}

impl TestApp {
    /// The cancellations (`DELETE /v1/subscriptions/{sub}`) the scripted Stripe received.
    pub async fn stripe_cancellations(&self, sub: &str) -> Vec<wiremock::Request> {
        let path = format!("/v1/subscriptions/{sub}");
        self.stack
            .stripe
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == "DELETE" && r.url.path() == path)
            .collect()
    }

    /// Verifies `email` with the link of the last verification message sent to it, asking for
    /// another when there is none or it was spent (another test may have raced for it).
    pub async fn verify(&self, email: &str, access_token: &str) {
        for _ in 0..20 {
            let me: Value = self
                .get_auth("/auth/me", access_token)
                .await
                .json()
                .await
                .expect("json");
            if me["email_verified"] == true {
                return;
            }
            match emails_to(self, email).await.last() {
                Some(m) => {
                    let token = link_token(self, m, "/verify-email");
                    let r = self
                        .post_json("/auth/verify-email", &json!({ "token": token }))
                        .await;
                    if r.status() == StatusCode::OK {
                        return;
                    }
                }
                None => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
            let r = self
                .req(Method::POST, "/auth/verify-email/resend")
                .bearer_auth(access_token)
                .send()
                .await
                .expect("request");
            if r.status() == StatusCode::CONFLICT {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("could not verify {email}");
    }

    /// Signs in as the run's admin ([`ADMIN_EMAIL`]), registering it if no test has yet.
    pub async fn admin(&self) -> TestUser {
        let r = self
            .post_json(
                "/auth/register",
                &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
            )
            .await;
        assert!(
            r.status() == StatusCode::CREATED || r.status() == StatusCode::CONFLICT,
            "register the admin: {}",
            r.status()
        );
        let r = self
            .req(Method::POST, "/auth/login")
            .header("CF-Connecting-IP", unique_ip())
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), StatusCode::OK, "admin login");
        let body: Value = r.json().await.expect("json");
        let admin = TestUser {
            email: ADMIN_EMAIL.to_owned(),
            password: ADMIN_PASSWORD.to_owned(),
            access_token: body["access_token"].as_str().expect("access").to_owned(),
            refresh_token: body["refresh_token"].as_str().expect("refresh").to_owned(),
        };
        // `ADMIN_EMAILS` takes effect only for a verified address.
        self.verify(ADMIN_EMAIL, &admin.access_token).await;
        // Every test shares the account: a free tier's 20 requests a minute would not do.
        let me: Value = self
            .get_auth("/auth/me", &admin.access_token)
            .await
            .json()
            .await
            .expect("json");
        if me["tier"] != "team" {
            self.checkout_completed(&admin, "team", 100, None).await;
        }
        admin
    }

    /// Gives `user` an active `tier` subscription through a signed `checkout.session.completed`
    /// as Stripe sends it, with the Stripe customer `customer` (`None`: a session without one).
    pub async fn subscribe_as_customer(&self, user: &TestUser, tier: &str, customer: Option<&str>) {
        self.checkout_completed(user, tier, 1, customer).await;
    }

    async fn checkout_completed(
        &self,
        user: &TestUser,
        tier: &str,
        seats: u32,
        customer: Option<&str>,
    ) {
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs(),
        )
        .expect("seconds fit");
        let id = user_id_of(user);
        let payload = json!({
            "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
            "object": "event", "type": "checkout.session.completed", "created": now,
            "data": {"object": {
                "object": "checkout.session", "mode": "subscription", "client_reference_id": id,
                "customer": customer,
                "subscription": format!("sub_{}", uuid::Uuid::new_v4().simple()),
                "metadata": {"tier": tier, "user_id": id, "seats": seats.to_string()}}}})
        .to_string();
        let r = self
            .req(Method::POST, "/billing/webhook")
            .header("Content-Type", "application/json")
            .header(
                "Stripe-Signature",
                stripe_signature(&payload, now, STRIPE_WEBHOOK_SECRET),
            )
            .body(payload)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), StatusCode::OK, "checkout completion for {tier}");
    }
}

/// Asserts the response is the JSON error envelope with `status` and `code`; returns the body.
/// Sends `method path` as `user`, with `body` as JSON when given.
pub async fn send_as(
    app: &TestApp,
    user: &TestUser,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Response {
    let mut req = app.req(method, path).bearer_auth(&user.access_token);
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send().await.expect("request")
}

/// Asserts a 200 (naming `what` and the body otherwise) and returns its JSON.
pub async fn ok_json(r: Response, what: &str) -> Value {
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{what}: {body}");
    serde_json::from_str(&body).unwrap()
}

pub async fn assert_error(r: Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "status");
    let request_id = r
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("X-Request-Id on an error");
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    let body: Value = r.json().await.expect("error body is JSON");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert_eq!(body["error"]["request_id"], request_id.as_str(), "{body}");
    body
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// `n` bytes unique to this call.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        out.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    out.truncate(n);
    out
}

/// A marker unique to one test, to scope scripted upstream answers to its requests.
pub fn marker() -> String {
    format!("m{}", uuid::Uuid::new_v4().simple())
}

/// An OpenAI chat completion whose choice is `message`.
pub fn completion(message: &Value) -> Value {
    serde_json::json!({
        "id": "chatcmpl-e2e", "object": "chat.completion", "created": 1_795_000_000,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
    })
}

/// A scripted model answer with plain text.
pub fn text(content: &str) -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(200).set_body_json(completion(
        &serde_json::json!({"role": "assistant", "content": content}),
    ))
}

/// A scripted model answer calling the tool `name` with `args`.
pub fn tool_call(name: &str, args: &Value) -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(200).set_body_json(completion(&serde_json::json!({
        "role": "assistant", "content": null,
        "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": name, "arguments": args.to_string()}}]
    })))
}

/// Scripts the model for requests carrying `marker`: the classifier answers `intent`; an
/// agent's first call gets `first`; a call that carries a tool result gets `after_tool`.
pub async fn script(
    app: &TestApp,
    marker: &str,
    intent: &str,
    first: wiremock::ResponseTemplate,
    after_tool: Option<wiremock::ResponseTemplate>,
) {
    use wiremock::matchers::{body_string_contains, method, path};
    use wiremock::Mock;
    let server = &app.stack.openai;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains(marker))
        .and(body_string_contains("intent classifier"))
        .respond_with(text(intent))
        .with_priority(1)
        .mount(server)
        .await;
    if let Some(after) = after_tool {
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(body_string_contains(marker))
            .and(body_string_contains(r#""role":"tool""#))
            .respond_with(after)
            .with_priority(2)
            .mount(server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains(marker))
        .respond_with(first)
        .with_priority(3)
        .mount(server)
        .await;
}

/// Whether any file of the worker's local state (D1, R2, Durable Objects) contains `needle`.
pub fn state_contains(app: &TestApp, needle: &[u8]) -> bool {
    fn walk(dir: &std::path::Path, needle: &[u8]) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        entries.flatten().any(|e| {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(&p, needle),
                Ok(t) if t.is_file() => std::fs::read(&p)
                    .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle)),
                _ => false,
            }
        })
    }
    walk(&app.stack.persist_dir, needle)
}
