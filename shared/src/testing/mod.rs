//! In-memory fakes of every port, for native tests (feature `test-utils`), one module per
//! feature: [`auth`], [`storage`], [`vectors`], [`llm`], [`http`], [`billing`], [`marketplace`].
//!
//! Each fake keeps the contract its port documents (conflicts, atomic rotation, single use),
//! so services tested against them behave as they do against D1, R2 and Durable Objects. The
//! user's home has no fake: its logic runs natively over SQLite in the `durable-objects` crate.

use std::cell::Cell;

use sha2::{Digest, Sha256};

use crate::ports::{Clock, Random};

mod admin;
mod auth;
mod billing;
mod http;
mod llm;
mod marketplace;
mod storage;
mod vectors;

pub use admin::InMemoryAdminStore;
pub use auth::{
    InMemoryAccountTokenStore, InMemoryMfaStore, InMemoryRateLimiter, InMemoryRefreshTokenStore,
    InMemorySecurityLog, InMemoryTicketStore, InMemoryUserStore, RecordingMailer,
};
pub use billing::{FakePayments, InMemoryBillingStore};
pub use http::ScriptedHttp;
pub use llm::ScriptedLlm;
pub use marketplace::InMemoryPluginStore;
pub use storage::InMemoryBlobStore;
pub use vectors::InMemoryVectorIndex;

/// A clock that only moves when told.
#[derive(Debug)]
pub struct FixedClock(Cell<i64>);

impl FixedClock {
    /// A clock at `now_ms`.
    pub fn at(now_ms: i64) -> Self {
        Self(Cell::new(now_ms))
    }
    /// Moves the clock forward.
    pub fn advance(&self, ms: i64) {
        self.0.set(self.0.get() + ms);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.get()
    }
}

/// Deterministic, distinct "random" bytes (a counter through SHA-256).
#[derive(Debug)]
pub struct SeqRandom(Cell<u64>);

impl SeqRandom {
    /// A sequence starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(Cell::new(seed))
    }
}

impl Random for SeqRandom {
    fn fill(&self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(32) {
            let n = self.0.get();
            self.0.set(n + 1);
            let block = Sha256::digest(n.to_le_bytes());
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_random_never_repeats_a_block() {
        let r = SeqRandom::new(1);
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        r.fill(&mut a);
        r.fill(&mut b);
        assert_ne!(a, b);
    }
}
