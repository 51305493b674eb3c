//! `/api/v1/storage/records` — JSON (base64) or raw `application/octet-stream` bodies.

use shared::api::{CreateRecord, RecordCreated, RecordUpdated, UpdateRecord};
use shared::input;
use shared::storage::{
    if_none_match_hits, Checksum, Cursor, ListQuery, Payload, TableName, DEFAULT_LIST_LIMIT,
    MAX_LIST_LIMIT, MAX_LIST_PAGE, MAX_RECORD_BYTES,
};
use shared::{AppError, AppResult, FieldError};
use worker::{Data, Response};

use crate::http::{json, Ctx};

const OCTET_STREAM: &str = "application/octet-stream";

fn is_octet_stream(ct: Option<&str>) -> bool {
    ct.and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(OCTET_STREAM))
}

/// A raw body: the declared length (required, bounded) and the request's stream.
fn raw_payload(ctx: &Ctx) -> AppResult<Payload<Data>> {
    let len = ctx
        .header("Content-Length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| AppError::field("Content-Length", "is required for raw bodies"))?;
    input::check_length(Some(len), MAX_RECORD_BYTES)?;
    Ok(match ctx.req.inner().body() {
        Some(stream) if len > 0 => Payload::Stream(Data::ReadableStream(stream), len),
        _ => Payload::Bytes(Vec::new()),
    })
}

fn header_field<T>(
    ctx: &Ctx,
    name: &str,
    parse: impl Fn(&str, &str) -> Result<T, FieldError>,
) -> AppResult<T> {
    let raw = ctx.header(name).unwrap_or_default();
    parse(&raw, name).map_err(|e| AppError::Validation(vec![e]))
}

fn with_etag(mut resp: Response, etag: &str) -> Response {
    let _ = resp.headers_mut().set("ETag", etag);
    resp
}

/// `POST /storage/records` → 201 `{id, created_at, etag}`.
pub async fn create(mut ctx: Ctx) -> AppResult<Response> {
    let ct = ctx.header("Content-Type");
    let (table, checksum, payload) = if is_octet_stream(ct.as_deref()) {
        let table = header_field(&ctx, "X-Table", TableName::parse)?;
        let checksum = header_field(&ctx, "X-Checksum", Checksum::parse)?;
        (table, checksum, raw_payload(&ctx)?)
    } else if input::is_json(ct.as_deref()) {
        let (t, c, b) = ctx.json_body::<CreateRecord>().await?.try_into_domain()?;
        (t, c, Payload::Bytes(b))
    } else {
        return Err(AppError::UnsupportedMediaType {
            expected: "application/json or application/octet-stream",
        });
    };
    let storage = ctx.storage(ctx.app.records())?;
    let row = storage.records().create(table, checksum, payload).await?;
    let etag = row.etag();
    let body = RecordCreated {
        id: row.id,
        created_at: row.created_at,
        etag: etag.clone(),
    };
    Ok(with_etag(json(201, &body)?, &etag))
}

/// `PUT /storage/records/{id}` (`If-Match` honoured) → `{ok, etag, updated_at}`.
pub async fn update(mut ctx: Ctx) -> AppResult<Response> {
    let ct = ctx.header("Content-Type");
    let (checksum, payload) = if is_octet_stream(ct.as_deref()) {
        (
            header_field(&ctx, "X-Checksum", Checksum::parse)?,
            raw_payload(&ctx)?,
        )
    } else if input::is_json(ct.as_deref()) {
        let (c, b) = ctx.json_body::<UpdateRecord>().await?.try_into_domain()?;
        (c, Payload::Bytes(b))
    } else {
        return Err(AppError::UnsupportedMediaType {
            expected: "application/json or application/octet-stream",
        });
    };
    let if_match = ctx.header("If-Match");
    let storage = ctx.storage(ctx.app.records())?;
    let row = storage
        .records()
        .update(ctx.param("id"), if_match.as_deref(), checksum, payload)
        .await?;
    let etag = row.etag();
    let body = RecordUpdated {
        ok: true,
        etag: etag.clone(),
        updated_at: row.updated_at,
    };
    Ok(with_etag(json(200, &body)?, &etag))
}

/// `GET /storage/records/{id}` → the bytes (`If-None-Match` → 304).
pub async fn get(ctx: Ctx) -> AppResult<Response> {
    let storage = ctx.storage(ctx.app.records())?;
    let row = storage.records().get(ctx.param("id")).await?;
    let etag = row.etag();
    if if_none_match_hits(ctx.header("If-None-Match").as_deref(), &etag) {
        let resp = Response::empty()
            .map_err(AppError::internal)?
            .with_status(304);
        return Ok(with_etag(resp, &etag));
    }
    let (body, size) = storage
        .bucket
        .stream(&row.r2_key)
        .await?
        .ok_or_else(|| AppError::internal(format!("record {} has no blob", row.id)))?;
    let mut resp = Response::from_body(body).map_err(AppError::internal)?;
    let h = resp.headers_mut();
    let _ = h.set("Content-Type", OCTET_STREAM);
    let _ = h.set("Content-Length", &size.to_string());
    let _ = h.set("X-Checksum", &row.checksum);
    Ok(with_etag(resp, &etag))
}

/// `DELETE /storage/records/{id}` (`If-Match` honoured) → `{ok: true}`.
pub async fn delete(ctx: Ctx) -> AppResult<Response> {
    let storage = ctx.storage(ctx.app.records())?;
    storage
        .records()
        .delete(ctx.param("id"), ctx.header("If-Match").as_deref())
        .await?;
    json(200, &shared::api::Ok::YES)
}

/// `GET /storage/records?table&page&limit&updated_since&cursor` → metadata, `X-Next-Cursor`.
pub async fn list(ctx: Ctx) -> AppResult<Response> {
    let query = list_query(&ctx)?;
    let storage = ctx.storage(ctx.app.records())?;
    let page = storage.records().list(&query).await?;
    let mut resp = json(200, &page.items)?;
    if let Some(c) = page.next {
        let _ = resp.headers_mut().set("X-Next-Cursor", &c);
    }
    if page.reset {
        let _ = resp.headers_mut().set("X-Sync-Reset", "true");
    }
    Ok(resp)
}

fn list_query(ctx: &Ctx) -> AppResult<ListQuery> {
    let url = ctx.req.url().map_err(AppError::internal)?;
    let mut q = ListQuery {
        table: None,
        updated_since: None,
        after: None,
        offset: 0,
        limit: DEFAULT_LIST_LIMIT,
    };
    let mut page = 1u32;
    let mut errors = Vec::new();
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "table" => match TableName::parse(&v, "table") {
                Ok(t) => q.table = Some(t),
                Err(e) => errors.push(e),
            },
            "limit" => match v.parse::<u32>() {
                Ok(n) if (1..=MAX_LIST_LIMIT).contains(&n) => q.limit = n,
                _ => errors.push(FieldError::new(
                    "limit",
                    format!("must be from 1 to {MAX_LIST_LIMIT}"),
                )),
            },
            "page" => match v.parse::<u32>() {
                Ok(n) if (1..=MAX_LIST_PAGE).contains(&n) => page = n,
                _ => errors.push(FieldError::new(
                    "page",
                    format!("must be from 1 to {MAX_LIST_PAGE}"),
                )),
            },
            "updated_since" => match v.parse::<i64>() {
                Ok(n) if n >= 0 => q.updated_since = Some(n),
                _ => errors.push(FieldError::new(
                    "updated_since",
                    "must be epoch milliseconds",
                )),
            },
            "cursor" => match Cursor::decode(&v) {
                Ok(c) => q.after = Some(c),
                Err(e) => errors.push(e),
            },
            _ => {}
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    if q.after.is_none() {
        q.offset = (page - 1).saturating_mul(q.limit);
    }
    Ok(q)
}
