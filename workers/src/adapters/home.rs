//! The user's home — one `UserHome` Durable Object per user, named by the user id — as the
//! core's [`HomePort`]. One call is one round trip: `POST https://home/call` with a
//! [`HomeRequest`]; the answer carries the admission decision and the caller as the home knows
//! them ([`HomeSeen`]), which the pipeline reads for the rate-limit headers and the gates.

use std::cell::Cell;
use std::rc::Rc;

use async_trait::async_trait;
use shared::domain::UserId;
use shared::home::{HomePort, HomePrincipal, HomeRequest, HomeResponse, HOME_CALL_PATH};
use shared::rate_limit::RateDecision;
use shared::AppError;
use worker::{Method, ObjectNamespace, Request, RequestInit};

use super::Hops;

/// What the home said of the caller on the calls of one request, and whether the request was
/// admitted already (it is admitted once, by its first home call, whichever client makes it).
#[derive(Debug, Default)]
pub struct HomeSeen {
    /// The admission decision, once taken.
    pub decision: Cell<Option<RateDecision>>,
    /// The caller, once authorised.
    pub principal: Cell<Option<HomePrincipal>>,
    /// Whether a call took (or asked for) the admission already.
    pub admitted: Cell<bool>,
}

/// The home of one user, for one request (or one service task).
pub struct HomeClient {
    ns: ObjectNamespace,
    user: UserId,
    sid: Option<uuid::Uuid>,
    hops: Rc<Hops>,
    seen: Rc<HomeSeen>,
}

impl HomeClient {
    /// The home of the caller of a request: its first call takes a unit of the allowance.
    pub fn for_request(
        ns: ObjectNamespace,
        user: UserId,
        sid: Option<uuid::Uuid>,
        hops: Rc<Hops>,
        seen: Rc<HomeSeen>,
    ) -> Self {
        Self {
            ns,
            user,
            sid,
            hops,
            seen,
        }
    }

    /// The home of `user` for the service's own calls (billing pushes, revocations): no
    /// admission, no session.
    pub fn for_service(ns: ObjectNamespace, user: UserId, hops: Rc<Hops>) -> Self {
        let seen = HomeSeen::default();
        seen.admitted.set(true);
        Self {
            ns,
            user,
            sid: None,
            hops,
            seen: Rc::new(seen),
        }
    }
}

fn platform(what: &str, e: &worker::Error) -> AppError {
    AppError::internal(format!("user home {what}: {e}"))
}

#[async_trait(?Send)]
impl HomePort for HomeClient {
    async fn call_json(
        &self,
        name: &'static str,
        args: serde_json::Value,
    ) -> Result<serde_json::Value, AppError> {
        let call = HomeRequest {
            user: self.user,
            sid: self.sid,
            admit: !self.seen.admitted.replace(true),
            op: name.to_owned(),
            args,
        };
        let body = serde_json::to_string(&call)
            .map_err(|e| AppError::internal(format!("encoding home call {name}: {e}")))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(wasm_bindgen::JsValue::from_str(&body)));
        let req = Request::new_with_init(&format!("https://home{HOME_CALL_PATH}"), &init)
            .map_err(|e| platform("request", &e))?;
        let stub = self
            .ns
            .id_from_name(&self.user.to_string())
            .and_then(|id| id.get_stub())
            .map_err(|e| platform("stub", &e))?;
        self.hops.durable_object();
        let resp = stub
            .fetch_with_request(req)
            .await
            .map_err(|e| platform("fetch", &e))?;
        if resp.status_code() != 200 {
            return Err(AppError::internal(format!(
                "user home answered {} to {name}",
                resp.status_code()
            )));
        }
        let answer: HomeResponse = super::response_json(resp)
            .await
            .map_err(|e| platform("answer", &e))?;
        self.hops.d1_by(answer.d1_calls);
        if let Some(d) = answer.decision {
            self.seen.decision.set(Some(d));
        }
        if let Some(p) = answer.principal {
            self.seen.principal.set(Some(p));
        }
        match (answer.ok, answer.error) {
            (_, Some(e)) => Err(e.into_app_error()),
            (Some(v), None) => Ok(v),
            (None, None) => Err(AppError::internal(format!(
                "user home answered {name} with nothing"
            ))),
        }
    }
}
