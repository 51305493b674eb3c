//! `/api/v1/billing/*`.

use shared::api::{CheckoutBody, Ok as OkBody};
use shared::input::JSON_BODY_LIMIT;
use shared::AppResult;
use worker::Response;

use crate::http::{json, Ctx};
use crate::services::BillingDeps;

/// `POST /billing/checkout` → `{checkout_url}`.
pub async fn checkout(mut ctx: Ctx) -> AppResult<Response> {
    let (tier, seats) = ctx.json_body::<CheckoutBody>().await?.into_parts();
    let deps = BillingDeps::new(&ctx)?;
    let user = deps.caller(&ctx).await?;
    json(200, &deps.service().checkout(&user, tier, seats).await?)
}

/// `POST /billing/webhook` (Stripe; authenticated by its signature) → `{ok: true}`.
pub async fn webhook(mut ctx: Ctx) -> AppResult<Response> {
    let signature = ctx.header("Stripe-Signature");
    let payload = ctx.body_bytes(JSON_BODY_LIMIT).await?;
    let deps = BillingDeps::new(&ctx)?;
    deps.service()
        .webhook(&payload, signature.as_deref())
        .await?;
    json(200, &OkBody::YES)
}

/// `GET /billing/subscription` → `SubscriptionInfo`.
pub async fn subscription(ctx: Ctx) -> AppResult<Response> {
    let deps = BillingDeps::new(&ctx)?;
    let user = deps.caller(&ctx).await?;
    json(200, &deps.service().subscription(&user).await?)
}

/// `DELETE /billing/subscription` → `{ok: true}` (cancels at the period end).
pub async fn cancel(ctx: Ctx) -> AppResult<Response> {
    let deps = BillingDeps::new(&ctx)?;
    deps.service().cancel(ctx.principal()?.user_id).await?;
    json(200, &OkBody::YES)
}
