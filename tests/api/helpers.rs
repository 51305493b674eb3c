//! What every test uses: a client for the running worker, unique users, assertions on the
//! error envelope.

use std::sync::Arc;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

use crate::harness::Stack;

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

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.req(Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("request")
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

/// Asserts the response is the JSON error envelope with `status` and `code`; returns the body.
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
