//! The OpenAPI 3.1 document of the API, generated from the Rust types (utoipa).
//!
//! `cargo run -p shared --bin gen-openapi` prints it; `scripts/gen-contract.sh` writes it to
//! `contract/openapi.json` (which the worker serves at `GET /api/v1/openapi.json`) and derives
//! `contract/api-types.ts` from it. Tests here fail when the committed file drifts from the
//! types, or when the document and [`crate::routes::ROUTES`] disagree.
#![allow(dead_code)] // The `#[utoipa::path]` functions exist only to carry their attributes.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::{
    AcceptInviteRequest, AccountExport, ChangePasswordRequest, CreateInviteRequest,
    DeleteAccountRequest, DeletionAccepted, ExportBlob, ExportEarnings, ExportInstall,
    ExportPlugin, ExportProfile, ExportPurchase, ExportRating, ExportSubscription, ExportTeam,
    ExportUpload, ExportVector, ForgotPasswordRequest, InviteCreated, PasswordChanged,
    ResetPasswordRequest, SeatsRequested, SecurityEventInfo, SecurityEvents, SessionInfo,
    SessionList, SetRoleRequest, SetSeatsRequest, SetSsoRequest, SsoRedeemRequest, SsoStarted,
    SsoView, TeamInviteInfo, TeamJoined, TeamMemberInfo, TeamView, VerifyEmailRequest,
};
use crate::api::{
    AdminPayout, AdminPayouts, AdminUser, AdminUsers, AuditEntry, AuditLog, CompInfo, CompRequest,
    PayoutMonth,
};
use crate::api::{
    AgentDeclarationInfo, AgentListing, AgentsResponse, ChecklistResult, EarningsResponse,
    EnableAgentsRequest, PayoutAccountRequest, PendingReview, PendingReviews, PeriodEarningsInfo,
    PluginAgentInfo, PluginInfo, PluginInstallRequest, PluginInstalled, PluginListResponse,
    PluginSubmission, PluginSubmitted, PluginToolInfo, ProviderInfo, ProvidersResponse,
    RatingRequest, RatingResult, ReviewRequest, ReviewResult, ToolDeclarationInfo,
};
use crate::api::{
    AuthTokens, CheckoutBody, CheckoutResponse, Health, LoggedOutAll, LoginRequest, Ok,
    PortalResponse, RefreshRequest, RegisterRequest, SubscriptionInfo, TierOffer, TiersResponse,
    UserProfile, WsTicket,
};
use crate::api::{
    BatchItem, BatchItemError, BatchList, BatchRequest, BatchResult, BatchStarted, BatchState,
    BatchSummary, BatchView,
};
use crate::api::{ByteUsage, RequestUsage, UsageReport};
use crate::api::{
    ChatContext, ChatRequest, ChatResponse, ExecutionMode, ExecutionPlan, PlanAction,
    PlanActionType, PlanStep, PlaybookPlan, RunStepRequest, RunStepResponse,
};
use crate::api::{CreateRecord, RecordCreated, RecordUpdated, UpdateRecord};
use crate::api::{
    DisableMfaRequest, EnableMfaRequest, MfaLoginRequest, MfaLoginWithCode, MfaLoginWithRecovery,
    RecoveryCodes, TotpSetup,
};
use crate::api::{
    SearchByBlob, SearchByVector, VectorDeleteRequest, VectorItem, VectorSearchRequest,
    VectorSearchResponse, VectorSearchResult, VectorUpsertRequest, VectorUpserted,
};
use crate::backup::multipart::{CompleteUpload, PartStored, UploadStarted};
use crate::backup::{BackupMetadata, BackupStored};
use crate::domain::{ProviderKind, Tier};
use crate::error::{ErrorBody, ErrorDetail, FieldError};
use crate::marketplace::{AgentSubmission, ManifestSubmission, ToolSubmission};
use crate::ports::SecurityEventKind;
use crate::storage::RecordMeta;
use crate::teams::TeamRole;
use crate::tiers::Features;

const DESCRIPTION: &str = "\
The cloud API of Adiuva, a desktop productivity assistant.

**Conventions.** Timestamps are Unix epoch milliseconds; ids are UUID v4 strings. Every \
response carries `X-Request-Id` (a client's own id of 8–64 `[A-Za-z0-9_-]` characters is \
echoed). Every error is `{\"error\": {\"code\", \"message\", \"request_id\", \"details\"?}}`; codes \
are a stable contract: `validation_failed` 422 (details name each field), `malformed_json` 400, \
`unsupported_media_type` 415, `payload_too_large` 413 (JSON bodies: 1 MiB), `unauthorized` 401 \
(with `WWW-Authenticate: Bearer`), `forbidden` 403 (also: a browser `Origin` that is not \
allowed), `account_suspended` 403 (an administrator suspended the account: every request, \
login and refresh is refused, and its sockets close with code 4003), `sso_required` 403 (the \
address's team signs in through its identity provider: `GET /auth/sso/start`), `not_found` 404, `method_not_allowed` 405 (with `Allow`), `conflict` 409, \
`precondition_failed` 412, `checksum_mismatch` 400, `tier_required` 403, `quota_exceeded` 403, \
`payment_required` 402, `request_aborted` 400 (the request body broke off), \
`rate_limited` 429 (with `Retry-After`), `llm_not_configured` 503, `email_not_configured` 503 \
(no outgoing email on this deployment), `upstream_unavailable` 502/503, `not_implemented` 501, `internal` 500.

**CORS.** Origins `app://*`, `http://localhost[:port]` and those configured in `CORS_ORIGINS` \
are allowed; any other `Origin` is refused with 403.

**WebSocket chat (`GET /api/v1/chat/stream`, arriving with the streaming issue).** \
Authenticate with `Authorization: Bearer` or a single-use `?ticket=` from \
`POST /api/v1/auth/ws-ticket`. Frames are JSON. The client sends a `ChatRequest` (and may send \
`{\"type\":\"cancel\"}`); the server sends `{\"type\":\"token\",\"text\":…}` frames, \
`{\"type\":\"ping\"}` every 30 s, `{\"type\":\"error\",\"code\",\"message\"}` on failure, and \
finally `{\"type\":\"done\",\"done\":true,\"response\":…,\"actions\":[…]}`.";

/// Adds the bearer scheme.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".to_owned());
        http.description = Some(
            "Access token from register, login or refresh (HS256 JWT, 15 minutes).".to_owned(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

/// Every authenticated operation is rate limited per user: document its 429.
struct RateLimited;

impl Modify for RateLimited {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, ResponseBuilder};
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    let response = ResponseBuilder::new()
                        .description(
                            "`rate_limited`: the caller's per-minute allowance is spent; see \
                             `Retry-After`. Every authenticated response carries \
                             `X-RateLimit-Limit` and `X-RateLimit-Remaining`.",
                        )
                        .content(
                            "application/json",
                            utoipa::openapi::ContentBuilder::new()
                                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                                    "ErrorBody",
                                ))))
                                .build(),
                        )
                        .build();
                    op.responses
                        .responses
                        .insert("429".to_owned(), RefOr::T(response));
                }
            }
        }
    }
}

/// Closes the variants of tagged request enums: the Rust types deny unknown fields (so the
/// server answers 422 to extra properties), and the document must say so.
struct ClosedVariants;

impl Modify for ClosedVariants {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{AdditionalProperties, Schema};
        use utoipa::openapi::RefOr;
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for name in ["CheckoutBody"] {
            if let Some(RefOr::T(Schema::OneOf(one_of))) = components.schemas.get_mut(name) {
                for item in &mut one_of.items {
                    if let RefOr::T(Schema::Object(object)) = item {
                        object.additional_properties =
                            Some(Box::new(AdditionalProperties::FreeForm(false)));
                    }
                }
            }
        }
    }
}

/// Embedding values are `f32` on the server: say their range, so a client's schema check and
/// the server agree on every number (utoipa has no attribute for array items' bounds).
struct FloatRange;

