//! Messages between the worker and its Durable Objects (JSON over the stub's `fetch`).

use serde::{Deserialize, Serialize};

use crate::rate_limit::{RateOp, RateRule};

/// Path of the rate limiter's only endpoint.
pub const RATE_LIMITER_CHECK_PATH: &str = "/check";

/// `POST /check` to a `RateLimiter` object: apply `op` to the counter `bucket`.
///
/// One object serves one key (a user, an account, an IP); `bucket` separates independent
/// counters of that key (e.g. `requests`, `login_failures`). The answer is a
/// [`RateDecision`](crate::rate_limit::RateDecision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateCheck {
    /// Counter name inside the object.
    pub bucket: String,
    /// The limit to apply.
    pub rule: RateRule,
    /// What to do.
    pub op: RateOp,
}
