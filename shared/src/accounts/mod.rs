//! Accounts people can trust: email verification, password reset and change, sessions and
//! the security log (two-factor authentication is [`totp`]).
//!
//! ## Tokens sent by email
//! Verification and reset links carry 256 random bits (URL-safe base64), stored only as their
//! SHA-256, single use (spending one is one atomic `UPDATE … RETURNING`), verification valid
//! [`VERIFY_TTL_MS`] (24 h) and reset [`RESET_TTL_MS`] (30 min). A used, expired, unknown or
//! other-purpose token is 401 `unauthorized`, all with the same body.
//!
//! ## Verification
//! Registration sends a link; `POST /auth/verify-email` spends it. `ADMIN_EMAILS` grants the
//! admin role only then, so nobody becomes an admin by registering an address they do not
//! control. A resend takes a unit of [`VERIFY_RESEND_RULE`] (3 an hour per account) first.
//!
//! ## Reset
//! `POST /auth/password/forgot` takes a unit per client address ([`FORGOT_ADDRESS_RULE`],
//! 10 an hour) and per address asked for ([`FORGOT_ACCOUNT_RULE`], 3 an hour, keyed by a hash
//! of the email, so it applies alike to registered and unknown addresses), then stores a
//! token for the account *in the same statement that looks it up* and answers 202 — the same
//! answer and the same work whether or not the account exists; the message, when there is one,
//! is sent after the answer (in the background), so its round trip does not show in the
//! timing. A reset sets the password, spends every other reset link and revokes every session
//! (their sockets close). It cannot recover data a client encrypted under a key derived from
//! the old password: the server never holds such keys.
//!
//! ## Change
//! `POST /auth/password/change` checks the current password under a throttle of its own
//! ([`CHANGE_RULE`], 5 failures per 15 min per account, taken before the check and given back
//! when it was right), then revokes every *other* session.

pub mod deletion;
pub mod export;
pub mod mail;
pub mod mfa;
pub mod totp;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::api::{SecurityEventInfo, SessionInfo, SessionList};
use crate::auth::passwords;
use crate::domain::{DeviceName, Email, Password, Role, UserId};
use crate::error::{AppError, Upstream};
use crate::ports::{
    AccountTokenStore, Clock, Mailer, OutgoingEmail, Random, RateLimiter, RefreshTokenStore,
    SecurityEvent, SecurityEventKind, SecurityLog, TokenPurpose, UpstreamError, UserStore,
};
use crate::rate_limit::{RateOp, RateRule};

/// Lifetime of a verification link: 24 hours.
pub const VERIFY_TTL_MS: i64 = 24 * 3_600_000;
/// Lifetime of a reset link: 30 minutes.
pub const RESET_TTL_MS: i64 = 30 * 60_000;
/// Verification resends per account: 3 an hour.
pub const VERIFY_RESEND_RULE: RateRule = RateRule {
    limit: 3,
    window_ms: 3_600_000,
};
/// Reset requests per client address: 10 an hour.
pub const FORGOT_ADDRESS_RULE: RateRule = RateRule {
    limit: 10,
    window_ms: 3_600_000,
};
/// Reset requests per email address asked for: 3 an hour.
pub const FORGOT_ACCOUNT_RULE: RateRule = RateRule {
    limit: 3,
    window_ms: 3_600_000,
};
/// Wrong current passwords on a change, per account: 5 per 15 minutes.
pub const CHANGE_RULE: RateRule = RateRule {
    limit: 5,
    window_ms: 15 * 60_000,
};
/// How many events `GET /auth/events` shows.
pub const EVENTS_SHOWN: u32 = 100;

const ACCOUNT_BUCKET: &str = "account_flows";

/// What a request says about its client, for the security log.
#[derive(Debug, Clone, Default)]
pub struct ClientMeta {
    /// `CF-Connecting-IP`.
    pub ip: Option<String>,
    /// `X-Device-Name`.
    pub device: Option<DeviceName>,
}

/// The client's network with the host part dropped: `/24` of IPv4, `/48` of IPv6; `None`
/// for anything that is not an address.
pub fn network_of(ip: &str) -> Option<String> {
    match ip.trim().parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            Some(format!("{}.{}.{}.0/24", o[0], o[1], o[2]))
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
        }
    }
}

