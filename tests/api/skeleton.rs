//! The HTTP skeleton: health, the error envelope, request ids, body limits, CORS, logs.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp};

pub async fn health_reports_ok_and_the_version(app: TestApp) {
    let r = app.req(Method::GET, "/health").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})
    );
}

pub async fn every_response_carries_a_request_id_and_a_sane_one_is_echoed(app: TestApp) {
    for (method, path) in [
        (Method::GET, "/health"),
        (Method::GET, "/nope"),
        (Method::PATCH, "/health"),
    ] {
        let r = app.req(method, path).send().await.unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(uuid::Uuid::try_parse(&id).is_ok(), "{path}: {id}");
    }
    let mine = format!("client-{}", uuid::Uuid::new_v4().simple());
    let r = app
        .req(Method::GET, "/health")
        .header("X-Request-Id", &mine)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], mine.as_str());
    // An id that could inject into logs is replaced.
    let r = app
        .req(Method::GET, "/health")
        .header("X-Request-Id", "bad id\"}")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "bad id\"}");
}

pub async fn unknown_routes_are_a_json_404_envelope(app: TestApp) {
    for path in ["/nope", "/auth", "/health/extra"] {
        let r = app.req(Method::GET, path).send().await.unwrap();
        assert_error(r, 404, "not_found").await;
    }
    let r = app
        .client
        .get(format!("{}/elsewhere", app.base))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "not_found").await;
}

pub async fn a_wrong_method_is_a_json_405_with_allow(app: TestApp) {
    let r = app.req(Method::DELETE, "/health").send().await.unwrap();
    assert_eq!(r.headers()["allow"], "GET");
    let body = assert_error(r, 405, "method_not_allowed").await;
    assert_eq!(body["error"]["details"]["allowed"], json!(["GET"]));
    let r = app.req(Method::GET, "/auth/login").send().await.unwrap();
    assert_eq!(r.headers()["allow"], "POST");
    assert_error(r, 405, "method_not_allowed").await;
}

pub async fn malformed_json_is_a_400_envelope(app: TestApp) {
    for body in [
        "{",
        "{\"email\": ",
        "not json",
        "",
        "{\"email\":\"a@b.co\",\"password\":\"x\"} trailing",
    ] {
        let r = app
            .req(Method::POST, "/auth/login")
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(r, 400, "malformed_json").await;
    }
}

pub async fn json_of_the_wrong_shape_is_a_422_naming_the_field(app: TestApp) {
    let r = app
        .post_json(
            "/auth/register",
            &json!({"email": 42, "password": "long enough"}),
        )
        .await;
    let body = assert_error(r, 422, "validation_failed").await;
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "email");
    let r = app
        .post_json("/auth/register", &json!({"email": "a@b.co"}))
        .await;
    assert_error(r, 422, "validation_failed").await;
    let r = app.post_json("/auth/register", &json!([1, 2])).await;
    assert_error(r, 422, "validation_failed").await;
}

pub async fn a_wrong_content_type_is_a_415_envelope(app: TestApp) {
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut req = app
            .req(Method::POST, "/auth/login")
            .body(r#"{"email":"a@b.co","password":"xxxxxxxx"}"#);
        if let Some(ct) = ct {
            req = req.header("Content-Type", ct);
        }
        let body = assert_error(req.send().await.unwrap(), 415, "unsupported_media_type").await;
        assert_eq!(body["error"]["details"]["expected"], "application/json");
    }
}

pub async fn an_oversized_body_is_a_413_envelope(app: TestApp) {
    let big = format!(
        r#"{{"email":"a@b.co","password":"{}"}}"#,
        "x".repeat(1024 * 1024 + 1)
    );
    let r = app
        .req(Method::POST, "/auth/login")
        .header("Content-Type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_error(r, 413, "payload_too_large").await;
    // Without a declared length (chunked), the limit still holds.
    let stream = futures_stream(big.as_bytes());
    let r = app
        .req(Method::POST, "/auth/login")
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_error(r, 413, "payload_too_large").await;
}

fn futures_stream(
    bytes: &[u8],
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    tokio_stream::iter(chunks)
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.req(Method::OPTIONS, "/auth/login")
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type, authorization",
        )
        .send()
        .await
        .unwrap()
}

