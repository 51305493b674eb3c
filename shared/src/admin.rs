//! Operating the service: the admin endpoints (`/api/v1/admin/*`) behind the console.
//!
//! **Who is an admin.** An account whose role is `admin` (set when an `ADMIN_EMAILS` address is
//! verified), whose address is verified, that is still listed in `ADMIN_EMAILS` now and is not
//! suspended — read from D1 on every admin request, so dropping an address from
//! `ADMIN_EMAILS` or suspending an admin takes effect on their next request. Anyone else gets
//! 403 `forbidden`. (The pipeline's admission at the caller's home runs first: a suspended
//! admin's token is already 403 `account_suspended` there.)
//!
//! **Rules.** An admin cannot suspend themselves (409). Suspending an account sets
//! `users.suspended_at` (a second suspension keeps the first time); the worker then pushes the
//! account to the user's home, which refuses every call with 403 `account_suspended` and closes
//! the user's sockets (4003). A comp grants `pro`, `power` or `team` until a time in the future
//! and at most [`MAX_COMP_DAYS`] days away; it replaces any earlier comp; the tier in force is
//! the higher of the comp and the paid tier while the comp lasts (see
//! [`crate::domain::tier_in_force`]).
//!
//! **Audit.** Every change (suspend, unsuspend, comp) is written in the same D1 transaction as
//! its audit entry; lookups and plugin reviews are recorded after they succeed. Reading the
//! queue, the payouts or the audit log itself is not an action and is not recorded.

use serde_json::json;

use crate::api::{
    AdminPayout, AdminPayouts, AdminUser, AdminUsers, AuditEntry, AuditLog, CompInfo, CompRequest,
    PayoutMonth,
};
use crate::domain::{tier_in_force, Comp, Email, Role, Tier, UserId};
use crate::error::{AppError, FieldError};
use crate::ports::{
    new_uuid, AdminAction, AdminStore, AdminUserRow, AuditRecord, Clock, PayoutRecord, Random,
};

/// The longest comp, in days from now.
pub const MAX_COMP_DAYS: i64 = 366;
/// Entries `GET /admin/audit` answers (newest first).
pub const AUDIT_PAGE: u32 = 200;
/// Months `GET /admin/payouts` answers (newest first).
pub const PAYOUT_MONTHS: u32 = 24;

const DAY_MS: i64 = 86_400_000;

/// The admin endpoints over their ports.
pub struct AdminService<'a> {
    /// Accounts, the audit log and payouts.
    pub store: &'a dyn AdminStore,
    /// Time.
    pub clock: &'a dyn Clock,
    /// Randomness (entry ids).
    pub rng: &'a dyn Random,
    /// `ADMIN_EMAILS`, normalised.
    pub admin_emails: &'a [String],
}

/// Parses a comp request at `now`: a known paid tier, an end in the future and at most
/// [`MAX_COMP_DAYS`] days away. Every problem is reported at once.
///
/// # Errors
/// 422 naming `tier` and/or `until`.
pub fn parse_comp(req: &CompRequest, now: i64) -> Result<Comp, AppError> {
    let mut errors = Vec::new();
    let tier = Tier::parse(&req.tier).filter(|t| *t != Tier::Free);
    if tier.is_none() {
        errors.push(FieldError::new("tier", "must be pro, power or team"));
    }
    if req.until <= now {
        errors.push(FieldError::new("until", "must be in the future"));
    } else if req.until > now + MAX_COMP_DAYS * DAY_MS {
        errors.push(FieldError::new(
            "until",
            format!("must be at most {MAX_COMP_DAYS} days from now"),
        ));
    }
    match tier {
        Some(tier) if errors.is_empty() => Ok(Comp {
            tier,
            until: req.until,
        }),
        _ => Err(AppError::Validation(errors)),
    }
}

/// A user id from a path segment (404 for anything that is not one: no such account).
///
/// # Errors
/// 404.
pub fn user_id(raw: &str) -> Result<UserId, AppError> {
    UserId::parse(raw).ok_or(AppError::NotFound)
}

