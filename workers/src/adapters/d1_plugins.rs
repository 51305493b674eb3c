//! D1 adapter of the marketplace (migration 0006): plugins and their versions, reviews,
//! installations, ratings, purchases and payouts.
//!
//! Every batch that changes installations or ratings ends by recomputing the plugin's counters
//! from their tables ([`RECOUNT`]); a batch is one transaction, so the counters are exact under
//! any concurrency. A review is gated by recording it: the review row is inserted only while
//! the version is still pending, and every later statement of the batch applies only if that
//! row exists, so of two concurrent reviews exactly one takes effect.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use shared::domain::UserId;
use shared::marketplace::{
    CatalogQuery, Decision, DuePayout, Payout, PayoutStatus, Period, PeriodEarnings, Plugin,
    PluginManifest, PluginStatus, PluginStore, PluginVersion, RatingTally, RevenueEvent,
    ReviewRecord, Sort, Stars, VersionStatus,
};
use shared::ports::StoreError;
use shared::storage::Checksum;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result};

use super::d1::{changes, int, is_unique_violation, opt_text, stmt, text};
use super::unavailable;

/// The marketplace's tables in D1.
pub struct D1PluginStore(pub D1Database);

// ---- statements ---------------------------------------------------------------------------

/// Recomputes a plugin's counters from its installations and ratings (`?1` = plugin).
const RECOUNT: &str = "UPDATE plugins SET \
       install_count = (SELECT COUNT(*) FROM plugin_installations WHERE plugin_id = ?1), \
       rating_sum = (SELECT COALESCE(SUM(rating), 0) FROM plugin_ratings WHERE plugin_id = ?1), \
       rating_count = (SELECT COUNT(*) FROM plugin_ratings WHERE plugin_id = ?1) \
     WHERE id = ?1";

const PLUGIN_COLUMNS: &str = "id, author_id, status, manifest, install_count, rating_sum, \
     rating_count, created_at, approved_at";

/// Versions pending review of the author `?2` (a plugin insert) — the limit's subject.
const INSERT_PLUGIN: &str = "INSERT INTO plugins (id, author_id, status, created_at, updated_at) \
     SELECT ?1, ?2, 'pending_review', ?3, ?3 \
     WHERE (SELECT COUNT(*) FROM plugin_versions v JOIN plugins p ON p.id = v.plugin_id \
            WHERE v.status = 'pending_review' AND p.author_id = ?2) < ?4";

/// Inserts a version of plugin `?2` while its author has fewer than `?11` versions pending
/// review (in the batch of a new plugin, the plugin row inserted just before is the guard).
const INSERT_VERSION: &str = "INSERT INTO plugin_versions (id, plugin_id, version, manifest, \
       package_key, package_checksum, package_size, status, submitted_at, decided_at) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 \
     WHERE EXISTS (SELECT 1 FROM plugins WHERE id = ?2) \
       AND (SELECT COUNT(*) FROM plugin_versions v JOIN plugins p ON p.id = v.plugin_id \
            WHERE v.status = 'pending_review' \
              AND p.author_id = (SELECT author_id FROM plugins WHERE id = ?2)) < ?11";

const PENDING_BY_AUTHOR: &str = "SELECT COUNT(*) AS total FROM plugin_versions v \
     JOIN plugins p ON p.id = v.plugin_id \
     WHERE v.status = 'pending_review' AND p.author_id = ?1";

const SELECT_PLUGIN: &str = "SELECT id, author_id, status, manifest, install_count, rating_sum, \
       rating_count, created_at, approved_at \
     FROM plugins WHERE id = ?1";

const SELECT_VERSIONS: &str = "SELECT id, plugin_id, manifest, package_key, package_checksum, \
       package_size, status, submitted_at, decided_at \
     FROM plugin_versions WHERE plugin_id = ?1 ORDER BY submitted_at, rowid";

const SELECT_LIVE_VERSION: &str = "SELECT v.id, v.plugin_id, v.manifest, v.package_key, \
       v.package_checksum, v.package_size, v.status, v.submitted_at, v.decided_at \
     FROM plugins p JOIN plugin_versions v ON v.id = p.live_version_id \
     WHERE p.id = ?1";

/// Pending versions with their plugin; the plugin's columns are prefixed `p_`.
const SELECT_PENDING: &str = "SELECT v.id, v.plugin_id, v.manifest, v.package_key, \
       v.package_checksum, v.package_size, v.status, v.submitted_at, v.decided_at, \
       p.author_id AS p_author_id, p.status AS p_status, p.manifest AS p_manifest, \
       p.install_count AS p_install_count, p.rating_sum AS p_rating_sum, \
       p.rating_count AS p_rating_count, p.created_at AS p_created_at, \
       p.approved_at AS p_approved_at \
     FROM plugin_versions v JOIN plugins p ON p.id = v.plugin_id \
     WHERE v.status = 'pending_review' \
     ORDER BY v.submitted_at, v.rowid LIMIT ?1";

