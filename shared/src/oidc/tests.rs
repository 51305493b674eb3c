use jwt_compact::alg::{Hs256, Hs256Key, Rsa, RsaPrivateKey, RsaPublicKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, Header};
use serde_json::{json, Value};

use super::*;

const NOW_MS: i64 = 1_800_000_000_000;
const NOW_S: i64 = NOW_MS / 1000;
const ISSUER: &str = "http://127.0.0.1:9999/idp";
const CLIENT: &str = "adiuva-client";
const NONCE: &str = "n-0S6_WzA2Mj";

/// Two 2048-bit RSA keys, generated once per test run (no private key is committed).
fn rsa_keys() -> &'static [RsaPrivateKey; 2] {
    static KEYS: std::sync::OnceLock<[RsaPrivateKey; 2]> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rand_core::OsRng;
        let mut new = || RsaPrivateKey::new(&mut rng, 2048).expect("an RSA key");
        [new(), new()]
    })
}

fn key_a() -> RsaPrivateKey {
    rsa_keys()[0].clone()
}

fn key_b() -> RsaPrivateKey {
    rsa_keys()[1].clone()
}

fn ec_key() -> p256::ecdsa::SigningKey {
    // A fixed test-only P-256 scalar.
    p256::ecdsa::SigningKey::from_slice(
        &hex::decode("3c42978484b0dea57f3a3b2167a81361c68356ee898c47cecfc603f49f8a3317").unwrap(),
    )
    .expect("a valid scalar")
}

fn rsa_jwk(key: &RsaPrivateKey, kid: &str) -> Value {
    let public = RsaPublicKey::from(key);
    let mut v = serde_json::to_value(JsonWebKey::from(&public)).unwrap();
    v["kid"] = json!(kid);
    v["use"] = json!("sig");
    v
}

fn ec_jwk(key: &p256::ecdsa::SigningKey, kid: &str) -> Value {
    let point = key.verifying_key().to_encoded_point(false);
    json!({"kty": "EC", "crv": "P-256", "kid": kid,
        "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())})
}

fn b64(bytes: &[u8]) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    URL_SAFE_NO_PAD.encode(bytes)
}

fn jwks(keys: Vec<Value>) -> Jwks {
    Jwks { keys }
}

fn claims() -> Value {
    json!({"iss": ISSUER, "sub": "idp-user-1", "aud": CLIENT, "nonce": NONCE,
        "email": "grace@corp.example", "email_verified": true,
        "exp": NOW_S + 300, "iat": NOW_S})
}

/// Claims as jwt-compact signs them: `exp`/`iat` in the registered fields, the rest custom.
fn to_claims(mut v: Value) -> Claims<Value> {
    let obj = v.as_object_mut().unwrap();
    let exp = obj.remove("exp").and_then(|e| e.as_i64());
    let nbf = obj.remove("nbf").and_then(|e| e.as_i64());
    obj.remove("iat");
    let mut c = Claims::new(v);
    c.expiration = exp.and_then(DateTime::from_timestamp_secs);
    c.not_before = nbf.and_then(DateTime::from_timestamp_secs);
    c
}

fn rs256(key: &RsaPrivateKey, kid: Option<&str>, claims: Value) -> String {
    let mut header = Header::empty();
    if let Some(k) = kid {
        header = header.with_key_id(k);
    }
    Rsa::rs256()
        .token(&header, &to_claims(claims), key)
        .unwrap()
}

/// An ES256 token signed here with `p256` directly (`r ‖ s` over `header.payload`).
fn es256(key: &p256::ecdsa::SigningKey, kid: &str, claims: &Value) -> String {
    use p256::ecdsa::signature::Signer;
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": kid});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.to_bytes()))
}

fn expected() -> Expected<'static> {
    Expected {
        issuer: ISSUER,
        client_id: CLIENT,
        nonce: NONCE,
        now_ms: NOW_MS,
    }
}

fn verify(token: &str, set: &Jwks) -> Result<VerifiedIdentity, IdTokenError> {
    verify_id_token(token, set, &expected())
}

fn with(key: &str, value: Value) -> Value {
    let mut c = claims();
    c[key] = value;
    c
}

#[test]
fn an_rs256_and_an_es256_id_token_of_the_issuer_verify_to_the_verified_email() {
    let (a, ec) = (key_a(), ec_key());
    let set = jwks(vec![rsa_jwk(&a, "a"), ec_jwk(&ec, "e")]);
    let want = VerifiedIdentity {
        subject: "idp-user-1".into(),
        email: "grace@corp.example".into(),
    };
    assert_eq!(
        verify(&rs256(&a, Some("a"), claims()), &set),
        Ok(want.clone())
    );
    assert_eq!(verify(&es256(&ec, "e", &claims()), &set), Ok(want.clone()));
    // `email_verified` as a string, an audience array of one, and a right `azp`.
    let c = with("email_verified", json!("true"));
    assert!(verify(&rs256(&a, Some("a"), c), &set).is_ok());
    let mut c = with("aud", json!([CLIENT, "other"]));
    c["azp"] = json!(CLIENT);
    assert!(verify(&rs256(&a, Some("a"), c), &set).is_ok());
    // No kid against a set of exactly one RSA key.
    assert_eq!(verify(&rs256(&a, None, claims()), &set), Ok(want));
}

