//! The tier matrix (the plan's `TierManager.FEATURES`), feature gates, quotas and rate limits.
//!
//! Limits read `-1` as unlimited, as in the plan. Storage quotas are in decimal gigabytes
//! (1 GB = 10^9 bytes). The tier always comes from D1 ([`TierStore`]), never from the token or
//! the client.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{Tier, UserId};
use crate::error::AppError;
use crate::ports::StoreError;

/// Bytes in one (decimal) gigabyte.
pub const GB: u64 = 1_000_000_000;

/// What one tier includes (`-1` = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Features {
    /// Chat agents available (-1 unlimited).
    pub agents: i64,
    /// Active batches at once (-1 unlimited).
    pub batch_active: i64,
    /// Cloud record storage in GB (0 none, -1 unlimited).
    pub cloud_storage_gb: i64,
    /// Backup storage in GB (0 none, -1 unlimited).
    pub backup_gb: i64,
    /// LLM providers (-1 unlimited).
    pub providers: i64,
    /// The batch builder.
    pub batch_builder: bool,
    /// The plugin marketplace.
    pub plugin_marketplace: bool,
    /// Single sign-on.
    pub sso: bool,
}

/// The matrix of the plan, cell by cell.
pub const fn features(tier: Tier) -> Features {
    match tier {
        Tier::Free => Features {
            agents: 3,
            batch_active: 2,
            cloud_storage_gb: 0,
            backup_gb: 0,
            providers: 1,
            batch_builder: false,
            plugin_marketplace: false,
            sso: false,
        },
        Tier::Pro => Features {
            agents: -1,
            batch_active: 10,
            cloud_storage_gb: 5,
            backup_gb: 5,
            providers: -1,
            batch_builder: false,
            plugin_marketplace: false,
            sso: false,
        },
        Tier::Power => Features {
            agents: -1,
            batch_active: -1,
            cloud_storage_gb: 25,
            backup_gb: 25,
            providers: -1,
            batch_builder: true,
            plugin_marketplace: true,
            sso: false,
        },
        Tier::Team => Features {
            agents: -1,
            batch_active: -1,
            cloud_storage_gb: -1,
            backup_gb: -1,
            providers: -1,
            batch_builder: true,
            plugin_marketplace: true,
            sso: true,
        },
    }
}

/// Monthly price in euro cents (per seat for team).
pub const fn price_cents(tier: Tier) -> u32 {
    match tier {
        Tier::Free => 0,
        Tier::Pro => 1_500,
        Tier::Power => 2_900,
        Tier::Team => 4_900,
    }
}

/// A gated capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// Cloud records (`cloud_storage_gb` > 0).
    CloudStorage,
    /// Backups (`backup_gb` > 0).
    Backup,
    /// The batch builder.
    BatchBuilder,
    /// The plugin marketplace.
    PluginMarketplace,
    /// Single sign-on.
    Sso,
}

impl Feature {
    /// The matrix name.
    pub fn name(self) -> &'static str {
        match self {
            Feature::CloudStorage => "cloud_storage_gb",
            Feature::Backup => "backup_gb",
            Feature::BatchBuilder => "batch_builder",
            Feature::PluginMarketplace => "plugin_marketplace",
            Feature::Sso => "sso",
        }
    }

    fn in_tier(self, tier: Tier) -> bool {
        let f = features(tier);
        match self {
            Feature::CloudStorage => f.cloud_storage_gb != 0,
            Feature::Backup => f.backup_gb != 0,
            Feature::BatchBuilder => f.batch_builder,
            Feature::PluginMarketplace => f.plugin_marketplace,
            Feature::Sso => f.sso,
        }
    }

    /// The cheapest tier that has it.
    pub fn lowest_tier(self) -> Tier {
        Tier::ALL
            .into_iter()
            .find(|t| self.in_tier(*t))
            .unwrap_or(Tier::Team)
    }
}

/// Whether `tier` has `feature`.
///
/// # Errors
/// 403 `tier_required` naming the feature and the lowest tier that has it.
pub fn check_feature(tier: Tier, feature: Feature) -> Result<(), AppError> {
    if feature.in_tier(tier) {
        Ok(())
    } else {
        Err(AppError::TierRequired {
            feature: feature.name(),
            required_tier: feature.lowest_tier().as_str(),
        })
    }
}

/// Requests per minute: free 20, pro 60, power 120, team 200 per seat.
pub fn rate_limit(tier: Tier, seats: u32) -> u32 {
    match tier {
        Tier::Free => 20,
        Tier::Pro => 60,
        Tier::Power => 120,
        Tier::Team => 200u32.saturating_mul(seats.max(1)),
    }
}

/// A byte quota: `None` for unlimited.
fn quota_bytes(gb: i64) -> Option<u64> {
    u64::try_from(gb).ok().map(|gb| gb.saturating_mul(GB))
}

