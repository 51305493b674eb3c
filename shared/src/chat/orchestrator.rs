//! The orchestrator (plan Step 4): classify the intent, route to one agent or a pipeline, answer
//! directly or with a plan, stream tokens, and run plan steps. Every answer leaves through the
//! sanitizer.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::api::{
    ChatContext, ChatRequest, ChatResponse, ExecutionMode, ExecutionPlan, PlanAction, Playbook,
    RunStepResponse,
};
use crate::domain::Tier;
use crate::error::{AppError, FieldError, Upstream};
use crate::ports::{Llm, LlmRequest, LlmResponse};

use super::agent::{stream_once, AgentInput, AgentReply, PreviousResult, TokenSink, MAX_HANDOFFS};
use super::allowance::{self, EnabledAgents};
use super::plans::{
    self, PlanCache, PromptTemplateRegistry, LLM_ACTION, MAX_PIPELINE_AGENTS, PLAN_CACHE_SIZE,
    PREVIOUS_OUTPUT,
};
use super::prompts;
use super::registry::{AgentRegistry, FALLBACK_AGENT};
use super::sanitize::{fingerprints_of, Sanitizer};
use super::sent::{RecordingLlm, RequestCleaner, RequestStream, SentPrompts};

/// Everything the chat needs that does not change between requests: agents, templates,
/// playbooks, the plan cache and the sanitizer built from every prompt. Build once per isolate.
pub struct Brain {
    /// The agents.
    pub registry: AgentRegistry,
    /// The prompt templates.
    pub templates: PromptTemplateRegistry,
    /// The response-path sanitizer.
    pub sanitizer: Sanitizer,
    cache: RefCell<PlanCache>,
}

impl std::fmt::Debug for Brain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Brain")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl Brain {
    /// The product's brain.
    pub fn standard() -> Self {
        Self::new(
            AgentRegistry::standard(),
            PromptTemplateRegistry::standard(),
        )
    }

    /// A brain over these agents and templates.
    ///
    /// # Panics
    /// If the built-in playbooks do not validate against `templates` (a programming error,
    /// covered by tests).
    pub fn new(registry: AgentRegistry, templates: PromptTemplateRegistry) -> Self {
        let playbooks = plans::playbooks(&templates).expect("the built-in playbooks are valid");
        let sanitizer = Sanitizer::new(prompt_corpus(&registry, &templates));
        Self {
            registry,
            templates,
            sanitizer,
            cache: RefCell::new(PlanCache::new(PLAN_CACHE_SIZE, playbooks)),
        }
    }

    /// The playbooks `tier` may run.
    pub fn playbooks_for(&self, tier: Tier) -> Vec<Playbook> {
        self.cache
            .borrow()
            .get_all_playbooks()
            .iter()
            .filter(|p| tier >= p.min_tier)
            .cloned()
            .collect()
    }

    /// The playbook `id`, if `tier` may run it.
    ///
    /// # Errors
    /// 404 for an unknown id; 403 `tier_required` above the caller's tier.
    pub fn playbook(&self, id: &str, tier: Tier) -> Result<Playbook, AppError> {
        let cache = self.cache.borrow();
        let playbook = cache.playbook(id).ok_or(AppError::NotFound)?;
        require_tier(playbook, tier)?;
        Ok(playbook.clone())
    }

    /// Plans in the cache (playbooks not counted).
    pub fn cached_plans(&self) -> usize {
        self.cache.borrow().len()
    }
}

fn require_tier(playbook: &Playbook, tier: Tier) -> Result<(), AppError> {
    if tier >= playbook.min_tier {
        Ok(())
    } else {
        Err(AppError::TierRequired {
            feature: "playbook",
            required_tier: playbook.min_tier.as_str(),
        })
    }
}

/// Every prompt text the sanitizer must keep from leaving: the fixed prompts, each agent's
/// fragments and tool descriptions, and every template.
pub fn prompt_corpus(registry: &AgentRegistry, templates: &PromptTemplateRegistry) -> Vec<String> {
    let mut corpus: Vec<String> = prompts::all_fragments().flat_map(fingerprints_of).collect();
    for agent in registry.iter() {
        corpus.extend(agent.prompt().iter().flat_map(|f| fingerprints_of(f)));
        for tool in agent.tools() {
            corpus.extend(fingerprints_of(&tool.description));
        }
    }
    for t in templates.iter() {
        corpus.extend(fingerprints_of(t.text));
    }
    corpus.sort();
    corpus.dedup();
    corpus
}

/// What `orchestrate` answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Orchestrated {
    /// `direct` mode.
    Response(ChatResponse),
    /// `plan` mode.
    Plan(ExecutionPlan),
}

/// One request's orchestration: the brain, the model, the time, the agents this request may
/// use, and the system messages it sent (every answer is cleaned of them too; see
/// [`super::sent`]).
///
/// With an enabled set ([`Orchestrator::with_enabled_agents`]) the classifier lists only those
/// agents and picks among them (falling back to [`FALLBACK_AGENT`] when enabled, else the first
/// enabled agent; with one enabled agent it is not asked at all), pipelines and plans use only
/// them, and routing to, or running a plan step that names, any other agent is 403
/// `tier_required` (feature `agents`).
pub struct Orchestrator<'a> {
    brain: &'a Brain,
    llm: &'a dyn Llm,
    now_ms: i64,
    enabled: EnabledAgents,
    sent: SentPrompts,
    /// Hand-offs made so far in this request (at most [`MAX_HANDOFFS`]).
    handoffs: Cell<usize>,
}

impl std::fmt::Debug for Orchestrator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator")
            .field("now_ms", &self.now_ms)
            .finish_non_exhaustive()
    }
}

/// Applies the request's stream cleaner to tokens on their way to `inner`.
struct SanitizingSink<'s> {
    inner: &'s mut dyn TokenSink,
    clean: RequestStream<'s>,
}

impl TokenSink for SanitizingSink<'_> {
    fn token(&mut self, text: &str) {
        let safe = self.clean.push(text);
        if !safe.is_empty() {
            self.inner.token(&safe);
        }
    }
    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
}

impl SanitizingSink<'_> {
    fn finish(self) {
        let rest = self.clean.finish();
        if !rest.is_empty() {
            self.inner.token(&rest);
        }
    }
}

impl<'a> Orchestrator<'a> {
    /// An orchestrator for one request at `now_ms` that may use every agent.
    pub fn new(brain: &'a Brain, llm: &'a dyn Llm, now_ms: i64) -> Self {
        Self {
            brain,
            llm,
            now_ms,
            enabled: EnabledAgents::all(),
            sent: SentPrompts::default(),
            handoffs: Cell::new(0),
        }
    }