/// Records the review (`?1` id, `?2` plugin, `?3` version, `?4` reviewer, `?5` decision,
/// `?6` notes, `?7` time) only while the version is pending: the gate of the whole decision.
const INSERT_REVIEW: &str = "INSERT INTO plugin_reviews \
       (id, plugin_id, version_id, reviewer_id, decision, notes, reviewed_at) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 \
     WHERE EXISTS (SELECT 1 FROM plugin_versions \
       WHERE id = ?3 AND plugin_id = ?2 AND status = 'pending_review')";

/// Approve, 1: the previous live version (`?1` review, `?2` plugin).
const SUPERSEDE_LIVE: &str = "UPDATE plugin_versions SET status = 'superseded' \
     WHERE plugin_id = ?2 AND status = 'approved' \
       AND EXISTS (SELECT 1 FROM plugin_reviews WHERE id = ?1)";

/// Approve, 2: the plugin takes the version's manifest (`?1` review, `?2` plugin,
/// `?3` version, `?4` time).
const GO_LIVE: &str = "UPDATE plugins SET status = 'approved', live_version_id = v.id, \
       name = json_extract(v.manifest, '$.name'), \
       description = json_extract(v.manifest, '$.description'), \
       category = json_extract(v.manifest, '$.category'), \
       price_cents = json_extract(v.manifest, '$.price_cents'), \
       manifest = v.manifest, approved_at = ?4, updated_at = ?4 \
     FROM plugin_versions v \
     WHERE v.id = ?3 AND v.plugin_id = ?2 AND plugins.id = ?2 \
       AND EXISTS (SELECT 1 FROM plugin_reviews WHERE id = ?1)";

/// Reject: a plugin without a live version becomes rejected (`?1` review, `?2` plugin,
/// `?3` time).
const REJECT_PLUGIN: &str = "UPDATE plugins SET \
       status = CASE WHEN live_version_id IS NULL THEN 'rejected' ELSE status END, \
       updated_at = ?3 \
     WHERE id = ?2 AND EXISTS (SELECT 1 FROM plugin_reviews WHERE id = ?1)";

/// Last of a decision: the version itself (`?1` review, `?2` plugin, `?3` version, `?4` time,
/// `?5` new status).
const DECIDE_VERSION: &str = "UPDATE plugin_versions SET status = ?5, decided_at = ?4 \
     WHERE id = ?3 AND plugin_id = ?2 \
       AND EXISTS (SELECT 1 FROM plugin_reviews WHERE id = ?1)";

/// Approved plugins, optionally of one category (`?1`) and containing `?2` in the name or the
/// description, ignoring ASCII case. `instr` rather than `LIKE`: D1 refuses `LIKE` patterns
/// over 50 bytes ("pattern too complex"), and a needle has no wildcards to escape this way.
const CATALOG_FILTER: &str = "FROM plugins WHERE status = 'approved'
       AND (?1 IS NULL OR category = ?1)
       AND (?2 IS NULL OR instr(lower(name), lower(?2)) > 0
            OR instr(lower(description), lower(?2)) > 0)";

const ORDER_BY_RATING: &str = "rating_count = 0, \
     CAST(rating_sum AS REAL) / NULLIF(rating_count, 0) DESC, rating_count DESC, id";
const ORDER_BY_INSTALLS: &str = "install_count DESC, id";
const ORDER_BY_NEWEST: &str = "approved_at DESC, id";

const SELECT_INSTALLED_AT: &str =
    "SELECT installed_at FROM plugin_installations WHERE plugin_id = ?1 AND user_id = ?2";

const SELECT_PURCHASE: &str = "SELECT id, plugin_id, user_id, developer_id, amount_cents, \
       developer_share_cents, platform_share_cents, currency, stripe_payment_id, period, \
       created_at \
     FROM revenue_events WHERE plugin_id = ?1 AND user_id = ?2";

/// A purchase, once per buyer and plugin. Only that uniqueness is tolerated: a broken CHECK
/// still fails the batch (`INSERT OR IGNORE` would silently skip it).
const INSERT_PURCHASE: &str = "INSERT INTO revenue_events (id, plugin_id, user_id, \
       developer_id, amount_cents, developer_share_cents, platform_share_cents, currency, \
       stripe_payment_id, period, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
     ON CONFLICT (plugin_id, user_id) DO NOTHING";

const INSERT_INSTALLATION: &str = "INSERT INTO plugin_installations \
       (plugin_id, user_id, installed_at) VALUES (?1, ?2, ?3) \
     ON CONFLICT (plugin_id, user_id) DO NOTHING";

const DELETE_INSTALLATION: &str =
    "DELETE FROM plugin_installations WHERE plugin_id = ?1 AND user_id = ?2";

const DELETE_RATING: &str = "DELETE FROM plugin_ratings WHERE plugin_id = ?1 AND user_id = ?2";

