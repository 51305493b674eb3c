//! Backups: whole-database snapshots the desktop app encrypts, stored as opaque bytes in R2
//! under `{user_id}/{timestamp}/{backup_id}` with a `backup_metadata` row in D1.
//!
//! Rules: backups need the `backup_gb` feature (pro and above); the user's total backup bytes
//! stay within the tier's limit (pro 5 GB, power 25 GB, team unlimited), checked before the
//! upload; when a new backup would exceed it, the oldest backups are deleted to make room
//! **only** if the request says `X-Backup-Prune: oldest`. The blob is stored (and verified by
//! R2) before its row is written, and a row is deleted before its blob, so a crash never leaves
//! a row without bytes, and an unreferenced blob never counts.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{Tier, UserId};
use crate::error::{AppError, FieldError};
use crate::ports::{new_uuid, Clock, Random, StoreError};
use crate::storage::{BlobStore, Checksum, Payload};
use crate::tiers::{check_feature, features, Feature, GB};

/// Largest backup in one request (Workers accept 100 MB bodies; larger ones go multipart).
pub const MAX_SINGLE_BACKUP_BYTES: u64 = 95 * 1024 * 1024;

/// A backup's metadata (never its bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupMetadata {
    /// Backup id (UUID).
    pub id: String,
    /// The client's backup format version.
    pub version: i64,
    /// The client's backup time (epoch ms).
    pub timestamp: i64,
    /// SHA-256 of the bytes.
    pub checksum: String,
    /// Parts it was uploaded in.
    pub chunk_count: u32,
    /// Size in bytes.
    pub size_bytes: u64,
    /// When it was stored (epoch ms).
    pub created_at: i64,
}

/// `PUT /backup`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupStored {
    /// Always true.
    pub ok: bool,
    /// The new backup's id.
    pub id: String,
}

/// A stored backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRow {
    /// Owner.
    pub user_id: UserId,
    /// Where the bytes are.
    pub r2_key: String,
    /// What the API shows.
    pub meta: BackupMetadata,
}

/// The client's description of a backup (from `X-Backup-*` headers or a JSON body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupHeaders {
    /// Format version (≥ 1).
    pub version: i64,
    /// Backup time (epoch ms, ≥ 0).
    pub timestamp: i64,
    /// Checksum of the whole backup.
    pub checksum: Checksum,
    /// Whether the oldest backups may be deleted to make room.
    pub prune_oldest: bool,
}

impl BackupHeaders {
    /// Parses the header values (each `None` when absent).
    ///
    /// # Errors
    /// 422 naming every invalid header.
    pub fn parse(
        version: Option<&str>,
        timestamp: Option<&str>,
        checksum: Option<&str>,
        prune: Option<&str>,
    ) -> Result<Self, AppError> {
        let int = |v: Option<&str>, name: &str, min: i64| {
            v.and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n >= min)
                .ok_or_else(|| FieldError::new(name, format!("must be a whole number from {min}")))
        };
        let version = int(version, "X-Backup-Version", 1);
        let timestamp = int(timestamp, "X-Backup-Timestamp", 0);
        let checksum = Checksum::parse(checksum.unwrap_or(""), "X-Backup-Checksum");
        let prune = match prune.map(str::trim) {
            None | Some("") => Ok(false),
            Some("oldest") => Ok(true),
            Some(_) => Err(FieldError::new(
                "X-Backup-Prune",
                "must be `oldest` when present",
            )),
        };
        match (version, timestamp, checksum, prune) {
            (Ok(version), Ok(timestamp), Ok(checksum), Ok(prune_oldest)) => Ok(Self {
                version,
                timestamp,
                checksum,
                prune_oldest,
            }),
            (v, t, c, p) => Err(AppError::Validation(
                [v.err(), t.err(), c.err(), p.err()]
                    .into_iter()
                    .flatten()
                    .collect(),
            )),
        }
    }
}

/// Backup metadata (D1 `backup_metadata`).
#[async_trait(?Send)]
pub trait BackupStore {
    /// Inserts a row.
    async fn insert(&self, row: &BackupRow) -> Result<(), StoreError>;
    /// The user's backups, newest first.
    async fn list(&self, user: UserId) -> Result<Vec<BackupRow>, StoreError>;
    /// The user's backup with this id.
    async fn get(&self, user: UserId, id: &str) -> Result<Option<BackupRow>, StoreError>;
    /// Deletes the row; returns whether it existed.
    async fn delete(&self, user: UserId, id: &str) -> Result<bool, StoreError>;
}

/// Backups over their ports.
pub struct BackupService<'a, B: BlobStore> {
    /// Metadata.
    pub backups: &'a dyn BackupStore,
    /// Bytes.
    pub blobs: &'a B,
    /// Time.
    pub clock: &'a dyn Clock,
    /// Ids.
    pub rng: &'a dyn Random,
}

/// The byte limit of a tier's backups (`None`: unlimited).
fn limit_of(tier: Tier) -> Option<u64> {
    u64::try_from(features(tier).backup_gb)
        .ok()
        .map(|gb| gb.saturating_mul(GB))
}

