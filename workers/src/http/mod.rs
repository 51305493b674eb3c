//! The request pipeline, in order: request id → configuration → CORS → route → authenticate →
//! handler → error mapping → response headers → access log. Every response, error or not,
//! passes through [`serve`], so every one carries `X-Request-Id` and, for allowed origins, the
//! CORS headers.

mod auth;
mod ctx;
mod error;
mod limit;
mod router;

pub use auth::{access_tokens, principal, Principal};
pub use ctx::{json, Ctx};
pub use error::error_response;
pub use limit::admit;

use shared::cors;
use shared::AppError;
use tracing::Instrument;
use worker::{Env, Request, Response};

use crate::state;

/// Serves one request. Never fails: every error becomes a JSON response.
pub async fn serve(req: Request, env: Env) -> Response {
    let started = js_sys::Date::now();
    let request_id = request_id(&req);
    // The raw name: `worker::Method` reports unknown methods as GET.
    let method = req.inner().method();
    let path = req.path();
    let origin = req.headers().get("Origin").ok().flatten();
    let shared = state::shared(&env);
    let origin_allowed = match (&shared, &origin) {
        (Ok(s), Some(o)) => s.cors.allows(o),
        _ => false,
    };
    let span = tracing::info_span!("request", request_id = %request_id);

    let result = async {
        let shared = shared.map_err(|e| AppError::Internal(anyhow::Error::new(e)))?;
        if origin.is_some() && !origin_allowed {
            return Err(AppError::Forbidden("origin not allowed"));
        }
        if method == "OPTIONS" && origin.is_some() {
            return preflight();
        }
        router::dispatch(Ctx::new(req, env, shared, request_id.clone())).await
    }
    .instrument(span.clone())
    .await;
    let mut resp = result.unwrap_or_else(|e| {
        let _entered = span.enter();
        error_response(&e, &request_id)
    });

    let headers = resp.headers_mut();
    let _ = headers.set("X-Request-Id", &request_id);
    let _ = headers.set("X-Content-Type-Options", "nosniff");
    if !headers.has("Cache-Control").unwrap_or(false) {
        let _ = headers.set("Cache-Control", "no-store");
    }
    if let (true, Some(origin)) = (origin_allowed, origin.as_deref()) {
        let _ = headers.set("Access-Control-Allow-Origin", origin);
        let _ = headers.set("Access-Control-Expose-Headers", cors::EXPOSE_HEADERS);
    }
    // Answers differ by origin, so caches must key on it.
    let _ = headers.append("Vary", "Origin");

    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let duration_ms = (js_sys::Date::now() - started).max(0.0) as u64;
    let _entered = span.enter();
    tracing::info!(
        method = %method,
        path = %path,
        status = resp.status_code(),
        duration_ms,
        wasm_memory_bytes = wasm_memory_bytes(),
        "request"
    );
    resp
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

/// A CORS preflight from an allowed origin.
fn preflight() -> Result<Response, AppError> {
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
fn request_id(req: &Request) -> String {
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
