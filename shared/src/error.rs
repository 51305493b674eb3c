//! The one error type of the API and its stable wire codes.
//!
//! Every failure a client can see is an [`AppError`]. Its [`code`](AppError::code) is part of
//! the public contract: a published code is never renamed. The worker turns an `AppError` into
//! an HTTP response in exactly one place, using [`status`](AppError::status),
//! [`headers`](AppError::headers) and [`body`](AppError::body); nothing here knows about HTTP
//! crates, so the mapping is unit-tested natively.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One invalid input field: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// The field's path in the request (`email`, `vectors[3].checksum`, or a header name).
    pub field: String,
    /// A human-readable reason, safe to show to the user.
    pub message: String,
}

impl FieldError {
    /// A field error for `field` with `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Which upstream service failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Upstream {
    /// The LLM provider (OpenAI-compatible API).
    Llm,
    /// Stripe.
    Payments,
    /// A platform binding (D1, R2, a Durable Object, Vectorize).
    Storage,
    /// The transactional email API.
    Email,
}

/// Every error the API answers with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The input parsed but broke a rule; each offending field is named. 422.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// The body was not syntactically valid JSON. 400.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// The body's content type is not one this endpoint accepts. 415.
    #[error("unsupported media type (expected {expected})")]
    UnsupportedMediaType {
        /// The content type(s) the endpoint accepts.
        expected: &'static str,
    },
    /// The body is larger than this endpoint accepts. 413.
    #[error("payload too large (limit {limit} bytes)")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Missing, invalid or expired credentials. 401.
    #[error("unauthorized")]
    Unauthorized,
    /// Authenticated, but not allowed (e.g. admin-only route, disallowed CORS origin). 403.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The account was suspended by an administrator: every request, login and refresh is
    /// refused until it is restored. 403.
    #[error("this account is suspended")]
    AccountSuspended,
    /// The address's team requires single sign-on: password login is refused
    /// (`GET /auth/sso/start`). 403.
    #[error("this address signs in with its team's single sign-on")]
    SsoRequired,
    /// A payment is needed and could not be taken (no saved card, a decline). 402. The detail
    /// (the processor's words) goes to the logs only.
    #[error("payment required: {0}")]
    PaymentRequired(String),
    /// No such route, or no such resource for this user. 404.
    #[error("not found")]
    NotFound,
    /// The route exists but not for this method. 405.
    #[error("method not allowed")]
    MethodNotAllowed {
        /// The methods the route does accept (for the `Allow` header).
        allowed: Vec<&'static str>,
    },
    /// The resource already exists or changed state in a conflicting way. 409.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// An `If-Match` precondition did not hold. 412.
    #[error("precondition failed")]
    PreconditionFailed,
    /// A webhook's signature is missing, malformed, wrong or too old. 400.
    #[error("invalid signature")]
    InvalidSignature,
    /// The SHA-256 of the received bytes differs from the declared checksum. 400.
    #[error("checksum mismatch")]
    ChecksumMismatch,
    /// The user's tier lacks a feature. 403.
    #[error("feature `{feature}` requires tier `{required_tier}`")]
    TierRequired {
        /// The feature name of the tier matrix.
        feature: &'static str,
        /// The lowest tier that has it.
        required_tier: &'static str,
    },
    /// The user's quota would be exceeded. 403.
    #[error("quota exceeded ({used} of {limit} bytes used)")]
    QuotaExceeded {
        /// Bytes in use.
        used: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A count limit of the user's would be exceeded (e.g. versions pending review, open
    /// uploads). 403, with the code of [`AppError::QuotaExceeded`]: both are quotas.
    #[error("quota exceeded ({used} of {limit} {what})")]
    LimitReached {
        /// What is counted, in words (`versions pending review`).
        what: &'static str,
        /// How many there are.
        used: u64,
        /// The limit.
        limit: u64,
    },
    /// Too many requests; retry after the given number of seconds. 429.
    #[error("rate limited (retry after {retry_after_secs} s)")]
    RateLimited {
        /// Seconds until a retry can succeed (at least 1).
        retry_after_secs: u64,
    },
    /// The LLM is not configured on this deployment. 503.
    #[error("LLM not configured")]
    LlmNotConfigured,
    /// Outgoing email is not configured on this deployment (`EMAIL_API_BASE`), and the flow
    /// needs it. 503.
    #[error("email is not configured on this deployment")]
    EmailNotConfigured,
    /// The password was right but the account has two-factor authentication: finish with
    /// `POST /auth/login/mfa` and the short-lived `mfa_token` of the details. 401.
    #[error("a second factor is required")]
    MfaRequired {
        /// Single-use token of the second step (5 minutes).
        mfa_token: String,
        /// When it expires (epoch ms).
        expires_at: i64,
    },
    /// An upstream service failed or timed out. 502 (bad answer) or 503 (unreachable).
    #[error("upstream {service:?} unavailable: {detail}")]
    UpstreamUnavailable {
        /// Which service.
        service: Upstream,
        /// `true` for an unusable answer (502), `false` for no answer or overload (503).
        bad_gateway: bool,
        /// Operator-facing detail; logged, never sent to the client.
        detail: String,
    },
    /// The client went away before its request body was complete (a dropped connection
    /// mid-upload). 400; the answer rarely reaches anyone, but the log says it was the client,
    /// not the service. The detail is for operators.
    #[error("the request body ended before it was complete")]
    RequestAborted(String),
    /// A WebSocket endpoint was called without `Upgrade: websocket`. 426.
    #[error("this endpoint speaks WebSocket: send `Upgrade: websocket`")]
    UpgradeRequired,
    /// A capability this deployment does not provide yet. 501.
    #[error("not implemented: {0}")]
    NotImplemented(&'static str),
    /// Anything else. 500. The client sees only "internal error"; the chain goes to the logs.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    /// An error decided by a user's home (a Durable Object), relayed as it answered: status,
    /// code, message, details and headers are the home's.
    #[error("{} ({})", .0.code, .0.status)]
    Relayed(Box<crate::home::WireError>),
}

/// Every stable code, so a relayed code maps back to its `'static` name.
pub const CODES: &[&str] = &[
    "validation_failed",
    "malformed_json",
    "unsupported_media_type",
    "payload_too_large",
    "unauthorized",
    "forbidden",
    "account_suspended",
    "sso_required",
    "payment_required",
    "not_found",
    "method_not_allowed",
    "conflict",
    "precondition_failed",
    "checksum_mismatch",
    "invalid_signature",
    "tier_required",
    "quota_exceeded",
    "rate_limited",
    "llm_not_configured",
    "email_not_configured",
    "mfa_required",
    "upstream_unavailable",
    "request_aborted",
    "upgrade_required",
    "not_implemented",
    "internal",
];

/// Headers an error may carry, so a relayed header maps back to its `'static` name.
const ERROR_HEADERS: &[&str] = &["WWW-Authenticate", "Allow", "Retry-After"];

/// The JSON error envelope: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// The inside of the error envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable `snake_case` code.
    pub code: String,
    /// Human-readable message, safe for clients.
    pub message: String,
    /// The request's id, as in the `X-Request-Id` header.
    pub request_id: String,
    /// Structured extras (invalid fields, quota figures, …) where the code has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)
    )]
    pub details: Option<Value>,
}