/// Settings of the account service.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    /// Lower-cased emails that become admins once verified.
    pub admin_emails: Vec<String>,
    /// The base of links in emails (`PUBLIC_BASE_URL` or the request's origin).
    pub link_base: String,
}

/// The account service over its ports.
pub struct AccountService<'a> {
    /// Accounts.
    pub users: &'a dyn UserStore,
    /// One-time tokens.
    pub tokens: &'a dyn AccountTokenStore,
    /// Sessions.
    pub refresh_tokens: &'a dyn RefreshTokenStore,
    /// Throttles.
    pub limiter: &'a dyn RateLimiter,
    /// Outgoing email.
    pub mailer: &'a dyn Mailer,
    /// The security log.
    pub events: &'a dyn SecurityLog,
    /// Time.
    pub clock: &'a dyn Clock,
    /// Randomness.
    pub rng: &'a dyn Random,
    /// Settings.
    pub settings: &'a AccountSettings,
}

/// A new token and its hash.
fn new_token(rng: &dyn Random) -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

/// The stored form of a presented token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn email_key(email: &Email) -> String {
    hex::encode(&Sha256::digest(email.as_str().as_bytes())[..16])
}

/// Records `kind` for `user`, best effort: a log that cannot be written never fails the flow
/// it describes (the failure is logged).
pub async fn record_event(
    log: &dyn SecurityLog,
    user: UserId,
    kind: SecurityEventKind,
    meta: &ClientMeta,
    at: i64,
) {
    let event = SecurityEvent {
        user_id: user,
        kind,
        device_name: meta.device.as_ref().map(|d| d.as_str().to_owned()),
        network: meta.ip.as_deref().and_then(network_of),
        at,
    };
    if let Err(e) = log.record(&event).await {
        tracing::warn!(user_id = %user, kind = kind.as_str(), error = %e, "security event not recorded");
    }
}

