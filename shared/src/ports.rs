//! Ports: the capabilities the core needs from the platform, one trait each.
//!
//! Adapters live in `workers/src/adapters` (D1, R2, Durable Objects, fetch); in-memory fakes live
//! in `crate::testing` (tests and feature `test-utils`). Futures are `?Send` because the platform's
//! futures hold JS values and Workers run on one thread. Port errors speak domain words ([`StoreError`],
//! [`UpstreamError`]), never platform types.

use std::pin::Pin;

use async_trait::async_trait;
use futures_core::Stream;
use serde::{Deserialize, Serialize};

use crate::billing::{BillingChange, EventRecord, RecordOutcome, Subscription};
use crate::domain::{DeviceName, Email, RefreshTokenHash, Role, Tier, User, UserId};
use crate::error::{AppError, Upstream};
use crate::rate_limit::{RateDecision, RateOp, RateRule};

/// Wall-clock time.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// Cryptographically secure randomness.
pub trait Random {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]);
}

/// A new random (v4) UUID from `rng`.
pub fn new_uuid(rng: &dyn Random) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Failures of a storage port.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (the named thing already exists).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The backing store failed or is unreachable; the detail is for operators.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A streamed write failed because its source, the client's request body, broke off.
    #[error("the request body broke off: {0}")]
    SourceAborted(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => AppError::Conflict(what),
            StoreError::SourceAborted(detail) => AppError::RequestAborted(detail),
            StoreError::Unavailable(detail) => {
                AppError::Internal(anyhow::anyhow!("store unavailable: {detail}"))
            }
        }
    }
}

/// Failures of an outbound service (LLM, payments).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The service is not configured on this deployment.
    #[error("not configured")]
    NotConfigured,
    /// No answer in time, connection failure or overload (429/5xx after retries).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// An answer that cannot be used (bad status, malformed body).
    #[error("bad response: {0}")]
    BadResponse(String),
    /// The service refused the request as invalid (4xx other than 429); the detail is for logs.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The payer cannot be charged (no saved card, a decline, or authentication needed).
    #[error("declined: {0}")]
    Declined(String),
}

impl UpstreamError {
    /// The API error for a failure of `service`.
    pub fn into_app_error(self, service: Upstream) -> AppError {
        match self {
            Self::NotConfigured if service == Upstream::Llm => AppError::LlmNotConfigured,
            Self::NotConfigured if service == Upstream::Email => AppError::EmailNotConfigured,
            Self::NotConfigured => AppError::UpstreamUnavailable {
                service,
                bad_gateway: false,
                detail: "not configured".to_owned(),
            },
            Self::Unavailable(detail) => AppError::UpstreamUnavailable {
                service,
                bad_gateway: false,
                detail,
            },
            Self::Declined(detail) => AppError::PaymentRequired(detail),
            Self::BadResponse(detail) | Self::Rejected(detail) => AppError::UpstreamUnavailable {
                service,
                bad_gateway: true,
                detail,
            },
        }
    }
}

/// One message to send.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// The recipient.
    pub to: Email,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

impl std::fmt::Debug for OutgoingEmail {
    /// Never the address or the content (they carry single-use links).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingEmail").finish_non_exhaustive()
    }
}

/// Outgoing transactional email.
#[async_trait(?Send)]
pub trait Mailer {
    /// Sends one message.
    ///
    /// # Errors
    /// MUST return [`UpstreamError::NotConfigured`] when this deployment has no email service,
    /// [`UpstreamError::Unavailable`] when it could not be reached (after retries).
    async fn send(&self, message: &OutgoingEmail) -> Result<(), UpstreamError>;
    /// Whether this deployment can send mail at all (checked before a flow spends anything).
    fn configured(&self) -> bool {
        true
    }
}

