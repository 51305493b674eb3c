//! `GET /auth/export`: everything the service holds about the caller.

use serde::{Deserialize, Serialize};

use super::accounts::{SecurityEventInfo, SessionInfo};
use crate::domain::{Role, Tier};

/// The whole export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountExport {
    /// When it was made (epoch ms).
    pub exported_at: i64,
    /// When the `download_url`s stop working (epoch ms).
    pub links_expire_at: i64,
    /// The account.
    pub profile: ExportProfile,
    /// Open sessions.
    pub sessions: Vec<SessionInfo>,
    /// The newest 100 security events.
    pub security_events: Vec<SecurityEventInfo>,
    /// Stripe subscriptions, newest first.
    pub subscriptions: Vec<ExportSubscription>,
    /// Live cloud records (metadata, and a link to each encrypted blob).
    pub records: Vec<ExportBlob>,
    /// Backups (metadata, and a link to each encrypted backup).
    pub backups: Vec<ExportBlob>,
    /// Multipart backup uploads in progress.
    pub uploads: Vec<ExportUpload>,
    /// Stored vectors (metadata; the values and payloads are the client's encrypted data and
    /// are returned by search).
    pub vectors: Vec<ExportVector>,
    /// Plugins the user submitted.
    pub plugins_authored: Vec<ExportPlugin>,
    /// Plugins the user installed.
    pub installs: Vec<ExportInstall>,
    /// The user's ratings.
    pub ratings: Vec<ExportRating>,
    /// Plugins the user bought.
    pub purchases: Vec<ExportPurchase>,
    /// The user's earnings as a developer, per month.
    pub earnings: Vec<ExportEarnings>,
    /// The team the user belongs to, if any.
    pub team: Option<ExportTeam>,
}

/// The user's membership of a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportTeam {
    /// Team id.
    pub team_id: String,
    /// The user's role in it.
    pub role: crate::teams::TeamRole,
    /// When the user joined (epoch ms).
    pub joined_at: i64,
}

/// The account itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportProfile {
    /// User id.
    pub id: String,
    /// Email address.
    pub email: String,
    /// Whether the address was verified.
    pub email_verified: bool,
    /// Role.
    pub role: Role,
    /// Paid tier as stored.
    pub tier: Tier,
    /// When a past-due tier lapses, if it does.
    pub tier_until: Option<i64>,
    /// Whether two-factor authentication is on.
    pub two_factor_enabled: bool,
    /// The Stripe Connect account payouts go to, if set.
    pub payout_account: Option<String>,
    /// A tier an administrator granted, while it is in force or not (with `comp_until`).
    #[serde(default)]
    pub comp_tier: Option<Tier>,
    /// When that grant ends (epoch ms, exclusive).
    #[serde(default)]
    pub comp_until: Option<i64>,
    /// When an administrator suspended the account, if it is suspended.
    #[serde(default)]
    pub suspended_at: Option<i64>,
    /// Creation (epoch ms).
    pub created_at: i64,
}

/// One subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportSubscription {
    /// Stripe's id.
    pub stripe_subscription_id: String,
    /// Tier.
    pub tier: Tier,
    /// Stripe's status.
    pub status: String,
    /// Seats.
    pub seats: u32,
    /// End of the current period (epoch ms).
    pub current_period_end: Option<i64>,
    /// Whether it ends at the period's end.
    pub cancel_at_period_end: bool,
    /// Creation (epoch ms).
    pub created_at: i64,
}

/// A record or backup blob: metadata and a signed, short-lived link to its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportBlob {
    /// Record or backup id.
    pub id: String,
    /// The record's table (records only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The record's version, or the backup's format version.
    pub version: i64,
    /// The backup's client time (backups only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// SHA-256 of the bytes.
    pub checksum: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Creation (epoch ms).
    pub created_at: i64,
    /// Last change (epoch ms).
    pub updated_at: i64,
    /// `GET` it with the same bearer token until `links_expire_at`.
    pub download_url: String,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportUpload {
    /// Upload id.
    pub id: String,
    /// Parts stored.
    pub parts: u32,
    /// Their bytes.
    pub size_bytes: u64,
    /// Opened (epoch ms).
    pub created_at: i64,
    /// Abandoned after (epoch ms).
    pub expires_at: i64,
}

/// A stored vector's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportVector {
    /// Client id.
    pub id: String,
    /// Dimensions.
    pub dims: u32,
    /// Bytes it takes.
    pub size_bytes: u64,
    /// SHA-256 of its payload.
    pub checksum: String,
}

/// A plugin the user submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportPlugin {
    /// Plugin id.
    pub id: String,
    /// Its live name, once approved.
    pub name: Option<String>,
    /// `pending_review`, `approved` or `rejected`.
    pub status: String,
    /// Submitted (epoch ms).
    pub created_at: i64,
}

/// An installation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportInstall {
    /// Plugin id.
    pub plugin_id: String,
    /// When (epoch ms).
    pub installed_at: i64,
}

/// A rating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportRating {
    /// Plugin id.
    pub plugin_id: String,
    /// 1–5.
    pub rating: u8,
    /// When (epoch ms).
    pub updated_at: i64,
}

/// A purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportPurchase {
    /// Plugin id.
    pub plugin_id: String,
    /// Amount charged (cents).
    pub amount_cents: u64,
    /// Currency (ISO, lowercase).
    pub currency: String,
    /// When (epoch ms).
    pub created_at: i64,
}

/// A month's earnings as a developer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportEarnings {
    /// `YYYY-MM` (UTC).
    pub period: String,
    /// Sales.
    pub sales: u32,
    /// The developer's share (cents).
    pub developer_share_cents: u64,
    /// Whether it was paid out.
    pub paid: bool,
}