impl Modify for FloatRange {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{ArrayItems, Schema};
        use utoipa::openapi::RefOr;
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for (name, property) in [("VectorItem", "values"), ("SearchByVector", "vector")] {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) else {
                continue;
            };
            let Some(RefOr::T(Schema::Array(array))) = object.properties.get_mut(property) else {
                continue;
            };
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                if let RefOr::T(Schema::Object(item)) = items.as_mut() {
                    let max = crate::vectors::MAX_ABS_VALUE;
                    item.minimum = Some(utoipa::Number::Float(-max));
                    item.maximum = Some(utoipa::Number::Float(max));
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Adiuva Cloud API", description = DESCRIPTION),
    paths(
        health, openapi_document, register, login, refresh, logout, logout_all, me, ws_ticket,
        verify_email, resend_verification, forgot_password, reset_password, change_password,
        list_sessions, revoke_session, security_events, delete_account, export_account, export_blob,
        login_mfa, mfa_setup, mfa_enable,
        mfa_disable,
        tiers, checkout, stripe_webhook, get_subscription, cancel_subscription, billing_portal,
        create_record, list_records, get_record, update_record, delete_record,
        put_backup, get_backup, backup_history, delete_backup,
        begin_upload, upload_part, complete_upload, abort_upload,
        chat, chat_stream, sync_stream, usage, list_playbooks, get_playbook, run_plan_step,
        upsert_vectors, search_vectors, delete_vectors,
        list_plugins, submit_plugin, get_plugin, submit_plugin_version, pending_plugin_reviews,
        review_plugin, install_plugin, uninstall_plugin, download_plugin, rate_plugin,
        plugin_earnings, set_payout_account, list_providers, list_agents, set_enabled_agents,
        admin_users, admin_suspend, admin_unsuspend, admin_comp, admin_pending_plugins,
        admin_payouts, admin_audit, start_batch, list_batches, get_batch, cancel_batch,
        current_team, create_team_invite, accept_team_invite, delete_team_invite,
        remove_team_member, set_team_member_role, set_team_seats, set_team_sso, get_team_sso,
        delete_team_sso, sso_start, sso_callback, sso_redeem
    ),
    components(schemas(
        Health, Ok, UsageReport, ByteUsage, RequestUsage, RegisterRequest, LoginRequest, RefreshRequest, AuthTokens, UserProfile,
        WsTicket, LoggedOutAll, Tier, CheckoutBody, CheckoutResponse, PortalResponse, SubscriptionInfo,
        TiersResponse, TierOffer, Features, CreateRecord, UpdateRecord, RecordCreated,
        RecordUpdated, RecordMeta, BackupStored, BackupMetadata, UploadStarted, PartStored,
        CompleteUpload, ErrorBody, ErrorDetail, FieldError, ChatRequest, ChatContext,
        ExecutionMode, ChatResponse, PlanAction, PlanActionType, ExecutionPlan, PlanStep,
        PlaybookPlan, RunStepRequest, RunStepResponse, VectorUpsertRequest,
        VectorItem, VectorSearchRequest, SearchByVector, SearchByBlob, VectorSearchResponse,
        VectorSearchResult,
        VectorDeleteRequest, VectorUpserted, ManifestSubmission, AgentSubmission, ToolSubmission,
        PluginSubmission, PluginSubmitted, PluginInfo, PluginAgentInfo, PluginToolInfo,
        PluginListResponse, PendingReview, AgentDeclarationInfo, ToolDeclarationInfo,
        PendingReviews, ChecklistResult,
        ReviewRequest, ReviewResult, PluginInstallRequest, PluginInstalled, RatingRequest,
        RatingResult, PeriodEarningsInfo, EarningsResponse, PayoutAccountRequest,
        ProviderKind, ProvidersResponse, ProviderInfo, AgentsResponse, AgentListing,
        EnableAgentsRequest, VerifyEmailRequest, ForgotPasswordRequest, ResetPasswordRequest,
        ChangePasswordRequest, PasswordChanged, SessionInfo, SessionList, SecurityEventInfo,
        SecurityEvents, SecurityEventKind, TotpSetup, EnableMfaRequest, RecoveryCodes,
        DisableMfaRequest, MfaLoginRequest, MfaLoginWithCode, MfaLoginWithRecovery,
        AdminUser, AdminUsers, CompInfo, CompRequest, AuditEntry, AuditLog, AdminPayout,
        PayoutMonth, AdminPayouts,
        BatchRequest, BatchItem, BatchStarted, BatchState, BatchItemError, BatchResult, BatchView,
        BatchSummary, BatchList, BatchItemFrame, BatchDoneFrame, DeleteAccountRequest,
        DeletionAccepted, AccountExport, ExportProfile, ExportSubscription, ExportBlob,
        ExportUpload, ExportVector, ExportPlugin, ExportInstall, ExportRating, ExportPurchase,
        ExportEarnings, ExportTeam, TeamRole, TeamView, TeamMemberInfo, TeamInviteInfo, CreateInviteRequest,
        InviteCreated, AcceptInviteRequest, TeamJoined, SetRoleRequest, SetSeatsRequest,
        SeatsRequested, SetSsoRequest, SsoView, SsoStarted, SsoRedeemRequest
    )),
    modifiers(&BearerAuth, &ClosedVariants, &RateLimited, &FloatRange),
    tags(
        (name = "system", description = "Health and the contract itself."),
        (name = "auth", description = "Accounts, sessions and tokens."),
        (name = "storage", description = "End-to-end-encrypted cloud records: opaque bytes in \
            R2, metadata in D1, checksums verified, ETag/If-Match concurrency, sync by \
            `updated_since` and cursor with 30-day tombstones. Pro tier and above; quota \
            `cloud_storage_gb`."),
        (name = "backup", description = "Client-encrypted whole-database backups in R2. Pro \
            and above; total size within `backup_gb` (pruning the oldest only on request)."),
        (name = "chat", description = "The assistant. Agents see only the request's \
            `context` and never write server-side: changes come back as `actions` for the app \
            to apply. Prompts stay on the server; plans carry template ids."),
        (name = "plans", description = "Execution plans and playbooks: steps name server-side \
            templates that `run-step` renders and runs."),
        (name = "batches", description = "One plan run for up to 100 items in the user's \
            home, 3 items at a time, with progress pushed to the user's sockets. Inputs and \
            results live in memory only and expire 10 minutes after the batch ends. \
            `batch_active` bounds the batches running at once (free 2, pro 10, power and team \
            unlimited); `batch_builder` (power, team) allows custom steps."),
        (name = "vectors", description = "Search by meaning without the server learning \
            the meaning: embeddings arrive encrypted by the client (DCPE) with an opaque \
            payload; search is cosine over the encrypted vectors. Pro tier and above; counts \
            towards `cloud_storage_gb`."),
        (name = "plugins", description = "The plugin marketplace. Anyone signed in may \
            submit plugins and see their earnings; browsing, installing and rating need the \
            `plugin_marketplace` feature (Power and Team); admins review every version before \
            it is listed. Paid plugins are charged once per buyer; developers receive 70% \
            (rounded down per sale) by monthly Stripe Connect transfers."),
        (name = "admin", description = "Operating the service (the console at `/admin`): \
            accounts whose role is `admin` (an `ADMIN_EMAILS` address, verified, still listed) \
            look up users, suspend and restore them, comp tiers, review plugins and see \
            payouts; every action is in the audit log. Anyone else gets 403 `forbidden`."),
        (name = "teams", description = "Teams of the Team tier: the buyer owns the team and \
            takes a seat; members join by a 7-day single-use invitation (emailed, or a link the \
            owner shares) and have the Team tier in force (each their own 200 requests a \
            minute) while the team's subscription grants it. Members plus open invitations \
            never exceed the seats. Another team's id answers 404."),
        (name = "billing", description = "Stripe subscriptions. A paid subscription sets the \
            user's tier; `past_due` keeps it until the current period ends; cancellation and \
            deletion return the user to free.")
    )
)]
struct ApiDoc;

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as pretty JSON with a trailing newline (the committed file's exact form).
///
/// # Panics
/// Never in practice: the document is plain data.
pub fn document_json() -> String {
    let json = document().to_json().expect("the document serialises");
    let mut doc: Json = serde_json::from_str(&json).expect("the document parses");
    mark_free_form_objects(&mut doc);
    let mut s = serde_json::to_string_pretty(&doc).expect("the document serialises");
    s.push('\n');
    s
}

/// A JSON value whose objects keep their keys in document order (the crate's `serde_json` does
/// not preserve order, and turning that on would change it for the whole native build).
enum Json {
    Object(Vec<(String, Json)>),
    Array(Vec<Json>),
    Scalar(serde_json::Value),
}

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Json, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = m.next_entry::<String, Json>()? {
                    entries.push(entry);
                }
                Ok(Json::Object(entries))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Scalar(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Scalar(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Scalar(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
                Ok(Json::Scalar(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::Scalar(v.into()))
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Scalar(serde_json::Value::Null))
            }
        }
        d.deserialize_any(V)
    }
}

impl serde::Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Json::Object(entries) => {
                let mut m = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
            Json::Array(items) => {
                let mut q = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    q.serialize_element(item)?;
                }
                q.end()
            }
            Json::Scalar(v) => v.serialize(s),
        }
    }
}

/// Writes `additionalProperties: true` on every bare `type: object` schema (no `properties`, no
/// `additionalProperties`): free-form JSON objects such as context records and plan variables.
/// Without it, generators read the bare schema as an object with no keys at all (TypeScript's
/// `Record<string, never>`, which no value fits).
fn mark_free_form_objects(node: &mut Json) {
    match node {
        Json::Object(entries) => {
            let has = |key: &str| entries.iter().any(|(k, _)| k == key);
            let is_object = entries.iter().any(|(k, v)| {
                k == "type"
                    && match v {
                        Json::Scalar(t) => t == "object",
                        Json::Array(ts) => ts
                            .iter()
                            .any(|t| matches!(t, Json::Scalar(t) if t == "object")),
                        Json::Object(_) => false,
                    }
            });
            if is_object && !has("properties") && !has("additionalProperties") {
                entries.push((
                    "additionalProperties".into(),
                    Json::Scalar(serde_json::Value::Bool(true)),
                ));
            }
            for (_, v) in entries.iter_mut() {
                mark_free_form_objects(v);
            }
        }
        Json::Array(items) => items.iter_mut().for_each(mark_free_form_objects),
        Json::Scalar(_) => {}
    }
}

/// Liveness of the worker.
#[utoipa::path(get, path = "/api/v1/health", tag = "system", operation_id = "health",
    responses(
        (status = 200, description = "The worker answers.", body = Health),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody)
    ))]
fn health() {}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system", operation_id = "openapi",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document.", body = Object),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody)
    ))]
fn openapi_document() {}

