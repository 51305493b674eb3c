//! `shared::auth::tokens::AccessTokens::verify`: the bearer token of every request is
//! attacker-controlled.
//!
//! Byte 0 picks the mode:
//! - 0: the rest, as text, is the token. Never panics; if accepted, an independent HS256 check
//!   (HMAC-SHA256 over `header.claims` with our key, `alg` = `HS256`, `exp` not past) passes.
//! - 1: `header-json \0 claims-json` of the fuzzer's choosing, signed here with our key (the
//!   parser's input after the signature check is reachable only this way). Never panics; if
//!   accepted, `alg` is `HS256`, `sub` is a UUID and `exp` is not past. The same token signed
//!   with another key is always refused.
//! - 2: round trip: `issue` then `verify` with fuzzed user, tier, jti and time gives back the
//!   same claims; one millisecond after the expiry it is refused.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use shared::auth::tokens::AccessTokens;
use shared::domain::{Tier, UserId};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const OTHER_KEY: &[u8] = b"another-secret-another-secret-xx";
/// 2027-01-15: realistic clocks (the clock is the platform's, not the caller's).
const NOW_MS: i64 = 1_800_000_000_000;

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

fn forge(header: &[u8], claims: &[u8], key: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let sig = URL_SAFE_NO_PAD.encode(hmac(key, signing_input.as_bytes()));
    format!("{signing_input}.{sig}")
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("accepted a token whose JSON does not parse")
}

/// What must hold of any accepted token.
fn check_accepted(token: &str, now_ms: i64) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "accepted {token:?}");
    let sig = URL_SAFE_NO_PAD
        .decode(parts[2])
        .expect("accepted a bad signature encoding");
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    assert_eq!(
        sig,
        hmac(KEY, signing_input.as_bytes()),
        "accepted a token not signed with the key"
    );
    let header = json(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap());
    assert_eq!(header["alg"], "HS256", "accepted {header}");
    let claims = json(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap());
    let sub = claims["sub"].as_str().expect("accepted without sub");
    assert!(UserId::parse(sub).is_some(), "accepted sub {sub:?}");
    // jwt-compact also takes a fractional `exp` (truncated to whole seconds).
    #[allow(clippy::cast_possible_truncation)]
    let exp = claims["exp"]
        .as_i64()
        .or_else(|| claims["exp"].as_f64().map(|f| f as i64))
        .expect("accepted without a numeric exp");
    assert!(
        exp.saturating_mul(1000) >= now_ms,
        "accepted an expired token"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let tokens = AccessTokens::new(KEY, 900);
    match mode % 3 {
        0 => {
            let token = String::from_utf8_lossy(rest);
            if tokens.verify(&token, NOW_MS).is_ok() {
                check_accepted(&token, NOW_MS);
            }
        }
        1 => {
            let (header, claims) = match rest.iter().position(|&b| b == 0) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &b"{}"[..]),
            };
            let token = forge(header, claims, KEY);
            if tokens.verify(&token, NOW_MS).is_ok() {
                check_accepted(&token, NOW_MS);
            }
            let forged = forge(header, claims, OTHER_KEY);
            assert!(
                tokens.verify(&forged, NOW_MS).is_err(),
                "accepted a token signed with another key"
            );
        }
        _ => {
            if rest.len() < 42 {
                return;
            }
            let user = UserId(uuid::Uuid::from_bytes(rest[..16].try_into().unwrap()));
            let jti = uuid::Uuid::from_bytes(rest[16..32].try_into().unwrap());
            let tier = [Tier::Free, Tier::Pro, Tier::Power, Tier::Team][usize::from(rest[32] % 4)];
            let ttl = u64::from(u16::from_le_bytes([rest[33], rest[34]])) + 1;
            // Within ±~17 years of NOW_MS.
            let offset = i64::from(i32::from_le_bytes(rest[35..39].try_into().unwrap())) * 256;
            let now = NOW_MS + offset;
            let tokens = AccessTokens::new(KEY, ttl);
            let issued = tokens.issue(user, tier, jti, now).expect("issue failed");
            let v = tokens
                .verify(&issued.token, now)
                .expect("a fresh token was refused");
            assert_eq!(v.user_id, user);
            assert_eq!(v.tier, tier);
            assert_eq!(v.jti, jti.to_string());
            assert_eq!(v.expires_at, issued.expires_at);
            assert!(tokens.verify(&issued.token, issued.expires_at).is_ok());
            assert!(tokens.verify(&issued.token, issued.expires_at + 1).is_err());
            assert!(AccessTokens::new(OTHER_KEY, ttl)
                .verify(&issued.token, now)
                .is_err());
            check_accepted(&issued.token, now);
        }
    }
});
