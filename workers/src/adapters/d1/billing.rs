//! D1 adapter of billing: subscriptions, processed Stripe events, customer ids, tiers.

use async_trait::async_trait;
use serde::Deserialize;
use shared::billing::{BillingChange, EventRecord, RecordOutcome, Subscription};
use shared::domain::{Tier, UserId};
use shared::ports::{new_uuid, BillingStore, StoreError};
use wasm_bindgen::JsValue;

use super::super::{unavailable, CryptoRandom};
use super::{int, is_unique_violation, opt_text, stmt, text, Db};

/// Billing state in D1.
pub struct D1BillingStore(pub Db);

#[derive(Deserialize)]
struct SubRow {
    stripe_subscription_id: String,
    user_id: String,
    stripe_customer_id: Option<String>,
    tier: String,
    status: String,
    seats: f64,
    current_period_end: Option<f64>,
    cancel_at_period_end: f64,
    last_event_created: f64,
}

impl SubRow {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn into_subscription(self) -> Result<Subscription, StoreError> {
        let corrupt =
            |what: &str| StoreError::Unavailable(format!("corrupt subscriptions row: {what}"));
        Ok(Subscription {
            stripe_subscription_id: self.stripe_subscription_id,
            user_id: UserId::parse(&self.user_id).ok_or_else(|| corrupt("user_id"))?,
            customer_id: self.stripe_customer_id,
            tier: Tier::parse(&self.tier).ok_or_else(|| corrupt("tier"))?,
            status: self.status,
            seats: self.seats.max(1.0) as u32,
            current_period_end: self.current_period_end.map(|v| v as i64),
            cancel_at_period_end: self.cancel_at_period_end != 0.0,
            last_event_created: self.last_event_created as i64,
        })
    }
}

const SUB_COLUMNS: &str = "stripe_subscription_id, user_id, stripe_customer_id, tier, status, \
     seats, current_period_end, cancel_at_period_end, last_event_created";

impl D1BillingStore {
    async fn one_sub(&self, sql: &str, arg: String) -> Result<Option<Subscription>, StoreError> {
        stmt(&self.0, sql, &[text(arg)])?
            .first::<SubRow>(None)
            .await
            .map_err(|e| unavailable("reading subscription", &e))?
            .map(SubRow::into_subscription)
            .transpose()
    }

    async fn one_text(
        &self,
        sql: &str,
        arg: String,
        column: &str,
    ) -> Result<Option<String>, StoreError> {
        stmt(&self.0, sql, &[text(arg)])?
            .first::<Option<String>>(Some(column))
            .await
            .map(Option::flatten)
            .map_err(|e| unavailable("reading billing row", &e))
    }
}

