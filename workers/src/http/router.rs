//! The route table — the one list of every endpoint, its method, and whether it needs a caller.
//!
//! Unknown paths are JSON 404; known paths with another method are 405 with `Allow`. Protected
//! routes are authenticated here, before their handler runs, so no handler can forget it.

use std::pin::Pin;

use futures_util::Future;
use shared::AppResult;
use worker::{Method, Response};

use super::{auth, Ctx};
use crate::handlers;

type HandlerFuture = Pin<Box<dyn Future<Output = AppResult<Response>>>>;
type Handler = fn(Ctx) -> HandlerFuture;

/// Who may call a route.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone.
    Public,
    /// A caller with a valid access token.
    User,
}

struct Route {
    method: Method,
    path: &'static str,
    access: Access,
    handler: Handler,
}

macro_rules! route {
    ($method:ident $path:literal $access:ident => $handler:path) => {
        Route {
            method: Method::$method,
            path: $path,
            access: Access::$access,
            handler: |ctx| Box::pin($handler(ctx)),
        }
    };
}

const ROUTES: &[Route] = &[
    route!(Get "/api/v1/health" Public => handlers::health::get),
    route!(Post "/api/v1/auth/register" Public => handlers::auth::register),
    route!(Post "/api/v1/auth/login" Public => handlers::auth::login),
    route!(Post "/api/v1/auth/refresh" Public => handlers::auth::refresh),
    route!(Post "/api/v1/auth/logout" Public => handlers::auth::logout),
    route!(Post "/api/v1/auth/logout-all" User => handlers::auth::logout_all),
    route!(Get "/api/v1/auth/me" User => handlers::auth::me),
    route!(Post "/api/v1/auth/ws-ticket" User => handlers::auth::ws_ticket),
    // Dev only (404 in prod): CPU benchmarks timed from outside by scripts/bench.sh.
    route!(Get "/api/v1/_bench/{op}" Public => handlers::bench::run),
];

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

fn method_name(m: &Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Patch => "PATCH",
        Method::Head => "HEAD",
        Method::Options => "OPTIONS",
        _ => "OTHER",
    }
}

/// Routes `ctx` to its handler.
pub async fn dispatch(mut ctx: Ctx) -> AppResult<Response> {
    let path = ctx.req.path();
    let method = ctx.req.method();
    let found = TABLE.with(|t| {
        t.at(&path).ok().map(|m| {
            let params: Vec<(String, String)> = m
                .params
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            (m.value.clone(), params)
        })
    });
    let Some((ids, params)) = found else {
        return Err(shared::AppError::NotFound);
    };
    let Some(route) = ids.iter().map(|&i| &ROUTES[i]).find(|r| r.method == method) else {
        let allowed: Vec<&'static str> = ids
            .iter()
            .map(|&i| method_name(&ROUTES[i].method))
            .collect();
        if method == Method::Options {
            // A non-CORS OPTIONS: say what the path supports.
            let mut resp = Response::empty()
                .map_err(shared::AppError::internal)?
                .with_status(204);
            let _ = resp.headers_mut().set("Allow", &allowed.join(", "));
            return Ok(resp);
        }
        return Err(shared::AppError::MethodNotAllowed { allowed });
    };
    ctx.params = params;
    if route.access == Access::User {
        ctx.principal = Some(auth::authenticate(&ctx)?);
    }
    (route.handler)(ctx).await
}
