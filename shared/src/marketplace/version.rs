//! Strict semantic versions (semver.org 2.0.0) without build metadata.
//!
//! Accepted form: `MAJOR.MINOR.PATCH` with an optional `-PRERELEASE`, at most
//! [`MAX_VERSION_LEN`] characters.
//! - `MAJOR`, `MINOR`, `PATCH` are ASCII decimal numbers without leading zeros (`0` itself is
//!   fine) that fit a `u64`.
//! - `PRERELEASE` is one or more dot-separated identifiers, each non-empty and made of
//!   `[0-9A-Za-z-]`. An identifier of digits only is numeric: no leading zeros, fits a `u64`.
//! - Build metadata (`+build`) is refused: it does not take part in precedence, so two
//!   submissions differing only in it would be distinct strings of equal rank. No `v` prefix,
//!   no surrounding whitespace.
//!
//! Ordering is semver precedence (§11): numeric core first; a pre-release ranks below its
//! release; pre-release identifiers compare left to right, numeric ones by value, alphanumeric
//! ones by ASCII order, numeric below alphanumeric, and a shorter list of equal prefix ranks
//! lower. Since build metadata is refused, equality and precedence agree.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest accepted version string.
pub const MAX_VERSION_LEN: usize = 64;

/// One pre-release identifier.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Identifier {
    /// Digits only; compared by value. (Declared first: numeric ranks below alphanumeric.)
    Numeric(u64),
    /// Contains a letter or `-`; compared in ASCII order.
    Alphanumeric(String),
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Numeric(n) => n.fmt(f),
            Self::Alphanumeric(s) => f.write_str(s),
        }
    }
}

/// A parsed strict semantic version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    /// Incompatible changes.
    pub major: u64,
    /// Compatible features.
    pub minor: u64,
    /// Fixes.
    pub patch: u64,
    /// Pre-release identifiers; empty for a release.
    pub pre: Vec<Identifier>,
}

/// Why a version string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be a semantic version MAJOR.MINOR.PATCH with an optional -prerelease (e.g. 1.4.0 or 2.0.0-rc.1), at most 64 characters, without leading zeros or +build")]
pub struct VersionError;

/// A decimal number without leading zeros that fits a `u64`.
fn number(s: &str) -> Option<u64> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

fn identifier(s: &str) -> Option<Identifier> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        number(s).map(Identifier::Numeric)
    } else {
        Some(Identifier::Alphanumeric(s.to_owned()))
    }
}

impl Version {
    /// A release version `major.minor.patch`.
    pub fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
            pre: Vec::new(),
        }
    }

    /// Parses the strict form described in the module docs.
    ///
    /// # Errors
    /// [`VersionError`] for anything else.
    pub fn parse(raw: &str) -> Result<Self, VersionError> {
        if raw.len() > MAX_VERSION_LEN {
            return Err(VersionError);
        }
        let (core, pre) = match raw.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (raw, None),
        };
        let mut parts = core.split('.');
        let mut next = || parts.next().and_then(number).ok_or(VersionError);
        let (major, minor, patch) = (next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(VersionError);
        }
        let pre = match pre {
            None => Vec::new(),
            Some(p) => p
                .split('.')
                .map(identifier)
                .collect::<Option<Vec<_>>>()
                .ok_or(VersionError)?,
        };
        Ok(Self {
            major,
            minor,
            patch,
            pre,
        })
    }

    /// Whether this is a pre-release.
    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }
}

