//! The request pipeline and the routing over [`shared::routes::ROUTES`] — the one list of every
//! endpoint, its method, and who may call it.
//!
//! Pipeline, in order: request id → configuration → CORS → route → authenticate → admit →
//! handler → error mapping → response headers → access log. Every response, error or not,
//! passes through [`serve`], so every one carries `X-Request-Id` and, for allowed origins, the
//! CORS headers. Unknown paths are JSON 404; known paths with another method are 405 with
//! `Allow`. Protected routes are authenticated here, before their handler runs, so no handler
//! can forget it; `User` routes are admitted here too (one call to the caller's home), while
//! `UserAtHome` handlers make that one call themselves (admission included).

use std::pin::Pin;

use futures_util::Future;
use shared::home::ops::Admit;
use shared::routes::{Access, Method, Operation, ROUTES};
use shared::{AppError, AppResult};
use tracing::Instrument;
use worker::{Env, Request, Response};

use crate::app::App;
use crate::handlers;
use crate::http::{self, error_response, Ctx};
use crate::state;

type HandlerFuture = Pin<Box<dyn Future<Output = AppResult<Response>>>>;
type Handler = fn(Ctx) -> HandlerFuture;

/// The handler of each operation. Exhaustive: a new [`Operation`] needs a handler to compile.
fn handler(op: Operation) -> Handler {
    match op {
        Operation::Health => |ctx| Box::pin(handlers::health::get(ctx)),
        Operation::OpenApi => |ctx| Box::pin(handlers::health::openapi(ctx)),
        Operation::Register => |ctx| Box::pin(handlers::auth::register(ctx)),
        Operation::Login => |ctx| Box::pin(handlers::auth::login(ctx)),
        Operation::Refresh => |ctx| Box::pin(handlers::auth::refresh(ctx)),
        Operation::Logout => |ctx| Box::pin(handlers::auth::logout(ctx)),
        Operation::LogoutAll => |ctx| Box::pin(handlers::auth::logout_all(ctx)),
        Operation::Me => |ctx| Box::pin(handlers::auth::me(ctx)),
        Operation::WsTicket => |ctx| Box::pin(handlers::auth::ws_ticket(ctx)),
        Operation::VerifyEmail => |ctx| Box::pin(handlers::accounts::verify_email(ctx)),
        Operation::ResendVerification => {
            |ctx| Box::pin(handlers::accounts::resend_verification(ctx))
        }
        Operation::ForgotPassword => |ctx| Box::pin(handlers::accounts::forgot_password(ctx)),
        Operation::ResetPassword => |ctx| Box::pin(handlers::accounts::reset_password(ctx)),
        Operation::ChangePassword => |ctx| Box::pin(handlers::accounts::change_password(ctx)),
        Operation::ListSessions => |ctx| Box::pin(handlers::accounts::sessions(ctx)),
        Operation::RevokeSession => |ctx| Box::pin(handlers::accounts::revoke_session(ctx)),
        Operation::SecurityEvents => |ctx| Box::pin(handlers::accounts::events(ctx)),
        Operation::DeleteAccount => |ctx| Box::pin(handlers::accounts::delete_account(ctx)),
        Operation::ExportAccount => |ctx| Box::pin(handlers::accounts::export(ctx)),
        Operation::ExportBlob => |ctx| Box::pin(handlers::accounts::export_blob(ctx)),
        Operation::LoginMfa => |ctx| Box::pin(handlers::mfa::login(ctx)),
        Operation::MfaSetup => |ctx| Box::pin(handlers::mfa::setup(ctx)),
        Operation::MfaEnable => |ctx| Box::pin(handlers::mfa::enable(ctx)),
        Operation::MfaDisable => |ctx| Box::pin(handlers::mfa::disable(ctx)),
        Operation::Tiers => |ctx| Box::pin(handlers::health::tiers(ctx)),
        Operation::Usage => |ctx| Box::pin(handlers::health::usage(ctx)),
        Operation::PutBackup => |ctx| Box::pin(handlers::backup::put(ctx)),
        Operation::GetBackup => |ctx| Box::pin(handlers::backup::latest(ctx)),
        Operation::BackupHistory => |ctx| Box::pin(handlers::backup::history(ctx)),
        Operation::DeleteBackup => |ctx| Box::pin(handlers::backup::delete(ctx)),
        Operation::BeginUpload => |ctx| Box::pin(handlers::backup::begin_upload(ctx)),
        Operation::UploadPart => |ctx| Box::pin(handlers::backup::upload_part(ctx)),
        Operation::CompleteUpload => |ctx| Box::pin(handlers::backup::complete_upload(ctx)),
        Operation::AbortUpload => |ctx| Box::pin(handlers::backup::abort_upload(ctx)),
        Operation::CreateRecord => |ctx| Box::pin(handlers::records::create(ctx)),
        Operation::ListRecords => |ctx| Box::pin(handlers::records::list(ctx)),
        Operation::GetRecord => |ctx| Box::pin(handlers::records::get(ctx)),
        Operation::UpdateRecord => |ctx| Box::pin(handlers::records::update(ctx)),
        Operation::DeleteRecord => |ctx| Box::pin(handlers::records::delete(ctx)),
        Operation::Checkout => |ctx| Box::pin(handlers::billing::checkout(ctx)),
        Operation::StripeWebhook => |ctx| Box::pin(handlers::billing::webhook(ctx)),
        Operation::GetSubscription => |ctx| Box::pin(handlers::billing::subscription(ctx)),
        Operation::CancelSubscription => |ctx| Box::pin(handlers::billing::cancel(ctx)),
        Operation::BillingPortal => |ctx| Box::pin(handlers::billing::portal(ctx)),
        Operation::Chat => |ctx| Box::pin(handlers::chat::chat(ctx)),
        Operation::ListPlugins => |ctx| Box::pin(handlers::plugins::list(ctx)),
        Operation::SubmitPlugin => |ctx| Box::pin(handlers::plugins::submit(ctx)),
        Operation::GetPlugin => |ctx| Box::pin(handlers::plugins::get(ctx)),
        Operation::SubmitPluginVersion => |ctx| Box::pin(handlers::plugins::submit_version(ctx)),
        Operation::PendingPluginReviews => |ctx| Box::pin(handlers::plugins::pending(ctx)),
        Operation::ReviewPlugin => |ctx| Box::pin(handlers::plugins::review(ctx)),
        Operation::InstallPlugin => |ctx| Box::pin(handlers::plugins::install(ctx)),
        Operation::UninstallPlugin => |ctx| Box::pin(handlers::plugins::uninstall(ctx)),
        Operation::DownloadPlugin => |ctx| Box::pin(handlers::plugins::package(ctx)),
        Operation::RatePlugin => |ctx| Box::pin(handlers::plugins::rate(ctx)),
        Operation::PluginEarnings => |ctx| Box::pin(handlers::plugins::earnings(ctx)),
        Operation::SetPayoutAccount => |ctx| Box::pin(handlers::plugins::set_payout_account(ctx)),
        Operation::UpsertVectors => |ctx| Box::pin(handlers::vectors::upsert(ctx)),
        Operation::SearchVectors => |ctx| Box::pin(handlers::vectors::search(ctx)),
        Operation::DeleteVectors => |ctx| Box::pin(handlers::vectors::delete(ctx)),
        Operation::ChatStream => |ctx| Box::pin(handlers::chat::stream(ctx)),
        Operation::SyncStream => |ctx| Box::pin(handlers::chat::sync_stream(ctx)),
        Operation::ListPlaybooks => |ctx| Box::pin(handlers::chat::list_playbooks(ctx)),
        Operation::GetPlaybook => |ctx| Box::pin(handlers::chat::get_playbook(ctx)),
        Operation::RunPlanStep => |ctx| Box::pin(handlers::chat::run_step(ctx)),
        Operation::ListProviders => |ctx| Box::pin(handlers::agents::providers(ctx)),
        Operation::ListAgents => |ctx| Box::pin(handlers::agents::list(ctx)),
        Operation::SetEnabledAgents => |ctx| Box::pin(handlers::agents::set_enabled(ctx)),
        Operation::AdminUsers => |ctx| Box::pin(handlers::admin::users(ctx)),
        Operation::AdminSuspend => |ctx| Box::pin(handlers::admin::suspend(ctx)),
        Operation::AdminUnsuspend => |ctx| Box::pin(handlers::admin::unsuspend(ctx)),
        Operation::AdminComp => |ctx| Box::pin(handlers::admin::comp(ctx)),
        Operation::AdminPendingPlugins => |ctx| Box::pin(handlers::admin::pending_plugins(ctx)),
        Operation::AdminPayouts => |ctx| Box::pin(handlers::admin::payouts(ctx)),
        Operation::AdminAudit => |ctx| Box::pin(handlers::admin::audit(ctx)),
        Operation::StartBatch => |ctx| Box::pin(handlers::batches::start(ctx)),
        Operation::ListBatches => |ctx| Box::pin(handlers::batches::list(ctx)),
        Operation::GetBatch => |ctx| Box::pin(handlers::batches::get(ctx)),
        Operation::CancelBatch => |ctx| Box::pin(handlers::batches::cancel(ctx)),
        Operation::CurrentTeam => |ctx| Box::pin(handlers::teams::current(ctx)),
        Operation::CreateTeamInvite => |ctx| Box::pin(handlers::teams::invite(ctx)),
        Operation::AcceptTeamInvite => |ctx| Box::pin(handlers::teams::accept(ctx)),
        Operation::DeleteTeamInvite => |ctx| Box::pin(handlers::teams::delete_invite(ctx)),
        Operation::RemoveTeamMember => |ctx| Box::pin(handlers::teams::remove_member(ctx)),
        Operation::SetTeamMemberRole => |ctx| Box::pin(handlers::teams::set_role(ctx)),
        Operation::SetTeamSeats => |ctx| Box::pin(handlers::teams::set_seats(ctx)),
        Operation::SetTeamSso => |ctx| Box::pin(handlers::sso::configure(ctx)),
        Operation::GetTeamSso => |ctx| Box::pin(handlers::sso::show(ctx)),
        Operation::DeleteTeamSso => |ctx| Box::pin(handlers::sso::remove(ctx)),
        Operation::SsoStart => |ctx| Box::pin(handlers::sso::start(ctx)),
        Operation::SsoCallback => |ctx| Box::pin(handlers::sso::callback(ctx)),
        Operation::SsoRedeem => |ctx| Box::pin(handlers::sso::redeem(ctx)),
    }
}

