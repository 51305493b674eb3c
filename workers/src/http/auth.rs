//! Authentication of protected routes: `Authorization: Bearer <access token>`, or for the
//! WebSocket route a single-use `?ticket=` from `POST /auth/ws-ticket`.

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
    principal(&ctx.env, verify_bearer(ctx)?).await
}

/// As [`authenticate`]; without an `Authorization` header, redeems the `ticket` query
/// parameter instead (once: a used, unknown or expired ticket is 401).
pub async fn authenticate_bearer_or_ticket(ctx: &Ctx) -> Result<Principal, AppError> {
    if ctx.header("Authorization").is_some() {
        return authenticate(ctx).await;
    }
    let url = ctx.req.url().map_err(|_| AppError::Unauthorized)?;
    let ticket = url
        .query_pairs()
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v.into_owned())
        .ok_or(AppError::Unauthorized)?;
    let deps = crate::services::AuthDeps::new(ctx)?;
    let user_id = deps.service().redeem_ticket(&ticket).await?;
    principal(&ctx.env, user_id).await
}

/// `user_id` with the tier in force now, read from D1.
///
/// # Errors
/// 401 when the account no longer exists; platform failures.
pub async fn principal(env: &worker::Env, user_id: UserId) -> Result<Principal, AppError> {
    let db = env
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
