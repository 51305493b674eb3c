//! D1 side of the account export ([`shared::accounts::export`]): every row of one account, in
//! one batch (one round trip).

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use shared::accounts::export::{AccountRows, ExportStore};
use shared::api::{
    ExportEarnings, ExportInstall, ExportPlugin, ExportProfile, ExportPurchase, ExportRating,
    ExportSubscription,
};
use shared::domain::{Role, Tier, UserId};
use shared::ports::StoreError;
use worker::D1Result;

use super::{stmt, text, Db};
use crate::adapters::unavailable;

/// The export's reads.
pub struct D1ExportStore(pub Db);

#[derive(Deserialize)]
struct Profile {
    email: String,
    verified: f64,
    role: String,
    tier: String,
    tier_until: Option<f64>,
    stripe_account_id: Option<String>,
    created_at: f64,
    mfa: f64,
    comp_tier: Option<String>,
    comp_until: Option<f64>,
    suspended_at: Option<f64>,
}

#[derive(Deserialize)]
struct Sub {
    stripe_subscription_id: String,
    tier: String,
    status: String,
    seats: f64,
    current_period_end: Option<f64>,
    cancel_at_period_end: f64,
    created_at: f64,
}

#[derive(Deserialize)]
struct Plugin {
    id: String,
    name: Option<String>,
    status: String,
    created_at: f64,
}

#[derive(Deserialize)]
struct Install {
    plugin_id: String,
    installed_at: f64,
}

#[derive(Deserialize)]
struct Rating {
    plugin_id: String,
    stars: f64,
    updated_at: f64,
}

#[derive(Deserialize)]
struct Purchase {
    plugin_id: String,
    amount_cents: f64,
    currency: String,
    created_at: f64,
}

#[derive(Deserialize)]
struct Membership {
    team_id: String,
    role: String,
    joined_at: f64,
}

#[derive(Deserialize)]
struct Earning {
    period: String,
    sales: f64,
    share: f64,
    paid: f64,
}

