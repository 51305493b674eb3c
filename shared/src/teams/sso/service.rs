//! The SSO service over its ports (see the module's rules).

use async_trait::async_trait;

use super::{
    authorization_url, check_discovery, email_domain, new_login, parse_credential, parse_domains,
    parse_issuer, success_redirect, token_request_body, Discovery, SsoFailure, TokenResponse,
    CALLBACK_PATH, MAX_IDP_BODY,
};
use crate::accounts::token_hash;
use crate::auth::AuthService;
use crate::domain::{Email, UserId};
use crate::error::{AppError, FieldError};
use crate::oidc::{verify_id_token, Expected, IdTokenError, Jwks};
use crate::ports::{HttpClient, HttpRequest, SecurityEventKind, StoreError, TeamStore};
use crate::teams::TeamRole;

/// Deadline of one call to the identity provider (ms).
pub const IDP_TIMEOUT_MS: u64 = 5_000;

/// Sign-in starts allowed per client address ([`crate::rate_limit::address_key`]): a burst
/// of 120, then one every 5 s (GCRA). Each stores a pending sign-in kept 10 minutes, so one
/// address holds at most about 240; a whole office behind one address still signs in at
/// once.
pub const SSO_START_RULE: crate::rate_limit::RateRule = crate::rate_limit::RateRule {
    limit: 120,
    window_ms: 10 * 60_000,
};

/// A team's identity provider, as stored (the secret still sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoConfig {
    /// The team.
    pub team_id: uuid::Uuid,
    /// Issuer, exactly as the discovery document names it.
    pub issuer: String,
    /// Our client id at the IdP.
    pub client_id: String,
    /// The client secret, sealed under the SSO key with the team id as associated data.
    pub client_secret_sealed: Vec<u8>,
    /// From discovery.
    pub authorization_endpoint: String,
    /// From discovery.
    pub token_endpoint: String,
    /// From discovery.
    pub jwks_uri: String,
    /// The last JWKS fetched (JSON), if any.
    pub jwks: Option<String>,
    /// Whether password login is refused for the team's domains (the owner excepted).
    pub required: bool,
    /// The claimed domains.
    pub domains: Vec<String>,
}

/// A sign-in between start and callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// The team.
    pub team_id: uuid::Uuid,
    /// The nonce sent.
    pub nonce: String,
    /// The PKCE verifier.
    pub verifier: String,
}

/// What saving a configuration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveOutcome {
    /// Saved (replacing any earlier one and its domains).
    Saved,
    /// This domain belongs to another team; nothing changed.
    DomainTaken(String),
}

/// What joining through SSO did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoJoin {
    /// The account (created now, or existing) is a member.
    Member(UserId),
    /// No free seat; nothing was created.
    NoSeat,
    /// The account is in another team; nothing changed.
    OtherTeam,
    /// The team's subscription no longer grants the Team tier.
    Ended,
    /// The account is suspended; nothing changed.
    Suspended,
    /// The account exists but its address was never verified; nothing changed.
    Unverified,
}

