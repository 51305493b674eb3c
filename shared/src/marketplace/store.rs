//! The marketplace's storage port (D1 in the worker, in memory in tests) and its rows.
//!
//! A plugin has versions; each version is submitted with its manifest and package and is
//! reviewed on its own. The plugin's *live* version is the last approved one: the catalog shows
//! its manifest and installs download its package. Install counts and rating tallies are kept
//! on the plugin and are recomputed from their tables in the same transaction as every change,
//! so they can never drift.

use async_trait::async_trait;

use super::manifest::{Category, PluginManifest};
use super::rating::{RatingTally, Stars};
use super::revenue::Period;
use super::version::Version;
use crate::domain::UserId;
use crate::ports::StoreError;
use crate::storage::Checksum;

/// Where a plugin stands in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginStatus {
    /// Submitted, never approved yet.
    PendingReview,
    /// Has a live (approved) version: listed.
    Approved,
    /// Its only reviewed version was rejected and none is live.
    Rejected,
}

impl PluginStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingReview => "pending_review",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::PendingReview, Self::Approved, Self::Rejected]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// Where one submitted version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// Waiting for an admin.
    PendingReview,
    /// The live version.
    Approved,
    /// Refused by an admin.
    Rejected,
    /// Was live, replaced by a later approved version.
    Superseded,
}

impl VersionStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingReview => "pending_review",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Superseded => "superseded",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::PendingReview,
            Self::Approved,
            Self::Rejected,
            Self::Superseded,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// A plugin as stored, with the manifest of its live version (if any).
#[derive(Debug, Clone, PartialEq)]
pub struct Plugin {
    /// Plugin id.
    pub id: uuid::Uuid,
    /// The account that submitted it (earns its revenue).
    pub author_id: UserId,
    /// Catalog status.
    pub status: PluginStatus,
    /// The live version's manifest; `None` until a version is approved.
    pub live: Option<PluginManifest>,
    /// Current installations.
    pub install_count: u64,
    /// Ratings of installed users.
    pub rating: RatingTally,
    /// Submission of the first version (epoch ms).
    pub created_at: i64,
    /// When the live version was approved (epoch ms); `None` before.
    pub approved_at: Option<i64>,
}

/// One submitted version.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginVersion {
    /// Version row id.
    pub id: uuid::Uuid,
    /// The plugin.
    pub plugin_id: uuid::Uuid,
    /// The manifest as it passed the checklist at submission (stored as its JSON).
    pub manifest: PluginManifest,
    /// R2 key of the package.
    pub package_key: String,
    /// SHA-256 of the package bytes.
    pub package_checksum: Checksum,
    /// Package size (bytes).
    pub package_size: u64,
    /// Review status.
    pub status: VersionStatus,
    /// Submission time (epoch ms).
    pub submitted_at: i64,
    /// Decision time (epoch ms).
    pub decided_at: Option<i64>,
}

/// An admin's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The version goes live.
    Approve,
    /// The version is refused.
    Reject,
}

impl Decision {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
        }
    }
}

/// A recorded review (`plugin_reviews`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRecord {
    /// Review row id.
    pub id: uuid::Uuid,
    /// The plugin.
    pub plugin_id: uuid::Uuid,
    /// The reviewed version row.
    pub version_id: uuid::Uuid,
    /// The admin.
    pub reviewer_id: UserId,
    /// Approve or reject.
    pub decision: Decision,
    /// The reviewer's notes (shown to the author).
    pub notes: String,
    /// When (epoch ms).
    pub reviewed_at: i64,
}

/// How the catalog is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Highest average rating first (unrated last), then most ratings.
    Rating,
    /// Most installations first.
    Installs,
    /// Most recently approved first.
    Newest,
}

/// A catalog query over approved plugins. Ties are broken by plugin id, so pages are stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogQuery {
    /// Only this category.
    pub category: Option<Category>,
    /// Case-insensitive (ASCII) substring of the name or the description.
    pub q: Option<String>,
    /// Order.
    pub sort: Sort,
    /// 1-based page.
    pub page: u32,
    /// Page size.
    pub per_page: u32,
}

/// A paid install (`revenue_events`): one per buyer and plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevenueEvent {
    /// Row id.
    pub id: uuid::Uuid,
    /// The plugin.
    pub plugin_id: uuid::Uuid,
    /// The buyer.
    pub user_id: UserId,
    /// The plugin's author at the time of sale.
    pub developer_id: UserId,
    /// What the buyer paid (cents).
    pub amount_cents: u64,
    /// 70% (rounded down).
    pub developer_share_cents: u64,
    /// The rest.
    pub platform_share_cents: u64,
    /// ISO currency (lowercase).
    pub currency: String,
    /// The payment's id at the processor.
    pub payment_id: String,
    /// Earnings period of the sale.
    pub period: Period,
    /// When (epoch ms).
    pub created_at: i64,
}

/// A developer's earnings in one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodEarnings {
    /// The period.
    pub period: Period,
    /// Paid installs.
    pub sales: u64,
    /// Sum of amounts (cents).
    pub gross_cents: u64,
    /// Sum of developer shares (cents).
    pub developer_cents: u64,
    /// Sum of platform shares (cents).
    pub platform_cents: u64,
    /// The payout of the period, if one was started.
    pub payout: Option<Payout>,
}

/// Where a payout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    /// Started; the transfer has not been confirmed yet (retried with the same key).
    Pending,
    /// Transferred.
    Paid,
}

