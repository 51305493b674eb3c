//! The marketplace's rows as D1 returns them, and their decoding.

use serde::Deserialize;
use shared::domain::UserId;
use shared::marketplace::{
    DuePayout, Payout, PayoutStatus, Period, PeriodEarnings, Plugin, PluginManifest, PluginStatus,
    PluginVersion, RatingTally, RevenueEvent, VersionStatus,
};
use shared::ports::StoreError;
use shared::storage::Checksum;

pub(super) fn corrupt(table: &str, what: &str) -> StoreError {
    StoreError::Unavailable(format!("corrupt {table} row: {what}"))
}

#[allow(clippy::cast_possible_truncation)]
pub(super) fn ms(v: f64) -> i64 {
    v as i64
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub(super) fn unsigned(v: f64) -> u64 {
    v.max(0.0) as u64
}

pub(super) fn parse_uuid(raw: &str, table: &str, what: &str) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::try_parse(raw).map_err(|_| corrupt(table, what))
}

pub(super) fn parse_user(raw: &str, table: &str, what: &str) -> Result<UserId, StoreError> {
    UserId::parse(raw).ok_or_else(|| corrupt(table, what))
}

pub(super) fn parse_period(raw: &str, table: &str) -> Result<Period, StoreError> {
    Period::parse(raw, "period").map_err(|_| corrupt(table, "period"))
}

pub(super) fn parse_manifest(raw: &str, table: &str) -> Result<PluginManifest, StoreError> {
    serde_json::from_str(raw).map_err(|e| corrupt(table, &format!("manifest: {e}")))
}

#[derive(Deserialize)]
pub(super) struct PluginRow {
    pub(super) id: String,
    pub(super) author_id: String,
    pub(super) status: String,
    pub(super) manifest: Option<String>,
    pub(super) install_count: f64,
    pub(super) rating_sum: f64,
    pub(super) rating_count: f64,
    pub(super) created_at: f64,
    pub(super) approved_at: Option<f64>,
}

impl PluginRow {
    pub(super) fn into_plugin(self) -> Result<Plugin, StoreError> {
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
pub(super) struct VersionRow {
    pub(super) id: String,
    pub(super) plugin_id: String,
    pub(super) manifest: String,
    pub(super) package_key: String,
    pub(super) package_checksum: String,
    pub(super) package_size: f64,
    pub(super) status: String,
    pub(super) submitted_at: f64,
    pub(super) decided_at: Option<f64>,
}

impl VersionRow {
    pub(super) fn into_version(self) -> Result<PluginVersion, StoreError> {
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
pub(super) struct PendingRow {
    pub(super) id: String,
    pub(super) plugin_id: String,
    pub(super) manifest: String,
    pub(super) package_key: String,
    pub(super) package_checksum: String,
    pub(super) package_size: f64,
    pub(super) status: String,
    pub(super) submitted_at: f64,
    pub(super) decided_at: Option<f64>,
    pub(super) p_author_id: String,
    pub(super) p_status: String,
    pub(super) p_manifest: Option<String>,
    pub(super) p_install_count: f64,
    pub(super) p_rating_sum: f64,
    pub(super) p_rating_count: f64,
    pub(super) p_created_at: f64,
    pub(super) p_approved_at: Option<f64>,
}

impl PendingRow {
    pub(super) fn split(self) -> Result<(Plugin, PluginVersion), StoreError> {
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
pub(super) struct RevenueRow {
    pub(super) id: String,
    pub(super) plugin_id: String,
    pub(super) user_id: String,
    pub(super) developer_id: String,
    pub(super) amount_cents: f64,
    pub(super) developer_share_cents: f64,
    pub(super) platform_share_cents: f64,
    pub(super) currency: String,
    pub(super) stripe_payment_id: String,
    pub(super) period: String,
    pub(super) created_at: f64,
}

impl RevenueRow {
    pub(super) fn into_event(self) -> Result<RevenueEvent, StoreError> {
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
pub(super) struct PayoutRow {
    pub(super) id: String,
    pub(super) developer_id: String,
    pub(super) period: String,
    pub(super) amount_cents: f64,
    pub(super) destination: String,
    pub(super) idempotency_key: String,
    pub(super) status: String,
    pub(super) transfer_id: Option<String>,
    pub(super) created_at: f64,
    pub(super) paid_at: Option<f64>,
}

impl PayoutRow {
    pub(super) fn into_payout(self) -> Result<Payout, StoreError> {
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
pub(super) struct EarningsRow {
    pub(super) period: String,
    pub(super) sales: f64,
    pub(super) gross_cents: f64,
    pub(super) developer_cents: f64,
    pub(super) platform_cents: f64,
    pub(super) payout_id: Option<String>,
    pub(super) payout_amount_cents: Option<f64>,
    pub(super) destination: Option<String>,
    pub(super) idempotency_key: Option<String>,
    pub(super) payout_status: Option<String>,
    pub(super) transfer_id: Option<String>,
    pub(super) payout_created_at: Option<f64>,
    pub(super) paid_at: Option<f64>,
}

impl EarningsRow {
    pub(super) fn into_earnings(self, developer: UserId) -> Result<PeriodEarnings, StoreError> {
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
pub(super) struct DueRow {
    pub(super) developer_id: String,
    pub(super) period: String,
    pub(super) amount_cents: f64,
    pub(super) destination: String,
}

impl DueRow {
    pub(super) fn into_due(self) -> Result<DuePayout, StoreError> {
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
pub(super) struct TallyRow {
    pub(super) rating_sum: f64,
    pub(super) rating_count: f64,
}

#[derive(Deserialize)]
pub(super) struct TotalRow {
    pub(super) total: f64,
}
