//! Adapters: the core's ports over the Workers platform.
//!
//! Platform errors are translated here into the ports' domain errors; nothing above this
//! module sees a `worker::Error`.

mod body;
mod d1;
mod durable;
mod fetch;
mod home;
mod r2;
mod vectorize;

pub use body::{request_json, response_json};
pub use d1::{
    D1AccountLoader, D1AccountTokenStore, D1AdminStore, D1BillingStore, D1DeletionStore,
    D1ExportStore, D1HousekeepingStore, D1MfaStore, D1PluginAgents, D1PluginStore,
    D1RefreshTokenStore, D1SecurityLog, D1SsoStore, D1TeamStore, D1TicketStore, D1UserStore, Db,
};
pub use durable::DurableRateLimiter;
pub use fetch::FetchHttpClient;
pub use home::{HomeClient, HomeSeen};
pub use r2::R2BlobStore;
pub use vectorize::VectorizeIndex;

use std::cell::Cell;

use shared::ports::{Clock, Random, StoreError};

/// The Workers clock (`Date.now()`; frozen during a request's synchronous execution).
#[derive(Debug, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        #[allow(clippy::cast_possible_truncation)]
        let now = js_sys::Date::now() as i64;
        now
    }
}

/// `crypto.getRandomValues` through `getrandom`.
#[derive(Debug, Clone, Copy)]
pub struct CryptoRandom;

impl Random for CryptoRandom {
    fn fill(&self, dest: &mut [u8]) {
        // The Web Crypto API cannot fail for buffers this small; a failure here is a broken
        // runtime, and continuing with zeroed bytes would be worse than aborting the request.
        getrandom::getrandom(dest).expect("crypto.getRandomValues is available in Workers");
    }
}

/// What one request (or one Durable Object event) cost in calls to other services: the
/// hop budget, counted by the adapters and logged with the request.
#[derive(Debug, Default)]
pub struct Hops {
    do_calls: Cell<u32>,
    d1_calls: Cell<u32>,
}

impl Hops {
    /// One Durable Object round trip.
    pub fn durable_object(&self) {
        self.do_calls.set(self.do_calls.get() + 1);
    }

    /// One D1 statement (or `n`, reported by a Durable Object for its own).
    pub fn d1(&self) {
        self.d1_by(1);
    }

    /// `n` D1 statements.
    pub fn d1_by(&self, n: u32) {
        self.d1_calls.set(self.d1_calls.get().saturating_add(n));
    }

    /// Durable Object round trips so far.
    pub fn do_calls(&self) -> u32 {
        self.do_calls.get()
    }

    /// D1 statements so far.
    pub fn d1_calls(&self) -> u32 {
        self.d1_calls.get()
    }
}

/// A platform failure as a store outage, with context for the logs.
pub(crate) fn unavailable(what: &str, e: &worker::Error) -> StoreError {
    StoreError::Unavailable(format!("{what}: {e}"))
}
