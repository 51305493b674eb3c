//! D1 adapter of record metadata (`storage_records`): never content, only ids, sizes and
//! checksums.

use async_trait::async_trait;
use serde::Deserialize;
use shared::domain::UserId;
use shared::ports::StoreError;
use shared::storage::{ListQuery, RecordRow, RecordStore};
use wasm_bindgen::JsValue;
use worker::D1Database;

use super::d1::{changes, int, stmt, text};
use super::unavailable;

/// Record metadata in D1.
pub struct D1RecordStore(pub D1Database);

#[derive(Deserialize)]
struct Row {
    id: String,
    user_id: String,
    table_name: String,
    r2_key: String,
    checksum: String,
    size_bytes: f64,
    version: f64,
    created_at: f64,
    updated_at: f64,
    deleted_at: Option<f64>,
}

impl Row {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn into_row(self) -> Result<RecordRow, StoreError> {
        Ok(RecordRow {
            user_id: UserId::parse(&self.user_id)
                .ok_or_else(|| StoreError::Unavailable("corrupt storage_records.user_id".into()))?,
            id: self.id,
            table: self.table_name,
            r2_key: self.r2_key,
            checksum: self.checksum,
            size_bytes: self.size_bytes.max(0.0) as u64,
            version: self.version as i64,
            created_at: self.created_at as i64,
            updated_at: self.updated_at as i64,
            deleted_at: self.deleted_at.map(|v| v as i64),
        })
    }
}

const COLUMNS: &str = "id, user_id, table_name, r2_key, checksum, size_bytes, version, \
     created_at, updated_at, deleted_at";

#[allow(clippy::cast_possible_wrap)]
fn size(n: u64) -> JsValue {
    int(n as i64)
}

#[async_trait(?Send)]
impl RecordStore for D1RecordStore {
    async fn insert(&self, r: &RecordRow) -> Result<(), StoreError> {
        stmt(
            &self.0,
            "INSERT INTO storage_records (id, user_id, table_name, r2_key, checksum, size_bytes, \
                version, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            &[
                text(&r.id),
                text(r.user_id.to_string()),
                text(&r.table),
                text(&r.r2_key),
                text(&r.checksum),
                size(r.size_bytes),
                int(r.version),
                int(r.created_at),
                int(r.updated_at),
            ],
        )?
        .run()
        .await
        .map_err(|e| unavailable("inserting record", &e))?;
        Ok(())
    }

    async fn get(&self, user: UserId, id: &str) -> Result<Option<RecordRow>, StoreError> {
        stmt(
            &self.0,
            &format!("SELECT {COLUMNS} FROM storage_records WHERE id = ?1 AND user_id = ?2"),
            &[text(id), text(user.to_string())],
        )?
        .first::<Row>(None)
        .await
        .map_err(|e| unavailable("reading record", &e))?
        .map(Row::into_row)
        .transpose()
    }

    async fn update(&self, r: &RecordRow, expected_version: i64) -> Result<bool, StoreError> {
        let result = stmt(
            &self.0,
            "UPDATE storage_records SET r2_key = ?1, checksum = ?2, size_bytes = ?3, \
                version = ?4, updated_at = ?5 \
             WHERE id = ?6 AND user_id = ?7 AND version = ?8 AND deleted_at IS NULL",
            &[
                text(&r.r2_key),
                text(&r.checksum),
                size(r.size_bytes),
                int(r.version),
                int(r.updated_at),
                text(&r.id),
                text(r.user_id.to_string()),
                int(expected_version),
            ],
        )?
        .run()
        .await
        .map_err(|e| unavailable("updating record", &e))?;
        Ok(changes(&result) == 1)
    }

    async fn delete(
        &self,
        user: UserId,
        id: &str,
        expected_version: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let result = stmt(
            &self.0,
            "UPDATE storage_records SET deleted_at = ?1, updated_at = ?1, version = version + 1 \
             WHERE id = ?2 AND user_id = ?3 AND version = ?4 AND deleted_at IS NULL",
            &[
                int(now_ms),
                text(id),
                text(user.to_string()),
                int(expected_version),
            ],
        )?
        .run()
        .await
        .map_err(|e| unavailable("deleting record", &e))?;
        Ok(changes(&result) == 1)
    }

    async fn list(
        &self,
        user: UserId,
        q: &ListQuery,
        tombstones_since: i64,
    ) -> Result<Vec<RecordRow>, StoreError> {
        let (after_u, after_i) = q
            .after
            .as_ref()
            .map_or((JsValue::NULL, JsValue::NULL), |c| (int(c.u), text(&c.i)));
        let rows = stmt(
            &self.0,
            &format!(
                "SELECT {COLUMNS} FROM storage_records \
                 WHERE user_id = ?1 \
                   AND (?2 IS NULL OR table_name = ?2) \
                   AND (?3 IS NULL OR updated_at > ?3) \
                   AND (deleted_at IS NULL OR deleted_at >= ?4) \
                   AND (?5 IS NULL OR updated_at > ?5 OR (updated_at = ?5 AND id > ?6)) \
                 ORDER BY updated_at, id LIMIT ?7 OFFSET ?8"
            ),
            &[
                text(user.to_string()),
                q.table.as_ref().map_or(JsValue::NULL, |t| text(t.as_str())),
                q.updated_since.map_or(JsValue::NULL, int),
                int(tombstones_since),
                after_u,
                after_i,
                int(i64::from(q.limit)),
                int(i64::from(q.offset)),
            ],
        )?
        .all()
        .await
        .map_err(|e| unavailable("listing records", &e))?
        .results::<Row>()
        .map_err(|e| unavailable("decoding records", &e))?;
        rows.into_iter().map(Row::into_row).collect()
    }
}
