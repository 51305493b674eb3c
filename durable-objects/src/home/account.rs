//! The home's copy of the account, who may call, and revoked sessions.
//!
//! D1 holds the account and its billing state; the home keeps a copy so that no request needs
//! D1. Every billing change pushes the new state ([`SetAccount`](shared::home::ops::SetAccount));
//! in case a push is lost, the object reloads from D1 when its copy is older than
//! [`ACCOUNT_MAX_AGE_MS`] (before answering), and refreshes it in the background from
//! [`ACCOUNT_REFRESH_AHEAD_MS`] on, so an active user never waits for D1.

use shared::api::UserProfile;
use shared::domain::{Comp, Role, TeamGrant, Tier};
use shared::home::ops::{AccountState, Revoked};
use shared::home::HomePrincipal;
use shared::AppError;

use super::memo::{AccountCopy, Known};
use super::sql::{Sql, SqlError};
use super::{store, Caller, Home};

/// The oldest copy of the account a home answers from (ms): a lost push is corrected within it.
pub const ACCOUNT_MAX_AGE_MS: i64 = 60_000;
/// From this age on the object refreshes its copy after answering (ms).
pub const ACCOUNT_REFRESH_AHEAD_MS: i64 = 45_000;

/// How current the home's copy of the account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// No copy, or one too old to answer from: load it from D1 first.
    Stale,
    /// Good to answer from; refresh it after answering.
    Ageing,
    /// Good.
    Fresh,
}

