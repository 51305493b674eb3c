//! Team single sign-on (OIDC authorization code flow with PKCE): the rules, and the service
//! ([`SsoService`]) behind `PUT /teams/{id}/sso`, `GET /auth/sso/start`,
//! `GET /auth/sso/callback` and `POST /auth/sso/redeem`.
//!
//! ## Rules
//! - **Configuration** (`PUT /teams/{id}/sso {issuer, client_id, client_secret, domains,
//!   required?}`, owner or admin of a team whose subscription grants `sso`): the issuer is an
//!   absolute `https://` URL without query or fragment (`http://` only with `ENV=dev`); 1 to
//!   [`MAX_DOMAINS`] email domains, normalised to lower case, each a dotted host name claimed by
//!   no other team; `client_id` 1–255 printable characters, `client_secret` 1–1024. The issuer's
//!   discovery document (`{issuer}/.well-known/openid-configuration`) must name the same
//!   `issuer` exactly, an authorization, token and JWKS endpoint of the issuer's scheme, the
//!   `code` response type, and (when it lists them) `S256` PKCE and `RS256` or `ES256`.
//! - **Start** (`GET /auth/sso/start?email=…`): the team is found by the address's domain (404
//!   for a domain no team claims). A sign-in gets a 256-bit `state`, a 256-bit `nonce` and a
//!   256-bit PKCE verifier ([`new_login`]); only the state's SHA-256 is stored, for
//!   [`LOGIN_TTL_MS`], single use. The authorization URL ([`authorization_url`]) asks for
//!   `openid email` with `code_challenge_method=S256`.
//! - **Callback**: every failure is a redirect to `app://adiuva/sso?error=<code>` with one of
//!   the stable [`SsoFailure`] codes, and creates nothing; success redirects to
//!   `app://adiuva/sso?code=<one-time code>` (60 s, single use, SHA-256 stored), redeemed by
//!   `POST /auth/sso/redeem {code}` for the usual token pair.

mod service;

pub use service::{
    PendingLogin, SaveOutcome, SsoConfig, SsoJoin, SsoService, SsoSettings, SsoStore,
    IDP_TIMEOUT_MS,
};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::FieldError;
use crate::ports::Random;

/// The most email domains one team may claim.
pub const MAX_DOMAINS: usize = 20;
/// How long a started sign-in may come back through the callback (ms): 10 minutes.
pub const LOGIN_TTL_MS: i64 = 10 * 60_000;
/// How long the callback's one-time code may be redeemed (ms): 60 s.
pub const REDEEM_TTL_MS: i64 = 60_000;
/// Where the app receives the outcome (its registered custom scheme).
pub const APP_REDIRECT: &str = "app://adiuva/sso";
/// The callback's path under `PUBLIC_BASE_URL`.
pub const CALLBACK_PATH: &str = "/api/v1/auth/sso/callback";
/// The most bytes of a discovery document, JWKS or token response read from an IdP.
pub const MAX_IDP_BODY: usize = 256 * 1024;

/// Why a callback failed, as the app's redirect names it (`?error=<code>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoFailure {
    /// `code` or `state` missing, or the IdP sent its own `error`.
    InvalidRequest,
    /// The state is unknown, expired or already used (a replayed callback).
    InvalidState,
    /// The token endpoint refused the code or could not be reached.
    ExchangeFailed,
    /// The ID token failed verification (signature, `iss`, `aud`, `exp`, `nonce`, algorithm).
    InvalidIdToken,
    /// The IdP did not vouch for the address (`email_verified` not true).
    EmailNotVerified,
    /// The verified address is not in one of the team's domains.
    DomainMismatch,
    /// The account belongs to another team.
    OtherTeam,
    /// The team has no free seat.
    NoSeat,
    /// The team's subscription no longer grants `sso`, or the account is suspended.
    NotAllowed,
    /// An account with this address exists but was never verified (it may have been
    /// registered by someone else); verify the address and reset the password first.
    AccountUnverified,
    /// Our side failed (D1, configuration); nothing was created.
    Unavailable,
}