/// Sets a rating only while the user has the plugin installed (a rating racing an uninstall
/// writes nothing).
const UPSERT_RATING: &str = "INSERT INTO plugin_ratings (plugin_id, user_id, rating, updated_at) \
     SELECT ?1, ?2, ?3, ?4 \
     WHERE EXISTS (SELECT 1 FROM plugin_installations WHERE plugin_id = ?1 AND user_id = ?2) \
     ON CONFLICT (plugin_id, user_id) DO UPDATE SET \
       rating = excluded.rating, updated_at = excluded.updated_at";

const SELECT_TALLY: &str = "SELECT rating_sum, rating_count FROM plugins WHERE id = ?1";

const SELECT_RATING: &str =
    "SELECT rating FROM plugin_ratings WHERE plugin_id = ?1 AND user_id = ?2";

/// Per period of a developer's sales, with the period's payout (at most one: unique per
/// developer and period, so the join never multiplies the sales).
const SELECT_EARNINGS: &str = "SELECT r.period, COUNT(*) AS sales, \
       SUM(r.amount_cents) AS gross_cents, SUM(r.developer_share_cents) AS developer_cents, \
       SUM(r.platform_share_cents) AS platform_cents, \
       p.id AS payout_id, p.amount_cents AS payout_amount_cents, p.destination, \
       p.idempotency_key, p.status AS payout_status, p.transfer_id, \
       p.created_at AS payout_created_at, p.paid_at \
     FROM revenue_events r \
     LEFT JOIN payouts p ON p.developer_id = r.developer_id AND p.period = r.period \
     WHERE r.developer_id = ?1 \
     GROUP BY r.period ORDER BY r.period DESC";

const SET_PAYOUT_ACCOUNT: &str = "UPDATE users SET stripe_account_id = ?1 WHERE id = ?2";

const SELECT_PAYOUT_ACCOUNT: &str = "SELECT stripe_account_id FROM users WHERE id = ?1";

const SELECT_DUE_PAYOUTS: &str = "SELECT r.developer_id, r.period, \
       SUM(r.developer_share_cents) AS amount_cents, u.stripe_account_id AS destination \
     FROM revenue_events r JOIN users u ON u.id = r.developer_id \
     WHERE r.payout_id IS NULL AND r.period < ?1 AND u.stripe_account_id IS NOT NULL \
     GROUP BY r.developer_id, r.period \
     ORDER BY r.period, r.developer_id";

const INSERT_PAYOUT: &str = "INSERT INTO payouts (id, developer_id, period, amount_cents, \
       destination, idempotency_key, status, transfer_id, created_at, paid_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
     ON CONFLICT (developer_id, period) DO NOTHING";

const SELECT_PAYOUT: &str = "SELECT id, developer_id, period, amount_cents, destination, \
       idempotency_key, status, transfer_id, created_at, paid_at \
     FROM payouts WHERE developer_id = ?1 AND period = ?2";

/// Links the payout's period's unpaid events to it (`?1` payout, `?2` transfer).
const LINK_PAYOUT: &str = "UPDATE revenue_events SET payout_id = ?1, stripe_transfer_id = ?2 \
     WHERE payout_id IS NULL \
       AND (developer_id, period) = (SELECT developer_id, period FROM payouts WHERE id = ?1)";

const MARK_PAID: &str =
    "UPDATE payouts SET status = 'paid', transfer_id = ?2, paid_at = ?3 WHERE id = ?1";

// ---- binding ------------------------------------------------------------------------------

fn id(v: uuid::Uuid) -> JsValue {
    text(v.hyphenated().to_string())
}

fn user(v: UserId) -> JsValue {
    text(v.to_string())
}

/// A count or amount; D1 numbers are exact to 2^53, far above any cents or bytes here.
fn count(v: u64) -> JsValue {
    int(i64::try_from(v).unwrap_or(i64::MAX))
}

fn opt_int(v: Option<i64>) -> JsValue {
    v.map_or(JsValue::NULL, int)
}

/// The rows to skip before page `page` (1-based), capped where D1 numbers stay exact (any
/// offset past the last row gives an empty page anyway).
fn offset(page: u32, per_page: u32) -> i64 {
    const MAX_EXACT: u64 = 1 << 53;
    let skip = u64::from(page.saturating_sub(1)).saturating_mul(u64::from(per_page));
    i64::try_from(skip.min(MAX_EXACT)).unwrap_or(i64::MAX)
}

fn constraint_text(e: &worker::Error) -> String {
    match e {
        worker::Error::D1(d1) => format!("{} {d1:?}", d1.cause()),
        other => other.to_string(),
    }
}

