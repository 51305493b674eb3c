use std::cell::RefCell;

use async_trait::async_trait;
use futures_util::{stream, StreamExt};
use secrecy::SecretString;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::native::{
    sse_text_body, sse_tool_use_body, text_message, tool_use_message, USAGE_INPUT_TOKENS,
    USAGE_OUTPUT_TOKENS,
};
use super::*;
use crate::chat::agent::{tool_loop, AgentInput};
use crate::chat::agents::TaskAgent;
use crate::chat::openai::native::ReqwestHttp;
use crate::domain::ProviderKind;
use crate::ports::{HttpError, HttpResponse, HttpStreamResponse, LlmDelta, LlmTool, LlmToolCall};
use crate::testing::ScriptedHttp;

const MESSAGES: &str = "/v1/messages";
const KEY: &str = "sk-ant-test-key";
const MODEL: &str = "claude-3-5-haiku-latest";

fn config(base_url: &str, key: Option<&str>) -> ProviderConfig {
    ProviderConfig {
        name: "claude".to_owned(),
        kind: ProviderKind::Anthropic,
        base_url: url::Url::parse(base_url).unwrap(),
        api_key: key.map(|k| SecretString::from(k.to_owned())),
        models: vec![MODEL.to_owned(), "claude-3-5-sonnet-latest".to_owned()],
        default_model: MODEL.to_owned(),
        timeout_ms: 2_000,
    }
}

fn client_for(server: &MockServer) -> AnthropicClient<ReqwestHttp> {
    AnthropicClient::new(
        ReqwestHttp::new(),
        &config(&format!("{}/v1", server.uri()), Some(KEY)),
    )
}

/// A conversation with everything the mapping handles: two system messages, an earlier
/// exchange, an assistant turn with text and two tool calls, and their two results.
fn request(tools: Vec<LlmTool>) -> LlmRequest {
    LlmRequest {
        label: "test".into(),
        messages: vec![
            LlmMessage::system("You help."),
            LlmMessage::system("Be brief."),
            LlmMessage::text("user", "Hi"),
            LlmMessage::text("assistant", "Hello!"),
            LlmMessage::text("user", "Plan my day"),
            LlmMessage {
                role: "assistant".into(),
                content: Some("Let me look.".into()),
                tool_calls: vec![
                    LlmToolCall {
                        id: "toolu_1".into(),
                        name: "list_tasks".into(),
                        arguments: r#"{"status":"todo"}"#.into(),
                    },
                    LlmToolCall {
                        id: "toolu_2".into(),
                        name: "list_projects".into(),
                        arguments: "not json".into(),
                    },
                ],
                tool_call_id: None,
            },
            LlmMessage::tool_result("toolu_1", &json!({"tasks": []})),
            LlmMessage::tool_result("toolu_2", &json!({"error": "invalid arguments"})),
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
        .and(path(MESSAGES))
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

/// A scripted 200 answer with a JSON body.
fn ok_json(v: &Value) -> Result<HttpResponse, HttpError> {
    status(200, v)
}

/// A scripted answer.
#[allow(clippy::unnecessary_wraps)] // a script entry is a `Result`
fn status(code: u16, body: &Value) -> Result<HttpResponse, HttpError> {
    Ok(HttpResponse {
        status: code,
        body: body.to_string().into_bytes(),
    })
}

/// An error answer as Anthropic sends it, its message quoting the key and the prompt.
fn error_body(kind: &str) -> Value {
    json!({"type": "error", "error": {
        "type": kind,
        "message": format!("x-api-key {KEY} is not valid for: Plan my day"),
    }})
}

fn leaks(detail: &str) -> bool {
    detail.contains(KEY) || detail.contains("Plan my day") || detail.contains("not valid")
}

#[tokio::test]
async fn a_text_answer_sends_the_messages_wire_shape_and_reads_the_answer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(header("x-api-key", KEY))
        .and(header("anthropic-version", "2023-06-01"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(text_message("Hello there.")))
        .mount(&server)
        .await;
    let llm = client_for(&server);
    let resp = llm.complete(&request(vec![add_task_tool()])).await.unwrap();

    assert_eq!(resp.message.role, "assistant");
    assert_eq!(resp.message.content.as_deref(), Some("Hello there."));
    assert!(resp.message.tool_calls.is_empty());
    assert_eq!(
        (resp.prompt_tokens, resp.completion_tokens),
        (USAGE_INPUT_TOKENS, USAGE_OUTPUT_TOKENS)
    );
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    assert!(
        received[0].headers.get("authorization").is_none(),
        "the key goes in x-api-key only"
    );
    assert_eq!(
        received[0].body_json::<Value>().unwrap(),
        json!({
            "model": MODEL,
            "max_tokens": 4096,
            "system": "You help.\n\nBe brief.",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
                {"role": "user", "content": [{"type": "text", "text": "Plan my day"}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_1", "name": "list_tasks",
                     "input": {"status": "todo"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "list_projects", "input": {}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "{\"tasks\":[]}"},
                    {"type": "tool_result", "tool_use_id": "toolu_2",
                     "content": "{\"error\":\"invalid arguments\"}"},
                ]},
            ],
            "tools": [{
                "name": "add_task",
                "description": "Adds a task",
                "input_schema": {"type": "object", "properties": {"title": {"type": "string"}}},
            }],
        })
    );
}

#[tokio::test]
async fn without_tools_or_system_those_fields_are_left_out_and_the_turns_start_with_the_user() {
    let http = ScriptedHttp::with(vec![ok_json(&text_message("ok"))]);
    let llm = AnthropicClient::new(&http, &config("https://api.anthropic.test/v1/", Some(KEY)))
        .with_max_tokens(512);
    let req = LlmRequest {
        label: "t".into(),
        messages: vec![
            LlmMessage::text("assistant", "Hi! How can I help?"),
            LlmMessage::text("user", "one"),
            LlmMessage::text("assistant", ""),
            LlmMessage::text("user", "two"),
        ],
        tools: vec![],
    };
    llm.complete(&req).await.unwrap();
    let sent = &http.requests.borrow()[0];
    assert_eq!(sent.url, "https://api.anthropic.test/v1/messages");
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(
        body,
        json!({"model": MODEL, "max_tokens": 512, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}]})
    );
}

