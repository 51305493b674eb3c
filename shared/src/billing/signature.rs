//! `Stripe-Signature` verification, exactly as Stripe's libraries do it.
//!
//! The header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=…]`. The expected signature is the
//! lowercase hex HMAC-SHA256, keyed with the endpoint secret, of `"{t}.{raw body}"`; any one
//! `v1` entry must equal it (compared in constant time, as strings: uppercase hex is not
//! Stripe's and fails). The event is refused when `t` is more than `tolerance` seconds in the
//! past; like Stripe's libraries, a future `t` is not refused. Tested against vectors produced
//! by stripe-python (`shared/tests/fixtures`).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Stripe's default tolerance (seconds).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No header, or no `t` / no `v1` in it.
    #[error("malformed Stripe-Signature header")]
    Malformed,
    /// No `v1` entry matches.
    #[error("no matching v1 signature")]
    Mismatch,
    /// `t` is older than the tolerance.
    #[error("timestamp outside the tolerance")]
    Stale,
}

/// The `t` and `v1` entries of a header.
fn parse(header: &str) -> Result<(i64, Vec<&str>), SignatureError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.split_once('=') else {
            continue;
        };
        match key {
            "t" => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                );
            }
            "v1" => v1.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if v1.is_empty() {
        return Err(SignatureError::Malformed);
    }
    Ok((timestamp, v1))
}

/// The lowercase hex signature Stripe computes for `payload` at `timestamp`.
///
/// # Panics
/// Never: HMAC takes keys of any length.
pub fn sign(payload: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// Verifies `header` for the raw `payload` at `now_secs`.
///
/// # Errors
/// Why the signature is refused.
pub fn verify(
    payload: &[u8],
    header: &str,
    secret: &str,
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let (timestamp, candidates) = parse(header)?;
    let expected = sign(payload, secret, timestamp);
    let matched = candidates.iter().fold(0u8, |acc, c| {
        acc | u8::from(bool::from(expected.as_bytes().ct_eq(c.as_bytes())))
    });
    if matched == 0 {
        return Err(SignatureError::Mismatch);
    }
    if timestamp < now_secs - tolerance_secs {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct Vectors {
        generator: String,
        cases: Vec<Case>,
    }

    #[derive(Deserialize)]
    struct Case {
        name: String,
        payload: String,
        secret: String,
        header: String,
        now: i64,
        tolerance: i64,
        valid: bool,
    }

    #[test]
    fn agrees_with_stripes_own_library_on_every_vector() {
        let v: Vectors =
            serde_json::from_str(include_str!("../../tests/fixtures/stripe_signatures.json"))
                .unwrap();
        assert!(v.generator.starts_with("stripe-python"));
        assert!(v.cases.len() >= 10);
        for c in &v.cases {
            let got = verify(
                c.payload.as_bytes(),
                &c.header,
                &c.secret,
                c.now,
                c.tolerance,
            );
            assert_eq!(got.is_ok(), c.valid, "{}: {got:?}", c.name);
        }
    }

    #[test]
    fn our_signatures_verify() {
        let header = format!("t=100,v1={}", sign(b"{}", "whsec_x", 100));
        assert_eq!(verify(b"{}", &header, "whsec_x", 100, 300), Ok(()));
        assert_eq!(
            verify(b"{}", &header, "whsec_x", 401, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(b"{ }", &header, "whsec_x", 100, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn headers_without_t_or_v1_are_malformed() {
        for h in ["", "t=1", "v1=ab", "t=x,v1=ab", "t=,v1=ab"] {
            assert_eq!(
                verify(b"", h, "s", 1, 300),
                Err(SignatureError::Malformed),
                "{h}"
            );
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics(h in "\\PC{0,200}") {
            let _ = verify(b"x", &h, "whsec", 0, 300);
        }
    }
}
