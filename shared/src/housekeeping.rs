//! Housekeeping on the cron: what is safe to forget is forgotten, a bounded amount per run.
//!
//! Jobs, in order, each bounded by [`HousekeepingPolicy::batch`] per run (so one run's work and
//! CPU are bounded however much is due), each resumable:
//! 1. expired WebSocket tickets (D1 `ws_tickets`), then expired one-time account tokens
//!    (`account_tokens`: verification, reset and two-factor login tokens — an expired one is
//!    refused anyway, used or not), then expired SSO sign-ins and one-time SSO codes
//!    (`sso_logins`, `sso_codes`: refused once expired), then pending account deletions
//!    ([`Deletions`], bounded
//!    by [`crate::accounts::deletion::CRON_DELETIONS`] and
//!    [`crate::accounts::deletion::CRON_UNITS`]);
//! 2. expired refresh tokens (an expired token is refused before any reuse check, so nothing
//!    is lost by forgetting it);
//! 3. dead refresh families — revoked, or left without tokens — older than
//!    [`HousekeepingPolicy::session_age_ms`] (longer than any access token: the home remembers
//!    revocations by itself, and a missing family reads as revoked);
//! 4. packages of rejected or superseded plugin versions decided more than
//!    [`HousekeepingPolicy::package_age_ms`] ago: the R2 object is deleted, then the version
//!    is marked (`package_purged_at`), so a crash between the two repeats a harmless delete;
//! 5. old tombstones in the users' homes: per-user metadata lives in each user's home
//!    (SQLite), not D1, so the cron walks the accounts in id order from a stored cursor and
//!    asks [`HousekeepingPolicy::homes_per_run`] homes per run to purge their own tombstones
//!    older than [`HousekeepingPolicy::tombstone_age_ms`] (a home also does so by itself, a
//!    bounded amount, in its own housekeeping when it is used — so active users never wait
//!    for the cron's pass);
//! 6. R2 leftovers: one page of each bucket (records, backups, plugin packages) from a stored
//!    list cursor; an object uploaded more than [`HousekeepingPolicy::leftover_age_ms`] ago
//!    (older than any write in flight, whose reservation lapses after 15 minutes) that no
//!    metadata row references is deleted. Records and backups are asked of the home named by
//!    the key's first segment (the user id); packages of D1's `plugin_versions`. A key outside
//!    that layout is left alone.
//!
//! Jobs 1–4 need no cursor: what they delete leaves the rows they select. Jobs 5–6 store theirs
//! in D1 (`housekeeping`), wrapping around at the end, so consecutive runs cover everything.
//! A job's failure is logged and the next job runs.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::UserId;
use crate::error::AppError;
use crate::home::{self, HomePort};
use crate::ports::StoreError;
use crate::storage::TOMBSTONE_TTL_MS;

/// One day in ms.
pub const DAY_MS: i64 = 24 * 3_600_000;

/// Ages and bounds of the jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HousekeepingPolicy {
    /// Tombstones older than this are purged (30 days: as long as they are listed).
    pub tombstone_age_ms: i64,
    /// R2 objects no row references are deleted once older than this (1 day).
    pub leftover_age_ms: i64,
    /// Dead refresh families are deleted once revoked (or emptied) this long (1 day).
    pub session_age_ms: i64,
    /// Packages of rejected or superseded versions are deleted this long after the decision
    /// (30 days).
    pub package_age_ms: i64,
    /// Rows (or R2 objects) per job and run (500).
    pub batch: u32,
    /// Homes visited per run (200).
    pub homes_per_run: u32,
}

impl Default for HousekeepingPolicy {
    fn default() -> Self {
        Self {
            tombstone_age_ms: TOMBSTONE_TTL_MS,
            leftover_age_ms: DAY_MS,
            session_age_ms: DAY_MS,
            package_age_ms: 30 * DAY_MS,
            batch: 500,
            homes_per_run: 200,
        }
    }
}

impl HousekeepingPolicy {
    /// Every age replaced by `age_ms` and both bounds by `batch` (`DEV_HOUSEKEEPING_*`, dev
    /// only: end-to-end tests cannot wait a month).
    #[must_use]
    pub fn scaled(self, age_ms: Option<i64>, batch: Option<u32>) -> Self {
        let mut p = self;
        if let Some(a) = age_ms {
            p.tombstone_age_ms = a;
            p.leftover_age_ms = a;
            p.session_age_ms = a;
            p.package_age_ms = a;
        }
        if let Some(b) = batch {
            p.batch = b;
            p.homes_per_run = b;
        }
        p
    }
}

/// A package of a rejected or superseded version, due for deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscardedPackage {
    /// The version (`plugin_versions.id`).
    pub version_id: String,
    /// Its R2 key.
    pub key: String,
}