#[tokio::test]
async fn tool_use_blocks_become_tool_calls_with_their_input_as_a_json_string() {
    let mut answer = tool_use_message(&[
        (
            "toolu_a",
            "add_task",
            json!({"title": "Buy milk", "tags": ["home"]}),
        ),
        ("toolu_b", "list_tasks", json!({})),
    ]);
    // Text around the calls, a block this client does not know, and cache counts.
    answer["content"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"type": "text", "text": "On it. "}));
    answer["content"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "thinking", "thinking": "hmm", "signature": "x"}));
    answer["content"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "text", "text": "Done."}));
    answer["usage"] = json!({"input_tokens": 3, "cache_read_input_tokens": 100,
                             "cache_creation_input_tokens": 20, "output_tokens": 9});
    let http = ScriptedHttp::with(vec![ok_json(&answer)]);
    let llm = AnthropicClient::new(&http, &config("https://a.test/v1", Some(KEY)));
    let resp = llm.complete(&request(vec![add_task_tool()])).await.unwrap();
    assert_eq!(resp.message.content.as_deref(), Some("On it. Done."));
    let calls = &resp.message.tool_calls;
    assert_eq!(
        calls
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str()))
            .collect::<Vec<_>>(),
        [("toolu_a", "add_task"), ("toolu_b", "list_tasks")]
    );
    assert_eq!(
        serde_json::from_str::<Value>(&calls[0].arguments).unwrap(),
        json!({"title": "Buy milk", "tags": ["home"]})
    );
    assert_eq!(calls[1].arguments, "{}");
    assert_eq!((resp.prompt_tokens, resp.completion_tokens), (123, 9));
}