/// Creates an account and signs it in, and mails a verification link (24 h). Emails listed in
/// `ADMIN_EMAILS` get the admin role once verified. Each client address may register 20
/// accounts an hour (`REGISTER_LIMIT_PER_HOUR`). An optional `X-Device-Name` (at most 64
/// characters) names the session.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", operation_id = "register",
    params(("X-Device-Name" = Option<String>, Header, nullable = false, pattern = "^[^\\u0000-\\u001f\\u007f\\u202a-\\u202e\\u2066-\\u2069]{0,64}$", description = "The device's name for the session: at most 64 characters, no control characters.")),
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Signed up; a new session.", body = AuthTokens),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 409, description = "`conflict`: the email is registered already.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`, naming `email` and/or `password`.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many registrations from this address; see `Retry-After`.", body = ErrorBody)
    ))]
fn register() {}

/// Signs in. A wrong password and an unknown email get the same 401. Failures are throttled
/// per account and client address (5 in 15 minutes), per client address (50 in 15 minutes) and
/// per account from all addresses (100 an hour); while one is exhausted, answers 429 without
/// checking the password. Guesses from one address never lock the owner out elsewhere.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", operation_id = "login",
    params(("X-Device-Name" = Option<String>, Header, nullable = false, pattern = "^[^\\u0000-\\u001f\\u007f\\u202a-\\u202e\\u2066-\\u2069]{0,64}$", description = "The device's name for the session: at most 64 characters, no control characters.")),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; a new session.", body = AuthTokens),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: wrong email or password; or `mfa_required` (the password was right, the account has two-factor): finish with `POST /auth/login/mfa` and `details.mfa_token` (single use, 5 minutes).", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed; `account_suspended`; or `sso_required`: the address's team requires single sign-on.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many failures; see `Retry-After`.", body = ErrorBody)
    ))]
fn login() {}

/// Exchanges a refresh token for a new pair. Each token is single use. Presenting a token
/// rotated more than 10 s ago revokes its whole session (theft); within 10 s (racing refreshes
/// from one device) it yields another fresh pair.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", operation_id = "refresh",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair.", body = AuthTokens),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: unknown, expired, revoked or reused token.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`.", body = ErrorBody)
    ))]
fn refresh() {}

/// Ends the caller's session of a refresh token (its whole family): its access tokens stop
/// working at once and its sockets are closed. Unknown tokens and other users' tokens are
/// ignored.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", operation_id = "logout",
    security(("bearer" = [])),
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "Signed out.", body = Ok),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`.", body = ErrorBody)
    ))]
fn logout() {}

/// Ends every session of the caller: their access tokens stop working at once and every open
/// socket of the caller gets an `unauthorized` error frame and is closed.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth", operation_id = "logout_all",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every session revoked.", body = LoggedOutAll),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody)
    ))]
fn logout_all() {}

/// The caller's profile; the tier is the server's (the user's home, a copy of the billing
/// state), not the token's.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", operation_id = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The profile.", body = UserProfile),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody)
    ))]
fn me() {}

/// A single-use ticket, valid 30 s, for `GET /api/v1/chat/stream?ticket=` (browsers cannot
/// send headers on WebSockets).
#[utoipa::path(post, path = "/api/v1/auth/ws-ticket", tag = "auth", operation_id = "ws_ticket",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A ticket.", body = WsTicket),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody)
    ))]
fn ws_ticket() {}

/// Spends the token of a verification link (single use, 24 h) and marks the address verified.
/// `ADMIN_EMAILS` grants the admin role only then.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", operation_id = "verify_email",
    request_body = VerifyEmailRequest,
    responses(
        (status = 200, description = "Verified.", body = Ok),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: unknown, used, expired or foreign token.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`, naming `token`.", body = ErrorBody)
    ))]
fn verify_email() {}

/// Mails another verification link; 3 an hour per account.
#[utoipa::path(post, path = "/api/v1/auth/verify-email/resend", tag = "auth", operation_id = "resend_verification",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Sent.", body = Ok),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 409, description = "`conflict`: the address is verified already.", body = ErrorBody),
        (status = 503, description = "`email_not_configured`, or `upstream_unavailable` (the email service failed).", body = ErrorBody)
    ))]
fn resend_verification() {}

/// Mails a password-reset link (single use, 30 min) if the address has an account, and answers
/// the same 202 either way, after the same work. Throttled to 10 an hour per client address
/// and 3 an hour per address asked for (registered or not).
#[utoipa::path(post, path = "/api/v1/auth/password/forgot", tag = "auth", operation_id = "forgot_password",
    request_body = ForgotPasswordRequest,
    responses(
        (status = 202, description = "Accepted (whether or not the account exists).", body = Ok),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`, naming `email`.", body = ErrorBody),
        (status = 429, description = "`rate_limited`; see `Retry-After`.", body = ErrorBody),
        (status = 503, description = "`email_not_configured`.", body = ErrorBody)
    ))]
fn forgot_password() {}

/// Spends a reset link's token and sets the password; every session ends (their sockets
/// close) and every other reset link is spent. Data a client encrypted with keys derived from
/// the old password cannot be recovered by a reset.
#[utoipa::path(post, path = "/api/v1/auth/password/reset", tag = "auth", operation_id = "reset_password",
    request_body = ResetPasswordRequest,
    responses(
        (status = 200, description = "The password is set; sign in again.", body = Ok),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: unknown, used, expired or foreign token.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`, naming `token` and/or `password`.", body = ErrorBody)
    ))]
fn reset_password() {}

/// Changes the password; every other session ends (their sockets close). Wrong current
/// passwords are throttled: 5 per 15 minutes per account.
#[utoipa::path(post, path = "/api/v1/auth/password/change", tag = "auth", operation_id = "change_password",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "Changed.", body = PasswordChanged),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: wrong current password.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`.", body = ErrorBody)
    ))]
fn change_password() {}

/// The caller's open sessions, newest first; `current` marks the request's own.
#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth", operation_id = "list_sessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Open sessions.", body = SessionList),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody)
    ))]
fn list_sessions() {}

/// Ends one of the caller's sessions: its tokens stop working at once and its sockets close
/// (code 4001).
#[utoipa::path(delete, path = "/api/v1/auth/sessions/{id}", tag = "auth", operation_id = "revoke_session",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id.")),
    responses(
        (status = 200, description = "Ended.", body = Ok),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 404, description = "`not_found` (also for another user's session).", body = ErrorBody)
    ))]
fn revoke_session() {}

/// Deletes the caller's account. With the password (and, when two-factor is on, a current
/// code or an unused recovery code), the account stops working at once — login 401, every
/// token 401, every socket closed (4001), the address free to register again — and its data is
/// erased: the Stripe subscription cancelled, every R2 object, the home's state, the vectors
/// and the D1 rows; purchases others' payouts depend on stay with a random id in place of the
/// account. What is not erased before the answer (`completed: false`) the cron finishes.
/// Wrong passwords: 5 per 15 minutes per account.
#[utoipa::path(delete, path = "/api/v1/auth/account", tag = "auth", operation_id = "delete_account",
    security(("bearer" = [])),
    request_body = DeleteAccountRequest,
    responses(
        (status = 202, description = "Deletion under way (or done).", body = DeletionAccepted),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: wrong password or code.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body must be JSON.", body = ErrorBody),
        (status = 422, description = "`validation_failed` (a code is required when two-factor is on).", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn delete_account() {}

/// Everything held about the caller: profile, sessions, security log, subscriptions, the
/// metadata of records, backups, uploads and vectors (each record and backup with a signed
/// `download_url`, valid 15 minutes, for this user only), plugins authored, installations,
/// ratings, purchases and earnings. Records an `export` security event. 3 per hour per
/// account (429 beyond).
#[utoipa::path(get, path = "/api/v1/auth/export", tag = "auth", operation_id = "export_account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The export.", body = AccountExport),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn export_account() {}

/// One blob of an export, through its signed link (with the same user's bearer token).
#[utoipa::path(get, path = "/api/v1/auth/export/blob", tag = "auth", operation_id = "export_blob",
    security(("bearer" = [])),
    params(("token" = String, Query, description = "The link's signed token.")),
    responses(
        (status = 200, description = "The encrypted bytes as stored.", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: a link that is not the caller's, altered or expired.", body = ErrorBody),
        (status = 404, description = "`not_found`: the blob is gone.", body = ErrorBody)
    ))]
fn export_blob() {}

/// The newest 100 security events of the caller's account: kind, time, device name and the
/// network (never a full address, a password, a code or a token).
#[utoipa::path(get, path = "/api/v1/auth/events", tag = "auth", operation_id = "security_events",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Newest first.", body = SecurityEvents),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody)
    ))]
fn security_events() {}

/// The second step of a two-factor login: the `mfa_token` of the `mfa_required` answer and a
/// TOTP code or a recovery code. Each code is accepted once; 5 attempts per 15 minutes per
/// account.
#[utoipa::path(post, path = "/api/v1/auth/login/mfa", tag = "auth", operation_id = "login_mfa",
    params(("X-Device-Name" = Option<String>, Header, nullable = false, pattern = "^[^\\u0000-\\u001f\\u007f\\u202a-\\u202e\\u2066-\\u2069]{0,64}$", description = "The device's name for the session: at most 64 characters, no control characters.")),
    request_body = MfaLoginRequest,
    responses(
        (status = 200, description = "Signed in; a new session.", body = AuthTokens),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: unknown, used or expired token, or a wrong or replayed code.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many codes; see `Retry-After`.", body = ErrorBody)
    ))]
fn login_mfa() {}

/// A new TOTP secret (RFC 6238: SHA-1, 6 digits, 30 s), pending until enabled with a code.
#[utoipa::path(post, path = "/api/v1/auth/2fa/setup", tag = "auth", operation_id = "mfa_setup",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The secret and its otpauth URI.", body = TotpSetup),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 409, description = "`conflict`: two-factor is enabled already.", body = ErrorBody)
    ))]
fn mfa_setup() {}

/// Confirms the pending secret with a current code and turns two-factor on; answers ten
/// recovery codes, shown this once.
#[utoipa::path(post, path = "/api/v1/auth/2fa/enable", tag = "auth", operation_id = "mfa_enable",
    security(("bearer" = [])),
    request_body = EnableMfaRequest,
    responses(
        (status = 200, description = "Enabled.", body = RecoveryCodes),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: wrong code.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 409, description = "`conflict`: no setup is pending.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`.", body = ErrorBody)
    ))]
fn mfa_enable() {}