thread_local! {
    /// Path → indices into [`ROUTES`] (one path may serve several methods).
    static TABLE: matchit::Router<Vec<usize>> = {
        let mut paths: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, r) in ROUTES.iter().enumerate() {
            match paths.iter_mut().find(|(p, _)| *p == r.path) {
                Some((_, ids)) => ids.push(i),
                None => paths.push((r.path, vec![i])),
            }
        }
        let mut table = matchit::Router::new();
        for (path, ids) in paths {
            table.insert(path, ids).expect("route paths are valid and distinct");
        }
        table
    };
}

/// Serves one request. Never fails: every error becomes a JSON response.
pub async fn serve(req: Request, env: Env, wctx: worker::Context) -> Response {
    let started = js_sys::Date::now();
    let request_id = http::request_id(&req);
    // The raw name: `worker::Method` reports unknown methods as GET.
    let method = req.inner().method();
    let path = req.path();
    let origin = req.headers().get("Origin").ok().flatten();
    let shared = state::shared(&env);
    let origin_allowed = match (&shared, &origin) {
        (Ok(s), Some(o)) => {
            let own = req.url().map(|u| u.origin().ascii_serialization());
            s.cors.allows_from(o, own.as_deref().unwrap_or(""))
        }
        _ => false,
    };
    let span = tracing::info_span!("request", request_id = %request_id);
    let mut hops = None;

    let result = async {
        let shared = shared.map_err(|e| AppError::Internal(anyhow::Error::new(e)))?;
        if origin.is_some() && !origin_allowed {
            return Err(AppError::Forbidden("origin not allowed"));
        }
        if method == "OPTIONS" && origin.is_some() {
            return http::preflight();
        }
        let app = App::for_request(env, shared, std::rc::Rc::new(wctx));
        hops = Some(std::rc::Rc::clone(app.hops()));
        dispatch(Ctx::new(req, app, request_id.clone()), &method, &path).await
    }
    .instrument(span.clone())
    .await;
    let mut resp = result.unwrap_or_else(|e| {
        let _entered = span.enter();
        error_response(&e, &request_id)
    });
    let allowed_origin = origin.as_deref().filter(|_| origin_allowed);
    http::finish(&mut resp, &request_id, allowed_origin);
    let _entered = span.enter();
    http::access_log(
        &method,
        &path,
        resp.status_code(),
        started,
        &hops.unwrap_or_default(),
    );
    resp
}

