//! The plugin marketplace's rules, free of any platform (plan Steps 8f, 10 and 12).
//!
//! - [`manifest`]: the submitted manifest and the security checklist run before review
//!   (schema, allowed permissions, fixed categories, price bounds, no binary blobs), plus the
//!   package size bound and checksum record.
//! - [`agents`]: the chat agents a manifest may declare and their part of the checklist
//!   (names, bounds, permissions covering the tools, prompt-safe texts).
//! - [`schema`]: the JSON-Schema subset of plugin tool arguments, its checklist and argument
//!   validation.
//! - [`version`]: strict semantic versions with semver.org precedence.
//! - [`revenue`]: the 70/30 split in integer cents, UTC monthly earnings periods and payout
//!   idempotency keys.
//! - [`download`]: HMAC-signed, user- and plugin-bound download tokens living 10 minutes.
//! - [`rating`]: 1–5 star ratings and the exact integer tally behind the average.
//! - [`store`]: the storage port and its rows.
//! - [`service`]: the marketplace's operations over the port, payments and blobs.
//!
//! Only [`service`] does I/O, through ports.

pub mod agents;
pub mod download;
pub mod manifest;
pub mod rating;
pub mod revenue;
pub mod schema;
pub mod service;
pub mod store;
pub mod version;

pub use agents::{
    check_prompt_text, qualified_name, AgentDeclaration, AgentSubmission, ContextList, ToolAnswer,
    ToolDeclaration, ToolSubmission,
};
pub use download::{sign, verify, DownloadClaims, TokenError, DOWNLOAD_TTL_MS};
pub use manifest::{
    check_package_size, check_text, package_key, Category, ManifestSubmission, PackageRecord,
    Permission, PluginManifest, MAX_PACKAGE_BYTES,
};
pub use rating::{RatingTally, Stars, TallyMismatch};
pub use revenue::{payout_idempotency_key, period_of, split, Period, DEVELOPER_SHARE_PERCENT};
pub use schema::{ParamSchema, SchemaKind};
pub use service::{
    catalog_query, plugin_id, Marketplace, PackageRef, PayoutReport, SUBMISSION_BODY_LIMIT,
};
pub use store::{
    latest_version, CatalogQuery, Decision, DuePayout, Payout, PayoutStatus, PeriodEarnings,
    Plugin, PluginStatus, PluginStore, PluginVersion, RevenueEvent, ReviewRecord, Sort,
    VersionStatus,
};
pub use version::{Identifier, Version, VersionError};
