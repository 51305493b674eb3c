//! The route table: every endpoint's method, path, operation and who may call it.
//!
//! The worker builds its router from [`ROUTES`] and maps each [`Operation`] to a handler with
//! an exhaustive `match`, so a route without a handler does not compile; the OpenAPI document
//! is tested against the same table, so an undocumented route fails the tests.

/// An HTTP method the API serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
}

impl Method {
    /// Parses a method name exactly (methods are case-sensitive); `None` for any other.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "GET" => Some(Method::Get),
            "POST" => Some(Method::Post),
            "PUT" => Some(Method::Put),
            "DELETE" => Some(Method::Delete),
            _ => None,
        }
    }

    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// A caller with a valid access token (checked before the handler runs); the pipeline
    /// admits the request (one call to the caller's home) before the handler runs.
    User,
    /// As [`Access::User`], but the handler's own call to the caller's home takes the
    /// admission, so the request makes one Durable Object round trip, not two.
    UserAtHome,
    /// As [`Access::User`], or with a single-use `?ticket=` from `POST /auth/ws-ticket`
    /// (browsers cannot set headers on a WebSocket).
    UserOrTicket,
}

/// Every operation of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `GET /health`.
    Health,
    /// `GET /openapi.json`.
    OpenApi,
    /// `POST /auth/register`.
    Register,
    /// `POST /auth/login`.
    Login,
    /// `POST /auth/refresh`.
    Refresh,
    /// `POST /auth/logout`.
    Logout,
    /// `POST /auth/logout-all`.
    LogoutAll,
    /// `GET /auth/me`.
    Me,
    /// `POST /auth/ws-ticket`.
    WsTicket,
    /// `POST /auth/verify-email`.
    VerifyEmail,
    /// `POST /auth/verify-email/resend`.
    ResendVerification,
    /// `POST /auth/password/forgot`.
    ForgotPassword,
    /// `POST /auth/password/reset`.
    ResetPassword,
    /// `POST /auth/password/change`.
    ChangePassword,
    /// `GET /auth/sessions`.
    ListSessions,
    /// `DELETE /auth/sessions/{id}`.
    RevokeSession,
    /// `GET /auth/events`.
    SecurityEvents,
    /// `DELETE /auth/account`.
    DeleteAccount,
    /// `GET /auth/export`.
    ExportAccount,
    /// `GET /auth/export/blob`.
    ExportBlob,
    /// `POST /auth/login/mfa`.
    LoginMfa,
    /// `POST /auth/2fa/setup`.
    MfaSetup,
    /// `POST /auth/2fa/enable`.
    MfaEnable,
    /// `POST /auth/2fa/disable`.
    MfaDisable,
    /// `GET /tiers`.
    Tiers,
    /// `PUT /backup`.
    PutBackup,
    /// `GET /backup`.
    GetBackup,
    /// `GET /backup/history`.
    BackupHistory,
    /// `DELETE /backup/{id}`.
    DeleteBackup,
    /// `POST /backup/uploads`.
    BeginUpload,
    /// `PUT /backup/uploads/{id}/parts/{n}`.
    UploadPart,
    /// `POST /backup/uploads/{id}/complete`.
    CompleteUpload,
    /// `DELETE /backup/uploads/{id}`.
    AbortUpload,
    /// `POST /storage/records`.
    CreateRecord,
    /// `GET /storage/records`.
    ListRecords,
    /// `GET /storage/records/{id}`.
    GetRecord,
    /// `PUT /storage/records/{id}`.
    UpdateRecord,
    /// `DELETE /storage/records/{id}`.
    DeleteRecord,
    /// `POST /billing/checkout`.
    Checkout,
    /// `POST /billing/webhook`.
    StripeWebhook,
    /// `GET /billing/subscription`.
    GetSubscription,
    /// `DELETE /billing/subscription`.
    CancelSubscription,
    /// `POST /billing/portal`.
    BillingPortal,
    /// `POST /chat`.
    Chat,
    /// `GET /chat/stream` (WebSocket).
    ChatStream,
    /// `GET /plans/playbook`.
    ListPlaybooks,
    /// `GET /plans/playbook/{id}`.
    GetPlaybook,
    /// `POST /plans/run-step`.
    RunPlanStep,
    /// `GET /providers`.
    ListProviders,
    /// `GET /agents`.
    ListAgents,
    /// `GET /admin/users?email=`.
    AdminUsers,
    /// `POST /admin/users/{id}/suspend`.
    AdminSuspend,
    /// `POST /admin/users/{id}/unsuspend`.
    AdminUnsuspend,
    /// `POST /admin/users/{id}/comp`.
    AdminComp,
    /// `GET /admin/plugins/pending`.
    AdminPendingPlugins,
    /// `GET /admin/payouts`.
    AdminPayouts,
    /// `GET /admin/audit`.
    AdminAudit,
    /// `PUT /agents/enabled`.
    SetEnabledAgents,
    /// `POST /batches`.
    StartBatch,
    /// `GET /batches`.
    ListBatches,
    /// `GET /batches/{id}`.
    GetBatch,
    /// `DELETE /batches/{id}`.
    CancelBatch,
    /// `GET /plugins`.
    ListPlugins,
    /// `POST /plugins`.
    SubmitPlugin,
    /// `GET /plugins/{id}`.
    GetPlugin,
    /// `POST /plugins/{id}/versions`.
    SubmitPluginVersion,
    /// `GET /plugins/review/pending`.
    PendingPluginReviews,
    /// `POST /plugins/{id}/review`.
    ReviewPlugin,
    /// `POST /plugins/{id}/install`.
    InstallPlugin,
    /// `DELETE /plugins/{id}/install`.
    UninstallPlugin,
    /// `GET /plugins/{id}/package`.
    DownloadPlugin,
    /// `POST /plugins/{id}/rating`.
    RatePlugin,
    /// `GET /plugins/earnings`.
    PluginEarnings,
    /// `PUT /plugins/earnings/account`.
    SetPayoutAccount,
    /// `POST /storage/vectors/upsert`.
    UpsertVectors,
    /// `POST /storage/vectors/search`.
    SearchVectors,
    /// `DELETE /storage/vectors`.
    DeleteVectors,
    /// `GET /usage`.
    Usage,
    /// `GET /sync/stream` (WebSocket).
    SyncStream,
    /// `GET /teams/current`.
    CurrentTeam,
    /// `POST /teams/{id}/invites`.
    CreateTeamInvite,
    /// `POST /teams/invites/accept`.
    AcceptTeamInvite,
    /// `DELETE /teams/{id}/invites/{invite_id}`.
    DeleteTeamInvite,
    /// `DELETE /teams/{id}/members/{user_id}`.
    RemoveTeamMember,
    /// `PUT /teams/{id}/members/{user_id}`.
    SetTeamMemberRole,
    /// `PUT /teams/{id}/seats`.
    SetTeamSeats,
    /// `PUT /teams/{id}/sso`.
    SetTeamSso,
    /// `GET /teams/{id}/sso`.
    GetTeamSso,
    /// `DELETE /teams/{id}/sso`.
    DeleteTeamSso,
    /// `GET /auth/sso/start`.
    SsoStart,
    /// `GET /auth/sso/callback`.
    SsoCallback,
    /// `POST /auth/sso/redeem`.
    SsoRedeem,
}

