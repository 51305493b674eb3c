//! Logic of the `RateLimiter` Durable Object: GCRA counters that forget idle keys.
//!
//! A Durable Object handles one event at a time and SQLite-backed storage calls are
//! synchronous, so [`apply`] runs start to finish without interleaving: N concurrent requests
//! against a limit L admit exactly L. A counter whose TAT lies in the past is equivalent to a
//! fresh one, so [`expire`] deletes it; the object sets an alarm for the latest TAT, and an idle
//! object ends with empty storage.

use shared::do_protocol::RateCheck;
use shared::rate_limit::{gcra, RateDecision};

/// Storage of the counters' theoretical arrival times (nanoseconds since the epoch).
pub trait TatStore {
    /// The storage's failure.
    type Error;
    /// The TAT of `bucket`, if stored.
    fn get(&self, bucket: &str) -> Result<Option<i64>, Self::Error>;
    /// Stores the TAT of `bucket`.
    fn set(&self, bucket: &str, tat_ns: i64) -> Result<(), Self::Error>;
    /// Deletes every counter with a TAT at or before `now_ns`.
    fn delete_through(&self, now_ns: i64) -> Result<(), Self::Error>;
    /// The latest stored TAT, if any.
    fn max_tat(&self) -> Result<Option<i64>, Self::Error>;
}

/// Applies a check at `now_ms`. Returns the decision and, when counters remain, the epoch ms at
/// which the object should next run [`expire`].
///
/// # Errors
/// The store's failures.
pub fn apply<S: TatStore>(
    store: &S,
    now_ms: i64,
    check: &RateCheck,
) -> Result<(RateDecision, Option<i64>), S::Error> {
    let (decision, tat) = gcra(store.get(&check.bucket)?, now_ms, check.rule, check.op);
    store.set(&check.bucket, tat)?;
    Ok((decision, next_alarm(store)?))
}

/// Forgets counters that have fully drained by `now_ms`; returns when to run again, if ever.
///
/// # Errors
/// The store's failures.
pub fn expire<S: TatStore>(store: &S, now_ms: i64) -> Result<Option<i64>, S::Error> {
    store.delete_through(now_ms.saturating_mul(1_000_000))?;
    next_alarm(store)
}

fn next_alarm<S: TatStore>(store: &S) -> Result<Option<i64>, S::Error> {
    // Round up to the next whole millisecond so the alarm never fires before the TAT.
    Ok(store.max_tat()?.map(|ns| (ns + 999_999) / 1_000_000))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use shared::rate_limit::{RateOp, RateRule};

    use super::*;

    #[derive(Default)]
    struct MapStore(RefCell<HashMap<String, i64>>);

    impl TatStore for MapStore {
        type Error = std::convert::Infallible;
        fn get(&self, bucket: &str) -> Result<Option<i64>, Self::Error> {
            Ok(self.0.borrow().get(bucket).copied())
        }
        fn set(&self, bucket: &str, tat_ns: i64) -> Result<(), Self::Error> {
            self.0.borrow_mut().insert(bucket.to_owned(), tat_ns);
            Ok(())
        }
        fn delete_through(&self, now_ns: i64) -> Result<(), Self::Error> {
            self.0.borrow_mut().retain(|_, t| *t > now_ns);
            Ok(())
        }
        fn max_tat(&self) -> Result<Option<i64>, Self::Error> {
            Ok(self.0.borrow().values().copied().max())
        }
    }

    fn check(bucket: &str, limit: u32, op: RateOp) -> RateCheck {
        RateCheck {
            bucket: bucket.into(),
            rule: RateRule::per_minute(limit),
            op,
        }
    }

    #[test]
    fn buckets_of_one_object_count_independently() {
        let s = MapStore::default();
        for _ in 0..3 {
            assert!(
                apply(&s, 0, &check("a", 3, RateOp::Acquire))
                    .unwrap()
                    .0
                    .allowed
            );
        }
        assert!(
            !apply(&s, 0, &check("a", 3, RateOp::Acquire))
                .unwrap()
                .0
                .allowed
        );
        assert!(
            apply(&s, 0, &check("b", 3, RateOp::Acquire))
                .unwrap()
                .0
                .allowed
        );
    }

    #[test]
    fn the_alarm_is_set_for_when_the_last_counter_drains() {
        let s = MapStore::default();
        let (_, alarm) = apply(&s, 1_000, &check("a", 60, RateOp::Acquire)).unwrap();
        // One unit of a 60/min limit drains in one second.
        assert_eq!(alarm, Some(2_000));
    }

    #[test]
    fn an_idle_object_forgets_every_counter() {
        let s = MapStore::default();
        apply(&s, 0, &check("a", 60, RateOp::Acquire)).unwrap();
        apply(&s, 0, &check("b", 2, RateOp::Acquire)).unwrap();
        assert_eq!(expire(&s, 1_000).unwrap(), Some(30_000));
        assert_eq!(s.0.borrow().len(), 1);
        assert_eq!(expire(&s, 30_000).unwrap(), None);
        assert!(s.0.borrow().is_empty());
    }
}
