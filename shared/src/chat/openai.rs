//! OpenAI Chat Completions over the [`HttpClient`] port (fetch in the worker, reqwest in tests).
//!
//! `POST {base_url}/chat/completions` with `Authorization: Bearer <key>` and a JSON body in
//! OpenAI's wire shape; any compatible server works (a local Ollama or vLLM). Retries, backoff,
//! the per-attempt timeout (`OPENAI_TIMEOUT_MS`, default [`DEFAULT_TIMEOUT_MS`]) and the
//! deadline between stream chunks are [`super::upstream`]'s, shared with every client: 429,
//! 5xx, timeouts and network errors are retried twice (0.5 s, 1 s), then unavailable (503).
//! Other 4xx are OpenAI refusing the request (502; only the error's type and code are kept,
//! never its message, which may quote the key or the prompt). A body that cannot be read is a
//! bad response (502).
//!
//! Streams (`"stream": true`) are parsed as they come ([`super::sse`]): text deltas become
//! [`LlmDelta::Text`](crate::ports::LlmDelta::Text), tool-call deltas are assembled by index, the usage chunk gives the token
//! counts, and `[DONE]` ends with one
//! [`LlmDelta::Done`](crate::ports::LlmDelta::Done). A body that ends before `[DONE]` (and
//! before a `finish_reason`: servers that omit `[DONE]` after finishing are accepted) is
//! unavailable; a malformed chunk is a bad response. Either comes as the stream's last item.
//!
//! Token usage is logged (`tracing::info!`) per call — counts only, never content.

use std::collections::BTreeMap;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::providers::ProviderClient;
use super::sse::SseEvent;
use super::upstream::{
    self, is_success, json_problem, read_error_body, send_with_retries, Emitter, StreamDecoder,
    UsageLog, MAX_STREAMED_MESSAGE_BYTES, MAX_STREAMED_TOOL_CALLS,
};
use crate::config::{OpenAiConfig, ProviderConfig};
use crate::ports::{
    HttpClient, HttpRequest, Llm, LlmMessage, LlmRequest, LlmResponse, LlmStream, LlmToolCall,
    UpstreamError,
};

pub use super::upstream::{BACKOFF_MS, DEFAULT_TIMEOUT_MS, RETRIES};

/// The API's name in logs and error details.
const API: &str = "openai";

/// An OpenAI Chat Completions client over the HTTP client `H`.
pub struct OpenAiClient<H> {
    http: H,
    api_key: Option<SecretString>,
    url: String,
    model: String,
    timeout_ms: u64,
}

impl<H: HttpClient> OpenAiClient<H> {
    /// A client for `config` (no key: every call answers [`UpstreamError::NotConfigured`]
    /// without sending anything). `config.timeout_ms` bounds each attempt and each gap in a
    /// stream.
    pub fn new(http: H, config: &OpenAiConfig) -> Self {
        Self::for_provider(http, &ProviderConfig::from_openai(config))
    }

    /// A client for the provider `config` (its key, base URL, default model and timeout), as
    /// [`OpenAiClient::new`].
    pub fn for_provider(http: H, config: &ProviderConfig) -> Self {
        Self {
            http,
            api_key: config.api_key.clone(),
            url: format!(
                "{}/chat/completions",
                config.base_url.as_str().trim_end_matches('/')
            ),
            model: config.default_model.clone(),
            timeout_ms: config.timeout_ms,
        }
    }

    /// The same client with another timeout (each attempt, each gap in a stream).
    #[must_use]
    pub fn with_timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.timeout_ms = timeout_ms;
        self
    }

    /// The model asked for when a request names none.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The HTTP request for `req` to `model` (streamed or not), or `NotConfigured` without a
    /// key.
    fn http_request(
        &self,
        model: &str,
        req: &LlmRequest,
        stream: bool,
    ) -> Result<HttpRequest, UpstreamError> {
        let key = self.api_key.as_ref().ok_or(UpstreamError::NotConfigured)?;
        let body = serde_json::to_vec(&WireRequest::new(model, req, stream))
            .map_err(|e| UpstreamError::Rejected(format!("openai: request not encodable: {e}")))?;
        Ok(HttpRequest {
            method: "POST",
            url: self.url.clone(),
            headers: vec![
                (
                    "Authorization".to_owned(),
                    format!("Bearer {}", key.expose_secret()),
                ),
                ("Content-Type".to_owned(), "application/json".to_owned()),
                (
                    "Accept".to_owned(),
                    if stream {
                        "text/event-stream"
                    } else {
                        "application/json"
                    }
                    .to_owned(),
                ),
            ],
            body,
            timeout_ms: self.timeout_ms,
        })
    }
}

/// The error for a refused request: its status, and the error's type and code if the body
/// gives them (the message is left out: it may quote the key or the prompt).
fn rejected(status: u16, body: &[u8]) -> UpstreamError {
    let detail = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.error.describe())
        .unwrap_or_default();
    UpstreamError::Rejected(format!("openai: status {status}{detail}"))
}

#[async_trait(?Send)]
impl<H: HttpClient> ProviderClient for OpenAiClient<H> {
    fn default_model(&self) -> &str {
        &self.model
    }

