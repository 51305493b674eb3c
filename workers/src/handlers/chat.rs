//! `/api/v1/chat`, `/api/v1/plans/*` and the WebSockets (`/chat/stream`, `/sync/stream`):
//! parse, hand to the orchestrator (which sanitizes everything it answers) or to the caller's
//! home (which keeps the sockets), serialise.

use shared::api::{ChatRequest, PlaybookPlan, RunStepRequest};
use shared::chat::orchestrator::{Orchestrated, Orchestrator};
use shared::home::ops::GetChatChoices;
use shared::home::{HOME_CONNECT_PATH, HOME_SESSION_HEADER, HOME_USER_HEADER};
use shared::ports::Clock;
use shared::{AppError, AppResult};
use worker::{Headers, Method, Request, RequestInit, Response};

use crate::adapters::SystemClock;
use crate::app::{App, ChatGrant};
use crate::http::{json, Ctx};
use crate::state::USER_HOME;

/// Admits the request at the caller's home (one hop) and answers its tier and enabled agents.
///
/// # Errors
/// The home's refusal (401, 429) or a failure to reach it.
pub async fn chat_grant(ctx: &Ctx) -> AppResult<ChatGrant> {
    let choices = shared::home::call(&ctx.home()?, &GetChatChoices {}).await?;
    let tier = ctx.principal()?.tier;
    ChatGrant::load(&ctx.app, tier, &choices).await
}

/// `POST /chat` → `ChatResponse` (direct) or `ExecutionPlan` (plan), on the provider and model
/// the request names (within the caller's tier), routed among the caller's enabled agents.
pub async fn chat(mut ctx: Ctx) -> AppResult<Response> {
    let grant = chat_grant(&ctx).await?;
    let req: ChatRequest = ctx.json_body().await?;
    req.validate()?;
    let llm =
        ctx.app
            .providers()
            .select(grant.tier, req.provider.as_deref(), req.model.as_deref())?;
    let orchestrator = Orchestrator::new(&grant.brain, &llm, SystemClock.now_ms())
        .with_enabled_agents(grant.enabled);
    match orchestrator.orchestrate(&req).await? {
        Orchestrated::Response(r) => json(200, &r),
        Orchestrated::Plan(p) => json(200, &p),
    }
}

/// `GET /plans/playbook` → `ExecutionPlan[]`: the playbooks of the caller's tier.
pub async fn list_playbooks(ctx: Ctx) -> AppResult<Response> {
    let tier = ctx.principal()?.tier;
    let plans: Vec<PlaybookPlan> = App::brain()
        .playbooks_for(tier)
        .into_iter()
        .map(PlaybookPlan::from)
        .collect();
    json(200, &plans)
}

/// `GET /plans/playbook/{id}` → the playbook's `ExecutionPlan`.
pub async fn get_playbook(ctx: Ctx) -> AppResult<Response> {
    let tier = ctx.principal()?.tier;
    json(
        200,
        &PlaybookPlan::from(App::brain().playbook(ctx.param("id"), tier)?),
    )
}

/// `POST /plans/run-step` → `{output, actions}` (403 for a step of a disabled agent).
pub async fn run_step(mut ctx: Ctx) -> AppResult<Response> {
    let grant = chat_grant(&ctx).await?;
    let req: RunStepRequest = ctx.json_body().await?;
    req.validate()?;
    let llm =
        ctx.app
            .providers()
            .select(grant.tier, req.provider.as_deref(), req.model.as_deref())?;
    let orchestrator = Orchestrator::new(&grant.brain, &llm, SystemClock.now_ms())
        .with_enabled_agents(grant.enabled);
    let out = orchestrator
        .run_step(&req.plan_id, req.step_index, &req.variables, grant.tier)
        .await?;
    json(200, &out)
}

/// `GET /chat/stream`: hands the (authenticated) WebSocket handshake to the caller's home,
/// which answers 101 and keeps the socket (chat requests and change notices).
pub async fn stream(ctx: Ctx) -> AppResult<Response> {
    connect(&ctx, "chat").await
}

/// `GET /sync/stream`: as [`stream`], for a socket that only receives change notices
/// (`{"type":"changed","kind","cursor"}`) after writes of the user's other devices.
pub async fn sync_stream(ctx: Ctx) -> AppResult<Response> {
    connect(&ctx, "sync").await
}

async fn connect(ctx: &Ctx, kind: &str) -> AppResult<Response> {
    let upgrade = ctx.header("Upgrade").unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(AppError::UpgradeRequired);
    }
    let caller = ctx.caller()?;
    let user_id = caller.user_id.to_string();
    let platform = |what: &str, e: worker::Error| AppError::internal(format!("{what}: {e}"));
    let ns = ctx
        .app
        .env()
        .durable_object(USER_HOME)
        .map_err(|e| platform("user home", e))?;
    let stub = ns
        .id_from_name(&user_id)
        .and_then(|id| id.get_stub())
        .map_err(|e| platform("user home", e))?;
    let headers = Headers::new();
    let sid = caller.sid.map(|s| s.to_string()).unwrap_or_default();
    for (name, value) in [
        ("Upgrade", "websocket"),
        (HOME_USER_HEADER, user_id.as_str()),
        (HOME_SESSION_HEADER, sid.as_str()),
        ("X-Request-Id", ctx.request_id.as_str()),
    ] {
        headers
            .set(name, value)
            .map_err(|e| platform("header", e))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let req = Request::new_with_init(
        &format!("https://home{HOME_CONNECT_PATH}?kind={kind}"),
        &init,
    )
    .map_err(|e| platform("request", e))?;
    ctx.app.hops().durable_object();
    let resp = stub
        .fetch_with_request(req)
        .await
        .map_err(|e| platform("user home fetch", e))?;
    if resp.status_code() == 401 {
        return Err(AppError::Unauthorized);
    }
    Ok(resp)
}
