//! `/api/v1/batches`: parse, hand to the caller's home (one call, which takes the request's
//! admission and runs the batch there), serialise.

use shared::api::BatchRequest;
use shared::home::ops::{CancelBatch, GetBatch, ListBatches, StartBatch};
use shared::AppResult;
use worker::Response;

use crate::http::{json, Ctx};

/// `POST /batches` → 202 `{batch_id}`; the home checks the batch and runs it.
pub async fn start(mut ctx: Ctx) -> AppResult<Response> {
    let batch: BatchRequest = ctx.json_body().await?;
    let started = shared::home::call(&ctx.home()?, &StartBatch { batch }).await?;
    json(202, &started)
}

/// `GET /batches` → the caller's batches.
pub async fn list(ctx: Ctx) -> AppResult<Response> {
    json(
        200,
        &shared::home::call(&ctx.home()?, &ListBatches {}).await?,
    )
}

/// `GET /batches/{id}` → the batch and its results so far (404 for another user's).
pub async fn get(ctx: Ctx) -> AppResult<Response> {
    let op = GetBatch {
        id: ctx.param("id").to_owned(),
    };
    json(200, &shared::home::call(&ctx.home()?, &op).await?)
}

/// `DELETE /batches/{id}` → the cancelled batch (its running upstream calls aborted).
pub async fn cancel(ctx: Ctx) -> AppResult<Response> {
    let op = CancelBatch {
        id: ctx.param("id").to_owned(),
    };
    json(200, &shared::home::call(&ctx.home()?, &op).await?)
}