/// Turns two-factor off, with the password and a current code (or a recovery code).
#[utoipa::path(post, path = "/api/v1/auth/2fa/disable", tag = "auth", operation_id = "mfa_disable",
    security(("bearer" = [])),
    request_body = DisableMfaRequest,
    responses(
        (status = 200, description = "Disabled.", body = Ok),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: wrong password or code.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 409, description = "`conflict`: two-factor is not enabled.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`.", body = ErrorBody)
    ))]
fn mfa_disable() {}

/// The tier matrix with prices (euro cents per month; team per seat) and request limits.
#[utoipa::path(get, path = "/api/v1/tiers", tag = "system", operation_id = "tiers",
    responses(
        (status = 200, description = "Every tier, cheapest first.", body = TiersResponse),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody)
    ))]
fn tiers() {}

/// Starts a Stripe Checkout Session (subscription mode) for a paid tier. Team takes `seats`.
#[utoipa::path(post, path = "/api/v1/billing/checkout", tag = "billing", operation_id = "checkout",
    security(("bearer" = [])),
    request_body = CheckoutBody,
    responses(
        (status = 200, description = "Send the user to `checkout_url`.", body = CheckoutResponse),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 409, description = "`conflict`: a paid subscription is already in force.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: tier or seats.", body = ErrorBody),
        (status = 502, description = "`upstream_unavailable`: Stripe refused the request.", body = ErrorBody),
        (status = 503, description = "`upstream_unavailable`: Stripe unreachable, or billing not configured.", body = ErrorBody)
    ))]
fn checkout() {}

/// Stripe's webhook. Verified by `Stripe-Signature` (HMAC-SHA256 of `t.body`, 5-minute
/// tolerance) over the raw body; each event id is applied once; older events never roll state
/// back; unknown types are acknowledged and ignored.
#[utoipa::path(post, path = "/api/v1/billing/webhook", tag = "billing", operation_id = "stripe_webhook",
    params(("Stripe-Signature" = String, Header, description = "Stripe's signature header.")),
    request_body(content = Object, description = "A Stripe event.", content_type = "application/json"),
    responses(
        (status = 200, description = "Processed, or a replay acknowledged.", body = Ok),
        (status = 400, description = "`invalid_signature` or `malformed_json`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 503, description = "`upstream_unavailable`: no webhook secret configured.", body = ErrorBody)
    ))]
fn stripe_webhook() {}

/// The caller's subscription and the tier in force.
#[utoipa::path(get, path = "/api/v1/billing/subscription", tag = "billing", operation_id = "get_subscription",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Status `none` when there never was one.", body = SubscriptionInfo),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody)
    ))]
fn get_subscription() {}

/// Cancels the caller's subscription at the end of the current period (the tier stays until
/// then).
#[utoipa::path(delete, path = "/api/v1/billing/subscription", tag = "billing", operation_id = "cancel_subscription",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cancellation requested.", body = Ok),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 404, description = "`not_found`: no live subscription.", body = ErrorBody),
        (status = 502, description = "`upstream_unavailable`: Stripe refused the request.", body = ErrorBody),
        (status = 503, description = "`upstream_unavailable`: Stripe unreachable.", body = ErrorBody)
    ))]
fn cancel_subscription() {}

/// Opens Stripe's billing portal (invoices, payment method, plan) for the caller's Stripe
/// customer. Each call is a new short-lived session; no body.
#[utoipa::path(post, path = "/api/v1/billing/portal", tag = "billing", operation_id = "billing_portal",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Send the user to `url`.", body = PortalResponse),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 409, description = "`conflict`: no Stripe customer yet (never subscribed).", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody),
        (status = 502, description = "`upstream_unavailable`: Stripe refused the request.", body = ErrorBody),
        (status = 503, description = "`upstream_unavailable`: Stripe unreachable, or billing not configured.", body = ErrorBody)
    ))]
fn billing_portal() {}

/// Stores a record. JSON with a base64 `blob`, or a raw `application/octet-stream` body with
/// `X-Table`, `X-Checksum` and `Content-Length` headers (up to 25 MiB, streamed to storage and
/// verified there). Nothing is stored when the checksum does not match.
#[utoipa::path(post, path = "/api/v1/storage/records", tag = "storage", operation_id = "create_record",
    security(("bearer" = [])),
    request_body = CreateRecord,
    responses(
        (status = 201, description = "Stored; `ETag` header set.", body = RecordCreated),
        (status = 400, description = "`checksum_mismatch` or `malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`tier_required` (free tier), `quota_exceeded`, or `forbidden` (origin).", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: table, checksum, blob or headers.", body = ErrorBody)
    ))]
fn create_record() {}

/// Metadata of the caller's records (never blobs), ordered by `(updated_at, id)`, tombstones
/// of deletions from the last 30 days included. Page with `cursor` (from `X-Next-Cursor`) or
/// `page`. `X-Sync-Reset: true` when a deletion after the position asked for (`updated_since`
/// or the cursor's `updated_at`) is no longer listed (its tombstone is older than 30 days or
/// purged): a device synced up to that position must reconcile with a full listing, keeping
/// only the records it lists.
#[utoipa::path(get, path = "/api/v1/storage/records", tag = "storage", operation_id = "list_records",
    security(("bearer" = [])),
    params(
        ("table" = Option<String>, Query, pattern = "^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$", description = "Only this table."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Page size (default 100)."),
        ("page" = Option<u32>, Query, minimum = 1, maximum = 1_000_000, description = "1-based page, when no cursor is given."),
        ("updated_since" = Option<i64>, Query, minimum = 0, description = "Only records changed after this (epoch ms)."),
        ("cursor" = Option<String>, Query, pattern = "^[0-9]{1,15}\\.[0-9a-f-]{1,64}$", description = "Continue after the previous page (`X-Next-Cursor`: `<updated_at>.<id>`).")
    ),
    responses(
        (status = 200, description = "A page; `X-Next-Cursor` when there is more; `X-Sync-Reset: true` when deletions after the position are no longer listed.", body = Vec<RecordMeta>),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: a query parameter.", body = ErrorBody)
    ))]
fn list_records() {}

/// The record's bytes, with `X-Checksum`, `ETag` and `Content-Length`.
#[utoipa::path(get, path = "/api/v1/storage/records/{id}", tag = "storage", operation_id = "get_record",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Record id."),
        ("If-None-Match" = Option<String>, Header, description = "An ETag: 304 if unchanged.")
    ),
    responses(
        (status = 200, description = "The client-encrypted bytes.", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "Not modified."),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 404, description = "`not_found` (also for another user's record).", body = ErrorBody)
    ))]
fn get_record() {}

/// Replaces a record's bytes (JSON or raw, as for create; raw needs `X-Checksum`). With
/// `If-Match`, refuses a stale version (412); without it, the last write wins.
#[utoipa::path(put, path = "/api/v1/storage/records/{id}", tag = "storage", operation_id = "update_record",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Record id."),
        ("If-Match" = Option<String>, Header, description = "The ETag the client last saw.")
    ),
    request_body = UpdateRecord,
    responses(
        (status = 200, description = "Replaced; new `ETag`.", body = RecordUpdated),
        (status = 400, description = "`checksum_mismatch` or `malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`tier_required`, `quota_exceeded` or `forbidden`.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 409, description = "`conflict`: a concurrent write; retry.", body = ErrorBody),
        (status = 412, description = "`precondition_failed`: stale `If-Match`.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`.", body = ErrorBody)
    ))]
fn update_record() {}

/// Deletes a record, leaving a tombstone for sync. Honours `If-Match`.
#[utoipa::path(delete, path = "/api/v1/storage/records/{id}", tag = "storage", operation_id = "delete_record",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Record id."),
        ("If-Match" = Option<String>, Header, description = "The ETag the client last saw.")
    ),
    responses(
        (status = 200, description = "Deleted.", body = Ok),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 412, description = "`precondition_failed`: stale `If-Match`.", body = ErrorBody)
    ))]
fn delete_record() {}

/// Stores a backup sent as the raw body (up to 95 MiB; streamed to storage, which verifies the
/// checksum). With `X-Backup-Prune: oldest`, the oldest backups are deleted to make room when
/// the tier's limit would be exceeded; without it, that is 403 `quota_exceeded`.
#[utoipa::path(put, path = "/api/v1/backup", tag = "backup", operation_id = "put_backup",
    security(("bearer" = [])),
    params(
        ("X-Backup-Version" = i64, Header, minimum = 1, description = "The client's backup format version."),
        ("X-Backup-Timestamp" = i64, Header, minimum = 0, description = "The backup's time (epoch ms)."),
        ("X-Backup-Checksum" = String, Header, pattern = "^[0-9a-fA-F]{64}$", description = "SHA-256 of the body."),
        ("X-Backup-Prune" = Option<String>, Header, nullable = false, pattern = "^oldest$", description = "`oldest`: make room by deleting the oldest backups.")
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The client-encrypted backup."),
    responses(
        (status = 200, description = "Stored.", body = BackupStored),
        (status = 400, description = "`checksum_mismatch`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`tier_required`, `quota_exceeded` or `forbidden`.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: a header.", body = ErrorBody)
    ))]
fn put_backup() {}

/// The newest backup's bytes, with `X-Backup-Id`, `X-Backup-Version`, `X-Backup-Timestamp`,
/// `X-Backup-Checksum` and `Last-Modified`.
#[utoipa::path(get, path = "/api/v1/backup", tag = "backup", operation_id = "get_backup",
    security(("bearer" = [])),
    params(("If-Modified-Since" = Option<String>, Header, description = "An HTTP date: 304 if no newer backup.")),
    responses(
        (status = 200, description = "The client-encrypted backup.", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "No backup newer than `If-Modified-Since`."),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 404, description = "`not_found`: no backup yet.", body = ErrorBody)
    ))]
fn get_backup() {}

