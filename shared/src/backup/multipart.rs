//! Multipart backups, for backups larger than one request: begin, upload numbered parts (each
//! verified against its own SHA-256 in the worker, memory bounded by the part size), complete
//! with the whole backup's metadata (the assembled object is hashed again, streaming, and
//! refused on a mismatch), or abort. Uploads not completed within [`UPLOAD_TTL_MS`] are aborted
//! by the scheduled cleanup.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{BackupHeaders, BackupMetadata, BackupService};
use crate::domain::{Tier, UserId};
use crate::error::{AppError, FieldError};
use crate::ports::{new_uuid, StoreError};
use crate::storage::{BlobStore, Checksum};
use crate::tiers::{check_feature, Feature};

/// Size of every part but the last (R2 wants equal parts of at least 5 MiB).
pub const PART_SIZE: u64 = 8 * 1024 * 1024;
/// Most parts (R2's limit).
pub const MAX_PARTS: u16 = 10_000;
/// How long an upload may stay open (ms).
pub const UPLOAD_TTL_MS: i64 = 24 * 3_600_000;

/// An upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Our id.
    pub id: String,
    /// Owner.
    pub user_id: UserId,
    /// Where the object will be.
    pub r2_key: String,
    /// R2's multipart id.
    pub r2_upload_id: String,
    /// Start (epoch ms).
    pub created_at: i64,
    /// Abandoned after (epoch ms).
    pub expires_at: i64,
}

/// A stored part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// 1-based number.
    pub number: u16,
    /// R2's etag for completion.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
}

/// `POST /backup/uploads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadStarted {
    /// The upload's id.
    pub upload_id: String,
    /// Size of every part but the last (bytes).
    pub part_size: u64,
    /// When the upload is abandoned (epoch ms).
    pub expires_at: i64,
}

/// `PUT /backup/uploads/{id}/parts/{n}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PartStored {
    /// Always true.
    pub ok: bool,
    /// The part's number.
    pub part_number: u16,
}

/// `POST /backup/uploads/{id}/complete`: the whole backup's metadata.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CompleteUpload {
    /// The client's backup format version (≥ 1).
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    #[serde(deserialize_with = "crate::input::integral_i64")]
    pub version: i64,
    /// The backup's time (epoch ms, ≥ 0).
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    #[serde(deserialize_with = "crate::input::integral_i64")]
    pub timestamp: i64,
    /// SHA-256 of the whole backup.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{64}$"))]
    pub checksum: String,
    /// `oldest`: make room by deleting the oldest backups.
    #[cfg_attr(feature = "openapi", schema(pattern = "^oldest$", nullable = false))]
    #[serde(default)]
    pub prune: Option<String>,
}

impl CompleteUpload {
    /// The metadata, validated.
    ///
    /// # Errors
    /// 422 naming every invalid field.
    pub fn try_into_domain(self) -> Result<BackupHeaders, AppError> {
        let mut errors = Vec::new();
        if self.version < 1 {
            errors.push(FieldError::new("version", "must be at least 1"));
        }
        if self.timestamp < 0 {
            errors.push(FieldError::new("timestamp", "must be epoch milliseconds"));
        }
        let checksum = Checksum::parse(&self.checksum, "checksum")
            .map_err(|e| errors.push(e))
            .ok();
        let prune_oldest = match self.prune.as_deref() {
            None => false,
            Some("oldest") => true,
            Some(_) => {
                errors.push(FieldError::new("prune", "must be `oldest` when present"));
                false
            }
        };
        match checksum {
            Some(checksum) if errors.is_empty() => Ok(BackupHeaders {
                version: self.version,
                timestamp: self.timestamp,
                checksum,
                prune_oldest,
            }),
            _ => Err(AppError::Validation(errors)),
        }
    }
}

/// Uploads and parts (D1 `backup_uploads`, `backup_upload_parts`).
#[async_trait(?Send)]
pub trait UploadStore {
    /// Records a new upload.
    async fn create(&self, upload: &Upload) -> Result<(), StoreError>;
    /// The user's upload.
    async fn get(&self, user: UserId, id: &str) -> Result<Option<Upload>, StoreError>;
    /// Records (or replaces) a part.
    async fn put_part(
        &self,
        upload_id: &str,
        part: &Part,
        checksum: &Checksum,
    ) -> Result<(), StoreError>;
    /// The parts, by number.
    async fn parts(&self, upload_id: &str) -> Result<Vec<Part>, StoreError>;
    /// Forgets an upload and its parts.
    async fn delete(&self, upload_id: &str) -> Result<(), StoreError>;
    /// Uploads past their expiry.
    async fn expired(&self, now_ms: i64) -> Result<Vec<Upload>, StoreError>;
}

/// R2 multipart operations.
#[async_trait(?Send)]
pub trait MultipartBlobs {
    /// Starts a multipart upload; returns R2's upload id.
    async fn begin(&self, key: &str) -> Result<String, StoreError>;
    /// Uploads one part; returns its etag.
    async fn part(
        &self,
        key: &str,
        upload_id: &str,
        number: u16,
        bytes: Vec<u8>,
    ) -> Result<String, StoreError>;
    /// Assembles the parts.
    async fn finish(&self, key: &str, upload_id: &str, parts: &[Part]) -> Result<(), StoreError>;
    /// Drops an unfinished upload.
    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), StoreError>;
    /// The SHA-256 and size of a stored object, hashed while streaming.
    async fn digest(&self, key: &str) -> Result<Option<(Checksum, u64)>, StoreError>;
}