pub async fn cors_preflight_is_allowed_for_the_app_and_localhost_origins(app: TestApp) {
    for origin in ["app://adiuva", "http://localhost:5173", "http://localhost"] {
        let r = preflight(&app, origin).await;
        assert_eq!(r.status(), 204, "{origin}");
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], origin);
        let methods = h["access-control-allow-methods"].to_str().unwrap();
        assert!(
            methods.contains("POST") && methods.contains("DELETE"),
            "{methods}"
        );
        let headers = h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_lowercase();
        assert!(headers.contains("authorization") && headers.contains("content-type"));
        assert!(h.contains_key("x-request-id"));
        // The actual request from that origin gets the header too, and may read ours.
        let r = app
            .req(Method::GET, "/health")
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["access-control-allow-origin"], origin);
        let exposed = r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap();
        assert!(exposed.contains("X-Request-Id"), "{exposed}");
    }
}

pub async fn a_browser_may_send_the_backup_headers_and_read_the_ones_we_answer_with(app: TestApp) {
    let r = app
        .req(Method::OPTIONS, "/backup/uploads/u1/parts/1")
        .header("Origin", "app://adiuva")
        .header("Access-Control-Request-Method", "PUT")
        .header(
            "Access-Control-Request-Headers",
            "authorization, x-part-checksum, x-backup-prune, x-device-name",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let allowed = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for h in ["x-part-checksum", "x-backup-prune", "x-device-name"] {
        assert!(allowed.contains(h), "{h} missing from {allowed}");
    }
    let r = app
        .req(Method::GET, "/health")
        .header("Origin", "app://adiuva")
        .send()
        .await
        .unwrap();
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_string();
    for h in [
        "X-Backup-Id",
        "X-Backup-Version",
        "X-Backup-Timestamp",
        "X-Backup-Checksum",
    ] {
        assert!(exposed.contains(h), "{h} missing from {exposed}");
    }
}

pub async fn cors_is_refused_for_other_origins(app: TestApp) {
    for origin in [
        "https://evil.example",
        "http://localhost.evil.example",
        "https://localhost:5173",
        "null",
        "app://",
    ] {
        let r = preflight(&app, origin).await;
        assert!(
            !r.headers().contains_key("access-control-allow-origin"),
            "{origin}"
        );
        assert_error(r, 403, "forbidden").await;
        let r = app
            .req(Method::GET, "/health")
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        assert!(
            !r.headers().contains_key("access-control-allow-origin"),
            "{origin}"
        );
        assert_error(r, 403, "forbidden").await;
    }
}

pub async fn cors_allows_configured_extra_origins(app: TestApp) {
    let r = preflight(&app, "https://web.e2e.example").await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://web.e2e.example"
    );
}

pub async fn access_logs_are_json_lines_with_the_request_id(app: TestApp) {
    let id = format!("logcheck-{}", uuid::Uuid::new_v4().simple());
    let r = app
        .req(Method::GET, "/health")
        .header("X-Request-Id", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The log is written asynchronously; give it a moment.
    let mut line = None;
    for _ in 0..40 {
        line = app
            .stack
            .log()
            .lines()
            .find(|l| l.contains(&id) && l.contains("\"message\":\"request\""))
            .map(str::to_owned);
        if line.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let line = line.expect("an access log line with the request id");
    let start = line.find('{').unwrap();
    let entry: Value = serde_json::from_str(&line[start..]).expect("one JSON object per line");
    assert_eq!(entry["span"]["request_id"], id.as_str());
    assert_eq!(entry["method"], "GET");
    assert_eq!(entry["path"], "/api/v1/health");
    assert_eq!(entry["status"], 200);
    assert!(entry["duration_ms"].is_u64(), "{entry}");
    assert!(entry["timestamp"].is_string(), "{entry}");
}

pub async fn no_benchmark_or_test_route_is_served(app: TestApp) {
    // CPU benchmarks run in their own worker (bench-worker/); the API has none of them.
    for path in ["/_bench/jwt?n=3", "/_bench/noop", "/_test/reset", "/debug"] {
        let r = app.req(Method::GET, path).send().await.unwrap();
        assert_error(r, 404, "not_found").await;
    }
}

pub async fn unknown_http_methods_are_405_not_treated_as_get(app: TestApp) {
    // (Lower-case `get` is normalised to GET by the Fetch spec, so it is not listed.)
    for name in ["QUERY", "PROPFIND", "PATCH"] {
        let method = Method::from_bytes(name.as_bytes()).unwrap();
        let r = app.req(method, "/health").send().await.unwrap();
        assert_eq!(r.headers()["allow"], "GET", "{name}");
        assert_error(r, 405, "method_not_allowed").await;
    }
}