/// D1's side of SSO (`team_sso`, `team_sso_domains`, `sso_logins`, `sso_codes`).
#[async_trait(?Send)]
pub trait SsoStore {
    /// The team's configuration.
    async fn config(&self, team: uuid::Uuid) -> Result<Option<SsoConfig>, StoreError>;
    /// The configuration of the team claiming `domain`.
    async fn config_for_domain(&self, domain: &str) -> Result<Option<SsoConfig>, StoreError>;
    /// Saves `config` with its domains in one transaction, unless a domain is another team's.
    async fn save(&self, config: &SsoConfig, now: i64) -> Result<SaveOutcome, StoreError>;
    /// Deletes the team's configuration, its domains, its sign-ins in flight and its members'
    /// unredeemed one-time codes in one transaction; whether there was one.
    async fn delete(&self, team: uuid::Uuid) -> Result<bool, StoreError>;
    /// Keeps the JWKS last fetched.
    async fn store_jwks(&self, team: uuid::Uuid, jwks: &str) -> Result<(), StoreError>;
    /// Records a started sign-in.
    async fn insert_login(
        &self,
        state_hash: &[u8; 32],
        login: &PendingLogin,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Takes (deletes and returns) an unexpired sign-in: of two callbacks with one state, one.
    async fn take_login(
        &self,
        state_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<PendingLogin>, StoreError>;
    /// Makes the account of `email` a member of `team` (creating it, verified and without a
    /// usable password, when there is none), seat permitting, in one transaction; an account
    /// already in this team stays as it is.
    async fn join(
        &self,
        team: uuid::Uuid,
        email: &Email,
        new_id: UserId,
        now: i64,
    ) -> Result<SsoJoin, StoreError>;
    /// Stores a one-time redeem code.
    async fn insert_code(&self, hash: &[u8; 32], user: UserId, now: i64) -> Result<(), StoreError>;
    /// Spends an unexpired, unused code: of two redemptions, one gets the user.
    async fn redeem_code(&self, hash: &[u8; 32], now: i64) -> Result<Option<UserId>, StoreError>;
}

/// `PUT /teams/{id}/sso`'s body, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSettings {
    /// Issuer.
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
    /// Domains.
    pub domains: Vec<String>,
    /// Password login refused for the domains.
    pub required: bool,
}

impl SsoSettings {
    /// Parses the request's fields.
    ///
    /// # Errors
    /// 422 naming every bad field.
    pub fn parse(
        issuer: &str,
        client_id: &str,
        client_secret: &str,
        domains: &[String],
        required: bool,
        allow_http: bool,
    ) -> Result<Self, AppError> {
        let mut errors: Vec<FieldError> = Vec::new();
        let issuer = parse_issuer(issuer, allow_http)
            .map_err(|e| errors.push(e))
            .ok();
        let client_id = parse_credential("client_id", client_id, 255)
            .map_err(|e| errors.push(e))
            .ok();
        let client_secret = parse_credential("client_secret", client_secret, 1024)
            .map_err(|e| errors.push(e))
            .ok();
        let domains = parse_domains(domains).map_err(|e| errors.push(e)).ok();
        match (issuer, client_id, client_secret, domains) {
            (Some(issuer), Some(client_id), Some(client_secret), Some(domains))
                if errors.is_empty() =>
            {
                Ok(Self {
                    issuer,
                    client_id,
                    client_secret,
                    domains,
                    required,
                })
            }
            _ => Err(AppError::Validation(errors)),
        }
    }
}

/// The SSO service.
pub struct SsoService<'a> {
    /// SSO's tables.
    pub store: &'a dyn SsoStore,
    /// Teams (the caller's role, the subscription).
    pub teams: &'a dyn TeamStore,
    /// Sessions (the redeemed code's token pair).
    pub auth: AuthService<'a>,
    /// The IdP.
    pub http: &'a dyn HttpClient,
    /// The client-secret sealing key.
    pub seal_key: &'a [u8; 32],
    /// `http://` issuers allowed (`ENV=dev`).
    pub allow_http: bool,
    /// `PUBLIC_BASE_URL` (the callback is under it).
    pub public_base: String,
}

fn issuer_error(message: &str) -> AppError {
    AppError::Validation(vec![FieldError::new("issuer", message)])
}

