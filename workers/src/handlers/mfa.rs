//! `/api/v1/auth/2fa/*` and `/api/v1/auth/login/mfa`: TOTP two-factor authentication.

use shared::api::{DisableMfaRequest, EnableMfaRequest, MfaLoginRequest};
use shared::AppResult;
use worker::Response;

use crate::http::{json, Ctx};

/// `POST /auth/login/mfa` → `AuthTokens`: the second step of a two-factor login.
pub async fn login(mut ctx: Ctx) -> AppResult<Response> {
    let (token, factor) = ctx
        .json_body::<MfaLoginRequest>()
        .await?
        .try_into_domain()?;
    let meta = ctx.client_meta()?;
    let mfa = ctx.app.mfa()?;
    json(200, &mfa.service().login(&token, &factor, meta).await?)
}

/// `POST /auth/2fa/setup` → `{secret, otpauth_uri}` (pending until enabled).
pub async fn setup(ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    json(200, &ctx.app.mfa()?.service().setup(user).await?)
}

/// `POST /auth/2fa/enable` → `{recovery_codes}`, shown once.
pub async fn enable(mut ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    let body: EnableMfaRequest = ctx.json_body().await?;
    let meta = ctx.client_meta()?;
    let mfa = ctx.app.mfa()?;
    json(200, &mfa.service().enable(user, body.code()?, &meta).await?)
}

/// `POST /auth/2fa/disable` → `{ok}`.
pub async fn disable(mut ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    let (password, code) = ctx
        .json_body::<DisableMfaRequest>()
        .await?
        .try_into_domain()?;
    let meta = ctx.client_meta()?;
    let mfa = ctx.app.mfa()?;
    mfa.service().disable(user, &password, &code, &meta).await?;
    json(200, &shared::api::Ok::YES)
}
