//! The Messages API's wire shapes, and the mapping from and to [`LlmRequest`] / [`LlmMessage`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ports::{LlmMessage, LlmRequest, LlmToolCall, UpstreamError};

/// A `POST /messages` body.
#[derive(Debug, Serialize)]
pub struct WireRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

/// One turn of the conversation.
#[derive(Debug, Serialize)]
struct Turn<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

/// A content block of a request's turn.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: &'a str,
    },
}

/// A tool offered to the model.
#[derive(Debug, Serialize)]
struct Tool<'a> {
    name: &'a str,
    description: &'a str,
    input_schema: &'a Value,
}

impl<'a> WireRequest<'a> {
    /// The body for `req` to `model`.
    ///
    /// System (and developer) messages are joined with blank lines into `system`; user and
    /// assistant messages become turns, an assistant's tool calls `tool_use` blocks (their
    /// arguments parsed back into the `input` object; arguments that are no JSON object, which
    /// only a confused model produces, are sent as `{}` — the tool loop has already answered
    /// them with an error), tool results `tool_result` blocks of a user turn. Empty texts are
    /// dropped and consecutive turns of one role merged, as the API requires; assistant turns
    /// before the first user turn (a history cut to its last turns, an app's greeting) are
    /// dropped, since Anthropic-compatible servers (Bedrock, older API versions) refuse a
    /// conversation that does not start with the user.
    ///
    /// # Errors
    /// [`UpstreamError::Rejected`] for a message of an unknown role or a tool result without
    /// its call id (programming errors; nothing is sent).
    pub fn new(
        model: &'a str,
        max_tokens: u32,
        req: &'a LlmRequest,
        stream: bool,
    ) -> Result<Self, UpstreamError> {
        let mut system: Vec<&str> = Vec::new();
        let mut turns: Vec<Turn<'a>> = Vec::new();
        for m in &req.messages {
            let text = m.content.as_deref().filter(|t| !t.is_empty());
            let (role, blocks) = match m.role.as_str() {
                "system" | "developer" => {
                    system.extend(text);
                    continue;
                }
                "user" => (
                    "user",
                    text.map(|text| Block::Text { text }).into_iter().collect(),
                ),
                "assistant" => ("assistant", assistant_blocks(m, text)),
                "tool" => {
                    let tool_use_id = m.tool_call_id.as_deref().ok_or_else(|| {
                        UpstreamError::Rejected(
                            "anthropic: a tool result without its call id".to_owned(),
                        )
                    })?;
                    let content = m.content.as_deref().unwrap_or_default();
                    (
                        "user",
                        vec![Block::ToolResult {
                            tool_use_id,
                            content,
                        }],
                    )
                }
                _ => {
                    return Err(UpstreamError::Rejected(
                        "anthropic: a message of an unknown role".to_owned(),
                    ))
                }
            };
            if blocks.is_empty() {
                continue;
            }
            match turns.last_mut() {
                Some(last) if last.role == role => last.content.extend(blocks),
                _ => turns.push(Turn {
                    role,
                    content: blocks,
                }),
            }
        }
        let first_user = turns
            .iter()
            .position(|t| t.role == "user")
            .unwrap_or(turns.len());
        turns.drain(..first_user);
        Ok(Self {
            model,
            max_tokens,
            system: (!system.is_empty()).then(|| system.join("\n\n")),
            messages: turns,
            tools: req
                .tools
                .iter()
                .map(|t| Tool {
                    name: &t.name,
                    description: &t.description,
                    input_schema: &t.parameters,
                })
                .collect(),
            stream,
        })
    }
}

fn assistant_blocks<'a>(m: &'a LlmMessage, text: Option<&'a str>) -> Vec<Block<'a>> {
    let mut blocks: Vec<Block<'a>> = text.map(|text| Block::Text { text }).into_iter().collect();
    for call in &m.tool_calls {
        blocks.push(Block::ToolUse {
            id: &call.id,
            name: &call.name,
            input: tool_input(&call.arguments),
        });
    }
    blocks
}

/// A tool call's arguments as the `input` object the API wants.
pub(super) fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => Value::Object(serde_json::Map::new()),
    }
}

/// A (non-streamed) answer.
#[derive(Debug, Deserialize)]
pub struct Message {
    /// Its content blocks.
    pub content: Vec<ContentBlock>,
    /// Token counts.
    #[serde(default)]
    pub usage: Usage,
}

/// A content block of an answer.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call.
    ToolUse {
        /// Call id (`toolu_…`).
        id: String,
        /// Tool name.
        name: String,
        /// Arguments (an object).
        #[serde(default)]
        input: Value,
    },
    /// Anything else (thinking, …): ignored.
    #[serde(other)]
    Other,
}

/// Token counts of an answer (cumulative in streams).
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct Usage {
    /// Uncached input tokens.
    #[serde(default)]
    pub input_tokens: Option<u32>,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: Option<u32>,
    /// Input tokens written to the prompt cache.
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u32>,
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read_input_tokens: Option<u32>,
}

impl Usage {
    /// `(prompt, completion)` tokens: every input token (cached or not), and the output.
    pub fn counts(&self) -> (u32, u32) {
        let input = [
            self.input_tokens,
            self.cache_creation_input_tokens,
            self.cache_read_input_tokens,
        ]
        .into_iter()
        .flatten()
        .fold(0u32, u32::saturating_add);
        (input, self.output_tokens.unwrap_or(0))
    }

    /// Takes the counts `later` gives (a stream's `message_delta` repeats or updates them).
    pub fn update(&mut self, later: Usage) {
        for (mine, theirs) in [
            (&mut self.input_tokens, later.input_tokens),
            (&mut self.output_tokens, later.output_tokens),
            (
                &mut self.cache_creation_input_tokens,
                later.cache_creation_input_tokens,
            ),
            (
                &mut self.cache_read_input_tokens,
                later.cache_read_input_tokens,
            ),
        ] {
            if theirs.is_some() {
                *mine = theirs;
            }
        }
    }
}

/// The text (concatenated, `None` when empty) and tool calls of an answer's blocks, in order.
pub fn read_content(blocks: Vec<ContentBlock>) -> (Option<String>, Vec<LlmToolCall>) {
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::Text { text: t } => text.push_str(&t),
            ContentBlock::ToolUse { id, name, input } => calls.push(LlmToolCall {
                id,
                name,
                arguments: if input.is_null() {
                    "{}".to_owned()
                } else {
                    input.to_string()
                },
            }),
            ContentBlock::Other => {}
        }
    }
    ((!text.is_empty()).then_some(text), calls)
}

/// An error answer: `{"type": "error", "error": {"type", "message"}}`.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An Anthropic error object; its `message` is deliberately not read.
#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    /// `invalid_request_error`, `overloaded_error`, …
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

impl ErrorDetail {
    /// ` (type)` when known and plausible, else nothing.
    pub fn describe(&self) -> String {
        match &self.kind {
            Some(kind)
                if kind.len() <= 64
                    && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
            {
                format!(" ({kind})")
            }
            _ => String::new(),
        }
    }
}
