//! Authentication of protected routes: `Authorization: Bearer <access token>`.

use shared::auth::tokens::AccessTokens;
use shared::domain::{Tier, UserId};
use shared::ports::Clock;
use shared::tiers::TierManager;
use shared::AppError;

use super::Ctx;
use crate::adapters::{D1TierStore, SystemClock};
use crate::state::DB;

/// The authenticated caller, with the tier in force read from D1 (never from the token).
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user.
    pub user_id: UserId,
    /// The tier in force now.
    pub tier: Tier,
    /// Seats (team; 1 otherwise).
    pub seats: u32,
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

/// Verifies the bearer token of `ctx` and loads the caller's tier from D1.
///
/// # Errors
/// 401 `unauthorized` (with `WWW-Authenticate: Bearer`) for a missing or invalid token, or a
/// token whose account no longer exists.
pub async fn authenticate(ctx: &Ctx) -> Result<Principal, AppError> {
    let user_id = verify_bearer(ctx)?;
    let db = ctx
        .env
        .d1(DB)
        .map_err(|e| AppError::internal(format!("binding {DB}: {e}")))?;
    let (tier, seats) = TierManager {
        store: &D1TierStore(db),
    }
    .get_tier(user_id, SystemClock.now_ms())
    .await?;
    Ok(Principal {
        user_id,
        tier,
        seats,
    })
}

/// The user id of a valid bearer token.
fn verify_bearer(ctx: &Ctx) -> Result<UserId, AppError> {
    let header = ctx.header("Authorization").ok_or(AppError::Unauthorized)?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or(AppError::Unauthorized)?
        .trim();
    Ok(access_tokens(ctx)
        .verify(token, SystemClock.now_ms())?
        .user_id)
}