    /// The same orchestrator restricted to `enabled` (the user's allowance, see
    /// [`allowance::effective`]).
    #[must_use]
    pub fn with_enabled_agents(mut self, enabled: EnabledAgents) -> Self {
        self.enabled = enabled;
        self
    }

    /// The agents this request may use, in registry order.
    pub fn enabled_agents(&self) -> Vec<&'a str> {
        self.enabled.of(&self.brain.registry)
    }

    /// 403 `tier_required` (feature `agents`) unless every one of `agents` is enabled.
    fn require_enabled<'n>(
        &self,
        agents: impl IntoIterator<Item = &'n str>,
    ) -> Result<(), AppError> {
        for agent in agents {
            if !self.enabled.contains(agent) {
                tracing::info!(agent, "a disabled agent was asked for");
                return Err(allowance::disabled());
            }
        }
        Ok(())
    }

    /// The model, recording every system message this request sends.
    fn model(&self) -> RecordingLlm<'_> {
        RecordingLlm {
            inner: self.llm,
            sent: &self.sent,
        }
    }

    /// The cleaner of this request's answers.
    fn cleaner(&self) -> RequestCleaner<'_> {
        RequestCleaner {
            shared: &self.brain.sanitizer,
            sent: &self.sent,
        }
    }

    /// The agents to route to, in order, all enabled: the classifier's answer (it sees only the
    /// enabled agents), or the fallback when it names none. With one enabled agent, that one,
    /// without asking the classifier.
    ///
    /// # Errors
    /// 403 `tier_required` (feature `agents`) when no registered agent is enabled; LLM errors.
    pub async fn classify_intent(
        &self,
        message: &str,
        _context: &ChatContext,
    ) -> Result<Vec<&'static str>, AppError> {
        let agents: Vec<(&'static str, &'static str)> = self
            .brain
            .registry
            .list_agents()
            .iter()
            .filter(|a| self.enabled.contains(a.name))
            .map(|a| (a.name, a.description))
            .collect();
        match agents.as_slice() {
            [] => return Err(allowance::disabled()),
            [(only, _)] => return Ok(vec![*only]),
            _ => {}
        }
        let req = LlmRequest::plain(
            "classify",
            prompts::compose_classifier(&agents),
            message.to_owned(),
        );
        let resp = self.complete(&req).await?;
        let answer = resp.message.content.unwrap_or_default();
        let chosen = parse_intent_among(&answer, &self.brain.registry, &self.enabled);
        if chosen.is_empty() {
            let fallback = fallback(&agents);
            tracing::info!(fallback, "intent unclear; using the fallback");
            return Ok(vec![fallback]);
        }
        Ok(chosen)
    }

    async fn complete(&self, req: &LlmRequest) -> Result<LlmResponse, AppError> {
        self.model()
            .complete(req)
            .await
            .map_err(|e| e.into_app_error(Upstream::Llm))
    }

    fn input<'i>(
        &self,
        query: &'i str,
        context: &'i ChatContext,
        previous: &'i [PreviousResult],
        handoff_to: &'i [&'i str],
    ) -> AgentInput<'i> {
        AgentInput {
            query,
            context,
            previous_results: previous,
            now_ms: self.now_ms,
            handoff_to,
        }
    }

    /// Asks `first` (enabled, checked by the caller), then the agents it hands off to: each
    /// hand-off names an enabled agent that has not answered in this request's chain, and the
    /// request makes at most [`MAX_HANDOFFS`] in all (so no cycle and no unbounded chain). The
    /// next agent gets the hand-off's request as its query and the earlier agents' texts as
    /// earlier results; `excluded` agents (a pipeline's own) are never handed to. The reply is
    /// the last agent's text with every agent's actions and
    /// usage; its `agent` names the chain (`task_agent>note_agent`).
    async fn run_agent(
        &self,
        first: &'static str,
        query: &str,
        context: &ChatContext,
        previous: &[PreviousResult],
        excluded: &[&str],
        mut sink: Option<&mut dyn TokenSink>,
    ) -> Result<AgentReply, AppError> {
        let mut chain: Vec<&'static str> = vec![first];
        let mut previous = previous.to_vec();
        let mut query = query.to_owned();
        let mut total = AgentReply::new(first);
        loop {
            let current = *chain.last().unwrap_or(&first);
            let targets: Vec<&str> = if self.handoffs.get() < MAX_HANDOFFS {
                self.enabled_agents()
                    .into_iter()
                    .filter(|a| !chain.contains(a) && !excluded.contains(a))
                    .collect()
            } else {
                Vec::new()
            };
            let agent = self.brain.registry.get(current).ok_or(AppError::NotFound)?;
            let input = self.input(&query, context, &previous, &targets);
            let reply = match sink.as_deref_mut() {
                Some(sink) => agent.handle_stream(&input, &self.model(), sink).await?,
                None => agent.handle(&input, &self.model()).await?,
            };
            merge_usage(&mut total, &reply);
            total.hit_bound |= reply.hit_bound;
            total.cancelled |= reply.cancelled;
            total.actions.extend(reply.actions);
            let next = reply.handoff.as_ref().and_then(|h| {
                self.brain
                    .registry
                    .get(&h.to)
                    .map(|a| (a.name(), h.request.clone()))
            });
            match next {
                Some((to, request)) if !reply.cancelled => {
                    self.handoffs.set(self.handoffs.get() + 1);
                    if !reply.text.trim().is_empty() {
                        previous.push(PreviousResult {
                            agent: current.to_owned(),
                            text: reply.text,
                        });
                    }
                    query = request;
                    chain.push(to);
                }
                _ => {
                    total.text = reply.text;
                    total.agent = chain.join(">");
                    return Ok(total);
                }
            }
        }
    }

    /// Asks one agent.
    ///
    /// # Errors
    /// 403 `tier_required` (feature `agents`) for an agent that is not enabled; 404 for an
    /// unknown agent; the agent's own errors.
    pub async fn route_single(
        &self,
        agent: &str,
        message: &str,
        context: &ChatContext,
    ) -> Result<AgentReply, AppError> {
        self.require_enabled([agent])?;
        let agent = self
            .brain
            .registry
            .get(agent)
            .ok_or(AppError::NotFound)?
            .name();
        self.run_agent(agent, message, context, &[], &[], None)
            .await
    }

    /// Asks `agents` in order, each seeing the earlier results, then merges the results with
    /// one more LLM call (streamed to `sink` when given).
    ///
    /// # Errors
    /// 403 `tier_required` (feature `agents`) when any of `agents` is not enabled (before any
    /// call); the agents' errors.
    pub async fn route_pipeline(
        &self,
        agents: &[&str],
        message: &str,
        context: &ChatContext,
        sink: Option<&mut dyn TokenSink>,
    ) -> Result<AgentReply, AppError> {
        self.require_enabled(agents.iter().copied())?;
        let mut previous: Vec<PreviousResult> = Vec::new();
        let mut merged = AgentReply::new(&agents.join("+"));
        for agent in agents {
            let name = self
                .brain
                .registry
                .get(agent)
                .ok_or(AppError::NotFound)?
                .name();
            let reply = self
                .run_agent(name, message, context, &previous, agents, None)
                .await?;
            merge_usage(&mut merged, &reply);
            merged.hit_bound |= reply.hit_bound;
            merged.actions.extend(reply.actions);
            previous.push(PreviousResult {
                agent: reply.agent,
                text: reply.text,
            });
        }
        let mut results = String::new();
        for r in &previous {
            let _ = writeln!(results, "- {}: {}", r.agent, r.text);
        }
        let req = LlmRequest::plain(
            "synthesis",
            prompts::compose_synthesis(),
            format!("Request: {message}\nAgent results:\n{results}"),
        );
        let resp = match sink {
            None => Some(self.complete(&req).await?),
            Some(sink) => stream_once(&self.model(), &req, sink).await?,
        };
        if let Some(resp) = resp {
            merged.count(&resp);
            merged.text = resp.message.content.unwrap_or_default();
        } else {
            merged.llm_calls += 1;
            merged.cancelled = true;
        }
        Ok(merged)
    }

    /// The main entry: classify, then answer (`direct`) or return a plan (`plan`). The answer
    /// is sanitized.
    pub async fn orchestrate(&self, req: &ChatRequest) -> Result<Orchestrated, AppError> {
        req.validate()?;
        let agents = self.classify_intent(&req.message, &req.context).await?;
        match req.execution_mode {
            ExecutionMode::Plan => self.plan(&agents).map(Orchestrated::Plan),
            ExecutionMode::Direct => {
                let reply = if let [agent] = agents.as_slice() {
                    self.route_single(agent, &req.message, &req.context).await?
                } else {
                    self.route_pipeline(&agents, &req.message, &req.context, None)
                        .await?
                };
                Ok(Orchestrated::Response(self.finish(reply, "chat")))
            }
        }
    }

    /// As [`Self::orchestrate`], streaming the answer's text to `sink` (sanitized, fragments
    /// split across tokens included) as the model produces it. The returned response is the
    /// authoritative whole (the WebSocket's `done` frame).
    pub async fn orchestrate_stream(
        &self,
        req: &ChatRequest,
        sink: &mut dyn TokenSink,
    ) -> Result<Orchestrated, AppError> {
        req.validate()?;
        let agents = self.classify_intent(&req.message, &req.context).await?;
        if req.execution_mode == ExecutionMode::Plan {
            return self.plan(&agents).map(Orchestrated::Plan);
        }
        let mut clean = SanitizingSink {
            inner: sink,
            clean: self.cleaner().stream("stream"),
        };
        let reply = if let [agent] = agents.as_slice() {
            self.require_enabled([*agent])?;
            let agent = self
                .brain
                .registry
                .get(agent)
                .ok_or(AppError::NotFound)?
                .name();
            self.run_agent(
                agent,
                &req.message,
                &req.context,
                &[],
                &[],
                Some(&mut clean),
            )
            .await?
        } else {
            self.route_pipeline(&agents, &req.message, &req.context, Some(&mut clean))
                .await?
        };
        clean.finish();
        Ok(Orchestrated::Response(self.finish(reply, "stream")))
    }

    /// The plan of `agents`. It holds no word of the request (see [`plans::chat_plan`]), so
    /// caching it for every user is safe.
    fn plan(&self, agents: &[&str]) -> Result<ExecutionPlan, AppError> {
        self.require_enabled(agents.iter().copied())?;
        let mut plan = plans::chat_plan(&self.brain.templates, agents)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("chat plan: {e}")))?;
        self.brain
            .cache
            .borrow_mut()
            .cache_plan(&plan.id, plan.clone());
        let mut removed = 0;
        for step in &mut plan.steps {
            if let Some(vars) = &mut step.variables {
                let mut value = Value::Object(std::mem::take(vars));
                removed += self.cleaner().clean_json(&mut value);
                if let Value::Object(m) = value {
                    *vars = m;
                }
            }
        }
        log_sanitized("plan", removed);
        tracing::info!(plan = %plan.id, steps = plan.steps.len(), "chat plan built");
        Ok(plan)
    }

    fn finish(&self, reply: AgentReply, surface: &'static str) -> ChatResponse {
        let cleaner = self.cleaner();
        let cleaned = cleaner.clean(&reply.text);
        let mut removed = cleaned.removed;
        let mut actions = reply.actions;
        for action in &mut actions {
            removed += clean_action(&cleaner, action);
        }
        log_sanitized(surface, removed);
        tracing::info!(
            agents = %reply.agent,
            llm_calls = reply.llm_calls,
            prompt_tokens = reply.prompt_tokens,
            completion_tokens = reply.completion_tokens,
            actions = actions.len(),
            hit_bound = reply.hit_bound,
            cancelled = reply.cancelled,
            "chat answered"
        );
        ChatResponse {
            response: cleaned.text,
            actions,
        }
    }

    /// Runs step `step_index` of the plan `plan_id` with `variables`: renders its template
    /// server-side and runs it (through the template's agent when it has one). The output is
    /// sanitized.
    ///
    /// # Errors
    /// 404 for an unknown plan; 403 `tier_required` for a playbook above `tier` or a plan
    /// naming an agent that is not enabled (its own agent, or any step's template agent); 422
    /// for a step index out of range, a data step, or bad variables; LLM errors.
    pub async fn run_step(
        &self,
        plan_id: &str,
        step_index: u32,
        variables: &Map<String, Value>,
        tier: Tier,
    ) -> Result<RunStepResponse, AppError> {
        let plan = self.resolve_plan(plan_id, tier)?;
        self.require_enabled(plan_agents(&plan, &self.brain.templates))?;
        self.run_plan_step(&plan, step_index, variables).await
    }

    /// Runs the `llm` step `step_index` of `plan` (whose agents the caller checked) with
    /// `variables` over the step's own non-null ones: renders its template server-side and
    /// runs it (through the template's agent when it has one). The output is sanitized.
    ///
    /// # Errors
    /// 422 for a step index out of range, a data step, or bad variables; LLM errors.
    async fn run_plan_step(
        &self,
        plan: &ExecutionPlan,
        step_index: u32,
        variables: &Map<String, Value>,
    ) -> Result<RunStepResponse, AppError> {
        let plan_id = plan.id.as_str();
        let step = usize::try_from(step_index)
            .ok()
            .and_then(|i| plan.steps.get(i))
            .ok_or_else(|| {
                AppError::Validation(vec![FieldError::new(
                    "step_index",
                    format!("the plan has {} steps", plan.steps.len()),
                )])
            })?;
        if step.action != LLM_ACTION {
            return Err(AppError::Validation(vec![FieldError::new(
                "step_index",
                format!(
                    "step {step_index} is a `{}` step, which the app performs itself",
                    step.action
                ),
            )]));
        }
        let template = step
            .prompt_template
            .as_deref()
            .and_then(|id| self.brain.templates.get(id))
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("plan {plan_id}: no template")))?;
        let mut merged: Map<String, Value> = step
            .variables
            .iter()
            .flatten()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        merged.extend(variables.iter().map(|(k, v)| (k.clone(), v.clone())));
        if step.data_from_step.is_none() {
            if let Some(v) = merged.get(PREVIOUS_OUTPUT) {
                if !v.is_null() {
                    return Err(AppError::Validation(vec![FieldError::new(
                        format!("variables.{PREVIOUS_OUTPUT}"),
                        "this step consumes no earlier step",
                    )]));
                }
            }
        }
        let rendered = template.render(&merged)?;
        let empty = ChatContext::default();
        let reply = if let Some(agent) = template.agent {
            let agent = self
                .brain
                .registry
                .get(agent)
                .ok_or(AppError::NotFound)?
                .name();
            self.run_agent(agent, &rendered, &empty, &[], &[], None)
                .await?
        } else {
            let req = LlmRequest::plain(
                format!("template:{}", template.id),
                prompts::compose_agent(&[], self.now_ms, 0),
                rendered,
            );
            let resp = self.complete(&req).await?;
            let mut reply = AgentReply::new(template.id);
            reply.count(&resp);
            reply.text = resp.message.content.unwrap_or_default();
            reply
        };
        let response = self.finish(reply, "run_step");
        Ok(RunStepResponse {
            output: response.response,
            actions: response.actions,
        })
    }

    fn resolve_plan(&self, plan_id: &str, tier: Tier) -> Result<ExecutionPlan, AppError> {
        if let Some(playbook) = self.brain.cache.borrow().playbook(plan_id) {
            require_tier(playbook, tier)?;
            return Ok(playbook.plan.clone());
        }
        if let Some(plan) = self.brain.cache.borrow_mut().get_plan(plan_id) {
            return Ok(plan);
        }
        let agents = plans::chat_plan_agents_in(plan_id, &self.brain.templates)
            .filter(|agents| agents.iter().all(|a| self.brain.registry.get(a).is_some()))
            .ok_or(AppError::NotFound)?;
        let plan = plans::chat_plan(&self.brain.templates, &agents)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("chat plan: {e}")))?;
        self.brain
            .cache
            .borrow_mut()
            .cache_plan(plan_id, plan.clone());
        Ok(plan)
    }
}

