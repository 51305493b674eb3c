//! Access tokens: HS256 JWTs with `sub`, `tier`, `sid` (the session: the refresh-token family
//! the token was issued to), `iat`, `exp`, `jti`.
//!
//! Verification accepts only `alg: HS256` with a valid signature, a `sub` that is a user id, and
//! an `exp` not in the past (no leeway: the lifetime is short and the clocks are Cloudflare's).
//! `alg: none`, other algorithms, CBOR claims and missing claims are all 401.

use chrono::{DateTime, Duration, TimeZone, Utc};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions, UntrustedToken};
use serde::{Deserialize, Serialize};

use crate::domain::{Tier, UserId};
use crate::error::AppError;

/// The custom claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AccessClaims {
    sub: String,
    tier: Tier,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    jti: String,
}

/// A verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAccess {
    /// The user.
    pub user_id: UserId,
    /// The tier at issuance (advisory only: gates read the tier from the database).
    pub tier: Tier,
    /// The session the token was issued to (revoking it ends the token at once).
    pub sid: Option<uuid::Uuid>,
    /// Token id.
    pub jti: String,
    /// Expiry (epoch ms).
    pub expires_at: i64,
}

/// An issued access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedAccess {
    /// The compact JWT.
    pub token: String,
    /// Expiry (epoch ms; whole seconds, as in the token).
    pub expires_at: i64,
}

