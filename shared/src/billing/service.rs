//! The billing service: checkout, webhooks, subscription status and cancellation.

use secrecy::{ExposeSecret, SecretString};

use super::events::{CheckoutCompleted, InvoiceObject, RawEvent, SubscriptionObject};
use super::model::{BillingChange, EventRecord, RecordOutcome, Subscription};
use super::signature::{self, DEFAULT_TOLERANCE_SECS};
use crate::api::{CheckoutResponse, PortalResponse, SubscriptionInfo};
use crate::domain::{Tier, User, UserId};
use crate::error::{AppError, Upstream};
use crate::ports::{
    new_uuid, BillingStore, CheckoutRequest, Clock, Payments, PortalRequest, Random, UpstreamError,
    UserStore,
};

/// What a webhook did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookOutcome {
    /// Applied or a duplicate.
    pub outcome: RecordOutcome,
    /// The user whose billing state changed, if one did.
    pub changed: Option<UserId>,
}

/// The most seats one team subscription may have.
pub const MAX_TEAM_SEATS: u32 = 1_000;

/// A tier that can be bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaidTier(Tier);

impl PaidTier {
    /// Pro.
    pub const PRO: PaidTier = PaidTier(Tier::Pro);
    /// Power.
    pub const POWER: PaidTier = PaidTier(Tier::Power);
    /// Team.
    pub const TEAM: PaidTier = PaidTier(Tier::Team);

    /// Parses `pro`, `power` or `team`.
    pub fn parse(s: &str) -> Option<Self> {
        Tier::parse(s).filter(|t| *t != Tier::Free).map(Self)
    }

    /// The tier.
    pub fn tier(self) -> Tier {
        self.0
    }
}

/// Billing settings from configuration.
#[derive(Debug, Clone)]
pub struct BillingSettings {
    /// Webhook signing secret.
    pub webhook_secret: Option<SecretString>,
    /// Price ids of pro, power and team.
    pub price_pro: Option<String>,
    /// Price id of power.
    pub price_power: Option<String>,
    /// Price id of team (per seat).
    pub price_team: Option<String>,
    /// Checkout success URL.
    pub success_url: String,
    /// Checkout cancel URL.
    pub cancel_url: String,
    /// Where the billing portal's return link leads.
    pub portal_return_url: String,
}

impl BillingSettings {
    fn price_of(&self, tier: Tier) -> Option<&str> {
        match tier {
            Tier::Pro => self.price_pro.as_deref(),
            Tier::Power => self.price_power.as_deref(),
            Tier::Team => self.price_team.as_deref(),
            Tier::Free => None,
        }
    }

    fn tier_of_price(&self, price: &str) -> Option<Tier> {
        [Tier::Pro, Tier::Power, Tier::Team]
            .into_iter()
            .find(|t| self.price_of(*t) == Some(price))
    }
}

/// The billing service over its ports.
pub struct BillingService<'a> {
    /// Accounts.
    pub users: &'a dyn UserStore,
    /// Subscriptions and events.
    pub store: &'a dyn BillingStore,
    /// Stripe.
    pub payments: &'a dyn Payments,
    /// Time.
    pub clock: &'a dyn Clock,
    /// Randomness (idempotency keys).
    pub rng: &'a dyn Random,
    /// Settings.
    pub settings: &'a BillingSettings,
}

fn payments_error(e: UpstreamError) -> AppError {
    e.into_app_error(Upstream::Payments)
}

