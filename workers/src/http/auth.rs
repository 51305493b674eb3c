//! Authentication of protected routes: `Authorization: Bearer <access token>`.

use shared::auth::tokens::AccessTokens;
use shared::domain::UserId;
use shared::ports::Clock;
use shared::AppError;

use super::Ctx;
use crate::adapters::SystemClock;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user.
    pub user_id: UserId,
}

/// The access-token signer of this deployment.
pub fn access_tokens(ctx: &Ctx) -> AccessTokens {
    use secrecy::ExposeSecret;
    let cfg = &ctx.shared.config;
    AccessTokens::new(
        cfg.jwt_secret.expose_secret().as_bytes(),
        cfg.access_token_ttl_secs,
    )
}

/// Verifies the bearer token of `ctx`.
///
/// # Errors
/// 401 `unauthorized` (with `WWW-Authenticate: Bearer`) for a missing or invalid token.
pub fn authenticate(ctx: &Ctx) -> Result<Principal, AppError> {
    let header = ctx.header("Authorization").ok_or(AppError::Unauthorized)?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or(AppError::Unauthorized)?
        .trim();
    let verified = access_tokens(ctx).verify(token, SystemClock.now_ms())?;
    Ok(Principal {
        user_id: verified.user_id,
    })
}