impl<B: BlobStore + MultipartBlobs> BackupService<'_, B>
where
    B::Body: From<Vec<u8>>,
{
    /// Starts a multipart backup.
    ///
    /// # Errors
    /// 403 `tier_required` without backups.
    pub async fn begin_upload(
        &self,
        uploads: &dyn UploadStore,
        user: UserId,
        tier: Tier,
    ) -> Result<UploadStarted, AppError> {
        check_feature(tier, Feature::Backup)?;
        let id = new_uuid(self.rng).to_string();
        let key = format!("{user}/multipart/{id}");
        let r2_upload_id = self.blobs.begin(&key).await?;
        let now = self.clock.now_ms();
        let upload = Upload {
            id: id.clone(),
            user_id: user,
            r2_key: key,
            r2_upload_id,
            created_at: now,
            expires_at: now + UPLOAD_TTL_MS,
        };
        uploads.create(&upload).await?;
        tracing::info!(user_id = %user, upload = %id, "multipart backup started");
        Ok(UploadStarted {
            upload_id: id,
            part_size: PART_SIZE,
            expires_at: upload.expires_at,
        })
    }

    async fn open_upload(
        &self,
        uploads: &dyn UploadStore,
        user: UserId,
        id: &str,
    ) -> Result<Upload, AppError> {
        uploads
            .get(user, id)
            .await?
            .filter(|u| u.expires_at > self.clock.now_ms())
            .ok_or(AppError::NotFound)
    }

    /// Stores one part after checking it against its checksum.
    ///
    /// # Errors
    /// 404 unknown upload, 422 bad part number, 413 over [`PART_SIZE`], 400 `checksum_mismatch`.
    pub async fn upload_part(
        &self,
        uploads: &dyn UploadStore,
        user: UserId,
        id: &str,
        number: u16,
        checksum: &Checksum,
        bytes: Vec<u8>,
    ) -> Result<PartStored, AppError> {
        let upload = self.open_upload(uploads, user, id).await?;
        if !(1..=MAX_PARTS).contains(&number) {
            return Err(AppError::field(
                "part_number",
                format!("must be from 1 to {MAX_PARTS}"),
            ));
        }
        if bytes.len() as u64 > PART_SIZE {
            return Err(AppError::PayloadTooLarge { limit: PART_SIZE });
        }
        if !checksum.matches(&bytes) {
            return Err(AppError::ChecksumMismatch);
        }
        let size = bytes.len() as u64;
        let etag = self
            .blobs
            .part(&upload.r2_key, &upload.r2_upload_id, number, bytes)
            .await?;
        uploads
            .put_part(id, &Part { number, etag, size }, checksum)
            .await?;
        Ok(PartStored {
            ok: true,
            part_number: number,
        })
    }

    /// Assembles the backup and records it.
    ///
    /// # Errors
    /// 404, 409 for missing or uneven parts, 403 quota, 400 `checksum_mismatch` (the assembled
    /// object is deleted).
    pub async fn complete_upload(
        &self,
        uploads: &dyn UploadStore,
        user: UserId,
        tier: Tier,
        id: &str,
        h: BackupHeaders,
    ) -> Result<BackupMetadata, AppError> {
        let upload = self.open_upload(uploads, user, id).await?;
        let parts = uploads.parts(id).await?;
        let numbered = parts
            .iter()
            .enumerate()
            .all(|(i, p)| usize::from(p.number) == i + 1);
        let even = parts
            .split_last()
            .is_some_and(|(_, rest)| rest.iter().all(|p| p.size == PART_SIZE));
        if parts.is_empty() || !numbered || !even {
            // The request is fine; the upload is not ready: a state conflict.
            return Err(AppError::Conflict(
                "the upload's parts are missing, have gaps, or are uneven (each but the last must be part_size bytes)",
            ));
        }
        let size: u64 = parts.iter().map(|p| p.size).sum();
        self.make_room(user, tier, size, h.prune_oldest).await?;
        self.blobs
            .finish(&upload.r2_key, &upload.r2_upload_id, &parts)
            .await?;
        uploads.delete(id).await?;
        let verified = self.blobs.digest(&upload.r2_key).await?;
        if verified
            .as_ref()
            .is_none_or(|(sum, n)| sum != &h.checksum || *n != size)
        {
            let _ = self.blobs.delete(&upload.r2_key).await;
            return Err(AppError::ChecksumMismatch);
        }
        let chunks = u32::try_from(parts.len()).unwrap_or(u32::MAX);
        self.record(user, upload.r2_key, upload.id, &h, size, chunks)
            .await
    }

    /// Abandons an upload.
    ///
    /// # Errors
    /// 404 for an unknown upload.
    pub async fn abort_upload(
        &self,
        uploads: &dyn UploadStore,
        user: UserId,
        id: &str,
    ) -> Result<(), AppError> {
        let upload = uploads.get(user, id).await?.ok_or(AppError::NotFound)?;
        let _ = self.blobs.abort(&upload.r2_key, &upload.r2_upload_id).await;
        uploads.delete(id).await?;
        Ok(())
    }

    /// Aborts every upload past its expiry; returns how many.
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn clean_up_uploads(&self, uploads: &dyn UploadStore) -> Result<usize, AppError> {
        let expired = uploads.expired(self.clock.now_ms()).await?;
        for u in &expired {
            let _ = self.blobs.abort(&u.r2_key, &u.r2_upload_id).await;
            uploads.delete(&u.id).await?;
        }
        if !expired.is_empty() {
            tracing::info!(count = expired.len(), "abandoned multipart uploads aborted");
        }
        Ok(expired.len())
    }
}
