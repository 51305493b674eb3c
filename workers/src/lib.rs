//! The Adiuva Cloud API worker: the cdylib Cloudflare runs.
//!
//! It adapts the platform-free core (`shared`) to Workers. Dependencies run one way: the entry
//! points here → [`routes`] (the pipeline and the route table) → [`handlers`] (thin
//! parse-call-serialize functions) → [`http`] (request context, auth, error mapping) → [`app`]
//! (the wiring of one event) → [`adapters`] (the core's ports over D1, R2, Durable Objects and
//! fetch). The `UserHome` Durable Object class ([`home`]) needs the worker's adapters and lives
//! here over the natively tested logic of the `durable-objects` crate, whose `RateLimiter`
//! class is re-exported so the runtime finds it.
//!
//! A cdylib has no public Rust API: its documentation is the private items'
//! (`cargo doc -p workers --document-private-items`), which the links above point at.
#![allow(rustdoc::private_intra_doc_links)]

mod adapters;
mod app;
mod handlers;
mod home;
mod http;
mod logging;
mod routes;
mod state;

pub use durable_objects::RateLimiter;
pub use home::UserHome;

use worker::{event, Context, Env, Request, Response, ScheduleContext, ScheduledEvent};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
    logging::init();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    Ok(routes::serve(req, env, ctx).await)
}

/// The cron of `wrangler.toml`: pays developers their share of closed periods, then runs the
/// bounded housekeeping jobs (`shared::housekeeping`). (Abandoned multipart uploads are aborted
/// by each user's home, on its own alarm.)
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    pay_developers(&env).await;
    housekeeping(&env).await;
}

async fn housekeeping(env: &Env) {
    let app = match app::App::for_object(env) {
        Ok(app) => app,
        Err(e) => return tracing::error!(error = %e, "housekeeping skipped: configuration"),
    };
    let parts = match app.housekeeping() {
        Ok(parts) => parts,
        Err(e) => return tracing::error!(error = ?e, "housekeeping skipped: bindings"),
    };
    let now = i64::try_from(worker::Date::now().as_millis()).unwrap_or(i64::MAX);
    let r = parts.service().run(now).await;
    tracing::info!(
        tickets = r.tickets,
        account_tokens = r.account_tokens,
        sso = r.sso,
        deletions = r.deletions,
        refresh_tokens = r.refresh_tokens,
        families = r.families,
        packages = r.packages,
        homes = r.homes,
        tombstones = r.tombstones,
        leftovers = r.leftovers,
        failed = r.failed.join(","),
        "housekeeping run finished"
    );
}

async fn pay_developers(env: &Env) {
    let payouts = async {
        let app = app::App::for_object(env).map_err(|e| shared::AppError::Internal(e.into()))?;
        app.marketplace(String::new())?
            .service()
            .run_payouts()
            .await
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