    async fn complete_as(
        &self,
        model: &str,
        req: &LlmRequest,
    ) -> Result<LlmResponse, UpstreamError> {
        let http_req = self.http_request(model, req, false)?;
        let (resp, attempts) = send_with_retries(
            &self.http,
            API,
            || self.http.send(http_req.clone()),
            |r| r.status,
        )
        .await?;
        if !is_success(resp.status) {
            return Err(rejected(resp.status, &resp.body));
        }
        let completion: Completion = serde_json::from_slice(&resp.body).map_err(|e| {
            UpstreamError::BadResponse(format!("openai: unreadable body: {}", json_problem(&e)))
        })?;
        let usage = completion.usage.unwrap_or_default();
        let message = completion
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| UpstreamError::BadResponse("openai: no choices".to_owned()))?
            .message;
        UsageLog {
            api: API,
            label: &req.label,
            model,
            attempts,
            streamed: false,
        }
        .log(usage.prompt_tokens, usage.completion_tokens);
        Ok(LlmResponse {
            message: LlmMessage {
                role: "assistant".to_owned(),
                content: message.content.or(message.refusal),
                tool_calls: message
                    .tool_calls
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| LlmToolCall {
                        id: c.id,
                        name: c.function.name,
                        arguments: c.function.arguments,
                    })
                    .collect(),
                tool_call_id: None,
            },
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        })
    }

    async fn stream_as<'a>(
        &'a self,
        model: &str,
        req: &LlmRequest,
    ) -> Result<LlmStream<'a>, UpstreamError> {
        let http_req = self.http_request(model, req, true)?;
        let (resp, attempts) = send_with_retries(
            &self.http,
            API,
            || self.http.send_streaming(http_req.clone()),
            |r| r.status,
        )
        .await?;
        if !is_success(resp.status) {
            let body = read_error_body(&self.http, resp.body, self.timeout_ms).await;
            return Err(rejected(resp.status, &body));
        }
        let decoder = ChunkDecoder {
            label: req.label.clone(),
            model: model.to_owned(),
            attempts,
            assembly: Assembly::default(),
        };
        Ok(upstream::drive(
            &self.http,
            self.timeout_ms,
            resp.body,
            decoder,
        ))
    }
}

#[async_trait(?Send)]
impl<H: HttpClient> Llm for OpenAiClient<H> {
    async fn complete(&self, req: &LlmRequest) -> Result<LlmResponse, UpstreamError> {
        self.complete_as(&self.model, req).await
    }

    async fn stream<'a>(&'a self, req: &LlmRequest) -> Result<LlmStream<'a>, UpstreamError> {
        self.stream_as(&self.model, req).await
    }
}

/// Reads Chat Completions chunks into text deltas and one assembled answer.
struct ChunkDecoder {
    label: String,
    model: String,
    attempts: u32,
    assembly: Assembly,
}

/// The message assembled from deltas.
#[derive(Default)]
struct Assembly {
    text: String,
    /// Tool calls by their `index`.
    calls: BTreeMap<usize, PartialCall>,
    bytes: usize,
    usage: Usage,
    /// A `finish_reason` arrived.
    finished: bool,
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

impl StreamDecoder for ChunkDecoder {
    const API: &'static str = API;
    const END_MARKER: &'static str = "[DONE]";

    fn on_event(&mut self, event: &SseEvent, out: &mut Emitter) {
        if event.data == "[DONE]" {
            return self.succeed(out);
        }
        let chunk: Chunk = match serde_json::from_str(&event.data) {
            Ok(chunk) => chunk,
            Err(e) => {
                return out.fail(UpstreamError::BadResponse(format!(
                    "openai stream: malformed chunk: {}",
                    json_problem(&e)
                )))
            }
        };
        if let Some(error) = chunk.error {
            return out.fail(UpstreamError::Unavailable(format!(
                "openai stream: error event{}",
                error.describe()
            )));
        }
        if let Some(usage) = chunk.usage {
            self.assembly.usage = usage;
        }
        for choice in chunk.choices.unwrap_or_default() {
            if choice.index != 0 {
                continue;
            }
            let delta = choice.delta.unwrap_or_default();
            for text in [delta.content, delta.refusal].into_iter().flatten() {
                if !text.is_empty() {
                    self.assembly.bytes += text.len();
                    self.assembly.text.push_str(&text);
                    out.text(text);
                }
            }
            for call in delta.tool_calls.unwrap_or_default() {
                if let Err(e) = self.assembly.add_call_delta(call) {
                    return out.fail(e);
                }
            }
            if choice.finish_reason.is_some() {
                self.assembly.finished = true;
            }
        }
        if self.assembly.bytes > MAX_STREAMED_MESSAGE_BYTES {
            out.fail(UpstreamError::BadResponse(format!(
                "openai stream: answer longer than {MAX_STREAMED_MESSAGE_BYTES} bytes"
            )));
        }
    }

