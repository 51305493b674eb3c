//! Bodies of the admin endpoints (`/api/v1/admin/*`, role `admin` only).

use serde::{Deserialize, Serialize};

use crate::domain::Tier;

/// One account as an administrator sees it (`GET /admin/users?email=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminUser {
    /// The user id.
    #[cfg_attr(feature = "openapi", schema(format = Uuid))]
    pub id: String,
    /// The (normalised) email address.
    pub email: String,
    /// `user` or `admin`.
    pub role: String,
    /// Whether the address was verified.
    pub email_verified: bool,
    /// The tier in force now (the comp counted).
    pub tier: Tier,
    /// The tier the account pays for (as stored).
    pub paid_tier: Tier,
    /// When the paid tier lapses (a past-due subscription), if it does.
    pub paid_tier_until: Option<i64>,
    /// A comped tier and its end, if one was granted (even if it has ended).
    pub comp: Option<CompInfo>,
    /// Seats of the team subscription (1 otherwise).
    pub seats: u32,
    /// Registration time (epoch ms).
    pub created_at: i64,
    /// The account's last sign-in or token refresh (epoch ms); `None` when it never had a
    /// session.
    pub last_seen_at: Option<i64>,
    /// Open sessions (signed-in devices).
    pub sessions: u32,
    /// When the account was suspended; `None` when it is not.
    pub suspended_at: Option<i64>,
}

/// A comped tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompInfo {
    /// The tier granted.
    pub tier: Tier,
    /// Its end (epoch ms, exclusive).
    pub until: i64,
}

/// `GET /admin/users?email=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminUsers {
    /// The account with that address (none or one).
    pub users: Vec<AdminUser>,
}

/// `POST /admin/users/{id}/comp`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CompRequest {
    /// `pro`, `power` or `team`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^(pro|power|team)$"))]
    pub tier: String,
    /// When the comp ends (epoch ms): in the future, at most 366 days from now.
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    #[serde(deserialize_with = "crate::input::integral_i64")]
    pub until: i64,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// The entry's id.
    #[cfg_attr(feature = "openapi", schema(format = Uuid))]
    pub id: String,
    /// The administrator who acted.
    #[cfg_attr(feature = "openapi", schema(format = Uuid))]
    pub admin_id: String,
    /// `user_lookup`, `suspend`, `unsuspend`, `comp` or `plugin_review`.
    pub action: String,
    /// What it was done to (a user id, a plugin id), if anything.
    pub target: Option<String>,
    /// The action's parameters (a comp's tier and end, a review's decision).
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)
    )]
    pub detail: Option<serde_json::Value>,
    /// When (epoch ms).
    pub at: i64,
}

/// `GET /admin/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditLog {
    /// Newest first (at most 200).
    pub entries: Vec<AuditEntry>,
}

/// One developer's payout of one month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminPayout {
    /// The developer.
    #[cfg_attr(feature = "openapi", schema(format = Uuid))]
    pub developer_id: String,
    /// The amount (euro cents).
    pub amount_cents: u64,
    /// `pending` (the transfer not confirmed yet) or `paid`.
    pub status: String,
    /// When the payout was fixed (epoch ms).
    pub created_at: i64,
    /// When the transfer succeeded (epoch ms).
    pub paid_at: Option<i64>,
}

/// The payouts of one UTC month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutMonth {
    /// `YYYY-MM`.
    pub period: String,
    /// `paid` when every payout of the month is paid, else `pending`.
    pub status: String,
    /// Sum of the month's payouts (cents).
    pub total_cents: u64,
    /// Sum of those paid (cents).
    pub paid_cents: u64,
    /// The month's payouts.
    pub payouts: Vec<AdminPayout>,
}

/// `GET /admin/payouts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminPayouts {
    /// Newest month first (the last 24 months with payouts).
    pub months: Vec<PayoutMonth>,
}
