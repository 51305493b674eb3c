//! The marketplace's operations: submission and review, the catalog, installs with signed
//! downloads and paid purchases, ratings, earnings and the monthly payout run.
//!
//! Who may do what:
//! - any signed-in user may submit plugins (becoming their author), see their earnings and set
//!   a payout account;
//! - the catalog, installs and ratings need the `plugin_marketplace` feature (Power and Team),
//!   read from D1 by the caller — never from the token;
//! - the review queue and decisions need the admin role, read from D1 here;
//! - a package is downloaded with a signed token only (issued at install, or to a reviewer).
//!
//! Ordering keeps failures harmless: a package is written to R2 before its row (a crash leaves
//! an unreferenced object, never a row without a package); a purchase is charged before it is
//! recorded, with an idempotency key per buyer and plugin, so retrying a failed install after
//! a successful charge records the same payment instead of charging twice.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::download::{self, DownloadClaims};
use super::manifest::{check_package_size, check_text, Category, PackageRecord, PluginManifest};
use super::rating::Stars;
use super::revenue::{payout_idempotency_key, split, Period};
use super::store::{
    latest_version, CatalogQuery, Decision, Payout, PayoutStatus, Plugin, PluginStatus,
    PluginStore, PluginVersion, RevenueEvent, ReviewRecord, Sort, VersionStatus,
};
use super::{package_key, MAX_PACKAGE_BYTES};
use crate::api::{
    ChecklistResult, EarningsResponse, PayoutAccountRequest, PendingReview, PendingReviews,
    PeriodEarningsInfo, PluginInfo, PluginInstallRequest, PluginInstalled, PluginListResponse,
    PluginSubmission, PluginSubmitted, RatingRequest, RatingResult, ReviewRequest, ReviewResult,
};
use crate::backup::multipart::MultipartBlobs;
use crate::domain::{Role, Tier, UserId};
use crate::error::{AppError, FieldError, Upstream};
use crate::ports::{
    new_uuid, BillingStore, ChargeRequest, Clock, Payments, Random, RateLimiter, TransferRequest,
    UserStore,
};
use crate::rate_limit::{RateOp, RateRule};
use crate::storage::{BlobStore, Checksum};
use crate::tiers::{check_feature, Feature};

/// Currency of plugin prices and payouts.
pub const CURRENCY: &str = "eur";
/// Default catalog page size.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Largest catalog page size.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Highest catalog page number.
pub const MAX_PAGE: u32 = 10_000;
/// Longest search text (characters).
pub const MAX_QUERY_CHARS: usize = 100;
/// Longest review notes (characters).
pub const MAX_NOTES_CHARS: usize = 2000;
/// Most versions listed in the review queue at once.
pub const PENDING_LIMIT: u32 = 100;
/// Largest JSON body of a submission: the base64 of the largest package plus 64 KiB.
pub const SUBMISSION_BODY_LIMIT: u64 = MAX_PACKAGE_BYTES.div_ceil(3) * 4 + 64 * 1024;
/// Most versions one author may have waiting for review at once (403 `quota_exceeded` beyond).
pub const MAX_PENDING_PER_AUTHOR: u64 = 5;
/// Submissions (new plugins and versions) one author may make: 20 an hour — room to fix a
/// few checklist findings, not to flood the review queue.
pub const SUBMISSION_RULE: RateRule = RateRule {
    limit: 20,
    window_ms: 3_600_000,
};

/// What a download token grants, resolved to the stored package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRef {
    /// R2 key.
    pub key: String,
    /// SHA-256 of the bytes.
    pub checksum: Checksum,
    /// Size (bytes).
    pub size: u64,
    /// The version.
    pub version: String,
}

/// What a payout run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PayoutReport {
    /// Transfers made (or confirmed) in this run.
    pub paid: u32,
    /// Transfers that failed and will be retried on the next run.
    pub failed: u32,
}

/// The marketplace over its ports. `B` holds packages (R2 in the worker).
pub struct Marketplace<'a, B> {
    /// Marketplace tables.
    pub store: &'a dyn PluginStore,
    /// Package bytes.
    pub packages: &'a B,
    /// Accounts (the admin role).
    pub users: &'a dyn UserStore,
    /// Stripe customers.
    pub billing: &'a dyn BillingStore,
    /// Charges and transfers.
    pub payments: &'a dyn Payments,
    /// Per-author submission counters.
    pub limiter: &'a dyn RateLimiter,
    /// Time.
    pub clock: &'a dyn Clock,
    /// Ids.
    pub rng: &'a dyn Random,
    /// Key of download-token MACs.
    pub download_secret: &'a [u8],
    /// Origin that download links point at (no trailing slash), e.g. `https://api.adiuva.app`.
    pub base_url: &'a str,
}

impl<B> std::fmt::Debug for Marketplace<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Marketplace")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// The refusal of a submission beyond the pending-review limit.
fn pending_quota(used: u64) -> AppError {
    AppError::LimitReached {
        what: "versions pending review",
        used,
        limit: MAX_PENDING_PER_AUTHOR,
    }
}

/// A plugin id from a path: anything that is not a UUID names no plugin (404).
pub fn plugin_id(raw: &str) -> Result<uuid::Uuid, AppError> {
    uuid::Uuid::try_parse(raw).map_err(|_| AppError::NotFound)
}