/// One R2 object as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedBlob {
    /// Key.
    pub key: String,
    /// Upload time (epoch ms).
    pub uploaded_ms: i64,
}

/// A page of a bucket's listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobPage {
    /// The objects, in key order.
    pub blobs: Vec<ListedBlob>,
    /// Where the next page starts; `None` at the end.
    pub cursor: Option<String>,
}

/// What the jobs need of D1.
#[async_trait(?Send)]
pub trait HousekeepingStore {
    /// Deletes up to `limit` tickets that expired before `before`; returns how many.
    async fn purge_tickets(&self, before: i64, limit: u32) -> Result<u32, StoreError>;
    /// Deletes up to `limit` one-time account tokens (verification, reset, two-factor login)
    /// that expired before `before`; returns how many.
    async fn purge_account_tokens(&self, before: i64, limit: u32) -> Result<u32, StoreError>;
    /// Deletes up to `limit` SSO sign-ins and up to `limit` one-time SSO codes that expired
    /// before `before`; returns how many in all.
    async fn purge_sso(&self, before: i64, limit: u32) -> Result<u32, StoreError>;
    /// Deletes up to `limit` refresh tokens that expired before `before`.
    async fn purge_refresh_tokens(&self, before: i64, limit: u32) -> Result<u32, StoreError>;
    /// Deletes up to `limit` families revoked before `before`, or created before it and left
    /// without tokens (with whatever tokens they still hold).
    async fn purge_dead_families(&self, before: i64, limit: u32) -> Result<u32, StoreError>;
    /// Up to `limit` packages of versions rejected or superseded before `before`, not purged.
    async fn discarded_packages(
        &self,
        before: i64,
        limit: u32,
    ) -> Result<Vec<DiscardedPackage>, StoreError>;
    /// Marks the version's package as deleted at `now`.
    async fn package_purged(&self, version_id: &str, now: i64) -> Result<(), StoreError>;
    /// Which of `keys` a version row still references (its package not purged).
    async fn packages_referenced(&self, keys: &[String]) -> Result<Vec<String>, StoreError>;
    /// Up to `limit` account ids after `after`, in id order.
    async fn users_after(&self, after: Option<&str>, limit: u32)
        -> Result<Vec<UserId>, StoreError>;
    /// The stored cursor of `job`.
    async fn cursor(&self, job: &str) -> Result<Option<String>, StoreError>;
    /// Stores the cursor of `job` (`None`: start over next time).
    async fn set_cursor(&self, job: &str, cursor: Option<&str>, now: i64)
        -> Result<(), StoreError>;
}

/// A bucket, as the leftover sweep sees it.
#[async_trait(?Send)]
pub trait BlobSweep {
    /// Up to `limit` objects from `cursor` (the start when `None`).
    async fn list(&self, cursor: Option<&str>, limit: u32) -> Result<BlobPage, StoreError>;
    /// Deletes `key` (a missing object is no error).
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// Pending account deletions ([`crate::accounts::deletion`]), finished a bounded amount per run.
#[async_trait(?Send)]
pub trait Deletions {
    /// Works on the oldest pending deletions; returns how many finished.
    ///
    /// # Errors
    /// They cannot be listed.
    async fn finish_pending(&self, now: i64) -> Result<u32, AppError>;
}

/// The users' homes, for the service's own calls.
pub trait Homes {
    /// The home of `user` (no admission, no session).
    ///
    /// # Errors
    /// The binding is missing.
    fn home(&self, user: UserId) -> Result<Box<dyn HomePort + '_>, AppError>;
}

/// Asks a home to purge its tombstones deleted before `before` (at most `limit`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Housekeep {
    /// Cut-off (epoch ms).
    pub tombstones_before: i64,
    /// The most rows to purge.
    pub limit: u32,
}

/// What [`Housekeep`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Housekept {
    /// Tombstones purged.
    pub tombstones: u32,
}

/// Asks a home which of `keys` (in the records or backups bucket) a row of it references.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Referenced {
    /// Candidate keys, all under the home's user.
    pub keys: Vec<String>,
}

/// What [`Referenced`] answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferencedKeys {
    /// The keys referenced.
    pub keys: Vec<String>,
}

impl home::HomeOp for Housekeep {
    const NAME: &'static str = "housekeep";
    type Answer = Housekept;
}

impl home::HomeOp for Referenced {
    const NAME: &'static str = "referenced";
    type Answer = ReferencedKeys;
}

/// Which bucket a sweep reads, and where its references live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Records: referenced by a live record row of the key's user.
    Records,
    /// Backups: referenced by a backup or upload row of the key's user.
    Backups,
    /// Plugin packages: referenced by a version row (package not purged).
    Plugins,
}