impl<B: BlobStore> BackupService<'_, B>
where
    B::Body: From<Vec<u8>>,
{
    /// Makes room for `adding` bytes: refuses, or (if allowed) deletes the oldest backups.
    ///
    /// # Errors
    /// 403 `tier_required` without backups; 403 `quota_exceeded` when it cannot fit.
    pub async fn make_room(
        &self,
        user: UserId,
        tier: Tier,
        adding: u64,
        prune_oldest: bool,
    ) -> Result<(), AppError> {
        check_feature(tier, Feature::Backup)?;
        let Some(limit) = limit_of(tier) else {
            return Ok(());
        };
        if adding > limit {
            let used = self.used(user).await?;
            return Err(AppError::QuotaExceeded { used, limit });
        }
        let mut existing = self.backups.list(user).await?;
        let mut used: u64 = existing.iter().map(|b| b.meta.size_bytes).sum();
        while used.saturating_add(adding) > limit {
            let Some(oldest) = existing.pop().filter(|_| prune_oldest) else {
                return Err(AppError::QuotaExceeded { used, limit });
            };
            self.remove(&oldest).await?;
            used = used.saturating_sub(oldest.meta.size_bytes);
            tracing::info!(user_id = %user, backup = %oldest.meta.id, "oldest backup pruned on request");
        }
        Ok(())
    }

    async fn used(&self, user: UserId) -> Result<u64, AppError> {
        Ok(self
            .backups
            .list(user)
            .await?
            .iter()
            .map(|b| b.meta.size_bytes)
            .sum())
    }

    async fn remove(&self, row: &BackupRow) -> Result<(), AppError> {
        if self.backups.delete(row.user_id, &row.meta.id).await? {
            let _ = self.blobs.delete(&row.r2_key).await;
        }
        Ok(())
    }

    /// Stores a backup sent in one request.
    ///
    /// # Errors
    /// 403 gates and quota, 413 over [`MAX_SINGLE_BACKUP_BYTES`], 400 `checksum_mismatch`.
    pub async fn put(
        &self,
        user: UserId,
        tier: Tier,
        h: BackupHeaders,
        payload: Payload<B::Body>,
    ) -> Result<BackupMetadata, AppError> {
        let size = match &payload {
            Payload::Bytes(b) => b.len() as u64,
            Payload::Stream(_, n) => *n,
        };
        if size > MAX_SINGLE_BACKUP_BYTES {
            return Err(AppError::PayloadTooLarge {
                limit: MAX_SINGLE_BACKUP_BYTES,
            });
        }
        self.make_room(user, tier, size, h.prune_oldest).await?;
        let id = new_uuid(self.rng).to_string();
        let key = format!("{user}/{}/{id}", h.timestamp);
        let body = match payload {
            Payload::Bytes(bytes) if !h.checksum.matches(&bytes) => {
                return Err(AppError::ChecksumMismatch)
            }
            Payload::Bytes(bytes) => B::Body::from(bytes),
            Payload::Stream(body, _) => body,
        };
        if !self.blobs.put(&key, body, &h.checksum).await? {
            return Err(AppError::ChecksumMismatch);
        }
        self.record(user, key, id, &h, size, 1).await
    }

    /// Writes the row of a stored blob (after a single or a multipart upload).
    ///
    /// # Errors
    /// Storage failures (the blob is then removed).
    pub async fn record(
        &self,
        user: UserId,
        key: String,
        id: String,
        h: &BackupHeaders,
        size: u64,
        chunks: u32,
    ) -> Result<BackupMetadata, AppError> {
        let row = BackupRow {
            user_id: user,
            r2_key: key,
            meta: BackupMetadata {
                id,
                version: h.version,
                timestamp: h.timestamp,
                checksum: h.checksum.as_str().to_owned(),
                chunk_count: chunks,
                size_bytes: size,
                created_at: self.clock.now_ms(),
            },
        };
        if let Err(e) = self.backups.insert(&row).await {
            let _ = self.blobs.delete(&row.r2_key).await;
            return Err(e.into());
        }
        tracing::info!(user_id = %user, backup = %row.meta.id, size, chunks, "backup stored");
        Ok(row.meta)
    }

    /// The newest backup.
    ///
    /// # Errors
    /// 404 when there is none.
    pub async fn latest(&self, user: UserId) -> Result<BackupRow, AppError> {
        self.backups
            .list(user)
            .await?
            .into_iter()
            .next()
            .ok_or(AppError::NotFound)
    }

    /// Every backup's metadata, newest first.
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn history(&self, user: UserId) -> Result<Vec<BackupMetadata>, AppError> {
        Ok(self
            .backups
            .list(user)
            .await?
            .into_iter()
            .map(|b| b.meta)
            .collect())
    }

    /// Deletes one backup.
    ///
    /// # Errors
    /// 404 for a missing or foreign backup.
    pub async fn delete(&self, user: UserId, id: &str) -> Result<(), AppError> {
        let row = self
            .backups
            .get(user, id)
            .await?
            .ok_or(AppError::NotFound)?;
        self.remove(&row).await
    }
}

pub mod multipart;

#[cfg(test)]
mod tests;
