//! Billing: Stripe Checkout, verified idempotent webhooks, and the subscription lifecycle that
//! drives each user's tier (see [`model`] for the rule).

mod events;
pub mod model;
mod service;
pub mod signature;
mod stripe;

pub use model::{entitlement, BillingChange, EventRecord, RecordOutcome, Subscription};
pub use service::{BillingService, BillingSettings, PaidTier, WebhookOutcome, MAX_TEAM_SEATS};
pub use stripe::StripeClient;