impl AppError {
    /// A validation error for one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// An internal error from anything displayable, with context for the logs.
    pub fn internal(context: impl std::fmt::Display) -> Self {
        Self::Internal(anyhow::anyhow!("{context}"))
    }

    /// The stable wire code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation_failed",
            Self::MalformedJson(_) => "malformed_json",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::AccountSuspended => "account_suspended",
            Self::SsoRequired => "sso_required",
            Self::PaymentRequired(_) => "payment_required",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PreconditionFailed => "precondition_failed",
            Self::ChecksumMismatch => "checksum_mismatch",
            Self::InvalidSignature => "invalid_signature",
            Self::TierRequired { .. } => "tier_required",
            Self::QuotaExceeded { .. } | Self::LimitReached { .. } => "quota_exceeded",
            Self::RateLimited { .. } => "rate_limited",
            Self::LlmNotConfigured => "llm_not_configured",
            Self::EmailNotConfigured => "email_not_configured",
            Self::MfaRequired { .. } => "mfa_required",
            Self::UpstreamUnavailable { .. } => "upstream_unavailable",
            Self::RequestAborted(_) => "request_aborted",
            Self::UpgradeRequired => "upgrade_required",
            Self::NotImplemented(_) => "not_implemented",
            Self::Internal(_) => "internal",
            Self::Relayed(w) => CODES
                .iter()
                .find(|c| **c == w.code)
                .copied()
                .unwrap_or("internal"),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::MalformedJson(_)
            | Self::ChecksumMismatch
            | Self::InvalidSignature
            | Self::RequestAborted(_) => 400,
            Self::Unauthorized | Self::MfaRequired { .. } => 401,
            Self::PaymentRequired(_) => 402,
            Self::Forbidden(_)
            | Self::AccountSuspended
            | Self::SsoRequired
            | Self::TierRequired { .. }
            | Self::QuotaExceeded { .. }
            | Self::LimitReached { .. } => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::Conflict(_) => 409,
            Self::PreconditionFailed => 412,
            Self::PayloadTooLarge { .. } => 413,
            Self::UnsupportedMediaType { .. } => 415,
            Self::Validation(_) => 422,
            Self::UpgradeRequired => 426,
            Self::RateLimited { .. } => 429,
            Self::Internal(_) => 500,
            Self::NotImplemented(_) => 501,
            Self::UpstreamUnavailable { bad_gateway, .. } => {
                if *bad_gateway {
                    502
                } else {
                    503
                }
            }
            Self::LlmNotConfigured | Self::EmailNotConfigured => 503,
            Self::Relayed(w) => w.status,
        }
    }

    /// Whether this is the server's fault (logged at error level with its full chain).
    pub fn is_server_error(&self) -> bool {
        self.status() >= 500
    }

    /// Extra response headers the error requires.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Unauthorized => vec![("WWW-Authenticate", "Bearer".to_owned())],
            Self::MethodNotAllowed { allowed } => vec![("Allow", allowed.join(", "))],
            Self::RateLimited { retry_after_secs } => {
                vec![("Retry-After", retry_after_secs.max(&1).to_string())]
            }
            Self::Relayed(w) => w
                .headers
                .iter()
                .filter_map(|(k, v)| {
                    ERROR_HEADERS
                        .iter()
                        .find(|h| h.eq_ignore_ascii_case(k))
                        .map(|h| (*h, v.clone()))
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The client-facing message. Never leaks internals.
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => "internal error".to_owned(),
            Self::UpstreamUnavailable { service, .. } => match service {
                Upstream::Llm => "the language model service is unavailable".to_owned(),
                Upstream::Payments => "the payment service is unavailable".to_owned(),
                Upstream::Storage => "a storage service is unavailable".to_owned(),
                Upstream::Email => "the email service is unavailable".to_owned(),
            },
            Self::MalformedJson(_) => "the request body is not valid JSON".to_owned(),
            Self::PaymentRequired(_) => {
                "the payment could not be taken: add or update a card in billing".to_owned()
            }
            Self::Relayed(w) => w.message.clone(),
            other => other.to_string(),
        }
    }

    fn details(&self) -> Option<Value> {
        match self {
            Self::Validation(fields) => Some(json!({ "fields": fields })),
            Self::MalformedJson(reason) => Some(json!({ "reason": reason })),
            Self::UnsupportedMediaType { expected } => Some(json!({ "expected": expected })),
            Self::PayloadTooLarge { limit } => Some(json!({ "limit": limit })),
            Self::MethodNotAllowed { allowed } => Some(json!({ "allowed": allowed })),
            Self::TierRequired {
                feature,
                required_tier,
            } => Some(json!({ "feature": feature, "required_tier": required_tier })),
            Self::QuotaExceeded { used, limit } => {
                Some(json!({ "used": used, "limit": limit, "unit": "bytes" }))
            }
            Self::LimitReached { what, used, limit } => {
                Some(json!({ "used": used, "limit": limit, "unit": what }))
            }
            Self::RateLimited { retry_after_secs } => {
                Some(json!({ "retry_after": retry_after_secs.max(&1) }))
            }
            Self::UpstreamUnavailable { service, .. } => Some(json!({ "service": service })),
            Self::MfaRequired {
                mfa_token,
                expires_at,
            } => Some(json!({ "mfa_token": mfa_token, "expires_at": expires_at })),
            Self::Relayed(w) => w.details.clone(),
            _ => None,
        }
    }

    /// The JSON envelope for this error.
    pub fn body(&self, request_id: &str) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.public_message(),
                request_id: request_id.to_owned(),
                details: self.details(),
            },
        }
    }
}