/// Accounts (D1 `users`).
#[async_trait(?Send)]
pub trait UserStore {
    /// Inserts a new user.
    ///
    /// # Errors
    /// MUST return [`StoreError::Conflict`] when the email is already registered.
    async fn insert(&self, user: &User) -> Result<(), StoreError>;
    /// The user with this (normalised) email.
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;
    /// The user with this id.
    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// Replaces the stored password hash (rehash on login, change, reset).
    async fn update_password_hash(
        &self,
        id: UserId,
        phc: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Records that the address was verified at `now_ms` (kept if it was already) and sets
    /// the role.
    async fn mark_email_verified(
        &self,
        id: UserId,
        role: Role,
        now_ms: i64,
    ) -> Result<(), StoreError>;
}

/// What a one-time account token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// The link of a verification email (24 h).
    VerifyEmail,
    /// The link of a password-reset email (30 min).
    ResetPassword,
    /// The second step of a two-factor login (5 min).
    MfaLogin,
}

impl TokenPurpose {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::MfaLogin => "mfa_login",
        }
    }
}

/// Single-use account tokens, stored only as SHA-256 hashes (D1 `account_tokens`).
#[async_trait(?Send)]
pub trait AccountTokenStore {
    /// Stores a token of `user`.
    async fn insert(
        &self,
        hash: &[u8; 32],
        user: UserId,
        purpose: TokenPurpose,
        now_ms: i64,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// Stores a token for the account of `email` if there is one, in one statement, so the
    /// work is the same whether or not it exists; returns the account.
    async fn insert_for_email(
        &self,
        hash: &[u8; 32],
        email: &Email,
        purpose: TokenPurpose,
        now_ms: i64,
        expires_at: i64,
    ) -> Result<Option<UserId>, StoreError>;
    /// Marks the token used and returns its user, if it exists with this purpose, is unused
    /// and unexpired. Atomic: of two concurrent calls at most one gets the user.
    async fn consume(
        &self,
        hash: &[u8; 32],
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> Result<Option<UserId>, StoreError>;
    /// The user of a token that exists with this purpose, unused and unexpired, without
    /// spending it.
    async fn find(
        &self,
        hash: &[u8; 32],
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> Result<Option<UserId>, StoreError>;
    /// Marks every unused token of `user` with `purpose` used.
    async fn spend_all(
        &self,
        user: UserId,
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> Result<(), StoreError>;
}

/// A user's two-factor state (D1 `user_mfa`).
#[derive(Clone, PartialEq, Eq)]
pub struct MfaRow {
    /// The TOTP secret, sealed (see `accounts::totp::seal`).
    pub sealed_secret: Vec<u8>,
    /// Whether it was confirmed with a code (before that, login ignores it).
    pub enabled: bool,
    /// The newest time step a code was accepted for (codes of it and earlier are refused).
    pub last_step: i64,
}

impl std::fmt::Debug for MfaRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaRow")
            .field("enabled", &self.enabled)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

/// Two-factor secrets and recovery codes (D1 `user_mfa`, `recovery_codes`; hashes only).
#[async_trait(?Send)]
pub trait MfaStore {
    /// The user's two-factor state.
    async fn get(&self, user: UserId) -> Result<Option<MfaRow>, StoreError>;
    /// Stores a pending secret (replacing a pending one); `false` when two-factor is enabled.
    async fn set_pending(
        &self,
        user: UserId,
        sealed_secret: &[u8],
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Atomically: enables the pending secret, accepted at `step`, and replaces the recovery
    /// codes with `recovery_hashes`; `false` when nothing was pending.
    async fn enable(
        &self,
        user: UserId,
        recovery_hashes: &[[u8; 32]],
        step: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Raises the accepted step to `step` if it is newer; whether it did. Atomic: of two
    /// concurrent calls with one step, one wins (a code is accepted once).
    async fn accept_step(&self, user: UserId, step: i64) -> Result<bool, StoreError>;
    /// Spends an unused recovery code; whether there was one.
    async fn spend_recovery_code(
        &self,
        user: UserId,
        hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Removes the secret and the recovery codes.
    async fn disable(&self, user: UserId) -> Result<(), StoreError>;
}

/// One open session (a live refresh-token family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The family id (the `sid` of its access tokens).
    pub id: uuid::Uuid,
    /// The device's name for itself, if it gave one.
    pub device_name: Option<String>,
    /// When it was opened (epoch ms).
    pub created_at: i64,
    /// When it was last refreshed (its opening, if never).
    pub last_used_at: i64,
}

/// A kind of security event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SecurityEventKind {
    /// A sign-in completed.
    LoginSucceeded,
    /// A sign-in with a wrong password or second factor.
    LoginFailed,
    /// The password was changed by its owner.
    PasswordChanged,
    /// The password was reset through an emailed link.
    PasswordReset,
    /// Two-factor authentication was turned on.
    MfaEnabled,
    /// Two-factor authentication was turned off.
    MfaDisabled,
    /// A recovery code was spent.
    RecoveryCodeUsed,
    /// A session was ended from another one.
    SessionRevoked,
    /// The address was verified.
    EmailVerified,
    /// An export of the account was made.
    Export,
    /// The account's deletion was requested.
    DeletionRequested,
    /// Single sign-on of the account's team was set or changed (by this account, or by an
    /// admin of the team this account owns).
    SsoConfigured,
    /// Single sign-on of the account's team was removed (likewise).
    SsoRemoved,
}

impl SecurityEventKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::MfaEnabled => "mfa_enabled",
            Self::MfaDisabled => "mfa_disabled",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::SessionRevoked => "session_revoked",
            Self::EmailVerified => "email_verified",
            Self::Export => "export",
            Self::DeletionRequested => "deletion_requested",
            Self::SsoConfigured => "sso_configured",
            Self::SsoRemoved => "sso_removed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::LoginSucceeded,
            Self::LoginFailed,
            Self::PasswordChanged,
            Self::PasswordReset,
            Self::MfaEnabled,
            Self::MfaDisabled,
            Self::RecoveryCodeUsed,
            Self::SessionRevoked,
            Self::EmailVerified,
            Self::Export,
            Self::DeletionRequested,
            Self::SsoConfigured,
            Self::SsoRemoved,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One entry of an account's security log: never a password, code, token or full address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    /// The account.
    pub user_id: UserId,
    /// What happened.
    pub kind: SecurityEventKind,
    /// The device's name for itself, when the request named one.
    pub device_name: Option<String>,
    /// The client's network, truncated (`203.0.113.0/24`, `2001:db8:1::/48`).
    pub network: Option<String>,
    /// When (epoch ms).
    pub at: i64,
}

/// The security log (D1 `security_events`).
#[async_trait(?Send)]
pub trait SecurityLog {
    /// Appends an event.
    async fn record(&self, event: &SecurityEvent) -> Result<(), StoreError>;
    /// The newest `limit` events of `user`, newest first.
    async fn recent(&self, user: UserId, limit: u32) -> Result<Vec<SecurityEvent>, StoreError>;
}

/// A refresh token to be stored (only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    /// Row id.
    pub id: uuid::Uuid,
    /// Owner.
    pub user_id: UserId,
    /// The login session this token belongs to; all rotations share it.
    pub family_id: uuid::Uuid,
    /// SHA-256 of the token.
    pub token_hash: RefreshTokenHash,
    /// The token this one replaced, if any.
    pub parent_id: Option<uuid::Uuid>,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// Expiry (epoch ms).
    pub expires_at: i64,
    /// The device's name for itself (kept with the family when it starts one).
    pub device_name: Option<DeviceName>,
}

/// A stored refresh token as the rotation logic needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRefreshToken {
    /// Row id.
    pub id: uuid::Uuid,
    /// Owner.
    pub user_id: UserId,
    /// Family (login session).
    pub family_id: uuid::Uuid,
    /// Expiry (epoch ms).
    pub expires_at: i64,
    /// When it was exchanged for a successor, if it was.
    pub rotated_at: Option<i64>,
    /// Whether its family has been revoked (logout or reuse detection).
    pub family_revoked: bool,
}

/// What happened to a rotation attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The parent was current; it is now rotated and the child stored.
    Rotated,
    /// Another request rotated the parent first; nothing was stored.
    AlreadyRotated,
    /// The family was revoked; nothing was stored.
    FamilyRevoked,
}

/// Refresh tokens and their families (D1 `refresh_families`, `refresh_tokens`).
#[async_trait(?Send)]
pub trait RefreshTokenStore {
    /// Stores a new family with its first token, atomically.
    async fn start_family(&self, first: &NewRefreshToken) -> Result<(), StoreError>;
    /// The token with this hash.
    async fn find_by_hash(
        &self,
        hash: &RefreshTokenHash,
    ) -> Result<Option<StoredRefreshToken>, StoreError>;
    /// Atomically: marks `parent_id` rotated at `now_ms` if it was not yet, and stores `child`
    /// in the same family, unless the family is revoked.
    async fn rotate(
        &self,
        parent_id: uuid::Uuid,
        child: &NewRefreshToken,
        now_ms: i64,
    ) -> Result<RotateOutcome, StoreError>;
    /// Stores `child` beside an already rotated parent (the grace rule), unless the family is
    /// revoked. Returns whether it was stored.
    async fn add_sibling(&self, child: &NewRefreshToken) -> Result<bool, StoreError>;
    /// Revokes a family. Idempotent.
    async fn revoke_family(
        &self,
        family_id: uuid::Uuid,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Revokes every live family of a user but `except`; returns the families revoked.
    async fn revoke_all(
        &self,
        user_id: UserId,
        except: Option<uuid::Uuid>,
        now_ms: i64,
    ) -> Result<Vec<uuid::Uuid>, StoreError>;
    /// Revokes the live family `family_id` if it is `user_id`'s; returns whether it did.
    async fn revoke_session(
        &self,
        user_id: UserId,
        family_id: uuid::Uuid,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// The user's live sessions (unrevoked families with an unexpired token), newest first.
    async fn sessions(&self, user_id: UserId, now_ms: i64) -> Result<Vec<SessionRow>, StoreError>;
}

/// Single-use WebSocket tickets (D1 `ws_tickets`).
#[async_trait(?Send)]
pub trait TicketStore {
    /// Stores a ticket's hash, with the session it was issued to.
    async fn insert(
        &self,
        hash: &[u8; 32],
        user_id: UserId,
        sid: Option<uuid::Uuid>,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// Marks the ticket used and returns its user and session, if it exists, is unused and
    /// unexpired.
    async fn consume(
        &self,
        hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<Option<(UserId, Option<uuid::Uuid>)>, StoreError>;
}

/// Exact rate counters (the `RateLimiter` Durable Object in production).
#[async_trait(?Send)]
pub trait RateLimiter {
    /// Applies `op` to the counter `key` under `rule`.
    async fn check(
        &self,
        key: &str,
        rule: RateRule,
        op: RateOp,
    ) -> Result<RateDecision, StoreError>;
}

/// One vector of a user's index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorEntry {
    /// Client-chosen id.
    pub id: String,
    /// The (client-encrypted) embedding.
    pub values: Vec<f32>,
    /// The client-encrypted payload, base64.
    pub blob: String,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorMatch {
    /// The vector's id.
    pub id: String,
    /// Cosine similarity, higher is closer.
    pub score: f32,
    /// The stored payload, base64.
    pub blob: String,
}

/// A per-user vector index (Vectorize or the `VectorIndex` Durable Object).
#[async_trait(?Send)]
pub trait VectorIndex {
    /// Inserts or replaces entries; returns how many were written.
    async fn upsert(&self, user: UserId, entries: Vec<VectorEntry>) -> Result<u64, StoreError>;
    /// The `top_k` nearest entries to `vector`, best first.
    async fn query(
        &self,
        user: UserId,
        vector: &[f32],
        top_k: u32,
    ) -> Result<Vec<VectorMatch>, StoreError>;
    /// Deletes entries by id. Idempotent.
    async fn delete(&self, user: UserId, ids: &[String]) -> Result<(), StoreError>;
}

/// A chat message for the LLM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// Text content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Tool calls the assistant asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<LlmToolCall>,
    /// For `tool` messages: the call answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl LlmMessage {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::text("system", content)
    }
    /// A plain text message from `role`.
    pub fn text(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role.to_owned(),
            content: Some(content.into()),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
    /// The answer to the tool call `call_id`.
    pub fn tool_result(call_id: &str, result: &serde_json::Value) -> Self {
        Self {
            role: "tool".to_owned(),
            content: Some(result.to_string()),
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.to_owned()),
        }
    }
}

/// A tool call requested by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmToolCall {
    /// Call id.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments as a JSON string (as the model produced it; parse it, never trust it).
    pub arguments: String,
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmTool {
    /// Tool name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of its arguments.
    pub parameters: serde_json::Value,
}

/// A completion request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmRequest {
    /// What the call is for (`classify`, an agent's name, `synthesis`, …): logs only.
    pub label: String,
    /// The conversation.
    pub messages: Vec<LlmMessage>,
    /// Tools offered (none: a plain completion).
    pub tools: Vec<LlmTool>,
}

impl LlmRequest {
    /// A completion without tools: a system prompt and one user message.
    pub fn plain(label: impl Into<String>, system: String, user: String) -> Self {
        Self {
            label: label.into(),
            messages: vec![LlmMessage::system(system), LlmMessage::text("user", user)],
            tools: Vec::new(),
        }
    }
}

/// A completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmResponse {
    /// The assistant's message.
    pub message: LlmMessage,
    /// Prompt tokens used.
    pub prompt_tokens: u32,
    /// Completion tokens used.
    pub completion_tokens: u32,
}

/// One event of a streamed completion.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmDelta {
    /// More of the assistant's text, as the model produced it.
    Text(String),
    /// The end: the whole message (text and tool calls, assembled) and the usage. Always last.
    Done(LlmResponse),
}

