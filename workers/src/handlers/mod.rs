//! Route handlers: parse the input into domain types, call a service, serialise the answer.

pub mod auth;
pub mod bench;
pub mod health;
