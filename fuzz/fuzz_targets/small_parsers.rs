//! Small parsers of request headers, query strings, tokens and manifests, one target: byte 0
//! picks the parser, the rest is the input.
//!
//! - `storage::Checksum::parse`: accepted ⇒ 64 lowercase hex, equal to the trimmed input
//!   lowercased, and `digest()` hex-encodes back to it.
//! - `storage::if_match_allows` / `if_none_match_hits` (`header \0 current`): never panic;
//!   no header allows / does not hit; `*` and the exact tag always match.
//! - `storage::Cursor::decode`: accepted ⇒ `decode(encode(c)) == c`.
//! - `marketplace::download::verify` of an arbitrary token: never panics; accepted only with a
//!   MAC made with the secret. Round trip `sign` → `verify` with fuzzed claims.
//! - `marketplace::version::Version::parse`: accepted ⇒ display is the input and parses back
//!   to the same version; precedence is consistent with equality and antisymmetric.
//! - `marketplace::manifest::PluginManifest::from_json`: never panics; accepted ⇒ serialising
//!   the manifest and parsing that again gives the same manifest.
#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use shared::domain::UserId;
use shared::marketplace::download::{sign, verify, DownloadClaims, TokenError};
use shared::marketplace::{PluginManifest, Version};
use shared::storage::{etag, if_match_allows, if_none_match_hits, Checksum, Cursor};

const SECRET: &[u8] = b"download-secret-download-secret!!";
const NOW: i64 = 1_800_000_000_000;

fn split_nul(rest: &[u8]) -> (String, String) {
    let (a, b) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    (
        String::from_utf8_lossy(a).into_owned(),
        String::from_utf8_lossy(b).into_owned(),
    )
}

fn checksum(text: &str) {
    if let Ok(c) = Checksum::parse(text, "checksum") {
        let s = c.as_str();
        assert_eq!(s.len(), 64);
        assert!(s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(s, text.trim().to_ascii_lowercase());
        assert_eq!(hex::encode(c.digest()), s);
    }
}

fn etags(rest: &[u8]) {
    let (header, current) = split_nul(rest);
    let allows = if_match_allows(Some(&header), &current);
    let hits = if_none_match_hits(Some(&header), &current);
    // A strong match is also a weak one (for tags the server makes: never `W/…`).
    if allows && !current.starts_with("W/") {
        assert!(
            hits,
            "If-Match allows but If-None-Match misses: {header:?} {current:?}"
        );
    }
    assert!(if_match_allows(None, &current));
    assert!(!if_none_match_hits(None, &current));
    assert!(if_match_allows(Some("*"), &current));
    assert!(if_none_match_hits(Some("*"), &current));
    // An ETag as the server makes it (`"<version>.<16 hex>"`) matches itself, alone, in a
    // list after arbitrary tags, and weakly.
    let version = i64::from_le_bytes(
        rest.get(..8)
            .and_then(|b| b.try_into().ok())
            .unwrap_or_default(),
    );
    let current = etag(version, Checksum::of(rest).as_str());
    assert!(if_match_allows(Some(&current), &current));
    assert!(if_none_match_hits(Some(&current), &current));
    let list = format!("{header}, {current}");
    assert!(if_match_allows(Some(&list), &current));
    assert!(if_none_match_hits(Some(&list), &current));
    let weak = format!("{header},W/{current}");
    assert!(if_none_match_hits(Some(&weak), &current));
    assert_eq!(
        if_match_allows(Some(&header), &current),
        header
            .split(',')
            .any(|t| t.trim() == "*" || t.trim() == current)
    );
}

fn cursor(text: &str) {
    if let Ok(c) = Cursor::decode(text) {
        assert!(c.u >= 0);
        let again = Cursor::decode(&c.encode()).expect("an encoded cursor must decode");
        assert_eq!(again, c);
    }
}

fn download(rest: &[u8]) {
    let plugin = uuid::Uuid::from_u128(0xabc);
    let user = UserId(uuid::Uuid::from_u128(42));
    if rest.first().is_some_and(|b| b % 2 == 0) {
        let token = String::from_utf8_lossy(&rest[1..]);
        if let Ok(claims) = verify(SECRET, &token, plugin, user, NOW) {
            // Only reachable with the secret: the fuzzer cannot forge an HMAC.
            assert_eq!(
                sign(SECRET, &claims),
                token,
                "accepted a token we did not sign"
            );
        }
        let _ = verify(b"", &token, plugin, user, NOW);
    } else if rest.len() >= 33 {
        let plugin = uuid::Uuid::from_bytes(rest[1..17].try_into().unwrap());
        let user = UserId(uuid::Uuid::from_bytes(rest[17..33].try_into().unwrap()));
        let version = Version::parse(&String::from_utf8_lossy(&rest[33..]))
            .unwrap_or_else(|_| Version::new(1, 0, 0));
        let claims = DownloadClaims::new(plugin, version, user, NOW);
        let token = sign(SECRET, &claims);
        assert_eq!(
            verify(SECRET, &token, plugin, user, NOW),
            Ok(claims.clone())
        );
        assert_eq!(
            verify(SECRET, &token, plugin, user, claims.expires_at_ms + 1),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(b"other", &token, plugin, user, NOW),
            Err(TokenError::BadSignature)
        );
    }
}

fn version(rest: &[u8]) {
    let (a, b) = split_nul(rest);
    let va = Version::parse(&a);
    if let Ok(v) = &va {
        assert_eq!(v.to_string(), a, "display is not the input");
        assert_eq!(Version::parse(&v.to_string()).as_ref(), Ok(v));
        assert_eq!(v.is_prerelease(), a.contains('-'));
    }
    if let (Ok(x), Ok(y)) = (va, Version::parse(&b)) {
        let o = x.cmp(&y);
        assert_eq!(o == Ordering::Equal, x == y, "{a} vs {b}");
        assert_eq!(y.cmp(&x), o.reverse(), "{a} vs {b}");
    }
}

fn manifest(rest: &[u8]) {
    if let Ok(m) = PluginManifest::from_json(rest) {
        let json = serde_json::to_vec(&m).unwrap();
        let again = PluginManifest::from_json(&json)
            .unwrap_or_else(|e| panic!("an accepted manifest does not parse again: {e:?}"));
        assert_eq!(again, m);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match selector % 6 {
        0 => checksum(&text),
        1 => etags(rest),
        2 => cursor(&text),
        3 => download(rest),
        4 => version(rest),
        _ => manifest(rest),
    }
});