/// Metadata of every backup, newest first (no bytes).
#[utoipa::path(get, path = "/api/v1/backup/history", tag = "backup", operation_id = "backup_history",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Newest first.", body = Vec<BackupMetadata>),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody)
    ))]
fn backup_history() {}

/// The caller's team: seats, the tier it grants, members and (for the owner and admins) open
/// invitations.
#[utoipa::path(get, path = "/api/v1/teams/current", tag = "teams", operation_id = "current_team",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's team.", body = TeamView),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 404, description = "`not_found`: the caller is in no team.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn current_team() {}

/// Invites an address (owner or admin; an emailed link valid 7 days, single use) or creates a
/// shareable link invitation (`link: true`, the owner only; its URL is in the answer). An open
/// invitation holds a seat.
#[utoipa::path(post, path = "/api/v1/teams/{id}/invites", tag = "teams", operation_id = "create_team_invite",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Team id.")),
    request_body = CreateInviteRequest,
    responses(
        (status = 201, description = "Invited.", body = InviteCreated),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: a member, or an admin inviting an admin or making a link.", body = ErrorBody),
        (status = 404, description = "`not_found`: not the caller's team.", body = ErrorBody),
        (status = 409, description = "`conflict`: every seat taken, the address a member or invited already, or the subscription ended.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: email, link or role.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody),
        (status = 503, description = "`email_not_configured` or `upstream_unavailable` (email).", body = ErrorBody)
    ))]
fn create_team_invite() {}

/// Accepts an invitation: the caller's verified address must be the invited one (any verified
/// address for a link). The caller joins with the invitation's role and has the Team tier at
/// once.
#[utoipa::path(post, path = "/api/v1/teams/invites/accept", tag = "teams", operation_id = "accept_team_invite",
    security(("bearer" = [])),
    request_body = AcceptInviteRequest,
    responses(
        (status = 200, description = "Joined.", body = TeamJoined),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: address unverified or not the invited one.", body = ErrorBody),
        (status = 404, description = "`not_found`: unknown, spent, expired or deleted invitation.", body = ErrorBody),
        (status = 409, description = "`conflict`: in a team already, or every seat taken.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: token.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn accept_team_invite() {}

/// Deletes an open invitation (owner or admin); its seat is free again.
#[utoipa::path(delete, path = "/api/v1/teams/{id}/invites/{invite_id}", tag = "teams", operation_id = "delete_team_invite",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Team id."), ("invite_id" = String, Path, description = "Invitation id.")),
    responses(
        (status = 200, description = "Deleted.", body = Ok),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: a member.", body = ErrorBody),
        (status = 404, description = "`not_found`: not the caller's team, or no such open invitation.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn delete_team_invite() {}

/// Removes a member (the owner: anyone but themself; an admin: members), or the caller leaves.
/// The owner cannot be removed. The member returns to their own tier at once.
#[utoipa::path(delete, path = "/api/v1/teams/{id}/members/{user_id}", tag = "teams", operation_id = "remove_team_member",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Team id."), ("user_id" = String, Path, description = "The member's user id.")),
    responses(
        (status = 200, description = "Removed.", body = Ok),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the owner, or beyond the caller's role.", body = ErrorBody),
        (status = 404, description = "`not_found`: not the caller's team, or not a member.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn remove_team_member() {}

/// Sets a member's role (the owner only; `admin` or `member`).
#[utoipa::path(put, path = "/api/v1/teams/{id}/members/{user_id}", tag = "teams", operation_id = "set_team_member_role",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Team id."), ("user_id" = String, Path, description = "The member's user id.")),
    request_body = SetRoleRequest,
    responses(
        (status = 200, description = "The member now.", body = TeamMemberInfo),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: not the owner, or the owner's own role.", body = ErrorBody),
        (status = 404, description = "`not_found`: not the caller's team, or not a member.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: role.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn set_team_member_role() {}

/// Changes the seats (the owner only): one idempotent Stripe call sets the subscription item's
/// quantity with proration; `seats` changes when Stripe's `customer.subscription.updated`
/// confirms it.
#[utoipa::path(put, path = "/api/v1/teams/{id}/seats", tag = "teams", operation_id = "set_team_seats",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Team id.")),
    request_body = SetSeatsRequest,
    responses(
        (status = 202, description = "Asked of Stripe.", body = SeatsRequested),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: not the owner.", body = ErrorBody),
        (status = 404, description = "`not_found`: not the caller's team.", body = ErrorBody),
        (status = 409, description = "`conflict`: below the members and open invitations, or the subscription ended.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: seats.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody),
        (status = 502, description = "`upstream_unavailable`: Stripe refused the request.", body = ErrorBody),
        (status = 503, description = "`upstream_unavailable`: Stripe unreachable, or billing not configured.", body = ErrorBody)
    ))]
fn set_team_seats() {}

/// Configures the team's single sign-on (the owner or an admin, while the team's subscription
/// grants the Team tier, whose matrix row has `sso`). The issuer's discovery document and key
/// set are fetched and checked first; the client secret is stored encrypted and never
/// returned. Saving again replaces the configuration and its domains.
#[utoipa::path(put, path = "/api/v1/teams/{id}/sso", tag = "teams", operation_id = "set_team_sso",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Team id.")),
    request_body = SetSsoRequest,
    responses(
        (status = 200, description = "Saved.", body = SsoView),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: a member; or `tier_required`: the subscription no longer grants `sso`.", body = ErrorBody),
        (status = 404, description = "`not_found`: not the caller's team.", body = ErrorBody),
        (status = 409, description = "`conflict`: a domain is claimed by another team.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: a field, or an issuer whose discovery document or key set cannot be read or does not fit.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn set_team_sso() {}

/// The team's single sign-on configuration (the owner or an admin; the client secret is never
/// returned).
#[utoipa::path(get, path = "/api/v1/teams/{id}/sso", tag = "teams", operation_id = "get_team_sso",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Team id.")),
    responses(
        (status = 200, description = "The configuration.", body = SsoView),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: a member.", body = ErrorBody),
        (status = 404, description = "`not_found`: not the caller's team, or no SSO configured.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn get_team_sso() {}

/// Removes the team's single sign-on (the owner or an admin, whatever the subscription): its
/// domains are released, sign-ins in flight fail, password login is no longer refused.
/// Members stay members.
#[utoipa::path(delete, path = "/api/v1/teams/{id}/sso", tag = "teams", operation_id = "delete_team_sso",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Team id.")),
    responses(
        (status = 200, description = "Removed.", body = Ok),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: a member.", body = ErrorBody),
        (status = 404, description = "`not_found`: not the caller's team, or no SSO configured.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn delete_team_sso() {}

/// Starts a single sign-on: the team claiming the address's domain is found and its identity
/// provider's authorization URL returned (code flow, PKCE S256, `state` and `nonce`, 10
/// minutes to come back).
#[utoipa::path(get, path = "/api/v1/auth/sso/start", tag = "auth", operation_id = "sso_start",
    params(("email" = String, Query, description = "The address signing in.")),
    responses(
        (status = 200, description = "Send the user there.", body = SsoStarted),
        (status = 404, description = "`not_found`: no team claims the domain.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `email`.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: 120 starts per client address per 10 minutes.", body = ErrorBody)
    ))]
fn sso_start() {}

/// The identity provider's redirect: exchanges the code, verifies the ID token, creates or
/// links the account by its verified address and joins the team (seat permitting). Always a
/// redirect to the app: `app://adiuva/sso?code=…` (60 s, single use, for
/// `POST /auth/sso/redeem`) or `app://adiuva/sso?error=<code>` with `invalid_request`,
/// `invalid_state`, `exchange_failed`, `invalid_id_token`, `email_not_verified`,
/// `domain_mismatch`, `other_team`, `no_seat`, `not_allowed`, `account_unverified` or
/// `unavailable` (and nothing created).
#[utoipa::path(get, path = "/api/v1/auth/sso/callback", tag = "auth", operation_id = "sso_callback",
    params(
        ("code" = Option<String>, Query, description = "The authorization code."),
        ("state" = Option<String>, Query, description = "The sign-in's state."),
        ("error" = Option<String>, Query, description = "The identity provider's error, if it refused.")
    ),
    responses(
        (status = 302, description = "To the app (`Location`), with `code` or `error`.")
    ))]
fn sso_callback() {}

/// Redeems the callback's one-time code for a session.
#[utoipa::path(post, path = "/api/v1/auth/sso/redeem", tag = "auth", operation_id = "sso_redeem",
    params(("X-Device-Name" = Option<String>, Header, nullable = false, pattern = "^[^\\u0000-\\u001f\\u007f\\u202a-\\u202e\\u2066-\\u2069]{0,64}$", description = "The device's name for the session: at most 64 characters, no control characters.")),
    request_body = SsoRedeemRequest,
    responses(
        (status = 200, description = "Signed in; a new session.", body = AuthTokens),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: unknown, used or expired code.", body = ErrorBody),
        (status = 403, description = "`account_suspended`; or `forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `code`.", body = ErrorBody)
    ))]
fn sso_redeem() {}

/// Deletes one backup.
#[utoipa::path(delete, path = "/api/v1/backup/{id}", tag = "backup", operation_id = "delete_backup",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Backup id.")),
    responses(
        (status = 200, description = "Deleted.", body = Ok),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 404, description = "`not_found` (also for another user's backup).", body = ErrorBody)
    ))]
fn delete_backup() {}

/// Starts a multipart backup (for backups over 95 MiB): upload parts of `part_size` bytes
/// (the last may be smaller), then complete. Abandoned uploads are aborted after a day.
#[utoipa::path(post, path = "/api/v1/backup/uploads", tag = "backup", operation_id = "begin_upload",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Started.", body = UploadStarted),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`tier_required` or `forbidden`.", body = ErrorBody)
    ))]
fn begin_upload() {}

/// Uploads part `n` (1–10000) as the raw body, verified against `X-Part-Checksum`. Sending a
/// part again replaces it.
#[utoipa::path(put, path = "/api/v1/backup/uploads/{id}/parts/{n}", tag = "backup", operation_id = "upload_part",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Upload id."),
        ("n" = u16, Path, minimum = 1, maximum = 10000, description = "Part number."),
        ("X-Part-Checksum" = String, Header, pattern = "^[0-9a-fA-F]{64}$", description = "SHA-256 of the part.")
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The part's bytes."),
    responses(
        (status = 200, description = "Stored.", body = PartStored),
        (status = 400, description = "`checksum_mismatch`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such open upload.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: over `part_size`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`.", body = ErrorBody)
    ))]
