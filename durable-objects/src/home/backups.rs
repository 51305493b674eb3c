//! Backups and multipart uploads: metadata and backup usage.
//!
//! Backup usage counts stored backups **and the parts of open uploads**, so bytes parked in an
//! unfinished upload are never free storage. A single backup is reserved ([`ReserveBackup`]),
//! stored and verified by the worker, then committed ([`CommitBackup`]); only the commit prunes
//! (with `prune`), and only when pruning can make room — so a corrupt or refused upload never
//! costs the user a backup. Uploads: at most [`MAX_OPEN_UPLOADS`] open per user; each part is
//! reserved (gate and quota) before the worker uploads it and committed after.

use serde::{Deserialize, Serialize};
use shared::backup::multipart::{
    Part, PartStored, UploadStarted, MAX_OPEN_UPLOADS, MAX_PARTS, PART_SIZE, UPLOAD_TTL_MS,
};
use shared::backup::{BackupMetadata, BackupRow};
use shared::home::ops::{
    Assembly, BackupCommitted, BackupFacts, CommitBackup, CommitPart, CommitUpload, Deleted,
    PartSlot, Reservation, ReserveBackup, ReservePart, UploadOpened, UploadRef,
};
use shared::tiers::{check_feature, Feature};
use shared::{AppError, FieldError};

use super::sql::{Row, Sql, SqlError};
use super::{new_id, store, Caller, Home};

/// Usage counter of backups and open uploads' parts.
pub(super) const BACKUP: &str = "backup";

const COLUMNS: &str = "id, r2_key, version, timestamp, checksum, chunk_count, size, created_at";

/// A backup or a part waiting for its bytes.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum PendingBackup {
    Backup {
        id: String,
        key: String,
        size: u64,
    },
    Part {
        upload: String,
        number: u16,
        size: u64,
        checksum: String,
    },
}

/// An upload as stored.
struct UploadRow {
    key: String,
    r2_upload_id: Option<String>,
    state: String,
    expires_at: i64,
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl<S: Sql> Home<'_, S> {
    fn backup_row(&self, r: &Row) -> BackupRow {
        BackupRow {
            user_id: self.user,
            r2_key: r.text(1),
            meta: BackupMetadata {
                id: r.text(0),
                version: r.int(2),
                timestamp: r.int(3),
                checksum: r.text(4),
                chunk_count: u32::try_from(r.int(5)).unwrap_or(1),
                size_bytes: r.uint(6),
                created_at: r.int(7),
            },
        }
    }

    fn backups(&self) -> Result<Vec<BackupRow>, AppError> {
        Ok(self
            .sql
            .exec(
                &format!("SELECT {COLUMNS} FROM backups ORDER BY created_at DESC, rowid DESC"),
                &[],
            )
            .map_err(store)?
            .iter()
            .map(|r| self.backup_row(r))
            .collect())
    }

    pub(super) fn reserve_backup(
        &self,
        c: &Caller,
        op: &ReserveBackup,
    ) -> Result<Reservation, AppError> {
        check_feature(c.principal.tier, Feature::Backup)?;
        if let Some(limit) = self.backup_limit(c.principal.tier) {
            let used = self.used(BACKUP).map_err(store)?;
            let reserved = self.reserved(BACKUP).map_err(store)?;
            // With pruning allowed, every stored backup may go to make room.
            let prunable = if op.prune {
                self.backups()?.iter().map(|b| b.meta.size_bytes).sum()
            } else {
                0
            };
            let least = used.saturating_sub(prunable);
            if least.saturating_add(reserved).saturating_add(op.size) > limit {
                return Err(AppError::QuotaExceeded { used, limit });
            }
        }
        let id = new_id(self.rng);
        let key = format!("{}/{}/{id}", self.user, op.timestamp);
        let pending = PendingBackup::Backup {
            id: id.clone(),
            key: key.clone(),
            size: op.size,
        };
        let reservation = self.reserve(BACKUP, op.size, &pending, c.now)?;
        Ok(Reservation {
            reservation,
            id,
            key,
        })
    }

    pub(super) fn commit_backup(
        &self,
        c: &Caller,
        op: &CommitBackup,
    ) -> Result<BackupCommitted, AppError> {
        let PendingBackup::Backup { id, key, size } = self.take(&op.reservation)? else {
            return Err(AppError::internal(
                "a part's reservation committed as a backup",
            ));
        };
        self.record_backup(c, id, &key, size, &op.facts, 1)
    }