impl PayoutStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Paid]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// One developer's payout for one period (`payouts`, unique per developer and period).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payout {
    /// Row id.
    pub id: uuid::Uuid,
    /// The developer.
    pub developer_id: UserId,
    /// The period.
    pub period: Period,
    /// Sum of the period's developer shares (cents), fixed when the payout starts.
    pub amount_cents: u64,
    /// The Connect account paid.
    pub destination: String,
    /// The transfer's idempotency key.
    pub idempotency_key: String,
    /// Status.
    pub status: PayoutStatus,
    /// The processor's transfer id once paid.
    pub transfer_id: Option<String>,
    /// Created (epoch ms).
    pub created_at: i64,
    /// Paid (epoch ms).
    pub paid_at: Option<i64>,
}

/// Earnings of a closed period not yet paid out, with the developer's Connect account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuePayout {
    /// The developer.
    pub developer_id: UserId,
    /// The period.
    pub period: Period,
    /// Sum of the unpaid developer shares of the period (cents).
    pub amount_cents: u64,
    /// The developer's Connect account.
    pub destination: String,
}

/// The marketplace's tables.
#[async_trait(?Send)]
pub trait PluginStore {
    /// Creates a plugin (status `pending_review`) with its first version, atomically — unless
    /// `author` already has `max_pending` versions pending review, in which case nothing is
    /// written and the answer is `false`.
    async fn insert_plugin(
        &self,
        id: uuid::Uuid,
        author: UserId,
        first: &PluginVersion,
        now_ms: i64,
        max_pending: u64,
    ) -> Result<bool, StoreError>;
    /// Adds a version to an existing plugin unless its author already has `max_pending`
    /// versions pending review (then `false`, nothing written). `Conflict` when the plugin
    /// already has a version pending review or this version number exists.
    async fn insert_version(
        &self,
        version: &PluginVersion,
        max_pending: u64,
    ) -> Result<bool, StoreError>;
    /// How many versions of plugins by `author` are pending review.
    async fn pending_by_author(&self, author: UserId) -> Result<u64, StoreError>;
    /// A plugin in any status.
    async fn plugin(&self, id: uuid::Uuid) -> Result<Option<Plugin>, StoreError>;
    /// Every version of a plugin, oldest submission first.
    async fn versions(&self, plugin: uuid::Uuid) -> Result<Vec<PluginVersion>, StoreError>;
    /// The live version (status approved) of a plugin.
    async fn live_version(&self, plugin: uuid::Uuid) -> Result<Option<PluginVersion>, StoreError>;
    /// Versions pending review with their plugin, oldest first, at most `limit`.
    async fn pending(&self, limit: u32) -> Result<Vec<(Plugin, PluginVersion)>, StoreError>;
    /// Applies a review atomically: records it; on approve the version becomes live (the
    /// previous live one `superseded`), the plugin takes its manifest and becomes `approved`;
    /// on reject the version is `rejected` and a plugin without a live version becomes
    /// `rejected`. `Conflict` when the version is no longer pending (a concurrent review).
    async fn decide(&self, review: &ReviewRecord) -> Result<(), StoreError>;
    /// Approved plugins matching `query` (one page) and how many match in all.
    async fn catalog(&self, query: &CatalogQuery) -> Result<(Vec<Plugin>, u64), StoreError>;
    /// When `user` installed `plugin`, if installed.
    async fn installed_at(
        &self,
        plugin: uuid::Uuid,
        user: UserId,
    ) -> Result<Option<i64>, StoreError>;
    /// The user's purchase of the plugin, if they ever bought it.
    async fn purchase(
        &self,
        plugin: uuid::Uuid,
        user: UserId,
    ) -> Result<Option<RevenueEvent>, StoreError>;
    /// Records an installation (and the purchase, when given) atomically; both are
    /// insert-if-absent. Returns whether the installation is new.
    async fn install(
        &self,
        plugin: uuid::Uuid,
        user: UserId,
        purchase: Option<&RevenueEvent>,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Removes an installation and the user's rating. Returns whether it existed.
    async fn uninstall(&self, plugin: uuid::Uuid, user: UserId) -> Result<bool, StoreError>;
    /// Sets the user's rating (insert or replace) and returns the plugin's new tally.
    /// `Conflict` when the user no longer has the plugin installed (a concurrent uninstall).
    async fn rate(
        &self,
        plugin: uuid::Uuid,
        user: UserId,
        stars: Stars,
        now_ms: i64,
    ) -> Result<RatingTally, StoreError>;
    /// The user's current rating of the plugin.
    async fn rating_of(
        &self,
        plugin: uuid::Uuid,
        user: UserId,
    ) -> Result<Option<Stars>, StoreError>;
    /// Earnings of plugins authored by `developer`, per period, newest period first.
    async fn earnings(&self, developer: UserId) -> Result<Vec<PeriodEarnings>, StoreError>;
    /// Sets the developer's Stripe Connect account for payouts.
    async fn set_payout_account(&self, developer: UserId, account: &str) -> Result<(), StoreError>;
    /// The developer's Stripe Connect account.
    async fn payout_account(&self, developer: UserId) -> Result<Option<String>, StoreError>;
    /// Unpaid earnings of periods before `before`, grouped per developer with a Connect
    /// account, oldest period first. Periods whose payout already started are included (with
    /// their unpaid amount) so a failed transfer is retried.
    async fn due_payouts(&self, before: Period) -> Result<Vec<DuePayout>, StoreError>;
    /// Starts the payout of (developer, period) or returns the one already started (the first
    /// amount and key win).
    async fn start_payout(&self, payout: &Payout) -> Result<Payout, StoreError>;
    /// Marks a payout paid and links the period's unpaid revenue events to it, atomically.
    async fn finish_payout(
        &self,
        payout_id: uuid::Uuid,
        transfer_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;
}

/// The version number a plugin's next submission must exceed: the greatest one submitted.
pub fn latest_version(versions: &[PluginVersion]) -> Option<&Version> {
    versions.iter().map(|v| &v.manifest.version).max()
}
