//! Plugin marketplace bodies (plan Steps 8f and 10; DESIGN "Plugins").

use serde::{Deserialize, Serialize};

use crate::marketplace::ManifestSubmission;

/// `POST /plugins` and `POST /plugins/{id}/versions`: a manifest and its package.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PluginSubmission {
    /// The manifest; `id` must be absent (the server assigns it).
    pub manifest: ManifestSubmission,
    /// The package bytes (a zip), standard base64, 1 byte to 10 MiB decoded.
    #[cfg_attr(feature = "openapi", schema(format = Byte))]
    pub package: String,
    /// Lowercase hex SHA-256 of the decoded package.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{64}$"))]
    pub package_checksum: String,
}

/// A submission was stored and waits for review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginSubmitted {
    /// The plugin's id.
    #[cfg_attr(feature = "openapi", schema(format = Uuid))]
    pub id: String,
    /// The submitted version.
    pub version: String,
    /// Always `pending_review`.
    #[cfg_attr(feature = "openapi", schema(example = "pending_review"))]
    pub status: String,
    /// SHA-256 of the stored package.
    pub package_checksum: String,
    /// Size of the stored package (bytes).
    pub package_size: u64,
}

/// A plugin's manifest as the catalog shows it (the plan's `PluginManifest`) with its stats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginInfo {
    /// Plugin id.
    #[cfg_attr(feature = "openapi", schema(format = Uuid))]
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// The live version.
    pub version: String,
    /// Author display name.
    pub author: String,
    /// Requested permissions.
    pub permissions: Vec<String>,
    /// Category.
    pub category: String,
    /// Price in euro cents (0 = free).
    pub price_cents: u64,
    /// Mean of the ratings, rounded to hundredths; null before the first rating.
    pub avg_rating: Option<f64>,
    /// Number of ratings.
    pub rating_count: u64,
    /// Current installations.
    pub install_count: u64,
    /// The chat agents the plugin adds (their instructions and tool schemas stay on the
    /// server).
    #[serde(default)]
    pub agents: Vec<PluginAgentInfo>,
}

/// A plugin's chat agent as the catalog shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginAgentInfo {
    /// The name the agent is routed and shown by: `plugin.<plugin id>.<name>`.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "plugin.00000000-0000-4000-8000-000000000001.digest")
    )]
    pub agent: String,
    /// The declared name.
    pub name: String,
    /// What the agent is for.
    pub description: String,
    /// Its tools.
    pub tools: Vec<PluginToolInfo>,
}

/// A plugin agent's tool as the catalog shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginToolInfo {
    /// Tool name.
    pub name: String,
    /// What the tool touches when the app runs it (the app grants it these and no others).
    pub permissions: Vec<String>,
    /// `context` when the server answers it from the request's context; absent when the app
    /// runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub returns: Option<String>,
    /// For `returns: context`: the context list it reads (`tasks`, `projects`, `notes`,
    /// `checkpoints`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub context: Option<String>,
}

/// A plugin agent's whole declaration, for reviewers (instructions included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentDeclarationInfo {
    /// The name the agent would be routed and shown by: `plugin.<plugin id>.<name>`.
    pub agent: String,
    /// The declared name.
    pub name: String,
    /// The router's line.
    pub description: String,
    /// The system-prompt instructions (server-side: never shown in the catalog).
    pub instructions: String,
    /// Its tools, with their schemas.
    pub tools: Vec<ToolDeclarationInfo>,
}

/// A plugin tool's whole declaration, for reviewers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolDeclarationInfo {
    /// Tool name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of its arguments, in the canonical form the model is offered.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parameters: serde_json::Value,
    /// What it touches.
    pub permissions: Vec<String>,
    /// `context` when answered from the request's context; absent when the app runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub returns: Option<String>,
    /// For `returns: context`: the context list it reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub context: Option<String>,
}

/// `GET /plugins`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginListResponse {
    /// One page of approved plugins.
    pub plugins: Vec<PluginInfo>,
    /// Approved plugins matching the filters, over all pages.
    pub total: u64,
    /// This page (1-based).
    pub page: u32,
}

/// A version waiting for review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingReview {
    /// The plugin.
    #[cfg_attr(feature = "openapi", schema(format = Uuid))]
    pub plugin_id: String,
    /// The submitting account.
    #[cfg_attr(feature = "openapi", schema(format = Uuid))]
    pub author_id: String,
    /// The submitted manifest (`id` is the plugin's).
    pub manifest: PluginInfo,
    /// The submitted version's agent declarations in full, instructions and tool schemas
    /// included (for the reviewer only).
    #[serde(default)]
    pub agents: Vec<AgentDeclarationInfo>,
    /// The version live now, if a previous one was approved.
    pub live_version: Option<String>,
    /// SHA-256 of the package.
    pub package_checksum: String,
    /// Package size (bytes).
    pub package_size: u64,
    /// Submission time (epoch ms).
    pub submitted_at: i64,
    /// A signed link for this reviewer to download the package (valid 10 minutes).
    pub download_url: String,
    /// The submission checklist, run again on the stored version for this listing (approval
    /// runs it once more): `fields`, `agents`, `package_size`, `not_own_plugin`.
    #[serde(default)]
    pub checklist: Vec<ChecklistResult>,
}