    /// Prunes (when needed and allowed, and only if that makes room) and records a verified
    /// backup of `size` bytes whose bytes are at `key`.
    fn record_backup(
        &self,
        c: &Caller,
        id: String,
        key: &str,
        size: u64,
        facts: &BackupFacts,
        chunks: u32,
    ) -> Result<BackupCommitted, AppError> {
        let mut pruned_keys = Vec::new();
        if let Some(limit) = self.backup_limit(c.principal.tier) {
            let mut used = self.used(BACKUP).map_err(store)?;
            if used.saturating_add(size) > limit {
                let mut oldest_first = self.backups()?;
                oldest_first.reverse();
                let prunable: u64 = oldest_first.iter().map(|b| b.meta.size_bytes).sum();
                if !facts.prune || used.saturating_sub(prunable).saturating_add(size) > limit {
                    return Err(AppError::QuotaExceeded { used, limit });
                }
                for old in oldest_first {
                    if used.saturating_add(size) <= limit {
                        break;
                    }
                    self.forget_backup(&old).map_err(store)?;
                    used = used.saturating_sub(old.meta.size_bytes);
                    tracing::info!(backup = %old.meta.id, "oldest backup pruned on request");
                    pruned_keys.push(old.r2_key);
                }
            }
        }
        let meta = BackupMetadata {
            id,
            version: facts.version,
            timestamp: facts.timestamp,
            checksum: facts.checksum.clone(),
            chunk_count: chunks,
            size_bytes: size,
            created_at: c.now,
        };
        self.sql
            .exec(
                &format!("INSERT INTO backups ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                &[
                    meta.id.as_str().into(),
                    key.into(),
                    meta.version.into(),
                    meta.timestamp.into(),
                    meta.checksum.as_str().into(),
                    chunks.into(),
                    size.into(),
                    c.now.into(),
                ],
            )
            .map_err(store)?;
        self.add_used(BACKUP, signed(size)).map_err(store)?;
        self.notice("backup", format!("{}.{}", meta.created_at, meta.id));
        Ok(BackupCommitted { meta, pruned_keys })
    }

    fn forget_backup(&self, row: &BackupRow) -> Result<(), SqlError> {
        self.sql.exec(
            "DELETE FROM backups WHERE id = ?",
            &[row.meta.id.as_str().into()],
        )?;
        self.add_used(BACKUP, -signed(row.meta.size_bytes))
    }

    pub(super) fn latest_backup(&self) -> Result<BackupRow, AppError> {
        self.backups()?.into_iter().next().ok_or(AppError::NotFound)
    }

    pub(super) fn backup_history(&self) -> Result<Vec<BackupMetadata>, AppError> {
        Ok(self.backups()?.into_iter().map(|b| b.meta).collect())
    }

    pub(super) fn delete_backup(&self, c: &Caller, id: &str) -> Result<Deleted, AppError> {
        let row = self
            .sql
            .one(
                &format!("SELECT {COLUMNS} FROM backups WHERE id = ?"),
                &[id.into()],
            )
            .map_err(store)?
            .map(|r| self.backup_row(&r))
            .ok_or(AppError::NotFound)?;
        self.forget_backup(&row).map_err(store)?;
        self.notice("backup", format!("{}.{}", c.now, row.meta.id));
        Ok(Deleted { key: row.r2_key })
    }

    // ---- multipart uploads ------------------------------------------------------------------

    fn upload(&self, id: &str) -> Result<Option<UploadRow>, AppError> {
        Ok(self
            .sql
            .one(
                "SELECT r2_key, r2_upload_id, state, expires_at FROM uploads WHERE id = ?",
                &[id.into()],
            )
            .map_err(store)?
            .map(|r| UploadRow {
                key: r.text(0),
                r2_upload_id: r.opt_text(1),
                state: r.text(2),
                expires_at: r.int(3),
            }))
    }

    /// The upload `id` if it may take parts (open, not expired).
    fn open_upload(&self, id: &str, now: i64) -> Result<UploadRow, AppError> {
        self.upload(id)?
            .filter(|u| u.state == "open" && u.expires_at > now && u.r2_upload_id.is_some())
            .ok_or(AppError::NotFound)
    }