/// Shorthand for results whose error is [`AppError`].
pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn every_variant() -> Vec<AppError> {
        vec![
            AppError::field("email", "bad"),
            AppError::MalformedJson("eof".into()),
            AppError::UnsupportedMediaType {
                expected: "application/json",
            },
            AppError::PayloadTooLarge { limit: 10 },
            AppError::Unauthorized,
            AppError::Forbidden("origin not allowed"),
            AppError::AccountSuspended,
            AppError::SsoRequired,
            AppError::NotFound,
            AppError::MethodNotAllowed {
                allowed: vec!["GET"],
            },
            AppError::Conflict("email already registered"),
            AppError::PreconditionFailed,
            AppError::ChecksumMismatch,
            AppError::InvalidSignature,
            AppError::TierRequired {
                feature: "plugin_marketplace",
                required_tier: "power",
            },
            AppError::QuotaExceeded { used: 5, limit: 4 },
            AppError::LimitReached {
                what: "open uploads",
                used: 4,
                limit: 4,
            },
            AppError::RateLimited {
                retry_after_secs: 7,
            },
            AppError::LlmNotConfigured,
            AppError::EmailNotConfigured,
            AppError::MfaRequired {
                mfa_token: "t".into(),
                expires_at: 1,
            },
            AppError::UpstreamUnavailable {
                service: Upstream::Llm,
                bad_gateway: true,
                detail: "500".into(),
            },
            AppError::UpstreamUnavailable {
                service: Upstream::Payments,
                bad_gateway: false,
                detail: "timeout".into(),
            },
            AppError::RequestAborted("connection lost".into()),
            AppError::UpgradeRequired,
            AppError::NotImplemented("vector search"),
            AppError::internal("db exploded: secret detail"),
        ]
    }

    #[test]
    fn every_variant_maps_to_its_documented_code_and_status() {
        let got: Vec<(&str, u16)> = every_variant()
            .iter()
            .map(|e| (e.code(), e.status()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("validation_failed", 422),
                ("malformed_json", 400),
                ("unsupported_media_type", 415),
                ("payload_too_large", 413),
                ("unauthorized", 401),
                ("forbidden", 403),
                ("account_suspended", 403),
                ("sso_required", 403),
                ("not_found", 404),
                ("method_not_allowed", 405),
                ("conflict", 409),
                ("precondition_failed", 412),
                ("checksum_mismatch", 400),
                ("invalid_signature", 400),
                ("tier_required", 403),
                ("quota_exceeded", 403),
                ("quota_exceeded", 403),
                ("rate_limited", 429),
                ("llm_not_configured", 503),
                ("email_not_configured", 503),
                ("mfa_required", 401),
                ("upstream_unavailable", 502),
                ("upstream_unavailable", 503),
                ("request_aborted", 400),
                ("upgrade_required", 426),
                ("not_implemented", 501),
                ("internal", 500),
            ]
        );
    }

    #[test]
    fn every_code_is_listed_and_a_relayed_error_answers_as_it_was_made() {
        for e in every_variant() {
            assert!(CODES.contains(&e.code()), "{}", e.code());
            let relayed = crate::home::WireError::of(&e).into_app_error();
            assert_eq!(relayed.code(), e.code());
            assert_eq!(relayed.status(), e.status());
            assert_eq!(relayed.headers(), e.headers());
            assert_eq!(relayed.body("r"), e.body("r"));
        }
    }

    #[test]
    fn codes_are_snake_case() {
        for e in every_variant() {
            assert!(
                e.code().chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                e.code()
            );
        }
    }

    #[test]
    fn internal_errors_never_leak_their_detail() {
        let body = AppError::internal("db exploded: secret detail").body("req-1");
        let text = serde_json::to_string(&body).unwrap();
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(body.error.message, "internal error");
        assert_eq!(body.error.request_id, "req-1");
    }

    #[test]
    fn upstream_errors_never_leak_their_detail() {
        let e = AppError::UpstreamUnavailable {
            service: Upstream::Llm,
            bad_gateway: true,
            detail: "sk-secret-key in url".into(),
        };
        let text = serde_json::to_string(&e.body("r")).unwrap();
        assert!(!text.contains("sk-secret"), "{text}");
    }

    #[test]
    fn validation_errors_name_each_field_in_details() {
        let body = AppError::Validation(vec![
            FieldError::new("email", "not an email"),
            FieldError::new("password", "too short"),
        ])
        .body("r");
        assert_eq!(
            body.error.details,
            Some(json!({"fields": [
                {"field": "email", "message": "not an email"},
                {"field": "password", "message": "too short"},
            ]}))
        );
    }

    #[test]
    fn rate_limited_carries_retry_after_header_of_at_least_one_second() {
        let e = AppError::RateLimited {
            retry_after_secs: 0,
        };
        assert_eq!(e.headers(), vec![("Retry-After", "1".to_owned())]);
    }

    #[test]
    fn unauthorized_carries_www_authenticate_bearer() {
        assert_eq!(
            AppError::Unauthorized.headers(),
            vec![("WWW-Authenticate", "Bearer".to_owned())]
        );
    }

    #[test]
    fn method_not_allowed_lists_allowed_methods() {
        let e = AppError::MethodNotAllowed {
            allowed: vec!["GET", "POST"],
        };
        assert_eq!(e.headers(), vec![("Allow", "GET, POST".to_owned())]);
    }

    #[test]
    fn envelope_serializes_without_details_when_there_are_none() {
        let text = serde_json::to_value(AppError::NotFound.body("abc")).unwrap();
        assert_eq!(
            text,
            json!({"error": {"code": "not_found", "message": "not found", "request_id": "abc"}})
        );
    }
}
