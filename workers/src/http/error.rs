//! The one place where an [`AppError`] becomes an HTTP response.

use shared::AppError;
use worker::Response;

/// The JSON error response for `e`. Server errors are logged with their full chain here.
pub fn error_response(e: &AppError, request_id: &str) -> Response {
    if e.is_server_error() {
        tracing::error!(code = e.code(), error = ?e, "request failed");
    } else if let AppError::RequestAborted(detail) = e {
        tracing::warn!(code = e.code(), detail, "client went away mid-request");
    } else {
        tracing::info!(code = e.code(), "request rejected");
    }
    let mut resp = match Response::from_json(&e.body(request_id)) {
        Ok(r) => r.with_status(e.status()),
        // Serialising a fixed struct cannot fail; answer a bare 500 if it ever does.
        Err(_) => Response::empty()
            .expect("an empty response is always valid")
            .with_status(500),
    };
    let headers = resp.headers_mut();
    for (name, value) in e.headers() {
        let _ = headers.set(name, &value);
    }
    resp
}
