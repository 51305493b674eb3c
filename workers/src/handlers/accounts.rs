//! `/api/v1/auth/*` of the account flows: verification, password reset and change, sessions,
//! the security log.

use shared::api::{
    ChangePasswordRequest, DeleteAccountRequest, DeletionAccepted, ForgotPasswordRequest,
    PasswordChanged, ResetPasswordRequest, SecurityEvents, VerifyEmailRequest,
};
use shared::AppResult;
use worker::Response;

use crate::http::{json, Ctx};

/// `POST /auth/verify-email` → `{ok}`; the account's home learns of it at once.
pub async fn verify_email(mut ctx: Ctx) -> AppResult<Response> {
    let body: VerifyEmailRequest = ctx.json_body().await?;
    let meta = ctx.client_meta()?;
    let accounts = ctx.app.accounts(ctx.base_url()?)?;
    let user = accounts
        .service()
        .verify_email(body.token()?, &meta)
        .await?;
    ctx.app.push_account(user).await;
    json(200, &shared::api::Ok::YES)
}

/// `POST /auth/verify-email/resend` → 202 `{ok}`.
pub async fn resend_verification(ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    let accounts = ctx.app.accounts(ctx.base_url()?)?;
    accounts.service().resend_verification(user).await?;
    json(202, &shared::api::Ok::YES)
}

/// `POST /auth/password/forgot` → 202 `{ok}`, alike for every address; the link is mailed
/// after the answer.
pub async fn forgot_password(mut ctx: Ctx) -> AppResult<Response> {
    let email = ctx
        .json_body::<ForgotPasswordRequest>()
        .await?
        .try_into_domain()?;
    let ip = ctx.client_ip();
    let accounts = ctx.app.accounts(ctx.base_url()?)?;
    let message = accounts
        .service()
        .forgot_password(&email, ip.as_deref())
        .await?;
    if let Some(message) = message {
        ctx.app.send_mail_later(message).await;
    }
    json(202, &shared::api::Ok::YES)
}

/// `POST /auth/password/reset` → `{ok}`; every session ends, sockets included.
pub async fn reset_password(mut ctx: Ctx) -> AppResult<Response> {
    let (token, password) = ctx
        .json_body::<ResetPasswordRequest>()
        .await?
        .try_into_domain()?;
    let meta = ctx.client_meta()?;
    let accounts = ctx.app.accounts(ctx.base_url()?)?;
    let (user, revoked) = accounts
        .service()
        .reset_password(&token, &password, &meta)
        .await?;
    ctx.app.revoke_sessions(user, revoked).await?;
    json(200, &shared::api::Ok::YES)
}

/// `POST /auth/password/change` → `{ok, revoked}`; every other session ends.
pub async fn change_password(mut ctx: Ctx) -> AppResult<Response> {
    let caller = ctx.caller()?;
    let (current, new) = ctx
        .json_body::<ChangePasswordRequest>()
        .await?
        .try_into_domain()?;
    let meta = ctx.client_meta()?;
    let accounts = ctx.app.accounts(ctx.base_url()?)?;
    let ended = accounts
        .service()
        .change_password(caller.user_id, caller.sid, &current, &new, &meta)
        .await?;
    let revoked = ended.len() as u64;
    ctx.app.revoke_sessions(caller.user_id, ended).await?;
    json(200, &PasswordChanged { ok: true, revoked })
}

/// `GET /auth/sessions` → `SessionList`.
pub async fn sessions(ctx: Ctx) -> AppResult<Response> {
    let caller = ctx.caller()?;
    let accounts = ctx.app.accounts(ctx.base_url()?)?;
    json(
        200,
        &accounts
            .service()
            .sessions(caller.user_id, caller.sid)
            .await?,
    )
}

/// `DELETE /auth/sessions/{id}` → `{ok}`; its tokens stop working and its sockets close.
pub async fn revoke_session(ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    let id = uuid::Uuid::try_parse(ctx.param("id")).map_err(|_| shared::AppError::NotFound)?;
    let meta = ctx.client_meta()?;
    let accounts = ctx.app.accounts(ctx.base_url()?)?;
    accounts.service().revoke_session(user, id, &meta).await?;
    ctx.app.revoke_sessions(user, vec![id]).await?;
    json(200, &shared::api::Ok::YES)
}

/// `GET /auth/events` → `SecurityEvents`.
pub async fn events(ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    let accounts = ctx.app.accounts(ctx.base_url()?)?;
    let events = accounts.service().security_events(user).await?;
    json(200, &SecurityEvents { events })
}

/// `DELETE /auth/account` → 202 `{ok, completed}`: the account stops working at once (its
/// sessions end, its sockets close, its home forgets it); the erasure runs a bounded amount
/// before the answer and the cron finishes what is left.
pub async fn delete_account(mut ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    let (password, code) = ctx
        .json_body::<DeleteAccountRequest>()
        .await?
        .try_into_domain()?;
    let meta = ctx.client_meta()?;
    let deletion = ctx.app.deletion()?;
    let (pending, revoked) = deletion
        .request()
        .request(user, &password, code.as_deref(), &meta)
        .await?;
    ctx.app.revoke_sessions(user, revoked).await?;
    ctx.app.push_account(user).await;
    let units = shared::accounts::deletion::REQUEST_UNITS;
    let completed = ctx.app.erase(pending, units).await;
    json(
        202,
        &DeletionAccepted {
            ok: true,
            completed,
        },
    )
}

/// `GET /auth/export` → `AccountExport` (throttled: 3 an hour).
pub async fn export(ctx: Ctx) -> AppResult<Response> {
    let caller = ctx.caller()?;
    let meta = ctx.client_meta()?;
    let base = ctx.base_url()?;
    let home = ctx.home()?;
    let parts = ctx.app.export()?;
    let export = parts
        .service(&home, &base)
        .export(caller.user_id, caller.sid, &meta)
        .await?;
    json(200, &export)
}

/// `GET /auth/export/blob?token=` → the blob's bytes, streamed from R2 (403 for a link that is
/// not the caller's, altered or expired).
pub async fn export_blob(ctx: Ctx) -> AppResult<Response> {
    use shared::accounts::export::{verify_link, BlobKind};
    let user = ctx.caller()?.user_id;
    let token = ctx
        .query()?
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
        .ok_or(shared::AppError::Forbidden("invalid export link"))?;
    let now = i64::try_from(worker::Date::now().as_millis()).unwrap_or(i64::MAX);
    let claims = verify_link(&ctx.app.export_link_key(), &token, user, now)?;
    let bucket = match claims.kind {
        BlobKind::Record => ctx.app.records()?,
        BlobKind::Backup => ctx.app.backups()?,
    };
    let (body, size) = bucket
        .stream(&claims.key)
        .await?
        .ok_or(shared::AppError::NotFound)?;
    let mut resp = Response::from_body(body).map_err(shared::AppError::internal)?;
    let h = resp.headers_mut();
    let _ = h.set("Content-Type", "application/octet-stream");
    let _ = h.set("Content-Length", &size.to_string());
    Ok(resp)
}
