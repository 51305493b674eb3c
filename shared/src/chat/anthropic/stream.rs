//! Reading a streamed Messages answer: the events become text deltas and one assembled answer.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::wire::{ErrorDetail, Usage};
use super::API;
use crate::chat::sse::SseEvent;
use crate::chat::upstream::{
    json_problem, Emitter, StreamDecoder, UsageLog, MAX_STREAMED_MESSAGE_BYTES,
    MAX_STREAMED_TOOL_CALLS,
};
use crate::ports::{LlmMessage, LlmResponse, LlmToolCall, UpstreamError};

/// The decoder of one streamed answer.
pub(super) struct EventDecoder {
    label: String,
    model: String,
    attempts: u32,
    text: String,
    /// Content blocks by their index.
    blocks: BTreeMap<usize, Block>,
    bytes: usize,
    usage: Usage,
    /// A `message_delta` gave the stop reason: the answer is complete even if `message_stop`
    /// never comes.
    stopped: bool,
}

enum Block {
    Text,
    ToolUse {
        id: String,
        name: String,
        /// The `input_json_delta` pieces so far.
        json: String,
        /// The `input` of `content_block_start` (used when no delta came).
        initial: Value,
    },
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: usize,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: usize,
        delta: Delta,
    },
    ContentBlockStop {},
    MessageDelta {
        #[serde(default)]
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<Usage>,
    },
    MessageStop {},
    Ping {},
    Error {
        error: ErrorDetail,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum Delta {
    #[serde(rename = "text_delta")]
    Text { text: String },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: String },
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

impl EventDecoder {
    pub(super) fn new(label: String, model: String, attempts: u32) -> Self {
        Self {
            label,
            model,
            attempts,
            text: String::new(),
            blocks: BTreeMap::new(),
            bytes: 0,
            usage: Usage::default(),
            stopped: false,
        }
    }

    fn on_text(&mut self, text: String, out: &mut Emitter) {
        if !text.is_empty() {
            self.bytes += text.len();
            self.text.push_str(&text);
            out.text(text);
        }
    }

    fn on_block_start(&mut self, index: usize, block: StartBlock, out: &mut Emitter) {
        let tool_uses = self
            .blocks
            .values()
            .filter(|b| matches!(b, Block::ToolUse { .. }))
            .count();
        let block = match block {
            StartBlock::Text { text } => {
                self.on_text(text, out);
                Block::Text
            }
            StartBlock::ToolUse { .. } if tool_uses >= MAX_STREAMED_TOOL_CALLS => {
                return out.fail(UpstreamError::BadResponse(format!(
                    "anthropic stream: more than {MAX_STREAMED_TOOL_CALLS} tool calls"
                )));
            }
            StartBlock::ToolUse { id, name, input } => {
                self.bytes += id.len() + name.len();
                Block::ToolUse {
                    id,
                    name,
                    json: String::new(),
                    initial: input,
                }
            }
            StartBlock::Other => Block::Other,
        };
        if self.blocks.insert(index, block).is_some() {
            out.fail(UpstreamError::BadResponse(
                "anthropic stream: a content block started twice".to_owned(),
            ));
        }
    }

    fn on_delta(&mut self, index: usize, delta: Delta, out: &mut Emitter) {
        match delta {
            Delta::Text { text } => self.on_text(text, out),
            Delta::InputJson { partial_json } => {
                let Some(Block::ToolUse { json, .. }) = self.blocks.get_mut(&index) else {
                    return out.fail(UpstreamError::BadResponse(
                        "anthropic stream: tool input for a block that is no tool_use".to_owned(),
                    ));
                };
                self.bytes += partial_json.len();
                json.push_str(&partial_json);
            }
            Delta::Other => {}
        }
    }

    fn succeed(&mut self, out: &mut Emitter) {
        let mut tool_calls = Vec::new();
        for block in std::mem::take(&mut self.blocks).into_values() {
            if let Block::ToolUse {
                id,
                name,
                json,
                initial,
            } = block
            {
                if id.is_empty() || name.is_empty() {
                    return out.fail(UpstreamError::BadResponse(
                        "anthropic stream: a tool call without an id or a name".to_owned(),
                    ));
                }
                let arguments = if !json.is_empty() {
                    json
                } else if initial.is_object() {
                    initial.to_string()
                } else {
                    "{}".to_owned()
                };
                tool_calls.push(LlmToolCall {
                    id,
                    name,
                    arguments,
                });
            }
        }
        let (prompt_tokens, completion_tokens) = self.usage.counts();
        UsageLog {
            api: API,
            label: &self.label,
            model: &self.model,
            attempts: self.attempts,
            streamed: true,
        }
        .log(prompt_tokens, completion_tokens);
        let text = std::mem::take(&mut self.text);
        out.done(LlmResponse {
            message: LlmMessage {
                role: "assistant".to_owned(),
                content: (!text.is_empty()).then_some(text),
                tool_calls,
                tool_call_id: None,
            },
            prompt_tokens,
            completion_tokens,
        });
    }
}

impl StreamDecoder for EventDecoder {
    const API: &'static str = API;
    const END_MARKER: &'static str = "message_stop";

    fn on_event(&mut self, event: &SseEvent, out: &mut Emitter) {
        let parsed: Event = match serde_json::from_str(&event.data) {
            Ok(e) => e,
            Err(e) => {
                return out.fail(UpstreamError::BadResponse(format!(
                    "anthropic stream: malformed event: {}",
                    json_problem(&e)
                )))
            }
        };
        match parsed {
            Event::MessageStart { message } => {
                if let Some(usage) = message.usage {
                    self.usage.update(usage);
                }
            }
            Event::ContentBlockStart {
                index,
                content_block,
            } => self.on_block_start(index, content_block, out),
            Event::ContentBlockDelta { index, delta } => self.on_delta(index, delta, out),
            Event::MessageDelta { delta, usage } => {
                if let Some(usage) = usage {
                    self.usage.update(usage);
                }
                self.stopped |= delta.stop_reason.is_some();
            }
            Event::MessageStop {} => return self.succeed(out),
            Event::Error { error } => {
                return out.fail(UpstreamError::Unavailable(format!(
                    "anthropic stream: error event{}",
                    error.describe()
                )))
            }
            Event::ContentBlockStop {} | Event::Ping {} | Event::Unknown => {}
        }
        if self.bytes > MAX_STREAMED_MESSAGE_BYTES {
            out.fail(UpstreamError::BadResponse(format!(
                "anthropic stream: answer longer than {MAX_STREAMED_MESSAGE_BYTES} bytes"
            )));
        }
    }

    fn on_body_end(&mut self, open: Option<SseEvent>, out: &mut Emitter) {
        // An unterminated last event counts only if it is the end; anything else is a cut.
        let open_is_stop = open.is_some_and(|e| {
            serde_json::from_str::<Event>(&e.data).is_ok_and(|e| matches!(e, Event::MessageStop {}))
        });
        if open_is_stop || self.stopped {
            self.succeed(out);
        }
    }
}
