//! Account deletion: `DELETE /auth/account {password, code?}` → 202.
//!
//! ## The request
//! The password (and, with two-factor on, a current TOTP code or an unused recovery code) is
//! checked under [`DELETE_RULE`] (5 wrong attempts per 15 minutes per account; a unit taken
//! before the check and given back when it was right; the code goes through the two-factor
//! throttle as at login). Then, before answering, the account stops working *at once*: one D1
//! transaction records the pending deletion (`account_deletions`, with a random `anon_id`) and
//! replaces the account's email and password hash by unusable placeholders (so login is 401 and
//! the address can be registered again right away); every session is revoked and the home
//! learns the account is gone (every token 401, every socket closed with 4001).
//!
//! ## The erasure, in resumable steps
//! [`Eraser::run`] works through the steps of a pending deletion, recording each finished step
//! in D1, within a bound of [`REQUEST_UNITS`] units on the request and [`CRON_UNITS`] per
//! deletion on the cron (one unit: one Stripe call, one page of [`BLOB_PAGE`] R2 objects, the
//! home, the D1 transaction). Every step is idempotent, so a crash anywhere repeats at most the
//! step it was in; the housekeeping cron finishes whatever is pending ([`CRON_DELETIONS`] per
//! run).
//! 1. `stripe`: every subscription not yet cancelled is cancelled at once
//!    (`DELETE /v1/subscriptions/{id}`, `Idempotency-Key: account-deletion:{id}`; 404 is done);
//! 2. `blobs`: every R2 object under `{user_id}/` in the records and backups buckets, a page
//!    at a time;
//! 3. `home`: the open multipart uploads are aborted in R2, the vectors are deleted from the
//!    index (Vectorize; locally they live in the home), and the home is wiped (storage and
//!    alarm);
//! 4. `d1`: one transaction — see [`DeletionStore::erase`].

use async_trait::async_trait;

use super::mfa::MfaService;
use super::{record_event, ClientMeta};
use crate::api::SecondFactor;
use crate::auth::passwords;
use crate::backup::multipart::MultipartBlobs;
use crate::domain::UserId;
use crate::error::{AppError, FieldError, Upstream};
use crate::home::ops::{ErasureInventory, Wipe};
use crate::housekeeping::Homes;
use crate::ports::{Payments, SecurityEventKind, StoreError, VectorIndex};
use crate::rate_limit::{RateOp, RateRule};

/// Wrong passwords on a deletion request, per account: 5 per 15 minutes.
pub const DELETE_RULE: RateRule = RateRule {
    limit: 5,
    window_ms: 15 * 60_000,
};
/// Units of erasure done on the request itself before answering.
pub const REQUEST_UNITS: u32 = 10;
/// Units of erasure per pending deletion and cron run.
pub const CRON_UNITS: u32 = 50;
/// Pending deletions the cron works on per run.
pub const CRON_DELETIONS: u32 = 5;
/// R2 objects listed and deleted per unit.
pub const BLOB_PAGE: u32 = 100;

/// Where a pending deletion stands: the next step to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Cancel the Stripe subscriptions.
    Stripe,
    /// Delete the R2 objects.
    Blobs,
    /// Abort uploads, delete vectors, wipe the home.
    Home,
    /// The D1 transaction.
    D1,
}

impl Step {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Stripe => "stripe",
            Step::Blobs => "blobs",
            Step::Home => "home",
            Step::D1 => "d1",
        }
    }

    /// The step of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "stripe" => Step::Stripe,
            "blobs" => Step::Blobs,
            "home" => Step::Home,
            "d1" => Step::D1,
            _ => return None,
        })
    }

    fn next(self) -> Option<Self> {
        match self {
            Step::Stripe => Some(Step::Blobs),
            Step::Blobs => Some(Step::Home),
            Step::Home => Some(Step::D1),
            Step::D1 => None,
        }
    }
}

/// A deletion that is not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingDeletion {
    /// The account.
    pub user: UserId,
    /// The random id that replaces the account in the accounting rows that stay.
    pub anon: uuid::Uuid,
    /// The next step.
    pub step: Step,
}

