//! `/api/v1/chat` and `/api/v1/plans/*`: parse, hand to the orchestrator, serialise. The
//! orchestrator sanitizes everything it answers.

use shared::api::{ChatRequest, PlaybookList, RunStepRequest};
use shared::chat::orchestrator::{Orchestrated, Orchestrator};
use shared::ports::Clock;
use shared::AppResult;
use worker::Response;

use crate::adapters::SystemClock;
use crate::http::{json, Ctx};
use crate::services::{brain, llm};

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

/// `GET /plans/playbook` → the playbooks of the caller's tier.
pub async fn list_playbooks(ctx: Ctx) -> AppResult<Response> {
    let tier = ctx.principal()?.tier;
    json(
        200,
        &PlaybookList {
            playbooks: brain().playbooks_for(tier),
        },
    )
}

/// `GET /plans/playbook/{id}` → the playbook.
pub async fn get_playbook(ctx: Ctx) -> AppResult<Response> {
    let tier = ctx.principal()?.tier;
    json(200, &brain().playbook(ctx.param("id"), tier)?)
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
