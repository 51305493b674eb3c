//! HTTP plumbing for handlers and the pipeline: the request context ([`Ctx`]), JSON answers,
//! authentication of protected routes, the one place errors become responses, and the headers
//! and access log every response gets.

mod auth;
mod ctx;
mod error;

pub use auth::{bearer, bearer_or_ticket};
pub use ctx::{json, Caller, Ctx};
pub use error::error_response;

use shared::cors;
use shared::rate_limit::RateDecision;
use shared::AppError;
use worker::{Request, Response};

use crate::adapters::Hops;

/// A CORS preflight from an allowed origin.
///
/// # Errors
/// Internal only.
pub fn preflight() -> Result<Response, AppError> {
    let mut resp = Response::empty()
        .map_err(AppError::internal)?
        .with_status(204);
    let h = resp.headers_mut();
    let _ = h.set("Access-Control-Allow-Methods", cors::ALLOW_METHODS);
    let _ = h.set("Access-Control-Allow-Headers", cors::ALLOW_HEADERS);
    let _ = h.set("Access-Control-Max-Age", &cors::MAX_AGE_SECS.to_string());
    Ok(resp)
}

/// The client's `X-Request-Id` when it is a sane token, else a new UUID.
pub fn request_id(req: &Request) -> String {
    req.headers()
        .get("X-Request-Id")
        .ok()
        .flatten()
        .filter(|id| {
            (8..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .unwrap_or_else(|| shared::ports::new_uuid(&crate::adapters::CryptoRandom).to_string())
}

/// `X-RateLimit-Limit` and `X-RateLimit-Remaining`.
pub fn set_rate_headers(resp: &mut Response, d: &RateDecision) {
    let headers = resp.headers_mut();
    let _ = headers.set("X-RateLimit-Limit", &d.limit.to_string());
    let _ = headers.set("X-RateLimit-Remaining", &d.remaining.to_string());
}

/// The headers every response carries: the request id, no sniffing, no caching unless the
/// handler said otherwise, and CORS for an allowed `origin`.
pub fn finish(resp: &mut Response, request_id: &str, origin: Option<&str>) {
    let headers = resp.headers_mut();
    let _ = headers.set("X-Request-Id", request_id);
    let _ = headers.set("X-Content-Type-Options", "nosniff");
    if !headers.has("Cache-Control").unwrap_or(false) {
        let _ = headers.set("Cache-Control", "no-store");
    }
    if let Some(origin) = origin {
        let _ = headers.set("Access-Control-Allow-Origin", origin);
        let _ = headers.set("Access-Control-Expose-Headers", cors::EXPOSE_HEADERS);
    }
    // Answers differ by origin, so caches must key on it.
    let _ = headers.append("Vary", "Origin");
}

/// One access-log line: the request, its outcome, its cost in hops, and the isolate's memory.
pub fn access_log(method: &str, path: &str, status: u16, started: f64, hops: &Hops) {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let duration_ms = (js_sys::Date::now() - started).max(0.0) as u64;
    tracing::info!(
        method = %method,
        path = %path,
        status,
        duration_ms,
        do_calls = hops.do_calls(),
        d1_calls = hops.d1_calls(),
        wasm_memory_bytes = wasm_memory_bytes(),
        "request"
    );
}

/// The isolate's wasm linear memory in bytes. It only ever grows, so it is the high-water mark
/// of the Rust heap since the isolate started: a handler that buffered a body would show it here.
fn wasm_memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        (core::arch::wasm32::memory_size(0) as u64) * 65_536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}
