//! Bodies of the account endpoints: verification, password reset and change, sessions, the
//! security log.

use serde::{Deserialize, Serialize};

use crate::domain::{Email, Password};
use crate::error::{AppError, FieldError};
use crate::ports::SecurityEventKind;

/// The longest emailed token accepted (ours are 43 characters).
pub const MAX_ACCOUNT_TOKEN_LEN: usize = 512;

fn token_field(field: &str, token: &str) -> Result<(), FieldError> {
    let n = token.chars().count();
    if n == 0 || n > MAX_ACCOUNT_TOKEN_LEN {
        return Err(FieldError::new(
            field,
            format!("must be 1 to {MAX_ACCOUNT_TOKEN_LEN} characters"),
        ));
    }
    Ok(())
}

/// `POST /auth/verify-email`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    /// The token of the emailed link (`…/verify-email?token=…`).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 512))]
    pub token: String,
}

impl VerifyEmailRequest {
    /// The token, if its length is plausible.
    ///
    /// # Errors
    /// 422 naming `token`.
    pub fn token(&self) -> Result<&str, AppError> {
        token_field("token", &self.token).map_err(|f| AppError::Validation(vec![f]))?;
        Ok(&self.token)
    }
}

/// `POST /auth/password/forgot`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    /// The account's email.
    #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254, example = "ada@example.com"))]
    pub email: String,
}

impl std::fmt::Debug for ForgotPasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForgotPasswordRequest")
            .finish_non_exhaustive()
    }
}

impl ForgotPasswordRequest {
    /// The address.
    ///
    /// # Errors
    /// 422 naming `email`.
    pub fn try_into_domain(self) -> Result<Email, AppError> {
        Email::parse(&self.email).map_err(|f| AppError::Validation(vec![f]))
    }
}

/// `POST /auth/password/reset`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The token of the emailed link (`…/reset-password?token=…`).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 512))]
    pub token: String,
    /// The new password: 8–256 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 256))]
    pub password: String,
}

impl std::fmt::Debug for ResetPasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetPasswordRequest")
            .finish_non_exhaustive()
    }
}

impl ResetPasswordRequest {
    /// The token and the new password, every invalid field reported.
    ///
    /// # Errors
    /// 422 naming `token` and/or `password`.
    pub fn try_into_domain(self) -> Result<(String, Password), AppError> {
        let token = token_field("token", &self.token);
        let password = Password::parse(&self.password);
        match (token, password) {
            (Ok(()), Ok(p)) => Ok((self.token, p)),
            (t, p) => Err(AppError::Validation(
                [t.err(), p.err()].into_iter().flatten().collect(),
            )),
        }
    }
}

/// `POST /auth/password/change`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The password in force.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub current_password: String,
    /// The new password: 8–256 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 256))]
    pub new_password: String,
}

impl std::fmt::Debug for ChangePasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangePasswordRequest")
            .finish_non_exhaustive()
    }
}

impl ChangePasswordRequest {
    /// The current password (1–256 characters: a wrong one is 401) and the new one.
    ///
    /// # Errors
    /// 422 naming `current_password` and/or `new_password`.
    pub fn try_into_domain(self) -> Result<(String, Password), AppError> {
        let n = self.current_password.chars().count();
        let current = if n == 0 || n > crate::domain::MAX_PASSWORD_CHARS {
            Err(FieldError::new(
                "current_password",
                "must be 1 to 256 characters",
            ))
        } else {
            Ok(())
        };
        let new = Password::parse(&self.new_password).map_err(|mut f| {
            "new_password".clone_into(&mut f.field);
            f
        });
        match (current, new) {
            (Ok(()), Ok(p)) => Ok((self.current_password, p)),
            (c, p) => Err(AppError::Validation(
                [c.err(), p.err()].into_iter().flatten().collect(),
            )),
        }
    }
}

/// `POST /auth/password/change` → the other sessions it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordChanged {
    /// Always true.
    pub ok: bool,
    /// How many other sessions were revoked.
    pub revoked: u64,
}

