//! Team single sign-on end to end, against a scripted OIDC provider on loopback (discovery,
//! JWKS, token endpoint) that signs ID tokens with RSA keys the test generates (once per run).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{assert_error, TestApp};
use crate::teams::{current, team, verified};

/// The identity provider's two signing keys (PKCS#8 PEM): 2048-bit RSA, generated once per
/// test run.
fn keys() -> &'static [String; 2] {
    static KEYS: std::sync::OnceLock<[String; 2]> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rand_core::OsRng;
        let mut new = || {
            rsa::RsaPrivateKey::new(&mut rng, 2048)
                .expect("an RSA key")
                .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
                .expect("PEM")
                .to_string()
        };
        [new(), new()]
    })
}

fn key_a() -> &'static str {
    &keys()[0]
}

fn key_b() -> &'static str {
    &keys()[1]
}
const CLIENT_ID: &str = "adiuva-e2e";
const CLIENT_SECRET: &str = "idp-client-secret-e2e";

fn now_s() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn jwk(pem: &str, kid: &str) -> Value {
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).expect("fixture key");
    json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be())})
}

fn sign(pem: &str, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let der = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .expect("fixture key")
        .to_pkcs1_der()
        .expect("DER");
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der.as_bytes()))
        .expect("signs")
}

/// Makes a forged or mismatched ID token for `(email, nonce)`.
type Forge<'a> = Box<dyn Fn(&str, &str) -> String + Send + Sync + 'a>;

/// A scripted identity provider.
struct Idp {
    server: MockServer,
}

impl Idp {
    async fn start(keys: Vec<Value>) -> Self {
        let server = MockServer::start().await;
        let issuer = server.uri();
        Mock::given(method("GET"))
            .and(path("/.well-known/openid-configuration"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"),
                "jwks_uri": format!("{issuer}/jwks"),
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "id_token_signing_alg_values_supported": ["RS256"],
            })))
            .mount(&server)
            .await;
        let idp = Self { server };
        idp.publish(keys, 5).await;
        idp
    }

    fn issuer(&self) -> String {
        self.server.uri()
    }

    /// Serves `keys` as the JWKS (a lower `priority` number wins over earlier sets).
    async fn publish(&self, keys: Vec<Value>, priority: u8) {
        Mock::given(method("GET"))
            .and(path("/jwks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "keys": keys })))
            .with_priority(priority)
            .mount(&self.server)
            .await;
    }

    /// The token endpoint answers `code` with `id_token`.
    async fn answer(&self, code: &str, id_token: &str) {
        Mock::given(method("POST"))
            .and(path("/token"))
            .and(body_string_contains(format!("code={code}&")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": "idp-access", "token_type": "Bearer", "expires_in": 300,
                "id_token": id_token})))
            .mount(&self.server)
            .await;
    }

    /// The form bodies the token endpoint received for `code`.
    async fn exchanges(&self, code: &str) -> Vec<Vec<(String, String)>> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.url.path() == "/token")
            .map(|r| {
                url::form_urlencoded::parse(&r.body)
                    .into_owned()
                    .collect::<Vec<_>>()
            })
            .filter(|form| form.iter().any(|(k, v)| k == "code" && v == code))
            .collect()
    }
}

/// A started sign-in: the authorization URL's parameters.
struct Started {
    state: String,
    nonce: String,
    challenge: String,
}