/// Checks that adding `adding` bytes to `used` stays within `gb` (the matrix value).
///
/// # Errors
/// 403 `quota_exceeded` with the bytes used and the limit.
pub fn enforce_quota_gb(gb: i64, used: u64, adding: u64) -> Result<(), AppError> {
    match quota_bytes(gb) {
        None => Ok(()),
        Some(limit) if used.saturating_add(adding) <= limit => Ok(()),
        Some(limit) => Err(AppError::QuotaExceeded { used, limit }),
    }
}

/// A user's tier as stored, with what decides its rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierInfo {
    /// The paid tier as stored.
    pub tier: Tier,
    /// When it lapses (past due), if it does.
    pub tier_until: Option<i64>,
    /// Seats of the team subscription (1 otherwise).
    pub seats: u32,
}

impl TierInfo {
    /// The tier in force at `now_ms`.
    pub fn effective(&self, now_ms: i64) -> Tier {
        match self.tier_until {
            Some(until) if until <= now_ms => Tier::Free,
            _ => self.tier,
        }
    }
}

/// Where tiers and usage come from (D1).
#[async_trait(?Send)]
pub trait TierStore {
    /// The user's tier and seats; `None` for an unknown user.
    async fn tier_info(&self, user: UserId) -> Result<Option<TierInfo>, StoreError>;
    /// Bytes of live cloud records.
    async fn storage_used(&self, user: UserId) -> Result<u64, StoreError>;
    /// Bytes of stored backups.
    async fn backup_used(&self, user: UserId) -> Result<u64, StoreError>;
}

/// Gates and quotas for one user, read from the store.
pub struct TierManager<'a> {
    /// Tiers and usage.
    pub store: &'a dyn TierStore,
}