/// One item of a pending version's checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChecklistResult {
    /// `fields` (name, description, version, author, permissions, category, price: lengths,
    /// allowed values, no binary blobs), `agents` (declarations, tool schemas, permissions that
    /// cover the tools), `package_size` (1 byte to the package limit), `not_own_plugin` (the
    /// reviewer is not the author: nobody reviews their own plugin).
    #[cfg_attr(feature = "openapi", schema(example = "fields"))]
    pub name: String,
    /// Whether the version passes it.
    pub passed: bool,
    /// The offending field paths of a failed item (`manifest.name`, …); empty when passed.
    #[serde(default)]
    pub problems: Vec<String>,
}

/// `GET /plugins/review/pending`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingReviews {
    /// Oldest submission first (at most 100).
    pub pending: Vec<PendingReview>,
}

/// `POST /plugins/{id}/review`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// `approve` or `reject`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^(approve|reject)$"))]
    pub decision: String,
    /// Notes for the author, at most 2000 characters (required to reject).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub notes: Option<String>,
}

/// A recorded review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewResult {
    /// Always true.
    pub ok: bool,
    /// The reviewed version.
    pub version: String,
    /// The plugin's status after the decision: `approved`, `rejected` or (a rejected new
    /// version of a live plugin) still `approved`.
    pub status: String,
}

/// `POST /plugins/{id}/install` (the plan's `PluginInstallRequest`); the body is optional.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PluginInstallRequest {
    /// Must equal the plugin id of the path.
    #[cfg_attr(feature = "openapi", schema(format = Uuid))]
    pub plugin_id: String,
    /// The price (cents) the buyer was shown and agreed to. Required when the install would
    /// charge (a paid plugin not bought before); when it differs from the live price the
    /// install is refused with 409 and nothing is charged.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, nullable = false))]
    #[serde(default, deserialize_with = "crate::input::opt_integral_u32")]
    pub price_cents: Option<u32>,
}

/// An installation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginInstalled {
    /// Always true.
    pub ok: bool,
    /// Signed link to the live version's package, for this user only.
    pub download_url: String,
    /// When the link expires (epoch ms).
    pub expires_at: i64,
    /// The version the link downloads.
    pub version: String,
    /// What this call charged (cents): the price on the first install of a paid plugin, else 0.
    pub charged_cents: u64,
}

/// `POST /plugins/{id}/rating`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RatingRequest {
    /// 1 to 5 stars.
    #[serde(deserialize_with = "crate::input::integral_i64")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 5))]
    pub rating: i64,
}

/// The plugin's ratings after a rating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RatingResult {
    /// Always true.
    pub ok: bool,
    /// The caller's rating.
    pub rating: u8,
    /// Mean of the ratings, rounded to hundredths.
    pub avg_rating: f64,
    /// Number of ratings.
    pub rating_count: u64,
}

/// One period of a developer's earnings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PeriodEarningsInfo {
    /// `YYYY-MM` (UTC).
    #[cfg_attr(feature = "openapi", schema(example = "2026-11"))]
    pub period: String,
    /// Paid installs.
    pub sales: u64,
    /// What buyers paid (cents).
    pub gross_cents: u64,
    /// The developer's 70% (cents, each sale rounded down).
    pub developer_cents: u64,
    /// The platform's 30% (cents).
    pub platform_cents: u64,
    /// `unpaid`, `pending` (transfer under way) or `paid`.
    #[cfg_attr(feature = "openapi", schema(example = "unpaid"))]
    pub payout_status: String,
    /// The Stripe transfer, once paid.
    pub transfer_id: Option<String>,
}

/// `GET /plugins/earnings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EarningsResponse {
    /// Newest period first (only the requested one when `period` is given).
    pub periods: Vec<PeriodEarningsInfo>,
    /// The Stripe Connect account payouts go to; null until set.
    pub payout_account: Option<String>,
}

/// `PUT /plugins/earnings/account`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PayoutAccountRequest {
    /// A Stripe Connect account id.
    #[cfg_attr(feature = "openapi", schema(pattern = "^acct_[A-Za-z0-9]{1,64}$"))]
    pub stripe_account_id: String,
}
