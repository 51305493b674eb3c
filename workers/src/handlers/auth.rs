//! `/api/v1/auth/*`.

use shared::api::{LoggedOutAll, LoginRequest, RefreshRequest, RegisterRequest};
use shared::AppResult;
use worker::Response;

use crate::http::{json, Ctx};
use crate::services::AuthDeps;

/// `POST /auth/register` → 201 `AuthTokens`.
pub async fn register(mut ctx: Ctx) -> AppResult<Response> {
    let (email, password) = ctx
        .json_body::<RegisterRequest>()
        .await?
        .try_into_domain()?;
    let deps = AuthDeps::new(&ctx)?;
    let ip = ctx.client_ip();
    let tokens = deps
        .service()
        .register(email, &password, ip.as_deref())
        .await?;
    json(201, &tokens)
}

/// `POST /auth/login` → `AuthTokens`.
pub async fn login(mut ctx: Ctx) -> AppResult<Response> {
    let (email, password) = ctx.json_body::<LoginRequest>().await?.try_into_login()?;
    let deps = AuthDeps::new(&ctx)?;
    let ip = ctx.client_ip();
    let tokens = deps
        .service()
        .login(&email, password.as_bytes(), ip.as_deref())
        .await?;
    json(200, &tokens)
}

/// `POST /auth/refresh` → `AuthTokens`.
pub async fn refresh(mut ctx: Ctx) -> AppResult<Response> {
    let body: RefreshRequest = ctx.json_body().await?;
    let deps = AuthDeps::new(&ctx)?;
    json(200, &deps.service().refresh(body.token()?).await?)
}

/// `POST /auth/logout` (JWT; the caller's own sessions only) → `{ok: true}`.
pub async fn logout(mut ctx: Ctx) -> AppResult<Response> {
    let user = ctx.principal()?.user_id;
    let body: RefreshRequest = ctx.json_body().await?;
    AuthDeps::new(&ctx)?
        .service()
        .logout(user, body.token()?)
        .await?;
    json(200, &shared::api::Ok::YES)
}

/// `POST /auth/logout-all` → `{ok: true, revoked}`.
pub async fn logout_all(ctx: Ctx) -> AppResult<Response> {
    let user = ctx.principal()?.user_id;
    let revoked = AuthDeps::new(&ctx)?.service().logout_all(user).await?;
    json(200, &LoggedOutAll { ok: true, revoked })
}

/// `GET /auth/me` → `UserProfile`.
pub async fn me(ctx: Ctx) -> AppResult<Response> {
    let user = ctx.principal()?.user_id;
    json(200, &AuthDeps::new(&ctx)?.service().me(user).await?)
}

/// `POST /auth/ws-ticket` → `{ticket, expires_at}`.
pub async fn ws_ticket(ctx: Ctx) -> AppResult<Response> {
    let user = ctx.principal()?.user_id;
    json(200, &AuthDeps::new(&ctx)?.service().ws_ticket(user).await?)
}
