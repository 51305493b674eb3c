//! The public, static endpoints (`GET /health`, `GET /openapi.json`, `GET /tiers`) and the
//! caller's usage (`GET /usage`).

use shared::api::{Health, TiersResponse};
use shared::home::ops::GetUsage;
use shared::AppError;
use shared::AppResult;
use wasm_bindgen::JsCast;
use worker::{EncodeBody, Response, ResponseBody};

use crate::http::{json, Ctx};

/// `{status, version}`: the worker is up and configured.
pub async fn get(_ctx: Ctx) -> AppResult<Response> {
    json(200, &Health::ok())
}

/// The committed OpenAPI 3.1 document (generated from the Rust types; a test fails on drift),
/// gzip-compressed by `build.rs`.
const OPENAPI_GZ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/openapi.json.gz"));

/// `GET /openapi.json`: the API contract. Sent as stored (`Content-Encoding: gzip`) to clients
/// that accept gzip; for the others, the runtime's `DecompressionStream` inflates it, so the
/// wasm carries no inflater.
pub async fn openapi(ctx: Ctx) -> AppResult<Response> {
    let gzip_ok = ctx
        .header("Accept-Encoding")
        .is_some_and(|v| accepts_gzip(&v));
    let mut resp = if gzip_ok {
        let mut resp = Response::from_body(ResponseBody::Body(OPENAPI_GZ.to_vec()))
            .map_err(AppError::internal)?
            .with_encode_body(EncodeBody::Manual);
        let _ = resp.headers_mut().set("Content-Encoding", "gzip");
        resp
    } else {
        Response::from_body(ResponseBody::Stream(inflated(OPENAPI_GZ)?))
            .map_err(AppError::internal)?
    };
    let headers = resp.headers_mut();
    let _ = headers.set("Content-Type", "application/json");
    let _ = headers.set("Cache-Control", "public, max-age=300");
    let _ = headers.append("Vary", "Accept-Encoding");
    Ok(resp)
}

/// Whether an `Accept-Encoding` value admits gzip (`gzip` or `*`, not with `q=0`).
fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default();
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

/// `gz` as a stream of its inflated bytes.
fn inflated(gz: &[u8]) -> AppResult<web_sys::ReadableStream> {
    let bytes = js_sys::Uint8Array::from(gz);
    let source = web_sys::Response::new_with_opt_buffer_source(Some(&bytes))
        .map_err(|e| AppError::internal(anyhow::anyhow!("{e:?}")))?;
    let body = source
        .body()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("a buffer response has a body")))?;
    // `DecompressionStream` is behind web-sys's unstable APIs: reach the runtime's constructor.
    let ctor = js_sys::Reflect::get(&js_sys::global(), &"DecompressionStream".into())
        .map_err(|e| AppError::internal(anyhow::anyhow!("{e:?}")))?;
    let inflate = js_sys::Reflect::construct(
        ctor.unchecked_ref::<js_sys::Function>(),
        &js_sys::Array::of1(&"gzip".into()),
    )
    .map_err(|e| AppError::internal(anyhow::anyhow!("no DecompressionStream: {e:?}")))?;
    Ok(body.pipe_through(&inflate.unchecked_into()))
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
