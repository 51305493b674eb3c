//! `/api/v1/storage/vectors*`: parse, hand to the vector service, serialise.

use shared::api::{
    Ok as OkBody, VectorDeleteRequest, VectorSearchRequest, VectorUpsertRequest, VectorUpserted,
};
use shared::AppResult;
use worker::Response;

use crate::http::{json, Ctx};
use crate::services::VectorDeps;

/// `POST /storage/vectors/upsert` → `{upserted}`.
pub async fn upsert(mut ctx: Ctx) -> AppResult<Response> {
    let req: VectorUpsertRequest = ctx.json_body().await?;
    let who = ctx.principal()?;
    let deps = VectorDeps::new(&ctx)?;
    let upserted = deps.service().upsert(who.user_id, who.tier, req).await?;
    json(200, &VectorUpserted { upserted })
}

/// `POST /storage/vectors/search` → `{results}`.
pub async fn search(mut ctx: Ctx) -> AppResult<Response> {
    let req: VectorSearchRequest = ctx.json_body().await?;
    let who = ctx.principal()?;
    let deps = VectorDeps::new(&ctx)?;
    json(
        200,
        &deps.service().search(who.user_id, who.tier, req).await?,
    )
}

/// `DELETE /storage/vectors` → `{ok: true}`.
pub async fn delete(mut ctx: Ctx) -> AppResult<Response> {
    let req: VectorDeleteRequest = ctx.json_body().await?;
    let who = ctx.principal()?;
    let deps = VectorDeps::new(&ctx)?;
    deps.service().delete(who.user_id, req).await?;
    json(200, &OkBody::YES)
}
