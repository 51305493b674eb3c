//! Records: metadata, versions, tombstones and cloud-storage usage.
//!
//! A write is two calls around the worker's R2 upload: [`ReserveRecord`] (gate, `If-Match`,
//! quota, a fresh blob key) and [`CommitRecord`]. The commit applies to the record as it is
//! *then*: with `If-Match` the version must still be the one matched (else 412); without it the
//! last write wins — whatever other update committed in between, the commit goes through, so
//! an unconditional write never answers 409 for a race. A delete wins over an update racing it:
//! the update then finds the record gone (404) and never revives it. A delete is one call and
//! applies to whatever version is current unless `If-Match` says otherwise, so an unconditional
//! delete racing an update always succeeds.
//! Usage moves in the same call as the metadata, and a commit that would take usage past the
//! quota is refused (its blob is deleted by the worker).

use serde::{Deserialize, Serialize};
use shared::home::ops::{
    CommitRecord, DeleteRecord, Deleted, ListRecords, RecordCommitted, RecordPage, RecordTarget,
    Reservation, ReserveRecord,
};
use shared::storage::{
    if_match_allows, Cursor, RecordMeta, RecordRow, TableName, TOMBSTONE_TTL_MS,
};
use shared::tiers::{check_feature, Feature};
use shared::AppError;

use super::sql::{Row, Sql, SqlValue};
use super::{int, new_id, store, Caller, Home};

/// Usage counter of records and vectors.
pub(super) const CLOUD: &str = "cloud";

const COLUMNS: &str =
    "id, tbl, r2_key, checksum, size, version, created_at, updated_at, deleted_at";

/// A write waiting for its blob.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum PendingRecord {
    Create {
        id: String,
        table: String,
        key: String,
        checksum: String,
        size: u64,
    },
    Update {
        id: String,
        key: String,
        checksum: String,
        size: u64,
        /// The version `If-Match` matched, when it was sent.
        expect: Option<i64>,
    },
}

