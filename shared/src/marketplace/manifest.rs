//! The plugin manifest and the security checklist a submission must pass.
//!
//! A developer submits a [`ManifestSubmission`]; [`PluginManifest::parse`] either returns the
//! validated manifest or an [`AppError::Validation`] naming **every** offending field. The
//! checklist (plan Step 10):
//!
//! | field         | rule                                                                    |
//! |---------------|-------------------------------------------------------------------------|
//! | `id`          | must be absent: the server assigns it                                   |
//! | `name`        | trimmed, 1–[`MAX_NAME_CHARS`] characters                                 |
//! | `description` | at most [`MAX_DESCRIPTION_CHARS`] characters (may be empty)              |
//! | `version`     | strict semver, see [`Version`]                                           |
//! | `author`      | trimmed, 1–[`MAX_AUTHOR_CHARS`] characters (a display name; the owner is the authenticated user) |
//! | `permissions` | each one of [`Permission`]; no duplicates (order is not significant)    |
//! | `category`    | one of [`Category`]                                                     |
//! | `price_cents` | `0` (free) or [`MIN_PRICE_CENTS`]`..=`[`MAX_PRICE_CENTS`]                |
//! | `agents`      | optional, at most 3 chat agents with their tools: see [`super::agents`] (names, bounds, the JSON-Schema subset of [`super::schema`], permissions that cover the tools, prompt-safe texts) |
//!
//! Lengths count Unicode scalar values. Every string (the permission and category names too)
//! also passes the **no binary blobs** rule, [`check_text`]:
//! - no control characters (Unicode `Cc`), except line feed and tab in `description`;
//! - no bidirectional overrides or isolates (U+202A–U+202E, U+2066–U+2069) nor U+FEFF, which
//!   make displayed text differ from stored text;
//! - no run of more than [`MAX_ENCODED_RUN`] consecutive characters from the base64 / base64url
//!   alphabet `[A-Za-z0-9+/=_-]`. Hex is a subset of it, so long hex dumps are caught too.
//!   Prose, URLs and identifiers break such runs with spaces or punctuation (`.`, `:`, `,`).
//!
//! A submission with unknown fields is refused when deserialised, so nothing travels in the
//! manifest that the checklist did not see.
//!
//! A checked [`PluginManifest`] is stored as JSON in D1 in the submission's own shape (so
//! approval can run the checklist again on exactly what was stored); manifests stored before
//! agent declarations existed have no `agents` and still parse.

use serde::{Deserialize, Serialize};

use super::agents::{parse_agents, AgentDeclaration, AgentSubmission};
use super::version::Version;
use crate::error::{AppError, FieldError};
use crate::storage::Checksum;

/// Longest plugin name (characters).
pub const MAX_NAME_CHARS: usize = 80;
/// Longest author display name (characters).
pub const MAX_AUTHOR_CHARS: usize = 80;
/// Longest description (characters).
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Lowest price of a paid plugin (cents).
pub const MIN_PRICE_CENTS: u64 = 99;
/// Highest price of a paid plugin (cents).
pub const MAX_PRICE_CENTS: u64 = 99_999;
/// Longest run of base64/hex-alphabet characters a manifest string may contain.
pub const MAX_ENCODED_RUN: usize = 256;
/// Largest plugin package (bytes): 10 MiB.
pub const MAX_PACKAGE_BYTES: u64 = 10 * 1024 * 1024;

