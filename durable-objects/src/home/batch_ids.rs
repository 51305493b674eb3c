//! What the home stores of batches: only that one existed — its id, item count and time, never
//! an input or a result (those live in the object's memory, see [`crate::batches`]). So after
//! an eviction, or once results expired, a known id answers `lost` (the client runs it again)
//! and an id never submitted here (another user's, or one forgotten after
//! [`BATCH_ID_TTL_MS`]) answers 404.

use shared::chat::orchestrator::batch::BATCH_ID_TTL_MS;
use shared::AppError;

use super::sql::Sql;
use super::{store, Home};

impl<S: Sql> Home<'_, S> {
    /// Remembers that the batch `id` of `total` items was submitted at `now`.
    ///
    /// # Errors
    /// Storage failures.
    pub fn remember_batch(&self, id: &str, total: u32, now: i64) -> Result<(), AppError> {
        self.sql
            .exec(
                "INSERT OR REPLACE INTO batch_ids (id, total, created_at) VALUES (?, ?, ?)",
                &[id.into(), total.into(), now.into()],
            )
            .map_err(store)?;
        Ok(())
    }

    /// The batches submitted within [`BATCH_ID_TTL_MS`] of `now` as `(id, total, created_at)`,
    /// newest first (older ones are forgotten here).
    ///
    /// # Errors
    /// Storage failures.
    pub fn known_batches(&self, now: i64) -> Result<Vec<(String, u32, i64)>, AppError> {
        self.sql
            .exec(
                "DELETE FROM batch_ids WHERE created_at <= ?",
                &[(now - BATCH_ID_TTL_MS).into()],
            )
            .map_err(store)?;
        let rows = self
            .sql
            .exec(
                "SELECT id, total, created_at FROM batch_ids ORDER BY created_at DESC",
                &[],
            )
            .map_err(store)?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let total = u32::try_from(r.int(1)).unwrap_or(0);
                (r.text(0), total, r.int(2))
            })
            .collect())
    }

    /// The batch `id`'s `(total, created_at)`, if it was submitted within [`BATCH_ID_TTL_MS`].
    ///
    /// # Errors
    /// Storage failures.
    pub fn known_batch(&self, id: &str, now: i64) -> Result<Option<(u32, i64)>, AppError> {
        let row = self
            .sql
            .one(
                "SELECT total, created_at FROM batch_ids WHERE id = ? AND created_at > ?",
                &[id.into(), (now - BATCH_ID_TTL_MS).into()],
            )
            .map_err(store)?;
        Ok(row.map(|r| (u32::try_from(r.int(0)).unwrap_or(0), r.int(1))))
    }
}