impl std::str::FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        for (i, id) in self.pre.iter().enumerate() {
            f.write_str(if i == 0 { "-" } else { "." })?;
            id.fmt(f)?;
        }
        Ok(())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                // A release ranks above any of its pre-releases.
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                // Vec ordering is exactly §11.4: left to right, shorter prefix lower.
                (false, false) => self.pre.cmp(&other.pre),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|_| panic!("{s} should parse"))
    }

    #[test]
    fn the_semver_org_precedence_examples_are_in_increasing_order() {
        let chains: [&[&str]; 2] = [
            &["1.0.0", "2.0.0", "2.1.0", "2.1.1"],
            &[
                "1.0.0-alpha",
                "1.0.0-alpha.1",
                "1.0.0-alpha.beta",
                "1.0.0-beta",
                "1.0.0-beta.2",
                "1.0.0-beta.11",
                "1.0.0-rc.1",
                "1.0.0",
            ],
        ];
        for chain in chains {
            for pair in chain.windows(2) {
                assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
                assert!(v(pair[1]) > v(pair[0]), "{} > {}", pair[1], pair[0]);
            }
        }
    }

    #[test]
    fn precedence_is_a_total_order_consistent_with_equality() {
        let all = [
            "0.0.0",
            "0.0.1-0",
            "0.0.1",
            "1.0.0-0",
            "1.0.0-1",
            "1.0.0-9",
            "1.0.0-10",
            "1.0.0--",
            "1.0.0-A",
            "1.0.0-Z",
            "1.0.0-a",
            "1.0.0-a.0",
            "1.0.0",
            "1.0.1",
            "1.10.0",
            "10.0.0",
        ];
        for (i, a) in all.iter().enumerate() {
            for (j, b) in all.iter().enumerate() {
                assert_eq!(v(a).cmp(&v(b)), i.cmp(&j), "{a} vs {b}");
                assert_eq!(v(a) == v(b), i == j, "{a} == {b}");
            }
        }
    }

    #[test]
    fn numeric_parts_compare_by_value_not_as_text() {
        assert!(v("1.9.0") < v("1.10.0"));
        assert!(v("1.0.0-beta.9") < v("1.0.0-beta.10"));
    }

    #[test]
    fn numeric_identifiers_rank_below_alphanumeric_ones() {
        assert!(v("1.0.0-999") < v("1.0.0-a"));
        assert!(v("1.0.0-1") < v("1.0.0-0a"));
    }

    #[test]
    fn alphanumeric_identifiers_compare_in_ascii_order() {
        assert!(v("1.0.0-Beta") < v("1.0.0-alpha"));
        assert!(v("1.0.0--") < v("1.0.0-0a"));
    }

    #[test]
    fn a_release_ranks_above_each_of_its_prereleases_and_below_the_next_patch_prerelease() {
        assert!(v("1.0.0-rc.99") < v("1.0.0"));
        assert!(v("1.0.0") < v("1.0.1-alpha"));
    }

    #[test]
    fn valid_versions_parse_and_display_unchanged() {
        for s in [
            "0.0.0",
            "1.2.3",
            "10.20.30",
            "1.2.3-0",
            "1.2.3-0a",
            "1.0.0-alpha.0",
            "1.0.0-x-y-z.--",
            "1.0.0-rc.1.2.3",
            "18446744073709551615.0.0",
        ] {
            assert_eq!(v(s).to_string(), s);
        }
    }

    #[test]
    fn a_prerelease_is_reported_as_such() {
        assert!(v("1.0.0-rc.1").is_prerelease());
        assert!(!v("1.0.0").is_prerelease());
    }

    #[test]
    fn malformed_versions_are_refused() {
        for s in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "v1.2.3",
            " 1.2.3",
            "1.2.3 ",
            "-1.2.3",
            "1.2.-3",
            "1..3",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3-a..b",
            "1.2.3-a.",
            "1.2.3-a_b",
            "1.2.3-α",
            "1.2.3+build",
            "1.2.3-rc.1+build.5",
            "18446744073709551616.0.0",
            "1.0.0-18446744073709551616",
            "+1.2.3",
        ] {
            assert_eq!(Version::parse(s), Err(VersionError), "{s:?}");
        }
    }

    #[test]
    fn versions_longer_than_the_limit_are_refused() {
        let ok = format!("1.0.0-{}", "a".repeat(MAX_VERSION_LEN - 6));
        assert!(Version::parse(&ok).is_ok());
        let long = format!("1.0.0-{}", "a".repeat(MAX_VERSION_LEN - 5));
        assert_eq!(Version::parse(&long), Err(VersionError));
    }

    #[test]
    fn versions_serialize_as_their_string_and_refuse_bad_strings_when_deserialized() {
        let json = serde_json::to_string(&v("2.0.0-rc.1")).unwrap();
        assert_eq!(json, "\"2.0.0-rc.1\"");
        assert_eq!(
            serde_json::from_str::<Version>(&json).unwrap(),
            v("2.0.0-rc.1")
        );
        assert!(serde_json::from_str::<Version>("\"1.0\"").is_err());
    }
}
