//! Platform-free core of the Adiuva Cloud API.
//!
//! Everything that can be decided without a platform lives here and is tested natively: the
//! wire types ([`api`]), domain values ([`domain`]), the one error enum ([`error`]), typed
//! configuration ([`config`]), CORS and body-parsing rules, rate-limit arithmetic, the ports the
//! platform must provide ([`ports`]) and the services built on them (one module per feature:
//! [`auth`], [`accounts`], [`backup`], [`storage`], [`chat`], [`marketplace`], …). This crate
//! never depends on `worker` or `wasm-bindgen`; the `workers` crate adapts it to Cloudflare.
#![deny(missing_docs)]

pub mod accounts;
pub mod admin;
pub mod api;
pub mod auth;
pub mod backup;
pub mod billing;
pub mod chat;
pub mod config;
pub mod cors;
pub mod dcpe;
pub mod do_protocol;
pub mod domain;
pub mod email;
pub mod error;
pub mod home;
pub mod housekeeping;
pub mod input;
pub mod keys;
pub mod marketplace;
pub mod oidc;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod ports;
pub mod rate_limit;
pub mod redact;
pub mod routes;
pub mod storage;
pub mod teams;
pub mod tiers;
pub mod vectorize;
pub mod vectors;

#[cfg(any(test, feature = "test-utils"))]
pub mod testing;

pub use error::{AppError, AppResult, FieldError};

/// The API's version, reported by `/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