/// A capability a plugin asks for. The set is closed: anything else is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Permission {
    /// `tasks:read` — read the user's tasks.
    #[serde(rename = "tasks:read")]
    TasksRead,
    /// `tasks:write` — create, change and delete tasks.
    #[serde(rename = "tasks:write")]
    TasksWrite,
    /// `notes:read` — read notes.
    #[serde(rename = "notes:read")]
    NotesRead,
    /// `notes:write` — create, change and delete notes.
    #[serde(rename = "notes:write")]
    NotesWrite,
    /// `projects:read` — read projects.
    #[serde(rename = "projects:read")]
    ProjectsRead,
    /// `projects:write` — create, change and delete projects.
    #[serde(rename = "projects:write")]
    ProjectsWrite,
    /// `checkpoints:read` — read checkpoints.
    #[serde(rename = "checkpoints:read")]
    CheckpointsRead,
    /// `checkpoints:write` — create and restore checkpoints.
    #[serde(rename = "checkpoints:write")]
    CheckpointsWrite,
    /// `network` — make outbound network requests.
    #[serde(rename = "network")]
    Network,
    /// `notifications` — show notifications.
    #[serde(rename = "notifications")]
    Notifications,
}

impl Permission {
    /// Every permission, in canonical order.
    pub const ALL: [Self; 10] = [
        Self::TasksRead,
        Self::TasksWrite,
        Self::NotesRead,
        Self::NotesWrite,
        Self::ProjectsRead,
        Self::ProjectsWrite,
        Self::CheckpointsRead,
        Self::CheckpointsWrite,
        Self::Network,
        Self::Notifications,
    ];

    /// The wire name (`tasks:read`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TasksRead => "tasks:read",
            Self::TasksWrite => "tasks:write",
            Self::NotesRead => "notes:read",
            Self::NotesWrite => "notes:write",
            Self::ProjectsRead => "projects:read",
            Self::ProjectsWrite => "projects:write",
            Self::CheckpointsRead => "checkpoints:read",
            Self::CheckpointsWrite => "checkpoints:write",
            Self::Network => "network",
            Self::Notifications => "notifications",
        }
    }

    /// The permission with this exact (case-sensitive) wire name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }
}

/// The catalog category of a plugin. The set is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// `productivity`.
    Productivity,
    /// `writing`.
    Writing,
    /// `research`.
    Research,
    /// `development`.
    Development,
    /// `automation`.
    Automation,
    /// `integrations`.
    Integrations,
    /// `analytics`.
    Analytics,
    /// `other`.
    Other,
}

impl Category {
    /// Every category.
    pub const ALL: [Self; 8] = [
        Self::Productivity,
        Self::Writing,
        Self::Research,
        Self::Development,
        Self::Automation,
        Self::Integrations,
        Self::Analytics,
        Self::Other,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Productivity => "productivity",
            Self::Writing => "writing",
            Self::Research => "research",
            Self::Development => "development",
            Self::Automation => "automation",
            Self::Integrations => "integrations",
            Self::Analytics => "analytics",
            Self::Other => "other",
        }
    }

    /// The category with this exact (case-sensitive) wire name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }
}

/// A manifest as submitted, before the checklist. Unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ManifestSubmission {
    /// Must be absent (server-assigned); accepted here only to be refused by name.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub id: Option<serde_json::Value>,
    /// Display name, 1–80 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 80))]
    pub name: String,
    /// Long description, at most 2000 characters (line feeds and tabs allowed).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub description: String,
    /// Semantic version (semver.org 2.0, without build metadata).
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 64,
            pattern = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-((0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(\.(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*))?$",
            example = "1.2.0"
        )
    )]
    pub version: String,
    /// Author display name, 1–80 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 80))]
    pub author: String,
    /// Requested permissions, each once: `tasks:read`, `tasks:write`, `notes:read`,
    /// `notes:write`, `projects:read`, `projects:write`, `checkpoints:read`,
    /// `checkpoints:write`, `network`, `notifications`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 10))]
    pub permissions: Vec<String>,
    /// Catalog category: `productivity`, `writing`, `research`, `development`, `automation`,
    /// `integrations`, `analytics` or `other`.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^(productivity|writing|research|development|automation|integrations|analytics|other)$"
        )
    )]
    pub category: String,
    /// Price in euro cents: 0 (free) or 99–99999. Signed here so that a negative price is
    /// refused by name, not as bad JSON.
    #[serde(default, deserialize_with = "crate::input::integral_i64")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 99_999))]
    pub price_cents: i64,
    /// Chat agents the plugin adds, at most 3 (routed as `plugin.<plugin id>.<name>`). Their
    /// tools run in the app (a `call_agent` action) or are answered from the request's context.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 3))]
    pub agents: Vec<AgentSubmission>,
}

