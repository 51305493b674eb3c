//! `GET /usage`: the caller's exact usage and limits, for the app's storage meter.

use serde::{Deserialize, Serialize};

/// Bytes used of a byte quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ByteUsage {
    /// Bytes in use (for backups, open uploads' parts included).
    pub used_bytes: u64,
    /// The tier's limit; `null` when unlimited.
    pub limit_bytes: Option<u64>,
}

/// The request allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestUsage {
    /// Requests per minute.
    pub limit: u32,
    /// Requests left right now (after this one).
    pub remaining: u32,
}

/// `GET /usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageReport {
    /// Cloud records and vectors.
    pub cloud_storage: ByteUsage,
    /// Backups, and the parts of open uploads.
    pub backup: ByteUsage,
    /// This minute's requests.
    pub requests: RequestUsage,
}
