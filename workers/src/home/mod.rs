//! `UserHome`: one Durable Object per user (named by the user id), the authority for that
//! user's state — see [`durable_objects::home`] for the rules, which run natively tested over
//! the object's SQLite storage. This class moves messages between the worker, the logic and
//! the user's WebSockets:
//!
//! - `POST /call`: one [`HomeRequest`] → [`HomeResponse`](shared::home::HomeResponse). Before a user's call, the copy of
//!   the account is loaded from D1 when missing or older than a minute (the only D1 statement a
//!   home ever runs on a request's path, and rare: an active user's copy is refreshed by the
//!   alarm before it gets old).
//! - `GET /connect?kind=chat|sync`: accepts a WebSocket the worker authenticated, with the
//!   Hibernation API (idle sockets cost nothing; `{"type":"ping"}` is answered by the runtime).
//!   Chat sockets run chat requests ([`chat`]); every socket of the user receives the change
//!   notices of committed writes; a revoked session's sockets get an `unauthorized` error frame
//!   and are closed (4001); when the account is suspended, every socket gets an
//!   `account_suspended` frame and is closed (4003).
//! - the alarm: refreshes the account, and aborts multipart uploads past their expiry in R2.
//!
//! Chat content and batches' inputs and results stay in memory only: nothing of them touches
//! the object's storage ([`batches`]: batches run here, a few items at a time).

mod batches;
mod chat;
mod sql;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use durable_objects::chat_session::{Runs, ServerFrame, SocketId};
use durable_objects::home::{Effects, Freshness, Home, HomeConfig, Memo};
use futures_util::future::AbortHandle;
use serde::{Deserialize, Serialize};
use shared::backup::multipart::MultipartBlobs;
use shared::domain::UserId;
use shared::home::ops::{ErasureInventory, RevokeSessions, SetAccount, SetInstalledPlugins, Wipe};
use shared::home::{
    HomeOp, HomeRequest, HOME_CALL_PATH, HOME_CONNECT_PATH, HOME_SESSION_HEADER, HOME_USER_HEADER,
};
use shared::ports::{Clock, Random};
use shared::AppError;
use worker::{
    durable_object, DurableObject, Env, Request, Response, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

use crate::adapters::{CryptoRandom, SystemClock};
use crate::app::App;
use sql::DoSql;

/// The client's ping, answered by the runtime itself.
const PING: &str = r#"{"type":"ping"}"#;
/// The runtime's answer to [`PING`].
const PONG: &str = r#"{"type":"pong"}"#;
/// Close code of a socket whose session was revoked.
const CLOSE_REVOKED: u16 = 4001;
/// Close code of every socket of an account an administrator suspended.
const CLOSE_SUSPENDED: u16 = 4003;

/// What a socket is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SocketKind {
    /// Chat requests and change notices (`GET /chat/stream`).
    Chat,
    /// Change notices only (`GET /sync/stream`).
    Sync,
}

/// What each accepted socket carries across hibernation.
#[derive(Debug, Serialize, Deserialize)]
struct Attachment {
    user_id: UserId,
    socket: u64,
    #[serde(default)]
    sid: Option<uuid::Uuid>,
    kind: SocketKind,
}

/// One user's home.
#[durable_object]
pub struct UserHome {
    state: State,
    env: Env,
    sql: DoSql,
    /// What this life of the object keeps in memory (see [`Memo`]); shared with running
    /// batches, whose items take the limiter's units through it.
    memo: Rc<Memo>,
    /// The batches of this life (memory only).
    batches: Rc<batches::BatchRuntime>,
    /// Whether the schema was created in this object's life.
    opened: Cell<bool>,
    runs: RefCell<Runs>,
    aborts: RefCell<HashMap<String, AbortHandle>>,
    sockets: RefCell<HashMap<u64, WebSocket>>,
}

fn now_ms() -> i64 {
    SystemClock.now_ms()
}

fn send(ws: &WebSocket, frame: &ServerFrame) {
    // A socket that went away is detached by `websocket_close`; nothing to do here.
    let _ = ws.send_with_str(frame.to_text());
}

