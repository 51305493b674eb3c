//! Batches in the user's home: the four batch operations ([`StartBatch`], [`GetBatch`],
//! [`ListBatches`], [`CancelBatch`]) arrive as ordinary home calls, take the request's
//! admission like every call, then run here rather than in the storage logic, because a batch
//! is in-memory work that outlives the call (the rules: [`shared::chat::orchestrator::batch`];
//! the book of runs and its frames: [`durable_objects::batches`]).
//!
//! - `batch_active` is checked and the batch registered in one synchronous stretch of the
//!   object (no await between), so concurrent submissions cannot overshoot the tier's bound.
//! - A batch runs [`BATCH_CONCURRENCY`] items at a time. Each item takes one unit of the user's
//!   request allowance *before* it runs (the limiter is this home's); an item the limit refuses
//!   fails at once with its own `rate_limited` error and the batch goes on with the next (the
//!   client re-runs failed items), so a batch never holds the user's allowance hostage.
//! - Cancelling aborts the batch's driver future, which drops every running item and with it
//!   its upstream fetch (the request is aborted), and no further item starts.
//! - Inputs and results stay in memory; storage holds only that the batch existed (id, size,
//!   time). Results expire [`BATCH_RESULT_TTL_MS`] after the batch ends.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use durable_objects::batches::{self, BatchBook};
use durable_objects::home::{Home, Memo};
use futures_util::future::{abortable, AbortHandle};
use futures_util::StreamExt;
use serde_json::{Map, Value};
use shared::api::{
    BatchItemError, BatchList, BatchResult, BatchStarted, BatchState, BatchView, ExecutionPlan,
};
use shared::chat::allowance::EnabledAgents;
use shared::chat::loader::UserBrain;
use shared::chat::orchestrator::batch::{self as rules, BATCH_CONCURRENCY, BATCH_RESULT_TTL_MS};
use shared::chat::orchestrator::Orchestrator;
use shared::domain::{Tier, UserId};
use shared::home::ops::{Admit, CancelBatch, GetBatch, ListBatches, StartBatch};
use shared::home::{HomeOp, HomePrincipal, HomeRequest, HomeResponse, WireError};
use shared::AppError;
use worker::{Env, State};

use super::sql::DoSql;
use super::{home_config, now_ms, UserHome};
use crate::adapters::CryptoRandom;
use crate::app::{App, ChatGrant};

/// The batches of this life of the object, shared with their running tasks.
#[derive(Default)]
pub(super) struct BatchRuntime {
    book: RefCell<BatchBook>,
    aborts: RefCell<HashMap<String, AbortHandle>>,
}

/// Whether `op` is a batch operation (run by [`UserHome::batch_call`]).
pub(super) fn is_batch_op(op: &str) -> bool {
    matches!(
        op,
        StartBatch::NAME | GetBatch::NAME | ListBatches::NAME | CancelBatch::NAME
    )
}

fn decode<O: HomeOp>(args: &Value) -> Result<O, AppError> {
    serde_json::from_value(args.clone())
        .map_err(|e| AppError::internal(format!("home op {}: bad arguments: {e}", O::NAME)))
}

fn encode<T: serde::Serialize>(answer: &T) -> Result<Value, AppError> {
    serde_json::to_value(answer).map_err(AppError::internal)
}

/// A second handle on the object's state, for a task that outlives the call.
fn own_state(state: &State) -> State {
    use wasm_bindgen::JsCast;
    let raw: &wasm_bindgen::JsValue = state.as_raw().as_ref();
    State::from(
        raw.clone()
            .unchecked_into::<worker::worker_sys::DurableObjectState>(),
    )
}

/// Sends `frame` to every socket of the user (chat and sync alike).
fn broadcast_all(state: &State, frame: &str) {
    for ws in state.get_websockets() {
        let _ = ws.send_with_str(frame);
    }
}

