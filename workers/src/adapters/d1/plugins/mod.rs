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
use shared::domain::UserId;
use shared::marketplace::{
    CatalogQuery, Decision, DuePayout, Payout, Period, PeriodEarnings, Plugin, PluginStore,
    PluginVersion, RatingTally, RevenueEvent, ReviewRecord, Sort, Stars, VersionStatus,
};
use shared::ports::StoreError;
use wasm_bindgen::JsValue;
use worker::{D1PreparedStatement, D1Result};

use super::super::unavailable;
use super::{changes, int, is_unique_violation, opt_text, stmt, text, Db};

mod agents;
mod rows;
mod sql;

use rows::{
    corrupt, ms, unsigned, DueRow, EarningsRow, PayoutRow, PendingRow, PluginRow, RevenueRow,
    TallyRow, TotalRow, VersionRow,
};
// The statements module holds nothing but the statements this adapter runs.
#[allow(clippy::wildcard_imports)]
use sql::*;

pub use agents::D1PluginAgents;

/// The marketplace's tables in D1.
pub struct D1PluginStore(pub Db);

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
