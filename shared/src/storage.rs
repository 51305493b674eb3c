//! Cloud records: opaque client-encrypted blobs in R2 with their metadata in the user's home.
//!
//! ## Rules
//! - `table` is a short identifier (`[A-Za-z0-9_-]`, 1–64, not starting with `-`), never a path.
//! - Checksums are lowercase hex SHA-256 of the exact bytes; R2 verifies streamed bodies itself
//!   (nothing is stored on a mismatch), JSON bodies are verified here in constant time.
//! - ETag: `"<version>.<first 16 hex of the checksum>"`; every write bumps the version.
//!   `If-Match` (strong comparison, `*` allowed) on PUT/DELETE → 412 when stale; without it the
//!   last write wins. `If-None-Match` on GET → 304.
//! - Crash safety and exact usage: usage is the sum of `size_bytes` of live records, kept by the
//!   home in the same step as the metadata. A write reserves its bytes first (so concurrent
//!   writes at the quota's edge cannot all pass), puts the new blob under a key unique to that
//!   write, then commits, then deletes the blob the record no longer references. A crash
//!   between the steps leaves at worst an unreferenced blob (counted for nothing, never served)
//!   and a reservation that lapses by itself; a record never points at a missing blob.
//! - Without `If-Match` the last write wins: an unconditional update or delete applies to the
//!   version current when it commits, whatever raced it — except that a delete is never undone:
//!   an update that commits after a racing delete answers 404.
//! - Delete leaves a tombstone (`deleted: true`) listed for 30 days so other devices sync it.
//! - Listing is ordered by `(updated_at, id)`; the cursor is that pair, so paging is stable
//!   while records change.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::UserId;
use crate::error::{AppError, FieldError};
use crate::home::ops::{
    CommitRecord, DeleteRecord, GetRecord, ListRecords, RecordPage, RecordTarget, Release,
    Reservation, ReserveRecord,
};
use crate::home::{self, HomePort};
use crate::ports::StoreError;

/// Largest record blob (bytes).
pub const MAX_RECORD_BYTES: u64 = 25 * 1024 * 1024;
/// Default and largest page size of the listing.
pub const DEFAULT_LIST_LIMIT: u32 = 100;
/// Largest page size of the listing.
pub const MAX_LIST_LIMIT: u32 = 500;
/// Highest page number of page-based listing (use the cursor beyond).
pub const MAX_LIST_PAGE: u32 = 1_000_000;
/// How long tombstones are listed (ms).
pub const TOMBSTONE_TTL_MS: i64 = 30 * 24 * 3_600_000;

/// A validated table name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName(String);

impl TableName {
    /// Parses a table name.
    ///
    /// # Errors
    /// A [`FieldError`] on `field` when it is not a short identifier.
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        let ok = (1..=64).contains(&raw.len())
            && !raw.starts_with('-')
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(
                field,
                "must be 1-64 characters of letters, digits, `_` or `-` (not a path)",
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A SHA-256 checksum as 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum(String);

impl Checksum {
    /// Parses a hex SHA-256 (any case; stored lowercase).
    ///
    /// # Errors
    /// A [`FieldError`] on `field` unless it is 64 hex characters.
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(FieldError::new(
                field,
                "must be 64 hex characters (SHA-256)",
            ))
        }
    }

    /// The checksum of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(hex::encode(Sha256::digest(bytes)))
    }

    /// Whether `bytes` hash to this checksum (constant time).
    pub fn matches(&self, bytes: &[u8]) -> bool {
        Self::of(bytes).0.as_bytes().ct_eq(self.0.as_bytes()).into()
    }

    /// The hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 32 digest bytes.
    pub fn digest(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        // Always 64 hex characters by construction.
        let _ = hex::decode_to_slice(&self.0, &mut out);
        out
    }
}

/// The ETag of a record version.
pub fn etag(version: i64, checksum: &str) -> String {
    format!("\"{version}.{}\"", &checksum[..checksum.len().min(16)])
}

/// Whether an `If-Match` header allows a write to a record whose ETag is `current`.
/// `None` (no header) allows it; `*` allows any existing record; weak tags never match.
pub fn if_match_allows(header: Option<&str>, current: &str) -> bool {
    let Some(h) = header else { return true };
    h.split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == current)
}

/// Whether an `If-None-Match` header names the current ETag (weak comparison, as for GET).
pub fn if_none_match_hits(header: Option<&str>, current: &str) -> bool {
    let Some(h) = header else { return false };
    h.split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == current)
}

/// A position in the listing: after `(updated_at, id)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// `updated_at` of the last record returned.
    pub u: i64,
    /// Its id.
    pub i: String,
}

