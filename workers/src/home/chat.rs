//! Chat over a home's WebSockets: the protocol and the run state machine are platform-free
//! ([`durable_objects::chat_session`], tested natively); this moves frames between the sockets,
//! the orchestrator and that state. Every message takes a unit of the user's allowance in the
//! home itself (no extra hop), after the session's revocation is checked.

use std::time::Duration;

use durable_objects::chat_session::{
    binary_frame_error, parse_client_frame, ClientFrame, RunState, ServerFrame, SocketId,
};
use futures_util::future::{abortable, select, Either};
use futures_util::pin_mut;
use shared::api::ChatRequest;
use shared::chat::agent::TokenSink;
use shared::chat::orchestrator::{Orchestrated, Orchestrator};
use shared::chat::providers::SelectedLlm;
use shared::AppError;
use worker::{Delay, WebSocket, WebSocketIncomingMessage};

use super::{now_ms, send, Attachment, SocketKind, UserHome};
use crate::app::{App, ChatGrant};

/// How often a running request checks its heartbeat and orphan deadlines.
const TICK_MS: u64 = 250;

/// Sends a run's tokens to its subscribers and keeps them for resumes.
struct RunSink<'a> {
    home: &'a UserHome,
    request_id: &'a str,
    tokens: u64,
}

impl TokenSink for RunSink<'_> {
    fn token(&mut self, text: &str) {
        let sent = self.home.runs.borrow_mut().token(self.request_id, text);
        if let Some((frame, subscribers)) = sent {
            self.tokens += 1;
            self.home.broadcast(&subscribers, &frame);
        }
    }
}

/// How a run ended.
enum Ending {
    Finished(Result<Orchestrated, AppError>),
    Cancelled,
}

impl UserHome {
    pub(super) async fn on_message(
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
        let frame = parse_client_frame(&text);
        if att.kind == SocketKind::Sync && !matches!(frame, Ok(ClientFrame::Ping)) {
            let e = AppError::field(
                "type",
                "this socket only receives change notices; chat on /chat/stream",
            );
            send(&ws, &ServerFrame::error(&e, None));
            return Ok(());
        }
        match frame {
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
            Ok(ClientFrame::Chat(req)) => self.chat(&ws, socket, &att, *req).await,
        }
        Ok(())
    }

    /// Takes one unit of the user's allowance for a message of `att`'s session; answers what
    /// `req` may use (its provider and model within the tier, the enabled agents) from the same
    /// home, with no further hop.
    async fn admit<'a>(
        &self,
        app: &'a App,
        att: &Attachment,
        req: &ChatRequest,
    ) -> Result<(SelectedLlm<'a>, ChatGrant), AppError> {
        let home = self.home(app, att.user_id).map_err(AppError::internal)?;
        let now = now_ms();
        self.ensure_account(app, &home, att.user_id, now).await?;
        if let Some(d) = home.admit_message(now, att.sid)? {
            if !d.allowed {
                return Err(AppError::RateLimited {
                    retry_after_secs: d.retry_after_secs(),
                });
            }
        }
        let tier = home.principal(now, att.sid)?.tier;
        req.validate()?;
        let llm = app
            .providers()
            .select(tier, req.provider.as_deref(), req.model.as_deref())?;
        let grant = ChatGrant::load(app, tier, &home.chat_choices()?).await?;
        Ok((llm, grant))
    }

    /// One chat request: limits, then the orchestrator's token stream, raced against cancel
    /// and the heartbeat.
    async fn chat(&self, ws: &WebSocket, socket: SocketId, att: &Attachment, req: ChatRequest) {
        let started = now_ms();
        let app = match self.app() {
            Ok(app) => app,
            Err(e) => {
                let e = AppError::internal(e);
                tracing::error!(error = ?e, "configuration invalid");
                send(ws, &ServerFrame::error(&e, None));
                return;
            }
        };
        let (llm, grant) = match self.admit(&app, att, &req).await {
            Ok(granted) => granted,
            Err(e) => {
                send(ws, &ServerFrame::error(&e, None));
                return;
            }
        };
        let request_id = shared::ports::new_uuid(&crate::adapters::CryptoRandom).to_string();
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
        let orchestrator =
            Orchestrator::new(&grant.brain, &llm, started).with_enabled_agents(grant.enabled);
        let mut sink = RunSink {
            home: self,
            request_id: &request_id,
            tokens: 0,
        };
        let ending = {
            let (work, handle) = abortable(orchestrator.orchestrate_stream(&req, &mut sink));
            self.aborts.borrow_mut().insert(request_id.clone(), handle);
            let heartbeat = self.heartbeat(&request_id, app.config().chat_ping_ms);
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
            user_id = %att.user_id,
            request_id,
            outcome,
            tokens,
            duration_ms = now_ms() - started,
            "chat stream ended"
        );
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
