//! Exact rate limiting with GCRA (the generic cell rate algorithm).
//!
//! Why GCRA: its whole state is one integer per key (the "theoretical arrival time"), so a
//! Durable Object can hold millions of keys cheaply and forget a key the moment its TAT is in
//! the past; it admits exactly `limit` requests in a burst and then one every `window / limit`,
//! with no window-boundary doubling as a fixed window has, and without storing a log of
//! timestamps as an exact sliding window must. All arithmetic is in integer nanoseconds, so a
//! burst admits exactly `limit` requests — never `limit ± 1` from rounding.

use serde::{Deserialize, Serialize};

const NS_PER_MS: i64 = 1_000_000;

/// The counter key of a client address, for the per-address throttles (login, registration,
/// password reset, SSO starts): an IPv4 address as it is, an IPv6 address by its /64 (one
/// subscriber's usual allocation, so rotating addresses within it gains nothing); no address
/// at all counts as `unknown`. Anything that is not an address (a proxy's garbage) is kept
/// as sent, at most 64 bytes of it.
pub fn address_key(ip: Option<&str>) -> String {
    let Some(ip) = ip.map(str::trim).filter(|ip| !ip.is_empty()) else {
        return "unknown".to_owned();
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4.to_string();
            }
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.chars().take(64).collect(),
    }
}

/// A limit: `limit` requests per `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateRule {
    /// Requests allowed per window (at least 1).
    pub limit: u32,
    /// Window length in milliseconds (at least 1).
    pub window_ms: i64,
}

impl RateRule {
    /// `limit` requests per minute.
    pub fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            window_ms: 60_000,
        }
    }

    fn interval_ns(self) -> i64 {
        (self.window_ms.max(1) * NS_PER_MS / i64::from(self.limit.max(1))).max(1)
    }

    fn capacity_ns(self) -> i64 {
        self.interval_ns() * i64::from(self.limit.max(1))
    }
}

/// What to do with a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateOp {
    /// Take one unit if allowed (a request).
    Acquire,
    /// Report whether one unit would be allowed, changing nothing.
    Peek,
    /// Take one unit whether or not allowed (e.g. a failed login), capped at a full bucket.
    Penalize,
    /// Give back one unit taken by an earlier [`RateOp::Acquire`] (the guarded work turned out
    /// not to count, e.g. a login whose password was right). Never more than a full bucket.
    Refund,
}

/// The answer of a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The rule's limit.
    pub limit: u32,
    /// Units still available right now after this operation.
    pub remaining: u32,
    /// When not allowed: milliseconds until one unit is available (0 when allowed).
    pub retry_after_ms: i64,
}

impl RateDecision {
    /// `Retry-After` in whole seconds, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        u64::try_from((self.retry_after_ms + 999) / 1000)
            .unwrap_or(1)
            .max(1)
    }
}