/// One open session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionInfo {
    /// Session id (the refresh family; the `sid` of its access tokens).
    #[cfg_attr(feature = "openapi", schema(format = Uuid))]
    pub id: String,
    /// The name the device gave at sign-in (`X-Device-Name`), if any.
    pub device_name: Option<String>,
    /// When the session was opened (epoch ms).
    pub created_at: i64,
    /// When it was last refreshed (epoch ms; its opening if never).
    pub last_used_at: i64,
    /// Whether this is the session of the request's own token.
    pub current: bool,
}

/// `GET /auth/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionList {
    /// Open sessions, newest first.
    pub sessions: Vec<SessionInfo>,
}

/// One entry of the security log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecurityEventInfo {
    /// What happened.
    pub kind: SecurityEventKind,
    /// When (epoch ms).
    pub at: i64,
    /// The device's name, when the request gave one.
    pub device_name: Option<String>,
    /// The client's network, truncated (`/24` for IPv4, `/48` for IPv6).
    pub network: Option<String>,
}

/// `GET /auth/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecurityEvents {
    /// The newest 100 events, newest first.
    pub events: Vec<SecurityEventInfo>,
}

/// `POST /auth/2fa/setup`: a new secret, not in force until confirmed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TotpSetup {
    /// The secret, base32 (RFC 4648, no padding), for manual entry.
    pub secret: String,
    /// `otpauth://totp/…` for an authenticator app's QR code (SHA-1, 6 digits, 30 s).
    pub otpauth_uri: String,
}

impl std::fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpSetup").finish_non_exhaustive()
    }
}

fn code_field(field: &str, code: &str) -> Result<(), FieldError> {
    let n = code.chars().count();
    if n == 0 || n > 64 {
        return Err(FieldError::new(field, "must be 1 to 64 characters"));
    }
    Ok(())
}

/// `POST /auth/2fa/enable`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnableMfaRequest {
    /// A current code of the new secret (6 digits).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, example = "123456")
    )]
    pub code: String,
}

impl EnableMfaRequest {
    /// The code, if its length is plausible.
    ///
    /// # Errors
    /// 422 naming `code`.
    pub fn code(&self) -> Result<&str, AppError> {
        code_field("code", &self.code).map_err(|f| AppError::Validation(vec![f]))?;
        Ok(&self.code)
    }
}

/// `POST /auth/2fa/enable` → the recovery codes, shown this once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveryCodes {
    /// Ten single-use codes (`xxxxx-xxxxx`), each a substitute for one TOTP code.
    pub recovery_codes: Vec<String>,
}

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryCodes").finish_non_exhaustive()
    }
}

/// `POST /auth/2fa/disable`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DisableMfaRequest {
    /// The account's password.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub password: String,
    /// A current TOTP code, or an unused recovery code.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub code: String,
}

impl std::fmt::Debug for DisableMfaRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DisableMfaRequest").finish_non_exhaustive()
    }
}

impl DisableMfaRequest {
    /// Both fields checked for plausible lengths.
    ///
    /// # Errors
    /// 422 naming `password` and/or `code`.
    pub fn try_into_domain(self) -> Result<(String, String), AppError> {
        let n = self.password.chars().count();
        let p = if n == 0 || n > crate::domain::MAX_PASSWORD_CHARS {
            Err(FieldError::new("password", "must be 1 to 256 characters"))
        } else {
            Ok(())
        };
        match (p, code_field("code", &self.code)) {
            (Ok(()), Ok(())) => Ok((self.password, self.code)),
            (p, c) => Err(AppError::Validation(
                [p.err(), c.err()].into_iter().flatten().collect(),
            )),
        }
    }
}

/// The second factor a login or a disable presents.
#[derive(Clone, PartialEq, Eq)]
pub enum SecondFactor {
    /// A TOTP code.
    Totp(String),
    /// A recovery code.
    Recovery(String),
}