/// A streamed completion: [`LlmDelta::Text`] pieces, then one [`LlmDelta::Done`].
pub type LlmStream<'a> = Pin<Box<dyn Stream<Item = Result<LlmDelta, UpstreamError>> + 'a>>;

/// An OpenAI-compatible chat model.
#[async_trait(?Send)]
pub trait Llm {
    /// One completion.
    async fn complete(&self, req: &LlmRequest) -> Result<LlmResponse, UpstreamError>;
    /// One completion, streamed. Errors before the first event (not configured, refused,
    /// unavailable after retries) come from the call; later ones (the stream broke or stalled)
    /// come as the stream's last item.
    async fn stream<'a>(&'a self, req: &LlmRequest) -> Result<LlmStream<'a>, UpstreamError>;
}

/// A Checkout Session to create (subscription mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    /// The buyer (`client_reference_id` and metadata).
    pub user_id: UserId,
    /// The buyer's email, used when there is no customer yet.
    pub email: Email,
    /// Existing Stripe customer, reused when present.
    pub customer_id: Option<String>,
    /// The tier bought (metadata).
    pub tier: Tier,
    /// The tier's price id.
    pub price_id: String,
    /// Seats (quantity; 1 except for team).
    pub seats: u32,
    /// Where Stripe sends the user after paying.
    pub success_url: String,
    /// Where Stripe sends the user after giving up.
    pub cancel_url: String,
    /// Idempotency key for the POST.
    pub idempotency_key: String,
}

