//! Wiring: the core's services over this request's adapters.

use shared::auth::tokens::AccessTokens;
use shared::auth::{AuthService, AuthSettings};
use shared::AppError;

use crate::adapters::{
    CryptoRandom, D1RefreshTokenStore, D1TicketStore, D1UserStore, DurableRateLimiter, SystemClock,
};
use crate::http::{access_tokens, Ctx};
use crate::state::{DB, RATE_LIMITER};

/// Everything the auth service borrows.
pub struct AuthDeps {
    users: D1UserStore,
    refresh_tokens: D1RefreshTokenStore,
    tickets: D1TicketStore,
    limiter: DurableRateLimiter,
    tokens: AccessTokens,
    settings: AuthSettings,
}

fn binding<T>(r: worker::Result<T>, name: &str) -> Result<T, AppError> {
    r.map_err(|e| AppError::internal(format!("binding {name}: {e}")))
}

impl AuthDeps {
    /// The adapters for `ctx`'s environment.
    pub fn new(ctx: &Ctx) -> Result<Self, AppError> {
        let cfg = &ctx.shared.config;
        let refresh_ttl_ms = i64::try_from(cfg.refresh_token_ttl_secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        Ok(Self {
            users: D1UserStore(binding(ctx.env.d1(DB), DB)?),
            refresh_tokens: D1RefreshTokenStore(binding(ctx.env.d1(DB), DB)?),
            tickets: D1TicketStore(binding(ctx.env.d1(DB), DB)?),
            limiter: DurableRateLimiter(binding(
                ctx.env.durable_object(RATE_LIMITER),
                RATE_LIMITER,
            )?),
            tokens: access_tokens(ctx),
            settings: AuthSettings {
                refresh_ttl_ms,
                admin_emails: cfg.admin_emails.clone(),
            },
        })
    }

    /// The service.
    pub fn service(&self) -> AuthService<'_> {
        AuthService {
            users: &self.users,
            refresh_tokens: &self.refresh_tokens,
            tickets: &self.tickets,
            limiter: &self.limiter,
            clock: &SystemClock,
            rng: &CryptoRandom,
            tokens: &self.tokens,
            settings: &self.settings,
        }
    }
}