/// A unique violation of `plugin_versions` as the conflict it means.
fn version_conflict(e: &worker::Error) -> Option<StoreError> {
    if !is_unique_violation(e) {
        return None;
    }
    // `UNIQUE (plugin_id, version)` names both columns; the one-pending index only plugin_id.
    Some(if constraint_text(e).contains("plugin_versions.version") {
        StoreError::Conflict("this version of the plugin was already submitted")
    } else {
        StoreError::Conflict("a version of this plugin is already pending review")
    })
}

// ---- rows ---------------------------------------------------------------------------------

fn corrupt(table: &str, what: &str) -> StoreError {
    StoreError::Unavailable(format!("corrupt {table} row: {what}"))
}

#[allow(clippy::cast_possible_truncation)]
fn ms(v: f64) -> i64 {
    v as i64
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn unsigned(v: f64) -> u64 {
    v.max(0.0) as u64
}

fn parse_uuid(raw: &str, table: &str, what: &str) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::try_parse(raw).map_err(|_| corrupt(table, what))
}

fn parse_user(raw: &str, table: &str, what: &str) -> Result<UserId, StoreError> {
    UserId::parse(raw).ok_or_else(|| corrupt(table, what))
}

fn parse_period(raw: &str, table: &str) -> Result<Period, StoreError> {
    Period::parse(raw, "period").map_err(|_| corrupt(table, "period"))
}

fn parse_manifest(raw: &str, table: &str) -> Result<PluginManifest, StoreError> {
    serde_json::from_str(raw).map_err(|e| corrupt(table, &format!("manifest: {e}")))
}

#[derive(Deserialize)]
struct PluginRow {
    id: String,
    author_id: String,
    status: String,
    manifest: Option<String>,
    install_count: f64,
    rating_sum: f64,
    rating_count: f64,
    created_at: f64,
    approved_at: Option<f64>,
}

impl PluginRow {
    fn into_plugin(self) -> Result<Plugin, StoreError> {
        const T: &str = "plugins";
        Ok(Plugin {
            id: parse_uuid(&self.id, T, "id")?,
            author_id: parse_user(&self.author_id, T, "author_id")?,
            status: PluginStatus::parse(&self.status).ok_or_else(|| corrupt(T, "status"))?,
            live: self
                .manifest
                .as_deref()
                .map(|m| parse_manifest(m, T))
                .transpose()?,
            install_count: unsigned(self.install_count),
            rating: RatingTally {
                sum: unsigned(self.rating_sum),
                count: unsigned(self.rating_count),
            },
            created_at: ms(self.created_at),
            approved_at: self.approved_at.map(ms),
        })
    }
}

#[derive(Deserialize)]
struct VersionRow {
    id: String,
    plugin_id: String,
    manifest: String,
    package_key: String,
    package_checksum: String,
    package_size: f64,
    status: String,
    submitted_at: f64,
    decided_at: Option<f64>,
}

impl VersionRow {
    fn into_version(self) -> Result<PluginVersion, StoreError> {
        const T: &str = "plugin_versions";
        Ok(PluginVersion {
            id: parse_uuid(&self.id, T, "id")?,
            plugin_id: parse_uuid(&self.plugin_id, T, "plugin_id")?,
            manifest: parse_manifest(&self.manifest, T)?,
            package_checksum: Checksum::parse(&self.package_checksum, "package_checksum")
                .map_err(|_| corrupt(T, "package_checksum"))?,
            package_key: self.package_key,
            package_size: unsigned(self.package_size),
            status: VersionStatus::parse(&self.status).ok_or_else(|| corrupt(T, "status"))?,
            submitted_at: ms(self.submitted_at),
            decided_at: self.decided_at.map(ms),
        })
    }
}

/// A pending version (its own columns) with its plugin (`p_` columns).
#[derive(Deserialize)]
struct PendingRow {
    id: String,
    plugin_id: String,
    manifest: String,
    package_key: String,
    package_checksum: String,
    package_size: f64,
    status: String,
    submitted_at: f64,
    decided_at: Option<f64>,
    p_author_id: String,
    p_status: String,
    p_manifest: Option<String>,
    p_install_count: f64,
    p_rating_sum: f64,
    p_rating_count: f64,
    p_created_at: f64,
    p_approved_at: Option<f64>,
}

impl PendingRow {
    fn split(self) -> Result<(Plugin, PluginVersion), StoreError> {
        let plugin = PluginRow {
            id: self.plugin_id.clone(),
            author_id: self.p_author_id,
            status: self.p_status,
            manifest: self.p_manifest,
            install_count: self.p_install_count,
            rating_sum: self.p_rating_sum,
            rating_count: self.p_rating_count,
            created_at: self.p_created_at,
            approved_at: self.p_approved_at,
        };
        let version = VersionRow {
            id: self.id,
            plugin_id: self.plugin_id,
            manifest: self.manifest,
            package_key: self.package_key,
            package_checksum: self.package_checksum,
            package_size: self.package_size,
            status: self.status,
            submitted_at: self.submitted_at,
            decided_at: self.decided_at,
        };
        Ok((plugin.into_plugin()?, version.into_version()?))
    }
}

