//! Billing fakes: Stripe (payments) and the billing tables.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use async_trait::async_trait;

use super::auth::InMemoryUserStore;
use crate::billing::{BillingChange, EventRecord, RecordOutcome, Subscription};
use crate::domain::UserId;
use crate::ports::{
    BillingStore, ChargeRequest, CheckoutRequest, CheckoutSession, Payments, PortalRequest,
    SeatChange, StoreError, TransferRequest, UpstreamError,
};

/// Payments that record calls and answer with fixed sessions.
#[derive(Debug, Default)]
pub struct FakePayments {
    /// Checkout requests received.
    pub checkouts: RefCell<Vec<CheckoutRequest>>,
    /// Subscriptions cancelled.
    pub cancelled: RefCell<Vec<String>>,
    /// Transfers made.
    pub transfers: RefCell<Vec<TransferRequest>>,
    /// Charges made.
    pub charges: RefCell<Vec<ChargeRequest>>,
    /// Billing portal sessions opened.
    pub portals: RefCell<Vec<PortalRequest>>,
    /// Seat changes asked for.
    pub seat_changes: RefCell<Vec<SeatChange>>,
    /// When set, every charge is declined and every transfer fails as unavailable.
    pub failing: Cell<bool>,
}

#[async_trait(?Send)]
impl Payments for FakePayments {
    async fn create_checkout_session(
        &self,
        req: &CheckoutRequest,
    ) -> Result<CheckoutSession, UpstreamError> {
        let n = {
            let mut c = self.checkouts.borrow_mut();
            c.push(req.clone());
            c.len()
        };
        Ok(CheckoutSession {
            id: format!("cs_test_{n}"),
            url: format!("https://checkout.invalid/cs_test_{n}"),
        })
    }
    async fn cancel_subscription(
        &self,
        subscription_id: &str,
        _idempotency_key: &str,
    ) -> Result<(), UpstreamError> {
        self.cancelled.borrow_mut().push(subscription_id.to_owned());
        Ok(())
    }
    async fn cancel_subscription_now(
        &self,
        subscription_id: &str,
        _idempotency_key: &str,
    ) -> Result<(), UpstreamError> {
        if self.failing.get() {
            return Err(UpstreamError::Unavailable("scripted outage".to_owned()));
        }
        self.cancelled.borrow_mut().push(subscription_id.to_owned());
        Ok(())
    }
    async fn create_transfer(&self, req: &TransferRequest) -> Result<String, UpstreamError> {
        if self.failing.get() {
            return Err(UpstreamError::Unavailable("scripted outage".to_owned()));
        }
        let mut t = self.transfers.borrow_mut();
        t.push(req.clone());
        Ok(format!("tr_test_{}", t.len()))
    }
    async fn charge(&self, req: &ChargeRequest) -> Result<String, UpstreamError> {
        if self.failing.get() {
            return Err(UpstreamError::Declined("scripted decline".to_owned()));
        }
        let mut c = self.charges.borrow_mut();
        c.push(req.clone());
        Ok(format!("pi_test_{}", c.len()))
    }
    async fn create_portal_session(&self, req: &PortalRequest) -> Result<String, UpstreamError> {
        if self.failing.get() {
            return Err(UpstreamError::Unavailable("scripted outage".to_owned()));
        }
        let mut p = self.portals.borrow_mut();
        p.push(req.clone());
        Ok(format!("https://billing.invalid/p/session_{}", p.len()))
    }
    async fn update_seats(&self, req: &SeatChange) -> Result<(), UpstreamError> {
        if self.failing.get() {
            return Err(UpstreamError::Unavailable("scripted outage".to_owned()));
        }
        self.seat_changes.borrow_mut().push(req.clone());
        Ok(())
    }
}

/// Subscriptions and events in maps, writing tiers into an [`InMemoryUserStore`].
#[derive(Debug)]
pub struct InMemoryBillingStore<'u> {
    users: &'u InMemoryUserStore,
    /// Subscriptions by Stripe id.
    pub subscriptions: RefCell<HashMap<String, Subscription>>,
    /// Processed event ids.
    pub events: RefCell<Vec<EventRecord>>,
    /// Stripe customers by user.
    pub customers: RefCell<HashMap<UserId, String>>,
}

impl<'u> InMemoryBillingStore<'u> {
    /// A store updating `users`.
    pub fn new(users: &'u InMemoryUserStore) -> Self {
        Self {
            users,
            subscriptions: RefCell::default(),
            events: RefCell::default(),
            customers: RefCell::default(),
        }
    }
}

#[async_trait(?Send)]
impl BillingStore for InMemoryBillingStore<'_> {
    async fn event_processed(&self, event_id: &str) -> Result<bool, StoreError> {
        Ok(self.events.borrow().iter().any(|e| e.id == event_id))
    }
    async fn subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        Ok(self.subscriptions.borrow().get(id).cloned())
    }
    async fn latest_subscription(&self, user: UserId) -> Result<Option<Subscription>, StoreError> {
        Ok(self
            .subscriptions
            .borrow()
            .values()
            .filter(|s| s.user_id == user)
            .max_by_key(|s| s.last_event_created)
            .cloned())
    }
    async fn user_by_customer(&self, customer_id: &str) -> Result<Option<UserId>, StoreError> {
        Ok(self
            .customers
            .borrow()
            .iter()
            .find(|(_, c)| c.as_str() == customer_id)
            .map(|(u, _)| *u))
    }
    async fn customer_of(&self, user: UserId) -> Result<Option<String>, StoreError> {
        Ok(self.customers.borrow().get(&user).cloned())
    }
    async fn record(
        &self,
        event: &EventRecord,
        change: Option<&BillingChange>,
    ) -> Result<RecordOutcome, StoreError> {
        if self.events.borrow().iter().any(|e| e.id == event.id) {
            return Ok(RecordOutcome::Duplicate);
        }
        self.events.borrow_mut().push(event.clone());
        if let Some(c) = change {
            let sub = &c.subscription;
            let mut subs = self.subscriptions.borrow_mut();
            let newer_applied = subs
                .get(&sub.stripe_subscription_id)
                .is_some_and(|s| s.last_event_created > sub.last_event_created);
            if !newer_applied {
                subs.insert(sub.stripe_subscription_id.clone(), sub.clone());
                if let Some(u) = self.users.rows.borrow_mut().get_mut(&sub.user_id) {
                    u.tier = c.user_tier;
                    u.tier_until = c.tier_until;
                }
                if let Some(cus) = &sub.customer_id {
                    self.customers.borrow_mut().insert(sub.user_id, cus.clone());
                }
            }
        }
        Ok(RecordOutcome::Applied)
    }
    async fn mark_cancel_at_period_end(&self, id: &str, _now_ms: i64) -> Result<(), StoreError> {
        if let Some(s) = self.subscriptions.borrow_mut().get_mut(id) {
            s.cancel_at_period_end = true;
        }
        Ok(())
    }
}