/// A manifest that passed the checklist. It deserialises only from storage (trusted rows);
/// untrusted input goes through [`PluginManifest::from_json`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginManifest {
    /// Display name (trimmed).
    pub name: String,
    /// Description (may be empty).
    pub description: String,
    /// Version.
    pub version: Version,
    /// Author display name (trimmed).
    pub author: String,
    /// Permissions, deduplicated by the checklist and in canonical order.
    pub permissions: Vec<Permission>,
    /// Category.
    pub category: Category,
    /// Price (0 = free).
    pub price_cents: u64,
    /// Declared chat agents (none in manifests stored before declarations existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<AgentDeclaration>,
}

/// Checks one string against the no-binary-blobs rule (see the module docs).
///
/// # Errors
/// A [`FieldError`] on `field` saying what was found.
pub fn check_text(raw: &str, field: &str, allow_newlines: bool) -> Result<(), FieldError> {
    let mut run = 0usize;
    for c in raw.chars() {
        if c.is_control() && !(allow_newlines && (c == '\n' || c == '\t')) {
            return Err(FieldError::new(
                field,
                "must not contain control characters",
            ));
        }
        if matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}') {
            return Err(FieldError::new(
                field,
                "must not contain bidirectional overrides or byte-order marks",
            ));
        }
        if c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-') {
            run += 1;
            if run > MAX_ENCODED_RUN {
                return Err(FieldError::new(
                    field,
                    "must not embed encoded binary data (a run of more than 256 base64/hex characters)",
                ));
            }
        } else {
            run = 0;
        }
    }
    Ok(())
}

/// A trimmed, length-bounded, blob-free text field.
fn text(
    raw: &str,
    field: &str,
    min: usize,
    max: usize,
    allow_newlines: bool,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let trimmed = if min > 0 { raw.trim() } else { raw };
    let len = trimmed.chars().count();
    if len < min || len > max {
        let msg = if min == 0 {
            format!("must be at most {max} characters")
        } else {
            format!("must be {min}-{max} characters")
        };
        errors.push(FieldError::new(field, msg));
        return None;
    }
    match check_text(trimmed, field, allow_newlines) {
        Ok(()) => Some(trimmed.to_owned()),
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

fn permissions(raw: &[String], errors: &mut Vec<FieldError>) -> Vec<Permission> {
    let mut out: Vec<Permission> = Vec::with_capacity(raw.len());
    let mut seen: Vec<(Permission, usize)> = Vec::new();
    for (i, name) in raw.iter().enumerate() {
        let field = format!("permissions[{i}]");
        match Permission::parse(name) {
            None => {
                // Do not echo the value: it may be the blob we refuse.
                let allowed: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
                errors.push(FieldError::new(
                    field,
                    format!("must be one of {}", allowed.join(", ")),
                ));
            }
            Some(p) => {
                if let Some((_, first)) = seen.iter().find(|(q, _)| *q == p) {
                    errors.push(FieldError::new(
                        field,
                        format!("duplicates permissions[{first}]"),
                    ));
                } else {
                    seen.push((p, i));
                    out.push(p);
                }
            }
        }
    }
    out.sort_unstable();
    out
}

impl PluginManifest {
    /// Runs the security checklist over a submission.
    ///
    /// # Errors
    /// [`AppError::Validation`] listing every failing field, in field order.
    pub fn parse(raw: &ManifestSubmission) -> Result<Self, AppError> {
        let mut errors = Vec::new();
        if raw.id.is_some() {
            errors.push(FieldError::new(
                "id",
                "must not be set: the server assigns plugin ids",
            ));
        }
        let name = text(&raw.name, "name", 1, MAX_NAME_CHARS, false, &mut errors);
        let description = text(
            &raw.description,
            "description",
            0,
            MAX_DESCRIPTION_CHARS,
            true,
            &mut errors,
        );
        let version = match Version::parse(&raw.version) {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push(FieldError::new("version", e.to_string()));
                None
            }
        };
        let author = text(
            &raw.author,
            "author",
            1,
            MAX_AUTHOR_CHARS,
            false,
            &mut errors,
        );
        let permissions = permissions(&raw.permissions, &mut errors);
        let category = Category::parse(&raw.category);
        if category.is_none() {
            let allowed: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
            errors.push(FieldError::new(
                "category",
                format!("must be one of {}", allowed.join(", ")),
            ));
        }
        let price_cents = u64::try_from(raw.price_cents)
            .ok()
            .filter(|p| *p == 0 || (MIN_PRICE_CENTS..=MAX_PRICE_CENTS).contains(p));
        if price_cents.is_none() {
            errors.push(FieldError::new(
                "price_cents",
                format!("must be 0 (free) or {MIN_PRICE_CENTS}-{MAX_PRICE_CENTS}"),
            ));
        }
        let agents = parse_agents(&raw.agents, &permissions, &mut errors);
        match (name, description, version, author, category, price_cents) {
            (
                Some(name),
                Some(description),
                Some(version),
                Some(author),
                Some(category),
                Some(price_cents),
            ) if errors.is_empty() => Ok(Self {
                name,
                description,
                version,
                author,
                permissions,
                category,
                price_cents,
                agents,
            }),
            _ => Err(AppError::Validation(errors)),
        }
    }

    /// Parses and checks a JSON manifest.
    ///
    /// # Errors
    /// [`AppError::MalformedJson`] for bad JSON, a missing field, a wrong type or an unknown
    /// field (stored manifests only: request bodies go through [`crate::input::parse_json`],
    /// which names such fields in a 422); otherwise those of [`Self::parse`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, AppError> {
        let raw: ManifestSubmission =
            serde_json::from_slice(bytes).map_err(|e| AppError::MalformedJson(e.to_string()))?;
        Self::parse(&raw)
    }

    /// Whether installing costs money.
    pub fn is_paid(&self) -> bool {
        self.price_cents > 0
    }
}

