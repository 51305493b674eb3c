//! TOTP (RFC 6238): HMAC-SHA-1 over the 30-second time step, 6 digits (RFC 4226's dynamic
//! truncation), accepted one step either side of now; and the sealing of secrets at rest
//! (XChaCha20-Poly1305 under a per-purpose server key, the user id as associated data).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

use crate::domain::UserId;
use crate::ports::Random;

/// Seconds per time step.
pub const STEP_SECS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of now.
pub const SKEW_STEPS: i64 = 1;
/// Bytes of a new secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;

/// The time step of `now_ms`.
pub fn step_of(now_ms: i64) -> i64 {
    now_ms.div_euclid(1000) / STEP_SECS
}

/// The code of `secret` at time step `step`, with `digits` digits (RFC 4226 §5.3).
///
/// # Panics
/// Never: HMAC takes keys of any length.
pub fn code_at(secret: &[u8], step: i64, digits: u32) -> u32 {
    let mut mac =
        <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[19] & 0x0f);
    let binary = (u32::from(h[offset]) & 0x7f) << 24
        | u32::from(h[offset + 1]) << 16
        | u32::from(h[offset + 2]) << 8
        | u32::from(h[offset + 3]);
    binary % 10u32.pow(digits)
}

/// The step within ±[`SKEW_STEPS`] of `now_ms` whose code is `code`, if any. Every candidate
/// is compared in constant time.
pub fn matching_step(secret: &[u8], code: &str, now_ms: i64) -> Option<i64> {
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(now_ms);
    let mut found = None;
    for step in (now - SKEW_STEPS)..=(now + SKEW_STEPS) {
        let expected = format!(
            "{:0width$}",
            code_at(secret, step, DIGITS),
            width = DIGITS as usize
        );
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

/// A secret's base32 form (RFC 4648, no padding), as authenticator apps take it.
pub fn base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The `otpauth://` URI of an authenticator app's QR code.
pub fn otpauth_uri(secret: &[u8], account: &str) -> String {
    let label: String =
        url::form_urlencoded::byte_serialize(format!("Adiuva:{account}").as_bytes())
            .collect::<String>()
            .replace('+', "%20");
    format!(
        "otpauth://totp/{label}?secret={}&issuer=Adiuva&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        base32(secret)
    )
}

/// Seals `secret` for `user` under `key`: `nonce (24 bytes) ‖ ciphertext ‖ tag`.
pub fn seal(key: &[u8; 32], user: UserId, secret: &[u8], rng: &dyn Random) -> Vec<u8> {
    seal_for(key, user.to_string().as_bytes(), secret, rng)
}

/// Opens what [`seal`] made for `user`; `None` when it was sealed for another user, under
/// another key, or altered.
pub fn open(key: &[u8; 32], user: UserId, sealed: &[u8]) -> Option<Vec<u8>> {
    open_for(key, user.to_string().as_bytes(), sealed)
}

/// Seals `secret` under `key` bound to `aad` (whose row it belongs to): `nonce (24 bytes) ‖
/// ciphertext ‖ tag`, XChaCha20-Poly1305 with a random nonce.
///
/// # Panics
/// Never: XChaCha20-Poly1305 seals any message below 256 GiB.
pub fn seal_for(key: &[u8; 32], aad: &[u8], secret: &[u8], rng: &dyn Random) -> Vec<u8> {
    let mut nonce = [0u8; 24];
    rng.fill(&mut nonce);
    let sealed = XChaCha20Poly1305::new(key.into())
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: secret, aad })
        .expect("sealing a short secret cannot fail");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    out
}

/// Opens what [`seal_for`] made for `aad`; `None` under another key or `aad`, or altered.
pub fn open_for(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < 24 {
        return None;
    }
    let (nonce, ct) = sealed.split_at(24);
    XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeqRandom;

    /// RFC 6238 appendix B: the SHA-1 secret is the ASCII of "12345678901234567890".
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn codes_match_the_rfc_6238_sha1_test_vectors() {
        for (secs, code) in [
            (59_i64, 94_287_082_u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(
                code_at(RFC_SECRET, step_of(secs * 1000), 8),
                code,
                "T = {secs}"
            );
            // Six digits are the last six of the eight.
            assert_eq!(
                code_at(RFC_SECRET, step_of(secs * 1000), 6),
                code % 1_000_000
            );
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_no_further() {
        let now = 1_111_111_111_000;
        let code = |step: i64| format!("{:06}", code_at(RFC_SECRET, step, 6));
        let here = step_of(now);
        assert_eq!(matching_step(RFC_SECRET, &code(here), now), Some(here));
        assert_eq!(
            matching_step(RFC_SECRET, &code(here - 1), now),
            Some(here - 1)
        );
        assert_eq!(
            matching_step(RFC_SECRET, &code(here + 1), now),
            Some(here + 1)
        );
        assert_eq!(matching_step(RFC_SECRET, &code(here - 2), now), None);
        assert_eq!(matching_step(RFC_SECRET, &code(here + 2), now), None);
        assert_eq!(matching_step(RFC_SECRET, "12345", now), None);
        assert_eq!(matching_step(RFC_SECRET, "12345a", now), None);
    }

    #[test]
    fn the_uri_carries_the_base32_secret_and_the_parameters() {
        assert_eq!(base32(RFC_SECRET), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(
            otpauth_uri(RFC_SECRET, "ada@example.com"),
            "otpauth://totp/Adiuva%3Aada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Adiuva&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_user_and_key_and_unaltered() {
        let rng = SeqRandom::new(9);
        let key = [7u8; 32];
        let ada = UserId(uuid::Uuid::from_u128(1));
        let eve = UserId(uuid::Uuid::from_u128(2));
        let sealed = seal(&key, ada, RFC_SECRET, &rng);
        assert!(!sealed.windows(RFC_SECRET.len()).any(|w| w == RFC_SECRET));
        assert_eq!(open(&key, ada, &sealed).as_deref(), Some(RFC_SECRET));
        assert_eq!(open(&key, eve, &sealed), None, "bound to its user");
        assert_eq!(open(&[8u8; 32], ada, &sealed), None, "bound to its key");
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(open(&key, ada, &altered), None);
    }
}
