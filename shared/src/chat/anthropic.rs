//! Anthropic's Messages API over the [`HttpClient`] port, mapped onto the same [`Llm`] contract
//! (and so the same agent loop) as the OpenAI client.
//!
//! `POST {base_url}/messages` (`base_url` like `https://api.anthropic.com/v1`) with the headers
//! `x-api-key`, `anthropic-version: 2023-06-01` and `content-type: application/json`.
//! [`LlmRequest`]s map onto the Messages shape ([`wire`]): system messages are joined into the
//! top-level `system`; user and assistant messages become turns (consecutive turns of one role
//! are merged, empty texts dropped, as the API requires); an assistant's tool calls become
//! `tool_use` blocks and tool results `tool_result` blocks of the next user turn; tools are
//! `{name, description, input_schema}`. `max_tokens` is required by the API: the client sends
//! [`DEFAULT_MAX_TOKENS`] (4096, within every Claude model's output limit and far above what a
//! chat answer or a tool call needs) unless [`AnthropicClient::with_max_tokens`] says otherwise.
//!
//! Answers: text blocks are concatenated (the API splits one text into several blocks, e.g.
//! around citations), `tool_use` blocks become [`LlmToolCall`](crate::ports::LlmToolCall)s whose `arguments` are their
//! `input` as a JSON string, other blocks (thinking) are ignored; `usage.input_tokens` (plus
//! cache reads and writes) are the prompt tokens, `usage.output_tokens` the completion tokens.
//!
//! Streams read the events `message_start`, `content_block_start` (text, or
//! `tool_use` with its id and name), `content_block_delta` (`text_delta` →
//! [`LlmDelta::Text`](crate::ports::LlmDelta::Text), `input_json_delta` accumulated per block
//! index), `content_block_stop`, `message_delta` (stop reason, usage), `message_stop` (→ one
//! [`LlmDelta::Done`](crate::ports::LlmDelta::Done)), `ping` and `error`; unknown events and
//! deltas are ignored, as Anthropic asks of clients.
//!
//! Retries, backoff, timeouts and the deadline between chunks are [`super::upstream`]'s, as for
//! OpenAI: 429, 5xx (529 `overloaded_error` included), timeouts and network errors are retried
//! twice, then unavailable (503); other 4xx are [`UpstreamError::Rejected`] (502) with the
//! status and the error's `type` only — never its message, which may quote the prompt, and
//! never the key; an unreadable answer is a bad response (502); no key is
//! [`UpstreamError::NotConfigured`] (`llm_not_configured`) without sending anything. An `error`
//! event inside a stream (e.g. `overloaded_error` after the headers) is unavailable.
//!
//! Token usage is logged per call — counts only, never content.

mod stream;
pub mod wire;

#[cfg(test)]
pub(crate) mod native;
#[cfg(test)]
mod tests;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use super::providers::ProviderClient;
use super::upstream::{
    self, is_success, json_problem, read_error_body, send_with_retries, UsageLog,
};
use crate::config::ProviderConfig;
use crate::ports::{
    HttpClient, HttpRequest, Llm, LlmMessage, LlmRequest, LlmResponse, LlmStream, UpstreamError,
};

/// The API version sent in `anthropic-version`.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// `max_tokens` when none is set: within every Claude model's output limit, and far above what
/// a chat answer or a tool call needs.
pub const DEFAULT_MAX_TOKENS: u32 = 4_096;
/// The API's name in logs and error details.
const API: &str = "anthropic";

/// A Messages API client over the HTTP client `H`.
pub struct AnthropicClient<H> {
    http: H,
    api_key: Option<SecretString>,
    url: String,
    model: String,
    timeout_ms: u64,
    max_tokens: u32,
}

impl<H: HttpClient> AnthropicClient<H> {
    /// A client for the provider `config` (its key, base URL, default model and timeout). No
    /// key: every call answers [`UpstreamError::NotConfigured`] without sending anything.
    pub fn new(http: H, config: &ProviderConfig) -> Self {
        Self {
            http,
            api_key: config.api_key.clone(),
            url: format!(
                "{}/messages",
                config.base_url.as_str().trim_end_matches('/')
            ),
            model: config.default_model.clone(),
            timeout_ms: config.timeout_ms,
            max_tokens: DEFAULT_MAX_TOKENS,
        }
    }

    /// The same client with another timeout (each attempt, each gap in a stream).
    #[must_use]
    pub fn with_timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.timeout_ms = timeout_ms;
        self
    }

    /// The same client sending another `max_tokens` (at least 1).
    #[must_use]
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens.max(1);
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
        let wire = wire::WireRequest::new(model, self.max_tokens, req, stream)?;
        let body = serde_json::to_vec(&wire).map_err(|e| {
            UpstreamError::Rejected(format!("anthropic: request not encodable: {e}"))
        })?;
        Ok(HttpRequest {
            method: "POST",
            url: self.url.clone(),
            headers: vec![
                ("x-api-key".to_owned(), key.expose_secret().to_owned()),
                ("anthropic-version".to_owned(), ANTHROPIC_VERSION.to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
                (
                    "accept".to_owned(),
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

/// The error for a refused request: its status and the error's `type` if the body gives it
/// (the message is left out: it may quote the prompt).
fn rejected(status: u16, body: &[u8]) -> UpstreamError {
    let detail = serde_json::from_slice::<wire::ErrorBody>(body)
        .map(|b| b.error.describe())
        .unwrap_or_default();
    UpstreamError::Rejected(format!("anthropic: status {status}{detail}"))
}

#[async_trait(?Send)]
impl<H: HttpClient> ProviderClient for AnthropicClient<H> {
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
        let message: wire::Message = serde_json::from_slice(&resp.body).map_err(|e| {
            UpstreamError::BadResponse(format!("anthropic: unreadable body: {}", json_problem(&e)))
        })?;
        let (prompt_tokens, completion_tokens) = message.usage.counts();
        UsageLog {
            api: API,
            label: &req.label,
            model,
            attempts,
            streamed: false,
        }
        .log(prompt_tokens, completion_tokens);
        let (text, tool_calls) = wire::read_content(message.content);
        Ok(LlmResponse {
            message: LlmMessage {
                role: "assistant".to_owned(),
                content: text,
                tool_calls,
                tool_call_id: None,
            },
            prompt_tokens,
            completion_tokens,
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
        let decoder = stream::EventDecoder::new(req.label.clone(), model.to_owned(), attempts);
        Ok(upstream::drive(
            &self.http,
            self.timeout_ms,
            resp.body,
            decoder,
        ))
    }
}

#[async_trait(?Send)]
impl<H: HttpClient> Llm for AnthropicClient<H> {
    async fn complete(&self, req: &LlmRequest) -> Result<LlmResponse, UpstreamError> {
        self.complete_as(&self.model, req).await
    }

    async fn stream<'a>(&'a self, req: &LlmRequest) -> Result<LlmStream<'a>, UpstreamError> {
        self.stream_as(&self.model, req).await
    }
}
