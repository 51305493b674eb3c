//! The public, static endpoints (`GET /health`, `GET /openapi.json`, `GET /tiers`) and the
//! caller's usage (`GET /usage`).

use shared::api::{Health, TiersResponse};
use shared::home::ops::GetUsage;
use shared::AppResult;
use worker::Response;

use crate::http::{json, Ctx};

/// `{status, version}`: the worker is up and configured.
pub async fn get(_ctx: Ctx) -> AppResult<Response> {
    json(200, &Health::ok())
}

/// The committed OpenAPI 3.1 document (generated from the Rust types; a test fails on drift).
const OPENAPI_JSON: &str = include_str!("../../../contract/openapi.json");

/// `GET /openapi.json`: the API contract.
pub async fn openapi(_ctx: Ctx) -> AppResult<Response> {
    let mut resp = Response::ok(OPENAPI_JSON).map_err(shared::AppError::internal)?;
    let headers = resp.headers_mut();
    let _ = headers.set("Content-Type", "application/json");
    let _ = headers.set("Cache-Control", "public, max-age=300");
    Ok(resp)
}

/// `GET /tiers`: the tier matrix with prices.
pub async fn tiers(_ctx: Ctx) -> AppResult<Response> {
    let mut resp = json(200, &TiersResponse::current())?;
    let _ = resp
        .headers_mut()
        .set("Cache-Control", "public, max-age=300");
    Ok(resp)
}

/// `GET /usage`: the caller's exact usage and limits, from their home.
pub async fn usage(ctx: Ctx) -> AppResult<Response> {
    json(200, &shared::home::call(&ctx.home()?, &GetUsage {}).await?)
}