impl BillingService<'_> {
    /// Starts a Checkout Session for `tier` with `seats` (team only; others must be 1).
    ///
    /// # Errors
    /// 422 for bad seats, 409 while a paid subscription is in force, 503 when the tier's price
    /// is not configured, 502/503 when Stripe fails.
    pub async fn checkout(
        &self,
        user: &User,
        tier: PaidTier,
        seats: Option<u32>,
    ) -> Result<CheckoutResponse, AppError> {
        let seats = match (tier.tier(), seats) {
            (Tier::Team, Some(n)) if (1..=MAX_TEAM_SEATS).contains(&n) => n,
            (Tier::Team, None) | (_, None | Some(1)) => 1,
            (Tier::Team, Some(_)) => {
                return Err(AppError::field(
                    "seats",
                    format!("must be from 1 to {MAX_TEAM_SEATS}"),
                ))
            }
            (_, Some(_)) => return Err(AppError::field("seats", "only the team tier has seats")),
        };
        let now = self.clock.now_ms();
        if user.effective_tier(now) != Tier::Free {
            return Err(AppError::Conflict(
                "a subscription is in force: cancel it or change it instead",
            ));
        }
        let price_id = self
            .settings
            .price_of(tier.tier())
            .ok_or(UpstreamError::NotConfigured)
            .map_err(payments_error)?
            .to_owned();
        let req = CheckoutRequest {
            user_id: user.id,
            email: user.email.clone(),
            customer_id: self.store.customer_of(user.id).await?,
            tier: tier.tier(),
            price_id,
            seats,
            success_url: self.settings.success_url.clone(),
            cancel_url: self.settings.cancel_url.clone(),
            idempotency_key: new_uuid(self.rng).to_string(),
        };
        let session = self
            .payments
            .create_checkout_session(&req)
            .await
            .map_err(payments_error)?;
        tracing::info!(user_id = %user.id, tier = tier.tier().as_str(), seats, session = %session.id, "checkout session created");
        Ok(CheckoutResponse {
            checkout_url: session.url,
        })
    }

    /// The caller's subscription as the app shows it.
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn subscription(&self, user: &User) -> Result<SubscriptionInfo, AppError> {
        let tier = user.effective_tier(self.clock.now_ms());
        Ok(match self.store.latest_subscription(user.id).await? {
            Some(s) => SubscriptionInfo {
                tier,
                status: s.status,
                seats: s.seats,
                current_period_end: s.current_period_end,
                cancel_at_period_end: s.cancel_at_period_end,
            },
            None => SubscriptionInfo {
                tier,
                status: "none".to_owned(),
                seats: 1,
                current_period_end: None,
                cancel_at_period_end: false,
            },
        })
    }

    /// Opens Stripe's billing portal (invoices, card, plan) for the caller's Stripe customer.
    /// Each call is a new session with its own idempotency key (reused only by the client's
    /// own retries of that call).
    ///
    /// # Errors
    /// 409 `conflict` when the caller has no Stripe customer yet (never checked out);
    /// 502/503 when Stripe fails.
    pub async fn portal(&self, user: UserId) -> Result<PortalResponse, AppError> {
        let customer_id = self
            .store
            .customer_of(user)
            .await?
            .ok_or(AppError::Conflict(
                "no billing account yet: subscribe first",
            ))?;
        let req = PortalRequest {
            customer_id,
            return_url: self.settings.portal_return_url.clone(),
            idempotency_key: format!("portal-{}", new_uuid(self.rng)),
        };
        let url = self
            .payments
            .create_portal_session(&req)
            .await
            .map_err(payments_error)?;
        tracing::info!(user_id = %user, "billing portal session created");
        Ok(PortalResponse { url })
    }

    /// Cancels the caller's subscription at the end of its period.
    ///
    /// # Errors
    /// 404 without a live subscription; 502/503 when Stripe fails.
    pub async fn cancel(&self, user: UserId) -> Result<(), AppError> {
        let sub = self
            .store
            .latest_subscription(user)
            .await?
            .filter(|s| !matches!(s.status.as_str(), "canceled" | "incomplete_expired"))
            .ok_or(AppError::NotFound)?;
        // One key per subscription: retries and double clicks are one cancellation.
        let key = format!("cancel-{}", sub.stripe_subscription_id);
        self.payments
            .cancel_subscription(&sub.stripe_subscription_id, &key)
            .await
            .map_err(payments_error)?;
        self.store
            .mark_cancel_at_period_end(&sub.stripe_subscription_id, self.clock.now_ms())
            .await?;
        tracing::info!(user_id = %user, subscription = %sub.stripe_subscription_id, "cancellation requested");
        Ok(())
    }

    /// Verifies and applies a webhook. Returns what it did and whose account it changed (that
    /// user's home must hear of it).
    ///
    /// # Errors
    /// 400 `invalid_signature` for a bad signature, 400 `malformed_json` for a body that is not
    /// an event, 503 when no webhook secret is configured.
    pub async fn webhook(
        &self,
        payload: &[u8],
        signature_header: Option<&str>,
    ) -> Result<WebhookOutcome, AppError> {
        let secret = self
            .settings
            .webhook_secret
            .as_ref()
            .ok_or(UpstreamError::NotConfigured)
            .map_err(payments_error)?;
        let now = self.clock.now_ms();
        signature::verify(
            payload,
            signature_header.ok_or(AppError::InvalidSignature)?,
            secret.expose_secret(),
            now.div_euclid(1000),
            DEFAULT_TOLERANCE_SECS,
        )
        .map_err(|e| {
            tracing::warn!(reason = %e, "webhook signature refused");
            AppError::InvalidSignature
        })?;
        let event: RawEvent = serde_json::from_slice(payload)
            .map_err(|e| AppError::MalformedJson(format!("not a Stripe event: {e}")))?;
        if self.store.event_processed(&event.id).await? {
            tracing::info!(event = %event.id, "webhook replay ignored");
            return Ok(WebhookOutcome {
                outcome: RecordOutcome::Duplicate,
                changed: None,
            });
        }
        let created = event.created.saturating_mul(1000);
        let o = &event.data.object;
        let change = match event.kind.as_str() {
            "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
                let session = CheckoutCompleted::read(o);
                let paid =
                    event.kind == "checkout.session.async_payment_succeeded" || session.is_paid();
                if paid {
                    self.on_checkout(&session, created).await?
                } else {
                    tracing::info!(event = %event.id, "checkout completed unpaid: nothing granted until its payment succeeds");
                    None
                }
            }
            "checkout.session.async_payment_failed" => {
                tracing::info!(event = %event.id, "checkout payment failed: nothing granted");
                None
            }
            "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted" => {
                let deleted = event.kind == "customer.subscription.deleted";
                self.on_subscription(&SubscriptionObject::read(o), deleted, created)
                    .await?
            }
            "invoice.paid" | "invoice.payment_failed" => {
                let paid = event.kind == "invoice.paid";
                self.on_invoice(&InvoiceObject::read(o), paid, created)
                    .await?
            }
            _ => None,
        };
        let record = EventRecord {
            id: event.id.clone(),
            kind: event.kind.clone(),
            created,
            processed_at: now,
        };
        let outcome = self.store.record(&record, change.as_ref()).await?;
        match &change {
            Some(c) => tracing::info!(
                event = %event.id,
                kind = %event.kind,
                user_id = %c.subscription.user_id,
                subscription = %c.subscription.stripe_subscription_id,
                status = %c.subscription.status,
                tier = c.user_tier.as_str(),
                ?outcome,
                "webhook applied"
            ),
            None => {
                tracing::info!(event = %event.id, kind = %event.kind, ?outcome, "webhook recorded without change");
            }
        }
        Ok(WebhookOutcome {
            outcome,
            changed: change
                .filter(|_| outcome == RecordOutcome::Applied)
                .map(|c| c.subscription.user_id),
        })
    }

    /// The stored subscription, unless an event newer than `created` already applied to it
    /// (then `Err(())`: the event is stale and changes nothing).
    async fn current(
        &self,
        id: &str,
        created: i64,
    ) -> Result<Result<Option<Subscription>, ()>, AppError> {
        let existing = self.store.subscription(id).await?;
        if existing
            .as_ref()
            .is_some_and(|s| s.last_event_created > created)
        {
            tracing::info!(subscription = %id, "out-of-order event ignored");
            return Ok(Err(()));
        }
        Ok(Ok(existing))
    }

    async fn on_checkout(
        &self,
        c: &CheckoutCompleted,
        created: i64,
    ) -> Result<Option<BillingChange>, AppError> {
        let (Some(sub_id), Some(user)) = (c.subscription.as_deref(), c.user.as_deref()) else {
            return Ok(None);
        };
        if c.mode.as_deref().is_some_and(|m| m != "subscription") {
            return Ok(None);
        }
        let Some(user_id) = UserId::parse(user) else {
            tracing::warn!("checkout completed for an unparsable user id");
            return Ok(None);
        };
        if self.users.find_by_id(user_id).await?.is_none() {
            tracing::warn!(user_id = %user_id, "checkout completed for an unknown user");
            return Ok(None);
        }
        let Ok(existing) = self.current(sub_id, created).await? else {
            return Ok(None);
        };
        if existing.as_ref().is_some_and(Subscription::is_terminal) {
            tracing::info!(subscription = %sub_id, "checkout of a canceled subscription ignored");
            return Ok(None);
        }
        let tier = c
            .tier
            .as_deref()
            .and_then(PaidTier::parse)
            .map(PaidTier::tier)
            .or(existing.as_ref().map(|s| s.tier));
        let Some(tier) = tier else {
            tracing::warn!(subscription = %sub_id, "checkout completed without a tier");
            return Ok(None);
        };
        let sub = match existing {
            // A subscription event got here first: keep its status and period.
            Some(s) => Subscription {
                customer_id: c.customer.clone().or(s.customer_id),
                last_event_created: created,
                ..s
            },
            None => Subscription {
                stripe_subscription_id: sub_id.to_owned(),
                user_id,
                customer_id: c.customer.clone(),
                tier,
                status: "active".to_owned(),
                seats: c.seats.unwrap_or(1).max(1),
                current_period_end: None,
                cancel_at_period_end: false,
                last_event_created: created,
            },
        };
        Ok(Some(BillingChange::of(sub)))
    }

    async fn on_subscription(
        &self,
        o: &SubscriptionObject,
        deleted: bool,
        created: i64,
    ) -> Result<Option<BillingChange>, AppError> {
        let Some(id) = o.id.as_deref() else {
            return Ok(None);
        };
        let Ok(existing) = self.current(id, created).await? else {
            return Ok(None);
        };
        // A canceled subscription is terminal at Stripe: nothing after its deletion revives it
        // (an update of the same second, a replay with another id, a late `created`).
        if existing.as_ref().is_some_and(Subscription::is_terminal) {
            tracing::info!(subscription = %id, "event for a canceled subscription ignored");
            return Ok(None);
        }
        let user_id = match (&existing, o.meta_user.as_deref().and_then(UserId::parse)) {
            (Some(s), _) => Some(s.user_id),
            (None, Some(u)) => Some(u),
            (None, None) => match o.customer.as_deref() {
                Some(c) => self.store.user_by_customer(c).await?,
                None => None,
            },
        };
        let Some(user_id) = user_id else {
            tracing::warn!(subscription = %id, "subscription event for no known user");
            return Ok(None);
        };
        let tier = o
            .price_id
            .as_deref()
            .and_then(|p| self.settings.tier_of_price(p))
            .or_else(|| {
                o.meta_tier
                    .as_deref()
                    .and_then(PaidTier::parse)
                    .map(PaidTier::tier)
            })
            .or(existing.as_ref().map(|s| s.tier));
        let Some(tier) = tier else {
            tracing::warn!(subscription = %id, "subscription event without a known price or tier");
            return Ok(None);
        };
        let status = if deleted {
            "canceled".to_owned()
        } else {
            o.status
                .clone()
                .or(existing.as_ref().map(|s| s.status.clone()))
                .unwrap_or_else(|| "active".to_owned())
        };
        Ok(Some(BillingChange::of(Subscription {
            stripe_subscription_id: id.to_owned(),
            user_id,
            customer_id: o
                .customer
                .clone()
                .or(existing.as_ref().and_then(|s| s.customer_id.clone())),
            tier,
            status,
            seats: o
                .seats
                .or(existing.as_ref().map(|s| s.seats))
                .unwrap_or(1)
                .max(1),
            current_period_end: o
                .current_period_end
                .map(|s| s.saturating_mul(1000))
                .or(existing.as_ref().and_then(|s| s.current_period_end)),
            cancel_at_period_end: o.cancel_at_period_end,
            last_event_created: created,
        })))
    }

    async fn on_invoice(
        &self,
        o: &InvoiceObject,
        paid: bool,
        created: i64,
    ) -> Result<Option<BillingChange>, AppError> {
        let Some(id) = o.subscription.as_deref() else {
            return Ok(None);
        };
        // Invoices only move a subscription Stripe has told us about.
        let Ok(Some(existing)) = self.current(id, created).await? else {
            return Ok(None);
        };
        // A canceled subscription stays canceled whatever late invoices say.
        if existing.is_terminal() {
            return Ok(None);
        }
        // Paid: the invoice's period is the new one. Failed: the tier lasts until the end of
        // the period last reported, never of the period that was not paid for.
        let (status, current_period_end) = if paid {
            let end = o.period_end.map(|s| s.saturating_mul(1000));
            ("active", end.or(existing.current_period_end))
        } else {
            ("past_due", existing.current_period_end)
        };
        Ok(Some(BillingChange::of(Subscription {
            status: status.to_owned(),
            current_period_end,
            last_event_created: created,
            ..existing
        })))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::billing::signature::sign;
    use crate::domain::{Email, Role};
    use crate::testing::{
        FakePayments, FixedClock, InMemoryBillingStore, InMemoryUserStore, SeqRandom,
    };

    const T0: i64 = 1_800_000_000_000;
    const SECRET: &str = "whsec_unit";

    struct World {
        users: &'static InMemoryUserStore,
        store: InMemoryBillingStore<'static>,
        payments: FakePayments,
        clock: FixedClock,
        rng: SeqRandom,
        settings: BillingSettings,
        user: User,
    }

    impl World {
        fn new() -> Self {
            let users: &'static InMemoryUserStore = Box::leak(Box::default());
            let user = User {
                id: UserId(uuid::Uuid::from_u128(77)),
                email: Email::parse("payer@example.com").unwrap(),
                password_hash: String::new(),
                tier: Tier::Free,
                tier_until: None,
                role: Role::User,
                email_verified_at: None,
                created_at: T0,
                updated_at: T0,
                suspended_at: None,
            };
            users.rows.borrow_mut().insert(user.id, user.clone());
            Self {
                users,
                store: InMemoryBillingStore::new(users),
                payments: FakePayments::default(),
                clock: FixedClock::at(T0),
                rng: SeqRandom::new(3),
                settings: BillingSettings {
                    webhook_secret: Some(SECRET.to_owned().into()),
                    price_pro: Some("price_pro".into()),
                    price_power: Some("price_power".into()),
                    price_team: Some("price_team".into()),
                    success_url: "https://ok".into(),
                    cancel_url: "https://no".into(),
                    portal_return_url: "https://back".into(),
                },
                user,
            }
        }

        fn svc(&self) -> BillingService<'_> {
            BillingService {
                users: self.users,
                store: &self.store,
                payments: &self.payments,
                clock: &self.clock,
                rng: &self.rng,
                settings: &self.settings,
            }
        }

        fn me(&self) -> User {
            self.users.rows.borrow()[&self.user.id].clone()
        }

        /// Sends `event` signed now; `created` in seconds.
        async fn send(
            &self,
            id: &str,
            kind: &str,
            created: i64,
            object: Value,
        ) -> Result<RecordOutcome, AppError> {
            let body = json!({"id": id, "object": "event", "type": kind, "created": created, "data": {"object": object}}).to_string();
            let t = self.clock.now_ms() / 1000;
            let header = format!("t={t},v1={}", sign(body.as_bytes(), SECRET, t));
            self.svc()
                .webhook(body.as_bytes(), Some(&header))
                .await
                .map(|o| {
                    if o.outcome == RecordOutcome::Applied {
                        assert!(
                            o.changed.is_none_or(|u| u == self.user.id),
                            "only this world's user has an account"
                        );
                    }
                    o.outcome
                })
        }

        /// A signed `checkout.session.completed` of this world's user buying `tier`.
        async fn checkout_completed(&self, id: &str, tier: &str) -> RecordOutcome {
            self.send(
                id,
                "checkout.session.completed",
                secs(T0),
                completed(self.user.id, tier),
            )
            .await
            .unwrap()
        }
    }

    fn secs(ms: i64) -> i64 {
        ms / 1000
    }

    fn completed(user: UserId, tier: &str) -> Value {
        json!({"object": "checkout.session", "mode": "subscription", "client_reference_id": user.to_string(),
               "customer": "cus_1", "subscription": "sub_1", "metadata": {"tier": tier, "seats": "1"}})
    }

    fn sub_obj(status: &str, price: &str, period_end_s: i64, cancel: bool) -> Value {
        json!({"object": "subscription", "id": "sub_1", "customer": "cus_1", "status": status,
               "cancel_at_period_end": cancel,
               "items": {"data": [{"quantity": 1, "current_period_end": period_end_s, "price": {"id": price}}]}})
    }

    #[tokio::test]
    async fn checkout_completion_upgrades_the_user_and_remembers_the_customer() {
        let w = World::new();
        let out = w.checkout_completed("evt_1", "power").await;
        assert_eq!(out, RecordOutcome::Applied);
        assert_eq!(w.me().tier, Tier::Power);
        assert_eq!(
            w.store.customer_of(w.user.id).await.unwrap().as_deref(),
            Some("cus_1")
        );
    }

    #[tokio::test]
    async fn a_replayed_event_changes_nothing() {
        let w = World::new();
        w.checkout_completed("evt_1", "pro").await;
        // Downgrade by a later event, then replay the first: still free.
        w.send(
            "evt_2",
            "customer.subscription.deleted",
            secs(T0) + 5,
            sub_obj("canceled", "price_pro", secs(T0) + 100, false),
        )
        .await
        .unwrap();
        let out = w.checkout_completed("evt_1", "pro").await;
        assert_eq!(out, RecordOutcome::Duplicate);
        assert_eq!(w.me().tier, Tier::Free);
    }

    #[tokio::test]
    async fn an_older_event_arriving_late_never_rolls_state_back() {
        let w = World::new();
        w.checkout_completed("evt_1", "pro").await;
        w.send(
            "evt_3",
            "customer.subscription.updated",
            secs(T0) + 20,
            sub_obj("active", "price_team", secs(T0) + 3600, false),
        )
        .await
        .unwrap();
        assert_eq!(w.me().tier, Tier::Team);
        // An update from before the upgrade arrives last.
        let out = w
            .send(
                "evt_2",
                "customer.subscription.updated",
                secs(T0) + 10,
                sub_obj("active", "price_pro", secs(T0) + 3600, false),
            )
            .await
            .unwrap();
        assert_eq!(out, RecordOutcome::Applied);
        assert_eq!(w.me().tier, Tier::Team);
        assert!(
            w.store.event_processed("evt_2").await.unwrap(),
            "recorded, so a replay is ignored"
        );
    }

    #[tokio::test]
    async fn an_unpaid_checkout_grants_nothing_until_its_async_payment_succeeds() {
        let w = World::new();
        let mut session = completed(w.user.id, "pro");
        session["payment_status"] = json!("unpaid");
        w.send(
            "evt_1",
            "checkout.session.completed",
            secs(T0),
            session.clone(),
        )
        .await
        .unwrap();
        assert_eq!(
            w.me().tier,
            Tier::Free,
            "a delayed payment has not paid yet"
        );
        w.send(
            "evt_2",
            "checkout.session.async_payment_failed",
            secs(T0) + 1,
            session.clone(),
        )
        .await
        .unwrap();
        assert_eq!(w.me().tier, Tier::Free);
        session["payment_status"] = json!("paid");
        w.send(
            "evt_3",
            "checkout.session.async_payment_succeeded",
            secs(T0) + 2,
            session.clone(),
        )
        .await
        .unwrap();
        assert_eq!(w.me().tier, Tier::Pro);
        // A session that needs no payment (a 100 % coupon) grants at once.
        let w = World::new();
        let mut free = completed(w.user.id, "power");
        free["payment_status"] = json!("no_payment_required");
        w.send("evt_1", "checkout.session.completed", secs(T0), free)
            .await
            .unwrap();
        assert_eq!(w.me().tier, Tier::Power);
    }

    #[tokio::test]
    async fn a_canceled_subscription_is_terminal_even_for_an_update_of_the_same_second() {
        let w = World::new();
        w.checkout_completed("evt_1", "power").await;
        let t = secs(T0) + 10;
        w.send(
            "evt_2",
            "customer.subscription.deleted",
            t,
            sub_obj("canceled", "price_power", t + 3600, false),
        )
        .await
        .unwrap();
        assert_eq!(w.me().tier, Tier::Free);
        for (i, (kind, created)) in [
            ("customer.subscription.updated", t),
            ("customer.subscription.updated", t + 60),
            ("customer.subscription.created", t + 61),
        ]
        .into_iter()
        .enumerate()
        {
            w.send(
                &format!("evt_late_{i}"),
                kind,
                created,
                sub_obj("active", "price_power", t + 3600, false),
            )
            .await
            .unwrap();
            assert_eq!(w.me().tier, Tier::Free, "{kind} at {created}");
        }
        w.checkout_completed("evt_9", "power").await;
        assert_eq!(w.me().tier, Tier::Free, "a replayed checkout of it too");
        let sub = w.store.subscription("sub_1").await.unwrap().unwrap();
        assert_eq!(sub.status, "canceled");
    }

    #[tokio::test]
    async fn a_subscription_update_before_checkout_completion_is_kept() {
        let w = World::new();
        let mut obj = sub_obj("active", "price_power", secs(T0) + 3600, false);
        obj["metadata"] = json!({"user_id": w.user.id.to_string()});
        w.send("evt_a", "customer.subscription.created", secs(T0), obj)
            .await
            .unwrap();
        w.checkout_completed("evt_b", "power").await;
        let sub = w.store.subscription("sub_1").await.unwrap().unwrap();
        assert_eq!(sub.current_period_end, Some((secs(T0) + 3600) * 1000));
        assert_eq!(w.me().tier, Tier::Power);
    }

    #[tokio::test]
    async fn a_failed_payment_keeps_the_tier_until_the_period_ends() {
        let w = World::new();
        w.checkout_completed("evt_1", "pro").await;
        let end = secs(T0) + 3600;
        w.send(
            "evt_2",
            "customer.subscription.updated",
            secs(T0) + 1,
            sub_obj("active", "price_pro", end, false),
        )
        .await
        .unwrap();
        w.send(
            "evt_3",
            "invoice.payment_failed",
            secs(T0) + 2,
            json!({"subscription": "sub_1", "lines": {"data": [{"period": {"end": end + 3600}}]}}),
        )
        .await
        .unwrap();
        let me = w.me();
        assert_eq!(me.effective_tier(T0), Tier::Pro);
        assert_eq!(
            me.tier_until,
            Some(end * 1000),
            "the unpaid period grants nothing"
        );
        assert_eq!(me.effective_tier(end * 1000), Tier::Free);
        // Paying restores it without expiry.
        w.send(
            "evt_4",
            "invoice.paid",
            secs(T0) + 3,
            json!({"subscription": "sub_1", "lines": {"data": [{"period": {"end": end + 3600}}]}}),
        )
        .await
        .unwrap();
        let me = w.me();
        assert_eq!(me.tier_until, None);
        assert_eq!(me.effective_tier(end * 1000), Tier::Pro);
    }

    #[tokio::test]
    async fn deletion_makes_the_user_free_and_late_invoices_do_not_revive_it() {
        let w = World::new();
        w.checkout_completed("evt_1", "power").await;
        w.send(
            "evt_2",
            "customer.subscription.deleted",
            secs(T0) + 1,
            sub_obj("canceled", "price_power", secs(T0) + 10, false),
        )
        .await
        .unwrap();
        assert_eq!(w.me().tier, Tier::Free);
        w.send(
            "evt_3",
            "invoice.paid",
            secs(T0) + 2,
            json!({"subscription": "sub_1"}),
        )
        .await
        .unwrap();
        assert_eq!(w.me().tier, Tier::Free);
    }

    #[tokio::test]
    async fn unknown_event_types_are_acknowledged_and_ignored() {
        let w = World::new();
        let out = w
            .send("evt_x", "charge.refunded", secs(T0), json!({"id": "ch_1"}))
            .await
            .unwrap();
        assert_eq!(out, RecordOutcome::Applied);
        assert_eq!(w.me().tier, Tier::Free);
    }

    #[tokio::test]
    async fn bad_stale_or_missing_signatures_are_refused() {
        let w = World::new();
        let body = br#"{"id":"evt_1","type":"invoice.paid","created":1,"data":{"object":{}}}"#;
        let t = T0 / 1000;
        let good = sign(body, SECRET, t);
        for header in [
            None,
            Some(format!("t={t},v1={}", sign(body, "whsec_wrong", t))),
            Some(format!("t={},v1={}", t - 301, sign(body, SECRET, t - 301))),
            Some(format!("t={t},v0={good}")),
        ] {
            let e = w.svc().webhook(body, header.as_deref()).await.unwrap_err();
            assert_eq!(e.code(), "invalid_signature", "{header:?}");
        }
        assert!(w.store.events.borrow().is_empty());
    }

    #[tokio::test]
    async fn a_signed_body_that_is_not_an_event_is_400() {
        let w = World::new();
        let body = br#"{"hello":"world"}"#;
        let t = T0 / 1000;
        let header = format!("t={t},v1={}", sign(body, SECRET, t));
        assert_eq!(
            w.svc()
                .webhook(body, Some(&header))
                .await
                .unwrap_err()
                .status(),
            400
        );
    }

    #[tokio::test]
    async fn checkout_validates_seats_and_refuses_a_second_subscription() {
        let w = World::new();
        let team = PaidTier::parse("team").unwrap();
        let pro = PaidTier::parse("pro").unwrap();
        assert_eq!(
            w.svc()
                .checkout(&w.user, pro, Some(2))
                .await
                .unwrap_err()
                .status(),
            422
        );
        assert_eq!(
            w.svc()
                .checkout(&w.user, team, Some(0))
                .await
                .unwrap_err()
                .status(),
            422
        );
        assert_eq!(
            w.svc()
                .checkout(&w.user, team, Some(1_001))
                .await
                .unwrap_err()
                .status(),
            422
        );
        let r = w.svc().checkout(&w.user, team, Some(12)).await.unwrap();
        assert!(r.checkout_url.starts_with("https://"));
        let sent = w.payments.checkouts.borrow()[0].clone();
        assert_eq!(
            (sent.seats, sent.price_id.as_str(), sent.tier),
            (12, "price_team", Tier::Team)
        );
        w.checkout_completed("evt_1", "team").await;
        let e = w.svc().checkout(&w.me(), pro, None).await.unwrap_err();
        assert_eq!(e.code(), "conflict");
    }

    #[tokio::test]
    async fn checkout_without_a_configured_price_is_503() {
        let mut w = World::new();
        w.settings.price_power = None;
        let e = w
            .svc()
            .checkout(&w.user, PaidTier::parse("power").unwrap(), None)
            .await
            .unwrap_err();
        assert_eq!((e.status(), e.code()), (503, "upstream_unavailable"));
    }

    #[tokio::test]
    async fn cancel_requests_period_end_cancellation_once_per_subscription() {
        let w = World::new();
        assert_eq!(w.svc().cancel(w.user.id).await.unwrap_err().status(), 404);
        w.checkout_completed("evt_1", "pro").await;
        w.svc().cancel(w.user.id).await.unwrap();
        assert_eq!(*w.payments.cancelled.borrow(), vec!["sub_1".to_owned()]);
        let info = w.svc().subscription(&w.me()).await.unwrap();
        assert!(info.cancel_at_period_end);
        assert_eq!(info.tier, Tier::Pro, "paid until the period ends");
    }

    #[tokio::test]
    async fn the_portal_needs_a_customer_and_opens_a_new_session_per_call() {
        let w = World::new();
        let err = w.svc().portal(w.user.id).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (409, "conflict"));
        assert!(
            w.payments.portals.borrow().is_empty(),
            "nothing sent to Stripe"
        );
        w.checkout_completed("evt_1", "pro").await;
        let a = w.svc().portal(w.user.id).await.unwrap();
        let b = w.svc().portal(w.user.id).await.unwrap();
        assert_ne!(a.url, b.url);
        let sent = w.payments.portals.borrow();
        assert_eq!(sent.len(), 2);
        assert!(sent
            .iter()
            .all(|p| p.customer_id == "cus_1" && p.return_url == "https://back"));
        assert_ne!(sent[0].idempotency_key, sent[1].idempotency_key);
    }

    #[tokio::test]
    async fn a_portal_outage_is_upstream_unavailable() {
        let w = World::new();
        w.checkout_completed("evt_1", "pro").await;
        w.payments.failing.set(true);
        let err = w.svc().portal(w.user.id).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (503, "upstream_unavailable"));
    }

    #[test]
    fn only_paid_tiers_can_be_bought() {
        assert!(PaidTier::parse("free").is_none());
        assert!(PaidTier::parse("enterprise").is_none());
        assert_eq!(
            PaidTier::parse("power").map(PaidTier::tier),
            Some(Tier::Power)
        );
    }
}
