//! Durable Objects of the Adiuva Cloud API.
//!
//! Each class is a thin shell (compiled only for wasm32) over logic that is plain Rust and
//! tested natively here:
//! - `RateLimiter` — exact GCRA counters, one object per key ([`rate_limiter`]).
//! - `ChatSession` — per-user WebSocket chat sessions: the protocol and state machine are here
//!   ([`chat_session`]); the class is in the `workers` crate, which has the adapters it needs.
//! - `VectorIndex` — the local per-user vector store: exact cosine search over the user's
//!   vectors in the object's SQLite storage, one object per user ([`vector_index`]).
//!
//! The `workers` cdylib re-exports the classes; their names match `class_name` in
//! `wrangler.toml` and its `[[migrations]]`.

pub mod chat_session;
pub mod rate_limiter;
pub mod vector_index;

#[cfg(target_arch = "wasm32")]
mod classes;

#[cfg(target_arch = "wasm32")]
pub use classes::{RateLimiter, VectorIndex};
