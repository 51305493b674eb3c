//! The marketplace tables fake, with the D1 adapter's semantics.

use std::cell::RefCell;
use std::collections::HashMap;

use async_trait::async_trait;

use crate::domain::UserId;
use crate::ports::StoreError;

/// The marketplace's tables in memory, with the D1 adapter's semantics (counts recomputed,
/// one pending version per plugin, insert-if-absent purchases, first payout wins).
#[derive(Debug, Default)]
pub struct InMemoryPluginStore {
    /// Plugins by id.
    pub plugins: RefCell<HashMap<uuid::Uuid, crate::marketplace::Plugin>>,
    /// Versions, in submission order.
    pub versions: RefCell<Vec<crate::marketplace::PluginVersion>>,
    /// Reviews recorded.
    pub reviews: RefCell<Vec<crate::marketplace::ReviewRecord>>,
    /// Installations: (plugin, user) → installed_at.
    pub installs: RefCell<HashMap<(uuid::Uuid, UserId), i64>>,
    /// Ratings: (plugin, user) → stars.
    pub ratings: RefCell<HashMap<(uuid::Uuid, UserId), crate::marketplace::Stars>>,
    /// Purchases, with the payout each was paid in.
    pub revenue: RefCell<Vec<(crate::marketplace::RevenueEvent, Option<uuid::Uuid>)>>,
    /// Payout accounts.
    pub accounts: RefCell<HashMap<UserId, String>>,
    /// Payouts.
    pub payouts: RefCell<Vec<crate::marketplace::Payout>>,
}

impl InMemoryPluginStore {
    fn recount(&self, plugin: uuid::Uuid) -> crate::marketplace::RatingTally {
        let installs = self
            .installs
            .borrow()
            .keys()
            .filter(|(p, _)| *p == plugin)
            .count() as u64;
        let mut tally = crate::marketplace::RatingTally::default();
        for ((p, _), stars) in self.ratings.borrow().iter() {
            if *p == plugin {
                tally.add(*stars);
            }
        }
        if let Some(row) = self.plugins.borrow_mut().get_mut(&plugin) {
            row.install_count = installs;
            row.rating = tally;
        }
        tally
    }
}

