//! `/api/v1/admin/*`: parse, hand to the admin service (which checks the caller is an admin),
//! serialise. Changes to an account are pushed to the user's home at once.

use shared::admin::user_id;
use shared::api::CompRequest;
use shared::AppResult;
use worker::Response;

use crate::http::{json, Ctx};

/// `GET /admin/users?email=` → `AdminUsers`.
pub async fn users(ctx: Ctx) -> AppResult<Response> {
    let who = ctx.principal()?;
    let query = ctx.query()?;
    let email = query
        .iter()
        .find(|(k, _)| k == "email")
        .map(|(_, v)| v.as_str());
    let parts = ctx.app.admin()?;
    json(200, &parts.service().lookup(who.user_id, email).await?)
}

async fn set_suspended(ctx: Ctx, suspend: bool) -> AppResult<Response> {
    let who = ctx.principal()?;
    let target = user_id(ctx.param("id"))?;
    let parts = ctx.app.admin()?;
    let view = parts
        .service()
        .set_suspended(who.user_id, target, suspend)
        .await?;
    // The home refuses the account's calls and closes its sockets from this push on.
    ctx.app.push_account(target).await;
    json(200, &view)
}

/// `POST /admin/users/{id}/suspend` → `AdminUser`.
pub async fn suspend(ctx: Ctx) -> AppResult<Response> {
    set_suspended(ctx, true).await
}

/// `POST /admin/users/{id}/unsuspend` → `AdminUser`.
pub async fn unsuspend(ctx: Ctx) -> AppResult<Response> {
    set_suspended(ctx, false).await
}

/// `POST /admin/users/{id}/comp` → `AdminUser`.
pub async fn comp(mut ctx: Ctx) -> AppResult<Response> {
    let req: CompRequest = ctx.json_body().await?;
    let who = ctx.principal()?;
    let target = user_id(ctx.param("id"))?;
    let parts = ctx.app.admin()?;
    let view = parts.service().comp(who.user_id, target, &req).await?;
    ctx.app.push_account(target).await;
    json(200, &view)
}

/// `GET /admin/plugins/pending` → `PendingReviews` (the marketplace's review queue).
pub async fn pending_plugins(ctx: Ctx) -> AppResult<Response> {
    let who = ctx.principal()?;
    ctx.app.admin()?.service().authorize(who.user_id).await?;
    let market = ctx.app.marketplace(ctx.base_url()?)?;
    json(200, &market.service().pending(who.user_id).await?)
}

/// `GET /admin/payouts` → `AdminPayouts`.
pub async fn payouts(ctx: Ctx) -> AppResult<Response> {
    let who = ctx.principal()?;
    let parts = ctx.app.admin()?;
    json(200, &parts.service().payouts(who.user_id).await?)
}

/// `GET /admin/audit` → `AuditLog`.
pub async fn audit(ctx: Ctx) -> AppResult<Response> {
    let who = ctx.principal()?;
    let parts = ctx.app.admin()?;
    json(200, &parts.service().audit(who.user_id).await?)
}