impl Cursor {
    /// Text form: `<updated_at>.<id>` (pattern `^[0-9]{1,15}\.[0-9a-f-]{1,64}$`).
    pub fn encode(&self) -> String {
        format!("{}.{}", self.u, self.i)
    }

    /// Parses the text form.
    ///
    /// # Errors
    /// A [`FieldError`] on `cursor` unless it has the documented form.
    pub fn decode(s: &str) -> Result<Self, FieldError> {
        let bad = || {
            FieldError::new(
                "cursor",
                "must be `<updated_at>.<id>` as X-Next-Cursor gives it",
            )
        };
        let (u, i) = s.split_once('.').ok_or_else(bad)?;
        let u_ok = (1..=15).contains(&u.len()) && u.bytes().all(|b| b.is_ascii_digit());
        let i_ok = (1..=64).contains(&i.len())
            && i.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-');
        if !(u_ok && i_ok) {
            return Err(bad());
        }
        Ok(Self {
            u: u.parse().map_err(|_| bad())?,
            i: i.to_owned(),
        })
    }
}

/// A record's metadata (kept by the user's home).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRow {
    /// Id.
    pub id: String,
    /// Owner.
    pub user_id: UserId,
    /// Table.
    pub table: String,
    /// Where the blob is.
    pub r2_key: String,
    /// Checksum of the blob.
    pub checksum: String,
    /// Size of the blob.
    pub size_bytes: u64,
    /// Write counter.
    pub version: i64,
    /// Creation (epoch ms).
    pub created_at: i64,
    /// Last change (epoch ms).
    pub updated_at: i64,
    /// Deletion (epoch ms), for tombstones.
    pub deleted_at: Option<i64>,
}

impl RecordRow {
    /// The current ETag.
    pub fn etag(&self) -> String {
        etag(self.version, &self.checksum)
    }
}

/// What the listing returns per record (never blobs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordMeta {
    /// Record id (UUID).
    pub id: String,
    /// Table.
    pub table: String,
    /// SHA-256 of the blob (empty for tombstones).
    pub checksum: String,
    /// Blob size.
    pub size_bytes: u64,
    /// Creation (epoch ms).
    pub created_at: i64,
    /// Last change, deletion included (epoch ms).
    pub updated_at: i64,
    /// ETag of the current version.
    pub etag: String,
    /// Whether this is a tombstone of a deleted record.
    pub deleted: bool,
}

impl From<&RecordRow> for RecordMeta {
    fn from(r: &RecordRow) -> Self {
        Self {
            id: r.id.clone(),
            table: r.table.clone(),
            checksum: r.checksum.clone(),
            size_bytes: r.size_bytes,
            created_at: r.created_at,
            updated_at: r.updated_at,
            etag: r.etag(),
            deleted: r.deleted_at.is_some(),
        }
    }
}

/// A listing query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Only this table.
    pub table: Option<TableName>,
    /// Only records changed after this (epoch ms).
    pub updated_since: Option<i64>,
    /// Continue after this position.
    pub after: Option<Cursor>,
    /// Rows to skip (page-based paging; 0 with a cursor).
    pub offset: u32,
    /// Page size.
    pub limit: u32,
}

/// Blob storage (R2), generic over the platform's body type so bodies stream through.
#[async_trait(?Send)]
pub trait BlobStore {
    /// A request body as the platform has it (a stream in the worker, bytes in tests).
    type Body;
    /// Stores `body` under `key` if its SHA-256 is `checksum`; `Ok(false)` (nothing stored)
    /// when it is not.
    async fn put(
        &self,
        key: &str,
        body: Self::Body,
        checksum: &Checksum,
    ) -> Result<bool, StoreError>;
    /// Deletes `key` (idempotent).
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// The bytes of a write: either already here (JSON, base64) or a stream R2 will verify.
pub enum Payload<B> {
    /// Decoded bytes (verified here).
    Bytes(Vec<u8>),
    /// A platform body of the declared length (verified by the store).
    Stream(B, u64),
}

impl<B> Payload<B> {
    /// The size of the bytes.
    pub fn size(&self) -> u64 {
        match self {
            Payload::Bytes(b) => b.len() as u64,
            Payload::Stream(_, n) => *n,
        }
    }
}

/// Records over their ports: the user's home (metadata, versions, quota) and the blobs.
///
/// A write is `reserve` (one home call: admission, gate, `If-Match`, quota) → the blob to R2
/// (verified by its checksum) → `commit` (the second call) or, when the blob was refused,
/// `release`; the blob a commit replaced is deleted after it. Reads and deletes are one call.
pub struct RecordService<'a, B: BlobStore> {
    /// The user's home.
    pub home: &'a dyn HomePort,
    /// Blobs.
    pub blobs: &'a B,
}