fn internal(what: &str, e: impl std::fmt::Display) -> worker::Error {
    worker::Error::RustError(format!("user home {what}: {e}"))
}

impl DurableObject for UserHome {
    fn new(state: State, env: Env) -> Self {
        if let Ok(pair) = worker::worker_sys::WebSocketRequestResponsePair::new(PING, PONG) {
            state.set_websocket_auto_response(&pair);
        }
        let sql = DoSql(state.storage().sql());
        Self {
            state,
            env,
            sql,
            memo: Rc::default(),
            batches: Rc::default(),
            opened: Cell::new(false),
            runs: RefCell::new(Runs::new()),
            aborts: RefCell::new(HashMap::new()),
            sockets: RefCell::new(HashMap::new()),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        match req.path().as_str() {
            HOME_CALL_PATH => self.call(req).await,
            HOME_CONNECT_PATH => self.accept(&req).await,
            _ => Response::error("no such home endpoint", 404),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        let Some(user) = self.user(None) else {
            return Response::empty();
        };
        let app = self.app()?;
        let home = self.home(&app, user)?;
        let now = now_ms();
        if home.freshness(now).map_err(|e| internal("freshness", e))? != Freshness::Fresh {
            if let Err(e) = self.load_account(&app, &home, user, now).await {
                tracing::warn!(error = ?e, "user home: refreshing the account failed");
            }
        }
        match home.expire_uploads(now) {
            Ok(expired) => {
                let bucket = app.backups();
                for upload in expired {
                    if let (Ok(bucket), Some(r2)) = (&bucket, upload.r2_upload_id.as_deref()) {
                        let _ = bucket.abort(&upload.key, r2).await;
                    }
                }
            }
            Err(e) => tracing::error!(error = ?e, "user home: expiring uploads failed"),
        }
        let next_upload = home.next_upload_expiry().ok().flatten();
        let next_batch = self.expire_batches(now_ms());
        if let Some(at) = next_upload.into_iter().chain(next_batch).min() {
            self.state
                .storage()
                .set_alarm((at - now_ms()).max(1))
                .await?;
        }
        Response::empty()
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> worker::Result<()> {
        self.on_message(ws, message).await
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> worker::Result<()> {
        // 1000 (normal) and 1001 (going away) are deliberate; anything else may come back.
        self.detach(&ws, matches!(code, 1000 | 1001));
        let _ = ws.close(Some(1000), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        self.detach(&ws, false);
        Ok(())
    }
}

impl UserHome {
    /// The wiring of this event.
    fn app(&self) -> worker::Result<App> {
        App::for_object(&self.env).map_err(|e| internal("configuration", e))
    }

    /// The object's user: its name (the user id), else the caller's word (the worker's).
    fn user(&self, claimed: Option<UserId>) -> Option<UserId> {
        self.state
            .id()
            .name()
            .as_deref()
            .and_then(UserId::parse)
            .or(claimed)
    }

    fn home<'a>(&'a self, app: &App, user: UserId) -> worker::Result<Home<'a, DoSql>> {
        let cfg = home_config(app);
        if self.opened.get() {
            return Ok(Home::attach(
                &self.sql,
                &self.memo,
                user,
                cfg,
                &CryptoRandom,
            ));
        }
        let home = Home::open(&self.sql, &self.memo, user, cfg, &CryptoRandom)
            .map_err(|e| internal("schema", e))?;
        self.opened.set(true);
        Ok(home)
    }

    /// Loads the account from D1 into the home's copy.
    async fn load_account(
        &self,
        app: &App,
        home: &Home<'_, DoSql>,
        user: UserId,
        now: i64,
    ) -> Result<(), AppError> {
        let account = app.account_loader()?.load(user).await?;
        // The installed plugins with agents are reloaded with the account (a lost push, a new
        // approved version or a plugin no longer approved is corrected within the minute).
        let plugins = match &account {
            Some(_) => app.installed_plugins(user).await?,
            None => Vec::new(),
        };
        home.set_installed_plugins(&plugins)?;
        home.set_account(account.as_ref(), now)
            .map_err(|e| AppError::internal(format!("storing the account: {e}")))
    }

    /// Makes sure the copy of the account may be answered from; schedules a refresh when it
    /// is getting old.
    async fn ensure_account(
        &self,
        app: &App,
        home: &Home<'_, DoSql>,
        user: UserId,
        now: i64,
    ) -> Result<(), AppError> {
        let freshness = home
            .freshness(now)
            .map_err(|e| AppError::internal(format!("reading the account: {e}")))?;
        match freshness {
            Freshness::Stale => self.load_account(app, home, user, now).await,
            Freshness::Ageing => {
                // Refreshed right after this call, so an active user never waits for D1.
                let _ = self.state.storage().set_alarm(1).await;
                Ok(())
            }
            Freshness::Fresh => Ok(()),
        }
    }

    async fn call(&self, mut req: Request) -> worker::Result<Response> {
        let call: HomeRequest = crate::adapters::request_json(&mut req).await?;
        let Some(user) = self.user(Some(call.user)) else {
            return Response::error("no user", 400);
        };
        if call.op == Wipe::NAME {
            return self.wipe().await;
        }
        let app = self.app()?;
        let home = self.home(&app, user)?;
        let now = now_ms();
        let service_op = matches!(
            call.op.as_str(),
            SetAccount::NAME
                | RevokeSessions::NAME
                | SetInstalledPlugins::NAME
                | ErasureInventory::NAME
        );
        if !service_op {
            if let Err(e) = self.ensure_account(&app, &home, user, now).await {
                tracing::error!(error = ?e, "user home: loading the account failed");
                let resp = shared::home::HomeResponse {
                    error: Some(shared::home::WireError::of(&e)),
                    d1_calls: app.hops().d1_calls(),
                    ..Default::default()
                };
                return Response::from_json(&resp);
            }
        }
        if batches::is_batch_op(&call.op) {
            let mut resp = self.batch_call(&app, &home, &call, now_ms()).await;
            resp.d1_calls = app.hops().d1_calls();
            return Response::from_json(&resp);
        }
        let (mut resp, effects) = home.handle(now_ms(), &call);
        resp.d1_calls = app.hops().d1_calls();
        self.apply(&effects);
        if call.op == shared::home::ops::UploadOpened::NAME {
            self.schedule_upload_expiry(&home).await;
        }
        Response::from_json(&resp)
    }

    /// [`Wipe`]: closes every socket, deletes the alarm and drops the whole storage; the
    /// in-memory copies are forgotten and the schema is created afresh by the next call.
    async fn wipe(&self) -> worker::Result<Response> {
        for ws in self.state.get_websockets() {
            send(&ws, &ServerFrame::error(&AppError::Unauthorized, None));
            let _ = ws.close(Some(CLOSE_REVOKED), Some("account deleted"));
            self.detach(&ws, true);
        }
        let storage = self.state.storage();
        storage.delete_alarm().await?;
        storage.delete_all().await?;
        self.memo.forget();
        self.opened.set(false);
        tracing::info!("user home wiped");
        Response::from_json(&shared::home::HomeResponse {
            ok: Some(serde_json::json!({})),
            ..Default::default()
        })
    }

    async fn schedule_upload_expiry(&self, home: &Home<'_, DoSql>) {
        let Ok(Some(at)) = home.next_upload_expiry() else {
            return;
        };
        let storage = self.state.storage();
        let current = storage.get_alarm().await.ok().flatten();
        if current.is_none_or(|c| c > at) {
            let _ = storage.set_alarm((at - now_ms()).max(1)).await;
        }
    }

    /// Carries out a call's effects: notices to every socket, revoked sessions' sockets closed.
    fn apply(&self, effects: &Effects) {
        if effects.notices.is_empty() && effects.close_sessions.is_empty() && !effects.suspended {
            return;
        }
        for ws in self.state.get_websockets() {
            let Ok(Some(att)) = ws.deserialize_attachment::<Attachment>() else {
                continue;
            };
            if effects.suspended {
                send(&ws, &ServerFrame::error(&AppError::AccountSuspended, None));
                let _ = ws.close(Some(CLOSE_SUSPENDED), Some("account suspended"));
                self.detach(&ws, true);
                continue;
            }
            if att
                .sid
                .is_some_and(|sid| effects.close_sessions.contains(&sid))
            {
                send(&ws, &ServerFrame::error(&AppError::Unauthorized, None));
                let _ = ws.close(Some(CLOSE_REVOKED), Some("session revoked"));
                self.detach(&ws, true);
                continue;
            }
            for notice in &effects.notices {
                let _ = ws.send_with_str(notice.frame());
            }
        }
    }

    /// Accepts a WebSocket the worker authenticated (user and session in headers), once the
    /// home confirms the account exists and the session is not revoked.
    async fn accept(&self, req: &Request) -> worker::Result<Response> {
        let header = |name: &str| req.headers().get(name).ok().flatten();
        let Some(user_id) = header(HOME_USER_HEADER).as_deref().and_then(UserId::parse) else {
            return Response::error("missing user", 400);
        };
        let sid = header(HOME_SESSION_HEADER)
            .as_deref()
            .and_then(|s| uuid::Uuid::try_parse(s).ok());
        let app = self.app()?;
        let home = self.home(&app, user_id)?;
        let now = now_ms();
        let allowed = match self.ensure_account(&app, &home, user_id, now).await {
            Ok(()) => home.principal(now, sid).is_ok(),
            Err(e) => {
                tracing::error!(error = ?e, "user home: loading the account failed");
                return Response::error("account unavailable", 503);
            }
        };
        if !allowed {
            return Response::error("unauthorized", 401);
        }
        let kind = match req
            .url()?
            .query_pairs()
            .find(|(k, _)| k == "kind")
            .map(|(_, v)| v.into_owned())
            .as_deref()
        {
            Some("sync") => SocketKind::Sync,
            _ => SocketKind::Chat,
        };
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        let mut bytes = [0u8; 8];
        CryptoRandom.fill(&mut bytes);
        // Attachments cross into JavaScript: keep the id within a number's exact range.
        let socket = u64::from_le_bytes(bytes) & ((1 << 53) - 1);
        pair.server.serialize_attachment(Attachment {
            user_id,
            socket,
            sid,
            kind,
        })?;
        self.sockets.borrow_mut().insert(socket, pair.server);
        tracing::info!(%user_id, socket, ?kind, "socket opened");
        Response::from_websocket(pair.client)
    }

    fn socket(&self, id: SocketId) -> Option<WebSocket> {
        if let Some(ws) = self.sockets.borrow().get(&id.0) {
            return Some(ws.clone());
        }
        // After hibernation the map is empty: find the socket by its attachment.
        let found = self.state.get_websockets().into_iter().find(|ws| {
            ws.deserialize_attachment::<Attachment>()
                .ok()
                .flatten()
                .is_some_and(|a| a.socket == id.0)
        });
        if let Some(ws) = &found {
            self.sockets.borrow_mut().insert(id.0, ws.clone());
        }
        found
    }

    fn broadcast(&self, subscribers: &[SocketId], frame: &str) {
        for id in subscribers {
            if let Some(ws) = self.socket(*id) {
                let _ = ws.send_with_str(frame);
            }
        }
    }

    fn detach(&self, ws: &WebSocket, clean: bool) {
        let Ok(Some(att)) = ws.deserialize_attachment::<Attachment>() else {
            return;
        };
        self.sockets.borrow_mut().remove(&att.socket);
        let cancel = self
            .runs
            .borrow_mut()
            .detach(SocketId(att.socket), clean, now_ms());
        for id in cancel {
            if let Some(h) = self.aborts.borrow_mut().remove(&id) {
                h.abort();
            }
        }
        tracing::info!(socket = att.socket, clean, "socket closed");
    }
}

/// The home's settings from the deployment's configuration.
fn home_config(app: &App) -> HomeConfig {
    let cfg = app.config();
    HomeConfig {
        bytes_per_gb: cfg.bytes_per_gb,
        rate_limits: cfg.rate_limits,
        access_ttl_ms: i64::try_from(cfg.access_token_ttl_secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000),
        tombstone_age_ms: shared::storage::TOMBSTONE_TTL_MS,
    }
}
