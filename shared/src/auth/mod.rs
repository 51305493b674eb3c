//! Accounts and authentication: password hashing, access tokens, refresh-token rotation with
//! reuse detection, login throttling, WebSocket tickets.

pub mod passwords;
mod service;
pub mod tokens;

pub use service::{
    AuthService, AuthSettings, LOGIN_ACCOUNT_RULE, LOGIN_IP_RULE, MFA_TOKEN_TTL_MS,
    REFRESH_GRACE_MS,
};