/// A created Checkout Session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    /// Session id.
    pub id: String,
    /// Where to send the user.
    pub url: String,
}

/// A Stripe Connect transfer to a developer's connected account (marketplace payouts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    /// Amount in the smallest currency unit.
    pub amount_cents: u64,
    /// ISO currency, lower case (`eur`).
    pub currency: String,
    /// Connected account id (`acct_…`).
    pub destination: String,
    /// Groups the transfer with its charges (e.g. a plugin id and period).
    pub transfer_group: String,
    /// Idempotency key for the POST.
    pub idempotency_key: String,
}

/// A one-off, off-session charge of a customer's saved card (paid plugin installs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// The payer's customer id (`cus_…`).
    pub customer_id: String,
    /// Amount in the smallest currency unit.
    pub amount_cents: u64,
    /// ISO currency, lower case (`eur`).
    pub currency: String,
    /// Shown on the statement and the dashboard.
    pub description: String,
    /// Groups the charge with the developer's later transfer.
    pub transfer_group: String,
    /// Searchable metadata (ids only, never content).
    pub metadata: Vec<(String, String)>,
    /// Idempotency key of the purchase (the same purchase always sends the same key); the
    /// client appends the card it charges, so a replaced card is a new attempt.
    pub idempotency_key: String,
}

