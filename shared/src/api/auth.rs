//! Auth bodies.

use serde::{Deserialize, Serialize};

use crate::domain::{Email, Password, Tier, MAX_PASSWORD_CHARS};
use crate::error::{AppError, FieldError};

/// `POST /auth/register`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Email (trimmed and lower-cased by the server).
    #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254, example = "ada@example.com"))]
    pub email: String,
    /// Password: 8–256 characters.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 8, max_length = 256, example = "correct horse battery")
    )]
    pub password: String,
}

impl std::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterRequest").finish_non_exhaustive()
    }
}

impl RegisterRequest {
    /// Parses both fields, reporting every invalid one.
    ///
    /// # Errors
    /// 422 naming `email` and/or `password`.
    pub fn try_into_domain(self) -> Result<(Email, Password), AppError> {
        let email = Email::parse(&self.email);
        let password = Password::parse(&self.password);
        match (email, password) {
            (Ok(e), Ok(p)) => Ok((e, p)),
            (e, p) => Err(AppError::Validation(
                [e.err(), p.err()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<FieldError>>(),
            )),
        }
    }
}

/// `POST /auth/login`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Email (case and surrounding spaces do not matter).
    #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254, example = "ada@example.com"))]
    pub email: String,
    /// Password: at most 256 characters.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 256, example = "correct horse battery")
    )]
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest").finish_non_exhaustive()
    }
}

impl LoginRequest {
    /// Parses credentials for login: the email must be an address, the password at most
    /// [`MAX_PASSWORD_CHARS`] characters (its minimum is not checked: a wrong password is 401).
    ///
    /// # Errors
    /// 422 naming `email` and/or `password`.
    pub fn try_into_login(self) -> Result<(Email, String), AppError> {
        let email = Email::parse(&self.email);
        let n = self.password.chars().count();
        let password = if n == 0 {
            Err(FieldError::new("password", "is required"))
        } else if n > MAX_PASSWORD_CHARS {
            Err(FieldError::new(
                "password",
                format!("must be at most {MAX_PASSWORD_CHARS} characters"),
            ))
        } else {
            Ok(self.password)
        };
        match (email, password) {
            (Ok(e), Ok(p)) => Ok((e, p)),
            (e, p) => Err(AppError::Validation(
                [e.err(), p.err()].into_iter().flatten().collect(),
            )),
        }
    }
}

/// `POST /auth/refresh` and `POST /auth/logout`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 512))]
    pub refresh_token: String,
}

/// The longest refresh token accepted (ours are 43 characters; this leaves room to change).
pub const MAX_REFRESH_TOKEN_LEN: usize = 512;

impl RefreshRequest {
    /// The token, if its length is plausible.
    ///
    /// # Errors
    /// 422 naming `refresh_token` when it is empty or longer than 512 characters.
    pub fn token(&self) -> Result<&str, AppError> {
        let n = self.refresh_token.chars().count();
        if n == 0 || n > MAX_REFRESH_TOKEN_LEN {
            return Err(AppError::field(
                "refresh_token",
                format!("must be 1 to {MAX_REFRESH_TOKEN_LEN} characters"),
            ));
        }
        Ok(&self.refresh_token)
    }
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshRequest").finish_non_exhaustive()
    }
}

/// A token pair.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthTokens {
    /// HS256 JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque refresh token (single use; rotated on refresh).
    pub refresh_token: String,
    /// When the access token expires (epoch ms).
    pub expires_at: i64,
}

impl std::fmt::Debug for AuthTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthTokens")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// `GET /auth/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserProfile {
    /// User id (UUID).
    #[cfg_attr(feature = "openapi", schema(format = Uuid))]
    pub id: String,
    /// Email.
    pub email: String,
    /// Current tier, from the database.
    pub tier: Tier,
    /// Whether the address was verified (a verification link was followed).
    pub email_verified: bool,
}

/// `POST /auth/ws-ticket`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WsTicket {
    /// Single-use ticket for `GET /chat/stream?ticket=`.
    pub ticket: String,
    /// Expiry (epoch ms).
    pub expires_at: i64,
}

impl std::fmt::Debug for WsTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsTicket")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// `POST /auth/logout-all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoggedOutAll {
    /// Always true.
    pub ok: bool,
    /// How many sessions (refresh-token families) were revoked.
    pub revoked: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_of_implausible_length_are_422() {
        let req = |t: &str| RefreshRequest {
            refresh_token: t.to_owned(),
        };
        assert_eq!(req("").token().unwrap_err().status(), 422);
        assert_eq!(req(&"x".repeat(513)).token().unwrap_err().status(), 422);
        assert_eq!(req(&"x".repeat(512)).token().unwrap(), "x".repeat(512));
    }

    #[test]
    fn login_accepts_short_passwords_but_not_empty_or_huge_ones() {
        let req = |p: &str| LoginRequest {
            email: "a@example.com".into(),
            password: p.to_owned(),
        };
        assert!(req("short").try_into_login().is_ok());
        assert!(req("").try_into_login().is_err());
        assert!(req(&"x".repeat(257)).try_into_login().is_err());
    }

    #[test]
    fn register_reports_both_bad_fields_at_once() {
        let e = RegisterRequest {
            email: "nope".into(),
            password: "short".into(),
        }
        .try_into_domain()
        .unwrap_err();
        let AppError::Validation(fields) = e else {
            panic!("validation expected")
        };
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, vec!["email", "password"]);
    }
}