async fn start(app: &TestApp, email: &str) -> Started {
    let r = app
        .req(Method::GET, "/auth/sso/start")
        .header("CF-Connecting-IP", crate::harness::random_ip())
        .query(&[("email", email)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "start for {email}");
    let body: Value = r.json().await.unwrap();
    let url = url::Url::parse(body["authorization_url"].as_str().unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(
        q["redirect_uri"].ends_with("/api/v1/auth/sso/callback"),
        "{q:?}"
    );
    Started {
        state: q["state"].clone(),
        nonce: q["nonce"].clone(),
        challenge: q["code_challenge"].clone(),
    }
}

/// The callback's redirect (`Location`) for `code` and `state`.
async fn callback(app: &TestApp, code: &str, state: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .get(app.url("/auth/sso/callback"))
        .query(&[("code", code), ("state", state)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    r.headers()["location"].to_str().unwrap().to_owned()
}

fn claims(issuer: &str, email: &str, nonce: &str) -> Value {
    json!({"iss": issuer, "sub": format!("idp|{email}"), "aud": CLIENT_ID, "nonce": nonce,
        "email": email, "email_verified": true, "iat": now_s(), "exp": now_s() + 300})
}

/// A team of `seats` whose SSO (a fresh scripted IdP signing with key `a`) claims one new
/// domain starting with `prefix`.
async fn configured(app: &TestApp, seats: u32, prefix: &str) -> (crate::teams::Team, Idp, String) {
    let t = team(app, seats).await;
    let idp = Idp::start(vec![jwk(key_a(), "a")]).await;
    let domain = format!("{prefix}-{}.example.com", uuid::Uuid::new_v4().simple());
    let r = app
        .req(Method::PUT, &format!("/teams/{}/sso", t.id))
        .bearer_auth(&t.owner.access_token)
        .json(&json!({"issuer": idp.issuer(), "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET, "domains": [domain]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "SSO configured");
    (t, idp, domain)
}

async fn users_with(app: &TestApp, email: &str) -> usize {
    let out = app
        .stack
        .d1_execute(&format!("SELECT id FROM users WHERE email = '{email}'"))
        .await
        .expect("d1");
    out[0]["results"].as_array().map_or(0, Vec::len)
}

#[allow(clippy::too_many_lines)] // one scenario, step by step
pub async fn a_team_member_signs_in_through_the_teams_identity_provider_and_every_attack_fails(
    app: TestApp,
) {
    let t = team(&app, 3).await;
    let idp = Idp::start(vec![jwk(key_a(), "a")]).await;
    let domain = format!("sso-{}.example.com", uuid::Uuid::new_v4().simple());
    let config = json!({"issuer": idp.issuer(), "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, "domains": [domain.to_uppercase()]});

    // Only the team's owner or an admin configures it; the secret never comes back.
    let outsider = verified(&app, "sso-outsider").await;
    assert_error(
        app.req(Method::PUT, &format!("/teams/{}/sso", t.id))
            .bearer_auth(&outsider.access_token)
            .json(&config)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    let r = app
        .req(Method::PUT, &format!("/teams/{}/sso", t.id))
        .bearer_auth(&t.owner.access_token)
        .json(&config)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let saved: Value = r.json().await.unwrap();
    assert_eq!(saved["domains"], json!([domain]), "{saved}");
    assert!(!saved.to_string().contains(CLIENT_SECRET), "{saved}");
    // A discovery document that names another issuer is refused.
    let mut wrong = config.clone();
    wrong["issuer"] = json!(format!("{}/other", idp.issuer()));
    assert_error(
        app.req(Method::PUT, &format!("/teams/{}/sso", t.id))
            .bearer_auth(&t.owner.access_token)
            .json(&wrong)
            .send()
            .await
            .unwrap(),
        422,
        "validation_failed",
    )
    .await;
    // A domain no team claims.
    assert_error(
        app.req(Method::GET, "/auth/sso/start")
            .query(&[("email", "ada@unclaimed.example.org")])
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;

    // The happy path: start, the IdP's redirect, the one-time code, a session.
    let alice = format!("alice@{domain}");
    let s = start(&app, &alice).await;
    idp.answer(
        "code-alice",
        &sign(key_a(), "a", &claims(&idp.issuer(), &alice, &s.nonce)),
    )
    .await;
    let location = callback(&app, "code-alice", &s.state).await;
    let code = location
        .strip_prefix("app://adiuva/sso?code=")
        .unwrap_or_else(|| panic!("a code: {location}"))
        .to_owned();
    let exchange = &idp.exchanges("code-alice").await[0];
    let field = |k: &str| {
        exchange
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(field("client_secret"), CLIENT_SECRET);
    assert_eq!(
        URL_SAFE_NO_PAD.encode(Sha256::digest(field("code_verifier").as_bytes())),
        s.challenge,
        "PKCE S256"
    );
    let r = app
        .post_json("/auth/sso/redeem", &json!({ "code": code }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: Value = r.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let events: Value = app
        .get_auth("/auth/events", access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["events"][0]["kind"], "login_succeeded", "{events}");
    let me: Value = app.get_auth("/auth/me", access).await.json().await.unwrap();
    assert_eq!(me["email"], alice.as_str());
    assert_eq!(me["tier"], "team", "{me}");
    assert_eq!(me["email_verified"], true);
    let view = current(&app, &t.owner).await;
    assert!(
        view["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["email"] == alice.as_str()),
        "{view}"
    );
    // The code works once; the callback's state works once.
    assert_error(
        app.post_json("/auth/sso/redeem", &json!({ "code": code }))
            .await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(
        callback(&app, "code-alice", &s.state).await,
        "app://adiuva/sso?error=invalid_state"
    );
    assert_eq!(
        callback(&app, "code-alice", "not-a-state").await,
        "app://adiuva/sso?error=invalid_state"
    );

    // Forged or mismatched ID tokens: each is refused and creates nothing.
    let issuer = idp.issuer();
    let cases: Vec<(&str, Forge<'_>, &str)> = vec![
        (
            "wrong-nonce",
            Box::new(|email, _nonce| sign(key_a(), "a", &claims(&issuer, email, "another-nonce"))),
            "invalid_id_token",
        ),
        (
            "wrong-aud",
            Box::new(|email, nonce| {
                let mut c = claims(&issuer, email, nonce);
                c["aud"] = json!("someone-else");
                sign(key_a(), "a", &c)
            }),
            "invalid_id_token",
        ),
        (
            "expired",
            Box::new(|email, nonce| {
                let mut c = claims(&issuer, email, nonce);
                c["exp"] = json!(now_s() - 600);
                sign(key_a(), "a", &c)
            }),
            "invalid_id_token",
        ),
        (
            "unsigned",
            Box::new(|email, nonce| {
                let body = URL_SAFE_NO_PAD.encode(claims(&issuer, email, nonce).to_string());
                format!(
                    "{}.{body}.",
                    URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
                )
            }),
            "invalid_id_token",
        ),
        (
            "unknown-key",
            Box::new(|email, nonce| sign(key_b(), "b", &claims(&issuer, email, nonce))),
            "invalid_id_token",
        ),
        (
            "unverified",
            Box::new(|email, nonce| {
                let mut c = claims(&issuer, email, nonce);
                c["email_verified"] = json!(false);
                sign(key_a(), "a", &c)
            }),
            "email_not_verified",
        ),
    ];
    for (name, token, error) in &cases {
        let email = format!("{name}@{domain}");
        let s = start(&app, &email).await;
        let code = format!("code-{name}");
        idp.answer(&code, &token(&email, &s.nonce)).await;
        assert_eq!(
            callback(&app, &code, &s.state).await,
            format!("app://adiuva/sso?error={error}"),
            "{name}"
        );
        assert_eq!(users_with(&app, &email).await, 0, "{name} created nothing");
    }
    // The IdP vouches for an address outside the team's domains.
    let s = start(&app, &format!("mallory@{domain}")).await;
    let foreign = "mallory@elsewhere.example.net";
    idp.answer(
        "code-foreign",
        &sign(key_a(), "a", &claims(&issuer, foreign, &s.nonce)),
    )
    .await;
    assert_eq!(
        callback(&app, "code-foreign", &s.state).await,
        "app://adiuva/sso?error=domain_mismatch"
    );
    assert_eq!(users_with(&app, foreign).await, 0);

    // The IdP rotates to key B: an unknown kid fetches the JWKS again once, and the dropped key
    // A is no longer trusted.
    idp.publish(vec![jwk(key_b(), "b")], 1).await;
    let erin = format!("erin@{domain}");
    let s = start(&app, &erin).await;
    idp.answer(
        "code-erin",
        &sign(key_b(), "b", &claims(&issuer, &erin, &s.nonce)),
    )
    .await;
    let location = callback(&app, "code-erin", &s.state).await;
    assert!(location.starts_with("app://adiuva/sso?code="), "{location}");
    let old = format!("old-key@{domain}");
    let s = start(&app, &old).await;
    idp.answer(
        "code-old",
        &sign(key_a(), "a", &claims(&issuer, &old, &s.nonce)),
    )
    .await;
    assert_eq!(
        callback(&app, "code-old", &s.state).await,
        "app://adiuva/sso?error=invalid_id_token"
    );

    // Three seats: the owner, alice and erin. A fourth is refused and created nothing.
    let frank = format!("frank@{domain}");
    let s = start(&app, &frank).await;
    idp.answer(
        "code-frank",
        &sign(key_b(), "b", &claims(&issuer, &frank, &s.nonce)),
    )
    .await;
    assert_eq!(
        callback(&app, "code-frank", &s.state).await,
        "app://adiuva/sso?error=no_seat"
    );
    assert_eq!(users_with(&app, &frank).await, 0);
}

pub async fn a_team_that_requires_sso_refuses_password_login_at_its_domains(app: TestApp) {
    let t = team(&app, 3).await;
    let idp = Idp::start(vec![jwk(key_a(), "a")]).await;
    let domain = format!("required-{}.example.com", uuid::Uuid::new_v4().simple());
    let email = format!("dave@{domain}");
    let r = app
        .post_json(
            "/auth/register",
            &json!({"email": email, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let login = || async {
        app.post_json(
            "/auth/login",
            &json!({"email": email, "password": "correct horse battery"}),
        )
        .await
    };
    assert_eq!(login().await.status(), StatusCode::OK, "before SSO");
    let r = app
        .req(Method::PUT, &format!("/teams/{}/sso", t.id))
        .bearer_auth(&t.owner.access_token)
        .json(&json!({"issuer": idp.issuer(), "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET, "domains": [domain], "required": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_error(login().await, 403, "sso_required").await;
    // Another domain is untouched (the owner's own address included).
    let r = app
        .post_json(
            "/auth/login",
            &json!({"email": t.owner.email, "password": t.owner.password}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Once the team's subscription ends, SSO is refused, so password login works again.
    crate::teams::cancel(&app, &t).await;
    assert_eq!(
        login().await.status(),
        StatusCode::OK,
        "after the team ended"
    );
}

/// Someone registers an address of the team's domain before its owner ever signs in (the
/// account stays unverified): SSO neither signs in to that account nor takes it into the team.
pub async fn sso_never_signs_in_to_an_unverified_account_someone_else_may_have_registered(
    app: TestApp,
) {
    let (t, idp, domain) = configured(&app, 3, "prereg").await;
    let ivan = format!("ivan@{domain}");
    let r = app
        .post_json(
            "/auth/register",
            &json!({"email": ivan, "password": "the squatter's password"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let s = start(&app, &ivan).await;
    idp.answer(
        "code-ivan",
        &sign(key_a(), "a", &claims(&idp.issuer(), &ivan, &s.nonce)),
    )
    .await;
    assert_eq!(
        callback(&app, "code-ivan", &s.state).await,
        "app://adiuva/sso?error=account_unverified"
    );
    let members: Value = current(&app, &t.owner).await;
    assert_eq!(members["members"].as_array().unwrap().len(), 1, "{members}");
}

pub async fn only_the_owner_or_an_admin_of_a_live_team_configures_sso(app: TestApp) {
    let t = team(&app, 3).await;
    let idp = Idp::start(vec![jwk(key_a(), "a")]).await;
    let domain = format!("gate-{}.example.com", uuid::Uuid::new_v4().simple());
    let config = json!({"issuer": idp.issuer(), "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, "domains": [domain]});
    let put = |user: &crate::helpers::TestUser| {
        app.req(Method::PUT, &format!("/teams/{}/sso", t.id))
            .bearer_auth(user.access_token.clone())
            .json(&config)
            .send()
    };
    let member = verified(&app, "sso-member").await;
    crate::teams::join(&app, &t, &member).await;
    assert_error(put(&member).await.unwrap(), 403, "forbidden").await;
    // Another team cannot claim a domain this one holds.
    assert_eq!(put(&t.owner).await.unwrap().status(), StatusCode::OK);
    let other = team(&app, 2).await;
    assert_error(
        app.req(Method::PUT, &format!("/teams/{}/sso", other.id))
            .bearer_auth(&other.owner.access_token)
            .json(&config)
            .send()
            .await
            .unwrap(),
        409,
        "conflict",
    )
    .await;
    // The configuration reads back for the owner (never the secret), not for a member.
    let sso = format!("/teams/{}/sso", t.id);
    let r = app.get_auth(&sso, &t.owner.access_token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let shown: Value = r.json().await.unwrap();
    assert_eq!(shown["domains"], json!([domain]), "{shown}");
    assert_eq!(shown["client_id"], CLIENT_ID);
    assert!(!shown.to_string().contains(CLIENT_SECRET), "{shown}");
    assert_error(
        app.get_auth(&sso, &member.access_token).await,
        403,
        "forbidden",
    )
    .await;
    let delete = |user: &crate::helpers::TestUser| {
        app.req(Method::DELETE, &sso)
            .bearer_auth(user.access_token.clone())
            .send()
    };
    assert_error(delete(&member).await.unwrap(), 403, "forbidden").await;
    // Once the subscription no longer grants the Team tier (and with it `sso`): 403.
    crate::teams::cancel(&app, &t).await;
    assert_error(put(&t.owner).await.unwrap(), 403, "tier_required").await;
    // An ended team can still let its domains go; then another team claims them.
    let r = delete(&t.owner).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_error(
        app.get_auth(&sso, &t.owner.access_token).await,
        404,
        "not_found",
    )
    .await;
    assert_error(delete(&t.owner).await.unwrap(), 404, "not_found").await;
    let r = app
        .req(Method::PUT, &format!("/teams/{}/sso", other.id))
        .bearer_auth(&other.owner.access_token)
        .json(&config)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the released domain is free");
    start(&app, &format!("bob@{domain}")).await;
    // Only the changes made are logged, once each for an owner who made them; the refused
    // attempts (403, 409) left nothing.
    let kinds = |log: Vec<(String, Value)>| log.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        kinds(security_log(&app, &t.owner).await),
        ["sso_removed", "sso_configured"]
    );
    assert_eq!(
        kinds(security_log(&app, &other.owner).await),
        ["sso_configured"]
    );
    assert!(security_log(&app, &member).await.is_empty());
}

/// The kinds (and device names) of `user`'s security log, newest first.
async fn security_log(app: &TestApp, user: &crate::helpers::TestUser) -> Vec<(String, Value)> {
    let r = app.get_auth("/auth/events", &user.access_token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let log: Value = r.json().await.unwrap();
    log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["device_name"].clone(),
            )
        })
        .filter(|(k, _)| k.starts_with("sso_"))
        .collect()
}

pub async fn an_sso_change_by_an_admin_is_in_the_security_log_of_the_admin_and_the_owner(
    app: TestApp,
) {
    let t = team(&app, 3).await;
    let admin = verified(&app, "sso-log-admin").await;
    crate::teams::join(&app, &t, &admin).await;
    let r = app
        .req(
            Method::PUT,
            &format!(
                "/teams/{}/members/{}",
                t.id,
                crate::helpers::user_id_of(&admin)
            ),
        )
        .bearer_auth(&t.owner.access_token)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let member = verified(&app, "sso-log-member").await;
    crate::teams::join(&app, &t, &member).await;
    let idp = Idp::start(vec![jwk(key_a(), "a")]).await;
    let domain = format!("log-{}.example.com", uuid::Uuid::new_v4().simple());
    let sso = format!("/teams/{}/sso", t.id);
    let config = json!({"issuer": idp.issuer(), "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, "domains": [domain]});

    // A member's refused attempt leaves nothing anywhere.
    let r = app
        .req(Method::PUT, &sso)
        .bearer_auth(&member.access_token)
        .json(&config)
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "forbidden").await;
    assert!(security_log(&app, &t.owner).await.is_empty());
    assert!(security_log(&app, &member).await.is_empty());

    let r = app
        .req(Method::PUT, &sso)
        .bearer_auth(&admin.access_token)
        .header("X-Device-Name", "Admin laptop")
        .json(&config)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .req(Method::DELETE, &sso)
        .bearer_auth(&admin.access_token)
        .header("X-Device-Name", "Admin laptop")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let laptop = json!("Admin laptop");
    assert_eq!(
        security_log(&app, &admin).await,
        vec![
            ("sso_removed".to_owned(), laptop.clone()),
            ("sso_configured".to_owned(), laptop)
        ]
    );
    // The owner learns of both, without the admin's device.
    assert_eq!(
        security_log(&app, &t.owner).await,
        vec![
            ("sso_removed".to_owned(), Value::Null),
            ("sso_configured".to_owned(), Value::Null)
        ]
    );
    assert!(security_log(&app, &member).await.is_empty());
}

/// SSO housekeeping: the cron forgets expired sign-ins and one-time codes, never live ones.
pub async fn the_cron_forgets_expired_sso_sign_ins_and_codes_but_not_live_ones(_app: TestApp) {
    use crate::housekeeping::{count, cron, d1, stack};
    let app = stack(None).await;
    let (_team, idp, domain) = configured(&app, 3, "hk").await;
    let user = format!("carol@{domain}");
    let (stale, live, done) = (
        start(&app, &user).await,
        start(&app, &user).await,
        start(&app, &user).await,
    );
    idp.answer(
        "code-done",
        &sign(key_a(), "a", &claims(&idp.issuer(), &user, &done.nonce)),
    )
    .await;
    let location = callback(&app, "code-done", &done.state).await;
    let code = location
        .strip_prefix("app://adiuva/sso?code=")
        .unwrap_or_else(|| panic!("a code: {location}"))
        .to_owned();
    let hash = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
    let login = |s: &str| {
        format!(
            "SELECT COUNT(*) AS n FROM sso_logins WHERE state_hash = '{}'",
            hash(s)
        )
    };
    let code_row = format!(
        "SELECT COUNT(*) AS n FROM sso_codes WHERE code_hash = '{}'",
        hash(&code)
    );
    assert_eq!(count(&app, &login(&stale.state)).await, 1);
    assert_eq!(count(&app, &code_row).await, 1);
    d1(
        &app,
        &format!(
            "UPDATE sso_logins SET expires_at = 1 WHERE state_hash = '{}'",
            hash(&stale.state)
        ),
    )
    .await;
    d1(
        &app,
        &format!(
            "UPDATE sso_codes SET expires_at = 1 WHERE code_hash = '{}'",
            hash(&code)
        ),
    )
    .await;

    cron(&app).await;
    assert_eq!(
        count(&app, &login(&stale.state)).await,
        0,
        "expired: purged"
    );
    assert_eq!(count(&app, &code_row).await, 0, "expired code: purged");
    assert_eq!(count(&app, &login(&live.state)).await, 1, "live: kept");
    // The live sign-in still completes.
    idp.answer(
        "code-live",
        &sign(key_a(), "a", &claims(&idp.issuer(), &user, &live.nonce)),
    )
    .await;
    let location = callback(&app, "code-live", &live.state).await;
    assert!(location.starts_with("app://adiuva/sso?code="), "{location}");
    let r = app
        .req(Method::POST, "/auth/sso/redeem")
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the purged code");
}

/// Each start stores a pending sign-in, so starts are throttled per client address before
/// anything is looked up or stored.
pub async fn sign_in_starts_are_throttled_per_client_address_before_anything_is_stored(
    app: TestApp,
) {
    let (t, _idp, domain) = configured(&app, 2, "throttle").await;
    let ip = crate::harness::random_ip();
    let email = format!("dave@{domain}");
    let once = |ip: String| {
        app.req(Method::GET, "/auth/sso/start")
            .header("CF-Connecting-IP", ip)
            .query(&[("email", email.as_str())])
            .send()
    };
    // 120 starts per address; the rest race for nothing.
    let answers = futures_util::future::join_all((0..130).map(|_| once(ip.clone()))).await;
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for r in &answers {
        *by_status
            .entry(r.as_ref().unwrap().status().as_u16())
            .or_default() += 1;
    }
    assert_eq!(by_status.get(&200), Some(&120), "{by_status:?}");
    assert_eq!(by_status.get(&429), Some(&10), "{by_status:?}");
    let refused = answers
        .into_iter()
        .map(Result::unwrap)
        .find(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(refused, 429, "rate_limited").await;
    let stored = app
        .stack
        .d1_execute(&format!(
            "SELECT COUNT(*) AS n FROM sso_logins WHERE team_id = '{}'",
            t.id
        ))
        .await
        .expect("d1");
    assert_eq!(
        stored[0]["results"][0]["n"], 120,
        "a refused start stores nothing"
    );
    // Another address is not affected.
    assert_eq!(
        once(crate::harness::random_ip()).await.unwrap().status(),
        StatusCode::OK
    );
}

/// Two sign-ins racing for the team's last seat: the seat check and the join are one D1
/// transaction, so one joins and the other is refused with nothing created.
pub async fn two_sign_ins_racing_for_the_last_seat_make_one_member(app: TestApp) {
    let (t, idp, domain) = configured(&app, 2, "race").await; // the owner holds one seat
    let (erin, frank) = (format!("erin@{domain}"), format!("frank@{domain}"));
    let (for_erin, for_frank) = (start(&app, &erin).await, start(&app, &frank).await);
    idp.answer(
        "code-erin",
        &sign(key_a(), "a", &claims(&idp.issuer(), &erin, &for_erin.nonce)),
    )
    .await;
    idp.answer(
        "code-frank",
        &sign(
            key_a(),
            "a",
            &claims(&idp.issuer(), &frank, &for_frank.nonce),
        ),
    )
    .await;
    let (one, other) = tokio::join!(
        callback(&app, "code-erin", &for_erin.state),
        callback(&app, "code-frank", &for_frank.state)
    );
    let mut outcomes = [one, other];
    outcomes.sort();
    assert!(
        outcomes[0].starts_with("app://adiuva/sso?code="),
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes[1], "app://adiuva/sso?error=no_seat",
        "{outcomes:?}"
    );
    assert_eq!(
        users_with(&app, &erin).await + users_with(&app, &frank).await,
        1,
        "the refused sign-in created no account"
    );
    let members: Value = current(&app, &t.owner).await;
    assert_eq!(members["members"].as_array().unwrap().len(), 2, "{members}");
}

/// A suspended account gets no session through SSO either: the callback refuses it before
/// any join (`not_allowed`), so SSO is no way around a suspension.
pub async fn a_suspended_account_cannot_sign_in_through_sso(app: TestApp) {
    let (_team, idp, domain) = configured(&app, 3, "susp").await;
    let grace = format!("grace@{domain}");
    let first = start(&app, &grace).await;
    idp.answer(
        "code-grace-1",
        &sign(key_a(), "a", &claims(&idp.issuer(), &grace, &first.nonce)),
    )
    .await;
    let location = callback(&app, "code-grace-1", &first.state).await;
    assert!(location.starts_with("app://adiuva/sso?code="), "{location}");
    app.stack
        .d1_execute(&format!(
            "UPDATE users SET suspended_at = 1 WHERE email = '{grace}'"
        ))
        .await
        .expect("d1");
    let again = start(&app, &grace).await;
    idp.answer(
        "code-grace-2",
        &sign(key_a(), "a", &claims(&idp.issuer(), &grace, &again.nonce)),
    )
    .await;
    assert_eq!(
        callback(&app, "code-grace-2", &again.state).await,
        "app://adiuva/sso?error=not_allowed"
    );
}

/// An identity provider that answers the code exchange with more than any worker should hold
/// (17 MiB): the body is refused before it is read, the sign-in fails as `exchange_failed`,
/// and the worker goes on serving.
pub async fn an_identity_provider_answering_with_an_oversized_body_fails_the_sign_in_only(
    app: TestApp,
) {
    let (_team, idp, domain) = configured(&app, 3, "huge").await;
    let heidi = format!("heidi@{domain}");
    let s = start(&app, &heidi).await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Content-Type", "application/json")
                .set_body_bytes(vec![b' '; 17 * 1024 * 1024]),
        )
        .mount(&idp.server)
        .await;
    assert_eq!(
        callback(&app, "code-heidi", &s.state).await,
        "app://adiuva/sso?error=exchange_failed"
    );
    assert_eq!(users_with(&app, &heidi).await, 0, "nothing created");
    let health = app.req(Method::GET, "/health").send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}