/// A Stripe billing portal session for an existing customer (`POST /billing/portal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalRequest {
    /// The customer (`cus_…`) whose portal opens.
    pub customer_id: String,
    /// Where the portal's return link leads.
    pub return_url: String,
    /// Idempotency key: one per request (each click is a new session), the same on retries.
    pub idempotency_key: String,
}

/// The payment provider (Stripe).
#[async_trait(?Send)]
pub trait Payments {
    /// Creates a subscription Checkout Session.
    async fn create_checkout_session(
        &self,
        req: &CheckoutRequest,
    ) -> Result<CheckoutSession, UpstreamError>;
    /// Cancels a subscription at the end of its period.
    async fn cancel_subscription(
        &self,
        subscription_id: &str,
        idempotency_key: &str,
    ) -> Result<(), UpstreamError>;
    /// Cancels a subscription at once (`DELETE /v1/subscriptions/{id}`, for an account being
    /// deleted); one already gone is no error.
    async fn cancel_subscription_now(
        &self,
        subscription_id: &str,
        idempotency_key: &str,
    ) -> Result<(), UpstreamError>;
    /// Pays out to a connected account; returns the transfer id.
    async fn create_transfer(&self, req: &TransferRequest) -> Result<String, UpstreamError>;
    /// Charges the customer's saved card now; returns the payment's id.
    /// [`UpstreamError::Declined`] when the customer has no card or the charge did not succeed.
    async fn charge(&self, req: &ChargeRequest) -> Result<String, UpstreamError>;
    /// Opens a billing portal session for the customer; returns its (short-lived) URL.
    async fn create_portal_session(&self, req: &PortalRequest) -> Result<String, UpstreamError>;
    /// Sets the quantity of a subscription's (single) item, with proration; the change takes
    /// effect when Stripe's `customer.subscription.updated` arrives.
    async fn update_seats(&self, req: &SeatChange) -> Result<(), UpstreamError>;
}

