//! Route handlers: parse the input into domain types, call a service, serialise the answer.
// Every handler has the router's async signature, whether or not it awaits.
#![allow(clippy::unused_async)]

pub mod accounts;
pub mod admin;
pub mod agents;
pub mod auth;
pub mod backup;
pub mod batches;
pub mod billing;
pub mod chat;
pub mod health;
pub mod mfa;
pub mod plugins;
pub mod records;
pub mod sso;
pub mod teams;
pub mod vectors;