fn upload_part() {}

/// Assembles the parts into a backup, verifies the whole against `checksum`, enforces the
/// tier's limit (pruning the oldest only when `prune` is `oldest`) and records it.
#[utoipa::path(post, path = "/api/v1/backup/uploads/{id}/complete", tag = "backup", operation_id = "complete_upload",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Upload id.")),
    request_body = CompleteUpload,
    responses(
        (status = 200, description = "Stored as a backup.", body = BackupStored),
        (status = 400, description = "`checksum_mismatch` or `malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`quota_exceeded` or `forbidden`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such open upload.", body = ErrorBody),
        (status = 409, description = "`conflict`: parts missing, with gaps, or uneven.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: the metadata.", body = ErrorBody)
    ))]
fn complete_upload() {}

/// Abandons an upload and its parts.
#[utoipa::path(delete, path = "/api/v1/backup/uploads/{id}", tag = "backup", operation_id = "abort_upload",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Upload id.")),
    responses(
        (status = 200, description = "Aborted.", body = Ok),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody)
    ))]
fn abort_upload() {}

/// Approved plugins, one page at a time. Ties in the order are broken by id, so pages are
/// stable.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins", operation_id = "list_plugins",
    security(("bearer" = [])),
    params(
        ("category" = Option<String>, Query, pattern = "^(productivity|writing|research|development|automation|integrations|analytics|other)$", description = "Only this category."),
        ("q" = Option<String>, Query, max_length = 100, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$", description = "Case-insensitive text in the name or the description."),
        ("page" = Option<u32>, Query, minimum = 1, maximum = 10000, description = "1-based page (default 1)."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size (default 20)."),
        ("sort" = Option<String>, Query, pattern = "^(rating|installs|newest)$", description = "`rating` (default: best average first, unrated last), `installs` or `newest`.")
    ),
    responses(
        (status = 200, description = "A page.", body = PluginListResponse),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`tier_required` (below Power) or `forbidden` (origin).", body = ErrorBody),
        (status = 422, description = "`validation_failed`: a query parameter.", body = ErrorBody)
    ))]
fn list_plugins() {}

/// Submits a new plugin: the manifest passes the security checklist (schema, strict semver,
/// allowed permissions, fixed categories, price 0 or 99–99999 cents, no control characters or
/// encoded blobs), the package (1 byte to 10 MiB) is stored with its checksum, and the plugin
/// waits for review. The caller becomes its author.
#[utoipa::path(post, path = "/api/v1/plugins", tag = "plugins", operation_id = "submit_plugin",
    security(("bearer" = [])),
    request_body = PluginSubmission,
    responses(
        (status = 201, description = "Stored, pending review.", body = PluginSubmitted),
        (status = 400, description = "`checksum_mismatch` or `malformed_json` (also: unknown fields).", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`quota_exceeded`: the author has 5 versions pending review already; or `forbidden` (origin).", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: a package over 10 MiB.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: the checklist names every bad field (`manifest.*`, `package`, `package_checksum`).", body = ErrorBody),
        (status = 429, description = "`rate_limited`: more than 20 submissions in an hour.", body = ErrorBody)
    ))]
fn submit_plugin() {}

/// An approved plugin's manifest with its average rating, rating count and install count.
#[utoipa::path(get, path = "/api/v1/plugins/{id}", tag = "plugins", operation_id = "get_plugin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id.")),
    responses(
        (status = 200, description = "The plugin.", body = PluginInfo),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`tier_required` (below Power) or `forbidden` (origin).", body = ErrorBody),
        (status = 404, description = "`not_found`: no approved plugin with this id.", body = ErrorBody)
    ))]
fn get_plugin() {}

/// Submits a new version of the caller's plugin. It must be greater than every version
/// submitted before, and is reviewed again; the live version stays listed meanwhile.
#[utoipa::path(post, path = "/api/v1/plugins/{id}/versions", tag = "plugins", operation_id = "submit_plugin_version",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id.")),
    request_body = PluginSubmission,
    responses(
        (status = 201, description = "Stored, pending review.", body = PluginSubmitted),
        (status = 400, description = "`checksum_mismatch` or `malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`quota_exceeded`: the author has 5 versions pending review already; or `forbidden` (origin).", body = ErrorBody),
        (status = 404, description = "`not_found`: no plugin of the caller's with this id.", body = ErrorBody),
        (status = 409, description = "`conflict`: a version is already pending review.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: the checklist, or a version not above the latest.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: more than 20 submissions in an hour.", body = ErrorBody)
    ))]
fn submit_plugin_version() {}

/// The review queue (admins only), oldest first, each with a signed download link for the
/// reviewer.
#[utoipa::path(get, path = "/api/v1/plugins/review/pending", tag = "plugins", operation_id = "pending_plugin_reviews",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Versions waiting for review.", body = PendingReviews),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin (or origin).", body = ErrorBody)
    ))]
fn pending_plugin_reviews() {}

/// Approves or rejects the plugin's pending version (admins only, never their own plugin).
/// Approval runs the checklist again and re-hashes the stored package; the decision is
/// recorded.
#[utoipa::path(post, path = "/api/v1/plugins/{id}/review", tag = "plugins", operation_id = "review_plugin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id.")),
    request_body = ReviewRequest,
    responses(
        (status = 200, description = "Recorded.", body = ReviewResult),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin, or the reviewer's own plugin.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 409, description = "`conflict`: nothing pending, a concurrent review, or a package that no longer matches its checksum.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: decision or notes (required to reject), or a manifest failing the checklist now.", body = ErrorBody)
    ))]
fn review_plugin() {}

/// The account with an email address (admins only): tier in force and paid, comp, seats,
/// creation, last sign-in or refresh, open sessions, suspension. Recorded in the audit log.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", operation_id = "admin_users",
    security(("bearer" = [])),
    params(("email" = String, Query, description = "The address (exact; case and surrounding spaces ignored).")),
    responses(
        (status = 200, description = "The account, if any (none or one).", body = AdminUsers),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin (or origin); `account_suspended`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `email` missing or malformed.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn admin_users() {}

/// Suspends an account (admins only; never one's own): its requests answer 403
/// `account_suspended` from the next one on, its sockets close (4003), and login and refresh
/// are refused. Idempotent (a second suspension keeps the first time). Recorded.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/suspend", tag = "admin", operation_id = "admin_suspend",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id.")),
    responses(
        (status = 200, description = "The account now.", body = AdminUser),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin (or origin); `account_suspended`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such account.", body = ErrorBody),
        (status = 409, description = "`conflict`: one's own account.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn admin_suspend() {}

/// Lifts a suspension (admins only): the account's tokens and sessions work again. Idempotent.
/// Recorded.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/unsuspend", tag = "admin", operation_id = "admin_unsuspend",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id.")),
    responses(
        (status = 200, description = "The account now.", body = AdminUser),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin (or origin); `account_suspended`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such account.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn admin_unsuspend() {}

/// Comps a tier (admins only): `pro`, `power` or `team` until `until` (in the future, at most
/// 366 days away), replacing any earlier comp. While it lasts the tier in force is the higher
/// of the comp and the paid tier, at every gate; then the paid tier applies again. Recorded.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/comp", tag = "admin", operation_id = "admin_comp",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id.")),
    request_body = CompRequest,
    responses(
        (status = 200, description = "The account now.", body = AdminUser),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin (or origin); `account_suspended`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such account.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `tier` or `until`.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn admin_comp() {}

/// The plugin review queue (admins only; the same queue as `GET /plugins/review/pending`):
/// manifests, checklist figures, full agent declarations and a download link each. Decide with
/// `POST /plugins/{id}/review`.
#[utoipa::path(get, path = "/api/v1/admin/plugins/pending", tag = "admin", operation_id = "admin_pending_plugins",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Versions waiting for review, oldest first.", body = PendingReviews),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin (or origin); `account_suspended`.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn admin_pending_plugins() {}

/// Developer payouts per UTC month (admins only), newest month first (the last 24 months with
/// any): each month's status (`paid` when all are), totals and payouts.
#[utoipa::path(get, path = "/api/v1/admin/payouts", tag = "admin", operation_id = "admin_payouts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Payouts by month.", body = AdminPayouts),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin (or origin); `account_suspended`.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn admin_payouts() {}

/// The audit log (admins only): every admin action (lookup, suspend, unsuspend, comp, plugin
/// review) with who, what, target and when, newest first (200 entries).
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", operation_id = "admin_audit",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The newest entries.", body = AuditLog),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin (or origin); `account_suspended`.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn admin_audit() {}

/// Installs an approved plugin and returns a signed download link (10 minutes, this user
/// only). A paid plugin is charged to the buyer's saved card on their first install only.
/// Installing again is harmless.
#[utoipa::path(post, path = "/api/v1/plugins/{id}/install", tag = "plugins", operation_id = "install_plugin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id.")),
    request_body(content = Option<PluginInstallRequest>, description = "Optional; when sent, `plugin_id` must be the path's id."),
    responses(
        (status = 200, description = "Installed.", body = PluginInstalled),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 402, description = "`payment_required`: no saved card, or the charge was declined; nothing installed.", body = ErrorBody),
        (status = 403, description = "`tier_required` (below Power) or `forbidden` (origin).", body = ErrorBody),
        (status = 404, description = "`not_found`: no approved plugin with this id.", body = ErrorBody),
        (status = 409, description = "`conflict`: `price_cents` is not the live price (it changed since the buyer saw it); nothing charged.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `plugin_id` differs from the path, or `price_cents` is missing for a purchase.", body = ErrorBody),
        (status = 502, description = "`upstream_unavailable`: Stripe refused the request.", body = ErrorBody),
        (status = 503, description = "`upstream_unavailable`: Stripe is unavailable or not configured.", body = ErrorBody)
    ))]
fn install_plugin() {}

/// Uninstalls a plugin (any tier) and removes the caller's rating of it.
#[utoipa::path(delete, path = "/api/v1/plugins/{id}/install", tag = "plugins", operation_id = "uninstall_plugin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id.")),
    responses(
        (status = 200, description = "Uninstalled.", body = Ok),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden` (origin).", body = ErrorBody),
        (status = 404, description = "`not_found`: not installed.", body = ErrorBody)
    ))]
fn uninstall_plugin() {}

/// A plugin package, with the `token` of a download link issued to the caller.
#[utoipa::path(get, path = "/api/v1/plugins/{id}/package", tag = "plugins", operation_id = "download_plugin",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Plugin id."),
        ("token" = Option<String>, Query, description = "The signed token of the `download_url`.")
    ),
    responses(
        (status = 200, description = "The package (`X-Checksum`: its SHA-256).", content_type = "application/zip", body = Vec<u8>),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: missing, tampered, expired or another user's token, or one for another plugin.", body = ErrorBody),
        (status = 404, description = "`not_found`: the version no longer exists.", body = ErrorBody)
    ))]
fn download_plugin() {}

/// Rates a plugin 1–5 (installed users only; rating again replaces the rating). The average
/// is exact over all ratings, rounded to hundredths.
#[utoipa::path(post, path = "/api/v1/plugins/{id}/rating", tag = "plugins", operation_id = "rate_plugin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id.")),
    request_body = RatingRequest,
    responses(
        (status = 200, description = "Recorded.", body = RatingResult),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`tier_required` (below Power), or `forbidden`: not installed, the caller's own plugin (or origin).", body = ErrorBody),
        (status = 404, description = "`not_found`: no approved plugin with this id.", body = ErrorBody),
        (status = 409, description = "`conflict`: the plugin was uninstalled while the rating was written.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `rating`.", body = ErrorBody)
    ))]
fn rate_plugin() {}

/// The caller's earnings as a developer, per UTC month, with each month's payout status.
#[utoipa::path(get, path = "/api/v1/plugins/earnings", tag = "plugins", operation_id = "plugin_earnings",
    security(("bearer" = [])),
    params(("period" = Option<String>, Query, pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$", description = "Only this month (`YYYY-MM`).")),
    responses(
        (status = 200, description = "Newest month first.", body = EarningsResponse),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden` (origin).", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `period`.", body = ErrorBody)
    ))]