/// A team's seat change (`PUT /teams/{id}/seats`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatChange {
    /// The subscription (`sub_…`).
    pub subscription_id: String,
    /// The new quantity.
    pub seats: u32,
    /// The same change always sends the same key (`team-seats:{sub}:{last event}:{seats}`).
    pub idempotency_key: String,
}

/// Teams, members and invitations (D1 `teams`, `team_members`, `team_invites`; seats and
/// status from `subscriptions`).
#[async_trait(?Send)]
pub trait TeamStore {
    /// The team `user` belongs to, with their role.
    async fn team_of(
        &self,
        user: UserId,
    ) -> Result<Option<(crate::teams::TeamRow, crate::teams::TeamRole)>, StoreError>;
    /// The team's members, oldest first.
    async fn members(&self, team: uuid::Uuid) -> Result<Vec<crate::teams::MemberRow>, StoreError>;
    /// The team's open invitations at `now`, oldest first.
    async fn open_invites(
        &self,
        team: uuid::Uuid,
        now: i64,
    ) -> Result<Vec<crate::teams::InviteRow>, StoreError>;
    /// Inserts an invitation if members + open invitations stay within the seats (one
    /// conditional statement).
    async fn insert_invite(
        &self,
        invite: &crate::teams::NewInvite,
        now: i64,
    ) -> Result<crate::teams::InviteInsert, StoreError>;
    /// The invitation of a token hash, whatever its state.
    async fn invite_by_token(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<crate::teams::InviteRow>, StoreError>;
    /// Atomically spends the invitation and makes `user` a member, if it is open and a seat
    /// is free.
    async fn accept(
        &self,
        token_hash: &[u8; 32],
        user: UserId,
        now: i64,
    ) -> Result<crate::teams::AcceptOutcome, StoreError>;
    /// Deletes an open invitation of `team`; whether there was one.
    async fn delete_invite(&self, team: uuid::Uuid, invite: uuid::Uuid)
        -> Result<bool, StoreError>;
    /// Removes a member who is not the owner; whether one was removed.
    async fn remove_member(&self, team: uuid::Uuid, user: UserId) -> Result<bool, StoreError>;
    /// Sets the role of a member who is not the owner; whether one changed.
    async fn set_role(
        &self,
        team: uuid::Uuid,
        user: UserId,
        role: crate::teams::TeamRole,
    ) -> Result<bool, StoreError>;
}

#[async_trait(?Send)]
impl<T: HttpClient + ?Sized> HttpClient for &T {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        (**self).send(req).await
    }
    async fn send_streaming(&self, req: HttpRequest) -> Result<HttpStreamResponse, HttpError> {
        (**self).send_streaming(req).await
    }
    async fn sleep(&self, ms: u64) {
        (**self).sleep(ms).await;
    }
}

