//! TOTP two-factor authentication with recovery codes.
//!
//! - `setup` stores a new 160-bit secret *pending* (sealed under the per-purpose key
//!   `KeyPurpose::TotpSecret`, bound to the user id); login ignores it until `enable` confirms
//!   it with a current code, which answers ten recovery codes once (stored as SHA-256 only).
//!   Setting up again while enabled is 409.
//! - A login of an account with two-factor answers 401 `mfa_required` carrying a single-use
//!   `mfa_token` (5 minutes); `login` spends it with a TOTP code or a recovery code.
//! - Codes are throttled like passwords: each attempt (enable, login, disable) takes a unit
//!   of [`MFA_CODE_RULE`] (5 per 15 minutes per account) before the code is checked, given back
//!   when it was right. Whoever reaches the second step knows the password already, so the
//!   counter is the account's whatever the address.
//! - No replay: a TOTP code is accepted only for a time step newer than the last accepted one
//!   (an atomic compare-and-raise in the store), so a code seen once — even within its 90 s
//!   window — never works again, nor does an older one.

use base64::Engine;
use sha2::{Digest, Sha256};

use super::{record_event, totp, ClientMeta};
use crate::api::{AuthTokens, RecoveryCodes, SecondFactor, TotpSetup};
use crate::auth::passwords;
use crate::auth::AuthService;
use crate::domain::UserId;
use crate::error::AppError;
use crate::ports::{AccountTokenStore, MfaStore, SecurityEventKind, TokenPurpose};
use crate::rate_limit::{RateOp, RateRule};

/// Second-factor attempts per account: 5 per 15 minutes.
pub const MFA_CODE_RULE: RateRule = RateRule {
    limit: 5,
    window_ms: 15 * 60_000,
};
/// Recovery codes issued by `enable`.
pub const RECOVERY_CODE_COUNT: usize = 10;

const MFA_BUCKET: &str = "mfa_codes";

/// The two-factor service (over the auth service, which opens the session at the end).
pub struct MfaService<'a> {
    /// Accounts, sessions, the limiter, the log, time and randomness.
    pub auth: AuthService<'a>,
    /// Two-factor state.
    pub mfa: &'a dyn MfaStore,
    /// One-time tokens (`mfa_token`).
    pub tokens: &'a dyn AccountTokenStore,
    /// The key sealing secrets at rest.
    pub key: &'a [u8; 32],
}

/// A recovery code as typed: case, spaces and dashes do not matter.
fn recovery_hash(code: &str) -> [u8; 32] {
    let normal: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Sha256::digest(normal.as_bytes()).into()
}

