//! Billing bodies.

use serde::{Deserialize, Serialize};

use crate::billing::PaidTier;
use crate::domain::Tier;

/// `POST /billing/checkout`: the tier to buy; only team takes `seats` (1–1000, default 1).
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "tier", rename_all = "lowercase", deny_unknown_fields)]
pub enum CheckoutBody {
    /// Pro.
    Pro {},
    /// Power.
    Power {},
    /// Team, per seat.
    Team {
        /// Seats (1–1000; default 1).
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
        #[serde(default, deserialize_with = "crate::input::opt_integral_u32")]
        seats: Option<u32>,
    },
}

impl CheckoutBody {
    /// The tier and the seats asked for.
    pub fn into_parts(self) -> (PaidTier, Option<u32>) {
        match self {
            CheckoutBody::Pro {} => (PaidTier::PRO, None),
            CheckoutBody::Power {} => (PaidTier::POWER, None),
            CheckoutBody::Team { seats } => (PaidTier::TEAM, seats),
        }
    }
}

/// The Checkout page to send the user to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckoutResponse {
    /// Stripe Checkout URL.
    pub checkout_url: String,
}

/// `POST /billing/portal`: Stripe's billing portal for the caller (short-lived).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PortalResponse {
    /// The portal session's URL: open it in the browser.
    pub url: String,
}

/// `GET /billing/subscription`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubscriptionInfo {
    /// The tier in force now.
    pub tier: Tier,
    /// Stripe's status (`active`, `past_due`, `canceled`, …) or `none`.
    pub status: String,
    /// Seats.
    pub seats: u32,
    /// End of the current period (epoch ms), when known.
    pub current_period_end: Option<i64>,
    /// Whether it ends at the period end.
    pub cancel_at_period_end: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<CheckoutBody, crate::AppError> {
        crate::input::parse_json(Some("application/json"), s.as_bytes())
    }

    #[test]
    fn the_tier_decides_whether_seats_are_allowed() {
        let (t, s) = parse(r#"{"tier":"team","seats":7}"#).unwrap().into_parts();
        assert_eq!((t.tier(), s), (Tier::Team, Some(7)));
        let (t, s) = parse(r#"{"tier":"pro"}"#).unwrap().into_parts();
        assert_eq!((t.tier(), s), (Tier::Pro, None));
        for bad in [
            r#"{"tier":"pro","seats":2}"#,
            r#"{"tier":"free"}"#,
            r#"{"tier":"team","extra":1}"#,
            r#"{"seats":2}"#,
        ] {
            assert_eq!(parse(bad).unwrap_err().status(), 422, "{bad}");
        }
    }
}
