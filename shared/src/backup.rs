//! Backups: whole-database snapshots the desktop app encrypts, stored as opaque bytes in R2
//! under `{user_id}/{timestamp}/{backup_id}`, with their metadata in the user's home.
//!
//! Rules: backups need the `backup_gb` feature (pro and above); the user's backup bytes —
//! stored backups and the parts of open uploads — stay within the tier's limit (pro 5 GB,
//! power 25 GB, team unlimited), reserved before the upload; when a new backup would exceed
//! it, the oldest backups are deleted to make room **only** if the request says
//! `X-Backup-Prune: oldest`, and only once the new backup is stored and verified (a corrupt
//! upload never costs a backup). The blob is stored (and verified by R2) before its metadata,
//! and metadata is deleted before its blob, so a crash never leaves metadata without bytes, and
//! an unreferenced blob never counts.

use serde::{Deserialize, Serialize};

use crate::domain::UserId;
use crate::error::{AppError, FieldError};
use crate::home::ops::{
    BackupFacts, BackupHistory, CommitBackup, DeleteBackup, LatestBackup, Release, ReserveBackup,
};
use crate::home::{self, HomePort};
use crate::storage::{BlobStore, Checksum, Payload};

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// What the home records of a backup with these headers.
    pub fn facts(&self) -> BackupFacts {
        BackupFacts {
            version: self.version,
            timestamp: self.timestamp,
            checksum: self.checksum.as_str().to_owned(),
            prune: self.prune_oldest,
        }
    }

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

/// Backups over their ports: the user's home (metadata, quota, pruning) and the blobs.
pub struct BackupService<'a, B: BlobStore> {
    /// The user's home.
    pub home: &'a dyn HomePort,
    /// Bytes.
    pub blobs: &'a B,
}

impl<B: BlobStore> BackupService<'_, B>
where
    B::Body: From<Vec<u8>>,
{
    /// Deletes blobs the home no longer references (pruned or replaced backups); best effort.
    pub(crate) async fn forget(&self, keys: &[String]) {
        for key in keys {
            let _ = self.blobs.delete(key).await;
        }
    }

    /// Stores a backup sent in one request: reserve (gate, quota), store and verify, then
    /// commit — which alone may prune, once the new backup is known to be good.
    ///
    /// # Errors
    /// 403 gates and quota, 413 over [`MAX_SINGLE_BACKUP_BYTES`], 400 `checksum_mismatch`.
    pub async fn put(
        &self,
        h: BackupHeaders,
        payload: Payload<B::Body>,
    ) -> Result<BackupMetadata, AppError> {
        let size = payload.size();
        if size > MAX_SINGLE_BACKUP_BYTES {
            return Err(AppError::PayloadTooLarge {
                limit: MAX_SINGLE_BACKUP_BYTES,
            });
        }
        if let Payload::Bytes(bytes) = &payload {
            if !h.checksum.matches(bytes) {
                return Err(AppError::ChecksumMismatch);
            }
        }
        let reservation = home::call(
            self.home,
            &ReserveBackup {
                size,
                timestamp: h.timestamp,
                prune: h.prune_oldest,
            },
        )
        .await?;
        let body = match payload {
            Payload::Bytes(bytes) => B::Body::from(bytes),
            Payload::Stream(body, _) => body,
        };
        let stored = self.blobs.put(&reservation.key, body, &h.checksum).await;
        if !matches!(stored, Ok(true)) {
            let _ = home::call(
                self.home,
                &Release {
                    reservation: reservation.reservation,
                },
            )
            .await;
            return Err(match stored {
                Err(e) => e.into(),
                Ok(_) => AppError::ChecksumMismatch,
            });
        }
        let committed = home::call(
            self.home,
            &CommitBackup {
                reservation: reservation.reservation,
                facts: h.facts(),
            },
        )
        .await;
        match committed {
            Ok(done) => {
                self.forget(&done.pruned_keys).await;
                tracing::info!(backup = %done.meta.id, size, pruned = done.pruned_keys.len(), "backup stored");
                Ok(done.meta)
            }
            Err(e) => {
                self.forget(&[reservation.key]).await;
                Err(e)
            }
        }
    }

    /// The newest backup.
    ///
    /// # Errors
    /// 404 when there is none.
    pub async fn latest(&self) -> Result<BackupRow, AppError> {
        home::call(self.home, &LatestBackup {}).await
    }

    /// Every backup's metadata, newest first.
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn history(&self) -> Result<Vec<BackupMetadata>, AppError> {
        home::call(self.home, &BackupHistory {}).await
    }

    /// Deletes one backup.
    ///
    /// # Errors
    /// 404 for a missing or foreign backup.
    pub async fn delete(&self, id: &str) -> Result<(), AppError> {
        let deleted = home::call(self.home, &DeleteBackup { id: id.to_owned() }).await?;
        self.forget(&[deleted.key]).await;
        Ok(())
    }
}

pub mod multipart;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_parsed_and_every_bad_one_named() {
        let ok = BackupHeaders::parse(
            Some("2"),
            Some("1700000000000"),
            Some(&"a".repeat(64)),
            Some("oldest"),
        )
        .unwrap();
        assert!(ok.prune_oldest);
        assert_eq!(ok.facts().timestamp, 1_700_000_000_000);
        let e = BackupHeaders::parse(Some("0"), Some("x"), None, Some("newest")).unwrap_err();
        let AppError::Validation(fields) = e else {
            panic!()
        };
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "X-Backup-Version",
                "X-Backup-Timestamp",
                "X-Backup-Checksum",
                "X-Backup-Prune"
            ]
        );
    }
}