#[derive(Deserialize)]
struct RevenueRow {
    id: String,
    plugin_id: String,
    user_id: String,
    developer_id: String,
    amount_cents: f64,
    developer_share_cents: f64,
    platform_share_cents: f64,
    currency: String,
    stripe_payment_id: String,
    period: String,
    created_at: f64,
}

impl RevenueRow {
    fn into_event(self) -> Result<RevenueEvent, StoreError> {
        const T: &str = "revenue_events";
        Ok(RevenueEvent {
            id: parse_uuid(&self.id, T, "id")?,
            plugin_id: parse_uuid(&self.plugin_id, T, "plugin_id")?,
            user_id: parse_user(&self.user_id, T, "user_id")?,
            developer_id: parse_user(&self.developer_id, T, "developer_id")?,
            amount_cents: unsigned(self.amount_cents),
            developer_share_cents: unsigned(self.developer_share_cents),
            platform_share_cents: unsigned(self.platform_share_cents),
            currency: self.currency,
            payment_id: self.stripe_payment_id,
            period: parse_period(&self.period, T)?,
            created_at: ms(self.created_at),
        })
    }
}

#[derive(Deserialize)]
struct PayoutRow {
    id: String,
    developer_id: String,
    period: String,
    amount_cents: f64,
    destination: String,
    idempotency_key: String,
    status: String,
    transfer_id: Option<String>,
    created_at: f64,
    paid_at: Option<f64>,
}

impl PayoutRow {
    fn into_payout(self) -> Result<Payout, StoreError> {
        const T: &str = "payouts";
        Ok(Payout {
            id: parse_uuid(&self.id, T, "id")?,
            developer_id: parse_user(&self.developer_id, T, "developer_id")?,
            period: parse_period(&self.period, T)?,
            amount_cents: unsigned(self.amount_cents),
            destination: self.destination,
            idempotency_key: self.idempotency_key,
            status: PayoutStatus::parse(&self.status).ok_or_else(|| corrupt(T, "status"))?,
            transfer_id: self.transfer_id,
            created_at: ms(self.created_at),
            paid_at: self.paid_at.map(ms),
        })
    }
}

/// A period of earnings; the payout's columns are NULL when none was started.
#[derive(Deserialize)]
struct EarningsRow {
    period: String,
    sales: f64,
    gross_cents: f64,
    developer_cents: f64,
    platform_cents: f64,
    payout_id: Option<String>,
    payout_amount_cents: Option<f64>,
    destination: Option<String>,
    idempotency_key: Option<String>,
    payout_status: Option<String>,
    transfer_id: Option<String>,
    payout_created_at: Option<f64>,
    paid_at: Option<f64>,
}

impl EarningsRow {
    fn into_earnings(self, developer: UserId) -> Result<PeriodEarnings, StoreError> {
        let period = parse_period(&self.period, "revenue_events")?;
        let payout = match self.payout_id {
            None => None,
            Some(payout_id) => Some(
                PayoutRow {
                    id: payout_id,
                    developer_id: developer.to_string(),
                    period: self.period,
                    amount_cents: self.payout_amount_cents.unwrap_or_default(),
                    destination: self.destination.unwrap_or_default(),
                    idempotency_key: self.idempotency_key.unwrap_or_default(),
                    status: self.payout_status.unwrap_or_default(),
                    transfer_id: self.transfer_id,
                    created_at: self.payout_created_at.unwrap_or_default(),
                    paid_at: self.paid_at,
                }
                .into_payout()?,
            ),
        };
        Ok(PeriodEarnings {
            period,
            sales: unsigned(self.sales),
            gross_cents: unsigned(self.gross_cents),
            developer_cents: unsigned(self.developer_cents),
            platform_cents: unsigned(self.platform_cents),
            payout,
        })
    }
}

#[derive(Deserialize)]
struct DueRow {
    developer_id: String,
    period: String,
    amount_cents: f64,
    destination: String,
}

impl DueRow {
    fn into_due(self) -> Result<DuePayout, StoreError> {
        const T: &str = "revenue_events";
        Ok(DuePayout {
            developer_id: parse_user(&self.developer_id, T, "developer_id")?,
            period: parse_period(&self.period, T)?,
            amount_cents: unsigned(self.amount_cents),
            destination: self.destination,
        })
    }
}

#[derive(Deserialize)]
struct TallyRow {
    rating_sum: f64,
    rating_count: f64,
}

#[derive(Deserialize)]
struct TotalRow {
    total: f64,
}

// ---- queries ------------------------------------------------------------------------------

impl D1PluginStore {
    fn stmt(&self, sql: &str, args: &[JsValue]) -> Result<D1PreparedStatement, StoreError> {
        stmt(&self.0, sql, args)
    }

