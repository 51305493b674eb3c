//! `GET /providers`, `GET /agents` and `PUT /agents/enabled`: what the caller's chat may use.

use shared::api::EnableAgentsRequest;
use shared::chat::allowance;
use shared::domain::Tier;
use shared::home::ops::SetEnabledAgents;
use shared::AppResult;
use worker::Response;

use crate::handlers::chat::chat_grant;
use crate::http::{json, Ctx};

/// `GET /providers` → the providers and models the caller's tier may name.
pub async fn providers(ctx: Ctx) -> AppResult<Response> {
    let tier = ctx.principal()?.tier;
    json(200, &ctx.app.providers().list(tier))
}

/// `GET /agents` → every agent the caller can use (built-in and their installed plugins'),
/// with whether it is enabled.
pub async fn list(ctx: Ctx) -> AppResult<Response> {
    let grant = chat_grant(&ctx).await?;
    json(
        200,
        &allowance::listing(&grant.brain.registry, &grant.enabled),
    )
}

/// `PUT /agents/enabled {agents}` → the new listing. Names are checked here against the
/// caller's agents (their home answers which plugins they installed; 422); the count against
/// the tier in force is checked by the caller's home as it stores them (403).
pub async fn set_enabled(mut ctx: Ctx) -> AppResult<Response> {
    let req: EnableAgentsRequest = ctx.json_body().await?;
    let grant = chat_grant(&ctx).await?;
    let registry = &grant.brain.registry;
    // Every name known, once; in registry order. The tier's limit is the home's to apply.
    let agents = allowance::choose(Tier::Team, registry, &req.agents)?;
    shared::home::call(
        &ctx.home()?,
        &SetEnabledAgents {
            agents: agents.clone(),
        },
    )
    .await?;
    let tier = ctx.principal()?.tier;
    let enabled = allowance::effective(tier, registry, Some(&agents));
    json(200, &allowance::listing(registry, &enabled))
}