/// Subscriptions, processed webhook events and Stripe ids (D1 `subscriptions`,
/// `stripe_events`, `users`).
#[async_trait(?Send)]
pub trait BillingStore {
    /// Whether the event id was processed already.
    async fn event_processed(&self, event_id: &str) -> Result<bool, StoreError>;
    /// The subscription with this Stripe id.
    async fn subscription(
        &self,
        stripe_subscription_id: &str,
    ) -> Result<Option<Subscription>, StoreError>;
    /// The user's most recently changed subscription, whatever its status.
    async fn latest_subscription(&self, user: UserId) -> Result<Option<Subscription>, StoreError>;
    /// The user owning a Stripe customer.
    async fn user_by_customer(&self, customer_id: &str) -> Result<Option<UserId>, StoreError>;
    /// The user's Stripe customer, if one was created.
    async fn customer_of(&self, user: UserId) -> Result<Option<String>, StoreError>;
    /// Atomically: records the event id (a duplicate changes nothing and answers
    /// [`RecordOutcome::Duplicate`]) and applies `change` — the subscription row unless a newer
    /// event already applied to it, and the user's tier and customer id.
    async fn record(
        &self,
        event: &EventRecord,
        change: Option<&BillingChange>,
    ) -> Result<RecordOutcome, StoreError>;
    /// Marks a subscription as ending at its period end (after Stripe confirmed it).
    async fn mark_cancel_at_period_end(
        &self,
        stripe_subscription_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;
}

/// An outbound HTTP request (to Stripe or the LLM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, …
    pub method: &'static str,
    /// Absolute URL.
    pub url: String,
    /// Headers (secrets included: never log them).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Give up after this long.
    pub timeout_ms: u64,
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// An HTTP response whose body arrives in pieces.
pub struct HttpStreamResponse {
    /// Status code.
    pub status: u16,
    /// Body chunks as they arrive, split anywhere.
    pub body: ByteStream,
}

/// Body chunks of a streamed response.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, HttpError>>>>;

impl std::fmt::Debug for HttpStreamResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpStreamResponse")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Why no response arrived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The deadline passed (the request was aborted).
    #[error("timed out")]
    Timeout,
    /// The connection failed.
    #[error("network error: {0}")]
    Network(String),
    /// The answer's body is longer than [`MAX_RESPONSE_BYTES`] (the request was aborted).
    #[error("response body too large")]
    TooLarge,
}

/// The largest whole body [`HttpClient::send`] reads (16 MiB): a longer answer is refused
/// (and its request aborted) before it is buffered, so an upstream that lies about its size
/// or never stops cannot exhaust the isolate's memory. Callers bound their own answers more
/// tightly after this (the identity provider's to 256 KiB, for instance).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Outbound HTTP (`fetch` in the worker).
#[async_trait(?Send)]
pub trait HttpClient {
    /// Sends a request, aborting it at its deadline; a body over [`MAX_RESPONSE_BYTES`] is
    /// [`HttpError::TooLarge`].
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, HttpError>;
    /// Sends a request and answers as soon as the headers arrive; the body streams. The
    /// deadline (`timeout_ms`) covers the wait for the headers; the caller bounds the gaps
    /// between chunks. By default the whole body is read first and given as one chunk.
    async fn send_streaming(&self, req: HttpRequest) -> Result<HttpStreamResponse, HttpError> {
        let resp = self.send(req).await?;
        Ok(HttpStreamResponse {
            status: resp.status,
            body: Box::pin(futures_util::stream::once(async move { Ok(resp.body) })),
        })
    }
    /// Waits (for retry backoff and stream deadlines).
    async fn sleep(&self, ms: u64);
}

// ---- operating the service ---------------------------------------------------------------

/// An administrator's action, as the audit log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    /// `GET /admin/users?email=` found (or did not find) an account.
    UserLookup,
    /// An account was suspended.
    Suspend,
    /// A suspension was lifted.
    Unsuspend,
    /// A tier was comped until a date.
    Comp,
    /// A plugin version was approved or rejected.
    PluginReview,
}