impl UserHome {
    /// A batch operation: the admission (and the caller) as any call takes it, then the
    /// operation over the in-memory book.
    pub(super) async fn batch_call(
        &self,
        app: &App,
        home: &Home<'_, DoSql>,
        call: &HomeRequest,
        now: i64,
    ) -> HomeResponse {
        let admit = HomeRequest {
            op: Admit::NAME.to_owned(),
            args: serde_json::json!({}),
            ..call.clone()
        };
        let (mut resp, effects) = home.handle(now, &admit);
        self.apply(&effects);
        let Some(principal) = resp.principal.filter(|_| resp.error.is_none()) else {
            return resp;
        };
        self.batches.book.borrow_mut().expire(now);
        let outcome = match call.op.as_str() {
            StartBatch::NAME => match decode::<StartBatch>(&call.args) {
                Ok(op) => self
                    .start_batch(app, home, principal, call.sid, op, now)
                    .await
                    .and_then(|a| encode(&a)),
                Err(e) => Err(e),
            },
            GetBatch::NAME => decode::<GetBatch>(&call.args)
                .and_then(|op| self.batch_view(home, &op.id, now))
                .and_then(|a| encode(&a)),
            ListBatches::NAME => home
                .known_batches(now)
                .map(|known| self.batches.book.borrow().list(&known))
                .and_then(|a: BatchList| encode(&a)),
            CancelBatch::NAME => decode::<CancelBatch>(&call.args)
                .and_then(|op| self.cancel_batch(home, &op.id, now))
                .and_then(|a| encode(&a)),
            other => Err(AppError::internal(format!("not a batch op: {other}"))),
        };
        match outcome {
            Ok(v) => resp.ok = Some(v),
            Err(e) => {
                if e.is_server_error() {
                    tracing::error!(error = ?e, "user home: batch operation failed");
                }
                resp.ok = None;
                resp.error = Some(WireError::of(&e));
            }
        }
        resp
    }

    async fn start_batch(
        &self,
        app: &App,
        home: &Home<'_, DoSql>,
        principal: HomePrincipal,
        sid: Option<uuid::Uuid>,
        op: StartBatch,
        now: i64,
    ) -> Result<BatchStarted, AppError> {
        let tier = principal.tier;
        let provider = op.batch.provider.clone();
        let model = op.batch.model.clone();
        // The caller's brain (their installed plugins' agents too) may need a D1 read: it is
        // loaded before the bound below, which awaits nothing.
        let grant = ChatGrant::load(app, tier, &home.chat_choices()?).await?;
        let prepared = rules::prepare(&grant.brain, tier, &grant.enabled, op.batch)?;
        app.providers()
            .select(tier, provider.as_deref(), model.as_deref())?;
        // From here to the registration nothing awaits: the bound is exact.
        rules::check_active(tier, self.batches.book.borrow().running())?;
        let id = shared::ports::new_uuid(&CryptoRandom).to_string();
        let total = u32::try_from(prepared.items.len()).unwrap_or(u32::MAX);
        home.remember_batch(&id, total, now)?;
        self.batches.book.borrow_mut().start(&id, total, now);
        tracing::info!(user_id = %principal.user_id, batch_id = id, total, "batch started");
        let task = BatchTask {
            env: self.env.clone(),
            state: own_state(&self.state),
            memo: Rc::clone(&self.memo),
            runtime: Rc::clone(&self.batches),
            user: principal.user_id,
            sid,
            tier,
            enabled: grant.enabled,
            brain: grant.brain,
            provider,
            model,
            id: id.clone(),
            plan: prepared.plan,
        };
        let items = prepared.items;
        worker::wasm_bindgen_futures::spawn_local(async move { task.run(items).await });
        Ok(BatchStarted { batch_id: id })
    }

    fn batch_view(
        &self,
        home: &Home<'_, DoSql>,
        id: &str,
        now: i64,
    ) -> Result<BatchView, AppError> {
        if let Some(view) = self.batches.book.borrow().view(id) {
            return Ok(view);
        }
        match home.known_batch(id, now)? {
            Some((total, _)) => Ok(batches::lost(id, total)),
            None => Err(AppError::NotFound),
        }
    }

    fn cancel_batch(
        &self,
        home: &Home<'_, DoSql>,
        id: &str,
        now: i64,
    ) -> Result<BatchView, AppError> {
        let frame = self
            .batches
            .book
            .borrow_mut()
            .end(id, BatchState::Cancelled, now);
        if let Some(frame) = frame {
            if let Some(handle) = self.batches.aborts.borrow_mut().remove(id) {
                handle.abort();
            }
            tracing::info!(batch_id = id, "batch cancelled");
            broadcast_all(&self.state, &frame);
        }
        self.batch_view(home, id, now)
    }

    /// Drops expired batch results (from the alarm); answers when the next ones expire.
    pub(super) fn expire_batches(&self, now: i64) -> Option<i64> {
        let mut book = self.batches.book.borrow_mut();
        book.expire(now);
        book.next_expiry()
    }
}

/// One running batch, owning what it needs of the object.
struct BatchTask {
    env: Env,
    state: State,
    memo: Rc<Memo>,
    runtime: Rc<BatchRuntime>,
    user: UserId,
    sid: Option<uuid::Uuid>,
    tier: Tier,
    enabled: EnabledAgents,
    brain: UserBrain,
    provider: Option<String>,
    model: Option<String>,
    id: String,
    plan: ExecutionPlan,
}

