//! `/api/v1/backup` — raw bodies with `X-Backup-*` headers.

use shared::backup::multipart::{CompleteUpload, MAX_PARTS, PART_SIZE};
use shared::backup::{BackupHeaders, BackupStored, MAX_SINGLE_BACKUP_BYTES};
use shared::input;
use shared::storage::{Checksum, Payload};
use shared::{AppError, AppResult};
use worker::{Data, Response};

use crate::http::{json, Ctx};

/// `PUT /backup` → `{ok: true, id}`.
pub async fn put(ctx: Ctx) -> AppResult<Response> {
    let headers = BackupHeaders::parse(
        ctx.header("X-Backup-Version").as_deref(),
        ctx.header("X-Backup-Timestamp").as_deref(),
        ctx.header("X-Backup-Checksum").as_deref(),
        ctx.header("X-Backup-Prune").as_deref(),
    )?;
    let len = ctx
        .header("Content-Length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| AppError::field("Content-Length", "is required"))?;
    input::check_length(Some(len), MAX_SINGLE_BACKUP_BYTES)?;
    let payload = match ctx.req.inner().body() {
        Some(stream) if len > 0 => Payload::Stream(Data::ReadableStream(stream), len),
        _ => Payload::Bytes(Vec::new()),
    };
    let meta = ctx
        .storage(ctx.app.backups())?
        .backups()
        .put(headers, payload)
        .await?;
    json(
        200,
        &BackupStored {
            ok: true,
            id: meta.id,
        },
    )
}

/// `GET /backup` → the newest backup's bytes (`If-Modified-Since` → 304).
pub async fn latest(ctx: Ctx) -> AppResult<Response> {
    let storage = ctx.storage(ctx.app.backups())?;
    let row = storage.backups().latest().await?;
    let stored_secs = row.meta.created_at.div_euclid(1000);
    let last_modified = http_date(stored_secs);
    let unchanged = ctx
        .header("If-Modified-Since")
        .and_then(|v| httpdate::parse_http_date(&v).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .is_some_and(|since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX) >= stored_secs);
    let mut resp = if unchanged {
        Response::empty()
            .map_err(AppError::internal)?
            .with_status(304)
    } else {
        let (body, size) = storage
            .bucket
            .stream(&row.r2_key)
            .await?
            .ok_or_else(|| AppError::internal(format!("backup {} has no blob", row.meta.id)))?;
        let mut r = Response::from_body(body).map_err(AppError::internal)?;
        let _ = r
            .headers_mut()
            .set("Content-Type", "application/octet-stream");
        let _ = r.headers_mut().set("Content-Length", &size.to_string());
        r
    };
    let h = resp.headers_mut();
    let _ = h.set("Last-Modified", &last_modified);
    let _ = h.set("X-Backup-Id", &row.meta.id);
    let _ = h.set("X-Backup-Version", &row.meta.version.to_string());
    let _ = h.set("X-Backup-Timestamp", &row.meta.timestamp.to_string());
    let _ = h.set("X-Backup-Checksum", &row.meta.checksum);
    let _ = h.set("ETag", &format!("\"{}\"", row.meta.checksum));
    Ok(resp)
}

fn http_date(secs: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    httpdate::fmt_http_date(t)
}

/// `GET /backup/history` → `BackupMetadata[]`, newest first.
pub async fn history(ctx: Ctx) -> AppResult<Response> {
    let storage = ctx.storage(ctx.app.backups())?;
    json(200, &storage.backups().history().await?)
}

/// `DELETE /backup/{id}` → `{ok: true}`.
pub async fn delete(ctx: Ctx) -> AppResult<Response> {
    let storage = ctx.storage(ctx.app.backups())?;
    storage.backups().delete(ctx.param("id")).await?;
    json(200, &shared::api::Ok::YES)
}

/// `POST /backup/uploads` → 201 `{upload_id, part_size, expires_at}`.
pub async fn begin_upload(ctx: Ctx) -> AppResult<Response> {
    let storage = ctx.storage(ctx.app.backups())?;
    json(201, &storage.backups().begin_upload().await?)
}

/// `PUT /backup/uploads/{id}/parts/{n}` with `X-Part-Checksum` → `{ok, part_number}`.
pub async fn upload_part(mut ctx: Ctx) -> AppResult<Response> {
    let number = ctx
        .param("n")
        .parse::<u16>()
        .map_err(|_| AppError::field("part_number", format!("must be from 1 to {MAX_PARTS}")))?;
    let checksum = Checksum::parse(
        &ctx.header("X-Part-Checksum").unwrap_or_default(),
        "X-Part-Checksum",
    )
    .map_err(|e| AppError::Validation(vec![e]))?;
    let id = ctx.param("id").to_owned();
    let bytes = ctx.body_bytes(PART_SIZE).await?;
    let stored = ctx
        .storage(ctx.app.backups())?
        .backups()
        .upload_part(&id, number, &checksum, bytes)
        .await?;
    json(200, &stored)
}

/// `POST /backup/uploads/{id}/complete` → `{ok, id}`.
pub async fn complete_upload(mut ctx: Ctx) -> AppResult<Response> {
    let headers = ctx.json_body::<CompleteUpload>().await?.try_into_domain()?;
    let meta = ctx
        .storage(ctx.app.backups())?
        .backups()
        .complete_upload(ctx.param("id"), headers)
        .await?;
    json(
        200,
        &BackupStored {
            ok: true,
            id: meta.id,
        },
    )
}

/// `DELETE /backup/uploads/{id}` → `{ok: true}`.
pub async fn abort_upload(ctx: Ctx) -> AppResult<Response> {
    ctx.storage(ctx.app.backups())?
        .backups()
        .abort_upload(ctx.param("id"))
        .await?;
    json(200, &shared::api::Ok::YES)
}
