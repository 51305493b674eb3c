//! Per-user request limits: one `RateLimiter` Durable Object per user, GCRA, the limit from the
//! tier in force (free 20, pro 60, power 120, team 200 × seats per minute).
//!
//! The counter's bucket is named after the limit (`requests:<limit>`), so a tier change takes
//! effect at once with the new tier's full allowance; the old bucket drains and is deleted by
//! the object's alarm.

use shared::ports::RateLimiter;
use shared::rate_limit::{RateDecision, RateOp, RateRule};
use shared::tiers::rate_limit;
use shared::AppError;
use worker::{Env, Response};

use super::Principal;
use crate::adapters::DurableRateLimiter;
use crate::state::RATE_LIMITER;

/// Takes one request from the caller's allowance.
///
/// # Errors
/// Platform failures only (a refused request is a decision, not an error).
pub async fn admit(env: &Env, who: &Principal) -> Result<RateDecision, AppError> {
    let limit = rate_limit(who.tier, who.seats);
    let ns = env
        .durable_object(RATE_LIMITER)
        .map_err(|e| AppError::internal(format!("binding {RATE_LIMITER}: {e}")))?;
    let key = format!("user:{}#requests:{limit}", who.user_id);
    let decision = DurableRateLimiter(ns)
        .check(&key, RateRule::per_minute(limit), RateOp::Acquire)
        .await?;
    if !decision.allowed {
        tracing::info!(user_id = %who.user_id, limit, "request rate limited");
    }
    Ok(decision)
}

/// `X-RateLimit-Limit` and `X-RateLimit-Remaining`.
pub fn set_headers(resp: &mut Response, d: &RateDecision) {
    let headers = resp.headers_mut();
    let _ = headers.set("X-RateLimit-Limit", &d.limit.to_string());
    let _ = headers.set("X-RateLimit-Remaining", &d.remaining.to_string());
}