/// [`FALLBACK_AGENT`] when it is among `enabled` (`(name, description)` pairs), else the first
/// of them.
fn fallback(enabled: &[(&'static str, &'static str)]) -> &'static str {
    enabled
        .iter()
        .find(|(name, _)| *name == FALLBACK_AGENT)
        .or_else(|| enabled.first())
        .map_or(FALLBACK_AGENT, |(name, _)| name)
}

/// Every agent a plan names: its own, and each `llm` step's template agent.
fn plan_agents<'p>(
    plan: &'p ExecutionPlan,
    templates: &PromptTemplateRegistry,
) -> impl Iterator<Item = &'p str> {
    let steps: Vec<&'static str> = plan
        .steps
        .iter()
        .filter_map(|s| s.prompt_template.as_deref())
        .filter_map(|id| templates.get(id).and_then(|t| t.agent))
        .collect();
    std::iter::once(plan.agent.as_str())
        .filter(|a| !a.is_empty())
        .chain(steps)
}

fn merge_usage(into: &mut AgentReply, reply: &AgentReply) {
    into.llm_calls += reply.llm_calls;
    into.prompt_tokens += reply.prompt_tokens;
    into.completion_tokens += reply.completion_tokens;
}

fn clean_action(sanitizer: &RequestCleaner<'_>, action: &mut PlanAction) -> usize {
    let Some(data) = action.data.take() else {
        return 0;
    };
    let mut value = Value::Object(data);
    let removed = sanitizer.clean_json(&mut value);
    if let Value::Object(m) = value {
        action.data = Some(m);
    }
    removed
}