/// What is recorded about an uploaded package (`plugins.s3_package_key` and its checksum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRecord {
    /// SHA-256 of the exact bytes.
    pub checksum: Checksum,
    /// Size in bytes.
    pub size_bytes: u64,
}

/// Checks a package's declared or actual size against [`MAX_PACKAGE_BYTES`].
///
/// # Errors
/// 422 on `package` when empty, 413 when larger than the bound.
pub fn check_package_size(size_bytes: u64) -> Result<(), AppError> {
    if size_bytes == 0 {
        return Err(AppError::field("package", "must not be empty"));
    }
    if size_bytes > MAX_PACKAGE_BYTES {
        return Err(AppError::PayloadTooLarge {
            limit: MAX_PACKAGE_BYTES,
        });
    }
    Ok(())
}

impl PackageRecord {
    /// Records a package: checks its size and, when the uploader declared a checksum, that the
    /// bytes match it (constant time).
    ///
    /// # Errors
    /// Those of [`check_package_size`]; 400 `checksum_mismatch` when `declared` differs.
    pub fn record(bytes: &[u8], declared: Option<&Checksum>) -> Result<Self, AppError> {
        check_package_size(bytes.len() as u64)?;
        if let Some(d) = declared {
            if !d.matches(bytes) {
                return Err(AppError::ChecksumMismatch);
            }
        }
        Ok(Self {
            checksum: Checksum::of(bytes),
            size_bytes: bytes.len() as u64,
        })
    }
}

