//! What a home keeps in memory between the calls of one life of its object.
//!
//! A Durable Object is the only writer of its storage, so a copy of a row it wrote stays true
//! until it writes that row again — which goes through the same [`Home`](super::Home) methods
//! that update the copy. The copies spare the hot path its reads: the account, the revoked
//! sessions and the limiter's counters are read from SQLite once per life, and the sweep of
//! expired reservations runs only when one can have expired. Every write still goes to
//! storage first (the copy is updated after it succeeded), so a new life of the object (after
//! eviction, a restart or a deploy) answers exactly as the old one would have — with one bounded
//! exception: the request limiter's counter is written only once it has run
//! [`LIMITER_LAG_MS`] ahead of the stored one (see [`Tat`]).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};

use shared::home::ops::AccountState;

/// Housekeeping of rows that are harmless when kept (drained limiter counters, revocations
/// older than any token) runs at most this often (ms).
pub const HOUSEKEEPING_EVERY_MS: i64 = 60_000;

/// How far (ms of allowance) a limiter counter may run ahead of its stored value before it is
/// written. A new life of the object can therefore grant at most one second's worth of a user's
/// allowance again (under limit / 60 units: fewer than 4 of a team member's 200 a minute, whose
/// counter is written on every fourth request); for allowances of 60 a minute or less each unit
/// is one second or more, so every unit taken is written and a new life grants nothing again.
/// A write holds the object's answer until storage confirms it, so a high-rate caller no longer
/// pays that on every request.
pub const LIMITER_LAG_MS: i64 = 1_000;

/// A limiter counter's theoretical arrival time (ns): as this life knows it and as storage
/// holds it (`None`: no row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tat {
    pub current: Option<i64>,
    pub stored: Option<i64>,
}

/// The account as stored in the home, with when it was last checked against D1.
#[derive(Debug, Clone)]
pub(super) struct AccountCopy {
    pub account: AccountState,
    pub gone: bool,
    pub checked_at: i64,
}

/// A value read from storage in this life, or not read yet.
#[derive(Debug, Clone, Copy, Default)]
pub(super) enum Known<T> {
    /// Not read yet: ask storage.
    #[default]
    Unread,
    /// As storage holds it.
    Read(T),
}

/// The in-memory copies of one object's life. `Default` is an object that knows nothing yet.
#[derive(Debug, Default)]
pub struct Memo {
    /// The account row (`None`: there is none).
    pub(super) account: RefCell<Known<Option<AccountCopy>>>,
    /// Revoked session ids (`None`: not read yet).
    pub(super) revoked: RefCell<Option<HashSet<uuid::Uuid>>>,
    /// Limiter counters read or written in this life: bucket → its TATs.
    pub(super) tats: RefCell<HashMap<String, Tat>>,
    /// The earliest expiry of a reservation (`None`: there is none).
    pub(super) next_expiry: Cell<Known<Option<i64>>>,
    /// When housekeeping is next due (0: at the first call).
    pub(super) housekeeping_at: Cell<i64>,
}

impl Memo {
    /// Forgets every copy (the storage under them was wiped): the next call reads afresh.
    pub fn forget(&self) {
        *self.account.borrow_mut() = Known::Unread;
        *self.revoked.borrow_mut() = None;
        self.tats.borrow_mut().clear();
        self.next_expiry.set(Known::Unread);
        self.housekeeping_at.set(0);
    }

    /// Notes a reservation expiring at `at`.
    pub(super) fn reserved_until(&self, at: i64) {
        if let Known::Read(next) = self.next_expiry.get() {
            self.next_expiry
                .set(Known::Read(Some(next.map_or(at, |n| n.min(at)))));
        }
    }
}
