//! `/api/v1/chat` and `/api/v1/plans/*`: parse, hand to the orchestrator, serialise. The
//! orchestrator sanitizes everything it answers.

use shared::api::{ChatRequest, PlaybookPlan, RunStepRequest};
use shared::chat::orchestrator::{Orchestrated, Orchestrator};
use shared::ports::Clock;
use shared::{AppError, AppResult};
use worker::{Headers, Method, Request, RequestInit, Response};

use crate::adapters::SystemClock;
use crate::chat_session::USER_HEADER;
use crate::http::{json, Ctx};
use crate::services::{brain, llm};
use crate::state::CHAT_SESSION;

/// `POST /chat` → `ChatResponse` (direct) or `ExecutionPlan` (plan).
pub async fn chat(mut ctx: Ctx) -> AppResult<Response> {
    let req: ChatRequest = ctx.json_body().await?;
    let llm = llm(&ctx);
    let orchestrator = Orchestrator::new(brain(), &llm, SystemClock.now_ms());
    match orchestrator.orchestrate(&req).await? {
        Orchestrated::Response(r) => json(200, &r),
        Orchestrated::Plan(p) => json(200, &p),
    }
}

/// `GET /plans/playbook` → `ExecutionPlan[]`: the playbooks of the caller's tier.
pub async fn list_playbooks(ctx: Ctx) -> AppResult<Response> {
    let tier = ctx.principal()?.tier;
    let plans: Vec<PlaybookPlan> = brain()
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
        &PlaybookPlan::from(brain().playbook(ctx.param("id"), tier)?),
    )
}

/// `POST /plans/run-step` → `{output, actions}`.
pub async fn run_step(mut ctx: Ctx) -> AppResult<Response> {
    let req: RunStepRequest = ctx.json_body().await?;
    let tier = ctx.principal()?.tier;
    let llm = llm(&ctx);
    let orchestrator = Orchestrator::new(brain(), &llm, SystemClock.now_ms());
    let out = orchestrator
        .run_step(&req.plan_id, req.step_index, &req.variables, tier)
        .await?;
    json(200, &out)
}

/// `GET /chat/stream`: hands the (authenticated) WebSocket handshake to the caller's
/// `ChatSession` object, which answers 101 and keeps the socket.
pub async fn stream(ctx: Ctx) -> AppResult<Response> {
    let upgrade = ctx.header("Upgrade").unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(AppError::UpgradeRequired);
    }
    let user_id = ctx.principal()?.user_id.to_string();
    let platform = |what: &str, e: worker::Error| AppError::internal(format!("{what}: {e}"));
    let ns = ctx
        .env
        .durable_object(CHAT_SESSION)
        .map_err(|e| platform("chat session", e))?;
    let stub = ns
        .id_from_name(&user_id)
        .and_then(|id| id.get_stub())
        .map_err(|e| platform("chat session", e))?;
    let headers = Headers::new();
    for (name, value) in [
        ("Upgrade", "websocket"),
        (USER_HEADER, user_id.as_str()),
        ("X-Request-Id", ctx.request_id.as_str()),
    ] {
        headers
            .set(name, value)
            .map_err(|e| platform("header", e))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let req = Request::new_with_init("https://chat-session.internal/connect", &init)
        .map_err(|e| platform("request", e))?;
    stub.fetch_with_request(req)
        .await
        .map_err(|e| platform("chat session fetch", e))
}