#[tokio::test]
async fn a_tool_use_round_trip_runs_through_the_shared_agent_loop() {
    let server = MockServer::start().await;
    Mock::given(path(MESSAGES))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(tool_use_message(&[(
                "toolu_7",
                "create_task",
                json!({"title": "Call Ana", "priority": "high"}),
            )])),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    answer(
        &server,
        ResponseTemplate::new(200).set_body_json(text_message("I prepared the task.")),
    )
    .await;
    let llm = client_for(&server);
    let context = crate::api::ChatContext::default();
    let input = AgentInput {
        query: "Remind me to call Ana",
        context: &context,
        previous_results: &[],
        now_ms: 1_795_780_800_000,
        handoff_to: &[],
    };
    let reply = tool_loop(&TaskAgent, &input, &llm, None).await.unwrap();
    assert_eq!(reply.text, "I prepared the task.");
    assert_eq!(reply.llm_calls, 2);
    assert_eq!(reply.actions.len(), 1);
    assert_eq!(reply.actions[0].table.as_deref(), Some("tasks"));

    let bodies = sent_bodies(&server).await;
    assert!(bodies[0]["system"]
        .as_str()
        .unwrap()
        .starts_with("You are Adiuva"));
    assert!(bodies[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "create_task" && t["input_schema"]["type"] == "object"));
    let turns = bodies[1]["messages"].as_array().unwrap();
    let n = turns.len();
    assert_eq!(
        turns[n - 2],
        json!({"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_7",
            "name": "create_task", "input": {"title": "Call Ana", "priority": "high"}}]})
    );
    assert_eq!(turns[n - 1]["role"], "user");
    assert_eq!(turns[n - 1]["content"][0]["type"], "tool_result");
    assert_eq!(turns[n - 1]["content"][0]["tool_use_id"], "toolu_7");
}

#[tokio::test]
async fn overload_and_server_errors_are_retried_with_backoff_then_unavailable() {
    let http = ScriptedHttp::with(vec![
        status(529, &error_body("overloaded_error")),
        status(500, &error_body("api_error")),
        ok_json(&text_message("finally")),
    ]);
    let llm = AnthropicClient::new(&http, &config("https://a.test/v1", Some(KEY)));
    let resp = llm.complete(&request(vec![])).await.unwrap();
    assert_eq!(resp.message.content.as_deref(), Some("finally"));
    assert_eq!(*http.slept.borrow(), [500, 1_000]);

    let http = ScriptedHttp::with(vec![
        status(529, &error_body("overloaded_error")),
        status(429, &error_body("rate_limit_error")),
        status(529, &error_body("overloaded_error")),
    ]);
    let llm = AnthropicClient::new(&http, &config("https://a.test/v1", Some(KEY)));
    let e = llm.complete(&request(vec![])).await.unwrap_err();
    assert!(
        matches!(&e, UpstreamError::Unavailable(d) if d.contains("529") && !leaks(d)),
        "{e:?}"
    );
    assert_eq!(http.requests.borrow().len(), 3);
    assert_eq!(e.into_app_error(crate::error::Upstream::Llm).status(), 503);
}

#[tokio::test]
async fn timeouts_and_network_errors_are_retried_then_unavailable() {
    let http = ScriptedHttp::with(vec![
        Err(HttpError::Timeout),
        Err(HttpError::Network("reset".into())),
        Err(HttpError::Timeout),
    ]);
    let llm =
        AnthropicClient::new(&http, &config("https://a.test/v1", Some(KEY))).with_timeout_ms(1_234);
    let e = llm.complete(&request(vec![])).await.unwrap_err();
    assert!(
        matches!(&e, UpstreamError::Unavailable(d) if d.contains("timed out")),
        "{e:?}"
    );
    let sent = http.requests.borrow();
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|r| r.timeout_ms == 1_234));
}

#[tokio::test]
async fn a_refused_request_is_rejected_at_once_with_its_status_and_type_only() {
    let http = ScriptedHttp::with(vec![status(400, &error_body("invalid_request_error"))]);
    let llm = AnthropicClient::new(&http, &config("https://a.test/v1", Some(KEY)));
    let e = llm.complete(&request(vec![])).await.unwrap_err();
    let UpstreamError::Rejected(detail) = &e else {
        panic!("rejected expected, got {e:?}")
    };
    assert_eq!(detail, "anthropic: status 400 (invalid_request_error)");
    assert!(!leaks(&format!("{e:?} {e}")));
    assert_eq!(http.requests.borrow().len(), 1);
    assert_eq!(e.into_app_error(crate::error::Upstream::Llm).status(), 502);

    // A type that is no plain identifier (a proxy's page, say) is left out too.
    let odd = json!({"error": {"type": "Plan my day <b>"}});
    let http = ScriptedHttp::with(vec![status(403, &odd)]);
    let llm = AnthropicClient::new(&http, &config("https://a.test/v1", Some(KEY)));
    let e = llm.complete(&request(vec![])).await.unwrap_err();
    assert!(
        matches!(&e, UpstreamError::Rejected(d) if d == "anthropic: status 403"),
        "{e:?}"
    );
}

