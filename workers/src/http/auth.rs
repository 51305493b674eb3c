//! Authentication of protected routes: `Authorization: Bearer <access token>`, or for the
//! WebSocket routes a single-use `?ticket=` from `POST /auth/ws-ticket`. JWT verification stays
//! in the worker (no hop); the caller's home then checks that the account exists and the
//! session is not revoked, with the request's first call.

use shared::ports::Clock;
use shared::AppError;

use super::{Caller, Ctx};
use crate::adapters::SystemClock;

/// The caller named by a valid bearer token.
///
/// # Errors
/// 401 `unauthorized` (with `WWW-Authenticate: Bearer`) for a missing or invalid token.
pub fn bearer(ctx: &Ctx) -> Result<Caller, AppError> {
    let header = ctx.header("Authorization").ok_or(AppError::Unauthorized)?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or(AppError::Unauthorized)?
        .trim();
    let verified = ctx
        .app
        .access_tokens()
        .verify(token, SystemClock.now_ms())?;
    Ok(Caller {
        user_id: verified.user_id,
        sid: verified.sid,
    })
}

/// As [`bearer`]; without an `Authorization` header, redeems the `ticket` query parameter
/// instead (once: a used, unknown or expired ticket is 401).
///
/// # Errors
/// 401 for anything but a valid token or an unused ticket.
pub async fn bearer_or_ticket(ctx: &Ctx) -> Result<Caller, AppError> {
    if ctx.header("Authorization").is_some() {
        return bearer(ctx);
    }
    let ticket = ctx
        .query()
        .map_err(|_| AppError::Unauthorized)?
        .into_iter()
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v)
        .ok_or(AppError::Unauthorized)?;
    let (user_id, sid) = ctx.app.auth()?.service().redeem_ticket(&ticket).await?;
    Ok(Caller { user_id, sid })
}
