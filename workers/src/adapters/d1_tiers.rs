//! D1 adapter of the tier store: the user's stored tier, team seats, and usage in bytes.

use async_trait::async_trait;
use serde::Deserialize;
use shared::domain::{Tier, UserId};
use shared::ports::StoreError;
use shared::tiers::{TierInfo, TierStore};
use worker::D1Database;

use super::d1::{stmt, text};
use super::unavailable;

/// Tiers and usage in D1.
pub struct D1TierStore(pub D1Database);

#[derive(Deserialize)]
struct Row {
    tier: String,
    tier_until: Option<f64>,
    seats: f64,
}

impl D1TierStore {
    async fn sum(&self, sql: &str, user: UserId) -> Result<u64, StoreError> {
        let total = stmt(&self.0, sql, &[text(user.to_string())])?
            .first::<f64>(Some("total"))
            .await
            .map_err(|e| unavailable("summing usage", &e))?
            .unwrap_or(0.0);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(total.max(0.0) as u64)
    }
}

#[async_trait(?Send)]
impl TierStore for D1TierStore {
    async fn tier_info(&self, user: UserId) -> Result<Option<TierInfo>, StoreError> {
        // Seats come from the user's live team subscription, if any.
        let row = stmt(
            &self.0,
            "SELECT u.tier, u.tier_until, COALESCE((SELECT s.seats FROM subscriptions s \
                WHERE s.user_id = u.id AND s.tier = 'team' \
                  AND s.status IN ('active', 'trialing', 'past_due') \
                ORDER BY s.last_event_created DESC LIMIT 1), 1) AS seats \
             FROM users u WHERE u.id = ?1",
            &[text(user.to_string())],
        )?
        .first::<Row>(None)
        .await
        .map_err(|e| unavailable("reading tier", &e))?;
        let Some(r) = row else { return Ok(None) };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(Some(TierInfo {
            tier: Tier::parse(&r.tier)
                .ok_or_else(|| StoreError::Unavailable("corrupt users.tier".into()))?,
            tier_until: r.tier_until.map(|v| v as i64),
            seats: r.seats.clamp(1.0, f64::from(u32::MAX)) as u32,
        }))
    }

    async fn storage_used(&self, user: UserId) -> Result<u64, StoreError> {
        self.sum(
            "SELECT (SELECT COALESCE(SUM(size_bytes), 0) FROM storage_records \
               WHERE user_id = ?1 AND deleted_at IS NULL) \
             + (SELECT COALESCE(SUM(size_bytes), 0) FROM vector_meta WHERE user_id = ?1) \
             AS total",
            user,
        )
        .await
    }

    async fn backup_used(&self, user: UserId) -> Result<u64, StoreError> {
        self.sum(
            "SELECT COALESCE(SUM(size_bytes), 0) AS total FROM backup_metadata WHERE user_id = ?1",
            user,
        )
        .await
    }
}