impl SsoService<'_> {
    fn redirect_uri(&self) -> String {
        format!("{}{CALLBACK_PATH}", self.public_base.trim_end_matches('/'))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Option<T> {
        let resp = self
            .http
            .send(HttpRequest {
                method: "GET",
                url: url.to_owned(),
                headers: vec![("Accept".into(), "application/json".into())],
                body: Vec::new(),
                timeout_ms: IDP_TIMEOUT_MS,
            })
            .await
            .ok()?;
        if resp.status != 200 || resp.body.len() > MAX_IDP_BODY {
            return None;
        }
        serde_json::from_slice(&resp.body).ok()
    }

    /// `PUT /teams/{id}/sso`: the owner or an admin of a team whose subscription grants the
    /// Team tier (and with it `sso`) configures its identity provider. The discovery document
    /// is fetched and checked before anything is stored.
    ///
    /// # Errors
    /// 404 outside the team; 403 for a member; 403 `tier_required` when the subscription no
    /// longer grants `sso`; 422 for bad fields or a discovery document that does not fit;
    /// 409 when a domain is another team's.
    pub async fn configure(
        &self,
        user: UserId,
        team_id: &str,
        settings: SsoSettings,
        meta: &crate::accounts::ClientMeta,
    ) -> Result<SsoConfig, AppError> {
        let team = self.managed_team(user, team_id).await?;
        let now = self.auth.clock.now_ms();
        if !team.is_live(now) {
            return Err(AppError::TierRequired {
                feature: "sso",
                required_tier: "team",
            });
        }
        let doc: Discovery = self
            .get_json(&format!(
                "{}/.well-known/openid-configuration",
                settings.issuer
            ))
            .await
            .ok_or_else(|| issuer_error("its discovery document could not be read"))?;
        let endpoints = check_discovery(&settings.issuer, &doc, self.allow_http)
            .map_err(|e| AppError::Validation(vec![e]))?;
        let jwks: Option<Jwks> = self.get_json(&endpoints.jwks).await;
        let jwks = jwks.ok_or_else(|| issuer_error("its key set (jwks_uri) could not be read"))?;
        let config = SsoConfig {
            team_id: team.id,
            issuer: settings.issuer,
            client_id: settings.client_id,
            client_secret_sealed: crate::accounts::totp::seal_for(
                self.seal_key,
                team.id.to_string().as_bytes(),
                settings.client_secret.as_bytes(),
                self.auth.rng,
            ),
            authorization_endpoint: endpoints.authorization,
            token_endpoint: endpoints.token,
            jwks_uri: endpoints.jwks,
            jwks: serde_json::to_string(&jwks.keys)
                .ok()
                .map(|k| format!("{{\"keys\":{k}}}")),
            required: settings.required,
            domains: settings.domains,
        };
        match self.store.save(&config, now).await? {
            SaveOutcome::Saved => {
                tracing::info!(user_id = %user, team_id = %team.id, domains = config.domains.len(), "team SSO configured");
                self.record(user, &team, SecurityEventKind::SsoConfigured, meta, now)
                    .await;
                Ok(config)
            }
            SaveOutcome::DomainTaken(_) => {
                Err(AppError::Conflict("a domain is claimed by another team"))
            }
        }
    }

    /// The caller's team when it is `team_id` and the caller its owner or an admin.
    ///
    /// # Errors
    /// 404 outside the team; 403 for a member.
    async fn managed_team(
        &self,
        user: UserId,
        team_id: &str,
    ) -> Result<crate::teams::TeamRow, AppError> {
        let (team, role) = self.teams.team_of(user).await?.ok_or(AppError::NotFound)?;
        if team.id.to_string() != team_id {
            return Err(AppError::NotFound);
        }
        if !matches!(role, TeamRole::Owner | TeamRole::Admin) {
            return Err(AppError::Forbidden("only the owner and admins manage SSO"));
        }
        Ok(team)
    }

    /// `GET /teams/{id}/sso`: the configuration (owner or admin; the secret is never shown).
    ///
    /// # Errors
    /// 404 outside the team or when none is configured; 403 for a member.
    pub async fn view(&self, user: UserId, team_id: &str) -> Result<SsoConfig, AppError> {
        let team = self.managed_team(user, team_id).await?;
        self.store.config(team.id).await?.ok_or(AppError::NotFound)
    }

    /// `DELETE /teams/{id}/sso`: removes the configuration, releasing its domains (owner or
    /// admin; allowed whatever the subscription, so an ended team can still let go of them).
    /// Sign-ins in flight fail; members keep their accounts and seats, and sign in with a
    /// password (after a reset, for accounts created through SSO).
    ///
    /// # Errors
    /// 404 outside the team or when none is configured; 403 for a member.
    pub async fn remove(
        &self,
        user: UserId,
        team_id: &str,
        meta: &crate::accounts::ClientMeta,
    ) -> Result<(), AppError> {
        let team = self.managed_team(user, team_id).await?;
        if !self.store.delete(team.id).await? {
            return Err(AppError::NotFound);
        }
        tracing::info!(user_id = %user, team_id = %team.id, "team SSO removed");
        let now = self.auth.clock.now_ms();
        self.record(user, &team, SecurityEventKind::SsoRemoved, meta, now)
            .await;
        Ok(())
    }

    /// Notes an SSO change in the security log of whoever made it and of the team's owner
    /// (who decides who signs in for every member): the owner's entry carries no device or
    /// network of an admin's.
    async fn record(
        &self,
        actor: UserId,
        team: &crate::teams::TeamRow,
        kind: SecurityEventKind,
        meta: &crate::accounts::ClientMeta,
        now: i64,
    ) {
        crate::accounts::record_event(self.auth.events, actor, kind, meta, now).await;
        if team.owner != actor {
            let none = crate::accounts::ClientMeta::default();
            crate::accounts::record_event(self.auth.events, team.owner, kind, &none, now).await;
        }
    }

    /// `GET /auth/sso/start?email=…`: the authorization URL of the team claiming the address's
    /// domain.
    ///
    /// # Errors
    /// 429 past `SSO_START_RULE` for the client address; 404 when no team claims the
    /// address's domain.
    pub async fn start(&self, email: &Email, client_ip: Option<&str>) -> Result<String, AppError> {
        // Each start stores a sign-in, so the unit is taken before anything is read or written.
        let key = format!("sso:ip:{}", crate::rate_limit::address_key(client_ip));
        let d = self
            .auth
            .limiter
            .check(&key, SSO_START_RULE, crate::rate_limit::RateOp::Acquire)
            .await?;
        if !d.allowed {
            tracing::warn!("SSO sign-in starts throttled");
            return Err(AppError::RateLimited {
                retry_after_secs: d.retry_after_secs(),
            });
        }
        let domain = email_domain(email.as_str()).ok_or(AppError::NotFound)?;
        let config = self
            .store
            .config_for_domain(domain)
            .await?
            .ok_or(AppError::NotFound)?;
        let login = new_login(self.auth.rng);
        let now = self.auth.clock.now_ms();
        self.store
            .insert_login(
                &login.state_hash(),
                &PendingLogin {
                    team_id: config.team_id,
                    nonce: login.nonce.clone(),
                    verifier: login.verifier.clone(),
                },
                now,
            )
            .await?;
        let url = authorization_url(
            &config.authorization_endpoint,
            &config.client_id,
            &self.redirect_uri(),
            &login,
            email.as_str(),
        )
        .map_err(|_| AppError::internal("stored authorization endpoint is not a URL"))?;
        tracing::info!(team_id = %config.team_id, "SSO sign-in started");
        Ok(url)
    }

    /// `GET /auth/sso/callback`: always a redirect to the app (see the module's rules).
    pub async fn callback(
        &self,
        code: Option<&str>,
        state: Option<&str>,
        idp_error: Option<&str>,
    ) -> String {
        match self.finish(code, state, idp_error).await {
            Ok(one_time) => success_redirect(&one_time),
            Err(failure) => {
                tracing::info!(reason = failure.code(), "SSO sign-in failed");
                failure.redirect()
            }
        }
    }

    async fn finish(
        &self,
        code: Option<&str>,
        state: Option<&str>,
        idp_error: Option<&str>,
    ) -> Result<String, SsoFailure> {
        let unavailable = |e: StoreError| {
            tracing::error!(error = %e, "SSO callback: store failed");
            SsoFailure::Unavailable
        };
        let (Some(code), Some(state), None) = (code, state, idp_error) else {
            return Err(SsoFailure::InvalidRequest);
        };
        if code.is_empty() || code.len() > 2048 || state.len() > 256 {
            return Err(SsoFailure::InvalidRequest);
        }
        let now = self.auth.clock.now_ms();
        // The state is spent first: a replayed callback finds nothing, whatever comes next.
        let login = self
            .store
            .take_login(&token_hash(state), now)
            .await
            .map_err(unavailable)?
            .ok_or(SsoFailure::InvalidState)?;
        let config = self
            .store
            .config(login.team_id)
            .await
            .map_err(unavailable)?
            .ok_or(SsoFailure::InvalidState)?;
        let secret = crate::accounts::totp::open_for(
            self.seal_key,
            config.team_id.to_string().as_bytes(),
            &config.client_secret_sealed,
        )
        .and_then(|s| String::from_utf8(s).ok())
        .ok_or_else(|| {
            tracing::error!(team_id = %config.team_id, "SSO client secret does not open");
            SsoFailure::Unavailable
        })?;
        let id_token = self
            .exchange(&config, code, &secret, &login.verifier)
            .await?;
        let expected = Expected {
            issuer: &config.issuer,
            client_id: &config.client_id,
            nonce: &login.nonce,
            now_ms: now,
        };
        let identity = self.verify(&config, &id_token, &expected).await?;
        let email = Email::parse(&identity.email).map_err(|_| SsoFailure::InvalidIdToken)?;
        let domain = email_domain(email.as_str()).unwrap_or_default();
        if !config.domains.iter().any(|d| d == domain) {
            return Err(SsoFailure::DomainMismatch);
        }
        let new_id = UserId(crate::ports::new_uuid(self.auth.rng));
        let user = match self
            .store
            .join(config.team_id, &email, new_id, now)
            .await
            .map_err(unavailable)?
        {
            SsoJoin::Member(user) => user,
            SsoJoin::NoSeat => return Err(SsoFailure::NoSeat),
            SsoJoin::OtherTeam => return Err(SsoFailure::OtherTeam),
            SsoJoin::Ended | SsoJoin::Suspended => return Err(SsoFailure::NotAllowed),
            SsoJoin::Unverified => return Err(SsoFailure::AccountUnverified),
        };
        let mut raw = [0u8; 32];
        self.auth.rng.fill(&mut raw);
        let one_time =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, raw);
        self.store
            .insert_code(&token_hash(&one_time), user, now)
            .await
            .map_err(unavailable)?;
        tracing::info!(user_id = %user, team_id = %config.team_id, "SSO sign-in succeeded");
        Ok(one_time)
    }

    /// The code exchange; the IdP's answer is never logged or returned.
    async fn exchange(
        &self,
        config: &SsoConfig,
        code: &str,
        secret: &str,
        verifier: &str,
    ) -> Result<String, SsoFailure> {
        let body = token_request_body(
            code,
            &self.redirect_uri(),
            &config.client_id,
            secret,
            verifier,
        );
        let resp = self
            .http
            .send(HttpRequest {
                method: "POST",
                url: config.token_endpoint.clone(),
                headers: vec![
                    (
                        "Content-Type".into(),
                        "application/x-www-form-urlencoded".into(),
                    ),
                    ("Accept".into(), "application/json".into()),
                ],
                body: body.into_bytes(),
                timeout_ms: IDP_TIMEOUT_MS,
            })
            .await
            .map_err(|e| {
                tracing::warn!(team_id = %config.team_id, error = %e, "SSO token endpoint unreachable");
                SsoFailure::ExchangeFailed
            })?;
        if resp.status != 200 || resp.body.len() > MAX_IDP_BODY {
            tracing::info!(team_id = %config.team_id, status = resp.status, "SSO code exchange refused");
            return Err(SsoFailure::ExchangeFailed);
        }
        let tokens: TokenResponse =
            serde_json::from_slice(&resp.body).map_err(|_| SsoFailure::ExchangeFailed)?;
        Ok(tokens.id_token)
    }

    /// Verifies against the stored JWKS; on an unknown key, fetches the JWKS once and verifies
    /// against the new set only (rotation: a dropped key is no longer trusted).
    async fn verify(
        &self,
        config: &SsoConfig,
        id_token: &str,
        expected: &Expected<'_>,
    ) -> Result<crate::oidc::VerifiedIdentity, SsoFailure> {
        let stored: Option<Jwks> = config
            .jwks
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok());
        if let Some(jwks) = &stored {
            match verify_id_token(id_token, jwks, expected) {
                Err(IdTokenError::UnknownKey) => {}
                other => return other.map_err(SsoFailure::from),
            }
        }
        let fresh: Jwks = self
            .get_json(&config.jwks_uri)
            .await
            .ok_or(SsoFailure::InvalidIdToken)?;
        let identity = verify_id_token(id_token, &fresh, expected).map_err(SsoFailure::from)?;
        if let Ok(keys) = serde_json::to_string(&fresh.keys) {
            if let Err(e) = self
                .store
                .store_jwks(config.team_id, &format!("{{\"keys\":{keys}}}"))
                .await
            {
                tracing::warn!(error = %e, "keeping a fetched JWKS failed");
            }
        }
        Ok(identity)
    }

    /// `POST /auth/sso/redeem {code}`: the token pair of the callback's account.
    ///
    /// # Errors
    /// 401 for an unknown, used or expired code; 403 for a suspended account.
    pub async fn redeem(
        &self,
        code: &str,
        meta: crate::accounts::ClientMeta,
    ) -> Result<crate::api::AuthTokens, AppError> {
        let now = self.auth.clock.now_ms();
        let user = self
            .store
            .redeem_code(&token_hash(code), now)
            .await?
            .ok_or(AppError::Unauthorized)?;
        let account = self
            .auth
            .users
            .find_by_id(user)
            .await?
            .ok_or(AppError::Unauthorized)?;
        if account.suspended_at.is_none() {
            crate::accounts::record_event(
                self.auth.events,
                account.id,
                SecurityEventKind::LoginSucceeded,
                &meta,
                now,
            )
            .await;
        }
        self.auth.start_session(&account, now, meta.device).await
    }
}
