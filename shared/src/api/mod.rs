//! Request and response bodies of the HTTP API (the wire contract).

mod accounts;
mod admin;
mod agents;
mod auth;
mod batches;
mod billing;
mod chat;
mod export;
mod plugins;
mod providers;
mod records;
mod teams;
mod tiers;
mod usage;
mod vectors;

pub use accounts::{
    ChangePasswordRequest, DeleteAccountRequest, DeletionAccepted, DisableMfaRequest,
    EnableMfaRequest, ForgotPasswordRequest, MfaLoginRequest, MfaLoginWithCode,
    MfaLoginWithRecovery, PasswordChanged, RecoveryCodes, ResetPasswordRequest, SecondFactor,
    SecurityEventInfo, SecurityEvents, SessionInfo, SessionList, TotpSetup, VerifyEmailRequest,
    MAX_ACCOUNT_TOKEN_LEN,
};
pub use admin::{
    AdminPayout, AdminPayouts, AdminUser, AdminUsers, AuditEntry, AuditLog, CompInfo, CompRequest,
    PayoutMonth,
};
pub use agents::{
    AgentListing, AgentsResponse, EnableAgentsRequest, MAX_AGENT_NAME_CHARS, MAX_ENABLED_AGENTS,
};
pub use auth::{
    AuthTokens, LoggedOutAll, LoginRequest, RefreshRequest, RegisterRequest, UserProfile, WsTicket,
};
pub use batches::{
    BatchItem, BatchItemError, BatchList, BatchRequest, BatchResult, BatchStarted, BatchState,
    BatchSummary, BatchView, MAX_BATCH_ITEMS, MAX_BATCH_STEPS,
};
pub use billing::{CheckoutBody, CheckoutResponse, PortalResponse, SubscriptionInfo};
pub use chat::{
    ChatContext, ChatRequest, ChatResponse, ContextRecord, ExecutionMode, ExecutionPlan,
    PlanAction, PlanActionType, PlanStep, Playbook, PlaybookPlan, RunStepRequest, RunStepResponse,
    MAX_CONTEXT_ITEMS, MAX_HISTORY_TURNS, MAX_MESSAGE_CHARS,
};
pub use export::{
    AccountExport, ExportBlob, ExportEarnings, ExportInstall, ExportPlugin, ExportProfile,
    ExportPurchase, ExportRating, ExportSubscription, ExportTeam, ExportUpload, ExportVector,
};
pub use plugins::{
    AgentDeclarationInfo, ChecklistResult, EarningsResponse, PayoutAccountRequest, PendingReview,
    PendingReviews, PeriodEarningsInfo, PluginAgentInfo, PluginInfo, PluginInstallRequest,
    PluginInstalled, PluginListResponse, PluginSubmission, PluginSubmitted, PluginToolInfo,
    RatingRequest, RatingResult, ReviewRequest, ReviewResult, ToolDeclarationInfo,
};
pub use providers::{ProviderInfo, ProvidersResponse};
pub use records::{CreateRecord, RecordCreated, RecordUpdated, UpdateRecord};
pub use teams::{
    AcceptInviteRequest, CreateInviteRequest, InviteCreated, SeatsRequested, SetRoleRequest,
    SetSeatsRequest, SetSsoRequest, SsoRedeemRequest, SsoStarted, SsoView, TeamInviteInfo,
    TeamJoined, TeamMemberInfo, TeamView,
};
pub use tiers::{TierOffer, TiersResponse};
pub use usage::{ByteUsage, RequestUsage, UsageReport};
pub use vectors::{
    SearchByBlob, SearchByVector, VectorDeleteRequest, VectorItem, VectorSearchRequest,
    VectorSearchResponse, VectorSearchResult, VectorUpsertRequest, VectorUpserted,
};

use serde::{Deserialize, Serialize};

/// `GET /api/v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// Always `"ok"` when the worker answers.
    pub status: String,
    /// The API's version (the crate version).
    pub version: String,
}

impl Health {
    /// The health of this build.
    pub fn ok() -> Self {
        Self {
            status: "ok".to_owned(),
            version: crate::VERSION.to_owned(),
        }
    }
}

/// `{"ok": true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ok {
    /// Always true.
    pub ok: bool,
}

impl Ok {
    /// `{"ok": true}`.
    pub const YES: Ok = Ok { ok: true };
}