/// Signs and verifies access tokens with one HS256 key.
pub struct AccessTokens {
    key: Hs256Key,
    ttl_secs: u64,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokens")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

fn at(now_ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(now_ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl AccessTokens {
    /// Tokens signed with `secret`, living `ttl_secs`.
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        Self {
            key: Hs256Key::new(secret),
            ttl_secs,
        }
    }

    /// Issues a token for `user_id` at `now_ms`.
    ///
    /// # Errors
    /// Internal only (serialisation cannot fail for these claims).
    pub fn issue(
        &self,
        user_id: UserId,
        tier: Tier,
        sid: uuid::Uuid,
        jti: uuid::Uuid,
        now_ms: i64,
    ) -> Result<IssuedAccess, AppError> {
        // Whole seconds, as NumericDate carries them, so `expires_at` equals the token's `exp`.
        let now_ms = now_ms - now_ms.rem_euclid(1000);
        let options = TimeOptions::new(Duration::zero(), move || at(now_ms));
        let ttl = Duration::seconds(i64::try_from(self.ttl_secs).unwrap_or(i64::MAX / 1000));
        let claims = Claims::new(AccessClaims {
            sub: user_id.to_string(),
            tier,
            sid: Some(sid.to_string()),
            jti: jti.to_string(),
        })
        .set_duration_and_issuance(&options, ttl);
        let token = Hs256
            .token(&Header::empty().with_token_type("JWT"), &claims, &self.key)
            .map_err(|e| AppError::internal(format!("signing access token: {e}")))?;
        Ok(IssuedAccess {
            token,
            expires_at: now_ms + ttl.num_milliseconds(),
        })
    }

    /// Verifies a presented token at `now_ms`.
    ///
    /// # Errors
    /// [`AppError::Unauthorized`] for anything but a valid, unexpired HS256 token of ours.
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<VerifiedAccess, AppError> {
        let untrusted = UntrustedToken::new(token).map_err(|_| AppError::Unauthorized)?;
        let token = Hs256
            .validator::<AccessClaims>(&self.key)
            .validate(&untrusted)
            .map_err(|_| AppError::Unauthorized)?;
        let options = TimeOptions::new(Duration::zero(), move || at(now_ms));
        let claims = token.claims();
        claims
            .validate_expiration(&options)
            .map_err(|_| AppError::Unauthorized)?;
        let user_id = UserId::parse(&claims.custom.sub).ok_or(AppError::Unauthorized)?;
        let expires_at = claims.expiration.map_or(0, |e| e.timestamp_millis());
        let sid = match claims.custom.sid.as_deref() {
            None => None,
            Some(s) => Some(uuid::Uuid::try_parse(s).map_err(|_| AppError::Unauthorized)?),
        };
        Ok(VerifiedAccess {
            user_id,
            tier: claims.custom.tier,
            sid,
            jti: claims.custom.jti.clone(),
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::json;

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_800_000_000_000;

    fn tokens() -> AccessTokens {
        AccessTokens::new(SECRET, 900)
    }

    fn user() -> UserId {
        UserId(uuid::Uuid::from_u128(42))
    }

    /// Builds a token by hand: header and claims as given, HMAC-SHA256 with `key`.
    fn forge(header: &serde_json::Value, claims: &serde_json::Value, key: &[u8]) -> String {
        use hmac_sha256_for_tests as h;
        let head = URL_SAFE_NO_PAD.encode(header.to_string());
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{head}.{body}");
        let sig = URL_SAFE_NO_PAD.encode(h::hmac(key, signing_input.as_bytes()));
        format!("{signing_input}.{sig}")
    }

    /// A tiny HMAC-SHA256 so these tests do not trust the code under test to sign.
    mod hmac_sha256_for_tests {
        use sha2::{Digest, Sha256};

        pub fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
            let mut k = [0u8; 64];
            if key.len() > 64 {
                k[..32].copy_from_slice(&Sha256::digest(key));
            } else {
                k[..key.len()].copy_from_slice(key);
            }
            let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
            let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
            let inner = Sha256::new()
                .chain_update(&ipad)
                .chain_update(msg)
                .finalize();
            Sha256::new()
                .chain_update(&opad)
                .chain_update(inner)
                .finalize()
                .to_vec()
        }
    }

    fn valid_claims() -> serde_json::Value {
        json!({"sub": user().to_string(), "tier": "pro", "jti": "j", "iat": NOW / 1000, "exp": NOW / 1000 + 900})
    }

    #[test]
    fn an_issued_token_verifies_until_its_expiry() {
        let t = tokens();
        let sid = uuid::Uuid::from_u128(5);
        let issued = t
            .issue(user(), Tier::Pro, sid, uuid::Uuid::nil(), NOW + 123)
            .unwrap();
        assert_eq!(issued.expires_at, NOW + 900_000);
        let v = t.verify(&issued.token, NOW + 899_999).unwrap();
        assert_eq!(v.user_id, user());
        assert_eq!(v.tier, Tier::Pro);
        assert_eq!(v.sid, Some(sid), "the session travels in the token");
        assert_eq!(v.expires_at, issued.expires_at);
        assert!(t.verify(&issued.token, issued.expires_at).is_ok());
        assert!(t.verify(&issued.token, issued.expires_at + 1).is_err());
    }

    #[test]
    fn an_independently_signed_valid_token_is_accepted() {
        let token = forge(
            &json!({"alg": "HS256", "typ": "JWT"}),
            &valid_claims(),
            SECRET,
        );
        assert!(tokens().verify(&token, NOW).is_ok());
    }

    #[test]
    fn a_token_signed_with_another_key_is_rejected() {
        let token = forge(
            &json!({"alg": "HS256"}),
            &valid_claims(),
            b"another-secret-another-secret-xx",
        );
        assert!(tokens().verify(&token, NOW).is_err());
    }

    #[test]
    fn alg_none_is_rejected() {
        let head = URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string());
        let body = URL_SAFE_NO_PAD.encode(valid_claims().to_string());
        for token in [format!("{head}.{body}."), format!("{head}.{body}")] {
            assert!(tokens().verify(&token, NOW).is_err(), "{token}");
        }
    }

    #[test]
    fn other_algorithms_are_rejected_even_with_a_valid_hmac() {
        for alg in ["HS384", "HS512", "RS256", "hs256"] {
            let token = forge(&json!({"alg": alg}), &valid_claims(), SECRET);
            assert!(tokens().verify(&token, NOW).is_err(), "{alg}");
        }
    }

    #[test]
    fn tokens_without_sub_or_exp_or_with_a_bad_sub_are_rejected() {
        let mut no_sub = valid_claims();
        no_sub.as_object_mut().unwrap().remove("sub");
        let mut no_exp = valid_claims();
        no_exp.as_object_mut().unwrap().remove("exp");
        let mut bad_sub = valid_claims();
        bad_sub["sub"] = json!("admin");
        for claims in [no_sub, no_exp, bad_sub] {
            let token = forge(&json!({"alg": "HS256"}), &claims, SECRET);
            assert!(tokens().verify(&token, NOW).is_err(), "{claims}");
        }
    }

    #[test]
    fn a_tampered_payload_is_rejected() {
        let issued = tokens()
            .issue(
                user(),
                Tier::Free,
                uuid::Uuid::nil(),
                uuid::Uuid::nil(),
                NOW,
            )
            .unwrap();
        let mut parts: Vec<String> = issued.token.split('.').map(str::to_owned).collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        claims["tier"] = json!("team");
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert!(tokens().verify(&parts.join("."), NOW).is_err());
    }

    #[test]
    fn garbage_is_rejected() {
        for token in ["", "a", "a.b", "a.b.c", "...", "Bearer x"] {
            assert!(tokens().verify(token, NOW).is_err(), "{token}");
        }
    }
}