    fn on_body_end(&mut self, open: Option<SseEvent>, out: &mut Emitter) {
        // An unterminated last event counts only if it is the end marker; anything else is a
        // truncated chunk.
        if open.is_some_and(|e| e.data == "[DONE]") || self.assembly.finished {
            self.succeed(out);
        }
    }
}

impl ChunkDecoder {
    fn succeed(&mut self, out: &mut Emitter) {
        let assembly = std::mem::take(&mut self.assembly);
        let mut tool_calls = Vec::with_capacity(assembly.calls.len());
        for call in assembly.calls.into_values() {
            if call.id.is_empty() || call.name.is_empty() {
                return out.fail(UpstreamError::BadResponse(
                    "openai stream: a tool call without an id or a name".to_owned(),
                ));
            }
            tool_calls.push(LlmToolCall {
                id: call.id,
                name: call.name,
                arguments: call.arguments,
            });
        }
        let usage = assembly.usage;
        UsageLog {
            api: API,
            label: &self.label,
            model: &self.model,
            attempts: self.attempts,
            streamed: true,
        }
        .log(usage.prompt_tokens, usage.completion_tokens);
        out.done(LlmResponse {
            message: LlmMessage {
                role: "assistant".to_owned(),
                content: (!assembly.text.is_empty()).then_some(assembly.text),
                tool_calls,
                tool_call_id: None,
            },
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        });
    }
}

impl Assembly {
    fn add_call_delta(&mut self, delta: ToolCallDelta) -> Result<(), UpstreamError> {
        if !self.calls.contains_key(&delta.index) && self.calls.len() >= MAX_STREAMED_TOOL_CALLS {
            return Err(UpstreamError::BadResponse(format!(
                "openai stream: more than {MAX_STREAMED_TOOL_CALLS} tool calls"
            )));
        }
        let call = self.calls.entry(delta.index).or_default();
        if let Some(id) = delta.id {
            if call.id.is_empty() {
                self.bytes += id.len();
                call.id = id;
            }
        }
        if let Some(function) = delta.function {
            for (part, into) in [
                (function.name, &mut call.name),
                (function.arguments, &mut call.arguments),
            ] {
                if let Some(part) = part {
                    self.bytes += part.len();
                    into.push_str(&part);
                }
            }
        }
        Ok(())
    }
}

// ---- Wire types ----------------------------------------------------------------------------

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

impl<'a> WireRequest<'a> {
    fn new(model: &'a str, req: &'a LlmRequest, stream: bool) -> Self {
        Self {
            model,
            messages: req
                .messages
                .iter()
                .map(|m| WireMessage {
                    role: &m.role,
                    content: m.content.as_deref(),
                    tool_calls: m
                        .tool_calls
                        .iter()
                        .map(|c| WireToolCall {
                            id: &c.id,
                            kind: "function",
                            function: WireFunction {
                                name: &c.name,
                                arguments: &c.arguments,
                            },
                        })
                        .collect(),
                    tool_call_id: m.tool_call_id.as_deref(),
                })
                .collect(),
            tools: req
                .tools
                .iter()
                .map(|t| WireTool {
                    kind: "function",
                    function: WireToolDefinition {
                        name: &t.name,
                        description: &t.description,
                        parameters: &t.parameters,
                    },
                })
                .collect(),
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
        }
    }
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireToolDefinition<'a>,
}

#[derive(Serialize)]
struct WireToolDefinition<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a serde_json::Value,
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<CompletionChoice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct CompletionChoice {
    message: CompletionMessage,
}

#[derive(Deserialize)]
struct CompletionMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<CompletionToolCall>>,
}

#[derive(Deserialize)]
struct CompletionToolCall {
    id: String,
    function: CompletionFunction,
}

#[derive(Deserialize)]
struct CompletionFunction {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<ErrorDetail>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: usize,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

/// An OpenAI error object; its `message` is deliberately not read.
#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
}

impl ErrorDetail {
    /// ` (type, code)` when known, else nothing.
    fn describe(&self) -> String {
        let code = match &self.code {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let parts: Vec<String> = [self.kind.clone(), code].into_iter().flatten().collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    }
}

/// A native [`HttpClient`] and OpenAI response builders for tests.
///
/// Tests anywhere in the crate talk to a [`wiremock::MockServer`] standing in for OpenAI:
///
/// ```ignore
/// use crate::chat::openai::native::{client_for, sse_body, text_completion};
/// let server = wiremock::MockServer::start().await;
/// wiremock::Mock::given(wiremock::matchers::path("/v1/chat/completions"))
///     .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(text_completion("Hi")))
///     .mount(&server)
///     .await;
/// let llm = client_for(&server).await; // an `OpenAiClient<ReqwestHttp>`, key `sk-test`
/// ```
///
/// For streamed calls answer with
/// `ResponseTemplate::new(200).set_body_raw(sse_body(&["Hel", "lo"]), "text/event-stream")`.
/// Every builder reports [`USAGE_PROMPT_TOKENS`] and [`USAGE_COMPLETION_TOKENS`].
/// `server.received_requests().await` shows what was sent (JSON body, `Authorization`).
#[cfg(test)]
pub(crate) mod native {
    use std::time::Duration;

