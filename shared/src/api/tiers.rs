//! `GET /tiers`.

use serde::{Deserialize, Serialize};

use crate::domain::Tier;
use crate::tiers::{features, price_cents, rate_limit, Features};

/// The tier matrix with prices, for the app's upgrade screens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TiersResponse {
    /// Every tier, cheapest first.
    pub tiers: Vec<TierOffer>,
}

/// One tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TierOffer {
    /// The tier.
    pub tier: Tier,
    /// Monthly price in cents (per seat when `per_seat`).
    pub price_cents: u32,
    /// ISO currency.
    pub currency: String,
    /// Whether the price is per seat.
    pub per_seat: bool,
    /// API requests per minute (per seat when `per_seat`).
    pub requests_per_minute: u32,
    /// What it includes (`-1` = unlimited).
    pub features: Features,
}

impl TiersResponse {
    /// The matrix.
    pub fn current() -> Self {
        Self {
            tiers: Tier::ALL
                .into_iter()
                .map(|tier| TierOffer {
                    tier,
                    price_cents: price_cents(tier),
                    currency: "eur".to_owned(),
                    per_seat: tier == Tier::Team,
                    requests_per_minute: rate_limit(tier, 1),
                    features: features(tier),
                })
                .collect(),
        }
    }
}