#[tokio::test]
async fn an_unreadable_answer_is_a_bad_response_without_its_content() {
    for body in [
        b"<html>Plan my day</html>".to_vec(),
        br#"{"content": [{"type": "text", "text": 7}], "note": "Plan my day"}"#.to_vec(),
    ] {
        let http = ScriptedHttp::with(vec![Ok(HttpResponse { status: 200, body })]);
        let llm = AnthropicClient::new(&http, &config("https://a.test/v1", Some(KEY)));
        let e = llm.complete(&request(vec![])).await.unwrap_err();
        assert!(
            matches!(&e, UpstreamError::BadResponse(d) if !leaks(d)),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn without_a_key_nothing_is_sent() {
    let http = ScriptedHttp::with(vec![]);
    let llm = AnthropicClient::new(&http, &config("https://a.test/v1", None));
    assert!(matches!(
        llm.complete(&request(vec![])).await,
        Err(UpstreamError::NotConfigured)
    ));
    assert!(matches!(
        llm.stream(&request(vec![])).await.map(|_| ()),
        Err(UpstreamError::NotConfigured)
    ));
    assert!(http.requests.borrow().is_empty());
    assert_eq!(
        UpstreamError::NotConfigured
            .into_app_error(crate::error::Upstream::Llm)
            .code(),
        "llm_not_configured"
    );
}

#[tokio::test]
async fn a_streamed_answer_comes_in_pieces_then_done_with_usage() {
    let server = MockServer::start().await;
    let pieces = ["Hel", "lo, ", "wör", "ld 🦀", "!"];
    answer(&server, sse(sse_text_body(&pieces))).await;
    let llm = client_for(&server);
    let items = drain(llm.stream(&request(vec![])).await.unwrap()).await;
    assert_eq!(items.len(), pieces.len() + 1, "{items:?}");
    for (item, piece) in items.iter().zip(pieces) {
        assert_eq!(item.as_ref().unwrap(), &LlmDelta::Text(piece.to_owned()));
    }
    let resp = done(&items);
    assert_eq!(resp.message.content.as_deref(), Some("Hello, wörld 🦀!"));
    assert_eq!(
        (resp.prompt_tokens, resp.completion_tokens),
        (USAGE_INPUT_TOKENS, USAGE_OUTPUT_TOKENS)
    );
    let received = server.received_requests().await.unwrap();
    assert_eq!(
        received[0].body_json::<Value>().unwrap()["stream"],
        json!(true)
    );
    assert_eq!(
        received[0].headers.get("accept").unwrap(),
        "text/event-stream"
    );
}

#[tokio::test]
async fn streamed_tool_input_is_accumulated_per_block() {
    let args_1 = json!({"title": "Buy milk", "notes": "2 litres, oat ✓"});
    let args_2 = json!({"status": "todo"});
    let body = sse_tool_use_body(
        "Let me do that.",
        &[
            ("toolu_a", "add_task", args_1.clone()),
            ("toolu_b", "list_tasks", args_2.clone()),
            ("toolu_c", "list_projects", json!({})),
        ],
    );
    let http = ChunkedHttp::whole(body);
    let llm = AnthropicClient::new(&http, &config("https://a.test/v1", Some(KEY)));
    let items = drain(llm.stream(&request(vec![add_task_tool()])).await.unwrap()).await;
    assert_eq!(texts(&items), "Let me do that.");
    let resp = done(&items);
    assert_eq!(resp.message.content.as_deref(), Some("Let me do that."));
    let calls = &resp.message.tool_calls;
    assert_eq!(
        calls.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["toolu_a", "toolu_b", "toolu_c"]
    );
    let parsed: Vec<Value> = calls
        .iter()
        .map(|c| serde_json::from_str(&c.arguments).unwrap())
        .collect();
    assert_eq!(parsed, [args_1, args_2, json!({})]);
}

#[tokio::test]
async fn pings_unknown_events_and_unknown_deltas_are_ignored() {
    let body = sse_text_body(&["a", "b"]).replace(
        "event: message_stop",
        "event: ping\ndata: {\"type\": \"ping\"}\n\n\
         event: future_event\ndata: {\"type\": \"future_event\", \"x\": 1}\n\n\
         event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \
         \"delta\": {\"type\": \"citations_delta\", \"citation\": {}}}\n\n\
         event: message_stop",
    );
    let http = ChunkedHttp::whole(body);
    let llm = AnthropicClient::new(&http, &config("https://a.test/v1", Some(KEY)));
    let items = drain(llm.stream(&request(vec![])).await.unwrap()).await;
    assert_eq!(done(&items).message.content.as_deref(), Some("ab"));
}

/// Streams fixed chunks (then, optionally, nothing ever again), recording requests; its sleeps
/// end at once when `instant_sleeps` (so a stall is detected without waiting) and never
/// otherwise (so none is).
struct ChunkedHttp {
    chunks: RefCell<Vec<Chunk>>,
    stall_after: bool,
    instant_sleeps: bool,
    sent: RefCell<u32>,
}

/// One piece of a streamed body.
type Chunk = Result<Vec<u8>, HttpError>;

impl ChunkedHttp {
    fn new(chunks: Vec<Chunk>) -> Self {
        Self {
            chunks: RefCell::new(chunks),
            stall_after: false,
            instant_sleeps: false,
            sent: RefCell::new(0),
        }
    }

    fn whole(body: String) -> Self {
        Self::new(vec![Ok(body.into_bytes())])
    }

    fn pieces(body: &[u8], piece: usize) -> Self {
        Self::new(body.chunks(piece).map(|c| Ok(c.to_vec())).collect())
    }
}

#[async_trait(?Send)]
impl HttpClient for ChunkedHttp {
    async fn send(&self, _req: HttpRequest) -> Result<HttpResponse, HttpError> {
        unreachable!("only streaming is used")
    }
    async fn send_streaming(&self, _req: HttpRequest) -> Result<HttpStreamResponse, HttpError> {
        *self.sent.borrow_mut() += 1;
        let chunks = std::mem::take(&mut *self.chunks.borrow_mut());
        let body = stream::iter(chunks);
        Ok(HttpStreamResponse {
            status: 200,
            body: if self.stall_after {
                Box::pin(body.chain(stream::pending()))
            } else {
                Box::pin(body)
            },
        })
    }
    async fn sleep(&self, _ms: u64) {
        if !self.instant_sleeps {
            futures_util::future::pending::<()>().await;
        }
    }
}

async fn stream_items(http: &ChunkedHttp) -> Vec<Result<LlmDelta, UpstreamError>> {
    let llm = AnthropicClient::new(http, &config("https://a.test/v1", Some(KEY)));
    drain(llm.stream(&request(vec![])).await.unwrap()).await
}

#[tokio::test]
async fn a_stream_split_at_every_byte_boundary_gives_the_same_answer() {
    let body = sse_tool_use_body(
        "Grüße aus 日本 🦀",
        &[("toolu_x", "add_task", json!({"title": "Tee ☕"}))],
    )
    .replace('\n', "\r\n");
    let bytes = body.as_bytes();
    let whole = stream_items(&ChunkedHttp::whole(body.clone())).await;
    let expected = format!("{whole:?}");
    assert_eq!(
        done(&whole).message.content.as_deref(),
        Some("Grüße aus 日本 🦀")
    );
    assert_eq!(done(&whole).message.tool_calls.len(), 1);
    for cut in 0..=bytes.len() {
        let http = ChunkedHttp::new(vec![Ok(bytes[..cut].to_vec()), Ok(bytes[cut..].to_vec())]);
        assert_eq!(
            format!("{:?}", stream_items(&http).await),
            expected,
            "cut at {cut}"
        );
    }
    let bytewise = stream_items(&ChunkedHttp::pieces(bytes, 1)).await;
    assert_eq!(format!("{bytewise:?}"), expected);
}

#[tokio::test]
async fn a_stream_that_breaks_ends_with_an_unavailable_error_after_the_text_so_far() {
    let full = sse_text_body(&["Hel", "lo", " there"]);
    let cut = full.find(" there").unwrap();
    let http = ChunkedHttp::new(vec![
        Ok(full.as_bytes()[..cut].to_vec()),
        Err(HttpError::Network("connection reset".into())),
    ]);
    let items = stream_items(&http).await;
    assert_eq!(texts(&items), "Hello");
    assert!(
        matches!(items.last(), Some(Err(UpstreamError::Unavailable(d))) if d.contains("broke")),
        "{items:?}"
    );
    assert!(!items.iter().any(|i| matches!(i, Ok(LlmDelta::Done(_)))));
}

#[tokio::test]
async fn a_stream_that_stalls_ends_with_an_unavailable_error() {
    let full = sse_text_body(&["Hel", "lo", " there"]);
    let cut = full.find(" there").unwrap();
    let mut http = ChunkedHttp::new(vec![Ok(full.as_bytes()[..cut].to_vec())]);
    http.stall_after = true;
    http.instant_sleeps = true;
    let items = stream_items(&http).await;
    assert_eq!(texts(&items), "Hello");
    assert!(
        matches!(items.last(), Some(Err(UpstreamError::Unavailable(d))) if d.contains("stalled")),
        "{items:?}"
    );
}

#[tokio::test]
async fn a_stream_whose_headers_come_later_than_the_timeout_is_retried_then_unavailable() {
    let server = MockServer::start().await;
    answer(
        &server,
        sse(sse_text_body(&["late"])).set_delay(std::time::Duration::from_millis(1_500)),
    )
    .await;
    let llm = client_for(&server).with_timeout_ms(200);
    let e = llm.stream(&request(vec![])).await.map(|_| ()).unwrap_err();
    assert!(
        matches!(&e, UpstreamError::Unavailable(d) if d.contains("timed out")),
        "{e:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_stream_cut_before_its_end_is_unavailable_but_a_finished_one_is_accepted() {
    let full = sse_text_body(&["Hel", "lo"]);
    let before_delta = full.find("event: message_delta").unwrap();
    let items = stream_items(&ChunkedHttp::whole(full[..before_delta].to_owned())).await;
    assert_eq!(texts(&items), "Hello");
    assert!(
        matches!(items.last(), Some(Err(UpstreamError::Unavailable(d))) if d.contains("message_stop")),
        "{items:?}"
    );

    // The stop reason came: the answer is whole even without `message_stop`.
    let before_stop = full.find("event: message_stop").unwrap();
    let items = stream_items(&ChunkedHttp::whole(full[..before_stop].to_owned())).await;
    assert_eq!(done(&items).message.content.as_deref(), Some("Hello"));

    // A last `message_stop` without its blank line counts.
    let unterminated = full.trim_end().to_owned();
    let items = stream_items(&ChunkedHttp::whole(unterminated)).await;
    assert_eq!(done(&items).message.content.as_deref(), Some("Hello"));
}

#[tokio::test]
async fn an_error_event_mid_stream_is_unavailable_without_its_message() {
    let full = sse_text_body(&["Hel", "lo"]);
    let cut = full.find("event: message_delta").unwrap();
    let body = format!(
        "{}event: error\ndata: {}\n\n",
        &full[..cut],
        error_body("overloaded_error")
    );
    let items = stream_items(&ChunkedHttp::whole(body)).await;
    assert_eq!(texts(&items), "Hello");
    let Some(Err(UpstreamError::Unavailable(d))) = items.last() else {
        panic!("{items:?}")
    };
    assert_eq!(d, "anthropic stream: error event (overloaded_error)");
}

#[tokio::test]
async fn malformed_events_end_the_stream_with_a_bad_response_without_content() {
    let start = sse_text_body(&["a"]);
    let cut = start.find("event: message_delta").unwrap();
    for bad in [
        r#"{"type": "content_block_delta", "index": "Plan my day", "delta": {}}"#,
        r#"{"type": "content_block_delta", "index": 5, "delta": {"type": "input_json_delta", "partial_json": "{\"Plan my day"}}"#,
        "Plan my day",
    ] {
        let body = format!("{}event: x\ndata: {bad}\n\n", &start[..cut]);
        let items = stream_items(&ChunkedHttp::whole(body)).await;
        assert!(
            matches!(items.last(), Some(Err(UpstreamError::BadResponse(d))) if !leaks(d)),
            "{bad}: {items:?}"
        );
    }
}

#[tokio::test]
async fn a_json_body_instead_of_events_is_a_bad_response() {
    let items = stream_items(&ChunkedHttp::whole(text_message("hi").to_string())).await;
    assert!(
        matches!(items.as_slice(), [Err(UpstreamError::BadResponse(_))]),
        "{items:?}"
    );
}

#[tokio::test]
async fn a_refused_stream_fails_the_call_itself_and_overload_is_retried_first() {
    let server = MockServer::start().await;
    Mock::given(path(MESSAGES))
        .respond_with(ResponseTemplate::new(529).set_body_json(error_body("overloaded_error")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    answer(
        &server,
        ResponseTemplate::new(401).set_body_json(error_body("authentication_error")),
    )
    .await;
    let llm = client_for(&server);
    let e = llm.stream(&request(vec![])).await.map(|_| ()).unwrap_err();
    assert!(
        matches!(&e, UpstreamError::Rejected(d)
            if d == "anthropic: status 401 (authentication_error)"),
        "{e:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}
