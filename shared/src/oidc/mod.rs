//! OIDC ID tokens (team SSO, [`crate::teams::sso`]): verifies an identity provider's ID token
//! against its JWKS.
//!
//! ## Rules
//! - Only `RS256` (RSA ≥ 2048 bits) and `ES256` (P-256) are accepted; `none`, HMAC and every
//!   other `alg` are refused before any key is looked at, so an unsigned token or one "signed"
//!   with the public key as an HMAC secret never passes.
//! - The key is the JWKS entry whose `kid` is the token header's (a header without `kid` is
//!   accepted only against a JWKS of exactly one key of the algorithm's type); a key that names
//!   its own `alg` must name the token's. An unknown `kid` is [`IdTokenError::UnknownKey`]:
//!   the caller fetches the JWKS again once (key rotation) and verifies against the new set
//!   only, so a key the IdP dropped is no longer trusted.
//! - Claims: `iss` equals the issuer exactly; `aud` is the client id (or an array holding it,
//!   and then `azp` must be the client id); `exp` is required and in the future (60 s leeway for
//!   clock skew), `nbf` (when present) passed; `nonce` equals the one this sign-in sent;
//!   `email` present and `email_verified` true.

use chrono::{DateTime, Duration, Utc};
use jwt_compact::alg::{Rsa, RsaPublicKey, StrongKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, TimeOptions, UntrustedToken};
use serde::Deserialize;

/// Clock skew tolerated on `exp` and `nbf` (seconds).
pub const CLOCK_LEEWAY_S: i64 = 60;

/// An IdP's key set (`jwks_uri`), as published.
#[derive(Debug, Clone, Deserialize)]
pub struct Jwks {
    /// The keys (unknown key types are skipped when verifying).
    pub keys: Vec<serde_json::Value>,
}

/// What a verified ID token must match.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The issuer (`iss`), exactly as in the discovery document.
    pub issuer: &'a str,
    /// The team's client id at the IdP (`aud`).
    pub client_id: &'a str,
    /// The nonce this sign-in sent in the authorization request.
    pub nonce: &'a str,
    /// Now (epoch ms).
    pub now_ms: i64,
}

/// A verified ID token's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// The IdP's subject.
    pub subject: String,
    /// The verified email address (as the IdP sent it; normalise before use).
    pub email: String,
}

/// Why an ID token was refused (never the token's content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    /// Not a JWS compact token, or unreadable claims.
    #[error("malformed ID token")]
    Malformed,
    /// An algorithm other than RS256/ES256 (`none` included).
    #[error("ID token algorithm not accepted")]
    Algorithm,
    /// No key of the JWKS matches the token's `kid` (fetch the JWKS again once).
    #[error("ID token signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify (or the key is unusable, e.g. RSA below 2048 bits).
    #[error("ID token signature invalid")]
    Signature,
    /// `iss` is not the issuer.
    #[error("ID token issuer mismatch")]
    Issuer,
    /// `aud`/`azp` is not the client id.
    #[error("ID token audience mismatch")]
    Audience,
    /// `exp` missing or passed, or `nbf` in the future.
    #[error("ID token expired or not yet valid")]
    Expired,
    /// `nonce` missing or not this sign-in's.
    #[error("ID token nonce mismatch")]
    Nonce,
    /// No `email`, or `email_verified` not true.
    #[error("ID token email not verified")]
    EmailUnverified,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct IdClaims {
    iss: String,
    sub: String,
    aud: Audience,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
}

/// The JWKS entry for `kid` of type `kty`, its own `alg` (when it names one) agreeing.
fn find_key<'a>(
    jwks: &'a Jwks,
    kid: Option<&str>,
    kty: &str,
    alg: &str,
) -> Result<&'a serde_json::Value, IdTokenError> {
    let of_type = |k: &&serde_json::Value| k["kty"].as_str() == Some(kty);
    let key = if let Some(kid) = kid {
        jwks.keys
            .iter()
            .filter(of_type)
            .find(|k| k["kid"].as_str() == Some(kid))
    } else {
        // No `kid`: only a set of exactly one key of the type says which key.
        let mut all = jwks.keys.iter().filter(of_type);
        let only = all.next();
        if all.next().is_some() {
            None
        } else {
            only
        }
    }
    .ok_or(IdTokenError::UnknownKey)?;
    match key.get("alg").and_then(|a| a.as_str()) {
        Some(named) if named != alg => Err(IdTokenError::Algorithm),
        _ => Ok(key),
    }
}