impl Bucket {
    /// The job's name (its cursor's key).
    pub fn job(self) -> &'static str {
        match self {
            Bucket::Records => "r2:records",
            Bucket::Backups => "r2:backups",
            Bucket::Plugins => "r2:plugins",
        }
    }
}

/// The job name of the walk over the homes.
pub const HOMES_JOB: &str = "homes";

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HousekeepingReport {
    /// Tickets deleted.
    pub tickets: u32,
    /// Expired account tokens deleted.
    pub account_tokens: u32,
    /// Expired SSO sign-ins and codes deleted.
    pub sso: u32,
    /// Account deletions finished.
    pub deletions: u32,
    /// Refresh tokens deleted.
    pub refresh_tokens: u32,
    /// Families deleted.
    pub families: u32,
    /// Discarded packages deleted.
    pub packages: u32,
    /// Homes visited.
    pub homes: u32,
    /// Tombstones purged in them.
    pub tombstones: u32,
    /// R2 leftovers deleted.
    pub leftovers: u32,
    /// Jobs that failed (named; details in the logs).
    pub failed: Vec<&'static str>,
}

/// The housekeeping service over its ports.
pub struct Housekeeping<'a> {
    /// D1.
    pub store: &'a dyn HousekeepingStore,
    /// The users' homes.
    pub homes: &'a dyn Homes,
    /// The buckets swept for leftovers.
    pub records: &'a dyn BlobSweep,
    /// Backups bucket.
    pub backups: &'a dyn BlobSweep,
    /// Plugin packages bucket.
    pub plugins: &'a dyn BlobSweep,
    /// Pending account deletions.
    pub deletions: &'a dyn Deletions,
    /// Ages and bounds.
    pub policy: HousekeepingPolicy,
}

/// The user a records/backups key belongs to: its first segment, when it is a user id.
pub fn key_owner(key: &str) -> Option<UserId> {
    let first = key.split('/').next()?;
    uuid::Uuid::parse_str(first)
        .ok()
        .filter(|u| u.hyphenated().to_string() == first)
        .map(UserId)
}

