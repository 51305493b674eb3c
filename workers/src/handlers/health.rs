//! `GET /api/v1/health`.

use shared::api::Health;
use shared::AppResult;
use worker::Response;

use crate::http::{json, Ctx};

/// `{status, version}`: the worker is up and configured.
pub async fn get(_ctx: Ctx) -> AppResult<Response> {
    json(200, &Health::ok())
}
