//! D1 adapter of multipart uploads in progress (`backup_uploads`, `backup_upload_parts`).

use async_trait::async_trait;
use serde::Deserialize;
use shared::backup::multipart::{Part, Upload, UploadStore};
use shared::domain::UserId;
use shared::ports::StoreError;
use shared::storage::Checksum;
use worker::D1Database;

use super::d1::{int, stmt, text};
use super::unavailable;

/// Uploads in D1.
pub struct D1UploadStore(pub D1Database);

#[derive(Deserialize)]
struct UploadRow {
    id: String,
    user_id: String,
    r2_key: String,
    r2_upload_id: String,
    created_at: f64,
    expires_at: f64,
}

impl UploadRow {
    #[allow(clippy::cast_possible_truncation)]
    fn into_upload(self) -> Result<Upload, StoreError> {
        Ok(Upload {
            user_id: UserId::parse(&self.user_id)
                .ok_or_else(|| StoreError::Unavailable("corrupt backup_uploads.user_id".into()))?,
            id: self.id,
            r2_key: self.r2_key,
            r2_upload_id: self.r2_upload_id,
            created_at: self.created_at as i64,
            expires_at: self.expires_at as i64,
        })
    }
}

#[derive(Deserialize)]
struct PartRow {
    part_number: f64,
    etag: String,
    size_bytes: f64,
}

const COLUMNS: &str = "id, user_id, r2_key, r2_upload_id, created_at, expires_at";

#[async_trait(?Send)]
impl UploadStore for D1UploadStore {
    async fn create(&self, u: &Upload) -> Result<(), StoreError> {
        stmt(
            &self.0,
            "INSERT INTO backup_uploads (id, user_id, r2_key, r2_upload_id, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[text(&u.id), text(u.user_id.to_string()), text(&u.r2_key), text(&u.r2_upload_id), int(u.created_at), int(u.expires_at)],
        )?
        .run()
        .await
        .map_err(|e| unavailable("recording upload", &e))?;
        Ok(())
    }

    async fn get(&self, user: UserId, id: &str) -> Result<Option<Upload>, StoreError> {
        stmt(
            &self.0,
            &format!("SELECT {COLUMNS} FROM backup_uploads WHERE id = ?1 AND user_id = ?2"),
            &[text(id), text(user.to_string())],
        )?
        .first::<UploadRow>(None)
        .await
        .map_err(|e| unavailable("reading upload", &e))?
        .map(UploadRow::into_upload)
        .transpose()
    }

    async fn put_part(
        &self,
        upload_id: &str,
        p: &Part,
        checksum: &Checksum,
    ) -> Result<(), StoreError> {
        #[allow(clippy::cast_possible_wrap)]
        let size = p.size as i64;
        stmt(
            &self.0,
            "INSERT INTO backup_upload_parts (upload_id, part_number, etag, size_bytes, checksum) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (upload_id, part_number) DO UPDATE SET \
             etag = excluded.etag, size_bytes = excluded.size_bytes, checksum = excluded.checksum",
            &[
                text(upload_id),
                int(i64::from(p.number)),
                text(&p.etag),
                int(size),
                text(checksum.as_str()),
            ],
        )?
        .run()
        .await
        .map_err(|e| unavailable("recording part", &e))?;
        Ok(())
    }

    async fn parts(&self, upload_id: &str) -> Result<Vec<Part>, StoreError> {
        let rows = stmt(
            &self.0,
            "SELECT part_number, etag, size_bytes FROM backup_upload_parts \
             WHERE upload_id = ?1 ORDER BY part_number",
            &[text(upload_id)],
        )?
        .all()
        .await
        .map_err(|e| unavailable("listing parts", &e))?
        .results::<PartRow>()
        .map_err(|e| unavailable("decoding parts", &e))?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(rows
            .into_iter()
            .map(|r| Part {
                number: r.part_number as u16,
                etag: r.etag,
                size: r.size_bytes.max(0.0) as u64,
            })
            .collect())
    }

    async fn delete(&self, upload_id: &str) -> Result<(), StoreError> {
        let parts = stmt(
            &self.0,
            "DELETE FROM backup_upload_parts WHERE upload_id = ?1",
            &[text(upload_id)],
        )?;
        let upload = stmt(
            &self.0,
            "DELETE FROM backup_uploads WHERE id = ?1",
            &[text(upload_id)],
        )?;
        self.0
            .batch(vec![parts, upload])
            .await
            .map_err(|e| unavailable("forgetting upload", &e))?;
        Ok(())
    }

    async fn expired(&self, now_ms: i64) -> Result<Vec<Upload>, StoreError> {
        stmt(
            &self.0,
            &format!("SELECT {COLUMNS} FROM backup_uploads WHERE expires_at <= ?1 LIMIT 100"),
            &[int(now_ms)],
        )?
        .all()
        .await
        .map_err(|e| unavailable("listing expired uploads", &e))?
        .results::<UploadRow>()
        .map_err(|e| unavailable("decoding uploads", &e))?
        .into_iter()
        .map(UploadRow::into_upload)
        .collect()
    }
}