fn view(row: AdminUserRow, now: i64) -> AdminUser {
    let u = row.user;
    AdminUser {
        id: u.id.to_string(),
        email: u.email.as_str().to_owned(),
        role: u.role.as_str().to_owned(),
        email_verified: u.email_verified_at.is_some(),
        tier: tier_in_force(u.tier, u.tier_until, row.comp, row.team, now),
        paid_tier: u.tier,
        paid_tier_until: u.tier_until,
        comp: row.comp.map(|c| CompInfo {
            tier: c.tier,
            until: c.until,
        }),
        seats: row.seats,
        created_at: u.created_at,
        last_seen_at: row.last_seen_at,
        sessions: row.sessions,
        suspended_at: u.suspended_at,
    }
}

impl AdminService<'_> {
    fn entry(
        &self,
        admin: UserId,
        action: AdminAction,
        target: Option<String>,
        detail: Option<serde_json::Value>,
    ) -> AuditRecord {
        AuditRecord {
            id: new_uuid(self.rng),
            admin,
            action: action.as_str().to_owned(),
            target,
            detail,
            at: self.clock.now_ms(),
        }
    }

    /// Whether `caller` is an admin now (see the module's rule).
    ///
    /// # Errors
    /// 403 `forbidden` otherwise; 401 when the account is gone.
    pub async fn authorize(&self, caller: UserId) -> Result<(), AppError> {
        let now = self.clock.now_ms();
        let Some(row) = self.store.user_by_id(caller, now).await? else {
            return Err(AppError::Unauthorized);
        };
        let u = &row.user;
        if u.suspended_at.is_some() {
            return Err(AppError::AccountSuspended);
        }
        let listed = self.admin_emails.iter().any(|a| a == u.email.as_str());
        if u.role == Role::Admin && u.email_verified_at.is_some() && listed {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "the admin endpoints are for admins only",
            ))
        }
    }

    /// `GET /admin/users?email=`: the account with that address (recorded).
    ///
    /// # Errors
    /// 403 for non-admins; 422 for a missing or malformed address.
    pub async fn lookup(&self, admin: UserId, email: Option<&str>) -> Result<AdminUsers, AppError> {
        self.authorize(admin).await?;
        let email = email
            .and_then(|e| Email::parse(e).ok())
            .ok_or_else(|| AppError::field("email", "must be an email address"))?;
        let now = self.clock.now_ms();
        let found = self.store.user_by_email(&email, now).await?;
        let target = found.as_ref().map(|r| r.user.id.to_string());
        let detail = json!({"found": found.is_some()});
        self.store
            .record(&self.entry(admin, AdminAction::UserLookup, target, Some(detail)))
            .await?;
        Ok(AdminUsers {
            users: found.into_iter().map(|r| view(r, now)).collect(),
        })
    }

    async fn target(&self, id: UserId) -> Result<AdminUserRow, AppError> {
        self.store
            .user_by_id(id, self.clock.now_ms())
            .await?
            .ok_or(AppError::NotFound)
    }

    /// `POST /admin/users/{id}/suspend` (`suspend: true`) or `…/unsuspend`: the account as it
    /// is now. The caller pushes the account to the user's home afterwards.
    ///
    /// # Errors
    /// 403 for non-admins; 404 for an unknown account; 409 for one's own account.
    pub async fn set_suspended(
        &self,
        admin: UserId,
        target: UserId,
        suspend: bool,
    ) -> Result<AdminUser, AppError> {
        self.authorize(admin).await?;
        if suspend && target == admin {
            return Err(AppError::Conflict("admins cannot suspend themselves"));
        }
        self.target(target).await?;
        let (action, at) = if suspend {
            (AdminAction::Suspend, Some(self.clock.now_ms()))
        } else {
            (AdminAction::Unsuspend, None)
        };
        let entry = self.entry(admin, action, Some(target.to_string()), None);
        self.store.set_suspended(target, at, &entry).await?;
        tracing::info!(admin_id = %admin, user_id = %target, action = action.as_str(), "admin action");
        Ok(view(self.target(target).await?, self.clock.now_ms()))
    }

    /// `POST /admin/users/{id}/comp`: grants a tier until a time (see [`parse_comp`]).
    ///
    /// # Errors
    /// 403 for non-admins; 404 for an unknown account; 422 for a bad tier or end.
    pub async fn comp(
        &self,
        admin: UserId,
        target: UserId,
        req: &CompRequest,
    ) -> Result<AdminUser, AppError> {
        self.authorize(admin).await?;
        let comp = parse_comp(req, self.clock.now_ms())?;
        self.target(target).await?;
        let detail = json!({"tier": comp.tier.as_str(), "until": comp.until});
        let entry = self.entry(
            admin,
            AdminAction::Comp,
            Some(target.to_string()),
            Some(detail),
        );
        self.store.set_comp(target, comp, &entry).await?;
        tracing::info!(admin_id = %admin, user_id = %target, tier = comp.tier.as_str(), "admin action");
        Ok(view(self.target(target).await?, self.clock.now_ms()))
    }

    /// Records a plugin review an admin made (`decision` and the version; never the notes'
    /// text, which the review row keeps).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn record_review(
        &self,
        admin: UserId,
        plugin: uuid::Uuid,
        decision: &str,
        version: &str,
    ) -> Result<(), AppError> {
        let detail = json!({"decision": decision, "version": version});
        let entry = self.entry(
            admin,
            AdminAction::PluginReview,
            Some(plugin.hyphenated().to_string()),
            Some(detail),
        );
        Ok(self.store.record(&entry).await?)
    }

    /// `GET /admin/audit`: the newest [`AUDIT_PAGE`] entries.
    ///
    /// # Errors
    /// 403 for non-admins.
    pub async fn audit(&self, admin: UserId) -> Result<AuditLog, AppError> {
        self.authorize(admin).await?;
        let entries = self.store.audit(AUDIT_PAGE).await?;
        Ok(AuditLog {
            entries: entries
                .into_iter()
                .map(|e| AuditEntry {
                    id: e.id.hyphenated().to_string(),
                    admin_id: e.admin.to_string(),
                    action: e.action,
                    target: e.target,
                    detail: e.detail,
                    at: e.at,
                })
                .collect(),
        })
    }

    /// `GET /admin/payouts`: payouts per month, newest first.
    ///
    /// # Errors
    /// 403 for non-admins.
    pub async fn payouts(&self, admin: UserId) -> Result<AdminPayouts, AppError> {
        self.authorize(admin).await?;
        let rows = self.store.payouts(PAYOUT_MONTHS).await?;
        Ok(AdminPayouts {
            months: group_payouts(rows),
        })
    }
}

/// Groups payout rows by month, newest month first (rows keep their order within a month).
pub fn group_payouts(mut rows: Vec<PayoutRecord>) -> Vec<PayoutMonth> {
    rows.sort_by(|a, b| b.period.cmp(&a.period));
    let mut months: Vec<PayoutMonth> = Vec::new();
    for r in rows {
        let payout = AdminPayout {
            developer_id: r.developer.to_string(),
            amount_cents: r.amount_cents,
            status: r.status.clone(),
            created_at: r.created_at,
            paid_at: r.paid_at,
        };
        let paid = if r.status == "paid" {
            r.amount_cents
        } else {
            0
        };
        match months.last_mut().filter(|m| m.period == r.period) {
            Some(m) => {
                m.total_cents += r.amount_cents;
                m.paid_cents += paid;
                if r.status != "paid" {
                    "pending".clone_into(&mut m.status);
                }
                m.payouts.push(payout);
            }
            None => months.push(PayoutMonth {
                period: r.period,
                status: if r.status == "paid" {
                    "paid"
                } else {
                    "pending"
                }
                .to_owned(),
                total_cents: r.amount_cents,
                paid_cents: paid,
                payouts: vec![payout],
            }),
        }
    }
    months
}

#[cfg(test)]
mod tests;
