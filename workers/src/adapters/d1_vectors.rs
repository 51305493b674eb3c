//! D1 adapter of vector metadata (`vector_meta`): ids, dimension, size, checksum — no content.

use async_trait::async_trait;
use serde::Deserialize;
use shared::domain::UserId;
use shared::ports::StoreError;
use shared::vectors::{VectorMeta, VectorMetaStore};
use wasm_bindgen::JsValue;
use worker::D1Database;

use super::d1::{int, stmt, text};
use super::unavailable;

/// Vector metadata in D1.
pub struct D1VectorMetaStore(pub D1Database);

#[derive(Deserialize)]
struct Size {
    id: String,
    size_bytes: f64,
}

/// D1 binds at most 100 parameters per statement: the user and 99 ids.
const IDS_PER_STATEMENT: usize = 99;

/// `?2, ?3, …` for `n` ids after the user.
fn placeholders(n: usize) -> String {
    (0..n)
        .map(|i| format!("?{}", i + 2))
        .collect::<Vec<_>>()
        .join(", ")
}

fn user_and_ids(user: UserId, ids: &[String]) -> Vec<JsValue> {
    std::iter::once(text(user.to_string()))
        .chain(ids.iter().map(text))
        .collect()
}

#[async_trait(?Send)]
impl VectorMetaStore for D1VectorMetaStore {
    async fn dims(&self, user: UserId) -> Result<Option<u32>, StoreError> {
        let dims = stmt(
            &self.0,
            "SELECT dims FROM vector_meta WHERE user_id = ?1 LIMIT 1",
            &[text(user.to_string())],
        )?
        .first::<f64>(Some("dims"))
        .await
        .map_err(|e| unavailable("reading vector dimension", &e))?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(dims.map(|d| d as u32))
    }

    async fn sizes(&self, user: UserId, ids: &[String]) -> Result<Vec<(String, u64)>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let sql = format!(
                "SELECT id, size_bytes FROM vector_meta WHERE user_id = ?1 AND id IN ({})",
                placeholders(chunk.len())
            );
            let rows = stmt(&self.0, &sql, &user_and_ids(user, chunk))?
                .all()
                .await
                .map_err(|e| unavailable("reading vector sizes", &e))?
                .results::<Size>()
                .map_err(|e| unavailable("decoding vector sizes", &e))?;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            out.extend(
                rows.into_iter()
                    .map(|r| (r.id, r.size_bytes.max(0.0) as u64)),
            );
        }
        Ok(out)
    }

    async fn upsert(
        &self,
        user: UserId,
        rows: &[VectorMeta],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut batch = Vec::with_capacity(rows.len());
        for r in rows {
            #[allow(clippy::cast_possible_wrap)]
            batch.push(stmt(
                &self.0,
                "INSERT INTO vector_meta (user_id, id, dims, size_bytes, checksum, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (user_id, id) DO UPDATE SET dims = excluded.dims, \
                   size_bytes = excluded.size_bytes, checksum = excluded.checksum, \
                   updated_at = excluded.updated_at",
                &[
                    text(user.to_string()),
                    text(&r.id),
                    int(i64::from(r.dims)),
                    int(r.size_bytes as i64),
                    text(&r.checksum),
                    int(now_ms),
                ],
            )?);
        }
        self.0
            .batch(batch)
            .await
            .map_err(|e| unavailable("writing vector metadata", &e))?;
        Ok(())
    }

    async fn delete(&self, user: UserId, ids: &[String]) -> Result<(), StoreError> {
        let mut batch = Vec::new();
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let sql = format!(
                "DELETE FROM vector_meta WHERE user_id = ?1 AND id IN ({})",
                placeholders(chunk.len())
            );
            batch.push(stmt(&self.0, &sql, &user_and_ids(user, chunk))?);
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.0
            .batch(batch)
            .await
            .map_err(|e| unavailable("deleting vector metadata", &e))?;
        Ok(())
    }
}