/// One route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// Method.
    pub method: Method,
    /// Path template (`{name}` for parameters), including `/api/v1`.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// What it does.
    pub operation: Operation,
}

const fn route(method: Method, path: &'static str, access: Access, operation: Operation) -> Route {
    Route {
        method,
        path,
        access,
        operation,
    }
}

/// Every route of the API.
pub const ROUTES: &[Route] = &[
    route(
        Method::Get,
        "/api/v1/plugins",
        Access::User,
        Operation::ListPlugins,
    ),
    route(
        Method::Post,
        "/api/v1/plugins",
        Access::User,
        Operation::SubmitPlugin,
    ),
    route(
        Method::Get,
        "/api/v1/plugins/review/pending",
        Access::User,
        Operation::PendingPluginReviews,
    ),
    route(
        Method::Get,
        "/api/v1/plugins/earnings",
        Access::User,
        Operation::PluginEarnings,
    ),
    route(
        Method::Put,
        "/api/v1/plugins/earnings/account",
        Access::User,
        Operation::SetPayoutAccount,
    ),
    route(
        Method::Get,
        "/api/v1/plugins/{id}",
        Access::User,
        Operation::GetPlugin,
    ),
    route(
        Method::Post,
        "/api/v1/plugins/{id}/versions",
        Access::User,
        Operation::SubmitPluginVersion,
    ),
    route(
        Method::Post,
        "/api/v1/plugins/{id}/review",
        Access::User,
        Operation::ReviewPlugin,
    ),
    route(
        Method::Post,
        "/api/v1/plugins/{id}/install",
        Access::User,
        Operation::InstallPlugin,
    ),
    route(
        Method::Delete,
        "/api/v1/plugins/{id}/install",
        Access::User,
        Operation::UninstallPlugin,
    ),
    route(
        Method::Get,
        "/api/v1/plugins/{id}/package",
        Access::User,
        Operation::DownloadPlugin,
    ),
    route(
        Method::Post,
        "/api/v1/plugins/{id}/rating",
        Access::User,
        Operation::RatePlugin,
    ),
    route(
        Method::Post,
        "/api/v1/chat",
        Access::UserAtHome,
        Operation::Chat,
    ),
    route(
        Method::Post,
        "/api/v1/storage/vectors/upsert",
        Access::UserAtHome,
        Operation::UpsertVectors,
    ),
    route(
        Method::Post,
        "/api/v1/storage/vectors/search",
        Access::UserAtHome,
        Operation::SearchVectors,
    ),
    route(
        Method::Delete,
        "/api/v1/storage/vectors",
        Access::UserAtHome,
        Operation::DeleteVectors,
    ),
    route(
        Method::Get,
        "/api/v1/chat/stream",
        Access::UserOrTicket,
        Operation::ChatStream,
    ),
    route(
        Method::Get,
        "/api/v1/plans/playbook",
        Access::User,
        Operation::ListPlaybooks,
    ),
    route(
        Method::Get,
        "/api/v1/plans/playbook/{id}",
        Access::User,
        Operation::GetPlaybook,
    ),
    route(
        Method::Post,
        "/api/v1/plans/run-step",
        Access::UserAtHome,
        Operation::RunPlanStep,
    ),
    route(
        Method::Get,
        "/api/v1/providers",
        Access::User,
        Operation::ListProviders,
    ),
    route(
        Method::Get,
        "/api/v1/agents",
        Access::UserAtHome,
        Operation::ListAgents,
    ),
    route(
        Method::Put,
        "/api/v1/agents/enabled",
        Access::UserAtHome,
        Operation::SetEnabledAgents,
    ),
    route(
        Method::Post,
        "/api/v1/batches",
        Access::UserAtHome,
        Operation::StartBatch,
    ),
    route(
        Method::Get,
        "/api/v1/batches",
        Access::UserAtHome,
        Operation::ListBatches,
    ),
    route(
        Method::Get,
        "/api/v1/batches/{id}",
        Access::UserAtHome,
        Operation::GetBatch,
    ),
    route(
        Method::Delete,
        "/api/v1/batches/{id}",
        Access::UserAtHome,
        Operation::CancelBatch,
    ),
    route(
        Method::Get,
        "/api/v1/health",
        Access::Public,
        Operation::Health,
    ),
    route(
        Method::Get,
        "/api/v1/openapi.json",
        Access::Public,
        Operation::OpenApi,
    ),
    route(
        Method::Post,
        "/api/v1/auth/register",
        Access::Public,
        Operation::Register,
    ),
    route(
        Method::Post,
        "/api/v1/auth/login",
        Access::Public,
        Operation::Login,
    ),
    route(
        Method::Post,
        "/api/v1/auth/refresh",
        Access::Public,
        Operation::Refresh,
    ),
    route(
        Method::Post,
        "/api/v1/auth/logout",
        Access::User,
        Operation::Logout,
    ),
    route(
        Method::Post,
        "/api/v1/auth/logout-all",
        Access::User,
        Operation::LogoutAll,
    ),
    route(
        Method::Get,
        "/api/v1/auth/me",
        Access::UserAtHome,
        Operation::Me,
    ),
    route(
        Method::Post,
        "/api/v1/auth/ws-ticket",
        Access::User,
        Operation::WsTicket,
    ),
    route(
        Method::Post,
        "/api/v1/auth/verify-email",
        Access::Public,
        Operation::VerifyEmail,
    ),
    route(
        Method::Post,
        "/api/v1/auth/verify-email/resend",
        Access::User,
        Operation::ResendVerification,
    ),
    route(
        Method::Post,
        "/api/v1/auth/password/forgot",
        Access::Public,
        Operation::ForgotPassword,
    ),
    route(
        Method::Post,
        "/api/v1/auth/password/reset",
        Access::Public,
        Operation::ResetPassword,
    ),
    route(
        Method::Post,
        "/api/v1/auth/password/change",
        Access::User,
        Operation::ChangePassword,
    ),
    route(
        Method::Get,
        "/api/v1/auth/sessions",
        Access::User,
        Operation::ListSessions,
    ),
    route(
        Method::Delete,
        "/api/v1/auth/sessions/{id}",
        Access::User,
        Operation::RevokeSession,
    ),
    route(
        Method::Delete,
        "/api/v1/auth/account",
        Access::User,
        Operation::DeleteAccount,
    ),
    route(
        Method::Get,
        "/api/v1/auth/export",
        Access::User,
        Operation::ExportAccount,
    ),
    route(
        Method::Get,
        "/api/v1/auth/export/blob",
        Access::User,
        Operation::ExportBlob,
    ),
    route(
        Method::Get,
        "/api/v1/auth/events",
        Access::User,
        Operation::SecurityEvents,
    ),
    route(
        Method::Post,
        "/api/v1/auth/login/mfa",
        Access::Public,
        Operation::LoginMfa,
    ),
    route(
        Method::Post,
        "/api/v1/auth/2fa/setup",
        Access::User,
        Operation::MfaSetup,
    ),
    route(
        Method::Post,
        "/api/v1/auth/2fa/enable",
        Access::User,
        Operation::MfaEnable,
    ),
    route(
        Method::Post,
        "/api/v1/auth/2fa/disable",
        Access::User,
        Operation::MfaDisable,
    ),
    route(
        Method::Get,
        "/api/v1/tiers",
        Access::Public,
        Operation::Tiers,
    ),
    route(
        Method::Post,
        "/api/v1/backup/uploads",
        Access::UserAtHome,
        Operation::BeginUpload,
    ),
    route(
        Method::Put,
        "/api/v1/backup/uploads/{id}/parts/{n}",
        Access::UserAtHome,
        Operation::UploadPart,
    ),
    route(
        Method::Post,
        "/api/v1/backup/uploads/{id}/complete",
        Access::UserAtHome,
        Operation::CompleteUpload,
    ),
    route(
        Method::Delete,
        "/api/v1/backup/uploads/{id}",
        Access::UserAtHome,
        Operation::AbortUpload,
    ),
    route(
        Method::Put,
        "/api/v1/backup",
        Access::UserAtHome,
        Operation::PutBackup,
    ),
    route(
        Method::Get,
        "/api/v1/backup",
        Access::UserAtHome,
        Operation::GetBackup,
    ),
    route(
        Method::Get,
        "/api/v1/backup/history",
        Access::UserAtHome,
        Operation::BackupHistory,
    ),
    route(
        Method::Delete,
        "/api/v1/backup/{id}",
        Access::UserAtHome,
        Operation::DeleteBackup,
    ),
    route(
        Method::Post,
        "/api/v1/storage/records",
        Access::UserAtHome,
        Operation::CreateRecord,
    ),
    route(
        Method::Get,
        "/api/v1/storage/records",
        Access::UserAtHome,
        Operation::ListRecords,
    ),
    route(
        Method::Get,
        "/api/v1/storage/records/{id}",
        Access::UserAtHome,
        Operation::GetRecord,
    ),
    route(
        Method::Put,
        "/api/v1/storage/records/{id}",
        Access::UserAtHome,
        Operation::UpdateRecord,
    ),
    route(
        Method::Delete,
        "/api/v1/storage/records/{id}",
        Access::UserAtHome,
        Operation::DeleteRecord,
    ),
    route(
        Method::Post,
        "/api/v1/billing/checkout",
        Access::User,
        Operation::Checkout,
    ),
    route(
        Method::Post,
        "/api/v1/billing/webhook",
        Access::Public,
        Operation::StripeWebhook,
    ),
    route(
        Method::Get,
        "/api/v1/billing/subscription",
        Access::User,
        Operation::GetSubscription,
    ),
    route(
        Method::Delete,
        "/api/v1/billing/subscription",
        Access::User,
        Operation::CancelSubscription,
    ),
    route(
        Method::Post,
        "/api/v1/billing/portal",
        Access::User,
        Operation::BillingPortal,
    ),
    route(
        Method::Get,
        "/api/v1/teams/current",
        Access::User,
        Operation::CurrentTeam,
    ),
    route(
        Method::Post,
        "/api/v1/teams/invites/accept",
        Access::User,
        Operation::AcceptTeamInvite,
    ),
    route(
        Method::Post,
        "/api/v1/teams/{id}/invites",
        Access::User,
        Operation::CreateTeamInvite,
    ),
    route(
        Method::Delete,
        "/api/v1/teams/{id}/invites/{invite_id}",
        Access::User,
        Operation::DeleteTeamInvite,
    ),
    route(
        Method::Delete,
        "/api/v1/teams/{id}/members/{user_id}",
        Access::User,
        Operation::RemoveTeamMember,
    ),
    route(
        Method::Put,
        "/api/v1/teams/{id}/members/{user_id}",
        Access::User,
        Operation::SetTeamMemberRole,
    ),
    route(
        Method::Put,
        "/api/v1/teams/{id}/seats",
        Access::User,
        Operation::SetTeamSeats,
    ),
    route(
        Method::Put,
        "/api/v1/teams/{id}/sso",
        Access::User,
        Operation::SetTeamSso,
    ),
    route(
        Method::Get,
        "/api/v1/teams/{id}/sso",
        Access::User,
        Operation::GetTeamSso,
    ),
    route(
        Method::Delete,
        "/api/v1/teams/{id}/sso",
        Access::User,
        Operation::DeleteTeamSso,
    ),
    route(
        Method::Get,
        "/api/v1/auth/sso/start",
        Access::Public,
        Operation::SsoStart,
    ),
    route(
        Method::Get,
        "/api/v1/auth/sso/callback",
        Access::Public,
        Operation::SsoCallback,
    ),
    route(
        Method::Post,
        "/api/v1/auth/sso/redeem",
        Access::Public,
        Operation::SsoRedeem,
    ),
    route(
        Method::Get,
        "/api/v1/usage",
        Access::UserAtHome,
        Operation::Usage,
    ),
    route(
        Method::Get,
        "/api/v1/sync/stream",
        Access::UserOrTicket,
        Operation::SyncStream,
    ),
    route(
        Method::Get,
        "/api/v1/admin/users",
        Access::User,
        Operation::AdminUsers,
    ),
    route(
        Method::Post,
        "/api/v1/admin/users/{id}/suspend",
        Access::User,
        Operation::AdminSuspend,
    ),
    route(
        Method::Post,
        "/api/v1/admin/users/{id}/unsuspend",
        Access::User,
        Operation::AdminUnsuspend,
    ),
    route(
        Method::Post,
        "/api/v1/admin/users/{id}/comp",
        Access::User,
        Operation::AdminComp,
    ),
    route(
        Method::Get,
        "/api/v1/admin/plugins/pending",
        Access::User,
        Operation::AdminPendingPlugins,
    ),
    route(
        Method::Get,
        "/api/v1/admin/payouts",
        Access::User,
        Operation::AdminPayouts,
    ),
    route(
        Method::Get,
        "/api/v1/admin/audit",
        Access::User,
        Operation::AdminAudit,
    ),
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn no_two_routes_share_a_method_and_path() {
        let mut seen = HashSet::new();
        for r in ROUTES {
            assert!(seen.insert((r.method, r.path)), "{:?} {}", r.method, r.path);
        }
    }

    #[test]
    fn every_operation_appears_once() {
        let mut seen = HashSet::new();
        for r in ROUTES {
            assert!(seen.insert(r.operation), "{:?}", r.operation);
        }
    }

    #[test]
    fn only_exact_known_method_names_parse() {
        for m in [Method::Get, Method::Post, Method::Put, Method::Delete] {
            assert_eq!(Method::parse(m.as_str()), Some(m));
        }
        for other in ["get", "QUERY", "PATCH", "HEAD", "OPTIONS", ""] {
            assert_eq!(Method::parse(other), None, "{other}");
        }
    }

    #[test]
    fn every_path_is_under_api_v1() {
        assert!(ROUTES.iter().all(|r| r.path.starts_with("/api/v1/")));
    }
}