impl<S: Sql> Home<'_, S> {
    /// How current the copy of the account is at `now`.
    ///
    /// # Errors
    /// Storage failures.
    pub fn freshness(&self, now: i64) -> Result<Freshness, SqlError> {
        let checked = self.stored()?.map(|a| a.checked_at);
        Ok(match checked {
            None => Freshness::Stale,
            Some(at) if now - at >= ACCOUNT_MAX_AGE_MS => Freshness::Stale,
            Some(at) if now - at >= ACCOUNT_REFRESH_AHEAD_MS => Freshness::Ageing,
            Some(_) => Freshness::Fresh,
        })
    }

    /// Replaces the copy of the account (`None`: the account no longer exists).
    ///
    /// # Errors
    /// Storage failures.
    pub fn set_account(&self, account: Option<&AccountState>, now: i64) -> Result<(), SqlError> {
        let gone = account.is_none();
        let fallback = AccountState {
            email: String::new(),
            role: Role::User,
            tier: Tier::Free,
            tier_until: None,
            seats: 1,
            email_verified: false,
            suspended: false,
            comp: None,
            team: None,
        };
        let a = account.unwrap_or(&fallback);
        let was_suspended = self.stored()?.is_some_and(|c| c.account.suspended);
        self.sql.exec(
            "INSERT INTO account_admin (id, suspended, comp_tier, comp_until) VALUES (1, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET suspended = excluded.suspended, \
               comp_tier = excluded.comp_tier, comp_until = excluded.comp_until",
            &[
                i64::from(a.suspended).into(),
                a.comp.map(|c| c.tier.as_str()).into(),
                a.comp.map(|c| c.until).into(),
            ],
        )?;
        if a.suspended && !was_suspended {
            self.effects.borrow_mut().suspended = true;
        }
        self.sql.exec(
            "INSERT INTO account_verified (id, verified) VALUES (1, ?) \
             ON CONFLICT (id) DO UPDATE SET verified = excluded.verified",
            &[i64::from(a.email_verified).into()],
        )?;
        let team = a.team;
        self.sql.exec(
            "INSERT INTO account_team (id, tier, until) VALUES (1, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET tier = excluded.tier, until = excluded.until",
            &[
                team.map(|t| t.tier.as_str()).into(),
                team.and_then(|t| t.until).into(),
            ],
        )?;
        self.sql.exec(
            "INSERT INTO account (id, email, role, tier, tier_until, seats, gone, checked_at) \
             VALUES (1, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET email = excluded.email, role = excluded.role, \
               tier = excluded.tier, tier_until = excluded.tier_until, seats = excluded.seats, \
               gone = excluded.gone, checked_at = excluded.checked_at",
            &[
                a.email.as_str().into(),
                a.role.as_str().into(),
                a.tier.as_str().into(),
                a.tier_until.into(),
                a.seats.into(),
                i64::from(gone).into(),
                now.into(),
            ],
        )?;
        *self.memo.account.borrow_mut() = Known::Read(Some(AccountCopy {
            account: a.clone(),
            gone,
            checked_at: now,
        }));
        Ok(())
    }

    /// The copy of the account (from memory once read in this life).
    fn stored(&self) -> Result<Option<AccountCopy>, SqlError> {
        if let Known::Read(known) = &*self.memo.account.borrow() {
            return Ok(known.clone());
        }
        let row = self.sql.one(
            "SELECT email, role, tier, tier_until, seats, gone, checked_at, \
               COALESCE((SELECT verified FROM account_verified WHERE id = 1), 0), \
               COALESCE((SELECT suspended FROM account_admin WHERE id = 1), 0), \
               (SELECT comp_tier FROM account_admin WHERE id = 1), \
               (SELECT comp_until FROM account_admin WHERE id = 1), \
               (SELECT tier FROM account_team WHERE id = 1), \
               (SELECT until FROM account_team WHERE id = 1) \
             FROM account WHERE id = 1",
            &[],
        )?;
        let copy = row.map(|r| AccountCopy {
            account: AccountState {
                email: r.text(0),
                role: Role::parse(&r.text(1)).unwrap_or(Role::User),
                tier: Tier::parse(&r.text(2)).unwrap_or(Tier::Free),
                tier_until: r.opt_int(3),
                seats: u32::try_from(r.int(4)).unwrap_or(1).max(1),
                email_verified: r.int(7) != 0,
                suspended: r.int(8) != 0,
                comp: r
                    .opt_text(9)
                    .and_then(|t| Tier::parse(&t))
                    .zip(r.opt_int(10))
                    .map(|(tier, until)| Comp { tier, until }),
                team: r
                    .opt_text(11)
                    .and_then(|t| Tier::parse(&t))
                    .map(|tier| TeamGrant {
                        tier,
                        until: r.opt_int(12),
                    }),
            },
            gone: r.int(5) != 0,
            checked_at: r.int(6),
        });
        *self.memo.account.borrow_mut() = Known::Read(copy.clone());
        Ok(copy)
    }

    /// Whether session `sid` was revoked (the set is read once per life and kept in step).
    fn is_revoked(&self, sid: uuid::Uuid) -> Result<bool, SqlError> {
        if let Some(set) = self.memo.revoked.borrow().as_ref() {
            return Ok(set.contains(&sid));
        }
        let set: std::collections::HashSet<uuid::Uuid> = self
            .sql
            .exec("SELECT sid FROM revoked", &[])?
            .iter()
            .filter_map(|r| uuid::Uuid::try_parse(&r.text(0)).ok())
            .collect();
        let revoked = set.contains(&sid);
        *self.memo.revoked.borrow_mut() = Some(set);
        Ok(revoked)
    }

    /// The caller, if they may call: the account exists and the session is not revoked.
    pub(super) fn authorize(
        &self,
        now: i64,
        sid: Option<uuid::Uuid>,
    ) -> Result<HomePrincipal, AppError> {
        let Some(stored) = self.stored().map_err(store)?.filter(|s| !s.gone) else {
            return Err(AppError::Unauthorized);
        };
        if let Some(sid) = sid {
            if self.is_revoked(sid).map_err(store)? {
                return Err(AppError::Unauthorized);
            }
        }
        let a = stored.account;
        if a.suspended {
            return Err(AppError::AccountSuspended);
        }
        let tier = a.tier_in_force(now);
        Ok(HomePrincipal {
            user_id: self.user,
            tier,
            seats: if tier == Tier::Team { a.seats } else { 1 },
            role: a.role,
        })
    }

    /// Remembers `sids` as revoked for as long as their access tokens may live, and has their
    /// sockets closed.
    pub(super) fn revoke(&self, sids: &[uuid::Uuid], now: i64) -> Result<Revoked, AppError> {
        for sid in sids {
            self.sql
                .exec(
                    "INSERT INTO revoked (sid, until) VALUES (?, ?) \
                     ON CONFLICT (sid) DO UPDATE SET until = excluded.until",
                    &[
                        sid.to_string().into(),
                        (now + self.cfg.access_ttl_ms).into(),
                    ],
                )
                .map_err(store)?;
            if let Some(set) = self.memo.revoked.borrow_mut().as_mut() {
                set.insert(*sid);
            }
        }
        self.effects
            .borrow_mut()
            .close_sessions
            .extend(sids.iter().copied());
        Ok(Revoked {
            revoked: u32::try_from(sids.len()).unwrap_or(u32::MAX),
        })
    }

    pub(super) fn profile(&self, c: &Caller) -> Result<UserProfile, AppError> {
        let stored = self
            .stored()
            .map_err(store)?
            .ok_or(AppError::Unauthorized)?;
        Ok(UserProfile {
            id: self.user.to_string(),
            email: stored.account.email,
            tier: c.principal.tier,
            email_verified: stored.account.email_verified,
        })
    }
}
