//! The auth service: register, login, refresh, logout, profile, WebSocket tickets.
//!
//! ## Refresh-token rotation rule
//! Every refresh token is single-use: presenting it yields a new pair and marks it rotated.
//! Tokens of one login share a *family*. Presenting a token that was rotated **more than
//! [`REFRESH_GRACE_MS`] ago** is treated as theft: the whole family is revoked and the caller
//! gets 401 (so both the thief and the victim must sign in again). Presenting it **within the
//! grace period** — two refreshes racing from one device — yields another fresh pair in the same
//! family without revoking anything, so the device stays signed in whichever answer it keeps.
//! Expired tokens and tokens of revoked families are 401. Refresh slides the expiry: each new
//! token lives `REFRESH_TOKEN_TTL_SECS` from its issue.
//!
//! ## Login throttling
//! Failed logins are counted with GCRA on three counters: per account *and* client address
//! ([`LOGIN_PAIR_RULE`], 5 per 15 min), per client address ([`LOGIN_IP_RULE`], 50 per 15 min)
//! and per account across all addresses ([`LOGIN_ACCOUNT_RULE`], 100 per hour — a ceiling no
//! single address can reach, since its own pair counter stops it at 5). Guessing from one
//! address therefore never locks the owner out from another.
//!
//! A unit is taken from every counter **before** the password is checked and given back when
//! the password was right, so N concurrent attempts against a counter with L units left run at
//! most L password checks; the others answer 429 with `Retry-After` without any check.
//!
//! ## Registration throttling
//! Each registration takes a unit per client address ([`register_rule`]: 20 per hour unless
//! `REGISTER_LIMIT_PER_HOUR` says otherwise) before the password is hashed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::passwords;
use super::tokens::AccessTokens;
use crate::accounts::{record_event, ClientMeta};
use crate::api::{AuthTokens, WsTicket};
use crate::domain::{DeviceName, Email, Password, RefreshTokenHash, Role, Tier, User, UserId};
use crate::error::AppError;
use crate::ports::{
    new_uuid, AccountTokenStore, Clock, MfaStore, NewRefreshToken, Random, RateLimiter,
    RefreshTokenStore, RotateOutcome, SecurityEventKind, SecurityLog, TicketStore, TokenPurpose,
    UserStore,
};
use crate::rate_limit::{RateDecision, RateOp, RateRule};

/// How long after its rotation a refresh token may be presented again without counting as
/// reuse (racing refreshes from one device).
pub const REFRESH_GRACE_MS: i64 = 10_000;
/// Failed logins allowed per account and client address: 5 per 15 minutes.
pub const LOGIN_PAIR_RULE: RateRule = RateRule {
    limit: 5,
    window_ms: 15 * 60_000,
};
/// Failed logins allowed per client address: 50 per 15 minutes.
pub const LOGIN_IP_RULE: RateRule = RateRule {
    limit: 50,
    window_ms: 15 * 60_000,
};
/// Failed logins allowed per account from all addresses together: 100 per hour.
pub const LOGIN_ACCOUNT_RULE: RateRule = RateRule {
    limit: 100,
    window_ms: 60 * 60_000,
};
/// Registrations allowed per client address: `per_hour` an hour.
pub fn register_rule(per_hour: u32) -> RateRule {
    RateRule {
        limit: per_hour.max(1),
        window_ms: 60 * 60_000,
    }
}
/// Lifetime of the second step of a two-factor login: 5 minutes.
pub const MFA_TOKEN_TTL_MS: i64 = 5 * 60_000;
/// WebSocket ticket lifetime.
pub const WS_TICKET_TTL_MS: i64 = 30_000;
/// Rate-limiter bucket of failed logins.
const LOGIN_BUCKET: &str = "login_failures";
/// Rate-limiter bucket of registrations.
const REGISTER_BUCKET: &str = "registrations";

/// Settings of the auth service, from configuration.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Refresh-token lifetime (ms).
    pub refresh_ttl_ms: i64,
    /// Lower-cased emails that become admins at registration.
    pub admin_emails: Vec<String>,
    /// Registrations allowed per client address and hour.
    pub register_per_hour: u32,
}

