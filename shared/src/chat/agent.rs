//! The agent contract (plan Step 3) and the one bounded tool-calling loop every agent shares.

use std::fmt::Write as _;

use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::api::{ChatContext, PlanAction};
use crate::error::{AppError, Upstream};
use crate::ports::{Llm, LlmDelta, LlmMessage, LlmRequest, LlmResponse, LlmTool};

use super::prompts;

/// LLM calls one agent may make for one request (the plan's `max_iter`).
pub const MAX_ITER: u32 = 5;
/// Tool calls accepted from one model turn; more are answered with an error.
pub const MAX_CALLS_PER_TURN: usize = 16;
/// Earlier conversation turns passed to the model.
pub const HISTORY_TURNS: usize = 20;
/// Hand-offs one request may make in all (agent to agent, see [`HANDOFF_TOOL`]).
pub const MAX_HANDOFFS: usize = 2;
/// The tool an agent is offered when it may hand off: `{agent, request}` names another enabled
/// agent that has not answered in this request yet, and what it should do.
pub const HANDOFF_TOOL: &str = "hand_off";
/// The longest hand-off request (characters).
pub const MAX_HANDOFF_REQUEST_CHARS: usize = 2000;

/// What a tool sees: the request's context and the time.
#[derive(Debug, Clone, Copy)]
pub struct ToolContext<'a> {
    /// The app's data for this request.
    pub context: &'a ChatContext,
    /// Now, ms since the epoch.
    pub now_ms: i64,
}

/// What a tool produced: a result for the model and changes for the app.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
    /// The tool's answer, sent back to the model as JSON.
    pub result: Value,
    /// Changes for the app to apply (write tools).
    pub actions: Vec<PlanAction>,
}

impl ToolOutcome {
    /// A read result with no actions.
    pub fn read(result: Value) -> Self {
        Self {
            result,
            actions: Vec::new(),
        }
    }
}

/// Why a tool call failed. The message goes back to the model (never to the user as an error),
/// so it must say what to fix and must not echo prompt text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The model named a tool this agent does not have.
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    /// The arguments are not valid JSON or break the tool's schema.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The arguments are valid but name something the context does not hold.
    #[error("not found: {0}")]
    NotFound(String),
}

/// An earlier agent's result in a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousResult {
    /// The agent.
    pub agent: String,
    /// What it answered.
    pub text: String,
}

/// One request to an agent.
#[derive(Debug, Clone, Copy)]
pub struct AgentInput<'a> {
    /// What to do (the user's message, or an instruction rendered from a template).
    pub query: &'a str,
    /// The app's data for this request.
    pub context: &'a ChatContext,
    /// Results of earlier agents in a pipeline.
    pub previous_results: &'a [PreviousResult],
    /// Now, ms since the epoch.
    pub now_ms: i64,
    /// The agents this one may hand off to (enabled, none that answered in this request yet);
    /// empty: no hand-off is offered.
    pub handoff_to: &'a [&'a str],
}

/// An agent's hand-off: the agent to ask next and what to ask it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandOff {
    /// One of the [`AgentInput::handoff_to`] names.
    pub to: String,
    /// What the next agent should do.
    pub request: String,
}

/// What an agent answered.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentReply {
    /// The agent.
    pub agent: String,
    /// Its text (not yet sanitized).
    pub text: String,
    /// Changes for the app, in the order the tools produced them.
    pub actions: Vec<PlanAction>,
    /// LLM calls made.
    pub llm_calls: u32,
    /// Whether the loop stopped at [`MAX_ITER`] with tool calls still pending.
    pub hit_bound: bool,
    /// Whether the stream's consumer cancelled it.
    pub cancelled: bool,
    /// Prompt tokens used.
    pub prompt_tokens: u64,
    /// Completion tokens used.
    pub completion_tokens: u64,
    /// The hand-off the agent ended its turn with, if any (the orchestrator runs it).
    pub handoff: Option<HandOff>,
}

impl AgentReply {
    /// A reply from `agent` with nothing in it yet.
    pub fn new(agent: &str) -> Self {
        Self {
            agent: agent.to_owned(),
            text: String::new(),
            actions: Vec::new(),
            llm_calls: 0,
            hit_bound: false,
            cancelled: false,
            prompt_tokens: 0,
            completion_tokens: 0,
            handoff: None,
        }
    }

    /// Counts one LLM call and its usage.
    pub fn count(&mut self, resp: &LlmResponse) {
        self.llm_calls += 1;
        self.prompt_tokens += u64::from(resp.prompt_tokens);
        self.completion_tokens += u64::from(resp.completion_tokens);
    }
}

/// Where streamed text goes (the WebSocket, through the stream sanitizer).
pub trait TokenSink {
    /// More text for the user.
    fn token(&mut self, text: &str);
    /// Whether the consumer asked to stop.
    fn cancelled(&self) -> bool {
        false
    }
}

