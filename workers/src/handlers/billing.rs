//! `/api/v1/billing/*`.

use shared::api::{CheckoutBody, Ok as OkBody};
use shared::input::JSON_BODY_LIMIT;
use shared::AppResult;
use worker::Response;

use shared::domain::User;
use shared::ports::UserStore;
use shared::AppError;

use crate::app::BillingParts;
use crate::http::{json, Ctx};

/// The caller's account (401 if it no longer exists).
async fn caller(ctx: &Ctx, parts: &BillingParts) -> AppResult<User> {
    parts
        .users
        .find_by_id(ctx.caller()?.user_id)
        .await?
        .ok_or(AppError::Unauthorized)
}

/// `POST /billing/checkout` → `{checkout_url}`.
pub async fn checkout(mut ctx: Ctx) -> AppResult<Response> {
    let (tier, seats) = ctx.json_body::<CheckoutBody>().await?.into_parts();
    let parts = ctx.app.billing()?;
    let user = caller(&ctx, &parts).await?;
    json(200, &parts.service().checkout(&user, tier, seats).await?)
}

/// `POST /billing/webhook` (Stripe; authenticated by its signature) → `{ok: true}`. A change
/// is pushed to the user's home at once (which also re-reads D1 within a minute).
pub async fn webhook(mut ctx: Ctx) -> AppResult<Response> {
    let signature = ctx.header("Stripe-Signature");
    let payload = ctx.body_bytes(JSON_BODY_LIMIT).await?;
    let done = ctx
        .app
        .billing()?
        .service()
        .webhook(&payload, signature.as_deref())
        .await?;
    if let Some(user) = done.changed {
        // The subscriber and, for a team, every member: their tier in force follows it.
        ctx.app.push_team_accounts(user).await;
    }
    json(200, &OkBody::YES)
}

/// `GET /billing/subscription` → `SubscriptionInfo`.
pub async fn subscription(ctx: Ctx) -> AppResult<Response> {
    let parts = ctx.app.billing()?;
    let user = caller(&ctx, &parts).await?;
    json(200, &parts.service().subscription(&user).await?)
}

/// `POST /billing/portal` → `{url}` (409 `conflict` without a Stripe customer).
pub async fn portal(ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    json(200, &ctx.app.billing()?.service().portal(user).await?)
}

/// `DELETE /billing/subscription` → `{ok: true}` (cancels at the period end).
pub async fn cancel(ctx: Ctx) -> AppResult<Response> {
    let user = ctx.caller()?.user_id;
    ctx.app.billing()?.service().cancel(user).await?;
    json(200, &OkBody::YES)
}
