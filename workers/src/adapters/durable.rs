//! Durable Object adapters.

use std::rc::Rc;

use async_trait::async_trait;
use shared::do_protocol::{RateCheck, RATE_LIMITER_CHECK_PATH};
use shared::ports::{RateLimiter, StoreError};
use shared::rate_limit::{RateDecision, RateOp, RateRule};
use worker::{Method, ObjectNamespace, Request, RequestInit};

use super::{unavailable, Hops};

/// Exact counters in the `RateLimiter` Durable Object: one object per key, `key#bucket` naming
/// the counter inside it. Counters of a user live in the user's home; these are the ones that
/// belong to nobody's home (an account's login failures, a client address).
pub struct DurableRateLimiter {
    ns: ObjectNamespace,
    hops: Rc<Hops>,
}

impl DurableRateLimiter {
    /// Counters in `ns`, counted in `hops`.
    pub fn new(ns: ObjectNamespace, hops: Rc<Hops>) -> Self {
        Self { ns, hops }
    }
}

#[async_trait(?Send)]
impl RateLimiter for DurableRateLimiter {
    async fn check(
        &self,
        key: &str,
        rule: RateRule,
        op: RateOp,
    ) -> Result<RateDecision, StoreError> {
        let (object, bucket) = key.split_once('#').unwrap_or((key, "default"));
        let body = serde_json::to_string(&RateCheck {
            bucket: bucket.to_owned(),
            rule,
            op,
        })
        .map_err(|e| StoreError::Unavailable(format!("encoding rate check: {e}")))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(wasm_bindgen::JsValue::from_str(&body)));
        let req = Request::new_with_init(
            &format!("https://rate-limiter{RATE_LIMITER_CHECK_PATH}"),
            &init,
        )
        .map_err(|e| unavailable("building rate check", &e))?;
        let stub = self
            .ns
            .id_from_name(object)
            .and_then(|id| id.get_stub())
            .map_err(|e| unavailable("rate limiter stub", &e))?;
        self.hops.durable_object();
        let resp = stub
            .fetch_with_request(req)
            .await
            .map_err(|e| unavailable("rate limiter fetch", &e))?;
        if resp.status_code() != 200 {
            return Err(StoreError::Unavailable(format!(
                "rate limiter answered {}",
                resp.status_code()
            )));
        }
        super::response_json::<RateDecision>(resp)
            .await
            .map_err(|e| unavailable("decoding rate decision", &e))
    }
}
