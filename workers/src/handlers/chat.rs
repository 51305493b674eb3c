//! `/api/v1/chat`, `/api/v1/plans/*` and the WebSockets (`/chat/stream`, `/sync/stream`):
//! parse, hand to the orchestrator (which sanitizes everything it answers) or to the caller's
//! home (which keeps the sockets), serialise.

use shared::api::{ChatRequest, PlaybookPlan, RunStepRequest};
use shared::chat::orchestrator::{Orchestrated, Orchestrator};
use shared::home::{HOME_CONNECT_PATH, HOME_SESSION_HEADER, HOME_USER_HEADER};
use shared::ports::Clock;
use shared::{AppError, AppResult};
use worker::{Headers, Method, Request, RequestInit, Response};

use crate::adapters::SystemClock;
use crate::app::App;
use crate::http::{json, Ctx};
use crate::state::USER_HOME;

/// `POST /chat` → `ChatResponse` (direct) or `ExecutionPlan` (plan).
pub async fn chat(mut ctx: Ctx) -> AppResult<Response> {
    let req: ChatRequest = ctx.json_body().await?;
    let llm = ctx.app.llm();
    let orchestrator = Orchestrator::new(App::brain(), &llm, SystemClock.now_ms());
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

/// `POST /plans/run-step` → `{output, actions}`.
pub async fn run_step(mut ctx: Ctx) -> AppResult<Response> {
    let req: RunStepRequest = ctx.json_body().await?;
    let tier = ctx.principal()?.tier;
    let llm = ctx.app.llm();
    let orchestrator = Orchestrator::new(App::brain(), &llm, SystemClock.now_ms());
    let out = orchestrator
        .run_step(&req.plan_id, req.step_index, &req.variables, tier)
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
