//! Anthropic answers for tests: builders of Messages bodies and event streams.

use serde_json::{json, Value};

/// Input tokens in every builder's usage.
pub(crate) const USAGE_INPUT_TOKENS: u32 = 13;
/// Output tokens in every builder's usage.
pub(crate) const USAGE_OUTPUT_TOKENS: u32 = 5;

fn message(content: &[Value], stop_reason: &str) -> Value {
    json!({
        "id": "msg_test", "type": "message", "role": "assistant", "model": "claude-test",
        "content": content, "stop_reason": stop_reason, "stop_sequence": null,
        "usage": {"input_tokens": USAGE_INPUT_TOKENS, "output_tokens": USAGE_OUTPUT_TOKENS},
    })
}

/// A Messages answer saying `text`.
pub(crate) fn text_message(text: &str) -> Value {
    message(&[json!({"type": "text", "text": text})], "end_turn")
}

/// A Messages answer asking for tool calls, each `(id, name, input)`.
pub(crate) fn tool_use_message(calls: &[(&str, &str, Value)]) -> Value {
    let blocks: Vec<Value> = calls
        .iter()
        .map(
            |(id, name, input)| json!({"type": "tool_use", "id": id, "name": name, "input": input}),
        )
        .collect();
    message(&blocks, "tool_use")
}

fn event(kind: &str, data: &Value) -> String {
    format!("event: {kind}\ndata: {data}\n\n")
}

fn start() -> String {
    event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": "msg_test", "type": "message", "role": "assistant", "model": "claude-test",
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": USAGE_INPUT_TOKENS, "output_tokens": 1},
        }}),
    )
}

fn end(stop_reason: &str) -> String {
    event(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": USAGE_OUTPUT_TOKENS}}),
    ) + &event("message_stop", &json!({"type": "message_stop"}))
}

fn text_block(index: usize, pieces: &[&str]) -> String {
    let mut body = event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": index,
                "content_block": {"type": "text", "text": ""}}),
    );
    for piece in pieces {
        body.push_str(&event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": piece}}),
        ));
    }
    body + &event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": index}),
    )
}

fn tool_use_block(index: usize, id: &str, name: &str, input: &Value) -> String {
    let mut body = event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": index,
                "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
    );
    let json: Vec<char> = input.to_string().chars().collect();
    for piece in json.chunks(5) {
        let piece: String = piece.iter().collect();
        body.push_str(&event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": piece}}),
        ));
    }
    body + &event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": index}),
    )
}

/// A whole event stream answering the concatenation of `pieces` (one `text_delta` each), with
/// a `ping` after the start, as Anthropic sends it.
pub(crate) fn sse_text_body(pieces: &[&str]) -> String {
    start() + &event("ping", &json!({"type": "ping"})) + &text_block(0, pieces) + &end("end_turn")
}

/// A whole event stream with a short text (`intro`, when not empty) and then tool calls, each
/// `(id, name, input)`, their input JSON in pieces of a few characters.
pub(crate) fn sse_tool_use_body(intro: &str, calls: &[(&str, &str, Value)]) -> String {
    let mut body = start();
    let mut index = 0;
    if !intro.is_empty() {
        body.push_str(&text_block(0, &[intro]));
        index = 1;
    }
    for (id, name, input) in calls {
        body.push_str(&tool_use_block(index, id, name, input));
        index += 1;
    }
    body + &end("tool_use")
}