/// A chat agent: a name, a description for the router, tools, and its prompt fragments.
#[async_trait(?Send)]
pub trait ChatAgent {
    /// Registry name (`task_agent`, …).
    fn name(&self) -> &'static str;
    /// One line for the intent classifier and `list_agents`.
    fn description(&self) -> &'static str;
    /// Its display title for `GET /agents` when it has one of its own (plugin agents: the
    /// plugin's name and the agent's); built-in agents' titles are [`super::allowance::title`].
    fn title(&self) -> Option<&'static str> {
        None
    }
    /// The agent's system-prompt fragments (server-side only; fingerprinted by the sanitizer).
    fn prompt(&self) -> &'static [&'static str];
    /// The tools offered to the model, with JSON-Schema parameters.
    fn tools(&self) -> Vec<LlmTool>;
    /// Runs one tool call on the request's context. `arguments` is the model's raw JSON text.
    fn call_tool(
        &self,
        name: &str,
        arguments: &str,
        ctx: &ToolContext<'_>,
    ) -> Result<ToolOutcome, ToolError>;

    /// Answers `input`, calling tools as the model asks (at most [`MAX_ITER`] LLM calls).
    async fn handle(&self, input: &AgentInput<'_>, llm: &dyn Llm) -> Result<AgentReply, AppError> {
        tool_loop(self, input, llm, None).await
    }

    /// As [`ChatAgent::handle`], streaming the model's text to `sink` as it arrives.
    async fn handle_stream(
        &self,
        input: &AgentInput<'_>,
        llm: &dyn Llm,
        sink: &mut dyn TokenSink,
    ) -> Result<AgentReply, AppError> {
        tool_loop(self, input, llm, Some(sink)).await
    }
}

/// The messages an agent starts from: its system prompt, the context it may quote, the
/// conversation so far and the query.
pub fn initial_messages(
    prompt: &[&str],
    input: &AgentInput<'_>,
    utc_offset_minutes: i64,
) -> Vec<LlmMessage> {
    let mut messages = vec![LlmMessage::system(prompts::compose_agent(
        prompt,
        input.now_ms,
        utc_offset_minutes,
    ))];
    let history = &input.context.conversation_history;
    for turn in history
        .iter()
        .skip(history.len().saturating_sub(HISTORY_TURNS))
    {
        let role = turn.get("role").and_then(Value::as_str);
        let content = turn.get("content").and_then(Value::as_str);
        if let (Some(role @ ("user" | "assistant")), Some(content)) = (role, content) {
            messages.push(LlmMessage::text(role, content));
        }
    }
    let mut preamble = String::new();
    if !input.context.relevant_documents.is_empty() {
        preamble.push_str("Documents from my workspace that may help:\n");
        for doc in &input.context.relevant_documents {
            preamble.push_str("- ");
            preamble.push_str(doc);
            preamble.push('\n');
        }
    }
    if !input.previous_results.is_empty() {
        preamble.push_str("Results of earlier steps:\n");
        for r in input.previous_results {
            let _ = writeln!(preamble, "- {}: {}", r.agent, r.text);
        }
    }
    if preamble.is_empty() {
        messages.push(LlmMessage::text("user", input.query));
    } else {
        messages.push(LlmMessage::text(
            "user",
            format!("{preamble}\nRequest: {}", input.query),
        ));
    }
    messages
}

/// The user's offset from UTC in minutes, from `user_profile.utc_offset_minutes` (default 0,
/// clamped to ±14 h).
pub fn utc_offset_minutes(context: &ChatContext) -> i64 {
    context
        .user_profile
        .get("utc_offset_minutes")
        .and_then(Value::as_f64)
        .filter(|m| m.is_finite())
        .map_or(0, |m| {
            #[allow(clippy::cast_possible_truncation)]
            let m = m.round().clamp(-840.0, 840.0) as i64;
            m
        })
}