fn rows<T: DeserializeOwned>(results: &[D1Result], i: usize) -> Result<Vec<T>, StoreError> {
    results
        .get(i)
        .ok_or_else(|| StoreError::Unavailable(format!("export read {i} missing")))?
        .results::<T>()
        .map_err(|e| unavailable("reading export rows", &e))
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn ms(v: f64) -> i64 {
    v as i64
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn count(v: f64) -> u64 {
    v.max(0.0) as u64
}

/// The account's row as exported.
fn profile(user: UserId, p: Profile) -> Result<ExportProfile, StoreError> {
    let corrupt = |what: &str| StoreError::Unavailable(format!("corrupt {what}"));
    Ok(ExportProfile {
        id: user.to_string(),
        email: p.email,
        email_verified: p.verified != 0.0,
        role: Role::parse(&p.role).ok_or_else(|| corrupt("users.role"))?,
        tier: Tier::parse(&p.tier).ok_or_else(|| corrupt("users.tier"))?,
        tier_until: p.tier_until.map(ms),
        two_factor_enabled: p.mfa != 0.0,
        payout_account: p.stripe_account_id,
        created_at: ms(p.created_at),
        comp_tier: match p.comp_tier {
            Some(t) => Some(Tier::parse(&t).ok_or_else(|| corrupt("users.comp_tier"))?),
            None => None,
        },
        comp_until: p.comp_until.map(ms),
        suspended_at: p.suspended_at.map(ms),
    })
}

fn membership(m: Membership) -> Result<shared::api::ExportTeam, StoreError> {
    Ok(shared::api::ExportTeam {
        role: shared::teams::TeamRole::parse(&m.role)
            .ok_or_else(|| StoreError::Unavailable("corrupt team_members.role".into()))?,
        team_id: m.team_id,
        joined_at: ms(m.joined_at),
    })
}

#[async_trait(?Send)]
impl ExportStore for D1ExportStore {
    // One batch of reads, each mapped to its section of the export.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::too_many_lines
    )]
    async fn account_rows(&self, user: UserId) -> Result<Option<AccountRows>, StoreError> {
        let u = || [text(user.to_string())];
        let reads = [
            "SELECT email, (email_verified_at IS NOT NULL) AS verified, role, tier, tier_until, \
               stripe_account_id, created_at, EXISTS (SELECT 1 FROM user_mfa m \
                 WHERE m.user_id = users.id AND m.enabled_at IS NOT NULL) AS mfa, \
               comp_tier, comp_until, suspended_at \
             FROM users WHERE id = ?1",
            "SELECT stripe_subscription_id, tier, status, seats, current_period_end, \
               cancel_at_period_end, created_at FROM subscriptions WHERE user_id = ?1 \
             ORDER BY created_at DESC",
            "SELECT id, name, status, created_at FROM plugins WHERE author_id = ?1 \
             ORDER BY created_at, id",
            "SELECT plugin_id, installed_at FROM plugin_installations WHERE user_id = ?1 \
             ORDER BY installed_at, plugin_id",
            "SELECT plugin_id, rating AS stars, updated_at FROM plugin_ratings WHERE user_id = ?1 \
             ORDER BY updated_at, plugin_id",
            "SELECT plugin_id, amount_cents, currency, created_at FROM revenue_events \
             WHERE user_id = ?1 ORDER BY created_at, plugin_id",
            "SELECT r.period AS period, COUNT(*) AS sales, SUM(r.developer_share_cents) AS share, \
               EXISTS (SELECT 1 FROM payouts p WHERE p.developer_id = ?1 \
                 AND p.period = r.period AND p.status = 'paid') AS paid \
             FROM revenue_events r WHERE r.developer_id = ?1 GROUP BY r.period \
             ORDER BY r.period",
            "SELECT team_id, role, joined_at FROM team_members WHERE user_id = ?1",
        ];
        let mut statements = Vec::with_capacity(reads.len());
        for sql in reads {
            statements.push(stmt(&self.0, sql, &u())?);
        }
        let results = self
            .0
            .batch(statements)
            .await
            .map_err(|e| unavailable("reading the account for its export", &e))?;
        let Some(p) = rows::<Profile>(&results, 0)?.into_iter().next() else {
            return Ok(None);
        };
        let corrupt = |what: &str| StoreError::Unavailable(format!("corrupt {what}"));
        let profile = profile(user, p)?;
        let subscriptions = rows::<Sub>(&results, 1)?
            .into_iter()
            .map(|s| {
                Ok(ExportSubscription {
                    stripe_subscription_id: s.stripe_subscription_id,
                    tier: Tier::parse(&s.tier).ok_or_else(|| corrupt("subscriptions.tier"))?,
                    status: s.status,
                    seats: count(s.seats) as u32,
                    current_period_end: s.current_period_end.map(ms),
                    cancel_at_period_end: s.cancel_at_period_end != 0.0,
                    created_at: ms(s.created_at),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Some(AccountRows {
            profile,
            subscriptions,
            plugins_authored: rows::<Plugin>(&results, 2)?
                .into_iter()
                .map(|p| ExportPlugin {
                    id: p.id,
                    name: p.name,
                    status: p.status,
                    created_at: ms(p.created_at),
                })
                .collect(),
            installs: rows::<Install>(&results, 3)?
                .into_iter()
                .map(|i| ExportInstall {
                    plugin_id: i.plugin_id,
                    installed_at: ms(i.installed_at),
                })
                .collect(),
            ratings: rows::<Rating>(&results, 4)?
                .into_iter()
                .map(|r| ExportRating {
                    plugin_id: r.plugin_id,
                    rating: count(r.stars) as u8,
                    updated_at: ms(r.updated_at),
                })
                .collect(),
            purchases: rows::<Purchase>(&results, 5)?
                .into_iter()
                .map(|p| ExportPurchase {
                    plugin_id: p.plugin_id,
                    amount_cents: count(p.amount_cents),
                    currency: p.currency,
                    created_at: ms(p.created_at),
                })
                .collect(),
            earnings: rows::<Earning>(&results, 6)?
                .into_iter()
                .map(|e| ExportEarnings {
                    period: e.period,
                    sales: count(e.sales) as u32,
                    developer_share_cents: count(e.share),
                    paid: e.paid != 0.0,
                })
                .collect(),
            team: rows::<Membership>(&results, 7)?
                .into_iter()
                .next()
                .map(membership)
                .transpose()?,
        }))
    }
}