fn log_sanitized(surface: &'static str, removed: usize) {
    if removed > 0 {
        tracing::warn!(surface, removed, "prompt fragments removed from a response");
    }
}

/// The registered agents an intent answer names, in order of appearance (`task_agent`, or
/// `task` for short), without repeats, at most [`MAX_PIPELINE_AGENTS`].
pub fn parse_intent(answer: &str, registry: &AgentRegistry) -> Vec<&'static str> {
    parse_intent_among(answer, registry, &EnabledAgents::all())
}

/// As [`parse_intent`], among the `enabled` agents only: any other name is ignored.
pub fn parse_intent_among(
    answer: &str,
    registry: &AgentRegistry,
    enabled: &EnabledAgents,
) -> Vec<&'static str> {
    let mut chosen: Vec<&'static str> = Vec::new();
    let lower = answer.to_ascii_lowercase();
    let find = |word: &str| {
        registry
            .get(word)
            .or_else(|| registry.get(&format!("{word}_agent")))
    };
    // Plugin agents' names (`plugin.<uuid>.<name>`) hold dots and dashes: a word keeps them,
    // and is split at them only when it is no agent's name as a whole.
    let separator = |c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    for raw in lower.split(separator) {
        let word = raw.trim_matches(['.', '-']);
        if word.is_empty() {
            continue;
        }
        let parts: Vec<&str> = if find(word).is_some() {
            vec![word]
        } else {
            word.split(['.', '-']).collect()
        };
        for part in parts {
            let agent = find(part).filter(|a| enabled.contains(a.name()));
            if let Some(agent) = agent {
                if !chosen.contains(&agent.name()) && chosen.len() < MAX_PIPELINE_AGENTS {
                    chosen.push(agent.name());
                }
            }
        }
    }
    chosen
}

pub mod batch;

