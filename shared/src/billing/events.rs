//! The parts of Stripe's event objects the lifecycle needs, read tolerantly: expanded or
//! plain ids, and the fields that moved between API versions (period end on the subscription
//! or on its items; the invoice's subscription at top level or under `parent`).

use serde::Deserialize;
use serde_json::Value;

/// An event envelope.
#[derive(Debug, Deserialize)]
pub(crate) struct RawEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Unix seconds.
    pub created: i64,
    pub data: RawData,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawData {
    pub object: Value,
}

/// A string id, or the `id` of an expanded object.
fn id_at(v: &Value, pointer: &str) -> Option<String> {
    let field = v.pointer(pointer)?;
    field
        .as_str()
        .or_else(|| field.get("id").and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn str_at(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn u32_at(v: &Value, pointer: &str) -> Option<u32> {
    let field = v.pointer(pointer)?;
    field
        .as_u64()
        .or_else(|| field.as_str().and_then(|s| s.parse().ok()))
        .and_then(|n| u32::try_from(n).ok())
}

/// `checkout.session.completed`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CheckoutCompleted {
    pub mode: Option<String>,
    /// `paid`, `unpaid` (a delayed payment method has not paid yet) or `no_payment_required`.
    pub payment_status: Option<String>,
    pub user: Option<String>,
    pub customer: Option<String>,
    pub subscription: Option<String>,
    pub tier: Option<String>,
    pub seats: Option<u32>,
}

impl CheckoutCompleted {
    /// Whether the session's payment is settled: `paid` or `no_payment_required`. A session
    /// without the field (API versions before it existed) counts as paid, as it was then.
    pub fn is_paid(&self) -> bool {
        self.payment_status
            .as_deref()
            .is_none_or(|s| matches!(s, "paid" | "no_payment_required"))
    }

    pub fn read(o: &Value) -> Self {
        Self {
            mode: str_at(o, "/mode"),
            payment_status: str_at(o, "/payment_status"),
            user: str_at(o, "/client_reference_id").or_else(|| str_at(o, "/metadata/user_id")),
            customer: id_at(o, "/customer"),
            subscription: id_at(o, "/subscription"),
            tier: str_at(o, "/metadata/tier"),
            seats: u32_at(o, "/metadata/seats"),
        }
    }
}

/// `customer.subscription.*`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SubscriptionObject {
    pub id: Option<String>,
    pub customer: Option<String>,
    pub status: Option<String>,
    pub cancel_at_period_end: bool,
    /// Unix seconds.
    pub current_period_end: Option<i64>,
    pub seats: Option<u32>,
    pub price_id: Option<String>,
    pub meta_user: Option<String>,
    pub meta_tier: Option<String>,
}

impl SubscriptionObject {
    pub fn read(o: &Value) -> Self {
        Self {
            id: str_at(o, "/id"),
            customer: id_at(o, "/customer"),
            status: str_at(o, "/status"),
            cancel_at_period_end: o
                .pointer("/cancel_at_period_end")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            current_period_end: o
                .pointer("/current_period_end")
                .or_else(|| o.pointer("/items/data/0/current_period_end"))
                .and_then(Value::as_i64),
            seats: u32_at(o, "/items/data/0/quantity").or_else(|| u32_at(o, "/quantity")),
            price_id: id_at(o, "/items/data/0/price"),
            meta_user: str_at(o, "/metadata/user_id"),
            meta_tier: str_at(o, "/metadata/tier"),
        }
    }
}

/// `invoice.paid` / `invoice.payment_failed`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct InvoiceObject {
    pub subscription: Option<String>,
    /// Unix seconds: the end of the period the invoice pays for.
    pub period_end: Option<i64>,
}

impl InvoiceObject {
    pub fn read(o: &Value) -> Self {
        Self {
            subscription: id_at(o, "/subscription")
                .or_else(|| id_at(o, "/parent/subscription_details/subscription")),
            period_end: o
                .pointer("/lines/data/0/period/end")
                .and_then(Value::as_i64),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ids_may_be_plain_or_expanded() {
        let o = json!({"customer": {"id": "cus_1", "object": "customer"}, "subscription": "sub_1"});
        let c = CheckoutCompleted::read(&o);
        assert_eq!(c.customer.as_deref(), Some("cus_1"));
        assert_eq!(c.subscription.as_deref(), Some("sub_1"));
    }

    #[test]
    fn the_period_end_is_found_on_the_subscription_or_its_items() {
        let old = json!({"id": "sub_1", "current_period_end": 10});
        let new = json!({"id": "sub_1", "items": {"data": [{"current_period_end": 20, "quantity": 3, "price": {"id": "price_t"}}]}});
        assert_eq!(SubscriptionObject::read(&old).current_period_end, Some(10));
        let n = SubscriptionObject::read(&new);
        assert_eq!(n.current_period_end, Some(20));
        assert_eq!(n.seats, Some(3));
        assert_eq!(n.price_id.as_deref(), Some("price_t"));
    }

    #[test]
    fn the_invoice_subscription_is_found_at_either_place() {
        let old = json!({"subscription": "sub_a"});
        let new = json!({"parent": {"subscription_details": {"subscription": "sub_b"}}, "lines": {"data": [{"period": {"end": 99}}]}});
        assert_eq!(
            InvoiceObject::read(&old).subscription.as_deref(),
            Some("sub_a")
        );
        let n = InvoiceObject::read(&new);
        assert_eq!(n.subscription.as_deref(), Some("sub_b"));
        assert_eq!(n.period_end, Some(99));
    }

    #[test]
    fn seats_in_metadata_may_be_strings() {
        let c = CheckoutCompleted::read(&json!({"metadata": {"seats": "4", "tier": "team"}}));
        assert_eq!(c.seats, Some(4));
    }
}