fn plugin_earnings() {}

/// Sets the Stripe Connect account the caller's payouts go to. Payouts of closed months run
/// monthly (a cron), once per developer and month.
#[utoipa::path(put, path = "/api/v1/plugins/earnings/account", tag = "plugins", operation_id = "set_payout_account",
    security(("bearer" = [])),
    request_body = PayoutAccountRequest,
    responses(
        (status = 200, description = "Saved.", body = Ok),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden` (origin).", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `stripe_account_id`.", body = ErrorBody)
    ))]
fn set_payout_account() {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::routes::{Access, ROUTES};

    const COMMITTED: &str = include_str!("../../contract/openapi.json");

    #[test]
    fn the_committed_document_matches_the_rust_types() {
        assert!(
            COMMITTED == document_json(),
            "contract/openapi.json is out of date: run scripts/gen-contract.sh"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1() {
        let doc: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
    }

    #[test]
    fn free_form_objects_say_they_take_any_keys() {
        let doc: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        let ctx = &doc["components"]["schemas"]["ChatContext"]["properties"];
        assert_eq!(ctx["user_profile"]["additionalProperties"], true);
        assert_eq!(ctx["recent_tasks"]["items"]["additionalProperties"], true);
        // Objects with declared properties keep what they said.
        assert_eq!(
            doc["components"]["schemas"]["ChatContext"]["additionalProperties"],
            false
        );
    }

    fn operations() -> BTreeSet<(String, String)> {
        let doc = document();
        let mut ops = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("DELETE", &item.delete),
            ] {
                if op.is_some() {
                    ops.insert((method.to_owned(), path.clone()));
                }
            }
        }
        ops
    }

    #[test]
    fn every_public_route_is_documented_and_nothing_else() {
        let routes: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.as_str().to_owned(), r.path.to_owned()))
            .collect();
        assert_eq!(routes, operations());
    }

    #[test]
    fn protected_routes_and_only_they_declare_the_bearer_scheme() {
        let doc = document();
        for r in ROUTES {
            let item = &doc.paths.paths[r.path];
            let op = match r.method.as_str() {
                "GET" => item.get.as_ref(),
                "POST" => item.post.as_ref(),
                "PUT" => item.put.as_ref(),
                _ => item.delete.as_ref(),
            }
            .unwrap();
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            assert_eq!(secured, r.access != Access::Public, "{}", r.path);
            let codes: Vec<&String> = op.responses.responses.keys().collect();
            if r.access != Access::Public {
                assert!(
                    codes.iter().any(|c| *c == "401"),
                    "{} documents 401",
                    r.path
                );
            }
        }
    }
}

/// Answers a message: the intent is classified, the matching agent(s) run their tools on the
/// request's `context`, and the reply comes back with the `actions` the app should apply.
/// In `plan` mode the answer is an `ExecutionPlan` of template ids instead.
#[utoipa::path(post, path = "/api/v1/chat", tag = "chat", operation_id = "chat",
    security(("bearer" = [])),
    request_body = ChatRequest,
    responses(
        (status = 200, description = "`ChatResponse` (direct) or `ExecutionPlan` (plan).",
            body = inline(ChatOrPlan)),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`tier_required`: a `provider` beyond the tier's `providers` allowance (free: the default only), or no enabled agent (`agents`); or `forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: message or context out of bounds, or a `provider` or `model` this server does not offer.", body = ErrorBody),
        (status = 502, description = "`upstream_unavailable`: the model's answer was unusable.", body = ErrorBody),
        (status = 503, description = "`llm_not_configured`, or `upstream_unavailable`: the model is unreachable, overloaded or too slow.", body = ErrorBody)
    ))]
fn chat() {}

/// Streaming chat over a WebSocket (`Upgrade: websocket`). Authenticate with the bearer header
/// or, where headers cannot be set (browsers), a single-use `ticket` from `POST /auth/ws-ticket`.
/// Text frames of JSON. The client sends a `ChatRequest` (no `type` key) to start a request,
/// `{"type":"cancel"}`, `{"type":"resume","request_id","after"}` to get the rest of a stream
/// after reconnecting, or `{"type":"ping"}` (answered `{"type":"pong"}`). The server sends
/// `{"type":"started","request_id"}`, `{"type":"token","request_id","seq","text"}`…,
/// `{"type":"ping"}` every 30 s while a request runs, `{"type":"error","code","message"}`, and
/// finally `{"type":"done","done":true,"request_id","response","actions"}` (`cancelled`, `plan`
/// when they apply). One request at a time per socket (another is refused with `conflict`);
/// each request counts against the per-minute allowance. Every socket of the user (this one and
/// `GET /sync/stream`) also receives the user's batch progress (`POST /batches`):
/// `{"type":"batch_item","batch_id","index","output","actions","error"?}` as each item ends and
/// `{"type":"batch_done","batch_id","status","total","completed","failed"}` once.
#[utoipa::path(get, path = "/api/v1/chat/stream", tag = "chat", operation_id = "chat_stream",
    security(("bearer" = []), ()),
    params(("ticket" = Option<String>, Query, nullable = false,
        description = "A ticket from `POST /auth/ws-ticket`, when no bearer header is sent.")),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol."),
        (status = 401, description = "`unauthorized`: no valid token or ticket (a ticket works once).", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 426, description = "`upgrade_required`: not a WebSocket handshake.", body = ErrorBody)
    ))]
fn chat_stream() {}

/// Live change notices over a WebSocket (`Upgrade: websocket`), with the same authentication as
/// `GET /chat/stream`. After a record, backup or vector change of the user is committed — from
/// any device — every open socket of the user (this one, and chat sockets too) receives
/// `{"type":"changed","kind":"record"|"backup"|"vector","cursor":…}`: records' `cursor` is the
/// change's listing position (`<updated_at>.<id>`), backups' `<created_at>.<id>`, vectors' the
/// time of the change. Pull with your own last cursor until you have it. The client may send
/// `{"type":"ping"}` (answered `{"type":"pong"}`); other frames get an error frame. Revoking the
/// session (logout, logout-all) sends an `unauthorized` error frame and closes the socket (4001).
/// Batch progress arrives here too: `{"type":"batch_item",…}` and `{"type":"batch_done",…}` (see
/// `GET /chat/stream`).
#[utoipa::path(get, path = "/api/v1/sync/stream", tag = "storage", operation_id = "sync_stream",
    security(("bearer" = []), ()),
    params(("ticket" = Option<String>, Query, nullable = false,
        description = "A ticket from `POST /auth/ws-ticket`, when no bearer header is sent.")),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol."),
        (status = 401, description = "`unauthorized`: no valid token or ticket, or a revoked session.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 426, description = "`upgrade_required`: not a WebSocket handshake.", body = ErrorBody)
    ))]
