//! What the admin endpoints read and change in D1: accounts (suspension, comp), the audit log
//! (`admin_audit`, migration 0012) and payouts.

use async_trait::async_trait;
use serde::Deserialize;
use shared::domain::{Comp, Email, Tier, UserId};
use shared::ports::{AdminStore, AdminUserRow, AuditRecord, PayoutRecord, StoreError};
use wasm_bindgen::JsValue;

use super::super::unavailable;
use super::accounts::UserRow;
use super::{int, opt_text, stmt, text, Db};

/// The admin port over D1.
pub struct D1AdminStore(pub Db);

/// One account with its admin view (`{TEAM_GRANT}`: the team grant's columns). The password
/// hash is never read (`''`).
const ADMIN_USER_SELECT: &str = "SELECT {TEAM_GRANT}, u.id, u.email, '' AS password_hash, u.tier, \
       u.tier_until, u.role, u.email_verified_at, u.created_at, u.updated_at, u.suspended_at, \
       u.comp_tier, u.comp_until, \
       COALESCE((SELECT s.seats FROM subscriptions s WHERE s.user_id = u.id AND s.tier = 'team' \
         AND s.status IN ('active', 'trialing', 'past_due') \
         ORDER BY s.last_event_created DESC LIMIT 1), 1) AS seats, \
       (SELECT MAX(COALESCE(f.last_used_at, f.created_at)) FROM refresh_families f \
         WHERE f.user_id = u.id) AS last_seen_at, \
       (SELECT COUNT(*) FROM refresh_families f WHERE f.user_id = u.id \
         AND f.revoked_at IS NULL AND EXISTS (SELECT 1 FROM refresh_tokens t \
           WHERE t.family_id = f.id AND t.expires_at > ?2)) AS sessions \
     FROM users u";

#[derive(Deserialize)]
struct AdminRow {
    id: String,
    email: String,
    password_hash: String,
    tier: String,
    tier_until: Option<f64>,
    role: String,
    email_verified_at: Option<f64>,
    created_at: f64,
    updated_at: f64,
    suspended_at: Option<f64>,
    comp_tier: Option<String>,
    comp_until: Option<f64>,
    seats: f64,
    team_tier: Option<String>,
    team_status: Option<String>,
    team_period_end: Option<f64>,
    last_seen_at: Option<f64>,
    sessions: f64,
}

impl AdminRow {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn into_row(self) -> Result<AdminUserRow, StoreError> {
        let comp = match (self.comp_tier.as_deref().map(Tier::parse), self.comp_until) {
            (Some(Some(tier)), Some(until)) => Some(Comp {
                tier,
                until: until as i64,
            }),
            (Some(None), _) => {
                return Err(StoreError::Unavailable("corrupt users.comp_tier".into()))
            }
            _ => None,
        };
        let team = super::teams::team_grant(
            self.team_tier.as_deref(),
            self.team_status.as_deref(),
            self.team_period_end,
        )?;
        let user = UserRow {
            id: self.id,
            email: self.email,
            password_hash: self.password_hash,
            tier: self.tier,
            tier_until: self.tier_until,
            role: self.role,
            email_verified_at: self.email_verified_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            suspended_at: self.suspended_at,
        }
        .into_user()?;
        Ok(AdminUserRow {
            user,
            comp,
            seats: self.seats.clamp(1.0, f64::from(u32::MAX)) as u32,
            team,
            last_seen_at: self.last_seen_at.map(|v| v as i64),
            sessions: self.sessions.clamp(0.0, f64::from(u32::MAX)) as u32,
        })
    }
}

impl D1AdminStore {
    async fn one(
        &self,
        column: &str,
        value: &str,
        now_ms: i64,
    ) -> Result<Option<AdminUserRow>, StoreError> {
        let select = ADMIN_USER_SELECT.replace("{TEAM_GRANT}", super::teams::TEAM_GRANT_COLUMNS);
        let sql = format!("{select} WHERE u.{column} = ?1");
        stmt(&self.0, &sql, &[text(value), int(now_ms)])?
            .first::<AdminRow>(None)
            .await
            .map_err(|e| unavailable("reading account (admin)", &e))?
            .map(AdminRow::into_row)
            .transpose()
    }

