//! Adapters: the core's ports over the Workers platform.
//!
//! Platform errors are translated here into the ports' domain errors; nothing above this
//! module sees a `worker::Error`.

mod d1;
mod d1_backups;
mod d1_billing;
mod d1_plugins;
mod d1_records;
mod d1_tiers;
mod d1_uploads;
mod d1_vectors;
mod durable;
mod fetch;
mod r2;
mod vector_do;
mod vectorize;

pub use d1::{D1RefreshTokenStore, D1TicketStore, D1UserStore};
pub use d1_backups::D1BackupStore;
pub use d1_billing::D1BillingStore;
pub use d1_plugins::D1PluginStore;
pub use d1_records::D1RecordStore;
pub use d1_tiers::D1TierStore;
pub use d1_uploads::D1UploadStore;
pub use d1_vectors::D1VectorMetaStore;
pub use durable::DurableRateLimiter;
pub use fetch::FetchHttpClient;
pub use r2::R2BlobStore;
pub use vector_do::DurableVectorIndex;
pub use vectorize::VectorizeIndex;

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

/// A platform failure as a store outage, with context for the logs.
pub(crate) fn unavailable(what: &str, e: &worker::Error) -> StoreError {
    StoreError::Unavailable(format!("{what}: {e}"))
}