/// Applies `op` at `now_ms` to a counter whose state is `tat_ns` (`None` for a fresh key).
///
/// Returns the decision and the new state; a state at or before `now` is equivalent to a
/// fresh key and may be dropped.
pub fn gcra(tat_ns: Option<i64>, now_ms: i64, rule: RateRule, op: RateOp) -> (RateDecision, i64) {
    let now = now_ms.saturating_mul(NS_PER_MS);
    let t = rule.interval_ns();
    let cap = rule.capacity_ns();
    let tat = tat_ns.unwrap_or(now).max(now);
    let next = tat + t;
    let allowed = op == RateOp::Refund || next - now <= cap;
    let new_tat = match op {
        RateOp::Acquire if allowed => next,
        RateOp::Acquire | RateOp::Peek => tat,
        RateOp::Penalize => next.min(now + cap),
        RateOp::Refund => (tat - t).max(now),
    };
    // Units available from here: how many more intervals fit before the bucket is full.
    let free_ns = (now + cap - new_tat).max(0);
    let remaining = u32::try_from(free_ns / t)
        .unwrap_or(u32::MAX)
        .min(rule.limit);
    let retry_after_ms = if allowed {
        0
    } else {
        // The first moment at which `next - now <= cap` holds.
        let wait_ns = next - cap - now;
        (wait_ns + NS_PER_MS - 1) / NS_PER_MS
    };
    (
        RateDecision {
            allowed,
            limit: rule.limit,
            remaining,
            retry_after_ms,
        },
        new_tat,
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn an_ipv6_address_counts_by_its_slash_64_and_an_ipv4_address_as_it_is() {
        let a = address_key(Some("2001:db8:1:2:aaaa::1"));
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(address_key(Some("2001:0db8:0001:0002:ffff:1:2:3")), a);
        assert_ne!(address_key(Some("2001:db8:1:3::1")), a);
        assert_eq!(address_key(Some("203.0.113.7")), "203.0.113.7");
        assert_eq!(address_key(Some("::ffff:203.0.113.7")), "203.0.113.7");
        assert_eq!(address_key(None), "unknown");
        assert_eq!(address_key(Some("  ")), "unknown");
        assert_eq!(address_key(Some(&"x".repeat(500))).len(), 64);
    }

    fn run(rule: RateRule, ops: &[(i64, RateOp)]) -> Vec<RateDecision> {
        let mut state = None;
        ops.iter()
            .map(|&(now, op)| {
                let (d, tat) = gcra(state, now, rule, op);
                state = Some(tat);
                d
            })
            .collect()
    }

    #[test]
    fn a_burst_admits_exactly_the_limit() {
        let rule = RateRule::per_minute(20);
        let ds = run(rule, &vec![(1_000, RateOp::Acquire); 25]);
        assert_eq!(ds.iter().filter(|d| d.allowed).count(), 20);
        assert!(ds[..20].iter().all(|d| d.allowed));
        assert_eq!(ds[19].remaining, 0);
        assert_eq!(ds[0].remaining, 19);
        assert!(!ds[20].allowed);
        // One unit frees up every 3 s.
        assert_eq!(ds[20].retry_after_ms, 3_000);
    }

    #[test]
    fn awkward_limits_still_admit_exactly_the_limit() {
        for limit in [1, 3, 7, 60, 120, 1_400, 9_999] {
            let rule = RateRule::per_minute(limit);
            let ds = run(rule, &vec![(5, RateOp::Acquire); limit as usize + 3]);
            assert_eq!(
                ds.iter().filter(|d| d.allowed).count(),
                limit as usize,
                "{limit}"
            );
        }
    }

    #[test]
    fn units_come_back_at_the_emission_rate() {
        let rule = RateRule::per_minute(2);
        let ds = run(
            rule,
            &[
                (0, RateOp::Acquire),
                (0, RateOp::Acquire),
                (0, RateOp::Acquire),
                (29_999, RateOp::Acquire),
                (30_000, RateOp::Acquire),
                (30_000, RateOp::Acquire),
            ],
        );
        let allowed: Vec<bool> = ds.iter().map(|d| d.allowed).collect();
        assert_eq!(allowed, vec![true, true, false, false, true, false]);
        assert_eq!(ds[3].retry_after_ms, 1);
    }

    #[test]
    fn a_full_window_of_idleness_restores_the_whole_limit() {
        let rule = RateRule::per_minute(5);
        let mut ops = vec![(0, RateOp::Acquire); 5];
        ops.push((60_000, RateOp::Peek));
        let ds = run(rule, &ops);
        assert_eq!(ds[5].remaining, 5);
        assert!(ds[5].allowed);
    }

    #[test]
    fn peek_changes_nothing() {
        let rule = RateRule::per_minute(1);
        let (d, tat) = gcra(None, 10, rule, RateOp::Peek);
        assert!(d.allowed);
        assert_eq!(d.remaining, 1);
        assert_eq!(tat, 10 * NS_PER_MS);
    }

    #[test]
    fn penalties_lock_out_and_are_capped_at_a_full_bucket() {
        let rule = RateRule {
            limit: 5,
            window_ms: 900_000,
        };
        let mut ops = vec![(0, RateOp::Penalize); 50];
        ops.push((0, RateOp::Peek));
        let ds = run(rule, &ops);
        let peek = ds.last().unwrap();
        assert!(!peek.allowed);
        // Capped: one interval (3 min) frees a unit however many failures there were.
        assert_eq!(peek.retry_after_ms, 180_000);
    }

    #[test]
    fn a_refund_gives_back_exactly_one_unit_and_never_more_than_the_bucket() {
        let rule = RateRule {
            limit: 3,
            window_ms: 900_000,
        };
        let ds = run(
            rule,
            &[
                (0, RateOp::Acquire),
                (0, RateOp::Acquire),
                (0, RateOp::Acquire),
                (0, RateOp::Acquire),
                (0, RateOp::Refund),
                (0, RateOp::Acquire),
                (0, RateOp::Acquire),
            ],
        );
        let allowed: Vec<bool> = ds.iter().map(|d| d.allowed).collect();
        assert_eq!(allowed, [true, true, true, false, true, true, false]);
        // Refunds on a fresh counter do not raise the bucket above its limit.
        let ds = run(
            rule,
            &[
                (0, RateOp::Refund),
                (0, RateOp::Refund),
                (0, RateOp::Acquire),
                (0, RateOp::Acquire),
                (0, RateOp::Acquire),
                (0, RateOp::Acquire),
            ],
        );
        assert_eq!(ds[1].remaining, 3);
        assert_eq!(ds.iter().filter(|d| d.allowed).count(), 2 + 3);
    }

    #[test]
    fn retry_after_secs_rounds_up_and_is_at_least_one() {
        let d = |ms| RateDecision {
            allowed: false,
            limit: 1,
            remaining: 0,
            retry_after_ms: ms,
        };
        assert_eq!(d(0).retry_after_secs(), 1);
        assert_eq!(d(1).retry_after_secs(), 1);
        assert_eq!(d(1_001).retry_after_secs(), 2);
    }

    proptest! {
        #[test]
        fn admissions_never_exceed_the_burst_plus_the_sustained_rate(
            limit in 1u32..50,
            gaps in proptest::collection::vec(0i64..5_000, 1..300),
        ) {
            let rule = RateRule::per_minute(limit);
            let mut state = None;
            let mut now = 0;
            let mut admitted = Vec::new();
            for g in gaps {
                now += g;
                let (d, tat) = gcra(state, now, rule, RateOp::Acquire);
                state = Some(tat);
                if d.allowed { admitted.push(now); }
            }
            // GCRA's guarantee: between any two admissions at t_i <= t_j, at most
            // `limit + (t_j - t_i) / interval` requests were admitted.
            let l = i64::from(limit);
            for i in 0..admitted.len() {
                for j in i..admitted.len() {
                    let count = i64::try_from(j - i + 1).unwrap();
                    prop_assert!((count - l) * 60_000 <= (admitted[j] - admitted[i]) * l);
                }
            }
        }
    }
}
