//! D1 adapter of backup metadata (`backup_metadata`).

use async_trait::async_trait;
use serde::Deserialize;
use shared::backup::{BackupMetadata, BackupRow, BackupStore};
use shared::domain::UserId;
use shared::ports::StoreError;
use worker::D1Database;

use super::d1::{changes, int, stmt, text};
use super::unavailable;

/// Backup metadata in D1.
pub struct D1BackupStore(pub D1Database);

#[derive(Deserialize)]
struct Row {
    id: String,
    user_id: String,
    r2_key: String,
    version: f64,
    timestamp: f64,
    checksum: String,
    size_bytes: f64,
    chunk_count: f64,
    created_at: f64,
}

impl Row {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn into_row(self) -> Result<BackupRow, StoreError> {
        Ok(BackupRow {
            user_id: UserId::parse(&self.user_id)
                .ok_or_else(|| StoreError::Unavailable("corrupt backup_metadata.user_id".into()))?,
            r2_key: self.r2_key,
            meta: BackupMetadata {
                id: self.id,
                version: self.version as i64,
                timestamp: self.timestamp as i64,
                checksum: self.checksum,
                chunk_count: self.chunk_count.max(1.0) as u32,
                size_bytes: self.size_bytes.max(0.0) as u64,
                created_at: self.created_at as i64,
            },
        })
    }
}

const COLUMNS: &str =
    "id, user_id, r2_key, version, timestamp, checksum, size_bytes, chunk_count, created_at";

#[async_trait(?Send)]
impl BackupStore for D1BackupStore {
    async fn insert(&self, r: &BackupRow) -> Result<(), StoreError> {
        #[allow(clippy::cast_possible_wrap)]
        let size = r.meta.size_bytes as i64;
        stmt(
            &self.0,
            "INSERT INTO backup_metadata (id, user_id, r2_key, version, timestamp, checksum, \
                size_bytes, chunk_count, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            &[
                text(&r.meta.id),
                text(r.user_id.to_string()),
                text(&r.r2_key),
                int(r.meta.version),
                int(r.meta.timestamp),
                text(&r.meta.checksum),
                int(size),
                int(i64::from(r.meta.chunk_count)),
                int(r.meta.created_at),
            ],
        )?
        .run()
        .await
        .map_err(|e| unavailable("inserting backup", &e))?;
        Ok(())
    }

    async fn list(&self, user: UserId) -> Result<Vec<BackupRow>, StoreError> {
        stmt(
            &self.0,
            &format!(
                "SELECT {COLUMNS} FROM backup_metadata WHERE user_id = ?1 \
                 ORDER BY created_at DESC, id DESC"
            ),
            &[text(user.to_string())],
        )?
        .all()
        .await
        .map_err(|e| unavailable("listing backups", &e))?
        .results::<Row>()
        .map_err(|e| unavailable("decoding backups", &e))?
        .into_iter()
        .map(Row::into_row)
        .collect()
    }

    async fn get(&self, user: UserId, id: &str) -> Result<Option<BackupRow>, StoreError> {
        stmt(
            &self.0,
            &format!("SELECT {COLUMNS} FROM backup_metadata WHERE id = ?1 AND user_id = ?2"),
            &[text(id), text(user.to_string())],
        )?
        .first::<Row>(None)
        .await
        .map_err(|e| unavailable("reading backup", &e))?
        .map(Row::into_row)
        .transpose()
    }

    async fn delete(&self, user: UserId, id: &str) -> Result<bool, StoreError> {
        let r = stmt(
            &self.0,
            "DELETE FROM backup_metadata WHERE id = ?1 AND user_id = ?2",
            &[text(id), text(user.to_string())],
        )?
        .run()
        .await
        .map_err(|e| unavailable("deleting backup", &e))?;
        Ok(changes(&r) == 1)
    }
}