#[test]
fn unsigned_and_hmac_tokens_are_refused_whatever_they_claim() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let a = key_a();
    let set = jwks(vec![rsa_jwk(&a, "a")]);
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": "a"})),
        b64(&claims())
    );
    assert_eq!(verify(&none, &set), Err(IdTokenError::Algorithm));
    let none_upper = format!("{}.{}.", b64(&json!({"alg": "None"})), b64(&claims()));
    assert_eq!(verify(&none_upper, &set), Err(IdTokenError::Algorithm));
    // HS256 "signed" with the public key's modulus as the secret (key confusion).
    let n = RsaPublicKey::from(&a);
    let secret = Hs256Key::new(rsa::traits::PublicKeyParts::n(&n).to_bytes_be());
    let hs = Hs256
        .token(
            &Header::empty().with_key_id("a"),
            &to_claims(claims()),
            &secret,
        )
        .unwrap();
    assert_eq!(verify(&hs, &set), Err(IdTokenError::Algorithm));
    assert_eq!(verify("not.a.jwt", &set), Err(IdTokenError::Malformed));
    assert_eq!(verify("", &set), Err(IdTokenError::Malformed));
}

#[test]
fn a_wrong_signature_a_tampered_payload_or_a_mismatched_key_alg_is_refused() {
    let (a, b) = (key_a(), key_b());
    let set = jwks(vec![rsa_jwk(&a, "a")]);
    // Signed by b, claiming a's kid.
    assert_eq!(
        verify(&rs256(&b, Some("a"), claims()), &set),
        Err(IdTokenError::Signature)
    );
    // The payload changed after signing.
    let token = rs256(&a, Some("a"), claims());
    let parts: Vec<&str> = token.split('.').collect();
    let forged = {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        URL_SAFE_NO_PAD.encode(with("email", json!("ceo@corp.example")).to_string())
    };
    let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
    assert_eq!(verify(&tampered, &set), Err(IdTokenError::Signature));
    // A key published for another algorithm.
    let mut k = rsa_jwk(&a, "a");
    k["alg"] = json!("RS384");
    assert_eq!(
        verify(&rs256(&a, Some("a"), claims()), &jwks(vec![k])),
        Err(IdTokenError::Algorithm)
    );
    // No kid against two keys: which one is unknown.
    let two = jwks(vec![rsa_jwk(&a, "a"), rsa_jwk(&b, "b")]);
    assert_eq!(
        verify(&rs256(&a, None, claims()), &two),
        Err(IdTokenError::UnknownKey)
    );
}

#[test]
fn after_a_key_rotation_the_new_kid_verifies_and_the_dropped_key_is_no_longer_trusted() {
    let (a, b) = (key_a(), key_b());
    let before = jwks(vec![rsa_jwk(&a, "a")]);
    let after = jwks(vec![rsa_jwk(&b, "b")]);
    let new_token = rs256(&b, Some("b"), claims());
    let old_token = rs256(&a, Some("a"), claims());
    // The cached set does not know the new kid: the caller fetches the JWKS again.
    assert_eq!(verify(&new_token, &before), Err(IdTokenError::UnknownKey));
    assert!(verify(&new_token, &after).is_ok());
    assert_eq!(verify(&old_token, &after), Err(IdTokenError::UnknownKey));
}

#[test]
fn issuer_audience_expiry_nonce_and_email_verification_are_each_enforced() {
    let a = key_a();
    let set = jwks(vec![rsa_jwk(&a, "a")]);
    let check = |c: Value| verify(&rs256(&a, Some("a"), c), &set);
    assert_eq!(
        check(with("iss", json!("http://127.0.0.1:9999/other"))),
        Err(IdTokenError::Issuer)
    );
    assert_eq!(
        check(with("aud", json!("another-client"))),
        Err(IdTokenError::Audience)
    );
    assert_eq!(
        check(with("aud", json!(["another-client"]))),
        Err(IdTokenError::Audience)
    );
    assert_eq!(
        check(with("aud", json!([CLIENT, "other"]))),
        Err(IdTokenError::Audience),
        "azp missing"
    );
    assert_eq!(
        check(with("azp", json!("other"))),
        Err(IdTokenError::Audience)
    );
    assert_eq!(
        check(with("exp", json!(NOW_S - CLOCK_LEEWAY_S - 1))),
        Err(IdTokenError::Expired)
    );
    assert!(
        check(with("exp", json!(NOW_S - CLOCK_LEEWAY_S + 5))).is_ok(),
        "within the leeway"
    );
    let mut no_exp = claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(check(no_exp), Err(IdTokenError::Expired));
    assert_eq!(
        check(with("nbf", json!(NOW_S + CLOCK_LEEWAY_S + 5))),
        Err(IdTokenError::Expired)
    );
    assert_eq!(
        check(with("nonce", json!("another-sign-in"))),
        Err(IdTokenError::Nonce)
    );
    let mut no_nonce = claims();
    no_nonce.as_object_mut().unwrap().remove("nonce");
    assert_eq!(check(no_nonce), Err(IdTokenError::Nonce));
    assert_eq!(
        check(with("email_verified", json!(false))),
        Err(IdTokenError::EmailUnverified)
    );
    assert_eq!(
        check(with("email_verified", json!("yes"))),
        Err(IdTokenError::EmailUnverified)
    );
    let mut no_email = claims();
    no_email.as_object_mut().unwrap().remove("email");
    assert_eq!(check(no_email), Err(IdTokenError::EmailUnverified));
}