fn sync_stream() {}

/// The caller's exact usage and limits, for the app's storage meter: cloud storage (records and
/// vectors), backups (stored backups and the parts of open uploads), and this minute's
/// requests (after this one). `limit_bytes` is `null` when unlimited.
#[utoipa::path(get, path = "/api/v1/usage", tag = "storage", operation_id = "usage",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Usage and limits.", body = UsageReport),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn usage() {}

/// The two shapes `POST /chat` answers with.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
enum ChatOrPlan {
    /// `direct` mode.
    Response(ChatResponse),
    /// `plan` mode.
    Plan(ExecutionPlan),
}

/// The playbooks the caller's tier may run.
#[utoipa::path(get, path = "/api/v1/plans/playbook", tag = "plans", operation_id = "list_playbooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The playbooks the caller's tier may run: execution plans, each with its `name`, `description` and `min_tier`.", body = [PlaybookPlan]),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody)
    ))]
fn list_playbooks() {}

/// One playbook.
#[utoipa::path(get, path = "/api/v1/plans/playbook/{id}", tag = "plans", operation_id = "get_playbook",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The playbook's id.")),
    responses(
        (status = 200, description = "The playbook's execution plan, with its `name`, `description` and `min_tier`.", body = PlaybookPlan),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`tier_required`: above the caller's tier; or `forbidden` (origin).", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody)
    ))]
fn get_playbook() {}

/// Runs one `llm` step of a plan: the server renders the step's template with `variables`
/// (checked against the template) and runs it, through the template's agent when it has one.
#[utoipa::path(post, path = "/api/v1/plans/run-step", tag = "plans", operation_id = "run_plan_step",
    security(("bearer" = [])),
    request_body = RunStepRequest,
    responses(
        (status = 200, description = "The step's output and any actions.", body = RunStepResponse),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`tier_required`: a playbook above the caller's tier, a plan naming an agent the caller has not enabled (`agents`), or a `provider` beyond the tier's allowance (`providers`); or `forbidden` (origin).", body = ErrorBody),
        (status = 404, description = "`not_found`: no such plan.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: step index, a data step, or variables; or a `provider` or `model` this server does not offer.", body = ErrorBody),
        (status = 502, description = "`upstream_unavailable`: the model's answer was unusable.", body = ErrorBody),
        (status = 503, description = "`llm_not_configured` or `upstream_unavailable`.", body = ErrorBody)
    ))]
fn run_plan_step() {}

/// The LLM providers and models the caller's tier may name in `ChatRequest.provider` and
/// `.model` (and `RunStepRequest`): the server's default first. Free users (`providers: 1`) get
/// the default provider only; paid tiers every configured one.
#[utoipa::path(get, path = "/api/v1/providers", tag = "chat", operation_id = "list_providers",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The providers the caller may use.", body = ProvidersResponse),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn list_providers() {}

/// Every agent of the server, with its display title and whether the caller's chat may route
/// to it. Without a choice of their own, free users have `task_agent`,
/// `note_agent` and `project_agent`; paid tiers every agent.
#[utoipa::path(get, path = "/api/v1/agents", tag = "chat", operation_id = "list_agents",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The agents, in the server's order.", body = AgentsResponse),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn list_agents() {}

/// Chooses the agents the caller's chat may route to (replacing the current choice): names from
/// `GET /agents`, each once, at least one. Free users may enable at most 3 (the tier matrix's
/// `agents`); paid tiers any number. Answers the new listing.
#[utoipa::path(put, path = "/api/v1/agents/enabled", tag = "chat", operation_id = "set_enabled_agents",
    security(("bearer" = [])),
    request_body = EnableAgentsRequest,
    responses(
        (status = 200, description = "The agents with the new choice.", body = AgentsResponse),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`tier_required` (`agents`): more agents than the tier allows; or `forbidden` (origin).", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: no agent, or an unknown, overlong or repeated name (`agents[i]`).", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody)
    ))]
fn set_enabled_agents() {}

/// Stores up to 100 vectors (all or none). Each item's `checksum` is verified against its
/// decoded `blob`; all of a user's vectors have one dimension (a different one is a 422 until
/// they are deleted); without `values`, a 32-dimension vector derived from the blob's SHA-256
/// is stored, which only an identical blob finds.
#[utoipa::path(post, path = "/api/v1/storage/vectors/upsert", tag = "vectors", operation_id = "upsert_vectors",
    security(("bearer" = [])),
    request_body = VectorUpsertRequest,
    responses(
        (status = 200, description = "Stored.", body = VectorUpserted),
        (status = 400, description = "`checksum_mismatch` (nothing stored) or `malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`tier_required` (free tier), `quota_exceeded`, or `forbidden` (origin).", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: ids, values, blobs, checksums, batch size or dimension.", body = ErrorBody)
    ))]
fn upsert_vectors() {}

/// The caller's `top_k` vectors nearest `vector` (or `query_blob`'s derived vector) by cosine
/// similarity, best first. A user with no vectors gets no results.
#[utoipa::path(post, path = "/api/v1/storage/vectors/search", tag = "vectors", operation_id = "search_vectors",
    security(("bearer" = [])),
    request_body = VectorSearchRequest,
    responses(
        (status = 200, description = "Best first.", body = VectorSearchResponse),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`tier_required` (free tier) or `forbidden` (origin).", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: query, `top_k` or dimension.", body = ErrorBody)
    ))]
fn search_vectors() {}

/// Deletes vectors by id (unknown ids are ignored).
#[utoipa::path(delete, path = "/api/v1/storage/vectors", tag = "vectors", operation_id = "delete_vectors",
    security(("bearer" = [])),
    request_body = VectorDeleteRequest,
    responses(
        (status = 200, description = "Deleted.", body = Ok),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden` (origin).", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: ids.", body = ErrorBody)
    ))]
fn delete_vectors() {}

/// A `batch_item` socket frame (documentation only): one item of a batch ended.
#[derive(utoipa::ToSchema)]
struct BatchItemFrame {
    /// `batch_item`.
    r#type: String,
    /// The batch.
    batch_id: String,
    /// The item's index.
    index: u32,
    /// The output of the plan's last `llm` step (sanitized; empty when the item failed).
    output: String,
    /// The actions of every `llm` step.
    actions: Vec<PlanAction>,
    /// Why the item failed, when it did.
    error: Option<BatchItemError>,
}

/// A `batch_done` socket frame (documentation only): the batch ended.
#[derive(utoipa::ToSchema)]
struct BatchDoneFrame {
    /// `batch_done`.
    r#type: String,
    /// The batch.
    batch_id: String,
    /// `done` or `cancelled`.
    status: BatchState,
    /// Its items.
    total: u32,
    /// Items that ended.
    completed: u32,
    /// Items among them that failed.
    failed: u32,
}

/// Runs a playbook (`playbook_id`) — or, with the `batch_builder` feature (power, team), custom
/// `steps` from template ids, checked like any plan — once per item (1–100 items), in the
/// caller's home, 3 items at a time. Every item's variables are checked before anything runs
/// (each `llm` step gets those of its template; a step with `data_from_step` gets the earlier
/// step's output as `previous_output`). Each item takes one unit of the per-minute allowance
/// before it runs; an item the limit refuses fails with its own `rate_limited` error and the
/// batch goes on. Progress goes to every socket of the user (`batch_item`, then `batch_done`).
#[utoipa::path(post, path = "/api/v1/batches", tag = "batches", operation_id = "start_batch",
    security(("bearer" = [])),
    request_body = BatchRequest,
    responses(
        (status = 202, description = "Started.", body = BatchStarted),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`tier_required`: custom `steps` without `batch_builder`, a playbook above the tier, an agent the caller has not enabled (`agents`), or a `provider` beyond the tier's allowance (`providers`); or `forbidden` (origin).", body = ErrorBody),
        (status = 404, description = "`not_found`: no such playbook.", body = ErrorBody),
        (status = 409, description = "`conflict`: as many batches running as the tier's `batch_active` allows (free 2, pro 10).", body = ErrorBody),
        (status = 413, description = "`payload_too_large` (1 MiB).", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: not exactly one of `playbook_id` and `steps`, 0 or more than 100 `items`, bad `steps` (1–10), an item's variables (`items[i].variables.<name>`), or a `provider` or `model` this server does not offer.", body = ErrorBody)
    ))]
fn start_batch() {}

/// The caller's batches of the last day, newest first: those the home holds with their
/// progress, and those whose results are gone as `lost`.
#[utoipa::path(get, path = "/api/v1/batches", tag = "batches", operation_id = "list_batches",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The batches.", body = BatchList),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody)
    ))]
fn list_batches() {}

/// A batch and its results so far. Results expire 10 minutes after the batch ends; after that,
/// or once the home was evicted from memory, a batch submitted within the last day is `lost`
/// (run it again) and any other id is 404.
#[utoipa::path(get, path = "/api/v1/batches/{id}", tag = "batches", operation_id = "get_batch",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The batch's id.")),
    responses(
        (status = 200, description = "The batch.", body = BatchView),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such batch of the caller's.", body = ErrorBody)
    ))]
fn get_batch() {}

/// Cancels a running batch: its running upstream calls are aborted and no further item starts;
/// the results so far stay. Cancelling an ended batch changes nothing. Answers the batch.
#[utoipa::path(delete, path = "/api/v1/batches/{id}", tag = "batches", operation_id = "cancel_batch",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The batch's id.")),
    responses(
        (status = 200, description = "The batch, `cancelled` if it was running.", body = BatchView),
        (status = 401, description = "`unauthorized`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: browser origin not allowed.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such batch of the caller's.", body = ErrorBody)
    ))]
fn cancel_batch() {}
