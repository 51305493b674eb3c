//! Subscriptions and what they entitle a user to.
//!
//! ## Lifecycle rule
//! - `active` / `trialing`: the subscription's tier, no expiry.
//! - `past_due` (a payment failed): the tier is **kept until the current period ends**, then
//!   lapses to free by itself (`users.tier_until`); a later `invoice.paid` restores it fully.
//! - anything else (`canceled`, `unpaid`, `incomplete`, `incomplete_expired`, `paused`): free.
//! - `cancel_at_period_end` does not change the tier: Stripe sends `customer.subscription.deleted`
//!   when the period ends, and that makes the user free.
//!
//! Events are applied in the order of their own `created` time: an event older than the last
//! one applied to a subscription never changes it (it is recorded as processed and ignored).

use crate::domain::{Tier, UserId};

/// A subscription as stored (D1 `subscriptions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Stripe's id (`sub_…`).
    pub stripe_subscription_id: String,
    /// The subscriber.
    pub user_id: UserId,
    /// Stripe customer (`cus_…`).
    pub customer_id: Option<String>,
    /// The paid tier.
    pub tier: Tier,
    /// Stripe's status string.
    pub status: String,
    /// Seats (team).
    pub seats: u32,
    /// End of the current period (epoch ms), once known.
    pub current_period_end: Option<i64>,
    /// Whether it ends at the period end.
    pub cancel_at_period_end: bool,
    /// `created` (epoch ms) of the last event applied.
    pub last_event_created: i64,
}

impl Subscription {
    /// Whether Stripe can no longer change it: a canceled (deleted) or expired subscription
    /// never comes back, so no later event may revive it.
    pub fn is_terminal(&self) -> bool {
        matches!(self.status.as_str(), "canceled" | "incomplete_expired")
    }
}

/// What a subscription gives its user: the tier and when it lapses (`None`: it does not).
pub fn entitlement(sub: &Subscription) -> (Tier, Option<i64>) {
    grant(sub.tier, &sub.status, sub.current_period_end)
}

/// What a subscription of `tier` in Stripe status `status` grants (the lifecycle rule above).
pub fn grant(tier: Tier, status: &str, current_period_end: Option<i64>) -> (Tier, Option<i64>) {
    match status {
        "active" | "trialing" => (tier, None),
        "past_due" => (tier, current_period_end),
        _ => (Tier::Free, None),
    }
}

/// A webhook event as recorded for idempotency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// `evt_…`.
    pub id: String,
    /// Event type.
    pub kind: String,
    /// The event's own `created` (epoch ms).
    pub created: i64,
    /// When we processed it (epoch ms).
    pub processed_at: i64,
}

/// The state an event leads to: the subscription row and the user's tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingChange {
    /// The subscription after the event.
    pub subscription: Subscription,
    /// The user's tier after the event.
    pub user_tier: Tier,
    /// When that tier lapses.
    pub tier_until: Option<i64>,
}

impl BillingChange {
    /// The change that puts `subscription` in force.
    pub fn of(subscription: Subscription) -> Self {
        let (user_tier, tier_until) = entitlement(&subscription);
        Self {
            subscription,
            user_tier,
            tier_until,
        }
    }
}

/// What recording an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Recorded (and its change, if any, applied).
    Applied,
    /// The event id was processed before; nothing changed.
    Duplicate,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(status: &str) -> Subscription {
        Subscription {
            stripe_subscription_id: "sub_1".into(),
            user_id: UserId(uuid::Uuid::nil()),
            customer_id: None,
            tier: Tier::Power,
            status: status.into(),
            seats: 1,
            current_period_end: Some(5_000),
            cancel_at_period_end: false,
            last_event_created: 0,
        }
    }

    #[test]
    fn active_and_trialing_subscriptions_grant_their_tier_without_expiry() {
        assert_eq!(entitlement(&sub("active")), (Tier::Power, None));
        assert_eq!(entitlement(&sub("trialing")), (Tier::Power, None));
    }

    #[test]
    fn past_due_keeps_the_tier_until_the_period_ends() {
        assert_eq!(entitlement(&sub("past_due")), (Tier::Power, Some(5_000)));
    }

    #[test]
    fn every_other_status_is_free() {
        for s in [
            "canceled",
            "unpaid",
            "incomplete",
            "incomplete_expired",
            "paused",
            "?",
        ] {
            assert_eq!(entitlement(&sub(s)), (Tier::Free, None), "{s}");
        }
    }
}