    async fn first<T: DeserializeOwned>(
        &self,
        what: &str,
        sql: &str,
        args: &[JsValue],
    ) -> Result<Option<T>, StoreError> {
        self.stmt(sql, args)?
            .first::<T>(None)
            .await
            .map_err(|e| unavailable(what, &e))
    }

    async fn all<T: DeserializeOwned>(
        &self,
        what: &str,
        sql: &str,
        args: &[JsValue],
    ) -> Result<Vec<T>, StoreError> {
        self.stmt(sql, args)?
            .all()
            .await
            .map_err(|e| unavailable(what, &e))?
            .results::<T>()
            .map_err(|e| unavailable(what, &e))
    }

    async fn batch(
        &self,
        what: &str,
        statements: Vec<D1PreparedStatement>,
    ) -> Result<Vec<D1Result>, StoreError> {
        self.0
            .batch(statements)
            .await
            .map_err(|e| unavailable(what, &e))
    }

    fn recount(&self, plugin: uuid::Uuid) -> Result<D1PreparedStatement, StoreError> {
        self.stmt(RECOUNT, &[id(plugin)])
    }

    fn insert_version_stmt(
        &self,
        v: &PluginVersion,
        max_pending: u64,
    ) -> Result<D1PreparedStatement, StoreError> {
        let manifest = serde_json::to_string(&v.manifest)
            .map_err(|e| StoreError::Unavailable(format!("encoding manifest: {e}")))?;
        self.stmt(
            INSERT_VERSION,
            &[
                id(v.id),
                id(v.plugin_id),
                text(v.manifest.version.to_string()),
                text(manifest),
                text(&v.package_key),
                text(v.package_checksum.as_str()),
                count(v.package_size),
                text(v.status.as_str()),
                int(v.submitted_at),
                opt_int(v.decided_at),
                count(max_pending),
            ],
        )
    }
}

/// The `i`-th result of a batch (D1 returns one per statement).
fn nth<'a>(results: &'a [D1Result], i: usize, what: &str) -> Result<&'a D1Result, StoreError> {
    results
        .get(i)
        .ok_or_else(|| StoreError::Unavailable(format!("{what}: D1 batch result missing")))
}

fn rows<T: DeserializeOwned>(r: &D1Result, what: &str) -> Result<Vec<T>, StoreError> {
    r.results::<T>().map_err(|e| unavailable(what, &e))
}

#[async_trait(?Send)]
impl PluginStore for D1PluginStore {
    async fn insert_plugin(
        &self,
        plugin: uuid::Uuid,
        author: UserId,
        first: &PluginVersion,
        now_ms: i64,
        max_pending: u64,
    ) -> Result<bool, StoreError> {
        let statements = vec![
            self.stmt(
                INSERT_PLUGIN,
                &[id(plugin), user(author), int(now_ms), count(max_pending)],
            )?,
            self.insert_version_stmt(first, max_pending)?,
        ];
        match self.0.batch(statements).await {
            Ok(results) => Ok(changes(nth(&results, 1, "inserting plugin")?) == 1),
            Err(e) => {
                Err(version_conflict(&e).unwrap_or_else(|| unavailable("inserting plugin", &e)))
            }
        }
    }

    async fn insert_version(
        &self,
        version: &PluginVersion,
        max_pending: u64,
    ) -> Result<bool, StoreError> {
        match self.insert_version_stmt(version, max_pending)?.run().await {
            Ok(r) => Ok(changes(&r) == 1),
            Err(e) => {
                Err(version_conflict(&e).unwrap_or_else(|| unavailable("inserting version", &e)))
            }
        }
    }

    async fn pending_by_author(&self, author: UserId) -> Result<u64, StoreError> {
        let row = self
            .first::<TotalRow>(
                "counting pending versions",
                PENDING_BY_AUTHOR,
                &[user(author)],
            )
            .await?;
        Ok(row.map_or(0, |r| unsigned(r.total)))
    }

    async fn plugin(&self, plugin: uuid::Uuid) -> Result<Option<Plugin>, StoreError> {
        self.first::<PluginRow>("reading plugin", SELECT_PLUGIN, &[id(plugin)])
            .await?
            .map(PluginRow::into_plugin)
            .transpose()
    }

    async fn versions(&self, plugin: uuid::Uuid) -> Result<Vec<PluginVersion>, StoreError> {
        self.all::<VersionRow>("reading versions", SELECT_VERSIONS, &[id(plugin)])
            .await?
            .into_iter()
            .map(VersionRow::into_version)
            .collect()
    }

    async fn live_version(&self, plugin: uuid::Uuid) -> Result<Option<PluginVersion>, StoreError> {
        self.first::<VersionRow>("reading live version", SELECT_LIVE_VERSION, &[id(plugin)])
            .await?
            .map(VersionRow::into_version)
            .transpose()
    }

    async fn pending(&self, limit: u32) -> Result<Vec<(Plugin, PluginVersion)>, StoreError> {
        self.all::<PendingRow>(
            "reading pending versions",
            SELECT_PENDING,
            &[int(i64::from(limit))],
        )
        .await?
        .into_iter()
        .map(PendingRow::split)
        .collect()
    }

