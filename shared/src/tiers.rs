//! The tier matrix (the plan's `TierManager.FEATURES`), feature gates, quotas and rate limits.
//!
//! Limits read `-1` as unlimited, as in the plan. Storage quotas are in decimal gigabytes
//! (1 GB = 10^9 bytes). The tier always comes from the server's state (the user's home, a copy
//! of D1's billing state), never from the token or the client.

use serde::{Deserialize, Serialize};

use crate::domain::Tier;
use crate::error::AppError;

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

/// Requests per minute per user: free 20, pro 60, power 120, team 200 — per member: every
/// member of a team (the owner included) has their own 200, so a team of `n` seats has
/// `200 × n` in all. `_seats` is kept for callers; it no longer multiplies one user's limit.
pub fn rate_limit(tier: Tier, _seats: u32) -> u32 {
    match tier {
        Tier::Free => 20,
        Tier::Pro => 60,
        Tier::Power => 120,
        Tier::Team => 200,
    }
}

#[cfg(test)]
mod tests {
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
    fn rate_limits_follow_the_tier_and_each_team_member_has_200() {
        assert_eq!(rate_limit(Tier::Free, 9), 20);
        assert_eq!(rate_limit(Tier::Pro, 9), 60);
        assert_eq!(rate_limit(Tier::Power, 1), 120);
        assert_eq!(rate_limit(Tier::Team, 1), 200);
        assert_eq!(rate_limit(Tier::Team, 7), 200, "per member, not per team");
        assert_eq!(rate_limit(Tier::Team, u32::MAX), 200);
    }
}