impl BatchTask {
    async fn run(self, items: Vec<Map<String, Value>>) {
        let started = now_ms();
        let app = match App::for_object(&self.env) {
            Ok(app) => app,
            Err(e) => {
                tracing::error!(error = %e, "batch: configuration invalid");
                self.fail_all(&items, &AppError::internal(e.to_string()));
                return;
            }
        };
        let llm =
            match app
                .providers()
                .select(self.tier, self.provider.as_deref(), self.model.as_deref())
            {
                Ok(llm) => llm,
                Err(e) => {
                    self.fail_all(&items, &e);
                    return;
                }
            };
        let sql = DoSql(self.state.storage().sql());
        let work = futures_util::stream::iter(items.iter().enumerate())
            .map(|(i, vars)| self.item(&app, &llm, &sql, i, vars))
            .buffer_unordered(BATCH_CONCURRENCY)
            .for_each(|result| {
                if let Some(result) = result {
                    self.record(result);
                }
                std::future::ready(())
            });
        let (work, handle) = abortable(work);
        self.runtime
            .aborts
            .borrow_mut()
            .insert(self.id.clone(), handle);
        let finished = work.await.is_ok();
        self.runtime.aborts.borrow_mut().remove(&self.id);
        if finished {
            self.end(BatchState::Done);
        } else {
            // Cancelled (the cancel sent its frame): its results expire like a finished one's.
            self.schedule_expiry();
        }
        tracing::info!(
            batch_id = self.id,
            finished,
            duration_ms = now_ms() - started,
            "batch ended"
        );
    }

    /// Runs item `index`, after taking its unit of the allowance; `None` once the batch no
    /// longer runs.
    async fn item(
        &self,
        app: &App,
        llm: &dyn shared::ports::Llm,
        sql: &DoSql,
        index: usize,
        vars: &Map<String, Value>,
    ) -> Option<BatchResult> {
        if !self.runtime.book.borrow().is_running(&self.id) {
            return None;
        }
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let now = now_ms();
        let home = Home::attach(sql, &self.memo, self.user, home_config(app), &CryptoRandom);
        let admitted = match home.admit_message(now, self.sid) {
            Ok(Some(d)) if !d.allowed => Err(AppError::RateLimited {
                retry_after_secs: d.retry_after_secs(),
            }),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        let outcome = match admitted {
            Ok(()) => {
                let orchestrator = Orchestrator::new(&self.brain, llm, now)
                    .with_enabled_agents(self.enabled.clone());
                orchestrator.run_batch_item(&self.plan, vars).await
            }
            Err(e) => Err(e),
        };
        Some(match outcome {
            Ok(out) => BatchResult {
                index,
                output: out.output,
                actions: out.actions,
                error: None,
            },
            Err(e) => {
                if e.is_server_error() {
                    tracing::warn!(error = ?e, batch_id = self.id, index, "batch item failed");
                }
                failed(index, &e)
            }
        })
    }

    fn record(&self, result: BatchResult) {
        let frame = self.runtime.book.borrow_mut().record(&self.id, result);
        if let Some(frame) = frame {
            broadcast_all(&self.state, &frame);
        }
    }

    fn end(&self, status: BatchState) {
        let frame = self
            .runtime
            .book
            .borrow_mut()
            .end(&self.id, status, now_ms());
        if let Some(frame) = frame {
            broadcast_all(&self.state, &frame);
        }
        self.schedule_expiry();
    }

    /// Every item fails with `e` (the batch could not run at all).
    fn fail_all(&self, items: &[Map<String, Value>], e: &AppError) {
        for i in 0..items.len() {
            self.record(failed(u32::try_from(i).unwrap_or(u32::MAX), e));
        }
        self.end(BatchState::Done);
    }

    /// Wakes the object when these results expire, unless an earlier alarm is set.
    fn schedule_expiry(&self) {
        let storage = self.state.storage();
        worker::wasm_bindgen_futures::spawn_local(async move {
            let at = now_ms() + BATCH_RESULT_TTL_MS;
            let current = storage.get_alarm().await.ok().flatten();
            if current.is_none_or(|c| c > at) {
                let _ = storage.set_alarm(BATCH_RESULT_TTL_MS).await;
            }
        });
    }
}

/// The result of item `index` that failed with `e` (its public code and message only).
fn failed(index: u32, e: &AppError) -> BatchResult {
    let wire = WireError::of(e);
    BatchResult {
        index,
        output: String::new(),
        actions: Vec::new(),
        error: Some(BatchItemError {
            code: wire.code,
            message: wire.message,
        }),
    }
}