    fn parts(&self, upload: &str) -> Result<Vec<Part>, AppError> {
        Ok(self
            .sql
            .exec(
                "SELECT number, etag, size FROM parts WHERE upload_id = ? ORDER BY number",
                &[upload.into()],
            )
            .map_err(store)?
            .iter()
            .map(|r| Part {
                number: u16::try_from(r.int(0)).unwrap_or(0),
                etag: r.text(1),
                size: r.uint(2),
            })
            .collect())
    }

    pub(super) fn begin_upload(&self, c: &Caller) -> Result<Reservation, AppError> {
        check_feature(c.principal.tier, Feature::Backup)?;
        let open = self
            .sql
            .one(
                "SELECT COUNT(*) FROM uploads WHERE expires_at > ?",
                &[c.now.into()],
            )
            .map_err(store)?
            .map_or(0, |r| r.uint(0));
        if open >= MAX_OPEN_UPLOADS {
            return Err(AppError::Conflict(
                "4 uploads are open already: complete or abort one first",
            ));
        }
        let id = new_id(self.rng);
        let key = format!("{}/multipart/{id}", self.user);
        self.sql
            .exec(
                "INSERT INTO uploads (id, r2_key, r2_upload_id, state, created_at, expires_at) \
                 VALUES (?, ?, NULL, 'pending', ?, ?)",
                &[
                    id.as_str().into(),
                    key.as_str().into(),
                    c.now.into(),
                    (c.now + UPLOAD_TTL_MS).into(),
                ],
            )
            .map_err(store)?;
        Ok(Reservation {
            reservation: id.clone(),
            id,
            key,
        })
    }

    pub(super) fn upload_opened(
        &self,
        c: &Caller,
        op: &UploadOpened,
    ) -> Result<UploadStarted, AppError> {
        let upload = self
            .upload(&op.upload)?
            .filter(|u| u.state == "pending")
            .ok_or(AppError::NotFound)?;
        self.sql
            .exec(
                "UPDATE uploads SET r2_upload_id = ?, state = 'open' WHERE id = ?",
                &[op.r2_upload_id.as_str().into(), op.upload.as_str().into()],
            )
            .map_err(store)?;
        tracing::info!(upload = %op.upload, at = c.now, "multipart backup started");
        Ok(UploadStarted {
            upload_id: op.upload.clone(),
            part_size: PART_SIZE,
            expires_at: upload.expires_at,
        })
    }

    fn part_size(&self, upload: &str, number: u16) -> Result<u64, AppError> {
        Ok(self
            .sql
            .one(
                "SELECT size FROM parts WHERE upload_id = ? AND number = ?",
                &[upload.into(), u32::from(number).into()],
            )
            .map_err(store)?
            .map_or(0, |r| r.uint(0)))
    }

    pub(super) fn reserve_part(&self, c: &Caller, op: &ReservePart) -> Result<PartSlot, AppError> {
        // A downgraded user stores no more parts.
        check_feature(c.principal.tier, Feature::Backup)?;
        let upload = self.open_upload(&op.upload, c.now)?;
        if !(1..=MAX_PARTS).contains(&op.number) {
            return Err(AppError::Validation(vec![FieldError::new(
                "part_number",
                format!("must be from 1 to {MAX_PARTS}"),
            )]));
        }
        if op.size > PART_SIZE {
            return Err(AppError::PayloadTooLarge { limit: PART_SIZE });
        }
        let growth = op
            .size
            .saturating_sub(self.part_size(&op.upload, op.number)?);
        self.room(BACKUP, self.backup_limit(c.principal.tier), growth)?;
        let pending = PendingBackup::Part {
            upload: op.upload.clone(),
            number: op.number,
            size: op.size,
            checksum: op.checksum.clone(),
        };
        let reservation = self.reserve(BACKUP, growth, &pending, c.now)?;
        Ok(PartSlot {
            reservation,
            key: upload.key,
            r2_upload_id: upload.r2_upload_id.unwrap_or_default(),
        })
    }

