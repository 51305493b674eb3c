//! Multipart backups, for backups larger than one request: begin (at most
//! [`MAX_OPEN_UPLOADS`] open per user), upload numbered parts (each verified against its own
//! SHA-256 in the worker, memory bounded by the part size, and reserved in the home first: the
//! gate, and the quota, which counts open parts as backup bytes), complete with the whole
//! backup's metadata (the assembled object is hashed again, streaming, and refused on a
//! mismatch), or abort. Uploads not completed within [`UPLOAD_TTL_MS`] are aborted by the
//! user's home itself (its alarm).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{BackupHeaders, BackupMetadata, BackupService};
use crate::error::{AppError, FieldError};
use crate::home;
use crate::home::ops::{
    AssembleUpload, BeginUpload, CommitPart, CommitUpload, DropUpload, Release, ReservePart,
    UploadOpened,
};
use crate::ports::StoreError;
use crate::storage::{BlobStore, Checksum};

/// Size of every part but the last (R2 wants equal parts of at least 5 MiB).
pub const PART_SIZE: u64 = 8 * 1024 * 1024;
/// Most parts (R2's limit).
pub const MAX_PARTS: u16 = 10_000;
/// How long an upload may stay open (ms).
pub const UPLOAD_TTL_MS: i64 = 24 * 3_600_000;
/// Uploads one user may have open at once (409 `conflict` beyond).
pub const MAX_OPEN_UPLOADS: u64 = 4;

/// A stored part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Starts a multipart backup: a slot in the home (the gate, at most [`MAX_OPEN_UPLOADS`]
    /// open), then the R2 upload.
    ///
    /// # Errors
    /// 403 `tier_required` without backups; 409 with four uploads open.
    pub async fn begin_upload(&self) -> Result<UploadStarted, AppError> {
        let slot = home::call(self.home, &BeginUpload {}).await?;
        let r2_upload_id = match self.blobs.begin(&slot.key).await {
            Ok(id) => id,
            Err(e) => {
                let _ = home::call(self.home, &DropUpload { upload: slot.id }).await;
                return Err(e.into());
            }
        };
        let started = home::call(
            self.home,
            &UploadOpened {
                upload: slot.id,
                r2_upload_id,
            },
        )
        .await?;
        tracing::info!(upload = %started.upload_id, "multipart backup started");
        Ok(started)
    }

    /// Stores one part after checking it against its checksum; the home reserves its bytes
    /// first (gate and quota: open parts count as backup bytes).
    ///
    /// # Errors
    /// 404 unknown upload, 422 bad part number, 413 over [`PART_SIZE`], 400 `checksum_mismatch`,
    /// 403 gate or quota.
    pub async fn upload_part(
        &self,
        id: &str,
        number: u16,
        checksum: &Checksum,
        bytes: Vec<u8>,
    ) -> Result<PartStored, AppError> {
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
        let slot = home::call(
            self.home,
            &ReservePart {
                upload: id.to_owned(),
                number,
                size: bytes.len() as u64,
                checksum: checksum.as_str().to_owned(),
            },
        )
        .await?;
        let etag = match self
            .blobs
            .part(&slot.key, &slot.r2_upload_id, number, bytes)
            .await
        {
            Ok(etag) => etag,
            Err(e) => {
                let _ = home::call(
                    self.home,
                    &Release {
                        reservation: slot.reservation,
                    },
                )
                .await;
                return Err(e.into());
            }
        };
        home::call(
            self.home,
            &CommitPart {
                reservation: slot.reservation,
                etag,
            },
        )
        .await
    }

    /// Assembles the backup, verifies the whole object, and records it (pruning, when asked,
    /// only now).
    ///
    /// # Errors
    /// 404, 409 for missing or uneven parts, 403 quota, 400 `checksum_mismatch` (the assembled
    /// object and the upload are dropped).
    pub async fn complete_upload(
        &self,
        id: &str,
        h: BackupHeaders,
    ) -> Result<BackupMetadata, AppError> {
        let asm = home::call(
            self.home,
            &AssembleUpload {
                upload: id.to_owned(),
            },
        )
        .await?;
        self.blobs
            .finish(&asm.key, &asm.r2_upload_id, &asm.parts)
            .await?;
        let verified = self.blobs.digest(&asm.key).await?;
        if verified
            .as_ref()
            .is_none_or(|(sum, n)| sum != &h.checksum || *n != asm.size)
        {
            let _ = home::call(
                self.home,
                &DropUpload {
                    upload: id.to_owned(),
                },
            )
            .await;
            self.forget(std::slice::from_ref(&asm.key)).await;
            return Err(AppError::ChecksumMismatch);
        }
        let committed = home::call(
            self.home,
            &CommitUpload {
                upload: id.to_owned(),
                facts: h.facts(),
            },
        )
        .await;
        match committed {
            Ok(done) => {
                self.forget(&done.pruned_keys).await;
                tracing::info!(backup = %done.meta.id, size = asm.size, chunks = asm.parts.len(), "multipart backup stored");
                Ok(done.meta)
            }
            Err(e) => {
                self.forget(&[asm.key]).await;
                Err(e)
            }
        }
    }

    /// Abandons an upload.
    ///
    /// # Errors
    /// 404 for an unknown upload.
    pub async fn abort_upload(&self, id: &str) -> Result<(), AppError> {
        let dropped = home::call(
            self.home,
            &DropUpload {
                upload: id.to_owned(),
            },
        )
        .await?;
        if let Some(r2) = &dropped.r2_upload_id {
            let _ = self.blobs.abort(&dropped.key, r2).await;
        }
        Ok(())
    }
}
