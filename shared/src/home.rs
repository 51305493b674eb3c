//! The user's home: one `UserHome` Durable Object per user (named by the user id) is the
//! authority for everything that belongs to that user — the tier in force (a cache of D1's
//! billing state), the request limiter, exact usage, the metadata of records, backups, uploads
//! and vectors, revoked sessions and the user's sockets. This module is the protocol between
//! the worker and a home, and the [`HomePort`] through which the core's services speak it.
//!
//! ## One hop
//! Every authenticated request makes one call to its caller's home: the call names an
//! operation ([`HomeOp`]) and asks, with `admit`, to take a unit of the user's request
//! allowance first. The home answers the operation together with the admission decision and
//! the caller's [`HomePrincipal`] (tier, seats, role), so no other lookup is needed. A storage
//! write makes a second call to commit (or release) what the first reserved, around its own R2
//! work.
//!
//! ## Wire shape
//! `POST https://home/call` with a [`HomeRequest`]; the answer is a [`HomeResponse`] whose
//! `ok` holds the operation's answer as JSON, or whose `error` holds a [`WireError`] — the
//! envelope the worker renders as it is, with its stable code.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::{Role, Tier, UserId};
use crate::error::AppError;
use crate::rate_limit::RateDecision;

/// Path of a home's call endpoint.
pub const HOME_CALL_PATH: &str = "/call";
/// Path of a home's WebSocket endpoint (`?kind=chat|sync`).
pub const HOME_CONNECT_PATH: &str = "/connect";
/// Header carrying the authenticated user of a socket handshake from the worker.
pub const HOME_USER_HEADER: &str = "X-Adiuva-User";
/// Header carrying the session (refresh family) of a socket handshake from the worker.
pub const HOME_SESSION_HEADER: &str = "X-Adiuva-Session";

/// One call to a home.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HomeRequest {
    /// The home's user.
    pub user: UserId,
    /// The caller's session (the refresh family of its token); `None` for the service's own
    /// calls (billing pushes, housekeeping).
    #[serde(default)]
    pub sid: Option<uuid::Uuid>,
    /// Whether the call takes a unit of the user's request allowance before anything else.
    #[serde(default)]
    pub admit: bool,
    /// The operation's name ([`HomeOp::NAME`]).
    pub op: String,
    /// The operation's arguments.
    pub args: serde_json::Value,
}

/// A home's answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HomeResponse {
    /// The admission decision, when the call asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<RateDecision>,
    /// The caller as the home knows it, when the call was authorised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<HomePrincipal>,
    /// D1 statements the home ran for this call (refreshing its copy of the account).
    #[serde(default)]
    pub d1_calls: u32,
    /// The operation's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<serde_json::Value>,
    /// Why the operation was refused or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WireError>,
}

/// The authenticated caller: the tier in force now, from the home's copy of D1's billing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomePrincipal {
    /// The user.
    pub user_id: UserId,
    /// The tier in force now.
    pub tier: Tier,
    /// Seats (team; 1 otherwise).
    pub seats: u32,
    /// The account's role.
    pub role: Role,
}

/// An error as it crosses from a home to the worker: everything the envelope needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    /// HTTP status.
    pub status: u16,
    /// Stable code.
    pub code: String,
    /// Client-facing message.
    pub message: String,
    /// Structured details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    /// Extra headers (`Retry-After`, `WWW-Authenticate`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

impl WireError {
    /// The wire form of `e` (its client-facing parts only; internal detail stays behind).
    pub fn of(e: &AppError) -> Self {
        let body = e.body("");
        Self {
            status: e.status(),
            code: body.error.code,
            message: body.error.message,
            details: body.error.details,
            headers: e
                .headers()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        }
    }

    /// The error to answer the client with.
    pub fn into_app_error(self) -> AppError {
        AppError::Relayed(Box::new(self))
    }
}

/// An operation a home performs, with the type of its answer.
pub trait HomeOp: Serialize + DeserializeOwned {
    /// Its name on the wire.
    const NAME: &'static str;
    /// What it answers.
    type Answer: Serialize + DeserializeOwned;
}

/// How the core reaches the caller's home. The adapter of a request takes the admission with
/// its first call (so a request is admitted once, however many calls it makes); the service's
/// own adapters (billing pushes) never take one.
#[async_trait(?Send)]
pub trait HomePort {
    /// Performs the operation named `name` with `args`; answers its JSON answer.
    async fn call_json(
        &self,
        name: &'static str,
        args: serde_json::Value,
    ) -> Result<serde_json::Value, AppError>;
}

/// Performs `op` at the home behind `port`.
///
/// # Errors
/// The home's refusal, or a failure to reach it or to read its answer.
pub async fn call<O: HomeOp>(port: &dyn HomePort, op: &O) -> Result<O::Answer, AppError> {
    let args = serde_json::to_value(op)
        .map_err(|e| AppError::internal(format!("encoding home op {}: {e}", O::NAME)))?;
    let answer = port.call_json(O::NAME, args).await?;
    serde_json::from_value(answer)
        .map_err(|e| AppError::internal(format!("decoding home answer of {}: {e}", O::NAME)))
}

pub mod ops;