impl AccountService<'_> {
    async fn take(&self, key: &str, rule: RateRule) -> Result<(), AppError> {
        let d = self
            .limiter
            .check(&format!("{key}#{ACCOUNT_BUCKET}"), rule, RateOp::Acquire)
            .await?;
        if d.allowed {
            Ok(())
        } else {
            Err(AppError::RateLimited {
                retry_after_secs: d.retry_after_secs(),
            })
        }
    }

    async fn give_back(&self, key: &str, rule: RateRule) {
        let refunded = self
            .limiter
            .check(&format!("{key}#{ACCOUNT_BUCKET}"), rule, RateOp::Refund)
            .await;
        if refunded.is_err() {
            tracing::warn!("an account throttle unit could not be given back");
        }
    }

    fn require_mail(&self) -> Result<(), AppError> {
        if self.mailer.configured() {
            Ok(())
        } else {
            Err(AppError::EmailNotConfigured)
        }
    }

    /// Issues a verification token for `user` and mails its link.
    ///
    /// # Errors
    /// 503 `email_not_configured`, or `upstream_unavailable` when the mail could not be sent.
    pub async fn send_verification(&self, user: UserId, email: &Email) -> Result<(), AppError> {
        self.require_mail()?;
        let now = self.clock.now_ms();
        let (token, hash) = new_token(self.rng);
        self.tokens
            .insert(
                &hash,
                user,
                TokenPurpose::VerifyEmail,
                now,
                now + VERIFY_TTL_MS,
            )
            .await?;
        let message = mail::verification(email.clone(), &self.settings.link_base, &token);
        self.mailer
            .send(&message)
            .await
            .map_err(|e| e.into_app_error(Upstream::Email))?;
        tracing::info!(user_id = %user, "verification email sent");
        Ok(())
    }

    /// After a registration: the verification link, best effort (the account exists whatever
    /// happens to the mail; the user can ask for another).
    pub async fn after_register(&self, user: UserId, email: &Email) {
        match self.send_verification(user, email).await {
            Ok(()) => {}
            Err(AppError::EmailNotConfigured) => {
                tracing::info!(user_id = %user, "no verification email: email is not configured");
            }
            Err(e) => tracing::warn!(user_id = %user, error = ?e, "verification email not sent"),
        }
    }

    /// `POST /auth/verify-email/resend`: another link, throttled per account.
    ///
    /// # Errors
    /// 409 when already verified, 429 beyond [`VERIFY_RESEND_RULE`], 503 without mail.
    pub async fn resend_verification(&self, user: UserId) -> Result<(), AppError> {
        self.require_mail()?;
        let account = self
            .users
            .find_by_id(user)
            .await?
            .ok_or(AppError::Unauthorized)?;
        if account.email_verified_at.is_some() {
            return Err(AppError::Conflict("email already verified"));
        }
        self.take(&format!("verify:acct:{user}"), VERIFY_RESEND_RULE)
            .await?;
        self.send_verification(user, &account.email).await
    }

    /// `POST /auth/verify-email`: spends the token and marks the address verified (granting
    /// the admin role when `ADMIN_EMAILS` lists it). Returns the account, whose home must
    /// learn of the change.
    ///
    /// # Errors
    /// 401 for an unknown, used, expired or other-purpose token.
    pub async fn verify_email(&self, token: &str, meta: &ClientMeta) -> Result<UserId, AppError> {
        let now = self.clock.now_ms();
        let user = self
            .tokens
            .consume(&token_hash(token), TokenPurpose::VerifyEmail, now)
            .await?
            .ok_or(AppError::Unauthorized)?;
        let account = self
            .users
            .find_by_id(user)
            .await?
            .ok_or(AppError::Unauthorized)?;
        let role = if self
            .settings
            .admin_emails
            .iter()
            .any(|a| a == account.email.as_str())
        {
            Role::Admin
        } else {
            account.role
        };
        self.users.mark_email_verified(user, role, now).await?;
        record_event(
            self.events,
            user,
            SecurityEventKind::EmailVerified,
            meta,
            now,
        )
        .await;
        tracing::info!(user_id = %user, role = role.as_str(), "email verified");
        Ok(user)
    }

    /// `POST /auth/password/forgot`: see the module's reset rule. Returns the message to send
    /// after answering, when the account exists.
    ///
    /// # Errors
    /// 503 without mail (alike for every address), 429 beyond either throttle.
    pub async fn forgot_password(
        &self,
        email: &Email,
        client_ip: Option<&str>,
    ) -> Result<Option<OutgoingEmail>, AppError> {
        self.require_mail()?;
        let ip = crate::rate_limit::address_key(client_ip);
        self.take(&format!("forgot:ip:{ip}"), FORGOT_ADDRESS_RULE)
            .await?;
        self.take(
            &format!("forgot:acct:{}", email_key(email)),
            FORGOT_ACCOUNT_RULE,
        )
        .await?;
        let now = self.clock.now_ms();
        let (token, hash) = new_token(self.rng);
        let found = self
            .tokens
            .insert_for_email(
                &hash,
                email,
                TokenPurpose::ResetPassword,
                now,
                now + RESET_TTL_MS,
            )
            .await?;
        tracing::info!("password reset asked for");
        Ok(found.map(|user| {
            tracing::info!(user_id = %user, "password reset link issued");
            mail::reset(email.clone(), &self.settings.link_base, &token)
        }))
    }

    /// `POST /auth/password/reset`: spends the token, sets the password, spends every other
    /// reset link and revokes every session; returns the account and its sessions (their
    /// sockets must close).
    ///
    /// # Errors
    /// 401 for an unknown, used, expired or other-purpose token.
    pub async fn reset_password(
        &self,
        token: &str,
        password: &Password,
        meta: &ClientMeta,
    ) -> Result<(UserId, Vec<uuid::Uuid>), AppError> {
        let now = self.clock.now_ms();
        let user = self
            .tokens
            .consume(&token_hash(token), TokenPurpose::ResetPassword, now)
            .await?
            .ok_or(AppError::Unauthorized)?;
        let mut salt = [0u8; 16];
        self.rng.fill(&mut salt);
        let phc = passwords::hash(password.expose(), &salt)?;
        self.users.update_password_hash(user, &phc, now).await?;
        self.tokens
            .spend_all(user, TokenPurpose::ResetPassword, now)
            .await?;
        let revoked = self.refresh_tokens.revoke_all(user, None, now).await?;
        record_event(
            self.events,
            user,
            SecurityEventKind::PasswordReset,
            meta,
            now,
        )
        .await;
        tracing::info!(user_id = %user, sessions = revoked.len(), "password reset");
        Ok((user, revoked))
    }

    /// `POST /auth/password/change`: see the module's change rule. Returns the other sessions
    /// it revoked.
    ///
    /// # Errors
    /// 401 for a wrong current password, 429 beyond [`CHANGE_RULE`].
    pub async fn change_password(
        &self,
        user: UserId,
        current_session: Option<uuid::Uuid>,
        current: &str,
        new: &Password,
        meta: &ClientMeta,
    ) -> Result<Vec<uuid::Uuid>, AppError> {
        let key = format!("pwchange:acct:{user}");
        self.take(&key, CHANGE_RULE).await?;
        let account = self
            .users
            .find_by_id(user)
            .await?
            .ok_or(AppError::Unauthorized)?;
        if !passwords::verify(current.as_bytes(), &account.password_hash) {
            tracing::info!(user_id = %user, "password change with a wrong current password");
            return Err(AppError::Unauthorized);
        }
        self.give_back(&key, CHANGE_RULE).await;
        let now = self.clock.now_ms();
        let mut salt = [0u8; 16];
        self.rng.fill(&mut salt);
        let phc = passwords::hash(new.expose(), &salt)?;
        self.users.update_password_hash(user, &phc, now).await?;
        self.tokens
            .spend_all(user, TokenPurpose::ResetPassword, now)
            .await?;
        let revoked = self
            .refresh_tokens
            .revoke_all(user, current_session, now)
            .await?;
        record_event(
            self.events,
            user,
            SecurityEventKind::PasswordChanged,
            meta,
            now,
        )
        .await;
        tracing::info!(user_id = %user, sessions = revoked.len(), "password changed");
        Ok(revoked)
    }

    /// `GET /auth/sessions`: the open sessions, the caller's marked.
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn sessions(
        &self,
        user: UserId,
        current: Option<uuid::Uuid>,
    ) -> Result<SessionList, AppError> {
        let rows = self
            .refresh_tokens
            .sessions(user, self.clock.now_ms())
            .await?;
        Ok(SessionList {
            sessions: rows
                .into_iter()
                .map(|r| SessionInfo {
                    id: r.id.to_string(),
                    device_name: r.device_name,
                    created_at: r.created_at,
                    last_used_at: r.last_used_at,
                    current: Some(r.id) == current,
                })
                .collect(),
        })
    }

    /// `DELETE /auth/sessions/{id}`: ends one of the caller's sessions.
    ///
    /// # Errors
    /// 404 for a session that is not the caller's or not open (another user's is the same 404).
    pub async fn revoke_session(
        &self,
        user: UserId,
        session: uuid::Uuid,
        meta: &ClientMeta,
    ) -> Result<(), AppError> {
        let now = self.clock.now_ms();
        if !self
            .refresh_tokens
            .revoke_session(user, session, now)
            .await?
        {
            return Err(AppError::NotFound);
        }
        record_event(
            self.events,
            user,
            SecurityEventKind::SessionRevoked,
            meta,
            now,
        )
        .await;
        tracing::info!(user_id = %user, family_id = %session, "session revoked");
        Ok(())
    }

    /// `GET /auth/events`: the newest [`EVENTS_SHOWN`] events.
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn security_events(&self, user: UserId) -> Result<Vec<SecurityEventInfo>, AppError> {
        Ok(self
            .events
            .recent(user, EVENTS_SHOWN)
            .await?
            .into_iter()
            .map(|e| SecurityEventInfo {
                kind: e.kind,
                at: e.at,
                device_name: e.device_name,
                network: e.network,
            })
            .collect())
    }
}

/// Maps a failure to send a message that the caller cannot act on (the background send of a
/// reset link) to a log line.
pub fn log_send_failure(e: &UpstreamError) {
    tracing::warn!(error = %e, "an account email could not be sent");
}

#[cfg(test)]
mod tests;
