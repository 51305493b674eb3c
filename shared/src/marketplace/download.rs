//! Signed download tokens for plugin packages.
//!
//! A token authorises one user to download one plugin version until an instant. Format:
//! `base64url(payload) "." base64url(mac)` (no padding), where `payload` is
//! `{plugin_id}|{version}|{user_id}|{expires_at_ms}` (hyphenated UUIDs, strict semver — neither
//! alphabet contains `|`, so the encoding is unambiguous) and `mac` is HMAC-SHA256 with the
//! download secret over [`DOMAIN`] followed by the payload (the domain keeps these MACs from
//! ever being valid elsewhere, should the secret be shared by mistake).
//!
//! [`verify`] checks, in order: shape and size, the MAC (constant time, before reading any
//! claim), then expiry (valid while `now_ms ≤ expires_at_ms`), then that the token names the
//! requested plugin and the requesting user. Every refusal maps to 403.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::version::Version;
use crate::domain::UserId;
use crate::error::AppError;

/// How long a download token lives (ms): 10 minutes.
pub const DOWNLOAD_TTL_MS: i64 = 10 * 60 * 1000;
/// The MAC's domain-separation prefix.
pub const DOMAIN: &[u8] = b"adiuva/plugin-download/v1\n";
/// Longest token considered (characters); longer input is refused before decoding.
pub const MAX_TOKEN_LEN: usize = 512;

/// What a download token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadClaims {
    /// The plugin.
    pub plugin_id: uuid::Uuid,
    /// The version whose package may be downloaded.
    pub version: Version,
    /// The only user who may use the token.
    pub user_id: UserId,
    /// Last valid instant (epoch ms, inclusive).
    pub expires_at_ms: i64,
}

impl DownloadClaims {
    /// Claims for `user_id` to download `plugin_id`@`version`, valid for [`DOWNLOAD_TTL_MS`]
    /// from `now_ms`.
    pub fn new(plugin_id: uuid::Uuid, version: Version, user_id: UserId, now_ms: i64) -> Self {
        Self {
            plugin_id,
            version,
            user_id,
            expires_at_ms: now_ms.saturating_add(DOWNLOAD_TTL_MS),
        }
    }

    fn payload(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.plugin_id.hyphenated(),
            self.version,
            self.user_id,
            self.expires_at_ms
        )
    }

    fn from_payload(payload: &str) -> Option<Self> {
        let mut parts = payload.split('|');
        let plugin_id = uuid::Uuid::try_parse(parts.next()?).ok()?;
        let version = Version::parse(parts.next()?).ok()?;
        let user_id = UserId::parse(parts.next()?)?;
        let expires_at_ms = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            plugin_id,
            version,
            user_id,
            expires_at_ms,
        })
    }
}

/// Why a download token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the token's shape (or too long).
    #[error("malformed download token")]
    Malformed,
    /// The MAC does not match: forged or altered.
    #[error("download token signature mismatch")]
    BadSignature,
    /// Past its expiry.
    #[error("download token expired")]
    Expired,
    /// Issued to another user.
    #[error("download token belongs to another user")]
    WrongUser,
    /// Issued for another plugin.
    #[error("download token is for another plugin")]
    WrongPlugin,
}

impl From<TokenError> for AppError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Expired => AppError::Forbidden("the download link has expired"),
            _ => AppError::Forbidden("invalid download link"),
        }
    }
}

fn mac(secret: &[u8], payload: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(DOMAIN);
    mac.update(payload);
    mac.finalize().into_bytes().into()
}