    use async_trait::async_trait;
    use futures_util::StreamExt;
    use secrecy::SecretString;
    use serde_json::{json, Value};

    use super::OpenAiClient;
    use crate::config::OpenAiConfig;
    use crate::ports::{HttpClient, HttpError, HttpRequest, HttpResponse, HttpStreamResponse};

    /// Prompt tokens in every builder's usage.
    pub(crate) const USAGE_PROMPT_TOKENS: u32 = 11;
    /// Completion tokens in every builder's usage.
    pub(crate) const USAGE_COMPLETION_TOKENS: u32 = 7;
    /// The model [`client_for`] asks for.
    pub(crate) const TEST_MODEL: &str = "gpt-4o-mini";
    /// The key [`client_for`] sends.
    pub(crate) const TEST_KEY: &str = "sk-test";
    /// The timeout of [`client_for`]'s client.
    pub(crate) const TEST_TIMEOUT_MS: u64 = 2_000;

    /// [`HttpClient`] over reqwest and tokio: real requests, true streaming, real sleeps.
    #[derive(Debug, Clone)]
    pub(crate) struct ReqwestHttp {
        client: reqwest::Client,
    }

    impl Default for ReqwestHttp {
        fn default() -> Self {
            Self::new()
        }
    }

    impl ReqwestHttp {
        /// A client ignoring proxy settings (tests talk to loopback servers).
        pub(crate) fn new() -> Self {
            Self {
                client: reqwest::Client::builder()
                    .no_proxy()
                    .build()
                    .expect("reqwest client"),
            }
        }

        fn builder(&self, req: HttpRequest) -> reqwest::RequestBuilder {
            let method = reqwest::Method::from_bytes(req.method.as_bytes())
                .expect("HttpRequest methods are valid");
            let mut b = self.client.request(method, &req.url).body(req.body);
            for (k, v) in req.headers {
                b = b.header(k, v);
            }
            b
        }
    }

    fn classify(e: &reqwest::Error) -> HttpError {
        if e.is_timeout() {
            HttpError::Timeout
        } else {
            HttpError::Network(e.to_string())
        }
    }

    #[async_trait(?Send)]
    impl HttpClient for ReqwestHttp {
        async fn send(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
            let timeout = Duration::from_millis(req.timeout_ms);
            let resp = self
                .builder(req)
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| classify(&e))?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await.map_err(|e| classify(&e))?.to_vec();
            Ok(HttpResponse { status, body })
        }

        async fn send_streaming(&self, req: HttpRequest) -> Result<HttpStreamResponse, HttpError> {
            // The deadline covers the headers only; the caller bounds the gaps in the body.
            let timeout = Duration::from_millis(req.timeout_ms);
            let resp = tokio::time::timeout(timeout, self.builder(req).send())
                .await
                .map_err(|_| HttpError::Timeout)?
                .map_err(|e| classify(&e))?;
            let status = resp.status().as_u16();
            let body = resp
                .bytes_stream()
                .map(|chunk| chunk.map(|b| b.to_vec()).map_err(|e| classify(&e)));
            Ok(HttpStreamResponse {
                status,
                body: Box::pin(body),
            })
        }

        async fn sleep(&self, ms: u64) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }

    fn usage() -> Value {
        json!({
            "prompt_tokens": USAGE_PROMPT_TOKENS,
            "completion_tokens": USAGE_COMPLETION_TOKENS,
            "total_tokens": USAGE_PROMPT_TOKENS + USAGE_COMPLETION_TOKENS,
        })
    }