/// Catalog query parameters, parsed at the edge: `category`, `q`, `page` (≥ 1), `limit`
/// (1–100, default 20) and `sort` (`rating`, the default, `installs` or `newest`). Unknown
/// parameters are ignored; every bad one is named.
///
/// # Errors
/// 422 listing every invalid parameter.
pub fn catalog_query<'p>(
    params: impl IntoIterator<Item = (&'p str, &'p str)>,
) -> Result<CatalogQuery, AppError> {
    let mut query = CatalogQuery {
        category: None,
        q: None,
        sort: Sort::Rating,
        page: 1,
        per_page: DEFAULT_PAGE_SIZE,
    };
    let mut errors = Vec::new();
    let number =
        |raw: &str, min: u32, max: u32| raw.parse::<u32>().ok().filter(|n| (min..=max).contains(n));
    for (key, value) in params {
        match key {
            "category" => {
                if let Some(c) = Category::parse(value) {
                    query.category = Some(c);
                } else {
                    let allowed: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
                    errors.push(FieldError::new(
                        "category",
                        format!("must be one of {}", allowed.join(", ")),
                    ));
                }
            }
            "q" => {
                let q = value.trim();
                if q.chars().count() > MAX_QUERY_CHARS {
                    errors.push(FieldError::new(
                        "q",
                        format!("must be at most {MAX_QUERY_CHARS} characters"),
                    ));
                } else if q.chars().any(char::is_control) {
                    errors.push(FieldError::new("q", "must not contain control characters"));
                } else {
                    query.q = (!q.is_empty()).then(|| q.to_owned());
                }
            }
            "page" => match number(value, 1, MAX_PAGE) {
                Some(n) => query.page = n,
                None => errors.push(FieldError::new(
                    "page",
                    format!("must be an integer from 1 to {MAX_PAGE}"),
                )),
            },
            "limit" => match number(value, 1, MAX_PAGE_SIZE) {
                Some(n) => query.per_page = n,
                None => errors.push(FieldError::new(
                    "limit",
                    format!("must be an integer from 1 to {MAX_PAGE_SIZE}"),
                )),
            },
            "sort" => match value {
                "rating" => query.sort = Sort::Rating,
                "installs" => query.sort = Sort::Installs,
                "newest" => query.sort = Sort::Newest,
                _ => errors.push(FieldError::new(
                    "sort",
                    "must be one of rating, installs, newest",
                )),
            },
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(query)
    } else {
        Err(AppError::Validation(errors))
    }
}

/// The catalog view of a manifest with a plugin's stats.
fn info(id: uuid::Uuid, manifest: &PluginManifest, plugin: &Plugin) -> PluginInfo {
    #[allow(clippy::cast_precision_loss)] // hundredths of a star: at most 500
    let avg_rating = plugin.rating.average_hundredths().map(|h| h as f64 / 100.0);
    PluginInfo {
        id: id.hyphenated().to_string(),
        name: manifest.name.clone(),
        description: manifest.description.clone(),
        version: manifest.version.to_string(),
        author: manifest.author.clone(),
        permissions: manifest
            .permissions
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
        category: manifest.category.as_str().to_owned(),
        price_cents: manifest.price_cents,
        avg_rating,
        rating_count: plugin.rating.count,
        install_count: plugin.install_count,
        agents: manifest.agents.iter().map(|a| a.catalog_info(id)).collect(),
    }
}

/// Prefixes the fields of a manifest's validation errors with `manifest.`.
fn in_manifest(e: AppError) -> AppError {
    match e {
        AppError::Validation(fields) => AppError::Validation(
            fields
                .into_iter()
                .map(|f| FieldError::new(format!("manifest.{}", f.field), f.message))
                .collect(),
        ),
        other => other,
    }
}

/// The checklist of a pending version, run again on what is stored (see [`ChecklistResult`]).
fn checklist(plugin: &Plugin, version: &PluginVersion, reviewer: UserId) -> Vec<ChecklistResult> {
    let manifest_problems: Vec<String> = match serde_json::to_vec(&version.manifest)
        .map_err(|e| AppError::internal(format!("serialising a manifest: {e}")))
        .and_then(|stored| PluginManifest::from_json(&stored))
        .map_err(in_manifest)
    {
        Ok(_) => Vec::new(),
        Err(AppError::Validation(fields)) => fields.into_iter().map(|f| f.field).collect(),
        Err(_) => vec!["manifest".to_owned()],
    };
    let (agents, fields): (Vec<String>, Vec<String>) = manifest_problems
        .into_iter()
        .partition(|f| f.starts_with("manifest.agents"));
    let item = |name: &str, problems: Vec<String>| ChecklistResult {
        name: name.to_owned(),
        passed: problems.is_empty(),
        problems,
    };
    let size = match check_package_size(version.package_size) {
        Ok(()) => Vec::new(),
        Err(_) => vec!["package".to_owned()],
    };
    let own = if plugin.author_id == reviewer {
        vec!["author_id".to_owned()]
    } else {
        Vec::new()
    };
    vec![
        item("fields", fields),
        item("agents", agents),
        item("package_size", size),
        item("not_own_plugin", own),
    ]
}

/// A submission's checked manifest, package bytes and declared checksum.
fn parse_submission(
    sub: &PluginSubmission,
) -> Result<(PluginManifest, Vec<u8>, Checksum), AppError> {
    let manifest = PluginManifest::parse(&sub.manifest).map_err(in_manifest);
    let checksum = Checksum::parse(&sub.package_checksum, "package_checksum");
    // Refuse an oversized package before decoding it.
    let bytes = if (sub.package.len() as u64) > MAX_PACKAGE_BYTES.div_ceil(3) * 4 {
        return Err(AppError::PayloadTooLarge {
            limit: MAX_PACKAGE_BYTES,
        });
    } else {
        STANDARD
            .decode(&sub.package)
            .map_err(|_| FieldError::new("package", "must be standard base64"))
    };
    match (manifest, bytes, checksum) {
        (Ok(m), Ok(b), Ok(c)) => Ok((m, b, c)),
        (m, b, c) => {
            let mut fields = match m {
                Err(AppError::Validation(f)) => f,
                Err(other) => return Err(other),
                Ok(_) => Vec::new(),
            };
            fields.extend(b.err());
            fields.extend(c.err());
            Err(AppError::Validation(fields))
        }
    }
}

impl<B> Marketplace<'_, B>
where
    B: BlobStore + MultipartBlobs,
    B::Body: From<Vec<u8>>,
{
    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    async fn require_admin(&self, user: UserId) -> Result<(), AppError> {
        match self.users.find_by_id(user).await? {
            Some(u) if u.role == Role::Admin => Ok(()),
            Some(_) => Err(AppError::Forbidden("plugin review is for admins only")),
            None => Err(AppError::Unauthorized),
        }
    }

    fn download_url(
        &self,
        plugin: uuid::Uuid,
        version: &super::Version,
        user: UserId,
    ) -> (String, i64) {
        let claims = DownloadClaims::new(plugin, version.clone(), user, self.now());
        let token = download::sign(self.download_secret, &claims);
        (
            format!(
                "{}/api/v1/plugins/{}/package?token={token}",
                self.base_url,
                plugin.hyphenated()
            ),
            claims.expires_at_ms,
        )
    }

    /// Takes one of `author`'s submissions (before any parsing or storing), then refuses when
    /// the author already has [`MAX_PENDING_PER_AUTHOR`] versions waiting for review.
    async fn admit_submission(&self, author: UserId) -> Result<(), AppError> {
        let key = format!("plugins:submit:{author}");
        let d = self
            .limiter
            .check(&key, SUBMISSION_RULE, RateOp::Acquire)
            .await?;
        if !d.allowed {
            tracing::info!(user_id = %author, "plugin submission rate limited");
            return Err(AppError::RateLimited {
                retry_after_secs: d.retry_after_secs(),
            });
        }
        let pending = self.store.pending_by_author(author).await?;
        if pending >= MAX_PENDING_PER_AUTHOR {
            return Err(pending_quota(pending));
        }
        Ok(())
    }

    /// Checks, stores the package, then the version row (which is refused atomically when the
    /// author reached the pending limit meanwhile); the package is removed again when the row
    /// is not written.
    async fn store_version(
        &self,
        plugin: uuid::Uuid,
        manifest: PluginManifest,
        bytes: Vec<u8>,
        declared: &Checksum,
        first_of: Option<UserId>,
    ) -> Result<PluginSubmitted, AppError> {
        let record = PackageRecord::record(&bytes, Some(declared))?;
        let version_id = new_uuid(self.rng);
        let key = package_key(plugin, &manifest.version, version_id);
        if !self
            .packages
            .put(&key, B::Body::from(bytes), &record.checksum)
            .await?
        {
            return Err(AppError::ChecksumMismatch);
        }
        let version = PluginVersion {
            id: version_id,
            plugin_id: plugin,
            manifest,
            package_key: key.clone(),
            package_checksum: record.checksum.clone(),
            package_size: record.size_bytes,
            status: VersionStatus::PendingReview,
            submitted_at: self.now(),
            decided_at: None,
        };
        let written = match first_of {
            Some(author) => {
                self.store
                    .insert_plugin(
                        plugin,
                        author,
                        &version,
                        version.submitted_at,
                        MAX_PENDING_PER_AUTHOR,
                    )
                    .await
            }
            None => {
                self.store
                    .insert_version(&version, MAX_PENDING_PER_AUTHOR)
                    .await
            }
        }
        .map_err(AppError::from)
        .and_then(|stored| {
            if stored {
                Ok(())
            } else {
                Err(pending_quota(MAX_PENDING_PER_AUTHOR))
            }
        });
        if let Err(e) = written {
            if let Err(cleanup) = self.packages.delete(&key).await {
                tracing::warn!(error = %cleanup, key, "orphan plugin package left in R2");
            }
            return Err(e);
        }
        tracing::info!(
            plugin_id = %plugin,
            version = %version.manifest.version,
            size_bytes = record.size_bytes,
            "plugin version submitted for review"
        );
        Ok(PluginSubmitted {
            id: plugin.hyphenated().to_string(),
            version: version.manifest.version.to_string(),
            status: VersionStatus::PendingReview.as_str().to_owned(),
            package_checksum: record.checksum.as_str().to_owned(),
            package_size: record.size_bytes,
        })
    }

    /// `POST /plugins`: a new plugin authored by `author`, pending review.
    ///
    /// # Errors
    /// 422 naming every bad field, 413 for a package over 10 MiB, 400 `checksum_mismatch`.
    pub async fn submit(
        &self,
        author: UserId,
        sub: PluginSubmission,
    ) -> Result<PluginSubmitted, AppError> {
        self.admit_submission(author).await?;
        let (manifest, bytes, declared) = parse_submission(&sub)?;
        let id = new_uuid(self.rng);
        self.store_version(id, manifest, bytes, &declared, Some(author))
            .await
    }

    /// `POST /plugins/{id}/versions`: a new version of the author's plugin, pending review.
    ///
    /// # Errors
    /// 404 unless `author` wrote the plugin; 422 when the version is not above every submitted
    /// one; 409 while another version is pending; as [`Self::submit`].
    pub async fn submit_version(
        &self,
        author: UserId,
        plugin: uuid::Uuid,
        sub: PluginSubmission,
    ) -> Result<PluginSubmitted, AppError> {
        self.admit_submission(author).await?;
        let (manifest, bytes, declared) = parse_submission(&sub)?;
        let owned = self.store.plugin(plugin).await?;
        if owned.is_none_or(|p| p.author_id != author) {
            return Err(AppError::NotFound);
        }
        let versions = self.store.versions(plugin).await?;
        if versions
            .iter()
            .any(|v| v.status == VersionStatus::PendingReview)
        {
            return Err(AppError::Conflict(
                "a version of this plugin is already pending review",
            ));
        }
        if let Some(latest) = latest_version(&versions) {
            if manifest.version <= *latest {
                return Err(AppError::field(
                    "manifest.version",
                    format!("must be greater than the latest submitted version {latest}"),
                ));
            }
        }
        self.store_version(plugin, manifest, bytes, &declared, None)
            .await
    }

    /// `GET /plugins/review/pending`: the queue, oldest first, with a download link for the
    /// reviewer.
    ///
    /// # Errors
    /// 403 `forbidden` for non-admins.
    pub async fn pending(&self, reviewer: UserId) -> Result<PendingReviews, AppError> {
        self.require_admin(reviewer).await?;
        let pending = self.store.pending(PENDING_LIMIT).await?;
        Ok(PendingReviews {
            pending: pending
                .into_iter()
                .map(|(plugin, version)| {
                    let (download_url, _) =
                        self.download_url(plugin.id, &version.manifest.version, reviewer);
                    PendingReview {
                        plugin_id: plugin.id.hyphenated().to_string(),
                        author_id: plugin.author_id.to_string(),
                        manifest: info(plugin.id, &version.manifest, &plugin),
                        agents: version
                            .manifest
                            .agents
                            .iter()
                            .map(|a| a.review_info(plugin.id))
                            .collect(),
                        live_version: plugin.live.as_ref().map(|m| m.version.to_string()),
                        package_checksum: version.package_checksum.as_str().to_owned(),
                        package_size: version.package_size,
                        submitted_at: version.submitted_at,
                        download_url,
                        checklist: checklist(&plugin, &version, reviewer),
                    }
                })
                .collect(),
        })
    }

    /// `POST /plugins/{id}/review`: approves or rejects the pending version. Approval runs the
    /// checklist again and re-hashes the stored package.
    ///
    /// # Errors
    /// 403 for non-admins and for the plugin's own author; 404 for an unknown plugin; 409 when
    /// no version is pending (or a concurrent review won), or when the stored package no longer
    /// matches its checksum; 422 for a bad decision or notes, or a manifest that fails the
    /// checklist now.
    pub async fn review(
        &self,
        reviewer: UserId,
        plugin_id: uuid::Uuid,
        req: ReviewRequest,
    ) -> Result<ReviewResult, AppError> {
        self.require_admin(reviewer).await?;
        let decision = match req.decision.as_str() {
            "approve" => Some(Decision::Approve),
            "reject" => Some(Decision::Reject),
            _ => None,
        };
        let notes = req.notes.as_deref().unwrap_or("").trim().to_owned();
        let mut errors = Vec::new();
        if decision.is_none() {
            errors.push(FieldError::new("decision", "must be approve or reject"));
        }
        if notes.chars().count() > MAX_NOTES_CHARS {
            errors.push(FieldError::new(
                "notes",
                format!("must be at most {MAX_NOTES_CHARS} characters"),
            ));
        } else if let Err(e) = check_text(&notes, "notes", true) {
            errors.push(e);
        } else if decision == Some(Decision::Reject) && notes.is_empty() {
            errors.push(FieldError::new(
                "notes",
                "must say why the version is rejected",
            ));
        }
        let Some(decision) = decision.filter(|_| errors.is_empty()) else {
            return Err(AppError::Validation(errors));
        };
        let plugin = self
            .store
            .plugin(plugin_id)
            .await?
            .ok_or(AppError::NotFound)?;
        if plugin.author_id == reviewer {
            return Err(AppError::Forbidden(
                "reviewers cannot review their own plugins",
            ));
        }
        let version = self
            .store
            .versions(plugin_id)
            .await?
            .into_iter()
            .find(|v| v.status == VersionStatus::PendingReview)
            .ok_or(AppError::Conflict(
                "no version of this plugin is pending review",
            ))?;
        if decision == Decision::Approve {
            let stored = serde_json::to_vec(&version.manifest)
                .map_err(|e| AppError::internal(format!("serialising a manifest: {e}")))?;
            PluginManifest::from_json(&stored).map_err(in_manifest)?;
            match self.packages.digest(&version.package_key).await? {
                Some((sum, size))
                    if sum == version.package_checksum && size == version.package_size => {}
                other => {
                    tracing::error!(
                        plugin_id = %plugin_id,
                        version = %version.manifest.version,
                        found = other.is_some(),
                        "stored plugin package does not match its recorded checksum"
                    );
                    return Err(AppError::Conflict(
                        "the stored package does not match its recorded checksum; reject this version",
                    ));
                }
            }
        }
        let record = ReviewRecord {
            id: new_uuid(self.rng),
            plugin_id,
            version_id: version.id,
            reviewer_id: reviewer,
            decision,
            notes,
            reviewed_at: self.now(),
        };
        self.store.decide(&record).await?;
        if decision == Decision::Reject {
            // A rejected package is never served again (downloads need a pending or live
            // version): nothing should keep it.
            if let Err(e) = self.packages.delete(&version.package_key).await {
                tracing::warn!(plugin_id = %plugin_id, error = %e, "rejected package left in R2");
            }
        }
        let status = match decision {
            Decision::Approve => PluginStatus::Approved,
            Decision::Reject if plugin.live.is_some() => PluginStatus::Approved,
            Decision::Reject => PluginStatus::Rejected,
        };
        tracing::info!(
            plugin_id = %plugin_id,
            version = %version.manifest.version,
            reviewer = %reviewer,
            decision = decision.as_str(),
            "plugin version reviewed"
        );
        Ok(ReviewResult {
            ok: true,
            version: version.manifest.version.to_string(),
            status: status.as_str().to_owned(),
        })
    }

    /// An approved plugin with its live manifest, or 404.
    async fn approved(&self, id: uuid::Uuid) -> Result<(Plugin, PluginManifest), AppError> {
        match self.store.plugin(id).await? {
            Some(p) if p.status == PluginStatus::Approved => {
                let live = p.live.clone().ok_or_else(|| {
                    AppError::internal(format!("approved plugin {id} has no live manifest"))
                })?;
                Ok((p, live))
            }
            _ => Err(AppError::NotFound),
        }
    }

    /// `GET /plugins`: one page of approved plugins.
    ///
    /// # Errors
    /// 403 `tier_required` below Power.
    pub async fn list(
        &self,
        tier: Tier,
        query: &CatalogQuery,
    ) -> Result<PluginListResponse, AppError> {
        check_feature(tier, Feature::PluginMarketplace)?;
        let (plugins, total) = self.store.catalog(query).await?;
        let plugins = plugins
            .iter()
            .filter_map(|p| p.live.as_ref().map(|m| info(p.id, m, p)))
            .collect();
        Ok(PluginListResponse {
            plugins,
            total,
            page: query.page,
        })
    }

    /// `GET /plugins/{id}`: an approved plugin's manifest and stats.
    ///
    /// # Errors
    /// 403 `tier_required` below Power; 404 unless approved.
    pub async fn get(&self, tier: Tier, id: uuid::Uuid) -> Result<PluginInfo, AppError> {
        check_feature(tier, Feature::PluginMarketplace)?;
        let (plugin, live) = self.approved(id).await?;
        Ok(info(id, &live, &plugin))
    }

    /// `POST /plugins/{id}/install`: records the installation (charging a paid plugin on the
    /// buyer's first install) and returns a signed download link. Idempotent.
    ///
    /// # Errors
    /// 403 `tier_required` below Power; 404 unless approved; 422 when the body names another
    /// plugin; 402 `payment_required` when the buyer cannot be charged; 503 when Stripe is
    /// unavailable (nothing installed).
    pub async fn install(
        &self,
        user: UserId,
        tier: Tier,
        id: uuid::Uuid,
        body: Option<PluginInstallRequest>,
    ) -> Result<PluginInstalled, AppError> {
        check_feature(tier, Feature::PluginMarketplace)?;
        let mut agreed_price = None;
        if let Some(b) = body {
            if uuid::Uuid::try_parse(&b.plugin_id).ok() != Some(id) {
                return Err(AppError::field(
                    "plugin_id",
                    "must be the plugin id of the path",
                ));
            }
            agreed_price = b.price_cents.map(u64::from);
        }
        let (plugin, live) = self.approved(id).await?;
        if agreed_price.is_some_and(|p| p != live.price_cents) {
            return Err(AppError::Conflict(
                "the price changed: show the buyer the current price and ask again",
            ));
        }
        let mut charged_cents = 0;
        let mut purchase = None;
        if live.is_paid()
            && plugin.author_id != user
            && self.store.purchase(id, user).await?.is_none()
        {
            if agreed_price.is_none() {
                return Err(AppError::field(
                    "price_cents",
                    "is required to buy a paid plugin: the price the buyer agreed to",
                ));
            }
            let event = self.charge(user, &plugin, &live).await?;
            charged_cents = event.amount_cents;
            purchase = Some(event);
        }
        let now = self.now();
        let new = self.store.install(id, user, purchase.as_ref(), now).await?;
        if new {
            tracing::info!(plugin_id = %id, user_id = %user, charged_cents, "plugin installed");
        }
        let (download_url, expires_at) = self.download_url(id, &live.version, user);
        Ok(PluginInstalled {
            ok: true,
            download_url,
            expires_at,
            version: live.version.to_string(),
            charged_cents,
        })
    }

    /// Charges `user` the live price and returns the revenue event to record.
    async fn charge(
        &self,
        user: UserId,
        plugin: &Plugin,
        live: &PluginManifest,
    ) -> Result<RevenueEvent, AppError> {
        let Some(customer) = self.billing.customer_of(user).await? else {
            return Err(AppError::PaymentRequired(
                "buyer has no Stripe customer".to_owned(),
            ));
        };
        let id = plugin.id.hyphenated().to_string();
        let req = ChargeRequest {
            customer_id: customer,
            amount_cents: live.price_cents,
            currency: CURRENCY.to_owned(),
            description: format!("Adiuva plugin {id}"),
            transfer_group: format!("plugin_{id}"),
            metadata: vec![
                ("plugin_id".to_owned(), id.clone()),
                ("user_id".to_owned(), user.to_string()),
            ],
            // The price is in the key: after a price change the purchase is a new request.
            idempotency_key: format!("plugin-purchase:{id}:{user}:{}", live.price_cents),
        };
        let payment_id = self.payments.charge(&req).await.map_err(|e| {
            tracing::warn!(plugin_id = %plugin.id, user_id = %user, error = %e, "plugin charge failed");
            e.into_app_error(Upstream::Payments)
        })?;
        let (developer, platform) = split(live.price_cents);
        let now = self.now();
        Ok(RevenueEvent {
            id: new_uuid(self.rng),
            plugin_id: plugin.id,
            user_id: user,
            developer_id: plugin.author_id,
            amount_cents: live.price_cents,
            developer_share_cents: developer,
            platform_share_cents: platform,
            currency: CURRENCY.to_owned(),
            payment_id,
            period: Period::of(now),
            created_at: now,
        })
    }

    /// `DELETE /plugins/{id}/install`. Allowed on any tier, so a downgraded user can clean up.
    ///
    /// # Errors
    /// 404 when not installed.
    pub async fn uninstall(&self, user: UserId, id: uuid::Uuid) -> Result<(), AppError> {
        if self.store.uninstall(id, user).await? {
            tracing::info!(plugin_id = %id, user_id = %user, "plugin uninstalled");
            Ok(())
        } else {
            Err(AppError::NotFound)
        }
    }

    /// `POST /plugins/{id}/rating`: sets the caller's rating (installed users only).
    ///
    /// # Errors
    /// 403 `tier_required` below Power, `forbidden` when not installed; 404 unless approved;
    /// 422 outside 1–5.
    pub async fn rate(
        &self,
        user: UserId,
        tier: Tier,
        id: uuid::Uuid,
        req: RatingRequest,
    ) -> Result<RatingResult, AppError> {
        check_feature(tier, Feature::PluginMarketplace)?;
        let stars =
            Stars::parse(req.rating, "rating").map_err(|e| AppError::Validation(vec![e]))?;
        let (plugin, _) = self.approved(id).await?;
        if plugin.author_id == user {
            return Err(AppError::Forbidden("authors cannot rate their own plugins"));
        }
        if self.store.installed_at(id, user).await?.is_none() {
            return Err(AppError::Forbidden("install the plugin before rating it"));
        }
        let tally = self.store.rate(id, user, stars, self.now()).await?;
        #[allow(clippy::cast_precision_loss)] // hundredths of a star: at most 500
        let avg_rating = tally.average_hundredths().unwrap_or(0) as f64 / 100.0;
        Ok(RatingResult {
            ok: true,
            rating: stars.get(),
            avg_rating,
            rating_count: tally.count,
        })
    }

    /// `GET /plugins/{id}/package?token=`: resolves a download token to the package.
    ///
    /// # Errors
    /// 403 for a missing, tampered, expired or someone else's token, or one for another
    /// plugin; 404 when the version no longer exists.
    pub async fn package(
        &self,
        user: UserId,
        id: uuid::Uuid,
        token: Option<&str>,
    ) -> Result<PackageRef, AppError> {
        let token = token.ok_or(AppError::Forbidden("a download token is required"))?;
        let claims = download::verify(self.download_secret, token, id, user, self.now())?;
        let version = self
            .store
            .versions(id)
            .await?
            .into_iter()
            .find(|v| v.manifest.version == claims.version && v.status != VersionStatus::Rejected)
            .ok_or(AppError::NotFound)?;
        tracing::info!(plugin_id = %id, user_id = %user, version = %claims.version, "plugin package downloaded");
        Ok(PackageRef {
            key: version.package_key,
            checksum: version.package_checksum,
            size: version.package_size,
            version: claims.version.to_string(),
        })
    }

    /// `GET /plugins/earnings`: the developer's earnings per period, or of one period.
    ///
    /// # Errors
    /// 422 for a period not written `YYYY-MM`.
    pub async fn earnings(
        &self,
        developer: UserId,
        period: Option<&str>,
    ) -> Result<EarningsResponse, AppError> {
        let only = period
            .map(|p| Period::parse(p, "period"))
            .transpose()
            .map_err(|e| AppError::Validation(vec![e]))?;
        let periods = self
            .store
            .earnings(developer)
            .await?
            .into_iter()
            .filter(|e| only.is_none_or(|p| p == e.period))
            .map(|e| PeriodEarningsInfo {
                period: e.period.to_string(),
                sales: e.sales,
                gross_cents: e.gross_cents,
                developer_cents: e.developer_cents,
                platform_cents: e.platform_cents,
                payout_status: e
                    .payout
                    .as_ref()
                    .map_or("unpaid", |p| p.status.as_str())
                    .to_owned(),
                transfer_id: e.payout.and_then(|p| p.transfer_id),
            })
            .collect();
        Ok(EarningsResponse {
            periods,
            payout_account: self.store.payout_account(developer).await?,
        })
    }

    /// `PUT /plugins/earnings/account`: where payouts go.
    ///
    /// # Errors
    /// 422 unless `acct_` followed by 1–64 letters or digits.
    pub async fn set_payout_account(
        &self,
        developer: UserId,
        req: &PayoutAccountRequest,
    ) -> Result<(), AppError> {
        let id = req.stripe_account_id.as_str();
        let valid = id.strip_prefix("acct_").is_some_and(|rest| {
            (1..=64).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if !valid {
            return Err(AppError::field(
                "stripe_account_id",
                "must be a Stripe Connect account id (acct_ and 1-64 letters or digits)",
            ));
        }
        self.store.set_payout_account(developer, id).await?;
        tracing::info!(user_id = %developer, "payout account set");
        Ok(())
    }

    /// The payout run (cron): transfers each developer's unpaid share of every closed period
    /// to their Connect account, once. A payout row (unique per developer and period) fixes the
    /// amount and the idempotency key before the transfer, so a retry after any failure sends
    /// the same request and Stripe answers with the same transfer.
    ///
    /// # Errors
    /// Store failures; a failed transfer is counted and retried on the next run.
    pub async fn run_payouts(&self) -> Result<PayoutReport, AppError> {
        let now = self.now();
        let mut report = PayoutReport::default();
        for due in self.store.due_payouts(Period::of(now)).await? {
            if due.amount_cents == 0 {
                continue;
            }
            let payout = self
                .store
                .start_payout(&Payout {
                    id: new_uuid(self.rng),
                    developer_id: due.developer_id,
                    period: due.period,
                    amount_cents: due.amount_cents,
                    destination: due.destination.clone(),
                    idempotency_key: payout_idempotency_key(due.developer_id, due.period),
                    status: PayoutStatus::Pending,
                    transfer_id: None,
                    created_at: now,
                    paid_at: None,
                })
                .await?;
            if payout.status == PayoutStatus::Paid {
                tracing::warn!(
                    developer_id = %due.developer_id,
                    period = %due.period,
                    unpaid_cents = due.amount_cents,
                    "revenue recorded after the period was paid out; left for an operator"
                );
                continue;
            }
            let transfer = TransferRequest {
                amount_cents: payout.amount_cents,
                currency: CURRENCY.to_owned(),
                destination: payout.destination.clone(),
                transfer_group: format!("payout_{}_{}", payout.developer_id, payout.period),
                idempotency_key: payout.idempotency_key.clone(),
            };
            match self.payments.create_transfer(&transfer).await {
                Ok(transfer_id) => {
                    self.store
                        .finish_payout(payout.id, &transfer_id, self.now())
                        .await?;
                    report.paid += 1;
                    tracing::info!(
                        developer_id = %payout.developer_id,
                        period = %payout.period,
                        amount_cents = payout.amount_cents,
                        transfer_id,
                        "developer paid out"
                    );
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::error!(
                        developer_id = %payout.developer_id,
                        period = %payout.period,
                        error = %e,
                        "payout transfer failed; retried on the next run"
                    );
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Email, User};
    use crate::marketplace::ManifestSubmission;
    use crate::testing::{
        FakePayments, FixedClock, InMemoryBillingStore, InMemoryBlobStore, InMemoryPluginStore,
        InMemoryRateLimiter, InMemoryUserStore, SeqRandom,
    };

    /// 2026-11-27T12:00:00Z.
    const NOW: i64 = 1_795_780_800_000;
    const SECRET: &[u8] = b"download-secret-download-secret!!";

    struct World {
        store: InMemoryPluginStore,
        blobs: InMemoryBlobStore,
        users: InMemoryUserStore,
        payments: FakePayments,
        clock: &'static FixedClock,
        limiter: InMemoryRateLimiter<'static>,
        rng: SeqRandom,
        customers: RefCustomers,
    }

    type RefCustomers = std::cell::RefCell<Vec<(UserId, String)>>;

    impl World {
        fn new() -> Self {
            let clock: &'static FixedClock = Box::leak(Box::new(FixedClock::at(NOW)));
            Self {
                store: InMemoryPluginStore::default(),
                blobs: InMemoryBlobStore::default(),
                users: InMemoryUserStore::default(),
                payments: FakePayments::default(),
                clock,
                limiter: InMemoryRateLimiter::new(clock),
                rng: SeqRandom::new(7),
                customers: RefCustomers::default(),
            }
        }

        fn user(&self, n: u8, role: Role) -> UserId {
            let id = UserId(uuid::Uuid::from_u128(u128::from(n) + 1));
            self.users.rows.borrow_mut().insert(
                id,
                User {
                    id,
                    email: Email::parse(&format!("u{n}@example.com")).unwrap(),
                    password_hash: String::new(),
                    tier: Tier::Power,
                    tier_until: None,
                    role,
                    email_verified_at: None,
                    created_at: NOW,
                    updated_at: NOW,
                    suspended_at: None,
                },
            );
            id
        }

        async fn with<T, F>(&self, f: F) -> T
        where
            F: AsyncFnOnce(&Marketplace<'_, InMemoryBlobStore>) -> T,
        {
            let billing = InMemoryBillingStore::new(&self.users);
            for (u, c) in self.customers.borrow().iter() {
                billing.customers.borrow_mut().insert(*u, c.clone());
            }
            let m = Marketplace {
                store: &self.store,
                packages: &self.blobs,
                users: &self.users,
                billing: &billing,
                payments: &self.payments,
                limiter: &self.limiter,
                clock: self.clock,
                rng: &self.rng,
                download_secret: SECRET,
                base_url: "https://api.test",
            };
            f(&m).await
        }
    }

    fn manifest(version: &str, price: i64) -> ManifestSubmission {
        ManifestSubmission {
            id: None,
            name: "Daily Digest".into(),
            description: "Summarises your tasks every morning.".into(),
            version: version.into(),
            author: "Ada".into(),
            permissions: vec!["tasks:read".into(), "notifications".into()],
            category: "productivity".into(),
            price_cents: price,
            agents: Vec::new(),
        }
    }

    fn submission(version: &str, price: i64, package: &[u8]) -> PluginSubmission {
        PluginSubmission {
            manifest: manifest(version, price),
            package: STANDARD.encode(package),
            package_checksum: Checksum::of(package).as_str().to_owned(),
        }
    }

    /// An install body agreeing to `price` cents.
    #[allow(clippy::unnecessary_wraps)] // `install` takes an optional body
    fn buying(id: uuid::Uuid, price: u32) -> Option<PluginInstallRequest> {
        Some(PluginInstallRequest {
            plugin_id: id.to_string(),
            price_cents: Some(price),
        })
    }

    /// The key of the one stored package of `id`'s version `version`.
    fn stored_key(w: &World, id: uuid::Uuid, version: &str) -> String {
        let prefix = format!("plugins/{id}/{version}-");
        let keys: Vec<String> = w
            .blobs
            .objects
            .borrow()
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        assert_eq!(keys.len(), 1, "{keys:?}");
        keys[0].clone()
    }

    fn review(decision: &str, notes: Option<&str>) -> ReviewRequest {
        ReviewRequest {
            decision: decision.into(),
            notes: notes.map(str::to_owned),
        }
    }

    fn fields(e: &AppError) -> Vec<String> {
        match e {
            AppError::Validation(f) => f.iter().map(|f| f.field.clone()).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    fn all() -> CatalogQuery {
        catalog_query([]).unwrap()
    }

    /// Submits and approves a plugin; returns its id.
    async fn approved(w: &World, author: UserId, admin: UserId, price: i64) -> uuid::Uuid {
        w.with(async |m| {
            let sub = m
                .submit(author, submission("1.0.0", price, b"PK\x03\x04 v1"))
                .await
                .unwrap();
            let id = plugin_id(&sub.id).unwrap();
            m.review(admin, id, review("approve", None)).await.unwrap();
            id
        })
        .await
    }

    #[tokio::test]
    async fn a_submission_is_reviewed_before_it_is_listed() {
        let w = World::new();
        let (author, admin, buyer) = (
            w.user(1, Role::User),
            w.user(2, Role::Admin),
            w.user(3, Role::User),
        );
        w.with(async |m| {
            let sub = m
                .submit(author, submission("1.0.0", 0, b"package bytes"))
                .await
                .unwrap();
            assert_eq!(sub.status, "pending_review");
            assert_eq!(sub.package_size, 13);
            let id = plugin_id(&sub.id).unwrap();
            let key = stored_key(&w, id, "1.0.0");
            assert_eq!(
                w.blobs.objects.borrow().get(&key).unwrap(),
                b"package bytes"
            );
            // Not listed, not visible, not installable before approval.
            assert_eq!(m.list(Tier::Power, &all()).await.unwrap().total, 0);
            assert!(matches!(
                m.get(Tier::Power, id).await,
                Err(AppError::NotFound)
            ));
            assert!(matches!(
                m.install(buyer, Tier::Power, id, None).await,
                Err(AppError::NotFound)
            ));

            let queue = m.pending(admin).await.unwrap().pending;
            assert_eq!(queue.len(), 1);
            assert_eq!(queue[0].manifest.version, "1.0.0");
            assert_eq!(queue[0].live_version, None);
            let checklist: Vec<(&str, bool)> = queue[0]
                .checklist
                .iter()
                .map(|c| (c.name.as_str(), c.passed))
                .collect();
            assert_eq!(
                checklist,
                [
                    ("fields", true),
                    ("agents", true),
                    ("package_size", true),
                    ("not_own_plugin", true)
                ]
            );
            // The reviewer's link downloads the pending package.
            let token = queue[0].download_url.split("token=").nth(1).unwrap();
            let pkg = m.package(admin, id, Some(token)).await.unwrap();
            assert_eq!(pkg.checksum, Checksum::of(b"package bytes"));

            let done = m
                .review(admin, id, review("approve", Some("looks fine")))
                .await
                .unwrap();
            assert_eq!(
                (done.version.as_str(), done.status.as_str()),
                ("1.0.0", "approved")
            );
            assert!(m.pending(admin).await.unwrap().pending.is_empty());
            let listed = m.list(Tier::Power, &all()).await.unwrap();
            assert_eq!(listed.total, 1);
            assert_eq!(listed.plugins[0].name, "Daily Digest");
            assert_eq!(
                listed.plugins[0].permissions,
                ["tasks:read", "notifications"]
            );
            assert_eq!(m.get(Tier::Team, id).await.unwrap().version, "1.0.0");
        })
        .await;
        let reviews = w.store.reviews.borrow();
        assert_eq!(reviews.len(), 1);
        assert_eq!(reviews[0].reviewer_id, admin);
        assert_eq!(reviews[0].notes, "looks fine");
    }

    fn with_agents(version: &str) -> PluginSubmission {
        let mut sub = submission(version, 0, b"PK agents");
        sub.manifest.agents = vec![serde_json::from_value(serde_json::json!({
            "name": "digest",
            "description": "Writes a morning digest of open tasks",
            "instructions": "Group the open tasks by project and keep it under ten lines.",
            "tools": [{
                "name": "show_digest",
                "description": "Shows the digest in the app's digest panel.",
                "parameters": {"type": "object", "properties": {"text": {"type": "string"}},
                               "required": ["text"]},
                "permissions": ["notifications"]
            }]
        }))
        .unwrap()];
        sub
    }

    #[tokio::test]
    async fn reviewers_see_agent_declarations_and_the_catalog_hides_their_instructions() {
        let w = World::new();
        let (author, admin) = (w.user(1, Role::User), w.user(2, Role::Admin));
        w.with(async |m| {
            let sub = m.submit(author, with_agents("1.0.0")).await.unwrap();
            let id = plugin_id(&sub.id).unwrap();
            let queue = m.pending(admin).await.unwrap().pending;
            let agents = &queue[0].agents;
            assert_eq!(agents.len(), 1);
            assert_eq!(agents[0].agent, format!("plugin.{id}.digest"));
            assert!(agents[0].instructions.starts_with("Group the open tasks"));
            assert_eq!(agents[0].tools[0].permissions, ["notifications"]);
            assert_eq!(
                agents[0].tools[0].parameters["additionalProperties"], false,
                "the canonical schema the model is offered"
            );
            m.review(admin, id, review("approve", None)).await.unwrap();
            let info = m.get(Tier::Power, id).await.unwrap();
            assert_eq!(info.agents.len(), 1);
            assert_eq!(info.agents[0].agent, format!("plugin.{id}.digest"));
            assert_eq!(info.agents[0].tools[0].name, "show_digest");
            let listed =
                serde_json::to_string(&m.list(Tier::Power, &all()).await.unwrap()).unwrap();
            for hidden in ["Group the open tasks", "digest panel", "\"parameters\""] {
                assert!(!listed.contains(hidden), "{hidden} in {listed}");
            }
        })
        .await;
    }

    #[tokio::test]
    async fn a_bad_agent_declaration_is_refused_naming_its_manifest_path() {
        let w = World::new();
        let author = w.user(1, Role::User);
        w.with(async |m| {
            let mut sub = with_agents("1.0.0");
            sub.manifest.agents[0].tools[0].permissions = vec!["notes:write".into()];
            sub.manifest.agents[0].tools[0].parameters["properties"]["text"]["type"] =
                serde_json::json!("text");
            let e = m.submit(author, sub).await.unwrap_err();
            assert_eq!(
                fields(&e),
                [
                    "manifest.agents[0].tools[0].parameters.properties.text.type",
                    "manifest.agents[0].tools[0].permissions[0]",
                ]
            );
        })
        .await;
    }

    #[tokio::test]
    async fn an_author_has_at_most_five_versions_pending_and_twenty_submissions_an_hour() {
        let w = World::new();
        let (author, admin) = (w.user(1, Role::User), w.user(2, Role::Admin));
        w.with(async |m| {
            let mut ids = Vec::new();
            for i in 0..5u8 {
                let sub = m
                    .submit(author, submission("1.0.0", 0, &[b'p', i]))
                    .await
                    .unwrap();
                ids.push(plugin_id(&sub.id).unwrap());
            }
            let objects = w.blobs.objects.borrow().len();
            let e = m
                .submit(author, submission("1.0.0", 0, b"sixth"))
                .await
                .unwrap_err();
            assert_eq!((e.status(), e.code()), (403, "quota_exceeded"));
            assert_eq!(w.blobs.objects.borrow().len(), objects, "nothing stored");
            // A decision frees a slot; a rejected package is deleted at once.
            let key = stored_key(&w, ids[0], "1.0.0");
            m.review(admin, ids[0], review("reject", Some("unclear")))
                .await
                .unwrap();
            assert!(!w.blobs.objects.borrow().contains_key(&key));
            m.submit(author, submission("1.0.0", 0, b"sixth"))
                .await
                .unwrap();
            // Seven submissions so far (one refused); thirteen more, then the hourly limit.
            for _ in 0..13 {
                let e = m
                    .submit(author, submission("1.0.0", 0, b"again"))
                    .await
                    .unwrap_err();
                assert_eq!(e.code(), "quota_exceeded");
            }
            let e = m
                .submit(author, submission("1.0.0", 0, b"again"))
                .await
                .unwrap_err();
            assert_eq!(e.code(), "rate_limited");
        })
        .await;
    }

    #[tokio::test]
    async fn authors_cannot_rate_their_own_plugins() {
        let w = World::new();
        let (author, admin) = (w.user(1, Role::User), w.user(2, Role::Admin));
        let id = approved(&w, author, admin, 0).await;
        w.with(async |m| {
            m.install(author, Tier::Power, id, None).await.unwrap();
            let e = m
                .rate(author, Tier::Power, id, RatingRequest { rating: 5 })
                .await
                .unwrap_err();
            assert_eq!((e.status(), e.code()), (403, "forbidden"));
        })
        .await;
        assert!(w.store.ratings.borrow().is_empty());
    }

    #[tokio::test]
    async fn only_admins_review_and_never_their_own_plugins() {
        let w = World::new();
        let (author, admin) = (w.user(1, Role::User), w.user(2, Role::Admin));
        w.with(async |m| {
            let id = plugin_id(
                &m.submit(author, submission("1.0.0", 0, b"x"))
                    .await
                    .unwrap()
                    .id,
            )
            .unwrap();
            let own = plugin_id(
                &m.submit(admin, submission("1.0.0", 0, b"y"))
                    .await
                    .unwrap()
                    .id,
            )
            .unwrap();
            assert!(matches!(
                m.pending(author).await,
                Err(AppError::Forbidden(_))
            ));
            assert!(matches!(
                m.review(author, id, review("approve", None)).await,
                Err(AppError::Forbidden(_))
            ));
            assert!(matches!(
                m.review(admin, own, review("approve", None)).await,
                Err(AppError::Forbidden(_))
            ));
            let e = m
                .review(admin, id, review("reject", Some("  ")))
                .await
                .unwrap_err();
            assert_eq!(fields(&e), ["notes"]);
            let e = m
                .review(admin, id, review("maybe", None))
                .await
                .unwrap_err();
            assert_eq!(fields(&e), ["decision"]);
            assert!(matches!(
                m.review(admin, uuid::Uuid::nil(), review("approve", None))
                    .await,
                Err(AppError::NotFound)
            ));
            let r = m
                .review(
                    admin,
                    id,
                    review("reject", Some("asks for network without a reason")),
                )
                .await
                .unwrap();
            assert_eq!(r.status, "rejected");
            assert!(matches!(
                m.review(admin, id, review("approve", None)).await,
                Err(AppError::Conflict(_))
            ));
        })
        .await;
    }

    #[tokio::test]
    async fn approval_rehashes_the_stored_package() {
        let w = World::new();
        let (author, admin) = (w.user(1, Role::User), w.user(2, Role::Admin));
        w.with(async |m| {
            let id = plugin_id(
                &m.submit(author, submission("1.0.0", 0, b"original"))
                    .await
                    .unwrap()
                    .id,
            )
            .unwrap();
            let key = stored_key(&w, id, "1.0.0");
            w.blobs
                .objects
                .borrow_mut()
                .insert(key, b"tampered".to_vec());
            assert!(matches!(
                m.review(admin, id, review("approve", None)).await,
                Err(AppError::Conflict(_))
            ));
            assert_eq!(m.list(Tier::Power, &all()).await.unwrap().total, 0);
            // Still pending: it can be rejected.
            m.review(admin, id, review("reject", Some("package changed")))
                .await
                .unwrap();
        })
        .await;
    }

    #[tokio::test]
    async fn the_checklist_names_every_bad_field_and_stores_nothing() {
        let w = World::new();
        let author = w.user(1, Role::User);
        w.with(async |m| {
            let mut sub = submission("1.0", 50, b"zip");
            sub.manifest.permissions = vec!["filesystem".into()];
            sub.manifest.id = Some(serde_json::json!("mine"));
            sub.package_checksum = "nope".into();
            let e = m.submit(author, sub).await.unwrap_err();
            assert_eq!(
                fields(&e),
                [
                    "manifest.id",
                    "manifest.version",
                    "manifest.permissions[0]",
                    "manifest.price_cents",
                    "package_checksum"
                ]
            );
            let mut sub = submission("1.0.0", 0, b"zip");
            sub.package = "***".into();
            assert_eq!(
                fields(&m.submit(author, sub).await.unwrap_err()),
                ["package"]
            );
            let mut sub = submission("1.0.0", 0, b"zip");
            sub.package_checksum = Checksum::of(b"other").as_str().to_owned();
            assert!(matches!(
                m.submit(author, sub).await,
                Err(AppError::ChecksumMismatch)
            ));
            let big = vec![0u8; usize::try_from(MAX_PACKAGE_BYTES).unwrap() + 1];
            assert!(matches!(
                m.submit(author, submission("1.0.0", 0, &big)).await,
                Err(AppError::PayloadTooLarge { .. })
            ));
            assert!(matches!(
                m.submit(author, submission("1.0.0", 0, b"")).await,
                Err(AppError::Validation(_))
            ));
        })
        .await;
        assert!(w.blobs.objects.borrow().is_empty());
        assert!(w.store.plugins.borrow().is_empty());
    }

    #[tokio::test]
    async fn new_versions_are_reviewed_again_while_the_live_one_stays_listed() {
        let w = World::new();
        let (author, admin, other) = (
            w.user(1, Role::User),
            w.user(2, Role::Admin),
            w.user(3, Role::User),
        );
        let id = approved(&w, author, admin, 0).await;
        w.with(async |m| {
            assert!(matches!(
                m.submit_version(other, id, submission("2.0.0", 0, b"v2"))
                    .await,
                Err(AppError::NotFound)
            ));
            let e = m
                .submit_version(author, id, submission("1.0.0", 0, b"v1 again"))
                .await
                .unwrap_err();
            assert_eq!(fields(&e), ["manifest.version"]);
            let e = m
                .submit_version(author, id, submission("1.0.0-rc.1", 0, b"rc"))
                .await
                .unwrap_err();
            assert_eq!(fields(&e), ["manifest.version"]);
            m.submit_version(author, id, submission("1.1.0", 0, b"v1.1"))
                .await
                .unwrap();
            assert!(matches!(
                m.submit_version(author, id, submission("1.2.0", 0, b"v1.2"))
                    .await,
                Err(AppError::Conflict(_))
            ));
            assert_eq!(m.get(Tier::Power, id).await.unwrap().version, "1.0.0");
            let queue = m.pending(admin).await.unwrap().pending;
            assert_eq!(queue[0].live_version.as_deref(), Some("1.0.0"));
            let r = m
                .review(admin, id, review("reject", Some("crashes on start")))
                .await
                .unwrap();
            assert_eq!(
                r.status, "approved",
                "a rejected update keeps the plugin live"
            );
            assert_eq!(m.get(Tier::Power, id).await.unwrap().version, "1.0.0");
            m.submit_version(author, id, submission("1.2.0", 0, b"v1.2"))
                .await
                .unwrap();
            m.review(admin, id, review("approve", None)).await.unwrap();
            assert_eq!(m.get(Tier::Power, id).await.unwrap().version, "1.2.0");
        })
        .await;
        let statuses: Vec<_> = w.store.versions.borrow().iter().map(|v| v.status).collect();
        assert_eq!(
            statuses,
            [
                VersionStatus::Superseded,
                VersionStatus::Rejected,
                VersionStatus::Approved
            ]
        );
    }

    #[tokio::test]
    async fn free_and_pro_users_are_refused_the_marketplace() {
        let w = World::new();
        let (author, admin, user) = (
            w.user(1, Role::User),
            w.user(2, Role::Admin),
            w.user(3, Role::User),
        );
        let id = approved(&w, author, admin, 0).await;
        w.with(async |m| {
            for tier in [Tier::Free, Tier::Pro] {
                let refused = |r: Result<(), AppError>| {
                    assert!(
                        matches!(&r, Err(AppError::TierRequired { feature, .. }) if *feature == "plugin_marketplace"),
                        "{tier:?}: {r:?}"
                    );
                };
                refused(m.list(tier, &all()).await.map(|_| ()));
                refused(m.get(tier, id).await.map(|_| ()));
                refused(m.install(user, tier, id, None).await.map(|_| ()));
                refused(m.rate(user, tier, id, RatingRequest { rating: 5 }).await.map(|_| ()));
            }
        })
        .await;
        assert!(w.store.installs.borrow().is_empty());
    }

    #[tokio::test]
    async fn a_paid_plugin_is_charged_once_and_split_seventy_thirty() {
        let w = World::new();
        let (author, admin, buyer) = (
            w.user(1, Role::User),
            w.user(2, Role::Admin),
            w.user(3, Role::User),
        );
        w.customers.borrow_mut().push((buyer, "cus_buyer".into()));
        let id = approved(&w, author, admin, 499).await;
        w.with(async |m| {
            // A paid install names the price the buyer agreed to.
            let e = m.install(buyer, Tier::Power, id, None).await.unwrap_err();
            assert_eq!(fields(&e), ["price_cents"]);
            let e = m
                .install(buyer, Tier::Power, id, buying(id, 399))
                .await
                .unwrap_err();
            assert_eq!(e.code(), "conflict", "a price the buyer did not see");
            let first = m
                .install(buyer, Tier::Power, id, buying(id, 499))
                .await
                .unwrap();
            assert_eq!(first.charged_cents, 499);
            let again = m
                .install(
                    buyer,
                    Tier::Power,
                    id,
                    Some(PluginInstallRequest {
                        plugin_id: id.to_string(),
                        price_cents: None,
                    }),
                )
                .await
                .unwrap();
            assert_eq!(again.charged_cents, 0);
            m.uninstall(buyer, id).await.unwrap();
            assert_eq!(
                m.install(buyer, Tier::Power, id, None)
                    .await
                    .unwrap()
                    .charged_cents,
                0
            );
            // The author installs their own plugin without paying.
            assert_eq!(
                m.install(author, Tier::Power, id, None)
                    .await
                    .unwrap()
                    .charged_cents,
                0
            );
            assert_eq!(m.get(Tier::Power, id).await.unwrap().install_count, 2);
        })
        .await;
        let charges = w.payments.charges.borrow();
        assert_eq!(charges.len(), 1);
        assert_eq!(charges[0].customer_id, "cus_buyer");
        assert_eq!(charges[0].amount_cents, 499);
        assert_eq!(charges[0].currency, "eur");
        assert_eq!(
            charges[0].idempotency_key,
            format!("plugin-purchase:{id}:{buyer}:499")
        );
        let revenue = w.store.revenue.borrow();
        assert_eq!(revenue.len(), 1);
        let e = &revenue[0].0;
        assert_eq!(
            (
                e.amount_cents,
                e.developer_share_cents,
                e.platform_share_cents
            ),
            (499, 349, 150)
        );
        assert_eq!((e.developer_id, e.user_id), (author, buyer));
        assert_eq!(e.payment_id, "pi_test_1");
    }

    #[tokio::test]
    async fn a_buyer_who_cannot_pay_gets_payment_required_and_nothing_installed() {
        let w = World::new();
        let (author, admin, buyer) = (
            w.user(1, Role::User),
            w.user(2, Role::Admin),
            w.user(3, Role::User),
        );
        let id = approved(&w, author, admin, 99).await;
        w.with(async |m| {
            assert!(matches!(
                m.install(buyer, Tier::Power, id, buying(id, 99)).await,
                Err(AppError::PaymentRequired(_))
            ));
        })
        .await;
        w.customers
            .borrow_mut()
            .push((buyer, "cus_declined".into()));
        w.payments.failing.set(true);
        w.with(async |m| {
            let e = m
                .install(buyer, Tier::Power, id, buying(id, 99))
                .await
                .unwrap_err();
            assert_eq!((e.status(), e.code()), (402, "payment_required"));
            let e = m
                .install(
                    buyer,
                    Tier::Power,
                    id,
                    Some(PluginInstallRequest {
                        plugin_id: uuid::Uuid::nil().to_string(),
                        price_cents: Some(99),
                    }),
                )
                .await
                .unwrap_err();
            assert_eq!(fields(&e), ["plugin_id"]);
        })
        .await;
        assert!(w.store.installs.borrow().is_empty());
        assert!(w.store.revenue.borrow().is_empty());
    }

    #[tokio::test]
    async fn download_links_work_for_their_user_and_plugin_for_ten_minutes() {
        let w = World::new();
        let (author, admin, user, other) = (
            w.user(1, Role::User),
            w.user(2, Role::Admin),
            w.user(3, Role::User),
            w.user(4, Role::User),
        );
        let id = approved(&w, author, admin, 0).await;
        let second = approved(&w, author, admin, 0).await;
        let url = w
            .with(async |m| m.install(user, Tier::Power, id, None).await.unwrap())
            .await;
        assert!(url.download_url.starts_with(&format!(
            "https://api.test/api/v1/plugins/{id}/package?token="
        )));
        assert_eq!(url.expires_at, NOW + 600_000);
        let token = url.download_url.split("token=").nth(1).unwrap().to_owned();
        w.with(async |m| {
            let pkg = m.package(user, id, Some(&token)).await.unwrap();
            assert_eq!(pkg.version, "1.0.0");
            assert!(pkg.key.starts_with(&format!("plugins/{id}/1.0.0-")));
            let mut tampered = token.clone().into_bytes();
            let last = tampered.len() - 1;
            tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).unwrap();
            for (who, plugin, t) in [
                (user, id, Some(tampered.as_str())),
                (other, id, Some(token.as_str())),
                (user, second, Some(token.as_str())),
                (user, id, None),
            ] {
                assert!(matches!(
                    m.package(who, plugin, t).await,
                    Err(AppError::Forbidden(_))
                ));
            }
        })
        .await;
        w.clock.advance(600_001);
        w.with(async |m| {
            assert!(matches!(
                m.package(user, id, Some(&token)).await,
                Err(AppError::Forbidden(_))
            ));
        })
        .await;
    }

    #[tokio::test]
    async fn ratings_come_from_installed_users_and_the_average_is_exact() {
        let w = World::new();
        let (author, admin, a, b) = (
            w.user(1, Role::User),
            w.user(2, Role::Admin),
            w.user(3, Role::User),
            w.user(4, Role::User),
        );
        let id = approved(&w, author, admin, 0).await;
        w.with(async |m| {
            assert!(matches!(
                m.rate(a, Tier::Power, id, RatingRequest { rating: 5 })
                    .await,
                Err(AppError::Forbidden(_))
            ));
            m.install(a, Tier::Power, id, None).await.unwrap();
            m.install(b, Tier::Power, id, None).await.unwrap();
            for bad in [0, 6, -1] {
                let e = m
                    .rate(a, Tier::Power, id, RatingRequest { rating: bad })
                    .await
                    .unwrap_err();
                assert_eq!(fields(&e), ["rating"]);
            }
            m.rate(a, Tier::Power, id, RatingRequest { rating: 5 })
                .await
                .unwrap();
            let r = m
                .rate(b, Tier::Power, id, RatingRequest { rating: 2 })
                .await
                .unwrap();
            assert_eq!((r.avg_rating, r.rating_count), (3.5, 2));
            let r = m
                .rate(b, Tier::Power, id, RatingRequest { rating: 4 })
                .await
                .unwrap();
            assert_eq!((r.avg_rating, r.rating_count, r.rating), (4.5, 2, 4));
            m.uninstall(b, id).await.unwrap();
            let info = m.get(Tier::Power, id).await.unwrap();
            assert_eq!(
                (info.avg_rating, info.rating_count, info.install_count),
                (Some(5.0), 1, 1)
            );
            assert!(matches!(m.uninstall(b, id).await, Err(AppError::NotFound)));
        })
        .await;
    }

    #[tokio::test]
    async fn the_catalog_filters_sorts_and_pages() {
        let w = World::new();
        let (author, admin, fan) = (
            w.user(1, Role::User),
            w.user(2, Role::Admin),
            w.user(3, Role::User),
        );
        let mut ids = Vec::new();
        for (i, (name, category)) in [
            ("Alpha Notes", "writing"),
            ("Beta Tasks", "productivity"),
            ("Gamma Mail", "integrations"),
        ]
        .into_iter()
        .enumerate()
        {
            let id = w
                .with(async |m| {
                    let mut sub = submission("1.0.0", 0, name.as_bytes());
                    sub.manifest.name = name.into();
                    sub.manifest.category = category.into();
                    let id = plugin_id(&m.submit(author, sub).await.unwrap().id).unwrap();
                    m.review(admin, id, review("approve", None)).await.unwrap();
                    id
                })
                .await;
            ids.push(id);
            w.clock.advance(1000 * (i64::try_from(i).unwrap() + 1));
        }
        w.with(async |m| {
            m.install(fan, Tier::Power, ids[1], None).await.unwrap();
            m.rate(fan, Tier::Power, ids[1], RatingRequest { rating: 4 })
                .await
                .unwrap();
            let q = |params: &[(&str, &str)]| catalog_query(params.iter().copied()).unwrap();
            let names =
                |r: PluginListResponse| r.plugins.into_iter().map(|p| p.name).collect::<Vec<_>>();
            assert_eq!(
                names(
                    m.list(Tier::Power, &q(&[("category", "writing")]))
                        .await
                        .unwrap()
                ),
                ["Alpha Notes"]
            );
            assert_eq!(
                names(m.list(Tier::Power, &q(&[("q", "MAIL")])).await.unwrap()),
                ["Gamma Mail"]
            );
            assert_eq!(
                names(
                    m.list(Tier::Power, &q(&[("sort", "newest")]))
                        .await
                        .unwrap()
                )[0],
                "Gamma Mail"
            );
            assert_eq!(
                names(
                    m.list(Tier::Power, &q(&[("sort", "installs")]))
                        .await
                        .unwrap()
                )[0],
                "Beta Tasks"
            );
            assert_eq!(
                names(m.list(Tier::Power, &q(&[])).await.unwrap())[0],
                "Beta Tasks"
            );
            let page = m
                .list(Tier::Power, &q(&[("limit", "2"), ("page", "2")]))
                .await
                .unwrap();
            assert_eq!((page.total, page.page, page.plugins.len()), (3, 2, 1));
        })
        .await;
    }

    #[test]
    fn catalog_parameters_are_checked_at_the_edge() {
        let q = catalog_query([
            ("page", "3"),
            ("limit", "100"),
            ("sort", "installs"),
            ("other", "x"),
            ("q", "  "),
        ])
        .unwrap();
        assert_eq!(
            (q.page, q.per_page, q.sort, q.q),
            (3, 100, Sort::Installs, None)
        );
        let e = catalog_query([
            ("page", "0"),
            ("limit", "101"),
            ("sort", "best"),
            ("category", "games"),
            ("q", &"x".repeat(101)),
        ])
        .unwrap_err();
        assert_eq!(fields(&e), ["page", "limit", "sort", "category", "q"]);
        assert_eq!(
            fields(&catalog_query([("limit", "1.5")]).unwrap_err()),
            ["limit"]
        );
    }

    #[tokio::test]
    async fn closed_periods_are_paid_out_exactly_once() {
        let w = World::new();
        let (author, admin) = (w.user(1, Role::User), w.user(2, Role::Admin));
        let id = approved(&w, author, admin, 999).await;
        let buyers: Vec<UserId> = (10..13).map(|n| w.user(n, Role::User)).collect();
        for (i, b) in buyers.iter().enumerate() {
            w.customers.borrow_mut().push((*b, format!("cus_{i}")));
        }
        w.with(async |m| {
            for b in &buyers {
                m.install(*b, Tier::Power, id, buying(id, 999))
                    .await
                    .unwrap();
            }
            // The period is still open: nothing is due.
            m.set_payout_account(
                author,
                &PayoutAccountRequest {
                    stripe_account_id: "acct_1Dev".into(),
                },
            )
            .await
            .unwrap();
            assert_eq!(m.run_payouts().await.unwrap(), PayoutReport::default());
            let e = m.earnings(author, None).await.unwrap();
            assert_eq!(e.payout_account.as_deref(), Some("acct_1Dev"));
            assert_eq!(e.periods.len(), 1);
            let p = &e.periods[0];
            assert_eq!(
                (p.period.as_str(), p.sales, p.gross_cents),
                ("2026-11", 3, 2997)
            );
            assert_eq!((p.developer_cents, p.platform_cents), (3 * 699, 3 * 300));
            assert_eq!(p.payout_status, "unpaid");
        })
        .await;
        // December: November is closed. The first transfer fails, the next run retries it.
        w.clock.advance(5 * 86_400_000);
        w.payments.failing.set(true);
        let report = w.with(async |m| m.run_payouts().await.unwrap()).await;
        assert_eq!((report.paid, report.failed), (0, 1));
        w.payments.failing.set(false);
        for _ in 0..2 {
            w.with(async |m| m.run_payouts().await.unwrap()).await;
        }
        {
            let transfers = w.payments.transfers.borrow();
            assert_eq!(transfers.len(), 1);
            assert_eq!(transfers[0].amount_cents, 3 * 699);
            assert_eq!(transfers[0].destination, "acct_1Dev");
            assert_eq!(
                transfers[0].idempotency_key,
                format!("payout:{author}:2026-11")
            );
        }
        w.with(async |m| {
            let e = m.earnings(author, Some("2026-11")).await.unwrap();
            assert_eq!(e.periods[0].payout_status, "paid");
            assert_eq!(e.periods[0].transfer_id.as_deref(), Some("tr_test_1"));
            assert!(m
                .earnings(author, Some("2026-10"))
                .await
                .unwrap()
                .periods
                .is_empty());
            assert_eq!(
                fields(&m.earnings(author, Some("2026-13")).await.unwrap_err()),
                ["period"]
            );
            for bad in [
                "acct_",
                "acct_a-b",
                "ba_123",
                &format!("acct_{}", "a".repeat(65)),
            ] {
                let e = m
                    .set_payout_account(
                        author,
                        &PayoutAccountRequest {
                            stripe_account_id: bad.into(),
                        },
                    )
                    .await
                    .unwrap_err();
                assert_eq!(fields(&e), ["stripe_account_id"]);
            }
        })
        .await;
    }

    #[tokio::test]
    async fn developers_without_a_payout_account_are_not_paid_until_they_set_one() {
        let w = World::new();
        let (author, admin, buyer) = (
            w.user(1, Role::User),
            w.user(2, Role::Admin),
            w.user(3, Role::User),
        );
        w.customers.borrow_mut().push((buyer, "cus_b".into()));
        let id = approved(&w, author, admin, 100).await;
        w.with(async |m| {
            m.install(buyer, Tier::Power, id, buying(id, 100))
                .await
                .unwrap()
        })
        .await;
        w.clock.advance(40 * 86_400_000);
        assert_eq!(
            w.with(async |m| m.run_payouts().await.unwrap()).await.paid,
            0
        );
        w.with(async |m| {
            m.set_payout_account(
                author,
                &PayoutAccountRequest {
                    stripe_account_id: "acct_9".into(),
                },
            )
            .await
            .unwrap();
            assert_eq!(m.run_payouts().await.unwrap().paid, 1);
        })
        .await;
        assert_eq!(w.payments.transfers.borrow()[0].amount_cents, 70);
    }
}