    pub(super) fn commit_part(&self, c: &Caller, op: &CommitPart) -> Result<PartStored, AppError> {
        let PendingBackup::Part {
            upload,
            number,
            size,
            checksum,
        } = self.take(&op.reservation)?
        else {
            return Err(AppError::internal(
                "a backup's reservation committed as a part",
            ));
        };
        self.open_upload(&upload, c.now)?;
        let existing = self.part_size(&upload, number)?;
        let delta = signed(size) - signed(existing);
        if let Some(limit) = self.backup_limit(c.principal.tier) {
            let used = self.used(BACKUP).map_err(store)?;
            if delta > 0 && used.saturating_add(size - existing) > limit {
                return Err(AppError::QuotaExceeded { used, limit });
            }
        }
        self.sql
            .exec(
                "INSERT INTO parts (upload_id, number, etag, size, checksum) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (upload_id, number) DO UPDATE SET etag = excluded.etag, \
                   size = excluded.size, checksum = excluded.checksum",
                &[
                    upload.as_str().into(),
                    u32::from(number).into(),
                    op.etag.as_str().into(),
                    size.into(),
                    checksum.into(),
                ],
            )
            .map_err(store)?;
        self.add_used(BACKUP, delta).map_err(store)?;
        Ok(PartStored {
            ok: true,
            part_number: number,
        })
    }

    pub(super) fn assemble(&self, c: &Caller, upload_id: &str) -> Result<Assembly, AppError> {
        let upload = self
            .upload(upload_id)?
            .filter(|u| {
                matches!(u.state.as_str(), "open" | "assembling")
                    && u.expires_at > c.now
                    && u.r2_upload_id.is_some()
            })
            .ok_or(AppError::NotFound)?;
        let parts = self.parts(upload_id)?;
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
        self.sql
            .exec(
                "UPDATE uploads SET state = 'assembling' WHERE id = ?",
                &[upload_id.into()],
            )
            .map_err(store)?;
        let size = parts.iter().map(|p| p.size).sum();
        Ok(Assembly {
            key: upload.key,
            r2_upload_id: upload.r2_upload_id.unwrap_or_default(),
            parts,
            size,
        })
    }

    pub(super) fn commit_upload(
        &self,
        c: &Caller,
        op: &CommitUpload,
    ) -> Result<BackupCommitted, AppError> {
        let upload = self
            .upload(&op.upload)?
            .filter(|u| u.state == "assembling")
            .ok_or(AppError::NotFound)?;
        let parts = self.parts(&op.upload)?;
        let size: u64 = parts.iter().map(|p| p.size).sum();
        // The parts turn into the backup: their bytes leave the open-upload count first.
        self.forget_upload(&op.upload, size).map_err(store)?;
        let chunks = u32::try_from(parts.len()).unwrap_or(u32::MAX);
        // A refusal here (the tier shrank meanwhile) leaves nothing behind: the worker deletes
        // the assembled object.
        self.record_backup(c, op.upload.clone(), &upload.key, size, &op.facts, chunks)
    }

    fn forget_upload(&self, upload: &str, parts_size: u64) -> Result<(), SqlError> {
        self.sql
            .exec("DELETE FROM parts WHERE upload_id = ?", &[upload.into()])?;
        self.sql
            .exec("DELETE FROM uploads WHERE id = ?", &[upload.into()])?;
        self.add_used(BACKUP, -signed(parts_size))
    }

    pub(super) fn drop_upload(&self, upload_id: &str) -> Result<UploadRef, AppError> {
        let upload = self.upload(upload_id)?.ok_or(AppError::NotFound)?;
        let size: u64 = self.parts(upload_id)?.iter().map(|p| p.size).sum();
        self.forget_upload(upload_id, size).map_err(store)?;
        Ok(UploadRef {
            key: upload.key,
            r2_upload_id: upload.r2_upload_id,
        })
    }

    /// Forgets every upload past its expiry; returns them so the object aborts them in R2.
    ///
    /// # Errors
    /// Storage failures.
    pub fn expire_uploads(&self, now: i64) -> Result<Vec<UploadRef>, AppError> {
        let ids: Vec<String> = self
            .sql
            .exec(
                "SELECT id FROM uploads WHERE expires_at <= ?",
                &[now.into()],
            )
            .map_err(store)?
            .iter()
            .map(|r| r.text(0))
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.drop_upload(&id)?);
        }
        if !out.is_empty() {
            tracing::info!(count = out.len(), "abandoned multipart uploads aborted");
        }
        Ok(out)
    }

    /// When the next upload expires, if any is open (the object's alarm).
    ///
    /// # Errors
    /// Storage failures.
    pub fn next_upload_expiry(&self) -> Result<Option<i64>, SqlError> {
        Ok(self
            .sql
            .one("SELECT MIN(expires_at) FROM uploads", &[])?
            .and_then(|r| r.opt_int(0)))
    }
}
