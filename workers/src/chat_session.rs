//! `ChatSession`: one Durable Object per user, holding that user's chat WebSockets through the
//! Hibernation API (an idle socket costs nothing; client pings are answered by the runtime's
//! auto-response without waking the object).
//!
//! The protocol and the session state machine are platform-free
//! ([`durable_objects::chat_session`], tested natively); this class moves frames between the
//! sockets, the orchestrator and that state. It lives in the worker crate because it needs the
//! worker's adapters (D1 tier, rate limiter, fetch) and the chat brain. Chat content stays in
//! memory only: nothing here touches the object's storage.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use durable_objects::chat_session::{
    binary_frame_error, parse_client_frame, ClientFrame, RunState, Runs, ServerFrame, SocketId,
};
use futures_util::future::{abortable, select, AbortHandle, Either};
use futures_util::pin_mut;
use serde::{Deserialize, Serialize};
use shared::api::ChatRequest;
use shared::chat::agent::TokenSink;
use shared::chat::orchestrator::{Orchestrated, Orchestrator};
use shared::domain::UserId;
use shared::ports::{Clock, Random};
use shared::AppError;
use worker::{
    durable_object, Delay, DurableObject, Env, Request, Response, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

use crate::adapters::{CryptoRandom, SystemClock};
use crate::http::{admit, principal};
use crate::services::{brain, llm_for};
use crate::state;

/// The client's ping, answered by the runtime itself.
const PING: &str = r#"{"type":"ping"}"#;
/// The runtime's answer to [`PING`].
const PONG: &str = r#"{"type":"pong"}"#;
/// How often a running request checks its heartbeat and orphan deadlines.
const TICK_MS: u64 = 250;
/// Header carrying the authenticated user from the worker.
pub const USER_HEADER: &str = "X-Adiuva-User";

/// What each accepted socket carries across hibernation.
#[derive(Debug, Serialize, Deserialize)]
struct Attachment {
    user_id: UserId,
    socket: u64,
}

/// A user's chat sockets and their running requests.
#[durable_object]
pub struct ChatSession {
    state: State,
    env: Env,
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

impl DurableObject for ChatSession {
    fn new(state: State, env: Env) -> Self {
        if let Ok(pair) = worker::worker_sys::WebSocketRequestResponsePair::new(PING, PONG) {
            state.set_websocket_auto_response(&pair);
        }
        Self {
            state,
            env,
            runs: RefCell::new(Runs::new()),
            aborts: RefCell::new(HashMap::new()),
            sockets: RefCell::new(HashMap::new()),
        }
    }

    /// Accepts a WebSocket the worker authenticated (the user in [`USER_HEADER`]).
    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let user = req
            .headers()
            .get(USER_HEADER)?
            .and_then(|u| UserId::parse(&u));
        let Some(user_id) = user else {
            return Response::error("missing user", 400);
        };
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        let mut bytes = [0u8; 8];
        CryptoRandom.fill(&mut bytes);
        // Attachments cross into JavaScript: keep the id within a number's exact range.
        let socket = u64::from_le_bytes(bytes) & ((1 << 53) - 1);
        pair.server
            .serialize_attachment(Attachment { user_id, socket })?;
        self.sockets.borrow_mut().insert(socket, pair.server);
        tracing::info!(%user_id, socket, "chat socket opened");
        Response::from_websocket(pair.client)
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> worker::Result<()> {
        let Some(att) = ws.deserialize_attachment::<Attachment>()? else {
            let _ = ws.close(Some(1011), Some("unknown socket"));
            return Ok(());
        };
        self.sockets.borrow_mut().insert(att.socket, ws.clone());
        let socket = SocketId(att.socket);
        let text = match message {
            WebSocketIncomingMessage::String(text) => text,
            WebSocketIncomingMessage::Binary(_) => {
                send(&ws, &ServerFrame::error(&binary_frame_error(), None));
                return Ok(());
            }
        };
        match parse_client_frame(&text) {
            Err(e) => send(&ws, &ServerFrame::error(&e, None)),
            Ok(ClientFrame::Ping) => send(&ws, &ServerFrame::Pong),
            Ok(ClientFrame::Cancel { request_id }) => {
                let id = request_id.or_else(|| self.runs.borrow().active_on(socket));
                let handle = id
                    .as_ref()
                    .and_then(|id| self.aborts.borrow_mut().remove(id));
                match handle {
                    Some(h) => h.abort(),
                    None => send(&ws, &ServerFrame::error(&AppError::NotFound, id.as_deref())),
                }
            }
            Ok(ClientFrame::Resume { request_id, after }) => {
                let replay = self
                    .runs
                    .borrow_mut()
                    .resume(&request_id, after, socket, now_ms());
                match replay {
                    Ok(replay) => {
                        for frame in replay.frames {
                            let _ = ws.send_with_str(frame);
                        }
                    }
                    Err(e) => send(&ws, &ServerFrame::error(&e, Some(&request_id))),
                }
            }
            Ok(ClientFrame::Chat(req)) => self.chat(&ws, socket, att.user_id, *req).await,
        }
        Ok(())
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

/// Sends a run's tokens to its subscribers and keeps them for resumes.
struct RunSink<'a> {
    session: &'a ChatSession,
    request_id: &'a str,
    tokens: u64,
}

impl TokenSink for RunSink<'_> {
    fn token(&mut self, text: &str) {
        let sent = self.session.runs.borrow_mut().token(self.request_id, text);
        if let Some((frame, subscribers)) = sent {
            self.tokens += 1;
            self.session.broadcast(&subscribers, &frame);
        }
    }
}

/// How a run ended.
enum Ending {
    Finished(Result<Orchestrated, AppError>),
    Cancelled,
}

impl ChatSession {
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
        tracing::info!(socket = att.socket, clean, "chat socket closed");
    }

    /// One chat request: limits, then the orchestrator's token stream, raced against cancel
    /// and the heartbeat.
    async fn chat(&self, ws: &WebSocket, socket: SocketId, user_id: UserId, req: ChatRequest) {
        let started = now_ms();
        let config = match state::shared(&self.env) {
            Ok(s) => s,
            Err(e) => {
                let e = AppError::Internal(anyhow::Error::new(e));
                tracing::error!(error = ?e, "configuration invalid");
                send(ws, &ServerFrame::error(&e, None));
                return;
            }
        };
        if let Err(e) = self.admit(user_id, config.config.rate_limits).await {
            send(ws, &ServerFrame::error(&e, None));
            return;
        }
        let request_id = shared::ports::new_uuid(&CryptoRandom).to_string();
        if let Err(e) = self.runs.borrow_mut().start(&request_id, socket, started) {
            send(ws, &ServerFrame::error(&e, None));
            return;
        }
        send(
            ws,
            &ServerFrame::Started {
                request_id: request_id.clone(),
            },
        );
        let llm = llm_for(&config.config.openai);
        let orchestrator = Orchestrator::new(brain(), &llm, started);
        let mut sink = RunSink {
            session: self,
            request_id: &request_id,
            tokens: 0,
        };
        let ending = {
            let (work, handle) = abortable(orchestrator.orchestrate_stream(&req, &mut sink));
            self.aborts.borrow_mut().insert(request_id.clone(), handle);
            let heartbeat = self.heartbeat(&request_id, config.config.chat_ping_ms);
            pin_mut!(work, heartbeat);
            match select(work, heartbeat).await {
                Either::Left((Ok(result), _)) => Ending::Finished(result),
                Either::Left((Err(_), _)) | Either::Right(((), _)) => Ending::Cancelled,
            }
        };
        self.aborts.borrow_mut().remove(&request_id);
        let tokens = sink.tokens;
        let (state, frame, outcome) = match ending {
            Ending::Finished(Ok(out)) => {
                let (response, actions, plan) = match out {
                    Orchestrated::Response(r) => (r.response, r.actions, None),
                    Orchestrated::Plan(p) => (String::new(), Vec::new(), Some(p)),
                };
                let frame = ServerFrame::Done {
                    done: true,
                    request_id: request_id.clone(),
                    response,
                    actions,
                    plan,
                    cancelled: false,
                };
                (RunState::Done, frame, "done")
            }
            Ending::Finished(Err(e)) => {
                if e.is_server_error() {
                    tracing::warn!(error = ?e, request_id, "chat stream failed");
                }
                let frame = ServerFrame::error(&e, Some(&request_id));
                (RunState::Failed, frame, e.code())
            }
            Ending::Cancelled => {
                let frame = ServerFrame::Done {
                    done: true,
                    request_id: request_id.clone(),
                    response: String::new(),
                    actions: Vec::new(),
                    plan: None,
                    cancelled: true,
                };
                (RunState::Cancelled, frame, "cancelled")
            }
        };
        let subscribers =
            self.runs
                .borrow_mut()
                .finish(&request_id, state, frame.to_text(), now_ms());
        self.broadcast(&subscribers, &frame.to_text());
        tracing::info!(
            %user_id,
            request_id,
            outcome,
            tokens,
            duration_ms = now_ms() - started,
            "chat stream ended"
        );
    }

    /// Takes one request from the user's allowance (tier read from D1 now, so an upgrade
    /// applies to the next message).
    async fn admit(&self, user_id: UserId, limits_on: bool) -> Result<(), AppError> {
        let who = principal(&self.env, user_id).await?;
        if !limits_on {
            return Ok(());
        }
        let decision = admit(&self.env, &who).await?;
        if decision.allowed {
            Ok(())
        } else {
            Err(AppError::RateLimited {
                retry_after_secs: decision.retry_after_secs(),
            })
        }
    }

    /// Pings the run's sockets every `ping_ms` while it streams; returns (ending the run as
    /// cancelled) once every socket is gone and none came back within the grace period.
    async fn heartbeat(&self, request_id: &str, ping_ms: u64) {
        let mut last_ping = now_ms();
        loop {
            Delay::from(Duration::from_millis(TICK_MS.min(ping_ms))).await;
            let now = now_ms();
            let due = self.runs.borrow_mut().orphans_due(now);
            for id in due {
                tracing::info!(
                    request_id = id,
                    "no socket came back for the stream; cancelling"
                );
                if id == request_id {
                    return;
                }
                if let Some(h) = self.aborts.borrow_mut().remove(&id) {
                    h.abort();
                }
            }
            if now - last_ping >= i64::try_from(ping_ms).unwrap_or(i64::MAX) {
                last_ping = now;
                let subscribers = self.runs.borrow().subscribers(request_id);
                self.broadcast(&subscribers, &ServerFrame::Ping.to_text());
            }
        }
    }
}