#[cfg(test)]
mod enabled_tests;

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::api::{ChatContext, PlanActionType};
    use crate::chat::agent::{TokenSink, MAX_ITER};
    use crate::chat::openai::native::{
        client_for, sse_body, sse_tool_calls_body, text_completion, tool_call_completion,
    };
    use crate::chat::openai::OpenAiClient;

    const NOW: i64 = 1_795_780_800_000;

    /// A scripted model: each answer is used once, in order.
    async fn model(answers: Vec<ResponseTemplate>) -> MockServer {
        let server = MockServer::start().await;
        for a in answers {
            Mock::given(method("POST"))
                .and(path("/v1/chat/completions"))
                .respond_with(a)
                .up_to_n_times(1)
                .mount(&server)
                .await;
        }
        server
    }

    fn json_answer(v: &Value) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(v)
    }
    fn says(text: &str) -> ResponseTemplate {
        json_answer(&text_completion(text))
    }
    fn calls(name: &str, args: &Value) -> ResponseTemplate {
        json_answer(&tool_call_completion(&[("call_1", name, args.clone())]))
    }
    fn streams(pieces: &[&str]) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_raw(sse_body(pieces), "text/event-stream")
    }

    async fn sent(server: &MockServer) -> Vec<Value> {
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    }

    fn tool_messages(body: &Value) -> Vec<String> {
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| m["content"].as_str().unwrap().to_owned())
            .collect()
    }

    fn context() -> ChatContext {
        serde_json::from_value(json!({
            "recent_tasks": [
                {"id": 1, "title": "Write report", "status": "todo", "priority": "high"},
                {"id": 2, "title": "Call Ana", "status": "done", "priority": "low"}
            ],
            "projects": [{"id": 5, "name": "Apollo", "status": "active"}]
        }))
        .unwrap()
    }

    fn request(message: &str, mode: ExecutionMode) -> ChatRequest {
        ChatRequest {
            message: message.to_owned(),
            context: context(),
            execution_mode: mode,
            provider: None,
            model: None,
        }
    }

    async fn client(server: &MockServer) -> OpenAiClient<crate::chat::openai::native::ReqwestHttp> {
        client_for(server).await
    }

    #[derive(Default)]
    struct Collect {
        tokens: Vec<String>,
        cancel_after: Option<usize>,
    }

    impl TokenSink for Collect {
        fn token(&mut self, text: &str) {
            self.tokens.push(text.to_owned());
        }
        fn cancelled(&self) -> bool {
            self.cancel_after.is_some_and(|n| self.tokens.len() >= n)
        }
    }

    #[test]
    fn the_standard_registry_holds_the_four_agents_in_order() {
        let r = AgentRegistry::standard();
        let names: Vec<&str> = r.list_agents().iter().map(|a| a.name).collect();
        assert_eq!(
            names,
            [
                "task_agent",
                "checkpoint_agent",
                "project_agent",
                "note_agent"
            ]
        );
        let tools: Vec<usize> = r.iter().map(|a| a.tools().len()).collect();
        assert_eq!(tools, [9, 5, 6, 5]);
        assert!(r.get("task_agent").is_some());
        assert!(r.get("weather_agent").is_none());
    }

    #[test]
    fn registering_a_second_agent_with_a_taken_name_is_refused() {
        let mut r = AgentRegistry::standard();
        let again = crate::chat::agents::all().remove(0);
        assert_eq!(
            r.register(again),
            Err(crate::chat::registry::RegistryError::Duplicate(
                "task_agent"
            ))
        );
        assert_eq!(r.list_agents().len(), 4);
    }

    #[tokio::test]
    async fn call_agent_reaches_the_named_agent_and_refuses_unknown_ones() {
        let server = model(vec![says("You have 2 tasks.")]).await;
        let llm = client(&server).await;
        let r = AgentRegistry::standard();
        let ctx = context();
        let input = AgentInput {
            query: "How many tasks?",
            context: &ctx,
            previous_results: &[],
            now_ms: NOW,
            handoff_to: &[],
        };
        let reply = r.call_agent("note_agent", &input, &llm).await.unwrap();
        assert_eq!(reply.agent, "note_agent");
        assert_eq!(reply.text, "You have 2 tasks.");
        let body = &sent(&server).await[0];
        let tools: Vec<&str> = body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            tools,
            [
                "list_notes",
                "get_note",
                "create_note",
                "update_note",
                "delete_note"
            ]
        );
        assert!(matches!(
            r.call_agent("ghost_agent", &input, &llm).await,
            Err(AppError::NotFound)
        ));
    }

    #[tokio::test]
    async fn the_tool_loop_feeds_results_back_until_the_model_answers() {
        let server = model(vec![
            calls("list_tasks", &json!({"status": "todo"})),
            calls(
                "create_task",
                &json!({"title": "Review report", "priority": "high"}),
            ),
            says("I prepared a review task."),
        ])
        .await;
        let llm = client(&server).await;
        let brain = Brain::standard();
        let o = Orchestrator::new(&brain, &llm, NOW);
        let reply = o
            .route_single("task_agent", "Plan a review of my open work", &context())
            .await
            .unwrap();
        assert_eq!(reply.text, "I prepared a review task.");
        assert_eq!(reply.llm_calls, 3);
        assert!(!reply.hit_bound);
        assert_eq!(reply.actions.len(), 1);
        assert_eq!(reply.actions[0].kind, PlanActionType::CreateRecord);
        assert_eq!(reply.actions[0].table.as_deref(), Some("tasks"));
        let bodies = sent(&server).await;
        let first_result = &tool_messages(&bodies[1])[0];
        assert!(first_result.contains("Write report"), "{first_result}");
        assert!(!first_result.contains("Call Ana"), "filtered by status");
        assert_eq!(tool_messages(&bodies[2]).len(), 2, "both results go back");
        assert_eq!(
            reply.prompt_tokens,
            3 * u64::from(crate::chat::openai::native::USAGE_PROMPT_TOKENS)
        );
    }

    #[tokio::test]
    async fn the_tool_loop_stops_at_its_bound_with_a_graceful_answer() {
        let answers = (0..MAX_ITER + 2)
            .map(|_| calls("list_tasks", &json!({})))
            .collect();
        let server = model(answers).await;
        let llm = client(&server).await;
        let brain = Brain::standard();
        let reply = Orchestrator::new(&brain, &llm, NOW)
            .route_single("task_agent", "loop forever", &context())
            .await
            .unwrap();
        assert!(reply.hit_bound);
        assert_eq!(reply.llm_calls, MAX_ITER);
        assert!(reply.text.contains("within 5 steps"), "{}", reply.text);
        assert_eq!(sent(&server).await.len(), 5, "exactly max_iter calls");
    }

    #[tokio::test]
    async fn malformed_or_unknown_tool_calls_go_back_to_the_model_as_tool_errors() {
        let malformed = json!({
            "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null, "tool_calls": [
                    {"id": "a", "type": "function",
                     "function": {"name": "create_task", "arguments": "{\"title\": "}},
                    {"id": "b", "type": "function",
                     "function": {"name": "format_disk", "arguments": "{}"}},
                    {"id": "c", "type": "function",
                     "function": {"name": "create_task", "arguments": "{\"title\": \"x\", \"status\": \"someday\"}"}}
                ]}}]
        });
        let server = model(vec![
            json_answer(&malformed),
            says("Sorry, let me retry later."),
        ])
        .await;
        let llm = client(&server).await;
        let brain = Brain::standard();
        let reply = Orchestrator::new(&brain, &llm, NOW)
            .route_single("task_agent", "add a task", &context())
            .await
            .unwrap();
        assert_eq!(reply.text, "Sorry, let me retry later.");
        assert!(reply.actions.is_empty(), "no action from a bad call");
        let results = tool_messages(&sent(&server).await[1]);
        assert_eq!(results.len(), 3);
        assert!(results[0].contains("invalid arguments"), "{}", results[0]);
        assert!(results[1].contains("unknown tool"), "{}", results[1]);
        assert!(results[2].contains("status"), "{}", results[2]);
    }

    #[tokio::test]
    async fn an_unclear_intent_falls_back_to_the_task_agent() {
        let server = model(vec![says("I think the weather service")]).await;
        let llm = client(&server).await;
        let brain = Brain::standard();
        let o = Orchestrator::new(&brain, &llm, NOW);
        let agents = o
            .classify_intent("Is it raining?", &context())
            .await
            .unwrap();
        assert_eq!(agents, ["task_agent"]);
        let body = &sent(&server).await[0];
        let system = body["messages"][0]["content"].as_str().unwrap();
        for name in [
            "task_agent",
            "checkpoint_agent",
            "project_agent",
            "note_agent",
        ] {
            assert!(system.contains(name), "the classifier sees {name}");
        }
        assert!(body.get("tools").is_none());
    }

    #[test]
    fn intent_answers_are_read_leniently_in_order_without_repeats() {
        let r = AgentRegistry::standard();
        assert_eq!(parse_intent("note_agent", &r), ["note_agent"]);
        assert_eq!(parse_intent("Project.", &r), ["project_agent"]);
        assert_eq!(
            parse_intent("project_agent, then note_agent, note_agent", &r),
            ["project_agent", "note_agent"]
        );
        assert_eq!(
            parse_intent("task, note, project, checkpoint", &r),
            ["task_agent", "note_agent", "project_agent"],
            "at most three"
        );
        assert!(parse_intent("none of them", &r).is_empty());
    }

    #[tokio::test]
    async fn a_pipeline_runs_agents_in_order_each_seeing_earlier_results_then_synthesizes() {
        let server = model(vec![
            says("project_agent, note_agent"),
            says("Apollo is active."),
            calls(
                "create_note",
                &json!({"title": "Apollo", "content": "Active."}),
            ),
            says("Noted."),
            says("Apollo is active and I prepared a note about it."),
        ])
        .await;
        let llm = client(&server).await;
        let brain = Brain::standard();
        let out = Orchestrator::new(&brain, &llm, NOW)
            .orchestrate(&request(
                "Check Apollo and write it down",
                ExecutionMode::Direct,
            ))
            .await
            .unwrap();
        let Orchestrated::Response(r) = out else {
            panic!("a response")
        };
        assert_eq!(
            r.response,
            "Apollo is active and I prepared a note about it."
        );
        assert_eq!(r.actions.len(), 2, "the note and its index_document");
        assert_eq!(r.actions[0].table.as_deref(), Some("notes"));
        let bodies = sent(&server).await;
        assert_eq!(bodies.len(), 5);
        assert!(
            bodies[2].to_string().contains("Apollo is active."),
            "the note agent saw it"
        );
        let synthesis = bodies[4].to_string();
        assert!(synthesis.contains("Summarize these agent results"));
        assert!(synthesis.contains("Noted."));
    }

    #[tokio::test]
    async fn plan_mode_answers_with_template_ids_and_caches_the_plan() {
        let server = model(vec![says("checkpoint_agent")]).await;
        let llm = client(&server).await;
        let brain = Brain::standard();
        let out = Orchestrator::new(&brain, &llm, NOW)
            .orchestrate(&request("Plan milestones for Apollo", ExecutionMode::Plan))
            .await
            .unwrap();
        let Orchestrated::Plan(plan) = out else {
            panic!("a plan")
        };
        assert_eq!(plan.id, "chat.checkpoint_agent");
        assert_eq!(
            plan.steps[0].prompt_template.as_deref(),
            Some("agent.checkpoint")
        );
        assert_eq!(brain.cached_plans(), 1);
        let text = serde_json::to_string(&plan).unwrap();
        assert!(!text.contains("Carry out this request"));
        assert_eq!(sent(&server).await.len(), 1, "only the classifier ran");
    }

    #[tokio::test]
    async fn replies_and_actions_leave_sanitized() {
        let leak = crate::chat::prompts::AGENT_COMMON[5];
        let server = model(vec![
            says("task_agent"),
            calls(
                "create_task",
                &json!({"title": "Leak", "description": leak}),
            ),
            says(&format!("Done. {leak} Anything else?")),
        ])
        .await;
        let llm = client(&server).await;
        let brain = Brain::standard();
        let Orchestrated::Response(r) = Orchestrator::new(&brain, &llm, NOW)
            .orchestrate(&request("add it", ExecutionMode::Direct))
            .await
            .unwrap()
        else {
            panic!("a response")
        };
        assert_eq!(r.response, "Done. Anything else?");
        let data = r.actions[0].data.as_ref().unwrap();
        assert_eq!(data["title"], "Leak");
        assert_eq!(data["description"], "");
    }

    #[tokio::test]
    async fn a_streamed_answer_is_sanitized_even_when_a_fragment_spans_tokens() {
        let leak = crate::chat::prompts::AGENT_COMMON[0];
        let (a, b) = leak.split_at(17);
        let server = model(vec![
            says("note_agent"),
            streams(&["Hello! ", a, b, " You have ", "no notes."]),
        ])
        .await;
        let llm = client(&server).await;
        let brain = Brain::standard();
        let mut sink = Collect::default();
        let out = Orchestrator::new(&brain, &llm, NOW)
            .orchestrate_stream(&request("hi", ExecutionMode::Direct), &mut sink)
            .await
            .unwrap();
        let streamed = sink.tokens.concat();
        assert_eq!(streamed, "Hello! You have no notes.");
        let Orchestrated::Response(r) = out else {
            panic!("a response")
        };
        assert_eq!(r.response, "Hello! You have no notes.");
        assert!(sink.tokens.len() > 1, "tokens arrive as they come");
    }

    #[tokio::test]
    async fn a_streamed_tool_call_runs_and_the_answer_streams_after_it() {
        let server = model(vec![
            says("task_agent"),
            ResponseTemplate::new(200).set_body_raw(
                sse_tool_calls_body(&[("c1", "delete_task", json!({"task_id": 2}))]),
                "text/event-stream",
            ),
            streams(&["Prepared ", "the deletion."]),
        ])
        .await;
        let llm = client(&server).await;
        let brain = Brain::standard();
        let mut sink = Collect::default();
        let Orchestrated::Response(r) = Orchestrator::new(&brain, &llm, NOW)
            .orchestrate_stream(
                &request("delete Call Ana", ExecutionMode::Direct),
                &mut sink,
            )
            .await
            .unwrap()
        else {
            panic!("a response")
        };
        assert_eq!(sink.tokens.concat(), "Prepared the deletion.");
        assert_eq!(r.actions.len(), 1);
        assert_eq!(r.actions[0].kind, PlanActionType::DeleteRecord);
    }

    #[tokio::test]
    async fn a_cancelled_stream_stops_early() {
        let server = model(vec![
            says("note_agent"),
            streams(&["one ", "two ", "three ", "four"]),
        ])
        .await;
        let llm = client(&server).await;
        let brain = Brain::standard();
        let mut sink = Collect {
            cancel_after: Some(1),
            ..Collect::default()
        };
        Orchestrator::new(&brain, &llm, NOW)
            .orchestrate_stream(&request("count", ExecutionMode::Direct), &mut sink)
            .await
            .unwrap();
        assert!(sink.tokens.len() < 4, "{:?}", sink.tokens);
    }

    #[tokio::test]
    async fn upstream_failures_map_to_503_and_unusable_answers_to_502() {
        let server = model(vec![
            ResponseTemplate::new(503),
            ResponseTemplate::new(503),
            ResponseTemplate::new(503),
        ])
        .await;
        let llm = client(&server).await;
        let brain = Brain::standard();
        let err = Orchestrator::new(&brain, &llm, NOW)
            .orchestrate(&request("hi", ExecutionMode::Direct))
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (503, "upstream_unavailable"));

        let server = model(vec![ResponseTemplate::new(200).set_body_string("<html>")]).await;
        let llm = client(&server).await;
        let err = Orchestrator::new(&brain, &llm, NOW)
            .orchestrate(&request("hi", ExecutionMode::Direct))
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (502, "upstream_unavailable"));
    }

    #[tokio::test]
    async fn without_a_key_chat_is_llm_not_configured() {
        let server = MockServer::start().await;
        let cfg = crate::chat::openai::native::test_config(&format!("{}/v1", server.uri()), None);
        let llm = OpenAiClient::new(crate::chat::openai::native::ReqwestHttp::new(), &cfg);
        let brain = Brain::standard();
        let err = Orchestrator::new(&brain, &llm, NOW)
            .orchestrate(&request("hi", ExecutionMode::Direct))
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (503, "llm_not_configured"));
        assert!(sent(&server).await.is_empty());
    }

    #[tokio::test]
    async fn run_step_renders_the_template_and_runs_its_agent() {
        let server = model(vec![
            calls(
                "create_task",
                &json!({"title": "Send figures", "priority": "high"}),
            ),
            says("Prepared the task."),
        ])
        .await;
        let llm = client(&server).await;
        let brain = Brain::standard();
        let vars = json!({"email_subject": "Q3", "email_body": "Please send the figures"});
        let out = Orchestrator::new(&brain, &llm, NOW)
            .run_step(
                "create_task_from_email",
                0,
                vars.as_object().unwrap(),
                Tier::Free,
            )
            .await
            .unwrap();
        assert_eq!(out.output, "Prepared the task.");
        assert_eq!(out.actions.len(), 1);
        let first = sent(&server).await[0].to_string();
        assert!(first.contains("The user forwarded an email"));
        assert!(first.contains("Please send the figures"));
    }

    #[tokio::test]
    async fn run_step_refuses_data_steps_tiers_unknown_plans_and_bad_indices() {
        let server = model(vec![says("A report.")]).await;
        let llm = client(&server).await;
        let brain = Brain::standard();
        let o = Orchestrator::new(&brain, &llm, NOW);
        let none = Map::new();
        let code = |r: Result<RunStepResponse, AppError>| r.unwrap_err().code();
        assert_eq!(
            code(
                o.run_step("generate_weekly_report", 0, &none, Tier::Free)
                    .await
            ),
            "tier_required"
        );
        assert_eq!(
            code(
                o.run_step("generate_weekly_report", 1, &none, Tier::Pro)
                    .await
            ),
            "validation_failed",
            "the data step is the app's"
        );
        assert_eq!(
            code(
                o.run_step("generate_weekly_report", 2, &none, Tier::Pro)
                    .await
            ),
            "validation_failed"
        );
        assert_eq!(
            code(o.run_step("nope", 0, &none, Tier::Team).await),
            "not_found"
        );
        let vars = json!({"previous_output": "x", "message": "m"});
        assert_eq!(
            code(
                o.run_step("chat.task_agent", 0, vars.as_object().unwrap(), Tier::Free)
                    .await
            ),
            "validation_failed",
            "a first step consumes nothing"
        );
        let tasks = json!({"tasks": [{"id": 1, "title": "x"}]});
        let out = o
            .run_step(
                "generate_weekly_report",
                0,
                tasks.as_object().unwrap(),
                Tier::Pro,
            )
            .await
            .unwrap();
        assert_eq!(out.output, "A report.");
        assert!(
            sent(&server).await[0].get("tools").is_none(),
            "a plain completion"
        );
    }

    #[test]
    fn playbooks_are_filtered_by_tier() {
        let brain = Brain::standard();
        let ids = |t| -> Vec<String> { brain.playbooks_for(t).into_iter().map(|p| p.id).collect() };
        assert_eq!(ids(Tier::Free), ["create_task_from_email"]);
        assert_eq!(ids(Tier::Pro).len(), 3);
        assert_eq!(ids(Tier::Power).len(), 4);
        assert_eq!(ids(Tier::Team).len(), 4);
        assert_eq!(
            brain
                .playbook("plan_project_milestones", Tier::Pro)
                .unwrap_err()
                .code(),
            "tier_required"
        );
        assert!(brain
            .playbook("plan_project_milestones", Tier::Power)
            .is_ok());
        assert_eq!(
            brain.playbook("nope", Tier::Team).unwrap_err().code(),
            "not_found"
        );
    }

    #[test]
    fn every_prompt_and_template_is_fingerprinted() {
        let brain = Brain::standard();
        let mut texts: Vec<String> = prompts::all_fragments().map(str::to_owned).collect();
        for a in brain.registry.iter() {
            texts.extend(a.prompt().iter().map(|s| (*s).to_owned()));
        }
        for text in texts {
            let cleaned = brain.sanitizer.clean(&text);
            assert!(cleaned.removed > 0, "not fingerprinted: {text}");
        }
        for t in brain.templates.iter() {
            let rendered = t.text.replace(['{', '}'], "");
            assert!(
                brain.sanitizer.clean(&rendered).removed > 0,
                "template {} not fingerprinted",
                t.id
            );
        }
    }

    /// The names a request offered as `hand_off` targets (`None`: no hand-off offered).
    fn handoff_targets(body: &Value) -> Option<Vec<String>> {
        body["tools"].as_array()?.iter().find_map(|t| {
            (t["function"]["name"] == "hand_off").then(|| {
                t["function"]["parameters"]["properties"]["agent"]["enum"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect()
            })
        })
    }

    fn user_text(body: &Value) -> String {
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "user")
            .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[tokio::test]
    async fn a_hand_off_asks_the_named_agent_with_its_request_and_keeps_both_agents_actions() {
        let server = model(vec![
            calls("create_task", &json!({"title": "Call Ana", "priority": "high"})),
            calls(
                "hand_off",
                &json!({"agent": "note_agent", "request": "Write a note: agenda for the call with Ana"}),
            ),
            calls(
                "create_note",
                &json!({"title": "Ana call", "content": "Agenda: the report."}),
            ),
            says("The task and the note are ready."),
        ])
        .await;
        let llm = client(&server).await;
        let brain = Brain::standard();
        let reply = Orchestrator::new(&brain, &llm, NOW)
            .route_single(
                "task_agent",
                "Remind me to call Ana and note an agenda",
                &context(),
            )
            .await
            .unwrap();
        assert_eq!(reply.agent, "task_agent>note_agent");
        assert_eq!(reply.text, "The task and the note are ready.");
        assert_eq!(reply.llm_calls, 4);
        let tables: Vec<Option<&str>> = reply.actions.iter().map(|a| a.table.as_deref()).collect();
        assert_eq!(tables[0], Some("tasks"), "{:?}", reply.actions);
        assert!(tables.contains(&Some("notes")), "{:?}", reply.actions);
        assert!(reply.handoff.is_none(), "the chain ran the hand-off");
        let bodies = sent(&server).await;
        assert_eq!(bodies.len(), 4);
        assert_eq!(
            handoff_targets(&bodies[0]).unwrap(),
            ["checkpoint_agent", "project_agent", "note_agent"],
            "every other enabled agent, in registry order"
        );
        let asked = user_text(&bodies[2]);
        assert!(
            asked.contains("Write a note: agenda for the call with Ana"),
            "{asked}"
        );
        assert_eq!(
            handoff_targets(&bodies[2]).unwrap(),
            ["checkpoint_agent", "project_agent"],
            "never back to an agent of the chain"
        );
    }

    #[tokio::test]
    async fn hand_offs_stop_at_two_per_request_and_never_go_back_along_the_chain() {
        let server = model(vec![
            calls(
                "hand_off",
                &json!({"agent": "note_agent", "request": "first"}),
            ),
            calls(
                "hand_off",
                &json!({"agent": "task_agent", "request": "back again"}),
            ),
            calls(
                "hand_off",
                &json!({"agent": "project_agent", "request": "second"}),
            ),
            calls(
                "hand_off",
                &json!({"agent": "checkpoint_agent", "request": "third"}),
            ),
            says("Done by the project agent."),
        ])
        .await;
        let llm = client(&server).await;
        let brain = Brain::standard();
        let reply = Orchestrator::new(&brain, &llm, NOW)
            .route_single("task_agent", "Do everything", &context())
            .await
            .unwrap();
        assert_eq!(reply.agent, "task_agent>note_agent>project_agent");
        assert_eq!(reply.text, "Done by the project agent.");
        let bodies = sent(&server).await;
        assert_eq!(bodies.len(), 5);
        let refused = tool_messages(&bodies[2]).join(" ");
        assert!(
            refused.contains("agent must be one of") && !refused.contains("task_agent,"),
            "the cycle went back to the model as a tool error: {refused}"
        );
        assert_eq!(
            handoff_targets(&bodies[3]),
            None,
            "two hand-offs used: none offered"
        );
        let unknown = tool_messages(&bodies[4]).join(" ");
        assert!(unknown.contains("unknown tool `hand_off`"), "{unknown}");
    }

    #[tokio::test]
    async fn a_disabled_agent_is_never_a_hand_off_target() {
        let server = model(vec![
            calls(
                "hand_off",
                &json!({"agent": "project_agent", "request": "check Apollo"}),
            ),
            says("I cannot hand that off."),
        ])
        .await;
        let llm = client(&server).await;
        let brain = Brain::standard();
        let reply = Orchestrator::new(&brain, &llm, NOW)
            .with_enabled_agents(EnabledAgents::only(["task_agent", "note_agent"]))
            .route_single("task_agent", "Check Apollo", &context())
            .await
            .unwrap();
        assert_eq!(reply.agent, "task_agent");
        let bodies = sent(&server).await;
        assert_eq!(handoff_targets(&bodies[0]).unwrap(), ["note_agent"]);
        assert!(tool_messages(&bodies[1])
            .join(" ")
            .contains("agent must be one of: note_agent"));
    }

    #[tokio::test]
    async fn a_hand_off_with_bad_arguments_goes_back_to_the_model() {
        for (args, expected) in [
            (json!({"agent": "note_agent"}), "expected {agent, request}"),
            (
                json!({"agent": "note_agent", "request": "  "}),
                "request must be 1 to 2000",
            ),
            (
                json!({"agent": "note_agent", "request": "x".repeat(2001)}),
                "request must be 1 to 2000",
            ),
            (
                json!({"agent": "note_agent", "request": "ok", "extra": 1}),
                "expected {agent, request}",
            ),
        ] {
            let server = model(vec![calls("hand_off", &args), says("Fine, I answer.")]).await;
            let llm = client(&server).await;
            let brain = Brain::standard();
            let reply = Orchestrator::new(&brain, &llm, NOW)
                .route_single("task_agent", "Hand it on", &context())
                .await
                .unwrap();
            assert_eq!(reply.agent, "task_agent", "{args}");
            let told = tool_messages(&sent(&server).await[1]).join(" ");
            assert!(told.contains(expected), "{args}: {told}");
        }
    }
}