    async fn decide(&self, review: &ReviewRecord) -> Result<(), StoreError> {
        let (r, p, v, at) = (
            id(review.id),
            id(review.plugin_id),
            id(review.version_id),
            int(review.reviewed_at),
        );
        let mut statements = vec![self.stmt(
            INSERT_REVIEW,
            &[
                r.clone(),
                p.clone(),
                v.clone(),
                user(review.reviewer_id),
                text(review.decision.as_str()),
                text(&review.notes),
                at.clone(),
            ],
        )?];
        // The version's own status changes last: until then it is still `pending_review`, so
        // superseding the previous live version cannot touch it.
        let status = match review.decision {
            Decision::Approve => {
                statements.push(self.stmt(SUPERSEDE_LIVE, &[r.clone(), p.clone()])?);
                statements
                    .push(self.stmt(GO_LIVE, &[r.clone(), p.clone(), v.clone(), at.clone()])?);
                VersionStatus::Approved
            }
            Decision::Reject => {
                statements.push(self.stmt(REJECT_PLUGIN, &[r.clone(), p.clone(), at.clone()])?);
                VersionStatus::Rejected
            }
        };
        statements.push(self.stmt(DECIDE_VERSION, &[r, p, v, at, text(status.as_str())])?);
        let results = self.batch("recording review", statements).await?;
        if changes(nth(&results, 0, "recording review")?) == 0 {
            return Err(StoreError::Conflict(
                "the version is no longer pending review",
            ));
        }
        Ok(())
    }

    async fn catalog(&self, query: &CatalogQuery) -> Result<(Vec<Plugin>, u64), StoreError> {
        let category = query.category.map_or(JsValue::NULL, |c| text(c.as_str()));
        let pattern = opt_text(query.q.clone().filter(|q| !q.is_empty()));
        let order = match query.sort {
            Sort::Rating => ORDER_BY_RATING,
            Sort::Installs => ORDER_BY_INSTALLS,
            Sort::Newest => ORDER_BY_NEWEST,
        };
        let page = self.stmt(
            &format!(
                "SELECT {PLUGIN_COLUMNS} {CATALOG_FILTER} ORDER BY {order} LIMIT ?3 OFFSET ?4"
            ),
            &[
                category.clone(),
                pattern.clone(),
                int(i64::from(query.per_page)),
                int(offset(query.page, query.per_page)),
            ],
        )?;
        let total = self.stmt(
            &format!("SELECT COUNT(*) AS total {CATALOG_FILTER}"),
            &[category, pattern],
        )?;
        // One batch: the page and the total read the same snapshot.
        let results = self.batch("reading catalog", vec![page, total]).await?;
        let plugins = rows::<PluginRow>(nth(&results, 0, "reading catalog")?, "reading catalog")?
            .into_iter()
            .map(PluginRow::into_plugin)
            .collect::<Result<Vec<_>, _>>()?;
        let total = rows::<TotalRow>(nth(&results, 1, "counting catalog")?, "counting catalog")?
            .first()
            .map_or(0, |t| unsigned(t.total));
        Ok((plugins, total))
    }

    async fn installed_at(
        &self,
        plugin: uuid::Uuid,
        by: UserId,
    ) -> Result<Option<i64>, StoreError> {
        let at = self
            .stmt(SELECT_INSTALLED_AT, &[id(plugin), user(by)])?
            .first::<f64>(Some("installed_at"))
            .await
            .map_err(|e| unavailable("reading installation", &e))?;
        Ok(at.map(ms))
    }

    async fn purchase(
        &self,
        plugin: uuid::Uuid,
        by: UserId,
    ) -> Result<Option<RevenueEvent>, StoreError> {
        self.first::<RevenueRow>("reading purchase", SELECT_PURCHASE, &[id(plugin), user(by)])
            .await?
            .map(RevenueRow::into_event)
            .transpose()
    }

    async fn install(
        &self,
        plugin: uuid::Uuid,
        by: UserId,
        purchase: Option<&RevenueEvent>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut statements = Vec::with_capacity(3);
        if let Some(e) = purchase {
            statements.push(self.stmt(
                INSERT_PURCHASE,
                &[
                    id(e.id),
                    id(e.plugin_id),
                    user(e.user_id),
                    user(e.developer_id),
                    count(e.amount_cents),
                    count(e.developer_share_cents),
                    count(e.platform_share_cents),
                    text(&e.currency),
                    text(&e.payment_id),
                    text(e.period.to_string()),
                    int(e.created_at),
                ],
            )?);
        }
        let installation = statements.len();
        statements.push(self.stmt(INSERT_INSTALLATION, &[id(plugin), user(by), int(now_ms)])?);
        statements.push(self.recount(plugin)?);
        let results = self.batch("recording installation", statements).await?;
        Ok(changes(nth(&results, installation, "recording installation")?) == 1)
    }