impl<S: Sql> Home<'_, S> {
    fn row(&self, r: &Row) -> RecordRow {
        RecordRow {
            id: r.text(0),
            user_id: self.user,
            table: r.text(1),
            r2_key: r.text(2),
            checksum: r.text(3),
            size_bytes: r.uint(4),
            version: r.int(5),
            created_at: r.int(6),
            updated_at: r.int(7),
            deleted_at: r.opt_int(8),
        }
    }

    /// The record `id`, tombstone or not.
    fn record(&self, id: &str) -> Result<Option<RecordRow>, AppError> {
        Ok(self
            .sql
            .one(
                &format!("SELECT {COLUMNS} FROM records WHERE id = ?"),
                &[id.into()],
            )
            .map_err(store)?
            .map(|r| self.row(&r)))
    }

    fn live(&self, id: &str) -> Result<RecordRow, AppError> {
        self.record(id)?
            .filter(|r| r.deleted_at.is_none())
            .ok_or(AppError::NotFound)
    }

    pub(super) fn reserve_record(
        &self,
        c: &Caller,
        op: &ReserveRecord,
    ) -> Result<Reservation, AppError> {
        check_feature(c.principal.tier, Feature::CloudStorage)?;
        let limit = self.cloud_limit(c.principal.tier);
        let user = self.user;
        match &op.target {
            RecordTarget::Create { table } => {
                let table =
                    TableName::parse(table, "table").map_err(|e| AppError::Validation(vec![e]))?;
                self.room(CLOUD, limit, op.size)?;
                let id = new_id(self.rng);
                let key = format!("{user}/{}/{id}", table.as_str());
                let pending = PendingRecord::Create {
                    id: id.clone(),
                    table: table.as_str().to_owned(),
                    key: key.clone(),
                    checksum: op.checksum.clone(),
                    size: op.size,
                };
                let reservation = self.reserve(CLOUD, op.size, &pending, c.now)?;
                Ok(Reservation {
                    reservation,
                    id,
                    key,
                })
            }
            RecordTarget::Update { id, if_match } => {
                let current = self.live(id)?;
                if !if_match_allows(if_match.as_deref(), &current.etag()) {
                    return Err(AppError::PreconditionFailed);
                }
                let growth = op.size.saturating_sub(current.size_bytes);
                self.room(CLOUD, limit, growth)?;
                // A key per write attempt: racing writers never overwrite (or, losing, delete)
                // each other's blobs.
                let key = format!(
                    "{user}/{}/{id}~{}",
                    current.table,
                    shared::ports::new_uuid(self.rng).simple()
                );
                let pending = PendingRecord::Update {
                    id: id.clone(),
                    key: key.clone(),
                    checksum: op.checksum.clone(),
                    size: op.size,
                    expect: if_match.as_ref().map(|_| current.version),
                };
                let reservation = self.reserve(CLOUD, growth, &pending, c.now)?;
                Ok(Reservation {
                    reservation,
                    id: id.clone(),
                    key,
                })
            }
        }
    }

    pub(super) fn commit_record(
        &self,
        c: &Caller,
        op: &CommitRecord,
    ) -> Result<RecordCommitted, AppError> {
        let (row, replaced_key) = match self.take::<PendingRecord>(&op.reservation)? {
            PendingRecord::Create {
                id,
                table,
                key,
                checksum,
                size,
            } => {
                let row = RecordRow {
                    id,
                    user_id: self.user,
                    table,
                    r2_key: key,
                    checksum,
                    size_bytes: size,
                    version: 1,
                    created_at: c.now,
                    updated_at: c.now,
                    deleted_at: None,
                };
                self.insert_record(c, &row)?;
                (row, None)
            }
            PendingRecord::Update {
                id,
                key,
                checksum,
                size,
                expect,
            } => self.update_record(c, &id, key, checksum, size, expect)?,
        };
        self.notice("record", cursor_of(&row));
        Ok(RecordCommitted { row, replaced_key })
    }

    /// Refuses a commit that would take usage past the quota by `adding` bytes.
    fn fits(&self, c: &Caller, adding: i64) -> Result<(), AppError> {
        let Some(limit) = self.cloud_limit(c.principal.tier) else {
            return Ok(());
        };
        let used = self.used(CLOUD).map_err(store)?;
        if adding > 0 && signed(used).saturating_add(adding) > signed(limit) {
            return Err(AppError::QuotaExceeded { used, limit });
        }
        Ok(())
    }

    fn insert_record(&self, c: &Caller, row: &RecordRow) -> Result<(), AppError> {
        self.fits(c, signed(row.size_bytes))?;
        self.sql
            .exec(
                &format!("INSERT INTO records ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)"),
                &[
                    row.id.as_str().into(),
                    row.table.as_str().into(),
                    row.r2_key.as_str().into(),
                    row.checksum.as_str().into(),
                    row.size_bytes.into(),
                    row.version.into(),
                    row.created_at.into(),
                    row.updated_at.into(),
                ],
            )
            .map_err(store)?;
        self.add_used(CLOUD, signed(row.size_bytes)).map_err(store)
    }

    /// Applies an update to the record as it is now; answers it and the blob it replaced.
    fn update_record(
        &self,
        c: &Caller,
        id: &str,
        key: String,
        checksum: String,
        size: u64,
        expect: Option<i64>,
    ) -> Result<(RecordRow, Option<String>), AppError> {
        let current = self.record(id)?.ok_or(AppError::NotFound)?;
        if let Some(v) = expect {
            if current.version != v || current.deleted_at.is_some() {
                return Err(AppError::PreconditionFailed);
            }
        }
        // A delete that committed first wins: an update never revives a deleted record.
        if current.deleted_at.is_some() {
            return Err(AppError::NotFound);
        }
        let delta = signed(size) - signed(current.size_bytes);
        self.fits(c, delta)?;
        let row = RecordRow {
            r2_key: key,
            checksum,
            size_bytes: size,
            version: current.version + 1,
            updated_at: c.now.max(current.updated_at + 1),
            deleted_at: None,
            ..current.clone()
        };
        self.sql
            .exec(
                "UPDATE records SET r2_key = ?, checksum = ?, size = ?, version = ?, \
                 updated_at = ?, deleted_at = NULL WHERE id = ?",
                &[
                    row.r2_key.as_str().into(),
                    row.checksum.as_str().into(),
                    size.into(),
                    row.version.into(),
                    row.updated_at.into(),
                    row.id.as_str().into(),
                ],
            )
            .map_err(store)?;
        self.add_used(CLOUD, delta).map_err(store)?;
        Ok((row, Some(current.r2_key)))
    }

    pub(super) fn get_record(&self, id: &str) -> Result<RecordRow, AppError> {
        self.live(id)
    }

    pub(super) fn delete_record(&self, c: &Caller, op: &DeleteRecord) -> Result<Deleted, AppError> {
        let current = self.live(&op.id)?;
        if !if_match_allows(op.if_match.as_deref(), &current.etag()) {
            return Err(AppError::PreconditionFailed);
        }
        let updated_at = c.now.max(current.updated_at + 1);
        self.sql
            .exec(
                "UPDATE records SET deleted_at = ?, updated_at = ?, version = version + 1 \
                 WHERE id = ?",
                &[c.now.into(), updated_at.into(), op.id.as_str().into()],
            )
            .map_err(store)?;
        self.add_used(CLOUD, -signed(current.size_bytes))
            .map_err(store)?;
        self.notice(
            "record",
            Cursor {
                u: updated_at,
                i: op.id.clone(),
            }
            .encode(),
        );
        Ok(Deleted {
            key: current.r2_key,
        })
    }

    pub(super) fn list_records(&self, c: &Caller, q: &ListRecords) -> Result<RecordPage, AppError> {
        let (after_u, after_i): (SqlValue, SqlValue) = q
            .after
            .as_ref()
            .map_or((SqlValue::Null, SqlValue::Null), |cur| {
                (cur.u.into(), cur.i.as_str().into())
            });
        let table: SqlValue = q.table.as_deref().into();
        let since: SqlValue = q.updated_since.into();
        let rows = self
            .sql
            .exec(
                &format!(
                    "SELECT {COLUMNS} FROM records \
                     WHERE (? IS NULL OR tbl = ?) \
                       AND (? IS NULL OR updated_at > ?) \
                       AND (deleted_at IS NULL OR deleted_at >= ?) \
                       AND (? IS NULL OR updated_at > ? OR (updated_at = ? AND id > ?)) \
                     ORDER BY updated_at, id LIMIT ? OFFSET ?"
                ),
                &[
                    table.clone(),
                    table,
                    since.clone(),
                    since,
                    (c.now - TOMBSTONE_TTL_MS).into(),
                    after_u.clone(),
                    after_u.clone(),
                    after_u,
                    after_i,
                    int(q.limit + 1),
                    int(q.offset),
                ],
            )
            .map_err(store)?;
        let mut rows: Vec<RecordRow> = rows.iter().map(|r| self.row(r)).collect();
        let more = rows.len() > q.limit as usize;
        rows.truncate(q.limit as usize);
        let next = if more {
            rows.last().map(cursor_of)
        } else {
            None
        };
        Ok(RecordPage {
            items: rows.iter().map(RecordMeta::from).collect(),
            next,
            reset: self.deletions_forgotten_after(c.now, q)?,
        })
    }

    /// Whether a deletion the listing no longer shows (a tombstone purged, or older than the
    /// 30 days listed) happened after the query's position (`updated_since` or the cursor's
    /// `updated_at`): then a device synced up to that position cannot learn of it from the
    /// listing and must reconcile with a full one (`X-Sync-Reset`). A listing from the start
    /// (no position, or `updated_since=0`) has nothing to miss. Every table counts (a spurious
    /// reset costs a full listing; a missed one would keep a deleted record on a device).
    fn deletions_forgotten_after(&self, now: i64, q: &ListRecords) -> Result<bool, AppError> {
        let position = q
            .updated_since
            .into_iter()
            .chain(q.after.as_ref().map(|c| c.u))
            .max()
            .filter(|p| *p > 0);
        let Some(position) = position else {
            return Ok(false);
        };
        let purged = self
            .sql
            .one("SELECT forgotten FROM sync_horizon WHERE id = 1", &[])
            .map_err(store)?
            .map_or(0, |r| r.int(0));
        if position < purged {
            return Ok(true);
        }
        // Tombstones past the listing's 30 days but not purged yet: their `updated_at` is
        // their deletion time (or a few ms after), so only an old position can precede one.
        let unlisted_before = now - TOMBSTONE_TTL_MS;
        if position >= unlisted_before + FORGOTTEN_SLACK_MS {
            return Ok(false);
        }
        let hidden = self
            .sql
            .one(
                HIDDEN_TOMBSTONE_SQL,
                &[unlisted_before.into(), position.into()],
            )
            .map_err(store)?;
        Ok(hidden.is_some())
    }
}

/// Whether a tombstone deleted before `?1` (no longer listed) was written after position `?2`.
pub(super) const HIDDEN_TOMBSTONE_SQL: &str = "SELECT 1 FROM records \
     WHERE deleted_at IS NOT NULL AND deleted_at < ? AND updated_at > ? LIMIT 1";

/// How far a tombstone's `updated_at` may trail past its `deleted_at` (ms): both are the
/// deletion's time, `updated_at` bumped past the previous write's at most.
const FORGOTTEN_SLACK_MS: i64 = 24 * 3_600_000;

/// The listing position of `row`.
fn cursor_of(row: &RecordRow) -> String {
    Cursor {
        u: row.updated_at,
        i: row.id.clone(),
    }
    .encode()
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