/// The auth service over its ports.
pub struct AuthService<'a> {
    /// Accounts.
    pub users: &'a dyn UserStore,
    /// Refresh tokens.
    pub refresh_tokens: &'a dyn RefreshTokenStore,
    /// WebSocket tickets.
    pub tickets: &'a dyn TicketStore,
    /// Login throttling counters, keyed per account and per IP.
    pub limiter: &'a dyn RateLimiter,
    /// The security log (sign-ins).
    pub events: &'a dyn SecurityLog,
    /// Two-factor state (a login of an account with it stops at `mfa_required`).
    pub mfa: &'a dyn MfaStore,
    /// One-time tokens (the second step of a two-factor login).
    pub account_tokens: &'a dyn AccountTokenStore,
    /// Time.
    pub clock: &'a dyn Clock,
    /// Randomness.
    pub rng: &'a dyn Random,
    /// Access-token signer.
    pub tokens: &'a AccessTokens,
    /// Settings.
    pub settings: &'a AuthSettings,
}

fn random_token(rng: &dyn Random) -> String {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The rate-limiter key of an account: a hash, so emails never reach the limiter's storage.
pub fn account_key(email: &Email) -> String {
    format!(
        "login:acct:{}",
        hex::encode(&Sha256::digest(email.as_str().as_bytes())[..16])
    )
}

impl AuthService<'_> {
    /// Creates an account and signs it in.
    ///
    /// # Errors
    /// 409 when the email is registered already.
    pub async fn register(
        &self,
        email: Email,
        password: &Password,
        client_ip: Option<&str>,
        device: Option<DeviceName>,
    ) -> Result<(User, AuthTokens), AppError> {
        let key = format!(
            "register:ip:{}#{REGISTER_BUCKET}",
            crate::rate_limit::address_key(client_ip)
        );
        let rule = register_rule(self.settings.register_per_hour);
        let d = self.limiter.check(&key, rule, RateOp::Acquire).await?;
        if !d.allowed {
            tracing::warn!("registration throttled");
            return Err(AppError::RateLimited {
                retry_after_secs: d.retry_after_secs(),
            });
        }
        let now = self.clock.now_ms();
        let mut salt = [0u8; 16];
        self.rng.fill(&mut salt);
        // `ADMIN_EMAILS` takes effect only once the address is verified (see `accounts`).
        let role = Role::User;
        let user = User {
            id: UserId(new_uuid(self.rng)),
            email,
            password_hash: passwords::hash(password.expose(), &salt)?,
            tier: Tier::Free,
            tier_until: None,
            role,
            email_verified_at: None,
            created_at: now,
            updated_at: now,
            suspended_at: None,
        };
        self.users.insert(&user).await?;
        tracing::info!(user_id = %user.id, role = role.as_str(), "account registered");
        let tokens = self.start_session(&user, now, device).await?;
        Ok((user, tokens))
    }

    /// Signs in with email and password.
    ///
    /// # Errors
    /// 401 for an unknown email or a wrong password (same body), 429 while throttled.
    pub async fn login(
        &self,
        email: &Email,
        password: &[u8],
        client_ip: Option<&str>,
        device: Option<DeviceName>,
    ) -> Result<AuthTokens, AppError> {
        let taken = self.take_login_units(email, client_ip).await?;
        let user = self.users.find_by_email(email).await?;
        let ok = if let Some(u) = &user {
            passwords::verify(password, &u.password_hash)
        } else {
            // Same work as a real check, so timing does not reveal registered emails.
            let _ = passwords::verify(password, passwords::DUMMY_PHC);
            false
        };
        let meta = ClientMeta {
            ip: client_ip.map(str::to_owned),
            device,
        };
        let known = user.as_ref().map(|u| u.id);
        let (true, Some(user)) = (ok, user) else {
            if let Some(id) = known {
                let now = self.clock.now_ms();
                record_event(self.events, id, SecurityEventKind::LoginFailed, &meta, now).await;
            }
            tracing::info!("login failed");
            return Err(AppError::Unauthorized);
        };
        // The password was right: the attempt does not count as a failure.
        self.give_back(&taken).await;

        let now = self.clock.now_ms();
        if passwords::needs_rehash(&user.password_hash) {
            let mut salt = [0u8; 16];
            self.rng.fill(&mut salt);
            let phc = passwords::hash(password, &salt)?;
            self.users.update_password_hash(user.id, &phc, now).await?;
            tracing::info!(user_id = %user.id, "password rehashed with current parameters");
        }
        if user.suspended_at.is_some() {
            tracing::info!(user_id = %user.id, "login of a suspended account refused");
            return Err(AppError::AccountSuspended);
        }
        if self.mfa.get(user.id).await?.is_some_and(|m| m.enabled) {
            // The second step (`POST /auth/login/mfa`) needs this short-lived token.
            let mfa_token = random_token(self.rng);
            let hash: [u8; 32] = Sha256::digest(mfa_token.as_bytes()).into();
            let expires_at = now + MFA_TOKEN_TTL_MS;
            self.account_tokens
                .insert(&hash, user.id, TokenPurpose::MfaLogin, now, expires_at)
                .await?;
            tracing::info!(user_id = %user.id, "password accepted, second factor required");
            return Err(AppError::MfaRequired {
                mfa_token,
                expires_at,
            });
        }
        tracing::info!(user_id = %user.id, "login succeeded");
        record_event(
            self.events,
            user.id,
            SecurityEventKind::LoginSucceeded,
            &meta,
            now,
        )
        .await;
        self.start_session(&user, now, meta.device).await
    }

    /// Takes one unit from each login counter of `email` and `client_ip` (see the module's
    /// throttling rule). When any is exhausted, gives back what was taken and answers 429.
    async fn take_login_units(
        &self,
        email: &Email,
        client_ip: Option<&str>,
    ) -> Result<Vec<(String, RateRule)>, AppError> {
        let account = account_key(email);
        let ip = crate::rate_limit::address_key(client_ip);
        let counters = [
            (format!("{account}:ip:{ip}"), LOGIN_PAIR_RULE),
            (format!("login:ip:{ip}"), LOGIN_IP_RULE),
            (account, LOGIN_ACCOUNT_RULE),
        ];
        let decisions = futures_util::future::join_all(
            counters
                .iter()
                .map(|(key, rule)| self.throttle(key, *rule, RateOp::Acquire)),
        )
        .await;
        let mut taken = Vec::new();
        let mut refusal: Option<RateDecision> = None;
        let mut failure = None;
        for ((key, rule), d) in counters.into_iter().zip(decisions) {
            match d {
                Ok(d) if d.allowed => taken.push((key, rule)),
                Ok(d) => {
                    if refusal.is_none_or(|r| r.retry_after_ms < d.retry_after_ms) {
                        refusal = Some(d);
                    }
                }
                Err(e) => failure = Some(e),
            }
        }
        if refusal.is_none() && failure.is_none() {
            return Ok(taken);
        }
        self.give_back(&taken).await;
        if let Some(e) = failure {
            return Err(e);
        }
        tracing::warn!("login throttled");
        Err(AppError::RateLimited {
            retry_after_secs: refusal.map_or(1, |d| d.retry_after_secs()),
        })
    }

    /// Returns units taken by [`Self::take_login_units`]. Best effort: a counter that cannot
    /// be reached keeps the unit, which only ever errs on the side of throttling.
    async fn give_back(&self, taken: &[(String, RateRule)]) {
        let refunds = futures_util::future::join_all(
            taken
                .iter()
                .map(|(key, rule)| self.throttle(key, *rule, RateOp::Refund)),
        )
        .await;
        if refunds.iter().any(Result::is_err) {
            tracing::warn!("a login throttle unit could not be given back");
        }
    }

    async fn throttle(
        &self,
        key: &str,
        rule: RateRule,
        op: RateOp,
    ) -> Result<RateDecision, AppError> {
        let bucketed = format!("{key}#{LOGIN_BUCKET}");
        Ok(self.limiter.check(&bucketed, rule, op).await?)
    }

    /// A new token family (a session) for `user`.
    pub(crate) async fn start_session(
        &self,
        user: &User,
        now: i64,
        device: Option<DeviceName>,
    ) -> Result<AuthTokens, AppError> {
        // Every way in (password, second factor) ends here: none opens a suspended account.
        if user.suspended_at.is_some() {
            return Err(AppError::AccountSuspended);
        }
        let family_id = new_uuid(self.rng);
        let (refresh_token, mut row) = self.new_refresh(user.id, family_id, None, now);
        row.device_name = device;
        self.refresh_tokens.start_family(&row).await?;
        self.pair(user, family_id, refresh_token, now)
    }

    fn new_refresh(
        &self,
        user_id: UserId,
        family_id: uuid::Uuid,
        parent_id: Option<uuid::Uuid>,
        now: i64,
    ) -> (String, NewRefreshToken) {
        let token = random_token(self.rng);
        let row = NewRefreshToken {
            id: new_uuid(self.rng),
            user_id,
            family_id,
            token_hash: RefreshTokenHash::of(&token),
            parent_id,
            created_at: now,
            expires_at: now + self.settings.refresh_ttl_ms,
            device_name: None,
        };
        (token, row)
    }

    fn pair(
        &self,
        user: &User,
        session: uuid::Uuid,
        refresh_token: String,
        now: i64,
    ) -> Result<AuthTokens, AppError> {
        let access = self.tokens.issue(
            user.id,
            user.effective_tier(now),
            session,
            new_uuid(self.rng),
            now,
        )?;
        Ok(AuthTokens {
            access_token: access.token,
            refresh_token,
            expires_at: access.expires_at,
        })
    }

    /// Exchanges a refresh token for a new pair (see the module's rotation rule).
    ///
    /// # Errors
    /// 401 for unknown, expired, revoked or reused tokens.
    pub async fn refresh(&self, presented: &str) -> Result<AuthTokens, AppError> {
        let now = self.clock.now_ms();
        let Some(row) = self
            .refresh_tokens
            .find_by_hash(&RefreshTokenHash::of(presented))
            .await?
        else {
            return Err(AppError::Unauthorized);
        };
        if row.family_revoked || row.expires_at <= now {
            return Err(AppError::Unauthorized);
        }
        let Some(user) = self.users.find_by_id(row.user_id).await? else {
            return Err(AppError::Unauthorized);
        };
        if user.suspended_at.is_some() {
            return Err(AppError::AccountSuspended);
        }
        let (token, child) = self.new_refresh(row.user_id, row.family_id, Some(row.id), now);
        let rotated_at = match row.rotated_at {
            Some(at) => at,
            None => match self.refresh_tokens.rotate(row.id, &child, now).await? {
                RotateOutcome::Rotated => return self.pair(&user, row.family_id, token, now),
                RotateOutcome::FamilyRevoked => return Err(AppError::Unauthorized),
                // A racing request rotated it an instant ago: the grace rule applies.
                RotateOutcome::AlreadyRotated => now,
            },
        };
        if now - rotated_at <= REFRESH_GRACE_MS {
            if self.refresh_tokens.add_sibling(&child).await? {
                tracing::info!(user_id = %user.id, family_id = %row.family_id, "refresh within grace");
                return self.pair(&user, row.family_id, token, now);
            }
            return Err(AppError::Unauthorized);
        }
        self.refresh_tokens
            .revoke_family(row.family_id, "reuse", now)
            .await?;
        tracing::warn!(
            user_id = %user.id,
            family_id = %row.family_id,
            "refresh token reused after rotation: family revoked"
        );
        Err(AppError::Unauthorized)
    }

    /// Revokes the family of `presented` if it belongs to `user`; returns it. Unknown tokens,
    /// and tokens of other users, are ignored (idempotent, and nobody can end someone else's
    /// session).
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn logout(
        &self,
        user: UserId,
        presented: &str,
    ) -> Result<Option<uuid::Uuid>, AppError> {
        let Some(row) = self
            .refresh_tokens
            .find_by_hash(&RefreshTokenHash::of(presented))
            .await?
            .filter(|row| row.user_id == user)
        else {
            return Ok(None);
        };
        self.refresh_tokens
            .revoke_family(row.family_id, "logout", self.clock.now_ms())
            .await?;
        tracing::info!(user_id = %row.user_id, family_id = %row.family_id, "logged out");
        Ok(Some(row.family_id))
    }

    /// Revokes every family of `user`; returns them (the user's home ends their tokens and
    /// sockets).
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn logout_all(&self, user: UserId) -> Result<Vec<uuid::Uuid>, AppError> {
        let revoked = self
            .refresh_tokens
            .revoke_all(user, None, self.clock.now_ms())
            .await?;
        tracing::info!(user_id = %user, families = revoked.len(), "logged out everywhere");
        Ok(revoked)
    }

    /// A single-use ticket for the WebSocket endpoint, bound to the caller's session.
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn ws_ticket(
        &self,
        user: UserId,
        sid: Option<uuid::Uuid>,
    ) -> Result<WsTicket, AppError> {
        let ticket = random_token(self.rng);
        let expires_at = self.clock.now_ms() + WS_TICKET_TTL_MS;
        let hash: [u8; 32] = Sha256::digest(ticket.as_bytes()).into();
        self.tickets.insert(&hash, user, sid, expires_at).await?;
        Ok(WsTicket { ticket, expires_at })
    }

    /// Redeems a ticket once: its user and session.
    ///
    /// # Errors
    /// 401 for unknown, used or expired tickets.
    pub async fn redeem_ticket(
        &self,
        ticket: &str,
    ) -> Result<(UserId, Option<uuid::Uuid>), AppError> {
        let hash: [u8; 32] = Sha256::digest(ticket.as_bytes()).into();
        self.tickets
            .consume(&hash, self.clock.now_ms())
            .await?
            .ok_or(AppError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{
        FixedClock, InMemoryAccountTokenStore, InMemoryMfaStore, InMemoryRateLimiter,
        InMemoryRefreshTokenStore, InMemorySecurityLog, InMemoryTicketStore, InMemoryUserStore,
        SeqRandom,
    };

    const T0: i64 = 1_800_000_000_000;

    struct World {
        users: InMemoryUserStore,
        refresh: InMemoryRefreshTokenStore,
        tickets: InMemoryTicketStore,
        clock: &'static FixedClock,
        limiter: InMemoryRateLimiter<'static>,
        events: InMemorySecurityLog,
        mfa: InMemoryMfaStore,
        account_tokens: InMemoryAccountTokenStore,
        rng: SeqRandom,
        tokens: AccessTokens,
        settings: AuthSettings,
    }

    impl World {
        fn new() -> Self {
            let clock: &'static FixedClock = Box::leak(Box::new(FixedClock::at(T0)));
            Self {
                users: InMemoryUserStore::default(),
                refresh: InMemoryRefreshTokenStore::default(),
                tickets: InMemoryTicketStore::default(),
                clock,
                limiter: InMemoryRateLimiter::new(clock),
                events: InMemorySecurityLog::default(),
                mfa: InMemoryMfaStore::default(),
                account_tokens: InMemoryAccountTokenStore::default(),
                rng: SeqRandom::new(1),
                tokens: AccessTokens::new(b"0123456789abcdef0123456789abcdef", 900),
                settings: AuthSettings {
                    refresh_ttl_ms: 30 * 24 * 3_600_000,
                    admin_emails: vec!["boss@example.com".into()],
                    register_per_hour: 3,
                },
            }
        }

        fn svc(&self) -> AuthService<'_> {
            AuthService {
                users: &self.users,
                refresh_tokens: &self.refresh,
                tickets: &self.tickets,
                limiter: &self.limiter,
                events: &self.events,
                mfa: &self.mfa,
                account_tokens: &self.account_tokens,
                clock: self.clock,
                rng: &self.rng,
                tokens: &self.tokens,
                settings: &self.settings,
            }
        }
    }

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    fn pw(s: &str) -> Password {
        Password::parse(s).unwrap()
    }

    async fn registered(w: &World) -> AuthTokens {
        w.svc()
            .register(email("ada@example.com"), &pw("correct horse"), None, None)
            .await
            .unwrap()
            .1
    }

    #[tokio::test]
    async fn register_issues_a_verifiable_pair_and_stores_only_a_hash() {
        let w = World::new();
        let t = registered(&w).await;
        let v = w.tokens.verify(&t.access_token, T0).unwrap();
        assert_eq!(v.tier, Tier::Free);
        assert_eq!(t.expires_at, T0 + 900_000);
        let user = w.users.rows.borrow().values().next().unwrap().clone();
        assert_eq!(user.role, Role::User);
        assert!(user.password_hash.starts_with("$argon2id$"));
        assert!(!user.password_hash.contains("correct horse"));
    }

    #[tokio::test]
    async fn a_suspended_account_can_neither_log_in_nor_refresh() {
        let w = World::new();
        let t = registered(&w).await;
        for u in w.users.rows.borrow_mut().values_mut() {
            u.suspended_at = Some(T0);
        }
        let e = w
            .svc()
            .login(&email("ada@example.com"), b"correct horse", None, None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "account_suspended");
        let e = w.svc().refresh(&t.refresh_token).await.unwrap_err();
        assert_eq!(e.code(), "account_suspended");
        // A wrong password still reads as one: the suspension is told only to the owner.
        let e = w
            .svc()
            .login(&email("ada@example.com"), b"wrong horse", None, None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "unauthorized");
        for u in w.users.rows.borrow_mut().values_mut() {
            u.suspended_at = None;
        }
        assert!(w.svc().refresh(&t.refresh_token).await.is_ok());
    }

    #[tokio::test]
    async fn a_duplicate_email_is_a_conflict() {
        let w = World::new();
        registered(&w).await;
        let e = w
            .svc()
            .register(email("ADA@example.com "), &pw("another one"), None, None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "conflict");
    }

    #[tokio::test]
    async fn admin_emails_register_as_plain_users_until_verified() {
        let w = World::new();
        w.svc()
            .register(email("Boss@Example.com"), &pw("12345678"), None, None)
            .await
            .unwrap();
        let role = w.users.rows.borrow().values().next().unwrap().role;
        assert_eq!(role, Role::User);
    }

    #[tokio::test]
    async fn wrong_password_and_unknown_email_are_the_same_401() {
        let w = World::new();
        registered(&w).await;
        let a = w
            .svc()
            .login(&email("ada@example.com"), b"wrong horse", None, None)
            .await
            .unwrap_err();
        let b = w
            .svc()
            .login(&email("nobody@example.com"), b"correct horse", None, None)
            .await
            .unwrap_err();
        assert_eq!(a.body("r"), b.body("r"));
        assert_eq!(a.status(), 401);
    }

    #[tokio::test]
    async fn login_with_the_right_password_succeeds() {
        let w = World::new();
        registered(&w).await;
        let t = w
            .svc()
            .login(
                &email(" ADA@example.com"),
                b"correct horse",
                Some("203.0.113.9"),
                None,
            )
            .await
            .unwrap();
        assert!(w.tokens.verify(&t.access_token, T0).is_ok());
    }

    #[tokio::test]
    async fn login_rehashes_a_password_stored_with_old_parameters() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let w = World::new();
        registered(&w).await;
        let weak = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"correct horse", &SaltString::encode_b64(&[9; 16]).unwrap())
        .unwrap()
        .to_string();
        let id = *w.users.rows.borrow().keys().next().unwrap();
        w.users
            .rows
            .borrow_mut()
            .get_mut(&id)
            .unwrap()
            .password_hash = weak.clone();
        w.svc()
            .login(&email("ada@example.com"), b"correct horse", None, None)
            .await
            .unwrap();
        let now = w.users.rows.borrow()[&id].password_hash.clone();
        assert_ne!(now, weak);
        assert!(!passwords::needs_rehash(&now));
    }

    #[tokio::test]
    async fn five_failures_lock_the_account_for_that_address_only_and_the_lock_wears_off() {
        let w = World::new();
        registered(&w).await;
        let attacker = Some("203.0.113.66");
        for _ in 0..5 {
            let e = w
                .svc()
                .login(&email("ada@example.com"), b"nope-nope", attacker, None)
                .await
                .unwrap_err();
            assert_eq!(e.status(), 401);
        }
        // Even the right password is refused from that address while locked…
        let e = w
            .svc()
            .login(&email("ada@example.com"), b"correct horse", attacker, None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "rate_limited");
        assert_eq!(e.headers(), vec![("Retry-After", "180".to_owned())]);
        // …but the owner elsewhere is not locked out.
        assert!(w
            .svc()
            .login(
                &email("ada@example.com"),
                b"correct horse",
                Some("198.51.100.1"),
                None
            )
            .await
            .is_ok());
        w.clock.advance(180_000);
        assert!(w
            .svc()
            .login(&email("ada@example.com"), b"correct horse", attacker, None)
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn the_account_ceiling_needs_many_addresses_and_a_right_password_costs_no_unit() {
        let w = World::new();
        registered(&w).await;
        // Right passwords never use up the ceiling.
        for i in 0..150 {
            let ip = format!("192.0.2.{}", i % 200);
            w.svc()
                .login(&email("ada@example.com"), b"correct horse", Some(&ip), None)
                .await
                .unwrap();
        }
        // 100 failures from 20 addresses (5 each) reach the per-account ceiling.
        for i in 0..100 {
            let ip = format!("198.51.100.{}", i / 5);
            let e = w
                .svc()
                .login(&email("ada@example.com"), b"nope-nope", Some(&ip), None)
                .await
                .unwrap_err();
            assert_eq!(e.status(), 401, "failure {i}");
        }
        let e = w
            .svc()
            .login(
                &email("ada@example.com"),
                b"correct horse",
                Some("203.0.113.200"),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), "rate_limited");
        // A refused attempt took nothing from its other counters: after the ceiling refills
        // by one unit, the fresh address may try again.
        w.clock.advance(36_000);
        assert!(w
            .svc()
            .login(
                &email("ada@example.com"),
                b"correct horse",
                Some("203.0.113.200"),
                None
            )
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn registrations_are_throttled_per_address_before_any_hashing() {
        let w = World::new();
        let ip = Some("203.0.113.5");
        for i in 0..3 {
            w.svc()
                .register(
                    email(&format!("r{i}@example.com")),
                    &pw("correct horse"),
                    ip,
                    None,
                )
                .await
                .unwrap();
        }
        let e = w
            .svc()
            .register(email("r3@example.com"), &pw("correct horse"), ip, None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "rate_limited");
        assert_eq!(e.headers(), vec![("Retry-After", "1200".to_owned())]);
        assert_eq!(w.users.rows.borrow().len(), 3, "nothing was created");
        w.svc()
            .register(
                email("r3@example.com"),
                &pw("correct horse"),
                Some("203.0.113.6"),
                None,
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn failures_across_accounts_lock_the_ip() {
        let w = World::new();
        registered(&w).await;
        for i in 0..50 {
            let _ = w
                .svc()
                .login(
                    &email(&format!("u{i}@example.com")),
                    b"x",
                    Some("198.51.100.7"),
                    None,
                )
                .await;
        }
        let e = w
            .svc()
            .login(
                &email("ada@example.com"),
                b"correct horse",
                Some("198.51.100.7"),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), "rate_limited");
        // Another IP is not affected.
        assert!(w
            .svc()
            .login(
                &email("ada@example.com"),
                b"correct horse",
                Some("198.51.100.8"),
                None
            )
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn refresh_rotates_and_the_new_token_works() {
        let w = World::new();
        let t1 = registered(&w).await;
        w.clock.advance(60_000);
        let t2 = w.svc().refresh(&t1.refresh_token).await.unwrap();
        assert_ne!(t2.refresh_token, t1.refresh_token);
        w.clock.advance(60_000);
        let t3 = w.svc().refresh(&t2.refresh_token).await.unwrap();
        assert!(w.tokens.verify(&t3.access_token, w.clock.now_ms()).is_ok());
    }

    #[tokio::test]
    async fn a_racing_refresh_within_the_grace_keeps_the_family_alive() {
        let w = World::new();
        let t1 = registered(&w).await;
        let a = w.svc().refresh(&t1.refresh_token).await.unwrap();
        w.clock.advance(REFRESH_GRACE_MS);
        let b = w.svc().refresh(&t1.refresh_token).await.unwrap();
        // Both answers stay usable: whichever the device kept, it stays signed in.
        w.clock.advance(60_000);
        assert!(w.svc().refresh(&a.refresh_token).await.is_ok());
        assert!(w.svc().refresh(&b.refresh_token).await.is_ok());
    }

    #[tokio::test]
    async fn reuse_after_the_grace_revokes_the_whole_family() {
        let w = World::new();
        let t1 = registered(&w).await;
        let t2 = w.svc().refresh(&t1.refresh_token).await.unwrap();
        w.clock.advance(REFRESH_GRACE_MS + 1);
        let e = w.svc().refresh(&t1.refresh_token).await.unwrap_err();
        assert_eq!(e.status(), 401);
        // The legitimate successor dies with the family.
        assert_eq!(
            w.svc()
                .refresh(&t2.refresh_token)
                .await
                .unwrap_err()
                .status(),
            401
        );
    }

    #[tokio::test]
    async fn reuse_does_not_touch_other_families_of_the_user() {
        let w = World::new();
        let laptop = registered(&w).await;
        let phone = w
            .svc()
            .login(&email("ada@example.com"), b"correct horse", None, None)
            .await
            .unwrap();
        w.svc().refresh(&laptop.refresh_token).await.unwrap();
        w.clock.advance(REFRESH_GRACE_MS + 1);
        assert!(w.svc().refresh(&laptop.refresh_token).await.is_err());
        assert!(w.svc().refresh(&phone.refresh_token).await.is_ok());
    }

    #[tokio::test]
    async fn expired_and_unknown_refresh_tokens_are_401() {
        let w = World::new();
        let t1 = registered(&w).await;
        assert!(w.svc().refresh("not-a-token").await.is_err());
        w.clock.advance(w.settings.refresh_ttl_ms);
        assert_eq!(
            w.svc()
                .refresh(&t1.refresh_token)
                .await
                .unwrap_err()
                .status(),
            401
        );
    }

    #[tokio::test]
    async fn logout_revokes_only_that_family_and_logout_all_revokes_every_one() {
        let w = World::new();
        let a = registered(&w).await;
        let b = w
            .svc()
            .login(&email("ada@example.com"), b"correct horse", None, None)
            .await
            .unwrap();
        let c = w
            .svc()
            .login(&email("ada@example.com"), b"correct horse", None, None)
            .await
            .unwrap();
        let user = w.tokens.verify(&a.access_token, T0).unwrap().user_id;
        let sid = |t: &AuthTokens| w.tokens.verify(&t.access_token, T0).unwrap().sid.unwrap();
        let first = sid(&a);
        // Someone else presenting the token cannot end the session.
        w.svc()
            .logout(UserId(uuid::Uuid::from_u128(999)), &a.refresh_token)
            .await
            .unwrap();
        assert!(w.svc().refresh(&a.refresh_token).await.is_ok());
        let a = w
            .svc()
            .login(&email("ada@example.com"), b"correct horse", None, None)
            .await
            .unwrap();
        assert_eq!(
            w.svc().logout(user, &a.refresh_token).await.unwrap(),
            Some(sid(&a))
        );
        assert!(w.svc().refresh(&a.refresh_token).await.is_err());
        let b2 = w.svc().refresh(&b.refresh_token).await.unwrap();
        assert_eq!(sid(&b2), sid(&b), "a rotation stays in its session");
        let mut expected = vec![first, sid(&b), sid(&c)];
        expected.sort();
        assert_eq!(w.svc().logout_all(user).await.unwrap(), expected);
        assert!(w.svc().refresh(&b2.refresh_token).await.is_err());
        assert!(w.svc().refresh(&c.refresh_token).await.is_err());
        // Logging out an unknown token is a no-op, not an error.
        assert!(w.svc().logout(user, "nope").await.is_ok());
    }

    #[tokio::test]
    async fn a_ws_ticket_works_once_and_only_before_it_expires() {
        let w = World::new();
        let id = UserId(uuid::Uuid::from_u128(5));
        let sid = Some(uuid::Uuid::from_u128(6));
        let t = w.svc().ws_ticket(id, sid).await.unwrap();
        assert_eq!(t.expires_at, T0 + WS_TICKET_TTL_MS);
        assert_eq!(
            w.svc().redeem_ticket(&t.ticket).await.unwrap(),
            (id, sid),
            "the socket belongs to the ticket's session"
        );
        assert!(w.svc().redeem_ticket(&t.ticket).await.is_err());
        let late = w.svc().ws_ticket(id, None).await.unwrap();
        w.clock.advance(WS_TICKET_TTL_MS);
        assert!(w.svc().redeem_ticket(&late.ticket).await.is_err());
    }
}