/// D1's side of deletions (`account_deletions` and everything the last step erases).
#[async_trait(?Send)]
pub trait DeletionStore {
    /// Records the pending deletion (kept as it is when one exists) and makes the account
    /// unusable in the same transaction: email and password hash replaced by placeholders.
    /// Returns the deletion as it stands.
    async fn request(
        &self,
        user: UserId,
        anon: uuid::Uuid,
        now: i64,
    ) -> Result<PendingDeletion, StoreError>;
    /// The oldest `limit` pending deletions.
    async fn due(&self, limit: u32) -> Result<Vec<PendingDeletion>, StoreError>;
    /// The user's Stripe subscriptions not cancelled yet.
    async fn live_subscriptions(&self, user: UserId) -> Result<Vec<String>, StoreError>;
    /// Records that `user`'s deletion is at `step`.
    async fn advance(&self, user: UserId, step: Step, now: i64) -> Result<(), StoreError>;
    /// The last step, one transaction: installations and ratings deleted (the plugins'
    /// counters recomputed); the user's plugins delisted (no live version, pending versions
    /// rejected, approved ones superseded so their packages are purged in 30 days) and, with
    /// the purchases, payouts and review decisions that others' payouts or audits depend on,
    /// moved to a placeholder account `anon` (no email, no password, no personal data); the
    /// account deleted (sessions, tokens, tickets, subscriptions, two-factor, security log
    /// cascade with it) and the pending deletion with it. A team the account owned goes with
    /// it (members and invitations cascade); a team it belonged to loses the member. Returns
    /// the other members of the team it owned, whose tier in force falls back to their own.
    async fn erase(
        &self,
        user: UserId,
        anon: uuid::Uuid,
        now: i64,
    ) -> Result<Vec<UserId>, StoreError>;
}

/// Tells a user's home that their account changed in D1 (it takes the new copy). A failure is
/// the adapter's to log: the home re-reads D1 within a minute anyway.
#[async_trait(?Send)]
pub trait AccountRefresh {
    /// Pushes `user`'s account as D1 has it now to their home.
    async fn refresh(&self, user: UserId);
}

/// A bucket, as the deletion sees it: keys under a prefix.
#[async_trait(?Send)]
pub trait PrefixedBlobs {
    /// Up to `limit` keys starting with `prefix`.
    async fn keys_under(&self, prefix: &str, limit: u32) -> Result<Vec<String>, StoreError>;
    /// Deletes `key` (a missing object is no error).
    async fn delete_key(&self, key: &str) -> Result<(), StoreError>;
}

/// The request: checks and the immediate stop.
pub struct DeletionRequest<'a> {
    /// Two-factor (and, through it, accounts, sessions, the limiter, the log, time, randomness).
    pub mfa: MfaService<'a>,
    /// Deletions.
    pub store: &'a dyn DeletionStore,
}

impl DeletionRequest<'_> {
    /// `DELETE /auth/account`: see the module's rules. Returns the pending deletion and the
    /// sessions it revoked (whose sockets must close).
    ///
    /// # Errors
    /// 401 for a wrong password or code, 422 without a code when two-factor is on, 429 beyond
    /// [`DELETE_RULE`] or the two-factor throttle.
    pub async fn request(
        &self,
        user: UserId,
        password: &str,
        code: Option<&str>,
        meta: &ClientMeta,
    ) -> Result<(PendingDeletion, Vec<uuid::Uuid>), AppError> {
        let auth = &self.mfa.auth;
        let key = format!("delete:acct:{user}#account_deletion");
        let d = auth
            .limiter
            .check(&key, DELETE_RULE, RateOp::Acquire)
            .await?;
        if !d.allowed {
            return Err(AppError::RateLimited {
                retry_after_secs: d.retry_after_secs(),
            });
        }
        let account = auth
            .users
            .find_by_id(user)
            .await?
            .ok_or(AppError::Unauthorized)?;
        if !passwords::verify(password.as_bytes(), &account.password_hash) {
            tracing::info!(user_id = %user, "account deletion with a wrong password");
            return Err(AppError::Unauthorized);
        }
        if auth
            .limiter
            .check(&key, DELETE_RULE, RateOp::Refund)
            .await
            .is_err()
        {
            tracing::warn!("a deletion throttle unit could not be given back");
        }
        if self.mfa.mfa.get(user).await?.is_some_and(|r| r.enabled) {
            let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
                return Err(AppError::Validation(vec![FieldError::new(
                    "code",
                    "required: two-factor authentication is on",
                )]));
            };
            let factor = if code.len() == super::totp::DIGITS as usize {
                SecondFactor::Totp(code.to_owned())
            } else {
                SecondFactor::Recovery(code.to_owned())
            };
            if !self.mfa.verify_factor(user, &factor).await? {
                tracing::info!(user_id = %user, "account deletion with a wrong second factor");
                return Err(AppError::Unauthorized);
            }
        }
        let now = auth.clock.now_ms();
        record_event(
            auth.events,
            user,
            SecurityEventKind::DeletionRequested,
            meta,
            now,
        )
        .await;
        let anon = crate::ports::new_uuid(auth.rng);
        let pending = self.store.request(user, anon, now).await?;
        let revoked = auth.refresh_tokens.revoke_all(user, None, now).await?;
        tracing::info!(user_id = %user, sessions = revoked.len(), "account deletion requested");
        Ok((pending, revoked))
    }
}

