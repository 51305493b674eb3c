//! Team single sign-on: `PUT`/`GET`/`DELETE /teams/{id}/sso`, `GET /auth/sso/start`,
//! `GET /auth/sso/callback`, `POST /auth/sso/redeem` (see [`shared::teams::sso`]).

use shared::api::{SetSsoRequest, SsoRedeemRequest, SsoStarted, SsoView};
use shared::domain::Email;
use shared::error::{AppError, FieldError};
use shared::teams::sso::SsoSettings;
use shared::AppResult;
use worker::Response;

use crate::http::{json, Ctx};

/// `PUT /teams/{id}/sso` → the configuration (never the secret).
pub async fn configure(mut ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    let body: SetSsoRequest = ctx.json_body().await?;
    let settings = SsoSettings::parse(
        &body.issuer,
        &body.client_id,
        &body.client_secret,
        &body.domains,
        body.required,
        ctx.app.config().env == shared::config::Environment::Dev,
    )?;
    let meta = ctx.client_meta()?;
    let parts = ctx.app.sso(ctx.base_url()?)?;
    let saved = parts
        .service()
        .configure(user, ctx.param("id"), settings, &meta)
        .await?;
    json(200, &view_of(saved))
}

fn view_of(config: shared::teams::sso::SsoConfig) -> SsoView {
    SsoView {
        team_id: config.team_id.to_string(),
        issuer: config.issuer,
        client_id: config.client_id,
        domains: config.domains,
        required: config.required,
    }
}

/// `GET /teams/{id}/sso` → the configuration (never the secret).
pub async fn show(ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    let parts = ctx.app.sso(ctx.base_url()?)?;
    let config = parts.service().view(user, ctx.param("id")).await?;
    json(200, &view_of(config))
}

/// `DELETE /teams/{id}/sso` → `{ok: true}`; the domains are released.
pub async fn remove(ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    let meta = ctx.client_meta()?;
    let parts = ctx.app.sso(ctx.base_url()?)?;
    parts.service().remove(user, ctx.param("id"), &meta).await?;
    json(200, &shared::api::Ok::YES)
}

/// `GET /auth/sso/start?email=…` → `{authorization_url}`.
pub async fn start(ctx: Ctx) -> AppResult<Response> {
    let query = ctx.query()?;
    let raw = query
        .iter()
        .find(|(k, _)| k == "email")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| AppError::Validation(vec![FieldError::new("email", "is required")]))?;
    let email = Email::parse(raw).map_err(|f| AppError::Validation(vec![f]))?;
    let parts = ctx.app.sso(ctx.base_url()?)?;
    let ip = ctx.client_ip();
    let authorization_url = parts.service().start(&email, ip.as_deref()).await?;
    json(200, &SsoStarted { authorization_url })
}

/// `GET /auth/sso/callback?code&state` → 302 to the app, with a one-time code or an error.
pub async fn callback(ctx: Ctx) -> AppResult<Response> {
    let query = ctx.query()?;
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let parts = ctx.app.sso(ctx.base_url()?)?;
    let location = parts
        .service()
        .callback(param("code"), param("state"), param("error"))
        .await;
    let headers = worker::Headers::new();
    headers
        .set("Location", &location)
        .map_err(AppError::internal)?;
    headers
        .set("Cache-Control", "no-store")
        .map_err(AppError::internal)?;
    Ok(Response::empty()
        .map_err(AppError::internal)?
        .with_status(302)
        .with_headers(headers))
}

/// `POST /auth/sso/redeem {code}` → `AuthTokens`.
pub async fn redeem(mut ctx: Ctx) -> AppResult<Response> {
    let body: SsoRedeemRequest = ctx.json_body().await?;
    if body.code.is_empty() || body.code.len() > 128 {
        return Err(AppError::Validation(vec![FieldError::new(
            "code",
            "must be 1 to 128 characters",
        )]));
    }
    let meta = ctx.client_meta()?;
    let parts = ctx.app.sso(ctx.base_url()?)?;
    let tokens = parts.service().redeem(&body.code, meta).await?;
    json(200, &tokens)
}