#[async_trait(?Send)]
impl crate::marketplace::PluginStore for InMemoryPluginStore {
    async fn insert_plugin(
        &self,
        id: uuid::Uuid,
        author: UserId,
        first: &crate::marketplace::PluginVersion,
        now_ms: i64,
        max_pending: u64,
    ) -> Result<bool, StoreError> {
        if self.pending_by_author(author).await? >= max_pending {
            return Ok(false);
        }
        self.plugins.borrow_mut().insert(
            id,
            crate::marketplace::Plugin {
                id,
                author_id: author,
                status: crate::marketplace::PluginStatus::PendingReview,
                live: None,
                install_count: 0,
                rating: crate::marketplace::RatingTally::default(),
                created_at: now_ms,
                approved_at: None,
            },
        );
        self.versions.borrow_mut().push(first.clone());
        Ok(true)
    }
    async fn insert_version(
        &self,
        version: &crate::marketplace::PluginVersion,
        max_pending: u64,
    ) -> Result<bool, StoreError> {
        let author = self
            .plugins
            .borrow()
            .get(&version.plugin_id)
            .map(|p| p.author_id)
            .ok_or(StoreError::Conflict("no such plugin"))?;
        if self.pending_by_author(author).await? >= max_pending {
            return Ok(false);
        }
        let mut versions = self.versions.borrow_mut();
        if versions.iter().any(|v| {
            v.plugin_id == version.plugin_id
                && (v.manifest.version == version.manifest.version
                    || v.status == crate::marketplace::VersionStatus::PendingReview)
        }) {
            return Err(StoreError::Conflict("version exists or one is pending"));
        }
        versions.push(version.clone());
        Ok(true)
    }
    async fn pending_by_author(&self, author: UserId) -> Result<u64, StoreError> {
        let plugins = self.plugins.borrow();
        Ok(self
            .versions
            .borrow()
            .iter()
            .filter(|v| {
                v.status == crate::marketplace::VersionStatus::PendingReview
                    && plugins
                        .get(&v.plugin_id)
                        .is_some_and(|p| p.author_id == author)
            })
            .count() as u64)
    }
    async fn plugin(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<crate::marketplace::Plugin>, StoreError> {
        Ok(self.plugins.borrow().get(&id).cloned())
    }
    async fn versions(
        &self,
        plugin: uuid::Uuid,
    ) -> Result<Vec<crate::marketplace::PluginVersion>, StoreError> {
        Ok(self
            .versions
            .borrow()
            .iter()
            .filter(|v| v.plugin_id == plugin)
            .cloned()
            .collect())
    }
    async fn live_version(
        &self,
        plugin: uuid::Uuid,
    ) -> Result<Option<crate::marketplace::PluginVersion>, StoreError> {
        Ok(self
            .versions
            .borrow()
            .iter()
            .find(|v| {
                v.plugin_id == plugin && v.status == crate::marketplace::VersionStatus::Approved
            })
            .cloned())
    }
    async fn pending(
        &self,
        limit: u32,
    ) -> Result<
        Vec<(
            crate::marketplace::Plugin,
            crate::marketplace::PluginVersion,
        )>,
        StoreError,
    > {
        let plugins = self.plugins.borrow();
        Ok(self
            .versions
            .borrow()
            .iter()
            .filter(|v| v.status == crate::marketplace::VersionStatus::PendingReview)
            .take(limit as usize)
            .map(|v| (plugins[&v.plugin_id].clone(), v.clone()))
            .collect())
    }
    async fn decide(&self, review: &crate::marketplace::ReviewRecord) -> Result<(), StoreError> {
        use crate::marketplace::{Decision, PluginStatus, VersionStatus};
        let mut versions = self.versions.borrow_mut();
        let Some(idx) = versions.iter().position(|v| {
            v.id == review.version_id
                && v.plugin_id == review.plugin_id
                && v.status == VersionStatus::PendingReview
        }) else {
            return Err(StoreError::Conflict("version is not pending review"));
        };
        let mut plugins = self.plugins.borrow_mut();
        let plugin = plugins
            .get_mut(&review.plugin_id)
            .ok_or(StoreError::Conflict("no such plugin"))?;
        match review.decision {
            Decision::Approve => {
                for v in versions.iter_mut() {
                    if v.plugin_id == review.plugin_id && v.status == VersionStatus::Approved {
                        v.status = VersionStatus::Superseded;
                    }
                }
                versions[idx].status = VersionStatus::Approved;
                plugin.status = PluginStatus::Approved;
                plugin.live = Some(versions[idx].manifest.clone());
                plugin.approved_at = Some(review.reviewed_at);
            }
            Decision::Reject => {
                versions[idx].status = VersionStatus::Rejected;
                if plugin.live.is_none() {
                    plugin.status = PluginStatus::Rejected;
                }
            }
        }
        versions[idx].decided_at = Some(review.reviewed_at);
        self.reviews.borrow_mut().push(review.clone());
        Ok(())
    }
    async fn catalog(
        &self,
        query: &crate::marketplace::CatalogQuery,
    ) -> Result<(Vec<crate::marketplace::Plugin>, u64), StoreError> {
        use crate::marketplace::{PluginStatus, Sort};
        let needle = query.q.as_ref().map(|q| q.to_ascii_lowercase());
        let mut hits: Vec<crate::marketplace::Plugin> = self
            .plugins
            .borrow()
            .values()
            .filter(|p| p.status == PluginStatus::Approved)
            .filter(|p| {
                let live = p.live.as_ref().expect("approved plugins have a manifest");
                query.category.is_none_or(|c| c == live.category)
                    && needle.as_ref().is_none_or(|n| {
                        live.name.to_ascii_lowercase().contains(n)
                            || live.description.to_ascii_lowercase().contains(n)
                    })
            })
            .cloned()
            .collect();
        hits.sort_by(|a, b| {
            let by = match query.sort {
                Sort::Rating => {
                    let key = |p: &crate::marketplace::Plugin| {
                        (
                            p.rating.count == 0,
                            std::cmp::Reverse(p.rating.average_hundredths().unwrap_or(0)),
                            std::cmp::Reverse(p.rating.count),
                        )
                    };
                    key(a).cmp(&key(b))
                }
                Sort::Installs => b.install_count.cmp(&a.install_count),
                Sort::Newest => b.approved_at.cmp(&a.approved_at),
            };
            by.then(a.id.cmp(&b.id))
        });
        let total = hits.len() as u64;
        let skip = (query.page.saturating_sub(1) as usize).saturating_mul(query.per_page as usize);
        Ok((
            hits.into_iter()
                .skip(skip)
                .take(query.per_page as usize)
                .collect(),
            total,
        ))
    }
    async fn installed_at(
        &self,
        plugin: uuid::Uuid,
        user: UserId,
    ) -> Result<Option<i64>, StoreError> {
        Ok(self.installs.borrow().get(&(plugin, user)).copied())
    }
    async fn purchase(
        &self,
        plugin: uuid::Uuid,
        user: UserId,
    ) -> Result<Option<crate::marketplace::RevenueEvent>, StoreError> {
        Ok(self
            .revenue
            .borrow()
            .iter()
            .find(|(e, _)| e.plugin_id == plugin && e.user_id == user)
            .map(|(e, _)| e.clone()))
    }
    async fn install(
        &self,
        plugin: uuid::Uuid,
        user: UserId,
        purchase: Option<&crate::marketplace::RevenueEvent>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        if let Some(event) = purchase {
            let mut revenue = self.revenue.borrow_mut();
            if !revenue
                .iter()
                .any(|(e, _)| e.plugin_id == plugin && e.user_id == user)
            {
                revenue.push((event.clone(), None));
            }
        }
        let new = self
            .installs
            .borrow_mut()
            .insert((plugin, user), now_ms)
            .is_none();
        self.recount(plugin);
        Ok(new)
    }
    async fn uninstall(&self, plugin: uuid::Uuid, user: UserId) -> Result<bool, StoreError> {
        let existed = self.installs.borrow_mut().remove(&(plugin, user)).is_some();
        self.ratings.borrow_mut().remove(&(plugin, user));
        self.recount(plugin);
        Ok(existed)
    }
    async fn rate(
        &self,
        plugin: uuid::Uuid,
        user: UserId,
        stars: crate::marketplace::Stars,
        _now_ms: i64,
    ) -> Result<crate::marketplace::RatingTally, StoreError> {
        if !self.installs.borrow().contains_key(&(plugin, user)) {
            return Err(StoreError::Conflict("the plugin is no longer installed"));
        }
        self.ratings.borrow_mut().insert((plugin, user), stars);
        Ok(self.recount(plugin))
    }
    async fn rating_of(
        &self,
        plugin: uuid::Uuid,
        user: UserId,
    ) -> Result<Option<crate::marketplace::Stars>, StoreError> {
        Ok(self.ratings.borrow().get(&(plugin, user)).copied())
    }
    async fn earnings(
        &self,
        developer: UserId,
    ) -> Result<Vec<crate::marketplace::PeriodEarnings>, StoreError> {
        let mut by: std::collections::BTreeMap<
            crate::marketplace::Period,
            crate::marketplace::PeriodEarnings,
        > = std::collections::BTreeMap::new();
        for (e, _) in self.revenue.borrow().iter() {
            if e.developer_id != developer {
                continue;
            }
            let row = by
                .entry(e.period)
                .or_insert_with(|| crate::marketplace::PeriodEarnings {
                    period: e.period,
                    sales: 0,
                    gross_cents: 0,
                    developer_cents: 0,
                    platform_cents: 0,
                    payout: None,
                });
            row.sales += 1;
            row.gross_cents += e.amount_cents;
            row.developer_cents += e.developer_share_cents;
            row.platform_cents += e.platform_share_cents;
        }
        let payouts = self.payouts.borrow();
        Ok(by
            .into_values()
            .rev()
            .map(|mut row| {
                row.payout = payouts
                    .iter()
                    .find(|p| p.developer_id == developer && p.period == row.period)
                    .cloned();
                row
            })
            .collect())
    }
    async fn set_payout_account(&self, developer: UserId, account: &str) -> Result<(), StoreError> {
        self.accounts
            .borrow_mut()
            .insert(developer, account.to_owned());
        Ok(())
    }
    async fn payout_account(&self, developer: UserId) -> Result<Option<String>, StoreError> {
        Ok(self.accounts.borrow().get(&developer).cloned())
    }
    async fn due_payouts(
        &self,
        before: crate::marketplace::Period,
    ) -> Result<Vec<crate::marketplace::DuePayout>, StoreError> {
        let accounts = self.accounts.borrow();
        let mut due: std::collections::BTreeMap<
            (crate::marketplace::Period, String),
            (UserId, u64, String),
        > = std::collections::BTreeMap::new();
        for (e, paid) in self.revenue.borrow().iter() {
            if paid.is_some() || e.period >= before {
                continue;
            }
            let Some(account) = accounts.get(&e.developer_id) else {
                continue;
            };
            due.entry((e.period, e.developer_id.to_string()))
                .or_insert((e.developer_id, 0, account.clone()))
                .1 += e.developer_share_cents;
        }
        Ok(due
            .into_iter()
            .map(|((period, _), (developer_id, amount_cents, destination))| {
                crate::marketplace::DuePayout {
                    developer_id,
                    period,
                    amount_cents,
                    destination,
                }
            })
            .collect())
    }
    async fn start_payout(
        &self,
        payout: &crate::marketplace::Payout,
    ) -> Result<crate::marketplace::Payout, StoreError> {
        let mut payouts = self.payouts.borrow_mut();
        if let Some(p) = payouts
            .iter()
            .find(|p| p.developer_id == payout.developer_id && p.period == payout.period)
        {
            return Ok(p.clone());
        }
        payouts.push(payout.clone());
        Ok(payout.clone())
    }
    async fn finish_payout(
        &self,
        payout_id: uuid::Uuid,
        transfer_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut payouts = self.payouts.borrow_mut();
        let p = payouts
            .iter_mut()
            .find(|p| p.id == payout_id)
            .ok_or(StoreError::Conflict("no such payout"))?;
        p.status = crate::marketplace::PayoutStatus::Paid;
        p.transfer_id = Some(transfer_id.to_owned());
        p.paid_at = Some(now_ms);
        for (e, paid) in self.revenue.borrow_mut().iter_mut() {
            if paid.is_none() && e.developer_id == p.developer_id && e.period == p.period {
                *paid = Some(payout_id);
            }
        }
        Ok(())
    }
}