impl MfaService<'_> {
    async fn take(&self, user: UserId) -> Result<String, AppError> {
        let key = format!("mfa:acct:{user}#{MFA_BUCKET}");
        let d = self
            .auth
            .limiter
            .check(&key, MFA_CODE_RULE, RateOp::Acquire)
            .await?;
        if !d.allowed {
            tracing::warn!(user_id = %user, "second-factor attempts throttled");
            return Err(AppError::RateLimited {
                retry_after_secs: d.retry_after_secs(),
            });
        }
        Ok(key)
    }

    async fn give_back(&self, key: &str) {
        if self
            .auth
            .limiter
            .check(key, MFA_CODE_RULE, RateOp::Refund)
            .await
            .is_err()
        {
            tracing::warn!("a second-factor throttle unit could not be given back");
        }
    }

    /// Checks `factor` for an enabled account, spending it (a TOTP step or a recovery code).
    /// Whether it was right; the throttle unit is taken first.
    async fn check(&self, user: UserId, factor: &SecondFactor) -> Result<bool, AppError> {
        let key = self.take(user).await?;
        let now = self.auth.clock.now_ms();
        let ok = match factor {
            SecondFactor::Totp(code) => {
                let Some(row) = self.mfa.get(user).await?.filter(|r| r.enabled) else {
                    return Ok(false);
                };
                let secret = totp::open(self.key, user, &row.sealed_secret)
                    .ok_or_else(|| AppError::internal("a TOTP secret does not open"))?;
                match totp::matching_step(&secret, code.trim(), now) {
                    Some(step) => self.mfa.accept_step(user, step).await?,
                    None => false,
                }
            }
            SecondFactor::Recovery(code) => {
                let spent = self
                    .mfa
                    .spend_recovery_code(user, &recovery_hash(code), now)
                    .await?;
                if spent {
                    tracing::info!(user_id = %user, "recovery code used");
                }
                spent
            }
        };
        if ok {
            self.give_back(&key).await;
        }
        Ok(ok)
    }

    /// Checks a second factor of an enabled account (throttled like every code; a TOTP step
    /// or a recovery code is spent when right), for flows that confirm with one.
    ///
    /// # Errors
    /// 429 beyond [`MFA_CODE_RULE`]; storage failures.
    pub async fn verify_factor(
        &self,
        user: UserId,
        factor: &SecondFactor,
    ) -> Result<bool, AppError> {
        self.check(user, factor).await
    }

    /// `POST /auth/2fa/setup`: a new pending secret.
    ///
    /// # Errors
    /// 409 while two-factor is enabled.
    pub async fn setup(&self, user: UserId) -> Result<TotpSetup, AppError> {
        let account = self
            .auth
            .users
            .find_by_id(user)
            .await?
            .ok_or(AppError::Unauthorized)?;
        let mut secret = [0u8; totp::SECRET_BYTES];
        self.auth.rng.fill(&mut secret);
        let sealed = totp::seal(self.key, user, &secret, self.auth.rng);
        if !self
            .mfa
            .set_pending(user, &sealed, self.auth.clock.now_ms())
            .await?
        {
            return Err(AppError::Conflict("two-factor authentication is enabled"));
        }
        tracing::info!(user_id = %user, "two-factor setup started");
        Ok(TotpSetup {
            secret: totp::base32(&secret),
            otpauth_uri: totp::otpauth_uri(&secret, account.email.as_str()),
        })
    }

    /// `POST /auth/2fa/enable`: confirms the pending secret with a current code; answers the
    /// recovery codes, once.
    ///
    /// # Errors
    /// 409 without a pending secret, 401 for a wrong code, 429 beyond [`MFA_CODE_RULE`].
    pub async fn enable(
        &self,
        user: UserId,
        code: &str,
        meta: &ClientMeta,
    ) -> Result<RecoveryCodes, AppError> {
        let Some(row) = self.mfa.get(user).await?.filter(|r| !r.enabled) else {
            return Err(AppError::Conflict("no two-factor setup is pending"));
        };
        let key = self.take(user).await?;
        let now = self.auth.clock.now_ms();
        let secret = totp::open(self.key, user, &row.sealed_secret)
            .ok_or_else(|| AppError::internal("a TOTP secret does not open"))?;
        let Some(step) = totp::matching_step(&secret, code.trim(), now) else {
            return Err(AppError::Unauthorized);
        };
        self.give_back(&key).await;
        let mut codes = Vec::with_capacity(RECOVERY_CODE_COUNT);
        let mut hashes = Vec::with_capacity(RECOVERY_CODE_COUNT);
        for _ in 0..RECOVERY_CODE_COUNT {
            let mut raw = [0u8; 7];
            self.auth.rng.fill(&mut raw);
            let s = data_encoding::BASE32_NOPAD
                .encode(&raw)
                .to_ascii_lowercase();
            let code = format!("{}-{}", &s[..5], &s[5..10]);
            hashes.push(recovery_hash(&code));
            codes.push(code);
        }
        if !self.mfa.enable(user, &hashes, step, now).await? {
            return Err(AppError::Conflict("no two-factor setup is pending"));
        }
        record_event(
            self.auth.events,
            user,
            SecurityEventKind::MfaEnabled,
            meta,
            now,
        )
        .await;
        tracing::info!(user_id = %user, "two-factor enabled");
        Ok(RecoveryCodes {
            recovery_codes: codes,
        })
    }

    /// `POST /auth/2fa/disable`: with the password and a current code (or a recovery code).
    ///
    /// # Errors
    /// 409 when two-factor is off, 401 for a wrong password or code, 429 beyond
    /// [`MFA_CODE_RULE`].
    pub async fn disable(
        &self,
        user: UserId,
        password: &str,
        code: &str,
        meta: &ClientMeta,
    ) -> Result<(), AppError> {
        if !self.mfa.get(user).await?.is_some_and(|r| r.enabled) {
            return Err(AppError::Conflict(
                "two-factor authentication is not enabled",
            ));
        }
        let key = self.take(user).await?;
        let account = self
            .auth
            .users
            .find_by_id(user)
            .await?
            .ok_or(AppError::Unauthorized)?;
        if !passwords::verify(password.as_bytes(), &account.password_hash) {
            return Err(AppError::Unauthorized);
        }
        self.give_back(&key).await;
        let factor = if code.trim().len() == totp::DIGITS as usize {
            SecondFactor::Totp(code.to_owned())
        } else {
            SecondFactor::Recovery(code.to_owned())
        };
        if !self.check(user, &factor).await? {
            return Err(AppError::Unauthorized);
        }
        self.mfa.disable(user).await?;
        let now = self.auth.clock.now_ms();
        record_event(
            self.auth.events,
            user,
            SecurityEventKind::MfaDisabled,
            meta,
            now,
        )
        .await;
        tracing::info!(user_id = %user, "two-factor disabled");
        Ok(())
    }

    /// `POST /auth/login/mfa`: the second step of a login; spends the `mfa_token` once the
    /// factor is right.
    ///
    /// # Errors
    /// 401 for an unknown, used or expired token or a wrong factor, 429 beyond
    /// [`MFA_CODE_RULE`].
    pub async fn login(
        &self,
        mfa_token: &str,
        factor: &SecondFactor,
        meta: ClientMeta,
    ) -> Result<AuthTokens, AppError> {
        let hash: [u8; 32] = Sha256::digest(mfa_token.as_bytes()).into();
        let now = self.auth.clock.now_ms();
        let user = self
            .tokens
            .find(&hash, TokenPurpose::MfaLogin, now)
            .await?
            .ok_or(AppError::Unauthorized)?;
        if !self.check(user, factor).await? {
            record_event(
                self.auth.events,
                user,
                SecurityEventKind::LoginFailed,
                &meta,
                now,
            )
            .await;
            tracing::info!(user_id = %user, "second factor refused");
            return Err(AppError::Unauthorized);
        }
        if matches!(factor, SecondFactor::Recovery(_)) {
            record_event(
                self.auth.events,
                user,
                SecurityEventKind::RecoveryCodeUsed,
                &meta,
                now,
            )
            .await;
        }
        // Single use: of two racing second steps, one gets the session.
        if self
            .tokens
            .consume(&hash, TokenPurpose::MfaLogin, now)
            .await?
            != Some(user)
        {
            return Err(AppError::Unauthorized);
        }
        let account = self
            .auth
            .users
            .find_by_id(user)
            .await?
            .ok_or(AppError::Unauthorized)?;
        record_event(
            self.auth.events,
            user,
            SecurityEventKind::LoginSucceeded,
            &meta,
            now,
        )
        .await;
        tracing::info!(user_id = %user, "login succeeded with a second factor");
        self.auth.start_session(&account, now, meta.device).await
    }
}

/// Base64 of sealed secrets in storage.
pub fn encode_sealed(sealed: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sealed)
}

/// The bytes of a stored sealed secret.
pub fn decode_sealed(stored: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(stored)
        .ok()
}

#[cfg(test)]
mod tests;