/// Routes `ctx` to its handler.
async fn dispatch(mut ctx: Ctx, raw_method: &str, path: &str) -> AppResult<Response> {
    let method = Method::parse(raw_method);
    let found = TABLE.with(|t| {
        t.at(path).ok().map(|m| {
            let params: Vec<(String, String)> = m
                .params
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            (m.value.clone(), params)
        })
    });
    let Some((ids, params)) = found else {
        return Err(AppError::NotFound);
    };
    let Some(route) = ids
        .iter()
        .map(|&i| &ROUTES[i])
        .find(|r| Some(r.method) == method)
    else {
        let allowed: Vec<&'static str> = ids.iter().map(|&i| ROUTES[i].method.as_str()).collect();
        if raw_method == "OPTIONS" {
            // A non-CORS OPTIONS: say what the path supports.
            let mut resp = Response::empty()
                .map_err(AppError::internal)?
                .with_status(204);
            let _ = resp.headers_mut().set("Allow", &allowed.join(", "));
            return Ok(resp);
        }
        return Err(AppError::MethodNotAllowed { allowed });
    };
    ctx.params = params;
    if route.access == Access::Public {
        return handler(route.operation)(ctx).await;
    }
    ctx.caller = Some(match route.access {
        Access::UserOrTicket => http::bearer_or_ticket(&ctx).await?,
        _ => http::bearer(&ctx)?,
    });
    let seen = std::rc::Rc::clone(&ctx.seen);
    let request_id = ctx.request_id.clone();
    let result = async {
        if route.access == Access::User {
            shared::home::call(&ctx.home()?, &Admit {}).await?;
        }
        handler(route.operation)(ctx).await
    }
    .await;
    // Errors are rendered here so that they, too, carry the caller's rate-limit headers.
    let mut resp = result.unwrap_or_else(|e| error_response(&e, &request_id));
    if let Some(d) = seen.decision.get() {
        http::set_rate_headers(&mut resp, &d);
    }
    Ok(resp)
}