impl std::fmt::Debug for SecondFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Totp(_) => "SecondFactor::Totp(…)",
            Self::Recovery(_) => "SecondFactor::Recovery(…)",
        })
    }
}

/// `POST /auth/login/mfa`: the token of the `mfa_required` answer and exactly one of `code`
/// and `recovery_code`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum MfaLoginRequest {
    /// With a TOTP code.
    Code(MfaLoginWithCode),
    /// With a recovery code.
    Recovery(MfaLoginWithRecovery),
}

/// The second step with a TOTP code.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MfaLoginWithCode {
    /// `details.mfa_token` of the `mfa_required` answer.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 512))]
    pub mfa_token: String,
    /// A current TOTP code.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub code: String,
}

/// The second step with a recovery code.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MfaLoginWithRecovery {
    /// `details.mfa_token` of the `mfa_required` answer.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 512))]
    pub mfa_token: String,
    /// An unused recovery code.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub recovery_code: String,
}

impl std::fmt::Debug for MfaLoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaLoginRequest").finish_non_exhaustive()
    }
}

impl MfaLoginRequest {
    /// The token and the factor.
    ///
    /// # Errors
    /// 422 naming `mfa_token`, `code` or `recovery_code`.
    pub fn try_into_domain(self) -> Result<(String, SecondFactor), AppError> {
        let (token, factor) = match self {
            Self::Code(c) => (
                c.mfa_token,
                code_field("code", &c.code).map(|()| SecondFactor::Totp(c.code)),
            ),
            Self::Recovery(r) => (
                r.mfa_token,
                code_field("recovery_code", &r.recovery_code)
                    .map(|()| SecondFactor::Recovery(r.recovery_code)),
            ),
        };
        match (token_field("mfa_token", &token), factor) {
            (Ok(()), Ok(f)) => Ok((token, f)),
            (t, f) => Err(AppError::Validation(
                [t.err(), f.err()].into_iter().flatten().collect(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_and_change_name_every_bad_field() {
        let e = ResetPasswordRequest {
            token: String::new(),
            password: "short".into(),
        }
        .try_into_domain()
        .unwrap_err();
        let AppError::Validation(f) = e else { panic!() };
        assert_eq!(
            f.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(),
            ["token", "password"]
        );
        let e = ChangePasswordRequest {
            current_password: String::new(),
            new_password: "short".into(),
        }
        .try_into_domain()
        .unwrap_err();
        let AppError::Validation(f) = e else { panic!() };
        assert_eq!(
            f.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(),
            ["current_password", "new_password"]
        );
    }
}

/// `DELETE /auth/account`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeleteAccountRequest {
    /// The account's password.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub password: String,
    /// A current TOTP code or an unused recovery code; required when two-factor is on.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub code: Option<String>,
}

impl std::fmt::Debug for DeleteAccountRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeleteAccountRequest")
            .finish_non_exhaustive()
    }
}

impl DeleteAccountRequest {
    /// Both fields checked for plausible lengths.
    ///
    /// # Errors
    /// 422 naming `password` and/or `code`.
    pub fn try_into_domain(self) -> Result<(String, Option<String>), AppError> {
        let n = self.password.chars().count();
        let p = if n == 0 || n > crate::domain::MAX_PASSWORD_CHARS {
            Err(FieldError::new("password", "must be 1 to 256 characters"))
        } else {
            Ok(())
        };
        let c = self
            .code
            .as_deref()
            .map_or(Ok(()), |c| code_field("code", c));
        match (p, c) {
            (Ok(()), Ok(())) => Ok((self.password, self.code)),
            (p, c) => Err(AppError::Validation(
                [p.err(), c.err()].into_iter().flatten().collect(),
            )),
        }
    }
}

/// `DELETE /auth/account` → 202: the account stopped working; its data is being erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeletionAccepted {
    /// Always true.
    pub ok: bool,
    /// Whether the erasure finished before the answer (else the cron finishes it).
    pub completed: bool,
}