impl TierManager<'_> {
    /// The tier in force for `user` at `now_ms`.
    ///
    /// # Errors
    /// 401 for an unknown user (a token outliving its account).
    pub async fn get_tier(&self, user: UserId, now_ms: i64) -> Result<(Tier, u32), AppError> {
        let info = self
            .store
            .tier_info(user)
            .await?
            .ok_or(AppError::Unauthorized)?;
        let tier = info.effective(now_ms);
        Ok((tier, if tier == Tier::Team { info.seats } else { 1 }))
    }

    /// Whether cloud storage has room for `adding` more bytes (`check_quota`).
    ///
    /// # Errors
    /// 403 `tier_required` without cloud storage, `quota_exceeded` when full.
    pub async fn enforce_quota(
        &self,
        user: UserId,
        tier: Tier,
        adding: u64,
    ) -> Result<(), AppError> {
        check_feature(tier, Feature::CloudStorage)?;
        let in_use = self.store.storage_used(user).await?;
        enforce_quota_gb(features(tier).cloud_storage_gb, in_use, adding)
    }

    /// Whether backups have room for `adding` more bytes.
    ///
    /// # Errors
    /// 403 `tier_required` without backups, `quota_exceeded` when full.
    pub async fn enforce_backup_quota(
        &self,
        user: UserId,
        tier: Tier,
        adding: u64,
    ) -> Result<(), AppError> {
        check_feature(tier, Feature::Backup)?;
        let in_use = self.store.backup_used(user).await?;
        enforce_quota_gb(features(tier).backup_gb, in_use, adding)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn the_matrix_matches_the_plan_cell_by_cell() {
        // (agents, batch_active, cloud_storage_gb, backup_gb, providers, batch_builder,
        //  plugin_marketplace, sso), copied from the plan's FEATURES.
        let plan = [
            (Tier::Free, (3, 2, 0, 0, 1, false, false, false)),
            (Tier::Pro, (-1, 10, 5, 5, -1, false, false, false)),
            (Tier::Power, (-1, -1, 25, 25, -1, true, true, false)),
            (Tier::Team, (-1, -1, -1, -1, -1, true, true, true)),
        ];
        for (tier, row) in plan {
            let f = features(tier);
            assert_eq!(
                (
                    f.agents,
                    f.batch_active,
                    f.cloud_storage_gb,
                    f.backup_gb,
                    f.providers,
                    f.batch_builder,
                    f.plugin_marketplace,
                    f.sso
                ),
                row,
                "{tier:?}"
            );
        }
    }

    #[test]
    fn prices_are_the_plans() {
        let got: Vec<u32> = Tier::ALL.iter().map(|t| price_cents(*t)).collect();
        assert_eq!(got, vec![0, 1_500, 2_900, 4_900]);
    }

    #[test]
    fn gates_name_the_feature_and_the_cheapest_tier_that_has_it() {
        let cases = [
            (Feature::CloudStorage, "cloud_storage_gb", "pro"),
            (Feature::Backup, "backup_gb", "pro"),
            (Feature::BatchBuilder, "batch_builder", "power"),
            (Feature::PluginMarketplace, "plugin_marketplace", "power"),
            (Feature::Sso, "sso", "team"),
        ];
        for (feature, name, lowest) in cases {
            let e = check_feature(Tier::Free, feature).unwrap_err();
            assert_eq!(e.code(), "tier_required");
            let body = serde_json::to_value(e.body("r")).unwrap();
            assert_eq!(body["error"]["details"]["feature"], name);
            assert_eq!(body["error"]["details"]["required_tier"], lowest);
            assert!(check_feature(Tier::Team, feature).is_ok());
        }
        assert!(check_feature(Tier::Pro, Feature::PluginMarketplace).is_err());
        assert!(check_feature(Tier::Power, Feature::PluginMarketplace).is_ok());
    }

    #[test]
    fn rate_limits_follow_the_tier_and_team_seats() {
        assert_eq!(rate_limit(Tier::Free, 9), 20);
        assert_eq!(rate_limit(Tier::Pro, 9), 60);
        assert_eq!(rate_limit(Tier::Power, 1), 120);
        assert_eq!(rate_limit(Tier::Team, 1), 200);
        assert_eq!(rate_limit(Tier::Team, 7), 1_400);
        assert_eq!(
            rate_limit(Tier::Team, 0),
            200,
            "a team has at least one seat"
        );
        assert_eq!(rate_limit(Tier::Team, u32::MAX), u32::MAX);
    }

    #[test]
    fn quota_arithmetic_at_the_edges() {
        // 0 GB: nothing fits, not even an empty write beyond zero.
        assert!(enforce_quota_gb(0, 0, 0).is_ok());
        assert_eq!(
            enforce_quota_gb(0, 0, 1).unwrap_err().code(),
            "quota_exceeded"
        );
        // Exactly full is allowed; one byte more is not.
        assert!(enforce_quota_gb(5, 5 * GB - 10, 10).is_ok());
        let e = enforce_quota_gb(5, 5 * GB - 10, 11).unwrap_err();
        let body = serde_json::to_value(e.body("r")).unwrap();
        assert_eq!(body["error"]["details"]["used"], 5 * GB - 10);
        assert_eq!(body["error"]["details"]["limit"], 5 * GB);
        // Unlimited never refuses, even at the edge of u64.
        assert!(enforce_quota_gb(-1, u64::MAX, u64::MAX).is_ok());
        // No overflow on absurd inputs.
        assert!(enforce_quota_gb(25, u64::MAX, 1).is_err());
    }

    struct Fixed {
        info: Option<TierInfo>,
        used: Cell<u64>,
    }

    #[async_trait(?Send)]
    impl TierStore for Fixed {
        async fn tier_info(&self, _: UserId) -> Result<Option<TierInfo>, StoreError> {
            Ok(self.info)
        }
        async fn storage_used(&self, _: UserId) -> Result<u64, StoreError> {
            Ok(self.used.get())
        }
        async fn backup_used(&self, _: UserId) -> Result<u64, StoreError> {
            Ok(self.used.get())
        }
    }

    const U: UserId = UserId(uuid::Uuid::nil());

    #[tokio::test]
    async fn the_tier_comes_from_the_store_and_lapses_on_time() {
        let store = Fixed {
            info: Some(TierInfo {
                tier: Tier::Team,
                tier_until: Some(1_000),
                seats: 4,
            }),
            used: Cell::new(0),
        };
        let m = TierManager { store: &store };
        assert_eq!(m.get_tier(U, 999).await.unwrap(), (Tier::Team, 4));
        assert_eq!(m.get_tier(U, 1_000).await.unwrap(), (Tier::Free, 1));
        let none = Fixed {
            info: None,
            used: Cell::new(0),
        };
        let m = TierManager { store: &none };
        assert_eq!(m.get_tier(U, 0).await.unwrap_err().status(), 401);
    }

    #[tokio::test]
    async fn quotas_read_current_usage() {
        let store = Fixed {
            info: None,
            used: Cell::new(5 * GB),
        };
        let m = TierManager { store: &store };
        assert_eq!(
            m.enforce_quota(U, Tier::Free, 1).await.unwrap_err().code(),
            "tier_required"
        );
        assert!(m.enforce_quota(U, Tier::Pro, 0).await.is_ok());
        assert_eq!(
            m.enforce_backup_quota(U, Tier::Pro, 1)
                .await
                .unwrap_err()
                .code(),
            "quota_exceeded"
        );
        assert!(m.enforce_quota(U, Tier::Power, GB).await.is_ok());
        store.used.set(u64::MAX / 2);
        assert!(m.enforce_backup_quota(U, Tier::Team, GB).await.is_ok());
    }
}