impl<B: BlobStore> RecordService<'_, B>
where
    B::Body: From<Vec<u8>>,
{
    /// Checks a buffered body before anything is reserved (a stream is checked by R2).
    fn precheck(payload: &Payload<B::Body>, checksum: &Checksum) -> Result<(), AppError> {
        if payload.size() > MAX_RECORD_BYTES {
            return Err(AppError::PayloadTooLarge {
                limit: MAX_RECORD_BYTES,
            });
        }
        match payload {
            Payload::Bytes(bytes) if !checksum.matches(bytes) => Err(AppError::ChecksumMismatch),
            _ => Ok(()),
        }
    }

    /// Stores the blob of `reservation` and commits it, or releases the reservation.
    async fn store(
        &self,
        reservation: Reservation,
        payload: Payload<B::Body>,
        checksum: &Checksum,
    ) -> Result<RecordRow, AppError> {
        let body = match payload {
            Payload::Bytes(bytes) => B::Body::from(bytes),
            Payload::Stream(body, _) => body,
        };
        let stored = self.blobs.put(&reservation.key, body, checksum).await;
        if !matches!(stored, Ok(true)) {
            // Nothing of the write happened: give the bytes back (best effort: a lost release
            // lapses on its own).
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
        match home::call(
            self.home,
            &CommitRecord {
                reservation: reservation.reservation,
            },
        )
        .await
        {
            Ok(done) => {
                if let Some(old) = &done.replaced_key {
                    let _ = self.blobs.delete(old).await;
                }
                Ok(done.row)
            }
            Err(e) => {
                // Not committed (a conditional write lost, the quota filled meanwhile): the
                // blob is nobody's.
                let _ = self.blobs.delete(&reservation.key).await;
                Err(e)
            }
        }
    }

    /// Creates a record.
    ///
    /// # Errors
    /// 403 `tier_required`/`quota_exceeded`, 413, 400 `checksum_mismatch` (nothing stored).
    pub async fn create(
        &self,
        table: TableName,
        checksum: Checksum,
        payload: Payload<B::Body>,
    ) -> Result<RecordRow, AppError> {
        Self::precheck(&payload, &checksum)?;
        let reservation = home::call(
            self.home,
            &ReserveRecord {
                target: RecordTarget::Create {
                    table: table.as_str().to_owned(),
                },
                size: payload.size(),
                checksum: checksum.as_str().to_owned(),
            },
        )
        .await?;
        let row = self.store(reservation, payload, &checksum).await?;
        tracing::info!(record = %row.id, size = row.size_bytes, "record created");
        Ok(row)
    }

    /// The live record `id`.
    ///
    /// # Errors
    /// 404 for a missing, deleted or foreign record.
    pub async fn get(&self, id: &str) -> Result<RecordRow, AppError> {
        home::call(self.home, &GetRecord { id: id.to_owned() }).await
    }

    /// Replaces a record's blob. Without `If-Match` the last write wins.
    ///
    /// # Errors
    /// 404, 412 on a stale `If-Match`, and the errors of [`Self::create`].
    pub async fn update(
        &self,
        id: &str,
        if_match: Option<&str>,
        checksum: Checksum,
        payload: Payload<B::Body>,
    ) -> Result<RecordRow, AppError> {
        Self::precheck(&payload, &checksum)?;
        let reservation = home::call(
            self.home,
            &ReserveRecord {
                target: RecordTarget::Update {
                    id: id.to_owned(),
                    if_match: if_match.map(str::to_owned),
                },
                size: payload.size(),
                checksum: checksum.as_str().to_owned(),
            },
        )
        .await?;
        let row = self.store(reservation, payload, &checksum).await?;
        tracing::info!(record = %id, version = row.version, size = row.size_bytes, "record updated");
        Ok(row)
    }

    /// Deletes a record (leaving a tombstone). Without `If-Match` it deletes whatever version is
    /// current.
    ///
    /// # Errors
    /// 404, 412 on a stale `If-Match`.
    pub async fn delete(&self, id: &str, if_match: Option<&str>) -> Result<(), AppError> {
        let deleted = home::call(
            self.home,
            &DeleteRecord {
                id: id.to_owned(),
                if_match: if_match.map(str::to_owned),
            },
        )
        .await?;
        let _ = self.blobs.delete(&deleted.key).await;
        tracing::info!(record = %id, "record deleted");
        Ok(())
    }

    /// One page of metadata, the cursor of the next if there is one, and whether the query's
    /// position is older than a deletion no longer listed (see [`RecordPage::reset`]).
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn list(&self, query: &ListQuery) -> Result<RecordPage, AppError> {
        home::call(
            self.home,
            &ListRecords {
                table: query.table.as_ref().map(|t| t.as_str().to_owned()),
                updated_since: query.updated_since,
                after: query.after.clone(),
                offset: query.offset,
                limit: query.limit,
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests;
