//! Cloud records: opaque client-encrypted blobs in R2 with their metadata in D1.
//!
//! ## Rules
//! - `table` is a short identifier (`[A-Za-z0-9_-]`, 1–64, not starting with `-`), never a path.
//! - Checksums are lowercase hex SHA-256 of the exact bytes; R2 verifies streamed bodies itself
//!   (nothing is stored on a mismatch), JSON bodies are verified here in constant time.
//! - ETag: `"<version>.<first 16 hex of the checksum>"`; every write bumps the version.
//!   `If-Match` (strong comparison, `*` allowed) on PUT/DELETE → 412 when stale; without it the
//!   last write wins. `If-None-Match` on GET → 304.
//! - Crash safety and exact usage: usage is the sum of `size_bytes` of live D1 rows. A write
//!   puts the new blob under a key unique to that write first, then commits the row (compare-and-set on the
//!   version), then deletes the blob the row no longer references. A crash between the steps
//!   leaves at worst an unreferenced blob, which counts for nothing and is never served; a row
//!   never points at a missing blob.
//! - Delete leaves a tombstone (`deleted: true`) listed for 30 days so other devices sync it.
//! - Listing is ordered by `(updated_at, id)`; the cursor is that pair, so paging is stable
//!   while records change.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::{Tier, UserId};
use crate::error::{AppError, FieldError};
use crate::ports::{new_uuid, Clock, Random, StoreError};
use crate::tiers::{check_feature, enforce_quota_gb, features, Feature, TierStore};

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

/// A record's metadata row (D1 `storage_records`).
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Record metadata (D1).
#[async_trait(?Send)]
pub trait RecordStore {
    /// Inserts a new row.
    async fn insert(&self, row: &RecordRow) -> Result<(), StoreError>;
    /// The user's row with this id (tombstones included).
    async fn get(&self, user: UserId, id: &str) -> Result<Option<RecordRow>, StoreError>;
    /// Replaces the blob fields if the row is live and still at `expected_version`; returns
    /// whether it did.
    async fn update(&self, row: &RecordRow, expected_version: i64) -> Result<bool, StoreError>;
    /// Marks the row deleted if live and at `expected_version`; returns whether it did.
    async fn delete(
        &self,
        user: UserId,
        id: &str,
        expected_version: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Rows ordered by `(updated_at, id)`, tombstones newer than `tombstones_since` included.
    async fn list(
        &self,
        user: UserId,
        query: &ListQuery,
        tombstones_since: i64,
    ) -> Result<Vec<RecordRow>, StoreError>;
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
    fn size(&self) -> u64 {
        match self {
            Payload::Bytes(b) => b.len() as u64,
            Payload::Stream(_, n) => *n,
        }
    }
}

/// Records over their ports.
pub struct RecordService<'a, B: BlobStore> {
    /// Metadata.
    pub records: &'a dyn RecordStore,
    /// Blobs.
    pub blobs: &'a B,
    /// Usage for quotas.
    pub usage: &'a dyn TierStore,
    /// Time.
    pub clock: &'a dyn Clock,
    /// Ids.
    pub rng: &'a dyn Random,
}