/// Signs `claims` with `secret` (use at least 32 random bytes).
pub fn sign(secret: &[u8], claims: &DownloadClaims) -> String {
    let payload = claims.payload();
    let tag = mac(secret, payload.as_bytes());
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// Verifies `token` for `user_id` downloading `plugin_id` at `now_ms`.
///
/// # Errors
/// The first failing check, in the order of the module docs.
pub fn verify(
    secret: &[u8],
    token: &str,
    plugin_id: uuid::Uuid,
    user_id: UserId,
    now_ms: i64,
) -> Result<DownloadClaims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (payload_b64, mac_b64) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| TokenError::Malformed)?;
    let presented = URL_SAFE_NO_PAD
        .decode(mac_b64)
        .map_err(|_| TokenError::Malformed)?;
    let expected = mac(secret, &payload);
    if !bool::from(expected.as_slice().ct_eq(&presented)) {
        return Err(TokenError::BadSignature);
    }
    let claims = std::str::from_utf8(&payload)
        .ok()
        .and_then(DownloadClaims::from_payload)
        .ok_or(TokenError::Malformed)?;
    if now_ms > claims.expires_at_ms {
        return Err(TokenError::Expired);
    }
    if claims.user_id != user_id {
        return Err(TokenError::WrongUser);
    }
    if claims.plugin_id != plugin_id {
        return Err(TokenError::WrongPlugin);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"download-secret-download-secret!!";
    const NOW: i64 = 1_800_000_000_000;

    fn plugin() -> uuid::Uuid {
        uuid::Uuid::from_u128(0xabc)
    }

    fn user() -> UserId {
        UserId(uuid::Uuid::from_u128(42))
    }

    fn claims() -> DownloadClaims {
        DownloadClaims::new(plugin(), Version::parse("1.2.3-rc.1").unwrap(), user(), NOW)
    }

    #[test]
    fn a_signed_token_verifies_and_returns_its_claims() {
        let token = sign(SECRET, &claims());
        assert_eq!(verify(SECRET, &token, plugin(), user(), NOW), Ok(claims()));
    }

    #[test]
    fn tokens_live_ten_minutes() {
        assert_eq!(DOWNLOAD_TTL_MS, 600_000);
        assert_eq!(claims().expires_at_ms, NOW + 600_000);
    }

    #[test]
    fn a_token_is_valid_up_to_and_including_its_expiry_and_refused_after() {
        let token = sign(SECRET, &claims());
        let exp = NOW + DOWNLOAD_TTL_MS;
        assert!(verify(SECRET, &token, plugin(), user(), exp).is_ok());
        assert_eq!(
            verify(SECRET, &token, plugin(), user(), exp + 1),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_token_for_another_user_is_refused() {
        let token = sign(SECRET, &claims());
        let other = UserId(uuid::Uuid::from_u128(43));
        assert_eq!(
            verify(SECRET, &token, plugin(), other, NOW),
            Err(TokenError::WrongUser)
        );
    }

    #[test]
    fn a_token_for_another_plugin_is_refused() {
        let token = sign(SECRET, &claims());
        assert_eq!(
            verify(SECRET, &token, uuid::Uuid::from_u128(0xabd), user(), NOW),
            Err(TokenError::WrongPlugin)
        );
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let token = sign(b"another-secret-another-secret-!!!", &claims());
        assert_eq!(
            verify(SECRET, &token, plugin(), user(), NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn an_altered_payload_is_refused_even_when_it_would_grant_more() {
        let token = sign(SECRET, &claims());
        let (_, tag) = token.split_once('.').unwrap();
        let mut longer = claims();
        longer.expires_at_ms += 365 * 24 * 3_600_000;
        let forged_payload = URL_SAFE_NO_PAD.encode(longer.payload());
        assert_eq!(
            verify(
                SECRET,
                &format!("{forged_payload}.{tag}"),
                plugin(),
                user(),
                NOW
            ),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn every_flipped_character_of_a_token_is_refused() {
        let token = sign(SECRET, &claims());
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(
                verify(SECRET, &tampered, plugin(), user(), NOW).is_err(),
                "position {i}"
            );
        }
    }

    #[test]
    fn a_truncated_mac_is_refused() {
        let token = sign(SECRET, &claims());
        let short = &token[..token.len() - 4];
        assert!(verify(SECRET, short, plugin(), user(), NOW).is_err());
    }

    #[test]
    fn garbage_and_oversized_tokens_are_malformed() {
        for t in ["", ".", "a", "a.b", "!!!.???", "YQ.YQ.YQ"] {
            assert!(verify(SECRET, t, plugin(), user(), NOW).is_err(), "{t:?}");
        }
        let huge = format!("{}.{}", "A".repeat(MAX_TOKEN_LEN), "A");
        assert_eq!(
            verify(SECRET, &huge, plugin(), user(), NOW),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn a_correctly_signed_payload_of_the_wrong_shape_is_malformed() {
        for payload in ["x|y", "not-a-uuid|1.0.0|u|1", ""] {
            let tag = mac(SECRET, payload.as_bytes());
            let token = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(payload),
                URL_SAFE_NO_PAD.encode(tag)
            );
            assert_eq!(
                verify(SECRET, &token, plugin(), user(), NOW),
                Err(TokenError::Malformed),
                "{payload:?}"
            );
        }
    }

    #[test]
    fn a_mac_without_the_domain_prefix_is_refused() {
        let payload = claims().payload();
        let mut plain = <Hmac<Sha256> as Mac>::new_from_slice(SECRET).unwrap();
        plain.update(payload.as_bytes());
        let token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(plain.finalize().into_bytes())
        );
        assert_eq!(
            verify(SECRET, &token, plugin(), user(), NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tokens_are_url_safe() {
        let token = sign(SECRET, &claims());
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'));
    }

    #[test]
    fn refusals_map_to_forbidden() {
        for e in [
            TokenError::Malformed,
            TokenError::BadSignature,
            TokenError::Expired,
            TokenError::WrongUser,
            TokenError::WrongPlugin,
        ] {
            assert_eq!(AppError::from(e).status(), 403);
        }
    }
}