/// The erasure over its ports.
pub struct Eraser<'a> {
    /// D1.
    pub store: &'a dyn DeletionStore,
    /// Stripe.
    pub payments: &'a dyn Payments,
    /// The records bucket.
    pub records: &'a dyn PrefixedBlobs,
    /// The backups bucket.
    pub backups: &'a dyn PrefixedBlobs,
    /// The backups bucket's multipart uploads.
    pub uploads: &'a dyn MultipartBlobs,
    /// The users' homes.
    pub homes: &'a dyn Homes,
    /// The vector index when it is not the home (Vectorize).
    pub index: Option<&'a dyn VectorIndex>,
    /// The homes of the members of a team the account owned.
    pub accounts: &'a dyn AccountRefresh,
}

impl Eraser<'_> {
    /// Works on `d` for at most `units` units; whether it finished.
    ///
    /// # Errors
    /// A step failed (what was recorded stays; the cron resumes from there).
    pub async fn run(&self, d: PendingDeletion, units: u32, now: i64) -> Result<bool, AppError> {
        let mut step = d.step;
        let mut left = units;
        loop {
            if left == 0 {
                return Ok(false);
            }
            left -= 1;
            let done = match step {
                Step::Stripe => self.stripe(d.user).await?,
                Step::Blobs => self.blobs(d.user).await?,
                Step::Home => self.home(d.user).await?,
                Step::D1 => {
                    let released = self.store.erase(d.user, d.anon, now).await?;
                    tracing::info!(user_id = %d.user, team_members = released.len(), "account deleted");
                    for member in released {
                        self.accounts.refresh(member).await;
                    }
                    return Ok(true);
                }
            };
            if done {
                if let Some(next) = step.next() {
                    self.store.advance(d.user, next, now).await?;
                    step = next;
                }
            }
        }
    }

    /// Cancels every live subscription; always done in one unit.
    async fn stripe(&self, user: UserId) -> Result<bool, AppError> {
        for sub in self.store.live_subscriptions(user).await? {
            self.payments
                .cancel_subscription_now(&sub, &format!("account-deletion:{sub}"))
                .await
                .map_err(|e| e.into_app_error(Upstream::Payments))?;
            tracing::info!(user_id = %user, "subscription cancelled for an account deletion");
        }
        Ok(true)
    }

    /// Deletes one page of the user's objects; done when none is left.
    async fn blobs(&self, user: UserId) -> Result<bool, AppError> {
        let prefix = format!("{user}/");
        for bucket in [self.records, self.backups] {
            let keys = bucket.keys_under(&prefix, BLOB_PAGE).await?;
            if keys.is_empty() {
                continue;
            }
            for key in &keys {
                bucket.delete_key(key).await?;
            }
            tracing::info!(user_id = %user, objects = keys.len(), "objects of a deleted account removed");
            return Ok(false);
        }
        Ok(true)
    }

    /// Aborts the home's uploads, deletes its vectors from the index, wipes it.
    async fn home(&self, user: UserId) -> Result<bool, AppError> {
        let home = self.homes.home(user)?;
        let list = crate::home::call(&*home, &ErasureInventory {}).await?;
        for upload in &list.uploads {
            if let Some(r2) = &upload.r2_upload_id {
                // An upload R2 no longer knows is fine: the goal is that it is gone.
                if let Err(e) = self.uploads.abort(&upload.key, r2).await {
                    tracing::info!(user_id = %user, error = %e, "abort of a deleted account's upload failed");
                }
            }
            // Should it have been assembled meanwhile.
            self.backups.delete_key(&upload.key).await?;
        }
        if let (Some(index), false) = (self.index, list.vector_ids.is_empty()) {
            for ids in list.vector_ids.chunks(100) {
                index.delete(user, ids).await?;
            }
        }
        crate::home::call(&*home, &Wipe {}).await?;
        tracing::info!(user_id = %user, uploads = list.uploads.len(), vectors = list.vector_ids.len(), "home of a deleted account wiped");
        Ok(true)
    }

    /// The cron's share: up to [`CRON_DELETIONS`] pending deletions, [`CRON_UNITS`] each;
    /// returns how many finished.
    ///
    /// # Errors
    /// D1 cannot list them (a failing deletion is logged and the next one runs).
    pub async fn finish_pending(&self, now: i64) -> Result<u32, AppError> {
        let mut finished = 0;
        for d in self.store.due(CRON_DELETIONS).await? {
            match self.run(d, CRON_UNITS, now).await {
                Ok(true) => finished += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(user_id = %d.user, error = ?e, "account deletion step failed; the next run resumes");
                }
            }
        }
        Ok(finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_trip_and_run_in_order() {
        let mut s = Some(Step::Stripe);
        let mut seen = Vec::new();
        while let Some(step) = s {
            assert_eq!(Step::parse(step.as_str()), Some(step));
            seen.push(step.as_str());
            s = step.next();
        }
        assert_eq!(seen, ["stripe", "blobs", "home", "d1"]);
        assert_eq!(Step::parse("done"), None);
    }
}