/// The object key of one submitted package: `plugins/{plugin_id}/{version}-{submission}.zip`.
/// Every part is a restricted alphabet (UUID, semver), so the key is never a traversal; the
/// submission id makes it unique to one submission, so a refused duplicate cleaning up after
/// itself can never delete the package of the version that won.
pub fn package_key(plugin_id: uuid::Uuid, version: &Version, submission: uuid::Uuid) -> String {
    format!(
        "plugins/{}/{version}-{}.zip",
        plugin_id.hyphenated(),
        submission.simple()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> ManifestSubmission {
        ManifestSubmission {
            id: None,
            name: "Daily Digest".into(),
            description: "Summarises your tasks.\n\tEvery morning.".into(),
            version: "1.2.0-beta.1".into(),
            author: "Ada".into(),
            permissions: vec!["tasks:read".into(), "notifications".into()],
            category: "productivity".into(),
            price_cents: 499,
            agents: Vec::new(),
        }
    }

    fn fields(raw: &ManifestSubmission) -> Vec<String> {
        match PluginManifest::parse(raw) {
            Err(AppError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    fn with(f: impl FnOnce(&mut ManifestSubmission)) -> ManifestSubmission {
        let mut m = good();
        f(&mut m);
        m
    }

    #[test]
    fn a_valid_submission_parses_into_a_manifest_with_canonical_permissions() {
        let m = PluginManifest::parse(&good()).unwrap();
        assert_eq!(m.name, "Daily Digest");
        assert_eq!(m.version, Version::parse("1.2.0-beta.1").unwrap());
        assert_eq!(
            m.permissions,
            vec![Permission::TasksRead, Permission::Notifications]
        );
        assert_eq!(m.category, Category::Productivity);
        assert_eq!(m.price_cents, 499);
        assert!(m.is_paid());
    }

    #[test]
    fn a_submission_carrying_an_id_is_refused_on_the_id_field() {
        assert_eq!(fields(&with(|m| m.id = Some("x".into()))), ["id"]);
    }

    #[test]
    fn every_failing_field_is_named_at_once() {
        let bad = ManifestSubmission {
            id: Some(serde_json::json!(1)),
            name: "  ".into(),
            description: "x".repeat(MAX_DESCRIPTION_CHARS + 1),
            version: "1.0".into(),
            author: String::new(),
            permissions: vec!["root".into()],
            category: "games".into(),
            price_cents: 50,
            agents: Vec::new(),
        };
        assert_eq!(
            fields(&bad),
            [
                "id",
                "name",
                "description",
                "version",
                "author",
                "permissions[0]",
                "category",
                "price_cents"
            ]
        );
    }

    #[test]
    fn the_name_is_trimmed_and_must_have_one_to_eighty_characters() {
        let m = PluginManifest::parse(&with(|m| m.name = "  Spaced  ".into())).unwrap();
        assert_eq!(m.name, "Spaced");
        assert!(PluginManifest::parse(&with(|m| m.name = "é".repeat(80))).is_ok());
        assert_eq!(fields(&with(|m| m.name = "é".repeat(81))), ["name"]);
        assert_eq!(fields(&with(|m| m.name = String::new())), ["name"]);
        assert_eq!(fields(&with(|m| m.name = " \t ".into())), ["name"]);
    }

    #[test]
    fn the_description_may_be_empty_and_has_at_most_two_thousand_characters() {
        assert!(PluginManifest::parse(&with(|m| m.description = String::new())).is_ok());
        let max = "word ".repeat(400);
        assert_eq!(max.chars().count(), MAX_DESCRIPTION_CHARS);
        assert!(PluginManifest::parse(&with(|m| m.description.clone_from(&max))).is_ok());
        assert_eq!(
            fields(&with(|m| m.description = format!("{max}!"))),
            ["description"]
        );
    }

    #[test]
    fn the_author_must_have_one_to_eighty_characters() {
        assert_eq!(fields(&with(|m| m.author = "a".repeat(81))), ["author"]);
        assert_eq!(fields(&with(|m| m.author = " ".into())), ["author"]);
    }

    #[test]
    fn a_non_semver_version_is_refused_on_the_version_field() {
        for v in ["1.0", "v1.0.0", "1.0.0+build", "01.0.0", ""] {
            assert_eq!(fields(&with(|m| m.version = v.into())), ["version"], "{v}");
        }
    }

    #[test]
    fn every_allowed_permission_is_accepted_and_round_trips_its_name() {
        let all: Vec<String> = Permission::ALL.iter().map(|p| p.as_str().into()).collect();
        let m = PluginManifest::parse(&with(|m| m.permissions.clone_from(&all))).unwrap();
        assert_eq!(m.permissions, Permission::ALL);
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
            assert_eq!(
                serde_json::to_value(p).unwrap(),
                serde_json::json!(p.as_str())
            );
        }
    }

    #[test]
    fn permissions_outside_the_allowed_set_are_refused_by_index() {
        let m = with(|m| {
            m.permissions = vec![
                "tasks:read".into(),
                "Tasks:Read".into(),
                "tasks:*".into(),
                "admin".into(),
            ];
        });
        assert_eq!(
            fields(&m),
            ["permissions[1]", "permissions[2]", "permissions[3]"]
        );
    }

    #[test]
    fn a_duplicated_permission_is_refused_naming_the_first_occurrence() {
        let m = with(|m| {
            m.permissions = vec!["network".into(), "notes:read".into(), "network".into()];
        });
        match PluginManifest::parse(&m) {
            Err(AppError::Validation(e)) => {
                assert_eq!(
                    e,
                    [FieldError::new(
                        "permissions[2]",
                        "duplicates permissions[0]"
                    )]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_permissions_at_all_is_allowed() {
        let m = PluginManifest::parse(&with(|m| m.permissions.clear())).unwrap();
        assert!(m.permissions.is_empty());
    }

    #[test]
    fn the_category_must_be_one_of_the_fixed_set() {
        for c in Category::ALL {
            let m = PluginManifest::parse(&with(|m| m.category = c.as_str().into())).unwrap();
            assert_eq!(m.category, c);
        }
        for c in ["", "Productivity", "games", "other "] {
            assert_eq!(
                fields(&with(|m| m.category = c.into())),
                ["category"],
                "{c:?}"
            );
        }
    }

    #[test]
    fn the_price_is_zero_or_between_ninety_nine_cents_and_nine_hundred_ninety_nine_euros() {
        for ok in [0, 99, 100, 99_999] {
            let m = PluginManifest::parse(&with(|m| m.price_cents = ok)).unwrap();
            assert_eq!(m.is_paid(), ok > 0);
        }
        for bad in [-1, 1, 98, 100_000, i64::MAX, i64::MIN] {
            assert_eq!(
                fields(&with(|m| m.price_cents = bad)),
                ["price_cents"],
                "{bad}"
            );
        }
    }

    #[test]
    fn control_characters_are_refused_in_every_text_field() {
        assert_eq!(fields(&with(|m| m.name = "a\u{0}b".into())), ["name"]);
        assert_eq!(fields(&with(|m| m.author = "a\nb".into())), ["author"]);
        assert_eq!(
            fields(&with(|m| m.description = "a\rb".into())),
            ["description"]
        );
        assert_eq!(
            fields(&with(|m| m.description = "a\u{1b}[31m".into())),
            ["description"]
        );
        assert_eq!(
            fields(&with(|m| m.description = "a\u{85}b".into())),
            ["description"]
        );
    }

    #[test]
    fn line_feeds_and_tabs_are_allowed_in_the_description_only() {
        assert!(PluginManifest::parse(&with(|m| m.description = "a\n\tb".into())).is_ok());
        assert_eq!(fields(&with(|m| m.name = "a\tb".into())), ["name"]);
    }

    #[test]
    fn bidirectional_overrides_and_byte_order_marks_are_refused() {
        for c in ['\u{202E}', '\u{2066}', '\u{FEFF}'] {
            assert_eq!(fields(&with(|m| m.name = format!("safe{c}exe"))), ["name"]);
        }
    }

    #[test]
    fn a_base64_blob_in_the_description_is_refused() {
        let blob = "QUJD".repeat(65); // 260 base64 characters
        assert_eq!(
            fields(&with(|m| m.description = format!("payload: {blob}"))),
            ["description"]
        );
        let url_safe = "ab-_".repeat(65);
        assert_eq!(fields(&with(|m| m.description = url_safe)), ["description"]);
    }

    #[test]
    fn a_hex_dump_in_the_description_is_refused() {
        let hex = "deadbeef".repeat(33); // 264 hex characters
        assert_eq!(fields(&with(|m| m.description = hex)), ["description"]);
    }

    #[test]
    fn a_run_of_exactly_256_encoded_characters_is_allowed() {
        assert!(check_text(&"A".repeat(MAX_ENCODED_RUN), "f", false).is_ok());
        assert!(check_text(&"A".repeat(MAX_ENCODED_RUN + 1), "f", false).is_err());
    }

    #[test]
    fn prose_and_urls_are_not_mistaken_for_blobs() {
        let prose =
            "Syncs your notes with https://example.com/api/v1/notes, twice a day. ".repeat(28);
        assert!(prose.chars().count() <= MAX_DESCRIPTION_CHARS);
        assert!(PluginManifest::parse(&with(|m| m.description = prose)).is_ok());
    }

    #[test]
    fn the_run_counter_restarts_after_any_other_character() {
        let split = format!("{} {}", "A".repeat(200), "A".repeat(200));
        assert!(check_text(&split, "f", false).is_ok());
    }

    #[test]
    fn json_with_unknown_fields_is_refused_before_the_checklist() {
        let body =
            br#"{"name":"n","version":"1.0.0","author":"a","category":"other","icon":"AAAA"}"#;
        assert!(matches!(
            PluginManifest::from_json(body),
            Err(AppError::MalformedJson(_))
        ));
    }

    #[test]
    fn json_with_defaults_parses_as_a_free_plugin_without_permissions() {
        let body = br#"{"name":"n","version":"1.0.0","author":"a","category":"other"}"#;
        let m = PluginManifest::from_json(body).unwrap();
        assert_eq!(m.price_cents, 0);
        assert!(m.permissions.is_empty());
        assert_eq!(m.description, "");
    }

    #[test]
    fn json_with_an_id_is_refused_on_the_id_field() {
        let body = br#"{"id":"x","name":"n","version":"1.0.0","author":"a","category":"other"}"#;
        assert!(matches!(
            PluginManifest::from_json(body),
            Err(AppError::Validation(e)) if e[0].field == "id"
        ));
    }

    #[test]
    fn packages_must_be_non_empty_and_at_most_ten_mebibytes() {
        assert!(check_package_size(1).is_ok());
        assert!(check_package_size(MAX_PACKAGE_BYTES).is_ok());
        assert!(matches!(
            check_package_size(MAX_PACKAGE_BYTES + 1),
            Err(AppError::PayloadTooLarge { limit }) if limit == MAX_PACKAGE_BYTES
        ));
        assert!(matches!(
            check_package_size(0),
            Err(AppError::Validation(e)) if e[0].field == "package"
        ));
    }

    #[test]
    fn recording_a_package_keeps_its_sha256_and_size() {
        let r = PackageRecord::record(b"abc", None).unwrap();
        assert_eq!(
            r.checksum.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(r.size_bytes, 3);
    }

    #[test]
    fn recording_a_package_checks_a_declared_checksum() {
        let declared = Checksum::of(b"abc");
        assert!(PackageRecord::record(b"abc", Some(&declared)).is_ok());
        assert!(matches!(
            PackageRecord::record(b"abd", Some(&declared)),
            Err(AppError::ChecksumMismatch)
        ));
    }

    #[test]
    fn the_package_key_is_made_of_the_plugin_id_version_and_submission() {
        let key = package_key(
            uuid::Uuid::from_u128(1),
            &Version::parse("1.0.0-rc.1").unwrap(),
            uuid::Uuid::from_u128(0xab),
        );
        assert_eq!(
            key,
            "plugins/00000000-0000-0000-0000-000000000001/1.0.0-rc.1-000000000000000000000000000000ab.zip"
        );
    }
}