impl SsoFailure {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidState => "invalid_state",
            Self::ExchangeFailed => "exchange_failed",
            Self::InvalidIdToken => "invalid_id_token",
            Self::EmailNotVerified => "email_not_verified",
            Self::DomainMismatch => "domain_mismatch",
            Self::OtherTeam => "other_team",
            Self::NoSeat => "no_seat",
            Self::NotAllowed => "not_allowed",
            Self::AccountUnverified => "account_unverified",
            Self::Unavailable => "unavailable",
        }
    }

    /// The redirect to the app for this failure.
    pub fn redirect(self) -> String {
        format!("{APP_REDIRECT}?error={}", self.code())
    }
}

impl From<crate::oidc::IdTokenError> for SsoFailure {
    fn from(e: crate::oidc::IdTokenError) -> Self {
        match e {
            crate::oidc::IdTokenError::EmailUnverified => Self::EmailNotVerified,
            _ => Self::InvalidIdToken,
        }
    }
}

/// The redirect to the app carrying a one-time code.
pub fn success_redirect(code: &str) -> String {
    format!("{APP_REDIRECT}?code={code}")
}

/// An issuer URL as configured: absolute, `https` (or `http` when `allow_http`), no query, no
/// fragment, no credentials; kept as written without a trailing slash (OIDC compares issuers
/// exactly).
///
/// # Errors
/// A [`FieldError`] on `issuer`.
pub fn parse_issuer(raw: &str, allow_http: bool) -> Result<String, FieldError> {
    let bad = |m: &str| FieldError::new("issuer", m);
    let trimmed = raw.trim().trim_end_matches('/');
    if trimmed.is_empty() || trimmed.len() > 512 {
        return Err(bad("must be an absolute URL of at most 512 characters"));
    }
    let url = url::Url::parse(trimmed).map_err(|_| bad("must be an absolute URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ => return Err(bad("must be an https:// URL")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("must name a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    Ok(trimmed.to_owned())
}

/// The claimed email domains: lower case, deduplicated, each a dotted host name (labels of
/// letters, digits and hyphens, 1–63 characters, not starting or ending with a hyphen).
///
/// # Errors
/// A [`FieldError`] on `domains` (or `domains[i]`).
pub fn parse_domains(raw: &[String]) -> Result<Vec<String>, FieldError> {
    if raw.is_empty() || raw.len() > MAX_DOMAINS {
        return Err(FieldError::new(
            "domains",
            format!("must hold 1 to {MAX_DOMAINS} domains"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, d) in raw.iter().enumerate() {
        let d = d.trim().trim_end_matches('.').to_lowercase();
        let labels: Vec<&str> = d.split('.').collect();
        let ok = d.len() <= 253
            && labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !ok {
            return Err(FieldError::new(
                format!("domains[{i}]"),
                "must be a domain name such as example.com",
            ));
        }
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

/// A client id or secret: 1..=`max` characters, none of them control characters.
///
/// # Errors
/// A [`FieldError`] on `field`.
pub fn parse_credential(field: &str, raw: &str, max: usize) -> Result<String, FieldError> {
    let n = raw.chars().count();
    if n == 0 || n > max || raw.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            format!("must be 1 to {max} printable characters"),
        ));
    }
    Ok(raw.to_owned())
}

/// The domain of an (already normalised) address.
pub fn email_domain(email: &str) -> Option<&str> {
    email.rsplit_once('@').map(|(_, d)| d)
}

/// An IdP's discovery document, as far as the flow needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    /// The issuer it speaks for.
    pub issuer: String,
    /// Where the user signs in.
    pub authorization_endpoint: String,
    /// Where the code is exchanged.
    pub token_endpoint: String,
    /// The signing keys.
    pub jwks_uri: String,
    /// Response types (must include `code`).
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    /// PKCE methods, when listed (must include `S256`).
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// ID token algorithms, when listed (must include `RS256` or `ES256`).
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Option<Vec<String>>,
}

/// The endpoints a checked discovery document gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Authorization endpoint.
    pub authorization: String,
    /// Token endpoint.
    pub token: String,
    /// JWKS.
    pub jwks: String,
}

/// Checks a discovery document fetched for `issuer` (see the module's rules); the message is
/// safe to show (it never quotes the document).
///
/// # Errors
/// A [`FieldError`] on `issuer` saying what is wrong.
pub fn check_discovery(
    issuer: &str,
    doc: &Discovery,
    allow_http: bool,
) -> Result<Endpoints, FieldError> {
    let bad = |m: &str| FieldError::new("issuer", m);
    if doc.issuer.trim_end_matches('/') != issuer {
        return Err(bad(
            "the discovery document names another issuer than the one configured",
        ));
    }
    let endpoint = |raw: &str, what: &str| -> Result<String, FieldError> {
        let url = url::Url::parse(raw)
            .map_err(|_| bad(&format!("the discovery document's {what} is not a URL")))?;
        let scheme_ok = url.scheme() == "https" || (allow_http && url.scheme() == "http");
        if !scheme_ok || url.host_str().is_none_or(str::is_empty) {
            return Err(bad(&format!(
                "the discovery document's {what} must be an https:// URL"
            )));
        }
        Ok(url.to_string())
    };
    if !doc.response_types_supported.iter().any(|t| t == "code") {
        return Err(bad("the identity provider does not offer the code flow"));
    }
    if let Some(methods) = &doc.code_challenge_methods_supported {
        if !methods.iter().any(|m| m == "S256") {
            return Err(bad("the identity provider does not offer PKCE with S256"));
        }
    }
    if let Some(algs) = &doc.id_token_signing_alg_values_supported {
        if !algs.iter().any(|a| a == "RS256" || a == "ES256") {
            return Err(bad(
                "the identity provider signs ID tokens with neither RS256 nor ES256",
            ));
        }
    }
    Ok(Endpoints {
        authorization: endpoint(&doc.authorization_endpoint, "authorization_endpoint")?,
        token: endpoint(&doc.token_endpoint, "token_endpoint")?,
        jwks: endpoint(&doc.jwks_uri, "jwks_uri")?,
    })
}

/// The secrets of one sign-in: sent to the IdP (`state`, `nonce`, the verifier's challenge) and
/// kept server-side (the state's hash, the nonce, the verifier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogin {
    /// `state` (256 bits, base64url).
    pub state: String,
    /// `nonce` (256 bits, base64url).
    pub nonce: String,
    /// The PKCE verifier (256 bits, base64url: 43 characters, within RFC 7636's 43–128).
    pub verifier: String,
}

impl NewLogin {
    /// SHA-256 of the state, as stored.
    pub fn state_hash(&self) -> [u8; 32] {
        Sha256::digest(self.state.as_bytes()).into()
    }
}

fn token(rng: &dyn Random) -> String {
    let mut b = [0u8; 32];
    rng.fill(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// A fresh sign-in.
pub fn new_login(rng: &dyn Random) -> NewLogin {
    NewLogin {
        state: token(rng),
        nonce: token(rng),
        verifier: token(rng),
    }
}

/// RFC 7636's S256 challenge of `verifier`.
pub fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The IdP's authorization URL for `login`.
pub fn authorization_url(
    endpoint: &str,
    client_id: &str,
    redirect_uri: &str,
    login: &NewLogin,
    login_hint: &str,
) -> Result<String, url::ParseError> {
    let mut url = url::Url::parse(endpoint)?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid email")
        .append_pair("state", &login.state)
        .append_pair("nonce", &login.nonce)
        .append_pair("code_challenge", &code_challenge(&login.verifier))
        .append_pair("code_challenge_method", "S256")
        .append_pair("login_hint", login_hint);
    Ok(url.to_string())
}

/// The form body of the code exchange (client authentication `client_secret_post`).
pub fn token_request_body(
    code: &str,
    redirect_uri: &str,
    client_id: &str,
    client_secret: &str,
    verifier: &str,
) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("client_id", client_id)
        .append_pair("client_secret", client_secret)
        .append_pair("code_verifier", verifier)
        .finish()
}

/// What the token endpoint answers (only the ID token is used).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    /// The ID token.
    pub id_token: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeqRandom;

    fn doc(issuer: &str) -> Discovery {
        serde_json::from_value(serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code", "id_token"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }))
        .unwrap()
    }

    #[test]
    fn an_issuer_must_be_https_outside_dev_and_plain_otherwise() {
        assert_eq!(
            parse_issuer("https://idp.example.com/", false).unwrap(),
            "https://idp.example.com"
        );
        assert!(parse_issuer("http://127.0.0.1:9000", false).is_err());
        assert_eq!(
            parse_issuer("http://127.0.0.1:9000", true).unwrap(),
            "http://127.0.0.1:9000"
        );
        for bad in [
            "",
            "idp.example.com",
            "ftp://idp.example.com",
            "https://idp.example.com/?x=1",
            "https://idp.example.com/#f",
            "https://user:pw@idp.example.com",
        ] {
            assert!(parse_issuer(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn domains_are_lower_cased_deduplicated_and_checked() {
        let d = parse_domains(&[
            "Example.COM".into(),
            "example.com.".into(),
            "b.example.org".into(),
        ])
        .unwrap();
        assert_eq!(d, ["example.com", "b.example.org"]);
        assert!(parse_domains(&[]).is_err());
        assert!(parse_domains(&vec!["a.example.com".to_owned(); MAX_DOMAINS + 1]).is_err());
        for bad in [
            "localhost",
            "-a.example.com",
            "exa mple.com",
            "a..com",
            "*.example.com",
        ] {
            let e = parse_domains(&["ok.example.com".into(), bad.into()]).unwrap_err();
            assert_eq!(e.field, "domains[1]", "{bad}");
        }
    }

    #[test]
    fn a_discovery_document_for_another_issuer_or_without_the_code_flow_is_refused() {
        let issuer = "https://idp.example.com";
        let ok = check_discovery(issuer, &doc(issuer), false).unwrap();
        assert_eq!(ok.token, "https://idp.example.com/token");
        assert!(check_discovery(issuer, &doc("https://evil.example.com"), false).is_err());
        let mut d = doc(issuer);
        d.response_types_supported = vec!["id_token".into()];
        assert!(check_discovery(issuer, &d, false).is_err());
        let mut d = doc(issuer);
        d.code_challenge_methods_supported = Some(vec!["plain".into()]);
        assert!(check_discovery(issuer, &d, false).is_err());
        let mut d = doc(issuer);
        d.id_token_signing_alg_values_supported = Some(vec!["HS256".into()]);
        assert!(check_discovery(issuer, &d, false).is_err());
        let mut d = doc(issuer);
        d.token_endpoint = "http://idp.example.com/token".into();
        assert!(check_discovery(issuer, &d, false).is_err());
        assert!(check_discovery(issuer, &d, true).is_ok());
    }

    #[test]
    fn the_challenge_is_rfc_7636s_s256_and_the_url_carries_every_parameter() {
        // RFC 7636, appendix B.
        assert_eq!(
            code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let login = new_login(&SeqRandom::new(7));
        assert_eq!(login.verifier.len(), 43);
        assert!(login.state != login.nonce && login.nonce != login.verifier);
        let url = authorization_url(
            "https://idp.example.com/authorize?tenant=t1",
            "client one",
            "https://api.example.com/api/v1/auth/sso/callback",
            &login,
            "ada@example.com",
        )
        .unwrap();
        let parsed = url::Url::parse(&url).unwrap();
        let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
        assert_eq!(q["tenant"], "t1");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "client one");
        assert_eq!(q["scope"], "openid email");
        assert_eq!(q["state"], login.state);
        assert_eq!(q["nonce"], login.nonce);
        assert_eq!(q["code_challenge"], code_challenge(&login.verifier));
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(
            !url.contains(&login.verifier),
            "the verifier never leaves the server"
        );
    }

    #[test]
    fn failures_redirect_to_the_app_with_a_stable_code() {
        assert_eq!(
            SsoFailure::InvalidState.redirect(),
            "app://adiuva/sso?error=invalid_state"
        );
        assert_eq!(
            SsoFailure::from(crate::oidc::IdTokenError::Nonce),
            SsoFailure::InvalidIdToken
        );
        assert_eq!(
            SsoFailure::from(crate::oidc::IdTokenError::EmailUnverified),
            SsoFailure::EmailNotVerified
        );
        assert_eq!(success_redirect("abc"), "app://adiuva/sso?code=abc");
    }
}