impl AdminAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserLookup => "user_lookup",
            Self::Suspend => "suspend",
            Self::Unsuspend => "unsuspend",
            Self::Comp => "comp",
            Self::PluginReview => "plugin_review",
        }
    }
}

/// One audit log entry: who did what to whom, and when (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The entry's id.
    pub id: uuid::Uuid,
    /// The administrator.
    pub admin: UserId,
    /// What they did (the stored name of an [`AdminAction`]).
    pub action: String,
    /// What it was done to (a user or plugin id).
    pub target: Option<String>,
    /// Its parameters.
    pub detail: Option<serde_json::Value>,
    /// When (epoch ms).
    pub at: i64,
}

/// An account with what an administrator sees of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUserRow {
    /// The account.
    pub user: User,
    /// A comped tier, if one was granted (ended or not).
    pub comp: Option<crate::domain::Comp>,
    /// Seats of the live team subscription (1 otherwise).
    pub seats: u32,
    /// What the account's team grants it, if it is in a team.
    pub team: Option<crate::domain::TeamGrant>,
    /// The last sign-in or refresh of any of its sessions.
    pub last_seen_at: Option<i64>,
    /// Its open sessions.
    pub sessions: u32,
}

/// One payout row (D1 `payouts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutRecord {
    /// The developer.
    pub developer: UserId,
    /// `YYYY-MM`.
    pub period: String,
    /// Cents.
    pub amount_cents: u64,
    /// `pending` or `paid`.
    pub status: String,
    /// When it was fixed.
    pub created_at: i64,
    /// When it was paid.
    pub paid_at: Option<i64>,
}

/// What the admin endpoints read and change (D1: `users`, `admin_audit`, `payouts`).
#[async_trait(?Send)]
pub trait AdminStore {
    /// The account with this address.
    ///
    /// # Errors
    /// Storage failures.
    async fn user_by_email(
        &self,
        email: &Email,
        now_ms: i64,
    ) -> Result<Option<AdminUserRow>, StoreError>;
    /// The account with this id.
    ///
    /// # Errors
    /// Storage failures.
    async fn user_by_id(&self, id: UserId, now_ms: i64)
        -> Result<Option<AdminUserRow>, StoreError>;
    /// Suspends (`Some(at)`; an earlier suspension keeps its time) or restores (`None`) the
    /// account and records `entry`, in one transaction.
    ///
    /// # Errors
    /// Storage failures (then neither happened).
    async fn set_suspended(
        &self,
        id: UserId,
        at: Option<i64>,
        entry: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// Sets the account's comp and records `entry`, in one transaction.
    ///
    /// # Errors
    /// Storage failures (then neither happened).
    async fn set_comp(
        &self,
        id: UserId,
        comp: crate::domain::Comp,
        entry: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// Records `entry`.
    ///
    /// # Errors
    /// Storage failures.
    async fn record(&self, entry: &AuditRecord) -> Result<(), StoreError>;
    /// The newest `limit` entries, newest first.
    ///
    /// # Errors
    /// Storage failures.
    async fn audit(&self, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;
    /// Every payout of the newest `months` months that have any, newest month first.
    ///
    /// # Errors
    /// Storage failures.
    async fn payouts(&self, months: u32) -> Result<Vec<PayoutRecord>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeqRandom;

    #[test]
    fn new_uuid_is_version_4() {
        let id = new_uuid(&SeqRandom::new(7));
        assert_eq!(id.get_version_num(), 4);
    }

    #[test]
    fn missing_llm_configuration_is_its_own_code() {
        assert_eq!(
            UpstreamError::NotConfigured
                .into_app_error(Upstream::Llm)
                .code(),
            "llm_not_configured"
        );
        assert_eq!(
            UpstreamError::NotConfigured
                .into_app_error(Upstream::Payments)
                .status(),
            503
        );
        assert_eq!(
            UpstreamError::BadResponse("x".into())
                .into_app_error(Upstream::Llm)
                .status(),
            502
        );
    }

    #[test]
    fn store_conflicts_become_409_and_outages_500() {
        assert_eq!(AppError::from(StoreError::Conflict("email")).status(), 409);
        assert_eq!(
            AppError::from(StoreError::Unavailable("d1".into())).status(),
            500
        );
    }
}