/// Verifies an ES256 signature (P-256, `r ‖ s`) over the token's signing input with the JWK's
/// point.
fn es256_verify(
    token: &str,
    untrusted: &UntrustedToken<'_>,
    key: &serde_json::Value,
) -> Result<(), IdTokenError> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use p256::ecdsa::signature::Verifier;
    if key["crv"].as_str() != Some("P-256") {
        return Err(IdTokenError::Signature);
    }
    let coordinate = |name: &str| {
        key[name]
            .as_str()
            .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
            .filter(|c| c.len() == 32)
            .ok_or(IdTokenError::Signature)
    };
    let mut point = vec![0x04];
    point.extend(coordinate("x")?);
    point.extend(coordinate("y")?);
    let key =
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(|_| IdTokenError::Signature)?;
    let signature = p256::ecdsa::Signature::from_slice(untrusted.signature_bytes())
        .map_err(|_| IdTokenError::Signature)?;
    let (signed, _) = token.rsplit_once('.').ok_or(IdTokenError::Malformed)?;
    key.verify(signed.as_bytes(), &signature)
        .map_err(|_| IdTokenError::Signature)
}

fn jwk(value: &serde_json::Value) -> Result<JsonWebKey<'static>, IdTokenError> {
    serde_json::from_value(value.clone()).map_err(|_| IdTokenError::Signature)
}

fn at(now_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(now_ms).unwrap_or(DateTime::UNIX_EPOCH)
}

/// Verifies `token` against `jwks` and `expected`.
///
/// # Errors
/// Why it was refused ([`IdTokenError`]).
pub fn verify_id_token(
    token: &str,
    jwks: &Jwks,
    expected: &Expected<'_>,
) -> Result<VerifiedIdentity, IdTokenError> {
    let untrusted = UntrustedToken::new(token).map_err(|_| IdTokenError::Malformed)?;
    let kid = untrusted.header().key_id.as_deref();
    let claims: Claims<IdClaims> = match untrusted.algorithm() {
        "RS256" => {
            let key = RsaPublicKey::try_from(&jwk(find_key(jwks, kid, "RSA", "RS256")?)?)
                .map_err(|_| IdTokenError::Signature)?;
            // At least 2048 bits.
            let key = StrongKey::try_from(key).map_err(|_| IdTokenError::Signature)?;
            Rsa::rs256()
                .validator::<IdClaims>(key.as_ref())
                .validate(&untrusted)
                .map_err(|_| IdTokenError::Signature)?
                .into_parts()
                .1
        }
        "ES256" => {
            es256_verify(token, &untrusted, find_key(jwks, kid, "EC", "ES256")?)?;
            untrusted
                .deserialize_claims_unchecked::<IdClaims>()
                .map_err(|_| IdTokenError::Malformed)?
        }
        _ => return Err(IdTokenError::Algorithm),
    };
    let now = expected.now_ms;
    let options = TimeOptions::new(Duration::seconds(CLOCK_LEEWAY_S), move || at(now));
    claims
        .validate_expiration(&options)
        .map_err(|_| IdTokenError::Expired)?;
    if claims.not_before.is_some() {
        claims
            .validate_maturity(&options)
            .map_err(|_| IdTokenError::Expired)?;
    }
    let c = claims.custom;
    if c.iss != expected.issuer {
        return Err(IdTokenError::Issuer);
    }
    let audience_ok = match &c.aud {
        Audience::One(a) => a == expected.client_id,
        Audience::Many(all) => {
            all.iter().any(|a| a == expected.client_id)
                && (all.len() == 1 || c.azp.as_deref() == Some(expected.client_id))
        }
    };
    if !audience_ok
        || c.azp
            .as_deref()
            .is_some_and(|azp| azp != expected.client_id)
    {
        return Err(IdTokenError::Audience);
    }
    if c.nonce.as_deref() != Some(expected.nonce) {
        return Err(IdTokenError::Nonce);
    }
    // Some IdPs send `"true"` as a string.
    let verified = match &c.email_verified {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s == "true",
        _ => false,
    };
    match c.email {
        Some(email) if verified && !email.is_empty() => Ok(VerifiedIdentity {
            subject: c.sub,
            email,
        }),
        _ => Err(IdTokenError::EmailUnverified),
    }
}

#[cfg(test)]
mod tests;
