//! Auth bodies.

use serde::{Deserialize, Serialize};

use crate::domain::{Email, Password, Tier, MAX_PASSWORD_CHARS};
use crate::error::{AppError, FieldError};

/// `POST /auth/register` and `POST /auth/login`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Email as typed.
    pub email: String,
    /// Password as typed.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

impl Credentials {
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

impl Credentials {
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
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token.
    pub refresh_token: String,
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshRequest").finish_non_exhaustive()
    }
}

/// A token pair.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct UserProfile {
    /// User id.
    pub id: String,
    /// Email.
    pub email: String,
    /// Current tier, from the database.
    pub tier: Tier,
}

/// `POST /auth/ws-ticket`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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
