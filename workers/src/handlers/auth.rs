//! `/api/v1/auth/*`.

use shared::api::{LoggedOutAll, LoginRequest, RefreshRequest, RegisterRequest};
use shared::home::ops::GetProfile;
use shared::AppResult;
use worker::Response;

use crate::http::{json, Ctx};

/// `POST /auth/register` → 201 `AuthTokens`; mails the verification link.
pub async fn register(mut ctx: Ctx) -> AppResult<Response> {
    let (email, password) = ctx
        .json_body::<RegisterRequest>()
        .await?
        .try_into_domain()?;
    let (ip, device) = (ctx.client_ip(), ctx.device()?);
    let (user, tokens) = ctx
        .app
        .auth()?
        .service()
        .register(email, &password, ip.as_deref(), device)
        .await?;
    let accounts = ctx.app.accounts(ctx.base_url()?)?;
    accounts
        .service()
        .after_register(user.id, &user.email)
        .await;
    json(201, &tokens)
}

/// `POST /auth/login` → `AuthTokens`.
pub async fn login(mut ctx: Ctx) -> AppResult<Response> {
    let (email, password) = ctx.json_body::<LoginRequest>().await?.try_into_login()?;
    let (ip, device) = (ctx.client_ip(), ctx.device()?);
    // A domain whose team requires SSO signs in there (decided by the domain, so it tells
    // nothing about whether the account exists).
    if ctx.app.password_login_refused(&email).await? {
        return Err(shared::AppError::SsoRequired);
    }
    let tokens = ctx
        .app
        .auth()?
        .service()
        .login(&email, password.as_bytes(), ip.as_deref(), device)
        .await?;
    json(200, &tokens)
}

/// `POST /auth/refresh` → `AuthTokens`.
pub async fn refresh(mut ctx: Ctx) -> AppResult<Response> {
    let body: RefreshRequest = ctx.json_body().await?;
    json(
        200,
        &ctx.app.auth()?.service().refresh(body.token()?).await?,
    )
}

/// `POST /auth/logout` (JWT; the caller's own sessions only) → `{ok: true}`. The session's
/// tokens stop working and its sockets close at once.
pub async fn logout(mut ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    let body: RefreshRequest = ctx.json_body().await?;
    let ended = ctx
        .app
        .auth()?
        .service()
        .logout(user, body.token()?)
        .await?;
    ctx.app
        .revoke_sessions(user, ended.into_iter().collect())
        .await?;
    json(200, &shared::api::Ok::YES)
}

/// `POST /auth/logout-all` → `{ok: true, revoked}`. Every session's tokens stop working and
/// every socket closes at once.
pub async fn logout_all(ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    let ended = ctx.app.auth()?.service().logout_all(user).await?;
    let revoked = ended.len() as u64;
    ctx.app.revoke_sessions(user, ended).await?;
    json(200, &LoggedOutAll { ok: true, revoked })
}

/// `GET /auth/me` → `UserProfile`, from the caller's home (one hop, no D1).
pub async fn me(ctx: Ctx) -> AppResult<Response> {
    json(
        200,
        &shared::home::call(&ctx.home()?, &GetProfile {}).await?,
    )
}

/// `POST /auth/ws-ticket` → `{ticket, expires_at}`, bound to the caller's session.
pub async fn ws_ticket(ctx: Ctx) -> AppResult<Response> {
    let c = ctx.caller()?;
    json(
        200,
        &ctx.app
            .auth()?
            .service()
            .ws_ticket(c.user_id, c.sid)
            .await?,
    )
}