impl<B: BlobStore> RecordService<'_, B>
where
    B::Body: From<Vec<u8>>,
{
    async fn store_blob(
        &self,
        key: &str,
        payload: Payload<B::Body>,
        checksum: &Checksum,
    ) -> Result<(), AppError> {
        let body = match payload {
            Payload::Bytes(bytes) => {
                if !checksum.matches(&bytes) {
                    return Err(AppError::ChecksumMismatch);
                }
                B::Body::from(bytes)
            }
            Payload::Stream(body, _) => body,
        };
        if self.blobs.put(key, body, checksum).await? {
            Ok(())
        } else {
            Err(AppError::ChecksumMismatch)
        }
    }

    async fn check_quota(
        &self,
        user: UserId,
        tier: Tier,
        adding: u64,
        freeing: u64,
    ) -> Result<(), AppError> {
        check_feature(tier, Feature::CloudStorage)?;
        if adding > MAX_RECORD_BYTES {
            return Err(AppError::PayloadTooLarge {
                limit: MAX_RECORD_BYTES,
            });
        }
        let in_use = self.usage.storage_used(user).await?.saturating_sub(freeing);
        enforce_quota_gb(features(tier).cloud_storage_gb, in_use, adding)
    }

    /// The blob key of a write: `{user}/{table}/{id}` for the first, then a suffix unique to
    /// each write attempt — never per version, since concurrent writers of one version would
    /// otherwise overwrite (and, losing, delete) the winner's blob.
    fn key(&self, user: UserId, table: &str, id: &str, first: bool) -> String {
        if first {
            format!("{user}/{table}/{id}")
        } else {
            format!("{user}/{table}/{id}~{}", new_uuid(self.rng).simple())
        }
    }

    /// Creates a record.
    ///
    /// # Errors
    /// 403 `tier_required`/`quota_exceeded`, 413, 400 `checksum_mismatch` (nothing stored).
    pub async fn create(
        &self,
        user: UserId,
        tier: Tier,
        table: TableName,
        checksum: Checksum,
        payload: Payload<B::Body>,
    ) -> Result<RecordRow, AppError> {
        let size = payload.size();
        self.check_quota(user, tier, size, 0).await?;
        let id = new_uuid(self.rng).to_string();
        let key = self.key(user, table.as_str(), &id, true);
        self.store_blob(&key, payload, &checksum).await?;
        let now = self.clock.now_ms();
        let row = RecordRow {
            id,
            user_id: user,
            table: table.as_str().to_owned(),
            r2_key: key,
            checksum: checksum.as_str().to_owned(),
            size_bytes: size,
            version: 1,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        if let Err(e) = self.records.insert(&row).await {
            // No row, so the blob would be an orphan: remove it (best effort; it counts nothing).
            let _ = self.blobs.delete(&row.r2_key).await;
            return Err(e.into());
        }
        tracing::info!(user_id = %user, record = %row.id, size, "record created");
        Ok(row)
    }

    /// The live record `id` of `user`.
    ///
    /// # Errors
    /// 404 for a missing, deleted or foreign record.
    pub async fn get(&self, user: UserId, id: &str) -> Result<RecordRow, AppError> {
        self.records
            .get(user, id)
            .await?
            .filter(|r| r.deleted_at.is_none())
            .ok_or(AppError::NotFound)
    }

    /// Replaces a record's blob.
    ///
    /// # Errors
    /// 404, 412 on a stale `If-Match`, and the errors of [`Self::create`].
    pub async fn update(
        &self,
        user: UserId,
        tier: Tier,
        id: &str,
        if_match: Option<&str>,
        checksum: Checksum,
        payload: Payload<B::Body>,
    ) -> Result<RecordRow, AppError> {
        let current = self.get(user, id).await?;
        if !if_match_allows(if_match, &current.etag()) {
            return Err(AppError::PreconditionFailed);
        }
        let size = payload.size();
        self.check_quota(user, tier, size, current.size_bytes)
            .await?;
        let version = current.version + 1;
        let key = self.key(user, &current.table, id, false);
        self.store_blob(&key, payload, &checksum).await?;
        let row = RecordRow {
            r2_key: key,
            checksum: checksum.as_str().to_owned(),
            size_bytes: size,
            version,
            updated_at: self.clock.now_ms().max(current.updated_at + 1),
            ..current.clone()
        };
        match self.records.update(&row, current.version).await {
            Ok(true) => {
                let _ = self.blobs.delete(&current.r2_key).await;
                tracing::info!(user_id = %user, record = %id, version, size, "record updated");
                Ok(row)
            }
            other => {
                let _ = self.blobs.delete(&row.r2_key).await;
                other?;
                // Another write got in between: with If-Match that is a conflict of versions;
                // without it, last write wins, so the caller may simply retry.
                if if_match.is_some() {
                    Err(AppError::PreconditionFailed)
                } else {
                    Err(AppError::Conflict(
                        "the record changed during the write; retry",
                    ))
                }
            }
        }
    }

    /// Deletes a record (leaving a tombstone).
    ///
    /// # Errors
    /// 404, 412 on a stale `If-Match`.
    pub async fn delete(
        &self,
        user: UserId,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(), AppError> {
        let current = self.get(user, id).await?;
        if !if_match_allows(if_match, &current.etag()) {
            return Err(AppError::PreconditionFailed);
        }
        let now = self.clock.now_ms().max(current.updated_at + 1);
        if !self.records.delete(user, id, current.version, now).await? {
            return Err(if if_match.is_some() {
                AppError::PreconditionFailed
            } else {
                AppError::NotFound
            });
        }
        let _ = self.blobs.delete(&current.r2_key).await;
        tracing::info!(user_id = %user, record = %id, "record deleted");
        Ok(())
    }

    /// One page of metadata and the cursor of the next, if there is one.
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn list(
        &self,
        user: UserId,
        query: &ListQuery,
    ) -> Result<(Vec<RecordMeta>, Option<String>), AppError> {
        let mut probe = query.clone();
        probe.limit = query.limit + 1;
        let since = self.clock.now_ms() - TOMBSTONE_TTL_MS;
        let mut rows = self.records.list(user, &probe, since).await?;
        let more = rows.len() > query.limit as usize;
        rows.truncate(query.limit as usize);
        let next = if more {
            rows.last().map(|r| {
                Cursor {
                    u: r.updated_at,
                    i: r.id.clone(),
                }
                .encode()
            })
        } else {
            None
        };
        Ok((rows.iter().map(RecordMeta::from).collect(), next))
    }
}

#[cfg(test)]
mod tests;