#[async_trait(?Send)]
impl BillingStore for D1BillingStore {
    async fn event_processed(&self, event_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .one_text(
                "SELECT id FROM stripe_events WHERE id = ?1",
                event_id.to_owned(),
                "id",
            )
            .await?
            .is_some())
    }

    async fn subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        let sql =
            format!("SELECT {SUB_COLUMNS} FROM subscriptions WHERE stripe_subscription_id = ?1");
        self.one_sub(&sql, id.to_owned()).await
    }

    async fn latest_subscription(&self, user: UserId) -> Result<Option<Subscription>, StoreError> {
        let sql = format!(
            "SELECT {SUB_COLUMNS} FROM subscriptions WHERE user_id = ?1 \
             ORDER BY last_event_created DESC LIMIT 1"
        );
        self.one_sub(&sql, user.to_string()).await
    }

    async fn user_by_customer(&self, customer_id: &str) -> Result<Option<UserId>, StoreError> {
        Ok(self
            .one_text(
                "SELECT id FROM users WHERE stripe_customer_id = ?1",
                customer_id.to_owned(),
                "id",
            )
            .await?
            .as_deref()
            .and_then(UserId::parse))
    }

    async fn customer_of(&self, user: UserId) -> Result<Option<String>, StoreError> {
        self.one_text(
            "SELECT stripe_customer_id FROM users WHERE id = ?1",
            user.to_string(),
            "stripe_customer_id",
        )
        .await
    }

    async fn record(
        &self,
        event: &EventRecord,
        change: Option<&BillingChange>,
    ) -> Result<RecordOutcome, StoreError> {
        let mut batch =
            vec![stmt(
            &self.0,
            "INSERT INTO stripe_events (id, type, created, processed_at) VALUES (?1, ?2, ?3, ?4)",
            &[text(&event.id), text(&event.kind), int(event.created), int(event.processed_at)],
        )?];
        if let Some(c) = change {
            let s = &c.subscription;
            // An account deleted (or being deleted) gets no subscription row back from a late
            // event (Stripe's `customer.subscription.deleted` after the cancellation): the event
            // is recorded and answered 200, and nothing of the account is stored again.
            batch.push(stmt(
                &self.0,
                "INSERT INTO subscriptions (id, user_id, stripe_subscription_id, stripe_customer_id, \
                    tier, status, seats, current_period_end, cancel_at_period_end, \
                    last_event_created, created_at, updated_at) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11 \
                 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?2) \
                   AND NOT EXISTS (SELECT 1 FROM account_deletions WHERE user_id = ?2) \
                 ON CONFLICT (stripe_subscription_id) DO UPDATE SET \
                    stripe_customer_id = excluded.stripe_customer_id, tier = excluded.tier, \
                    status = excluded.status, seats = excluded.seats, \
                    current_period_end = excluded.current_period_end, \
                    cancel_at_period_end = excluded.cancel_at_period_end, \
                    last_event_created = excluded.last_event_created, \
                    updated_at = excluded.updated_at \
                 WHERE excluded.last_event_created >= subscriptions.last_event_created",
                &[
                    text(new_uuid(&CryptoRandom).to_string()),
                    text(s.user_id.to_string()),
                    text(&s.stripe_subscription_id),
                    opt_text(s.customer_id.as_deref()),
                    text(s.tier.as_str()),
                    text(&s.status),
                    int(i64::from(s.seats)),
                    s.current_period_end.map_or(JsValue::NULL, int),
                    int(i64::from(s.cancel_at_period_end)),
                    int(s.last_event_created),
                    int(event.processed_at),
                ],
            )?);
            // The user follows only if this event is now the subscription's latest.
            batch.push(stmt(
                &self.0,
                "UPDATE users SET tier = ?1, tier_until = ?2, \
                    stripe_customer_id = COALESCE(?3, stripe_customer_id), updated_at = ?4 \
                 WHERE id = ?5 AND EXISTS (SELECT 1 FROM subscriptions \
                    WHERE stripe_subscription_id = ?6 AND last_event_created = ?7)",
                &[
                    text(c.user_tier.as_str()),
                    c.tier_until.map_or(JsValue::NULL, int),
                    opt_text(s.customer_id.as_deref()),
                    int(event.processed_at),
                    text(s.user_id.to_string()),
                    text(&s.stripe_subscription_id),
                    int(s.last_event_created),
                ],
            )?);
            // A Team subscription in force makes its buyer the owner of a team (the one team
            // of that owner moves to the newest such subscription), and the owner takes a seat.
            if s.tier == Tier::Team && c.user_tier == Tier::Team {
                let latest = "EXISTS (SELECT 1 FROM subscriptions \
                    WHERE stripe_subscription_id = ?3 AND last_event_created = ?5)";
                let args = [
                    text(new_uuid(&CryptoRandom).to_string()),
                    text(s.user_id.to_string()),
                    text(&s.stripe_subscription_id),
                    int(event.processed_at),
                    int(s.last_event_created),
                ];
                batch.push(stmt(
                    &self.0,
                    &format!(
                        "UPDATE teams SET stripe_subscription_id = ?3, updated_at = ?4 \
                         WHERE owner_id = ?2 AND stripe_subscription_id != ?3 AND {latest} \
                           AND ?1 IS NOT NULL"
                    ),
                    &args,
                )?);
                batch.push(stmt(
                    &self.0,
                    &format!(
                        "INSERT INTO teams (id, owner_id, stripe_subscription_id, created_at, \
                            updated_at) SELECT ?1, ?2, ?3, ?4, ?4 \
                         WHERE {latest} AND NOT EXISTS (SELECT 1 FROM teams WHERE owner_id = ?2)"
                    ),
                    &args,
                )?);
                batch.push(stmt(
                    &self.0,
                    "INSERT INTO team_members (team_id, user_id, role, joined_at) \
                     SELECT id, owner_id, 'owner', ?2 FROM teams WHERE owner_id = ?1 \
                     ON CONFLICT DO NOTHING",
                    &[text(s.user_id.to_string()), int(event.processed_at)],
                )?);
            }
        }
        match self.0.batch(batch).await {
            Ok(_) => Ok(RecordOutcome::Applied),
            // Another delivery of the same event won the race; the batch rolled back whole.
            Err(e) if is_unique_violation(&e) && event_id_conflict(&e) => {
                Ok(RecordOutcome::Duplicate)
            }
            Err(e) => Err(unavailable("recording webhook event", &e)),
        }
    }

    async fn mark_cancel_at_period_end(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        stmt(
            &self.0,
            "UPDATE subscriptions SET cancel_at_period_end = 1, updated_at = ?1 \
             WHERE stripe_subscription_id = ?2",
            &[int(now_ms), text(id)],
        )?
        .run()
        .await
        .map_err(|e| unavailable("marking cancellation", &e))?;
        Ok(())
    }
}

fn event_id_conflict(e: &worker::Error) -> bool {
    let text = match e {
        worker::Error::D1(d1) => format!("{} {d1:?}", d1.cause()),
        other => other.to_string(),
    };
    text.contains("stripe_events.id")
}