    async fn uninstall(&self, plugin: uuid::Uuid, by: UserId) -> Result<bool, StoreError> {
        let statements = vec![
            self.stmt(DELETE_INSTALLATION, &[id(plugin), user(by)])?,
            self.stmt(DELETE_RATING, &[id(plugin), user(by)])?,
            self.recount(plugin)?,
        ];
        let results = self.batch("removing installation", statements).await?;
        Ok(changes(nth(&results, 0, "removing installation")?) == 1)
    }

    async fn rate(
        &self,
        plugin: uuid::Uuid,
        by: UserId,
        stars: Stars,
        now_ms: i64,
    ) -> Result<RatingTally, StoreError> {
        let statements = vec![
            self.stmt(
                UPSERT_RATING,
                &[
                    id(plugin),
                    user(by),
                    int(i64::from(stars.get())),
                    int(now_ms),
                ],
            )?,
            self.recount(plugin)?,
            self.stmt(SELECT_TALLY, &[id(plugin)])?,
        ];
        let results = self.batch("recording rating", statements).await?;
        if changes(nth(&results, 0, "recording rating")?) == 0 {
            return Err(StoreError::Conflict("the plugin is no longer installed"));
        }
        let tally = rows::<TallyRow>(nth(&results, 2, "reading tally")?, "reading tally")?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Unavailable("rated plugin has no row".into()))?;
        Ok(RatingTally {
            sum: unsigned(tally.rating_sum),
            count: unsigned(tally.rating_count),
        })
    }

    async fn rating_of(&self, plugin: uuid::Uuid, by: UserId) -> Result<Option<Stars>, StoreError> {
        let rating = self
            .stmt(SELECT_RATING, &[id(plugin), user(by)])?
            .first::<f64>(Some("rating"))
            .await
            .map_err(|e| unavailable("reading rating", &e))?;
        rating
            .map(|r| Stars::parse(ms(r), "rating").map_err(|_| corrupt("plugin_ratings", "rating")))
            .transpose()
    }

    async fn earnings(&self, developer: UserId) -> Result<Vec<PeriodEarnings>, StoreError> {
        self.all::<EarningsRow>("reading earnings", SELECT_EARNINGS, &[user(developer)])
            .await?
            .into_iter()
            .map(|row| row.into_earnings(developer))
            .collect()
    }

    async fn set_payout_account(&self, developer: UserId, account: &str) -> Result<(), StoreError> {
        self.stmt(SET_PAYOUT_ACCOUNT, &[text(account), user(developer)])?
            .run()
            .await
            .map_err(|e| unavailable("setting payout account", &e))?;
        Ok(())
    }

    async fn payout_account(&self, developer: UserId) -> Result<Option<String>, StoreError> {
        self.stmt(SELECT_PAYOUT_ACCOUNT, &[user(developer)])?
            .first::<Option<String>>(Some("stripe_account_id"))
            .await
            .map(Option::flatten)
            .map_err(|e| unavailable("reading payout account", &e))
    }

    async fn due_payouts(&self, before: Period) -> Result<Vec<DuePayout>, StoreError> {
        self.all::<DueRow>(
            "reading due payouts",
            SELECT_DUE_PAYOUTS,
            &[text(before.to_string())],
        )
        .await?
        .into_iter()
        .map(DueRow::into_due)
        .collect()
    }

    async fn start_payout(&self, payout: &Payout) -> Result<Payout, StoreError> {
        let (developer, period) = (user(payout.developer_id), text(payout.period.to_string()));
        let statements = vec![
            self.stmt(
                INSERT_PAYOUT,
                &[
                    id(payout.id),
                    developer.clone(),
                    period.clone(),
                    count(payout.amount_cents),
                    text(&payout.destination),
                    text(&payout.idempotency_key),
                    text(payout.status.as_str()),
                    opt_text(payout.transfer_id.as_deref()),
                    int(payout.created_at),
                    opt_int(payout.paid_at),
                ],
            )?,
            self.stmt(SELECT_PAYOUT, &[developer, period])?,
        ];
        let results = self.batch("starting payout", statements).await?;
        rows::<PayoutRow>(nth(&results, 1, "reading payout")?, "reading payout")?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Unavailable("started payout has no row".into()))?
            .into_payout()
    }

    async fn finish_payout(
        &self,
        payout_id: uuid::Uuid,
        transfer_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let statements = vec![
            self.stmt(LINK_PAYOUT, &[id(payout_id), text(transfer_id)])?,
            self.stmt(MARK_PAID, &[id(payout_id), text(transfer_id), int(now_ms)])?,
        ];
        let results = self.batch("finishing payout", statements).await?;
        if changes(nth(&results, 1, "finishing payout")?) == 0 {
            return Err(StoreError::Conflict("no such payout"));
        }
        Ok(())
    }
}
