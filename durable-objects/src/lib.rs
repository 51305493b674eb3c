//! Durable Objects of the Adiuva Cloud API.
//!
//! Each class is a thin shell (compiled only for wasm32) over logic that is plain Rust and
//! tested natively here:
//! - `UserHome` — one object per user, the authority for everything that belongs to the user
//!   ([`home`]: account copy, limiter, usage, reservations, record/backup/upload/vector
//!   metadata, over SQLite; [`chat_session`]: the WebSocket chat protocol and run state;
//!   [`vector_index`]: exact cosine search). The class is in the `workers` crate, which has the
//!   adapters it needs.
//! - `RateLimiter` — exact GCRA counters for keys that belong to no user's home (an account's
//!   login failures, a client address), one object per key ([`rate_limiter`]).
//!
//! The `workers` cdylib re-exports the classes; their names match `class_name` in
//! `wrangler.toml` and its `[[migrations]]`.

pub mod batches;
pub mod chat_session;
pub mod home;
pub mod rate_limiter;
pub mod vector_index;

#[cfg(target_arch = "wasm32")]
mod classes;

#[cfg(target_arch = "wasm32")]
pub use classes::RateLimiter;
