//! Accounts.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Email, Role, Tier};

/// A user's id (UUID v4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub uuid::Uuid);

impl UserId {
    /// Parses the hyphenated form.
    pub fn parse(s: &str) -> Option<Self> {
        uuid::Uuid::try_parse(s).ok().map(Self)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Normalised email.
    pub email: Email,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Billing tier (the source of truth for gates, through [`User::effective_tier`]).
    pub tier: Tier,
    /// When `tier` lapses to free (a past-due subscription keeps its tier until its period
    /// ends); `None` while it does not lapse.
    pub tier_until: Option<i64>,
    /// Role.
    pub role: Role,
    /// When the address was verified (a verification link followed); `None` until then.
    pub email_verified_at: Option<i64>,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// Last change (epoch ms).
    pub updated_at: i64,
    /// When an administrator suspended the account; `None` while it is not suspended (login
    /// and refresh are refused while it is).
    pub suspended_at: Option<i64>,
}

impl User {
    /// The *paid* tier in force at `now_ms` (billing decisions; gates read the home's tier in
    /// force, which also counts a comp — both through [`super::tier_in_force`]).
    pub fn effective_tier(&self, now_ms: i64) -> Tier {
        super::tier_in_force(self.tier, self.tier_until, None, None, now_ms)
    }
}

/// SHA-256 of a refresh token: the only form in which tokens are stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RefreshTokenHash(pub [u8; 32]);

impl RefreshTokenHash {
    /// Hashes a presented token.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }
}

impl fmt::Debug for RefreshTokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RefreshTokenHash({}…)", hex::encode(&self.0[..4]))
    }
}
