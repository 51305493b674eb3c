//! `/api/v1/storage/vectors*`: parse, hand to the vector service, serialise.

use shared::api::{
    Ok as OkBody, VectorDeleteRequest, VectorSearchRequest, VectorUpsertRequest, VectorUpserted,
};
use shared::AppResult;
use worker::Response;

use crate::app::vectors;
use crate::http::{json, Ctx};

/// `POST /storage/vectors/upsert` → `{upserted}`.
pub async fn upsert(mut ctx: Ctx) -> AppResult<Response> {
    let req: VectorUpsertRequest = ctx.json_body().await?;
    let (home, index) = (ctx.home()?, ctx.app.vector_index()?);
    let upserted = vectors(&home, index.as_ref(), ctx.caller()?.user_id)
        .upsert(req)
        .await?;
    json(200, &VectorUpserted { upserted })
}

/// `POST /storage/vectors/search` → `{results}`.
pub async fn search(mut ctx: Ctx) -> AppResult<Response> {
    let req: VectorSearchRequest = ctx.json_body().await?;
    let (home, index) = (ctx.home()?, ctx.app.vector_index()?);
    let found = vectors(&home, index.as_ref(), ctx.caller()?.user_id)
        .search(req)
        .await?;
    json(200, &found)
}

/// `DELETE /storage/vectors` → `{ok: true}`.
pub async fn delete(mut ctx: Ctx) -> AppResult<Response> {
    let req: VectorDeleteRequest = ctx.json_body().await?;
    let (home, index) = (ctx.home()?, ctx.app.vector_index()?);
    vectors(&home, index.as_ref(), ctx.caller()?.user_id)
        .delete(req)
        .await?;
    json(200, &OkBody::YES)
}