    fn insert_entry(&self, e: &AuditRecord) -> Result<worker::D1PreparedStatement, StoreError> {
        stmt(
            &self.0,
            "INSERT INTO admin_audit (id, admin_id, action, target, detail, at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[
                text(e.id.hyphenated().to_string()),
                text(e.admin.to_string()),
                text(&e.action),
                opt_text(e.target.as_deref()),
                opt_text(e.detail.as_ref().map(ToString::to_string)),
                int(e.at),
            ],
        )
    }

    async fn change_and_record(
        &self,
        change: worker::D1PreparedStatement,
        entry: &AuditRecord,
        what: &str,
    ) -> Result<(), StoreError> {
        let record = self.insert_entry(entry)?;
        self.0
            .batch(vec![change, record])
            .await
            .map_err(|e| unavailable(what, &e))?;
        Ok(())
    }
}

#[async_trait(?Send)]
impl AdminStore for D1AdminStore {
    async fn user_by_email(
        &self,
        email: &Email,
        now_ms: i64,
    ) -> Result<Option<AdminUserRow>, StoreError> {
        self.one("email", email.as_str(), now_ms).await
    }

    async fn user_by_id(
        &self,
        id: UserId,
        now_ms: i64,
    ) -> Result<Option<AdminUserRow>, StoreError> {
        self.one("id", &id.to_string(), now_ms).await
    }

    async fn set_suspended(
        &self,
        id: UserId,
        at: Option<i64>,
        entry: &AuditRecord,
    ) -> Result<(), StoreError> {
        let change = match at {
            Some(at) => stmt(
                &self.0,
                "UPDATE users SET suspended_at = COALESCE(suspended_at, ?2), updated_at = ?2 \
                 WHERE id = ?1",
                &[text(id.to_string()), int(at)],
            )?,
            None => stmt(
                &self.0,
                "UPDATE users SET suspended_at = NULL, updated_at = ?2 WHERE id = ?1",
                &[text(id.to_string()), int(entry.at)],
            )?,
        };
        self.change_and_record(change, entry, "suspending account")
            .await
    }

    async fn set_comp(
        &self,
        id: UserId,
        comp: Comp,
        entry: &AuditRecord,
    ) -> Result<(), StoreError> {
        let change = stmt(
            &self.0,
            "UPDATE users SET comp_tier = ?2, comp_until = ?3, updated_at = ?4 WHERE id = ?1",
            &[
                text(id.to_string()),
                text(comp.tier.as_str()),
                int(comp.until),
                int(entry.at),
            ],
        )?;
        self.change_and_record(change, entry, "comping a tier")
            .await
    }

    async fn record(&self, entry: &AuditRecord) -> Result<(), StoreError> {
        self.insert_entry(entry)?
            .run()
            .await
            .map_err(|e| unavailable("recording an admin action", &e))?;
        Ok(())
    }

    async fn audit(&self, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            id: String,
            admin_id: String,
            action: String,
            target: Option<String>,
            detail: Option<String>,
            at: f64,
        }
        let rows = stmt(
            &self.0,
            "SELECT id, admin_id, action, target, detail, at FROM admin_audit \
             ORDER BY at DESC, id LIMIT ?1",
            &[JsValue::from(limit)],
        )?
        .all()
        .await
        .map_err(|e| unavailable("reading the audit log", &e))?
        .results::<Row>()
        .map_err(|e| unavailable("reading the audit log", &e))?;
        #[allow(clippy::cast_possible_truncation)]
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(AuditRecord {
                    id: uuid::Uuid::try_parse(&r.id).ok()?,
                    admin: UserId::parse(&r.admin_id)?,
                    action: r.action,
                    target: r.target,
                    detail: r.detail.and_then(|d| serde_json::from_str(&d).ok()),
                    at: r.at as i64,
                })
            })
            .collect())
    }

    async fn payouts(&self, months: u32) -> Result<Vec<PayoutRecord>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            developer_id: String,
            period: String,
            amount_cents: f64,
            status: String,
            created_at: f64,
            paid_at: Option<f64>,
        }
        let rows = stmt(
            &self.0,
            "SELECT developer_id, period, amount_cents, status, created_at, paid_at \
             FROM payouts WHERE period IN \
               (SELECT DISTINCT period FROM payouts ORDER BY period DESC LIMIT ?1) \
             ORDER BY period DESC, created_at, developer_id",
            &[JsValue::from(months)],
        )?
        .all()
        .await
        .map_err(|e| unavailable("reading payouts", &e))?
        .results::<Row>()
        .map_err(|e| unavailable("reading payouts", &e))?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(PayoutRecord {
                    developer: UserId::parse(&r.developer_id)?,
                    period: r.period,
                    amount_cents: r.amount_cents.max(0.0) as u64,
                    status: r.status,
                    created_at: r.created_at as i64,
                    paid_at: r.paid_at.map(|v| v as i64),
                })
            })
            .collect())
    }
}