/// The shared tool-calling loop: ask the model, run the tools it calls, feed the results back,
/// until it answers in text or [`MAX_ITER`] calls were made (then a graceful answer with the
/// actions prepared so far). A bad tool call goes back to the model as a tool error.
pub async fn tool_loop<A: ChatAgent + ?Sized>(
    agent: &A,
    input: &AgentInput<'_>,
    llm: &dyn Llm,
    mut sink: Option<&mut dyn TokenSink>,
) -> Result<AgentReply, AppError> {
    let tool_ctx = ToolContext {
        context: input.context,
        now_ms: input.now_ms,
    };
    let mut tools = agent.tools();
    let offer_handoff =
        !input.handoff_to.is_empty() && !tools.iter().any(|t| t.name == HANDOFF_TOOL);
    if offer_handoff {
        tools.push(handoff_tool(input.handoff_to));
    }
    let mut req = LlmRequest {
        label: agent.name().to_owned(),
        messages: initial_messages(agent.prompt(), input, utc_offset_minutes(input.context)),
        tools,
    };
    let mut reply = AgentReply::new(agent.name());
    for _ in 0..MAX_ITER {
        let resp = match sink.as_deref_mut() {
            None => llm
                .complete(&req)
                .await
                .map_err(|e| e.into_app_error(Upstream::Llm))?,
            Some(sink) => {
                let Some(resp) = stream_once(llm, &req, sink).await? else {
                    reply.llm_calls += 1;
                    reply.cancelled = true;
                    return Ok(reply);
                };
                resp
            }
        };
        reply.count(&resp);
        let message = resp.message;
        if message.tool_calls.is_empty() {
            reply.text = message.content.unwrap_or_default();
            return Ok(reply);
        }
        let calls = message.tool_calls.clone();
        let said = message.content.clone().unwrap_or_default();
        req.messages.push(message);
        for (i, call) in calls.iter().enumerate() {
            let outcome = if i >= MAX_CALLS_PER_TURN {
                Err(ToolError::InvalidArguments(format!(
                    "at most {MAX_CALLS_PER_TURN} tool calls per turn; call the rest next turn"
                )))
            } else if offer_handoff && call.name == HANDOFF_TOOL {
                match parse_handoff(&call.arguments, input.handoff_to) {
                    Ok(handoff) => {
                        tracing::info!(from = agent.name(), to = %handoff.to, "agent hands off");
                        reply.handoff = Some(handoff);
                        // The turn ends here: the next agent answers. Text the model wrote
                        // beside the call is kept for it as this agent's result.
                        reply.text = said;
                        return Ok(reply);
                    }
                    Err(e) => Err(e),
                }
            } else {
                agent.call_tool(&call.name, &call.arguments, &tool_ctx)
            };
            let content = match outcome {
                Ok(out) => {
                    reply.actions.extend(out.actions);
                    out.result
                }
                Err(e) => {
                    tracing::info!(
                        agent = agent.name(),
                        tool = %call.name,
                        kind = tool_error_kind(&e),
                        "tool call refused"
                    );
                    json!({ "error": e.to_string() })
                }
            };
            req.messages
                .push(LlmMessage::tool_result(&call.id, &content));
        }
    }
    reply.hit_bound = true;
    reply.text = prompts::bound_reached(MAX_ITER, reply.actions.len());
    tracing::info!(
        agent = agent.name(),
        actions = reply.actions.len(),
        "tool loop reached its bound"
    );
    if let Some(sink) = sink {
        sink.token(&reply.text);
    }
    Ok(reply)
}

/// The hand-off tool offered to an agent that may hand off to `targets`.
fn handoff_tool(targets: &[&str]) -> LlmTool {
    LlmTool {
        name: HANDOFF_TOOL.to_owned(),
        description: "Hand the rest of this request to another assistant agent better suited \
                      to it. Call it alone, as your last step; that agent answers the user."
            .to_owned(),
        parameters: json!({
            "type": "object",
            "properties": {
                "agent": {"type": "string", "enum": targets},
                "request": {
                    "type": "string",
                    "description": "What that agent should do, in full.",
                    "maxLength": MAX_HANDOFF_REQUEST_CHARS,
                },
            },
            "required": ["agent", "request"],
            "additionalProperties": false,
        }),
    }
}

/// A hand-off call's arguments, checked: a target of `targets`, a request of 1 to
/// [`MAX_HANDOFF_REQUEST_CHARS`] characters, nothing else.
fn parse_handoff(arguments: &str, targets: &[&str]) -> Result<HandOff, ToolError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Args {
        agent: String,
        request: String,
    }
    let args: Args = serde_json::from_str(arguments)
        .map_err(|_| ToolError::InvalidArguments("expected {agent, request}".to_owned()))?;
    if !targets.contains(&args.agent.as_str()) {
        return Err(ToolError::InvalidArguments(format!(
            "agent must be one of: {} (an agent that already answered in this request, or one \
             that is not enabled, cannot be handed to)",
            targets.join(", ")
        )));
    }
    let request = args.request.trim();
    let chars = request.chars().count();
    if chars == 0 || chars > MAX_HANDOFF_REQUEST_CHARS {
        return Err(ToolError::InvalidArguments(format!(
            "request must be 1 to {MAX_HANDOFF_REQUEST_CHARS} characters"
        )));
    }
    Ok(HandOff {
        to: args.agent,
        request: request.to_owned(),
    })
}

fn tool_error_kind(e: &ToolError) -> &'static str {
    match e {
        ToolError::UnknownTool(_) => "unknown_tool",
        ToolError::InvalidArguments(_) => "invalid_arguments",
        ToolError::NotFound(_) => "not_found",
    }
}

/// One streamed completion: text goes to `sink` as it arrives. `None` if the consumer
/// cancelled.
pub(crate) async fn stream_once(
    llm: &dyn Llm,
    req: &LlmRequest,
    sink: &mut dyn TokenSink,
) -> Result<Option<LlmResponse>, AppError> {
    let mut stream = llm
        .stream(req)
        .await
        .map_err(|e| e.into_app_error(Upstream::Llm))?;
    while let Some(event) = stream.next().await {
        if sink.cancelled() {
            return Ok(None);
        }
        match event.map_err(|e| e.into_app_error(Upstream::Llm))? {
            LlmDelta::Text(t) => sink.token(&t),
            LlmDelta::Done(resp) => return Ok(Some(resp)),
        }
    }
    Err(AppError::UpstreamUnavailable {
        service: Upstream::Llm,
        bad_gateway: true,
        detail: "the stream ended without a final event".to_owned(),
    })
}
