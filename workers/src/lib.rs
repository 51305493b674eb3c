//! The Adiuva Cloud API worker: the cdylib Cloudflare runs.
//!
//! It adapts the platform-free core (`shared`) to Workers: [`http`] is the request pipeline
//! (request ids, CORS, routing, auth, error mapping, access logs), [`handlers`] are thin
//! parse-call-serialize functions, and [`adapters`] implement the core's ports over D1, R2,
//! Durable Objects and fetch. The Durable Object classes come from the `durable-objects` crate
//! and are re-exported here so the runtime finds them — except `ChatSession`, which needs the
//! worker's adapters and lives in [`chat_session`] over the natively tested session logic.

mod adapters;
mod chat_session;
mod handlers;
mod http;
mod logging;
mod services;
mod state;

pub use chat_session::ChatSession;
pub use durable_objects::{RateLimiter, VectorIndex};

use worker::{event, Context, Env, Request, Response, ScheduleContext, ScheduledEvent};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
    logging::init();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    Ok(http::serve(req, env).await)
}

/// Housekeeping on the cron of `wrangler.toml`: aborts abandoned multipart uploads and pays
/// developers their share of closed periods. Each job runs even when the other fails.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let cleanup = async {
        let deps = services::BackupDeps::new(&env)?;
        deps.service().clean_up_uploads(&deps.uploads).await
    }
    .await;
    if let Err(e) = cleanup {
        tracing::error!(error = ?e, "scheduled cleanup failed");
    }
    let payouts = async {
        let shared = state::shared(&env).map_err(|e| shared::AppError::Internal(e.into()))?;
        let deps = services::MarketplaceDeps::for_env(&env, &shared.config, String::new())?;
        deps.service().run_payouts().await
    }
    .await;
    match payouts {
        Ok(report) => tracing::info!(
            paid = report.paid,
            failed = report.failed,
            "payout run finished"
        ),
        Err(e) => tracing::error!(error = ?e, "payout run failed"),
    }
}