    fn completion(message: &Value, finish_reason: &str) -> Value {
        json!({
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": TEST_MODEL,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": finish_reason,
            }],
            "usage": usage(),
        })
    }

    /// A non-streamed completion answering `text`.
    pub(crate) fn text_completion(text: &str) -> Value {
        completion(
            &json!({"role": "assistant", "content": text, "refusal": null}),
            "stop",
        )
    }

    /// A non-streamed completion asking for tool calls, each `(id, name, arguments)`; the
    /// arguments object is sent serialised to a string, as OpenAI does.
    pub(crate) fn tool_call_completion(calls: &[(&str, &str, Value)]) -> Value {
        let calls: Vec<Value> = calls
            .iter()
            .map(|(id, name, args)| {
                json!({
                    "id": id,
                    "type": "function",
                    "function": {"name": name, "arguments": args.to_string()},
                })
            })
            .collect();
        completion(
            &json!({"role": "assistant", "content": null, "tool_calls": calls}),
            "tool_calls",
        )
    }

    fn chunk(delta: &Value, finish_reason: Option<&str>) -> String {
        let chunk = json!({
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": TEST_MODEL,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        format!("data: {chunk}\n\n")
    }

    fn stream_end(finish_reason: &str) -> String {
        let usage_chunk = json!({
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": TEST_MODEL,
            "choices": [],
            "usage": usage(),
        });
        format!(
            "{}data: {usage_chunk}\n\ndata: [DONE]\n\n",
            chunk(&json!({}), Some(finish_reason))
        )
    }

    /// A whole OpenAI event stream answering the concatenation of `text_pieces` (one chunk
    /// each), then the finish chunk, the usage chunk and `[DONE]`.
    pub(crate) fn sse_body(text_pieces: &[&str]) -> String {
        let mut body = chunk(&json!({"role": "assistant", "content": ""}), None);
        for piece in text_pieces {
            body.push_str(&chunk(&json!({"content": piece}), None));
        }
        body.push_str(&stream_end("stop"));
        body
    }

    /// A whole OpenAI event stream asking for tool calls, each `(id, name, arguments)`: the
    /// first delta of a call carries its id and name, then its serialised arguments follow in
    /// pieces of a few characters, as OpenAI sends them.
    pub(crate) fn sse_tool_calls_body(calls: &[(&str, &str, Value)]) -> String {
        let mut body = chunk(&json!({"role": "assistant", "content": null}), None);
        for (index, (id, name, args)) in calls.iter().enumerate() {
            body.push_str(&chunk(
                &json!({"tool_calls": [{
                    "index": index, "id": id, "type": "function",
                    "function": {"name": name, "arguments": ""},
                }]}),
                None,
            ));
            let args: Vec<char> = args.to_string().chars().collect();
            for piece in args.chunks(4) {
                let piece: String = piece.iter().collect();
                body.push_str(&chunk(
                    &json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                    None,
                ));
            }
        }
        body.push_str(&stream_end("tool_calls"));
        body
    }

    /// The settings [`client_for`] uses, against `base_url` (which ends in `/v1`).
    pub(crate) fn test_config(base_url: &str, key: Option<&str>) -> OpenAiConfig {
        OpenAiConfig {
            api_key: key.map(|k| SecretString::from(k.to_owned())),
            base_url: url::Url::parse(base_url).expect("test base url"),
            model: TEST_MODEL.to_owned(),
            timeout_ms: TEST_TIMEOUT_MS,
        }
    }

    /// A client for `server`: key [`TEST_KEY`], model [`TEST_MODEL`], base `{uri}/v1`, timeout
    /// [`TEST_TIMEOUT_MS`].
    pub(crate) async fn client_for(server: &wiremock::MockServer) -> OpenAiClient<ReqwestHttp> {
        OpenAiClient::new(
            ReqwestHttp::new(),
            &test_config(&format!("{}/v1", server.uri()), Some(TEST_KEY)),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::time::Duration;

    use serde_json::{json, Value};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::native::{
        client_for, sse_body, sse_tool_calls_body, test_config, text_completion,
        tool_call_completion, ReqwestHttp, TEST_KEY, USAGE_COMPLETION_TOKENS, USAGE_PROMPT_TOKENS,
    };
    use futures_util::{stream, StreamExt};

    use super::*;
    use crate::ports::{HttpError, HttpResponse, HttpStreamResponse, LlmDelta, LlmTool};

    const COMPLETIONS: &str = "/v1/chat/completions";

    fn request(tools: Vec<LlmTool>) -> LlmRequest {
        LlmRequest {
            label: "test".into(),
            messages: vec![
                LlmMessage::system("You help."),
                LlmMessage::text("user", "Plan my day"),
                LlmMessage {
                    role: "assistant".into(),
                    content: None,
                    tool_calls: vec![LlmToolCall {
                        id: "call_0".into(),
                        name: "list_tasks".into(),
                        arguments: "{}".into(),
                    }],
                    tool_call_id: None,
                },
                LlmMessage::tool_result("call_0", &json!({"tasks": []})),
            ],
            tools,
        }
    }

    fn add_task_tool() -> LlmTool {
        LlmTool {
            name: "add_task".into(),
            description: "Adds a task".into(),
            parameters: json!({"type": "object", "properties": {"title": {"type": "string"}}}),
        }
    }

    async fn answer(server: &MockServer, template: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path(COMPLETIONS))
            .respond_with(template)
            .mount(server)
            .await;
    }

    fn sse(body: String) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
    }

    async fn sent_bodies(server: &MockServer) -> Vec<Value> {
        server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| r.body_json().unwrap())
            .collect()
    }

    /// Every item of a stream, in order.
    async fn drain(s: LlmStream<'_>) -> Vec<Result<LlmDelta, UpstreamError>> {
        s.collect().await
    }

    fn texts(items: &[Result<LlmDelta, UpstreamError>]) -> String {
        items
            .iter()
            .filter_map(|i| match i {
                Ok(LlmDelta::Text(t)) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    fn done(items: &[Result<LlmDelta, UpstreamError>]) -> &LlmResponse {
        match items.last() {
            Some(Ok(LlmDelta::Done(r))) => r,
            other => panic!("expected Done last, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_text_completion_sends_the_openai_wire_shape_and_reads_the_answer() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(COMPLETIONS))
            .and(header("authorization", "Bearer sk-test"))
            .and(header("content-type", "application/json"))
            .respond_with(ResponseTemplate::new(200).set_body_json(text_completion("Hello!")))
            .mount(&server)
            .await;
        let llm = client_for(&server).await;
        let resp = llm.complete(&request(vec![add_task_tool()])).await.unwrap();

        assert_eq!(resp.message.role, "assistant");
        assert_eq!(resp.message.content.as_deref(), Some("Hello!"));
        assert!(resp.message.tool_calls.is_empty());
        let bodies = sent_bodies(&server).await;
        assert_eq!(bodies.len(), 1);
        assert_eq!(
            bodies[0],
            json!({
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "You help."},
                    {"role": "user", "content": "Plan my day"},
                    {"role": "assistant", "tool_calls": [{
                        "id": "call_0", "type": "function",
                        "function": {"name": "list_tasks", "arguments": "{}"},
                    }]},
                    {"role": "tool", "content": "{\"tasks\":[]}", "tool_call_id": "call_0"},
                ],
                "tools": [{"type": "function", "function": {
                    "name": "add_task",
                    "description": "Adds a task",
                    "parameters": {"type": "object", "properties": {"title": {"type": "string"}}},
                }}],
            })
        );
    }

    #[tokio::test]
    async fn no_tools_means_no_tools_field() {
        let server = MockServer::start().await;
        answer(
            &server,
            ResponseTemplate::new(200).set_body_json(text_completion("ok")),
        )
        .await;
        client_for(&server)
            .await
            .complete(&request(vec![]))
            .await
            .unwrap();
        let body = &sent_bodies(&server).await[0];
        assert!(body.get("tools").is_none(), "{body}");
        assert!(body.get("stream").is_none(), "{body}");
    }

    #[tokio::test]
    async fn tool_calls_and_usage_are_parsed_from_a_completion() {
        let server = MockServer::start().await;
        answer(
            &server,
            ResponseTemplate::new(200).set_body_json(tool_call_completion(&[
                ("call_1", "add_task", json!({"title": "Buy milk"})),
                ("call_2", "list_tasks", json!({})),
            ])),
        )
        .await;
        let resp = client_for(&server)
            .await
            .complete(&request(vec![add_task_tool()]))
            .await
            .unwrap();
        assert_eq!(resp.message.content, None);
        assert_eq!(
            resp.message.tool_calls,
            vec![
                LlmToolCall {
                    id: "call_1".into(),
                    name: "add_task".into(),
                    arguments: r#"{"title":"Buy milk"}"#.into(),
                },
                LlmToolCall {
                    id: "call_2".into(),
                    name: "list_tasks".into(),
                    arguments: "{}".into(),
                },
            ]
        );
        assert_eq!(resp.prompt_tokens, USAGE_PROMPT_TOKENS);
        assert_eq!(resp.completion_tokens, USAGE_COMPLETION_TOKENS);
    }

    #[tokio::test]
    async fn two_server_errors_then_success_succeeds_on_the_third_attempt() {
        let server = MockServer::start().await;
        Mock::given(path(COMPLETIONS))
            .respond_with(ResponseTemplate::new(500))
            .up_to_n_times(2)
            .mount(&server)
            .await;
        answer(
            &server,
            ResponseTemplate::new(200).set_body_json(text_completion("finally")),
        )
        .await;
        let resp = client_for(&server)
            .await
            .complete(&request(vec![]))
            .await
            .unwrap();
        assert_eq!(resp.message.content.as_deref(), Some("finally"));
        assert_eq!(server.received_requests().await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn constant_rate_limiting_is_unavailable_after_three_attempts() {
        let server = MockServer::start().await;
        answer(&server, ResponseTemplate::new(429)).await;
        let e = client_for(&server)
            .await
            .complete(&request(vec![]))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, UpstreamError::Unavailable(d) if d.contains("429")),
            "{e:?}"
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_bad_request_is_rejected_at_once_without_echoing_the_message() {
        let server = MockServer::start().await;
        answer(
            &server,
            ResponseTemplate::new(400).set_body_json(json!({"error": {
                "message": "Incorrect API key provided: sk-test. Plan my day",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }})),
        )
        .await;
        let e = client_for(&server)
            .await
            .complete(&request(vec![]))
            .await
            .unwrap_err();
        let UpstreamError::Rejected(detail) = &e else {
            panic!("rejected expected, got {e:?}")
        };
        assert!(
            detail.contains("400") && detail.contains("invalid_api_key"),
            "{detail}"
        );
        assert!(
            !detail.contains(TEST_KEY) && !detail.contains("Plan my day"),
            "{detail}"
        );
        assert_eq!(e.into_app_error(crate::error::Upstream::Llm).status(), 502);
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_garbage_body_is_a_bad_response() {
        let server = MockServer::start().await;
        answer(
            &server,
            ResponseTemplate::new(200).set_body_string("<html>Plan my day</html>"),
        )
        .await;
        let e = client_for(&server)
            .await
            .complete(&request(vec![]))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, UpstreamError::BadResponse(d) if !d.contains("Plan")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn without_a_key_nothing_is_sent() {
        let server = MockServer::start().await;
        answer(
            &server,
            ResponseTemplate::new(200).set_body_json(text_completion("x")),
        )
        .await;
        let llm = OpenAiClient::new(
            ReqwestHttp::new(),
            &test_config(&format!("{}/v1", server.uri()), None),
        );
        assert!(matches!(
            llm.complete(&request(vec![])).await,
            Err(UpstreamError::NotConfigured)
        ));
        assert!(matches!(
            llm.stream(&request(vec![])).await.map(|_| ()),
            Err(UpstreamError::NotConfigured)
        ));
        assert!(server.received_requests().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_server_slower_than_the_timeout_is_unavailable_after_three_attempts() {
        let server = MockServer::start().await;
        answer(
            &server,
            ResponseTemplate::new(200)
                .set_body_json(text_completion("late"))
                .set_delay(Duration::from_millis(1_500)),
        )
        .await;
        let llm = OpenAiClient::new(
            ReqwestHttp::new(),
            &test_config(&format!("{}/v1", server.uri()), Some(TEST_KEY)),
        )
        .with_timeout_ms(200);
        let e = llm.complete(&request(vec![])).await.unwrap_err();
        assert!(
            matches!(&e, UpstreamError::Unavailable(d) if d.contains("timed out")),
            "{e:?}"
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_streamed_answer_comes_in_pieces_then_done_with_usage() {
        let server = MockServer::start().await;
        let pieces = ["Hel", "lo", ", ", "wör", "ld", " 🦀", "!"];
        answer(&server, sse(sse_body(&pieces))).await;
        let llm = client_for(&server).await;
        let items = drain(llm.stream(&request(vec![])).await.unwrap()).await;

        assert_eq!(items.len(), pieces.len() + 1, "{items:?}");
        for (item, piece) in items.iter().zip(pieces) {
            assert_eq!(item.as_ref().unwrap(), &LlmDelta::Text(piece.to_owned()));
        }
        let resp = done(&items);
        assert_eq!(resp.message.content.as_deref(), Some("Hello, wörld 🦀!"));
        assert_eq!(resp.prompt_tokens, USAGE_PROMPT_TOKENS);
        assert_eq!(resp.completion_tokens, USAGE_COMPLETION_TOKENS);
        let body = &sent_bodies(&server).await[0];
        assert_eq!(body["stream"], json!(true));
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
    }

    #[tokio::test]
    async fn streamed_tool_call_deltas_are_assembled_by_index() {
        let server = MockServer::start().await;
        let args_1 = json!({"title": "Buy milk", "notes": "2 litres, oat"});
        let args_2 = json!({"day": "2026-01-02"});
        answer(
            &server,
            sse(sse_tool_calls_body(&[
                ("call_a", "add_task", args_1.clone()),
                ("call_b", "list_tasks", args_2.clone()),
            ])),
        )
        .await;
        let llm = client_for(&server).await;
        let items = drain(llm.stream(&request(vec![add_task_tool()])).await.unwrap()).await;
        assert_eq!(items.len(), 1, "no text, only Done: {items:?}");
        let resp = done(&items);
        assert_eq!(resp.message.content, None);
        let calls = &resp.message.tool_calls;
        assert_eq!(calls.len(), 2);
        assert_eq!(
            (calls[0].id.as_str(), calls[0].name.as_str()),
            ("call_a", "add_task")
        );
        assert_eq!(
            (calls[1].id.as_str(), calls[1].name.as_str()),
            ("call_b", "list_tasks")
        );
        let parsed: Vec<Value> = calls
            .iter()
            .map(|c| serde_json::from_str(&c.arguments).unwrap())
            .collect();
        assert_eq!(parsed, vec![args_1, args_2]);
    }

    #[tokio::test]
    async fn a_stream_is_retried_before_its_first_byte() {
        let server = MockServer::start().await;
        Mock::given(path(COMPLETIONS))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        answer(&server, sse(sse_body(&["ok"]))).await;
        let llm = client_for(&server).await;
        let items = drain(llm.stream(&request(vec![])).await.unwrap()).await;
        assert_eq!(done(&items).message.content.as_deref(), Some("ok"));
        assert_eq!(server.received_requests().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_refused_stream_fails_the_call_itself() {
        let server = MockServer::start().await;
        answer(
            &server,
            ResponseTemplate::new(401).set_body_json(json!({"error": {
                "message": "Incorrect API key provided: sk-test", "type": "invalid_request_error",
                "code": "invalid_api_key",
            }})),
        )
        .await;
        let llm = client_for(&server).await;
        let e = llm.stream(&request(vec![])).await.map(|_| ()).unwrap_err();
        assert!(
            matches!(&e, UpstreamError::Rejected(d) if d.contains("invalid_api_key") && !d.contains(TEST_KEY)),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_stream_without_done_ends_with_an_unavailable_error() {
        let server = MockServer::start().await;
        let full = sse_body(&["Hel", "lo"]);
        // Cut inside the finish chunk: no finish_reason, no usage, no [DONE].
        let cut = full.find("\"finish_reason\":\"stop\"").unwrap();
        answer(&server, sse(full[..cut].to_owned())).await;
        let llm = client_for(&server).await;
        let items = drain(llm.stream(&request(vec![])).await.unwrap()).await;
        assert_eq!(texts(&items), "Hello");
        assert!(
            matches!(items.last(), Some(Err(UpstreamError::Unavailable(_)))),
            "{items:?}"
        );
        assert!(!items.iter().any(|i| matches!(i, Ok(LlmDelta::Done(_)))));
    }

    #[tokio::test]
    async fn a_malformed_chunk_ends_the_stream_with_a_bad_response() {
        let server = MockServer::start().await;
        let before_done = sse_body(&["a"]).replace("data: [DONE]\n\n", "");
        let body = format!(
            "{before_done}data: {}\n\ndata: [DONE]\n\n",
            r#"{"choices":[{"index":"Plan my day"}]}"#
        );
        answer(&server, sse(body)).await;
        let llm = client_for(&server).await;
        let items = drain(llm.stream(&request(vec![])).await.unwrap()).await;
        assert!(
            matches!(items.last(), Some(Err(UpstreamError::BadResponse(d))) if !d.contains("Plan")),
            "{items:?}"
        );
    }

    #[tokio::test]
    async fn a_json_body_instead_of_events_is_a_bad_response() {
        let server = MockServer::start().await;
        answer(
            &server,
            ResponseTemplate::new(200).set_body_json(text_completion("hi")),
        )
        .await;
        let llm = client_for(&server).await;
        let items = drain(llm.stream(&request(vec![])).await.unwrap()).await;
        assert!(
            matches!(items.as_slice(), [Err(UpstreamError::BadResponse(_))]),
            "{items:?}"
        );
    }

    /// Reads one HTTP/1.1 request (headers, then `Content-Length` bytes of body).
    async fn read_request(sock: &mut tokio::net::TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = sock.read(&mut chunk).await.unwrap();
            assert!(n > 0, "client closed early");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if buf.len() >= end + 4 + length {
                    return;
                }
            }
        }
    }

    /// A one-connection server that answers 200 with `first` as a chunk of an event stream,
    /// then sends nothing more for a long time. Returns its `/v1` base URL.
    async fn stalling_server(first: String) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            read_request(&mut sock).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                        transfer-encoding: chunked\r\n\r\n";
            let chunk = format!("{:x}\r\n{first}\r\n", first.len());
            sock.write_all(head.as_bytes()).await.unwrap();
            sock.write_all(chunk.as_bytes()).await.unwrap();
            sock.flush().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(sock);
        });
        format!("http://{addr}/v1")
    }

    #[tokio::test]
    async fn a_stream_that_stalls_mid_way_ends_with_an_unavailable_error() {
        let full = sse_body(&["Hel", "lo", " there"]);
        let cut = full.find(" there").unwrap();
        let base = stalling_server(full[..cut].to_owned()).await;
        let llm = OpenAiClient::new(ReqwestHttp::new(), &test_config(&base, Some(TEST_KEY)))
            .with_timeout_ms(300);
        let items = drain(llm.stream(&request(vec![])).await.unwrap()).await;
        assert_eq!(texts(&items), "Hello");
        assert!(
            matches!(items.last(), Some(Err(UpstreamError::Unavailable(d))) if d.contains("stalled")),
            "{items:?}"
        );
    }

    /// Streams a fixed body in pieces of `piece` bytes, counting requests; its sleeps never end
    /// (so no stall is ever detected).
    struct PiecewiseHttp {
        body: Vec<u8>,
        piece: usize,
        sent: RefCell<u32>,
    }

    #[async_trait(?Send)]
    impl HttpClient for PiecewiseHttp {
        async fn send(&self, _req: HttpRequest) -> Result<HttpResponse, HttpError> {
            unreachable!("only streaming is used")
        }
        async fn send_streaming(&self, _req: HttpRequest) -> Result<HttpStreamResponse, HttpError> {
            *self.sent.borrow_mut() += 1;
            let pieces: Vec<Result<Vec<u8>, HttpError>> = self
                .body
                .chunks(self.piece)
                .map(|c| Ok(c.to_vec()))
                .collect();
            Ok(HttpStreamResponse {
                status: 200,
                body: Box::pin(stream::iter(pieces)),
            })
        }
        async fn sleep(&self, _ms: u64) {
            futures_util::future::pending::<()>().await;
        }
    }

    #[tokio::test]
    async fn a_stream_split_into_single_bytes_gives_the_same_answer() {
        let body = sse_body(&["Grüße ", "aus ", "日本"]).replace('\n', "\r\n");
        let whole = PiecewiseHttp {
            body: body.clone().into_bytes(),
            piece: body.len(),
            sent: RefCell::new(0),
        };
        let bytewise = PiecewiseHttp {
            body: body.into_bytes(),
            piece: 1,
            sent: RefCell::new(0),
        };
        let config = test_config("https://openai.test/v1", Some(TEST_KEY));
        let a = OpenAiClient::new(&whole, &config);
        let b = OpenAiClient::new(&bytewise, &config);
        let items_a = drain(a.stream(&request(vec![])).await.unwrap()).await;
        let items_b = drain(b.stream(&request(vec![])).await.unwrap()).await;
        assert_eq!(
            done(&items_a).message.content.as_deref(),
            Some("Grüße aus 日本")
        );
        assert_eq!(format!("{items_a:?}"), format!("{items_b:?}"));
        assert_eq!((*whole.sent.borrow(), *bytewise.sent.borrow()), (1, 1));
    }
}