impl Housekeeping<'_> {
    /// Runs every job once at `now`.
    pub async fn run(&self, now: i64) -> HousekeepingReport {
        let mut report = HousekeepingReport::default();
        let p = self.policy;
        match self.store.purge_tickets(now, p.batch).await {
            Ok(n) => report.tickets = n,
            Err(e) => fail(&mut report, "tickets", &e),
        }
        match self.store.purge_account_tokens(now, p.batch).await {
            Ok(n) => report.account_tokens = n,
            Err(e) => fail(&mut report, "account_tokens", &e),
        }
        match self.store.purge_sso(now, p.batch).await {
            Ok(n) => report.sso = n,
            Err(e) => fail(&mut report, "sso", &e),
        }
        // Before the walk over the homes, so a deleted account's home is not visited again.
        match self.deletions.finish_pending(now).await {
            Ok(n) => report.deletions = n,
            Err(e) => fail(&mut report, "deletions", &e),
        }
        match self.store.purge_refresh_tokens(now, p.batch).await {
            Ok(n) => report.refresh_tokens = n,
            Err(e) => fail(&mut report, "refresh_tokens", &e),
        }
        match self
            .store
            .purge_dead_families(now - p.session_age_ms, p.batch)
            .await
        {
            Ok(n) => report.families = n,
            Err(e) => fail(&mut report, "families", &e),
        }
        match self.packages(now).await {
            Ok(n) => report.packages = n,
            Err(e) => fail(&mut report, "packages", &e),
        }
        match self.walk_homes(now).await {
            Ok((homes, tombstones)) => {
                report.homes = homes;
                report.tombstones = tombstones;
            }
            Err(e) => fail(&mut report, "homes", &e),
        }
        for (bucket, sweep) in [
            (Bucket::Records, self.records),
            (Bucket::Backups, self.backups),
            (Bucket::Plugins, self.plugins),
        ] {
            match self.leftovers(bucket, sweep, now).await {
                Ok(n) => report.leftovers += n,
                Err(e) => fail(&mut report, bucket.job(), &e),
            }
        }
        report
    }

    async fn packages(&self, now: i64) -> Result<u32, AppError> {
        let due = self
            .store
            .discarded_packages(now - self.policy.package_age_ms, self.policy.batch)
            .await?;
        let mut n = 0;
        for p in due {
            self.plugins.delete(&p.key).await?;
            self.store.package_purged(&p.version_id, now).await?;
            n += 1;
        }
        Ok(n)
    }

    /// Visits the next homes after the stored cursor; answers (homes, tombstones).
    async fn walk_homes(&self, now: i64) -> Result<(u32, u32), AppError> {
        let after = self.store.cursor(HOMES_JOB).await?;
        let users = self
            .store
            .users_after(after.as_deref(), self.policy.homes_per_run)
            .await?;
        let op = Housekeep {
            tombstones_before: now - self.policy.tombstone_age_ms,
            limit: self.policy.batch,
        };
        let mut tombstones = 0;
        for user in &users {
            let done = home::call(&*self.homes.home(*user)?, &op).await?;
            if done.tombstones > 0 {
                tracing::info!(user_id = %user, tombstones = done.tombstones, "home housekept");
            }
            tombstones += done.tombstones;
            // Stored after each home, so a failure resumes where it stopped.
            self.store
                .set_cursor(HOMES_JOB, Some(&user.to_string()), now)
                .await?;
        }
        if users.len() < self.policy.homes_per_run as usize {
            // The end of the accounts: the next run starts over.
            self.store.set_cursor(HOMES_JOB, None, now).await?;
        }
        Ok((u32::try_from(users.len()).unwrap_or(u32::MAX), tombstones))
    }

    /// Sweeps one page of `bucket`; answers how many objects it deleted.
    async fn leftovers(
        &self,
        bucket: Bucket,
        sweep: &dyn BlobSweep,
        now: i64,
    ) -> Result<u32, AppError> {
        let cursor = self.store.cursor(bucket.job()).await?;
        let page = sweep.list(cursor.as_deref(), self.policy.batch).await?;
        let old: Vec<String> = page
            .blobs
            .into_iter()
            .filter(|b| b.uploaded_ms < now - self.policy.leftover_age_ms)
            .map(|b| b.key)
            .collect();
        let referenced: Vec<String> = match bucket {
            Bucket::Plugins => self.store.packages_referenced(&old).await?,
            Bucket::Records | Bucket::Backups => self.referenced_in_homes(&old).await?,
        };
        let mut deleted = 0;
        for key in old.iter().filter(|k| !referenced.contains(k)) {
            if bucket != Bucket::Plugins && key_owner(key).is_none() {
                continue;
            }
            sweep.delete(key).await?;
            tracing::info!(bucket = bucket.job(), "unreferenced R2 object deleted");
            deleted += 1;
        }
        self.store
            .set_cursor(bucket.job(), page.cursor.as_deref(), now)
            .await?;
        Ok(deleted)
    }

    /// The keys among `keys` that their owners' homes reference (keys without an owner count as
    /// referenced: they are not this sweep's to judge).
    async fn referenced_in_homes(&self, keys: &[String]) -> Result<Vec<String>, AppError> {
        let mut by_user: Vec<(UserId, Vec<String>)> = Vec::new();
        let mut kept = Vec::new();
        for key in keys {
            match key_owner(key) {
                Some(u) => match by_user.iter_mut().find(|(v, _)| *v == u) {
                    Some((_, ks)) => ks.push(key.clone()),
                    None => by_user.push((u, vec![key.clone()])),
                },
                None => kept.push(key.clone()),
            }
        }
        for (user, keys) in by_user {
            let answer = home::call(&*self.homes.home(user)?, &Referenced { keys }).await?;
            kept.extend(answer.keys);
        }
        Ok(kept)
    }
}

fn fail(report: &mut HousekeepingReport, job: &'static str, e: &dyn std::fmt::Debug) {
    tracing::error!(job, error = ?e, "housekeeping job failed");
    report.failed.push(job);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_belongs_to_the_user_of_its_first_segment_only() {
        let u = "0b0e5f58-52a1-4a5c-9f6e-0d8f5d2c1a11";
        assert_eq!(
            key_owner(&format!("{u}/notes/abc")).map(|u| u.to_string()),
            Some(u.to_owned())
        );
        assert!(key_owner("plugins/x/1.0.0/abc").is_none());
        assert!(key_owner(&format!("{}/x", u.to_uppercase())).is_none());
        assert!(key_owner("").is_none());
    }

    #[test]
    fn dev_scaling_replaces_every_age_and_bound() {
        let p = HousekeepingPolicy::default().scaled(Some(1_500), Some(2));
        assert_eq!(
            (
                p.tombstone_age_ms,
                p.leftover_age_ms,
                p.session_age_ms,
                p.package_age_ms
            ),
            (1_500, 1_500, 1_500, 1_500)
        );
        assert_eq!((p.batch, p.homes_per_run), (2, 2));
        let d = HousekeepingPolicy::default();
        assert_eq!(d.tombstone_age_ms, 30 * DAY_MS);
        assert_eq!(d.leftover_age_ms, DAY_MS);
    }
}
