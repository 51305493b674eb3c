//! The tier matrix's chat rows, end to end (issue #22): several LLM providers (`LLM_PROVIDERS`,
//! an OpenAI-compatible default and an Anthropic one, on a stack of their own) chosen per
//! request within the caller's tier, and the agents allowance (`GET /agents`,
//! `PUT /agents/enabled`) that bounds what the classifier, pipelines, plans and run-step may
//! use. Each test scripts the model only for its own marker.

use std::fmt::Write as _;
use std::time::Duration;

use futures_util::SinkExt;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::billing::subscribe;
use crate::harness::Stack;
use crate::helpers::{assert_error, marker, script, text, TestApp, TestUser};
use crate::home::{next, socket, Next};

/// The providers of the matrix stack: the scripted OpenAI server first (the default), then the
/// scripted Anthropic server.
const PROVIDERS: &str = r#"[{"name":"openai","kind":"openai","base_url":"{OPENAI_URL}/v1","api_key":"sk-e2e","models":["gpt-4o-mini","gpt-4o"],"default_model":"gpt-4o-mini"},{"name":"claude","kind":"anthropic","base_url":"{ANTHROPIC_URL}/v1","api_key":"sk-ant-e2e","models":["claude-3-5-haiku-latest","claude-sonnet-4-5"],"default_model":"claude-3-5-haiku-latest"}]"#;

/// The stack with [`PROVIDERS`], started by the first test that needs it and shared by the
/// rest; [`stop`] ends it.
static MATRIX: Mutex<Option<TestApp>> = Mutex::const_new(None);

async fn providers_app() -> TestApp {
    let mut slot = MATRIX.lock().await;
    if slot.is_none() {
        let stack = Stack::start_with(&[("LLM_PROVIDERS", PROVIDERS)])
            .await
            .expect("the providers stack starts");
        *slot = Some(TestApp::new(std::sync::Arc::new(stack)));
    }
    slot.clone().expect("started")
}

/// Stops the providers stack, if a test started it (called once every test has run).
pub fn stop() {
    if let Ok(mut slot) = MATRIX.try_lock() {
        slot.take();
    }
}

async fn post(app: &TestApp, user: &TestUser, path: &str, body: &Value) -> reqwest::Response {
    app.req(Method::POST, path)
        .bearer_auth(&user.access_token)
        .json(body)
        .send()
        .await
        .expect("request")
}

async fn get(app: &TestApp, user: &TestUser, path: &str) -> Value {
    let r = app.get_auth(path, &user.access_token).await;
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.expect("json")
}

async fn put_agents(app: &TestApp, user: &TestUser, agents: &[&str]) -> reqwest::Response {
    app.req(Method::PUT, "/agents/enabled")
        .bearer_auth(&user.access_token)
        .json(&json!({ "agents": agents }))
        .send()
        .await
        .expect("request")
}

fn enabled_of(listing: &Value) -> Vec<String> {
    listing["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter(|a| a["enabled"] == true)
        .map(|a| a["name"].as_str().expect("name").to_owned())
        .collect()
}

// ---- a scripted Anthropic model ----------------------------------------------------------

fn message(content: &Value, stop_reason: &str) -> Value {
    json!({"id": "msg_e2e", "type": "message", "role": "assistant", "model": "claude-e2e",
           "content": content, "stop_reason": stop_reason, "stop_sequence": null,
           "usage": {"input_tokens": 21, "output_tokens": 4}})
}

fn a_text(text: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(message(
        &json!([{"type": "text", "text": text}]),
        "end_turn",
    ))
}

fn a_tool(name: &str, input: &Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(message(
        &json!([{"type": "tool_use", "id": "toolu_e2e", "name": name, "input": input}]),
        "tool_use",
    ))
}

fn event(kind: &str, data: &Value) -> String {
    format!("event: {kind}\ndata: {data}\n\n")
}

fn sse(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "text/event-stream")
        .set_body_string(body)
}

fn sse_start() -> String {
    event(
        "message_start",
        &json!({"type": "message_start", "message": {"id": "msg_e2e", "type": "message",
            "role": "assistant", "model": "claude-e2e", "content": [], "stop_reason": null,
            "stop_sequence": null, "usage": {"input_tokens": 21, "output_tokens": 1}}}),
    ) + &event("ping", &json!({"type": "ping"}))
}

fn sse_end(stop_reason: &str) -> String {
    event(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason,
            "stop_sequence": null}, "usage": {"output_tokens": 4}}),
    ) + &event("message_stop", &json!({"type": "message_stop"}))
}

/// An Anthropic event stream saying `pieces`, one `text_delta` each.
fn a_sse_text(pieces: &[&str]) -> ResponseTemplate {
    let mut body = sse_start();
    body += &event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
    );
    for p in pieces {
        body += &event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": p}}),
        );
    }
    body += &event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    );
    sse(body + &sse_end("end_turn"))
}

/// An Anthropic event stream calling `name` with `input`, the JSON in pieces of 6 characters.
fn a_sse_tool(name: &str, input: &Value) -> ResponseTemplate {
    let mut body = sse_start();
    body += &event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": 0, "content_block":
            {"type": "tool_use", "id": "toolu_e2e", "name": name, "input": {}}}),
    );
    let chars: Vec<char> = input.to_string().chars().collect();
    for piece in chars.chunks(6) {
        body += &event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta":
                {"type": "input_json_delta", "partial_json": piece.iter().collect::<String>()}}),
        );
    }
    body += &event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    );
    sse(body + &sse_end("tool_use"))
}

/// Scripts the Anthropic model for `marker`: the classifier answers `intent`; a call carrying a
/// tool result gets `after_tool`; any other call `first`.
async fn script_anthropic(
    app: &TestApp,
    marker: &str,
    intent: &str,
    first: ResponseTemplate,
    after_tool: ResponseTemplate,
) {
    let server = &app.stack.anthropic;
    let base = || {
        Mock::given(method("POST"))
            .and(path("/v1/messages"))
            .and(body_string_contains(marker))
    };
    base()
        .and(body_string_contains("intent classifier"))
        .respond_with(a_text(intent))
        .with_priority(1)
        .mount(server)
        .await;
    base()
        .and(body_string_contains(r#""type":"tool_result""#))
        .respond_with(after_tool)
        .with_priority(2)
        .mount(server)
        .await;
    base()
        .respond_with(first)
        .with_priority(3)
        .mount(server)
        .await;
}

async fn anthropic_requests(app: &TestApp, marker: &str) -> Vec<wiremock::Request> {
    app.stack
        .anthropic
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains(marker))
        .collect()
}

async fn openai_requests(app: &TestApp, marker: &str) -> Vec<Value> {
    app.stack
        .openai
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains(marker))
        .map(|r| serde_json::from_slice(&r.body).expect("JSON"))
        .collect()
}

fn body_of(r: &wiremock::Request) -> Value {
    serde_json::from_slice(&r.body).expect("the worker sends JSON")
}

/// Sends `request` on a chat socket and reads to its `done` or `error` frame; answers that frame
/// and the text of the token frames before it.
async fn stream_chat(app: &TestApp, user: &TestUser, request: &Value) -> (Value, String) {
    let mut ws = socket(app, user, "/chat/stream").await;
    ws.send(Message::text(request.to_string())).await.unwrap();
    let mut tokens = String::new();
    loop {
        match next(&mut ws, Duration::from_secs(15)).await {
            Next::Frame(f) => match f["type"].as_str() {
                Some("token") => tokens.push_str(f["text"].as_str().unwrap_or_default()),
                Some("started" | "ping") => {}
                Some("done" | "error") => return (f, tokens),
                _ => panic!("unexpected frame {f}"),
            },
            other => panic!("the socket ended before done: {other:?}"),
        }
    }
}

fn the_task(actions: &Value) {
    let actions = actions.as_array().expect("actions");
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0]["type"], "create_record");
    assert_eq!(actions[0]["table"], "tasks");
    assert_eq!(actions[0]["data"]["title"], "Call the bank");
}

// ---- providers -----------------------------------------------------------------------------

pub async fn providers_lists_the_default_for_free_users_and_every_provider_for_paid_ones(
    shared: TestApp,
) {
    let app = providers_app().await;
    let free = app.register("prov-free").await;
    let listed = get(&app, &free, "/providers").await;
    let names: Vec<&str> = listed["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["openai"], "{listed}");
    assert_eq!(listed["providers"][0]["default"], true);
    assert_eq!(listed["providers"][0]["kind"], "openai");
    assert_eq!(listed["providers"][0]["default_model"], "gpt-4o-mini");
    assert_eq!(
        listed["providers"][0]["models"],
        json!(["gpt-4o-mini", "gpt-4o"])
    );
    assert!(!listed.to_string().contains("sk-"), "no key is ever listed");

    let pro = app.register("prov-pro").await;
    subscribe(&app, &pro, "pro", 1).await;
    let listed = get(&app, &pro, "/providers").await;
    let second = &listed["providers"][1];
    assert_eq!(listed["providers"].as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(second["name"], "claude");
    assert_eq!(second["kind"], "anthropic");
    assert_eq!(second["default"], false);
    assert_eq!(
        second["models"],
        json!(["claude-3-5-haiku-latest", "claude-sonnet-4-5"])
    );
    assert!(!listed.to_string().contains("sk-"), "no key is ever listed");

    // Without LLM_PROVIDERS (the shared stack) the one provider is the OPENAI_* one.
    let user = shared.register("prov-legacy").await;
    let listed = get(&shared, &user, "/providers").await;
    assert_eq!(listed["providers"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["providers"][0]["name"], "openai");
}

pub async fn a_free_user_is_refused_a_second_provider_and_unknown_names_before_any_model_call(
    _: TestApp,
) {
    let app = providers_app().await;
    let free = app.register("prov-refused").await;
    let m = marker();
    let message = format!("Remind me to call the bank {m}");
    let r = post(
        &app,
        &free,
        "/chat",
        &json!({"message": message, "provider": "claude"}),
    )
    .await;
    let body = assert_error(r, 403, "tier_required").await;
    assert_eq!(body["error"]["details"]["feature"], "providers", "{body}");
    assert_eq!(body["error"]["details"]["required_tier"], "pro", "{body}");
    // The same refusal for run-step and over the socket.
    let r = post(
        &app,
        &free,
        "/plans/run-step",
        &json!({"plan_id": "create_task_from_email", "step_index": 0, "provider": "claude",
                "variables": {"email_subject": "Bank", "email_body": message}}),
    )
    .await;
    assert_error(r, 403, "tier_required").await;
    let (frame, _) = stream_chat(
        &app,
        &free,
        &json!({"message": message, "provider": "claude"}),
    )
    .await;
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["code"], "tier_required", "{frame}");

    // Names the server does not have are 422 naming the field, for any tier.
    let pro = app.register("prov-unknown").await;
    subscribe(&app, &pro, "pro", 1).await;
    for (body, field) in [
        (
            json!({"message": message, "provider": "mistral"}),
            "provider",
        ),
        (json!({"message": message, "model": "gpt-5"}), "model"),
        // A model of the other provider is not one of this one's.
        (
            json!({"message": message, "provider": "openai", "model": "claude-sonnet-4-5"}),
            "model",
        ),
        (
            json!({"message": message, "provider": "Claude!"}),
            "provider",
        ),
    ] {
        let r = post(&app, &pro, "/chat", &body).await;
        let err = assert_error(r, 422, "validation_failed").await;
        assert_eq!(
            err["error"]["details"]["fields"][0]["field"], field,
            "{err}"
        );
    }
    assert!(
        anthropic_requests(&app, &m).await.is_empty(),
        "no model was called"
    );
    assert!(
        openai_requests(&app, &m).await.is_empty(),
        "no model was called"
    );
}

pub async fn a_paid_users_chat_runs_on_the_chosen_anthropic_model_with_a_tool_call(_: TestApp) {
    let app = providers_app().await;
    let pro = app.register("prov-claude").await;
    subscribe(&app, &pro, "pro", 1).await;
    let m = marker();
    script_anthropic(
        &app,
        &m,
        "task_agent",
        a_tool(
            "create_task",
            &json!({"title": "Call the bank", "priority": "high"}),
        ),
        a_text("I prepared the task to call the bank."),
    )
    .await;
    let r = post(
        &app,
        &pro,
        "/chat",
        &json!({"message": format!("Remind me to call the bank {m}"),
                "provider": "claude", "model": "claude-sonnet-4-5"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["response"], "I prepared the task to call the bank.");
    the_task(&body["actions"]);

    let sent = anthropic_requests(&app, &m).await;
    assert_eq!(sent.len(), 3, "classifier, tool call, answer");
    for r in &sent {
        let b = body_of(r);
        assert_eq!(
            b["model"], "claude-sonnet-4-5",
            "the chosen model every time"
        );
        assert_eq!(
            r.headers.get("x-api-key").map(|v| v.to_str().unwrap()),
            Some("sk-ant-e2e")
        );
        assert!(r.headers.get("anthropic-version").is_some());
        assert!(b["system"].is_string(), "system prompts go top-level");
    }
    let with_tools = sent.iter().map(body_of).find(|b| b.get("tools").is_some());
    let tools = with_tools.expect("the agent offered its tools")["tools"].clone();
    assert!(
        tools
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "create_task" && t["input_schema"].is_object()),
        "{tools}"
    );
    assert!(
        openai_requests(&app, &m).await.is_empty(),
        "nothing went to the default"
    );

    // Without a provider, the same user is answered by the default provider and its model.
    let m2 = marker();
    script(&app, &m2, "note_agent", text("Noted."), None).await;
    let r = post(
        &app,
        &pro,
        "/chat",
        &json!({"message": format!("Note this {m2}")}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let sent = openai_requests(&app, &m2).await;
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|b| b["model"] == "gpt-4o-mini"));
    assert!(anthropic_requests(&app, &m2).await.is_empty());
}

/// An OpenAI stream calling `create_task` (the arguments in three pieces).
fn openai_sse_tool(args: &Value) -> ResponseTemplate {
    let chunk = |delta: Value, finish: Value| {
        let c = json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {c}\n\n")
    };
    let text = args.to_string();
    let third = text.len() / 3;
    let mut body = chunk(
        json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "create_task", "arguments": ""}}]}),
        Value::Null,
    );
    for piece in [&text[..third], &text[third..2 * third], &text[2 * third..]] {
        body += &chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
            Value::Null,
        );
    }
    body += &chunk(json!({}), json!("tool_calls"));
    body += "data: [DONE]\n\n";
    sse(body)
}

fn openai_sse_text(pieces: &[&str]) -> ResponseTemplate {
    let mut body = String::new();
    for p in pieces {
        let c = json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": null}]});
        let _ = write!(body, "data: {c}\n\n");
    }
    let c = json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1,
        "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
    let _ = write!(body, "data: {c}\n\ndata: [DONE]\n\n");
    sse(body)
}

pub async fn the_same_chat_streams_through_each_provider_with_its_tool_call(_: TestApp) {
    let app = providers_app().await;
    let pro = app.register("prov-stream").await;
    subscribe(&app, &pro, "pro", 1).await;
    let args = json!({"title": "Call the bank", "priority": "high"});

    // Anthropic: the classifier's JSON, then the agent's two streamed calls.
    let m = marker();
    script_anthropic(
        &app,
        &m,
        "task_agent",
        a_sse_tool("create_task", &args),
        a_sse_text(&["I prepared ", "the task ", "to call the bank."]),
    )
    .await;
    let (done, tokens) = stream_chat(
        &app,
        &pro,
        &json!({"message": format!("Remind me to call the bank {m}"), "provider": "claude"}),
    )
    .await;
    assert_eq!(done["type"], "done", "{done}");
    assert_eq!(done["response"], "I prepared the task to call the bank.");
    assert_eq!(tokens, "I prepared the task to call the bank.");
    the_task(&done["actions"]);
    let sent = anthropic_requests(&app, &m).await;
    assert_eq!(
        sent.len(),
        3,
        "classifier, streamed tool call, streamed answer"
    );
    let streamed = sent.iter().filter(|r| body_of(r)["stream"] == true).count();
    assert_eq!(streamed, 2);
    assert!(sent
        .iter()
        .all(|r| body_of(r)["model"] == "claude-3-5-haiku-latest"));

    // The default (OpenAI) provider: the same conversation, streamed the same way.
    let m = marker();
    let base = || {
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(body_string_contains(&m))
    };
    base()
        .and(body_string_contains("intent classifier"))
        .respond_with(text("task_agent"))
        .with_priority(1)
        .mount(&app.stack.openai)
        .await;
    base()
        .and(body_string_contains(r#""role":"tool""#))
        .respond_with(openai_sse_text(&[
            "I prepared ",
            "the task ",
            "to call the bank.",
        ]))
        .with_priority(2)
        .mount(&app.stack.openai)
        .await;
    base()
        .respond_with(openai_sse_tool(&args))
        .with_priority(3)
        .mount(&app.stack.openai)
        .await;
    let (done, tokens) = stream_chat(
        &app,
        &pro,
        &json!({"message": format!("Remind me to call the bank {m}")}),
    )
    .await;
    assert_eq!(done["type"], "done", "{done}");
    assert_eq!(tokens, "I prepared the task to call the bank.");
    the_task(&done["actions"]);
    assert!(anthropic_requests(&app, &m).await.is_empty());
}

pub async fn plans_and_run_step_run_on_the_anthropic_provider(_: TestApp) {
    let app = providers_app().await;
    let pro = app.register("prov-plans").await;
    subscribe(&app, &pro, "pro", 1).await;
    let m = marker();
    script_anthropic(
        &app,
        &m,
        "task_agent, note_agent",
        a_text("unused"),
        a_text("unused"),
    )
    .await;
    let r = post(
        &app,
        &pro,
        "/chat",
        &json!({"message": format!("Plan my week {m}"), "execution_mode": "plan",
                "provider": "claude"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let plan: Value = r.json().await.unwrap();
    assert_eq!(plan["id"], "chat.task_agent+note_agent", "{plan}");
    assert_eq!(
        anthropic_requests(&app, &m).await.len(),
        1,
        "the classifier only"
    );

    // A playbook step on the Anthropic provider: its template's agent answers with a tool call.
    let m = marker();
    script_anthropic(
        &app,
        &m,
        "unused",
        a_tool("create_task", &json!({"title": "Call the bank"})),
        a_text("Created the task."),
    )
    .await;
    let r = post(
        &app,
        &pro,
        "/plans/run-step",
        &json!({"plan_id": "create_task_from_email", "step_index": 0, "provider": "claude",
                "model": "claude-sonnet-4-5",
                "variables": {"email_subject": "Bank", "email_body": format!("Call the bank {m}")}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["output"], "Created the task.", "{out}");
    the_task(&out["actions"]);
    let sent = anthropic_requests(&app, &m).await;
    assert_eq!(sent.len(), 2);
    assert!(sent
        .iter()
        .all(|r| body_of(r)["model"] == "claude-sonnet-4-5"));
    assert!(openai_requests(&app, &m).await.is_empty());
}

pub async fn a_batch_runs_on_the_chosen_provider_and_model_within_the_tier(_: TestApp) {
    let app = providers_app().await;
    let m = marker();
    let items: Vec<Value> = (0..3)
        .map(|i| json!({"variables": {"email_body": format!("Call the bank {i} {m}")}}))
        .collect();
    let body = |provider: &str, model: Option<&str>| {
        let mut b = json!({"playbook_id": "create_task_from_email", "items": items,
                           "provider": provider});
        if let Some(model) = model {
            b["model"] = json!(model);
        }
        b
    };
    let free = app.register("prov-batch-free").await;
    let r = post(&app, &free, "/batches", &body("claude", None)).await;
    let err = assert_error(r, 403, "tier_required").await;
    assert_eq!(err["error"]["details"]["feature"], "providers", "{err}");
    let r = post(&app, &free, "/batches", &body("mistral", None)).await;
    let err = assert_error(r, 422, "validation_failed").await;
    assert_eq!(err["error"]["details"]["fields"][0]["field"], "provider");
    assert!(anthropic_requests(&app, &m).await.is_empty(), "nothing ran");

    let pro = app.register("prov-batch-pro").await;
    subscribe(&app, &pro, "pro", 1).await;
    script_anthropic(
        &app,
        &m,
        "unused",
        a_tool("create_task", &json!({"title": "Call the bank"})),
        a_text("Created the task."),
    )
    .await;
    let r = post(
        &app,
        &pro,
        "/batches",
        &body("claude", Some("claude-sonnet-4-5")),
    )
    .await;
    assert_eq!(r.status(), 202);
    let started: Value = r.json().await.unwrap();
    let id = started["batch_id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let view = loop {
        let view = get(&app, &pro, &format!("/batches/{id}")).await;
        if view["status"] != "running" {
            break view;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running: {view}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(view["status"], "done", "{view}");
    for r in view["results"].as_array().unwrap() {
        assert_eq!(r["output"], "Created the task.", "{r}");
        the_task(&r["actions"]);
    }
    let sent = anthropic_requests(&app, &m).await;
    assert_eq!(sent.len(), 6, "two calls per item");
    assert!(sent
        .iter()
        .all(|r| body_of(r)["model"] == "claude-sonnet-4-5"));
    assert!(openai_requests(&app, &m).await.is_empty());
}

// ---- the agents allowance ------------------------------------------------------------------

pub async fn agents_follow_the_tier_and_a_free_user_cannot_enable_a_fourth(app: TestApp) {
    let free = app.register("agents-free").await;
    let listed = get(&app, &free, "/agents").await;
    let all: Vec<&str> = listed["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        all,
        [
            "task_agent",
            "checkpoint_agent",
            "project_agent",
            "note_agent"
        ]
    );
    assert_eq!(listed["agents"][0]["title"], "Tasks");
    assert_eq!(
        enabled_of(&listed),
        ["task_agent", "project_agent", "note_agent"]
    );

    let every = [
        "task_agent",
        "checkpoint_agent",
        "project_agent",
        "note_agent",
    ];
    let body = assert_error(put_agents(&app, &free, &every).await, 403, "tier_required").await;
    assert_eq!(body["error"]["details"]["feature"], "agents", "{body}");
    assert_eq!(
        enabled_of(&get(&app, &free, "/agents").await),
        ["task_agent", "project_agent", "note_agent"],
        "a refused choice changes nothing"
    );
    for (agents, field) in [
        (vec![], "agents"),
        (vec!["task_agent", "plugin.nope"], "agents[1]"),
        (vec!["note_agent", "note_agent"], "agents[1]"),
    ] {
        let err = assert_error(
            put_agents(&app, &free, &agents).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(
            err["error"]["details"]["fields"][0]["field"], field,
            "{err}"
        );
    }
    let r = put_agents(&app, &free, &["note_agent", "checkpoint_agent"]).await;
    assert_eq!(r.status(), 200);
    let listed: Value = r.json().await.unwrap();
    assert_eq!(enabled_of(&listed), ["checkpoint_agent", "note_agent"]);
    assert_eq!(
        enabled_of(&get(&app, &free, "/agents").await),
        ["checkpoint_agent", "note_agent"]
    );

    // Another user's choice is their own.
    let other = app.register("agents-other").await;
    assert_eq!(
        enabled_of(&get(&app, &other, "/agents").await),
        ["task_agent", "project_agent", "note_agent"]
    );

    // Paid tiers have every agent and may enable them all.
    let pro = app.register("agents-pro").await;
    subscribe(&app, &pro, "pro", 1).await;
    assert_eq!(enabled_of(&get(&app, &pro, "/agents").await), every);
    assert_eq!(put_agents(&app, &pro, &every).await.status(), 200);
    let r = put_agents(&app, &pro, &["checkpoint_agent"]).await;
    assert_eq!(
        enabled_of(&r.json::<Value>().await.unwrap()),
        ["checkpoint_agent"]
    );
}

pub async fn the_classifier_lists_exactly_the_enabled_agents_and_routes_only_among_them(
    app: TestApp,
) {
    let free = app.register("agents-route").await;
    assert_eq!(
        put_agents(&app, &free, &["task_agent", "note_agent"])
            .await
            .status(),
        200
    );
    let m = marker();
    // The model names a disabled agent: the request falls back to an enabled one.
    script(
        &app,
        &m,
        "checkpoint_agent",
        text("Here is what I found."),
        None,
    )
    .await;
    let r = post(
        &app,
        &free,
        "/chat",
        &json!({"message": format!("What are my milestones {m}")}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let sent = openai_requests(&app, &m).await;
    let system = |b: &Value| {
        b["messages"][0]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let classifier = sent
        .iter()
        .map(system)
        .find(|s| s.contains("intent classifier"))
        .expect("a classifier call");
    let roster = classifier
        .split("Available agents:\n")
        .nth(1)
        .expect("the classifier lists its agents");
    let listed: Vec<&str> = roster
        .lines()
        .filter_map(|l| l.strip_prefix("- "))
        .filter_map(|l| l.split(':').next())
        .collect();
    assert_eq!(listed, ["task_agent", "note_agent"], "{classifier}");
    let agent_call = sent
        .iter()
        .find(|b| b.get("tools").is_some())
        .expect("an agent ran");
    let tools = agent_call["tools"].to_string();
    assert!(tools.contains("create_task"), "the fallback task agent ran");
    assert!(
        !tools.contains("list_checkpoints"),
        "never the disabled agent"
    );

    // With one enabled agent the classifier is not asked at all.
    assert_eq!(put_agents(&app, &free, &["note_agent"]).await.status(), 200);
    let m = marker();
    script(&app, &m, "task_agent", text("Noted."), None).await;
    let r = post(
        &app,
        &free,
        "/chat",
        &json!({"message": format!("Note it {m}")}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let sent = openai_requests(&app, &m).await;
    assert_eq!(sent.len(), 1, "one agent call, no classifier");
    assert!(sent[0]["tools"].to_string().contains("create_note"));
}

pub async fn a_plan_or_run_step_naming_a_disabled_agent_is_refused_with_tier_required(
    app: TestApp,
) {
    let free = app.register("agents-plan").await;
    let m = marker();
    let step = |plan_id: &str| {
        json!({"plan_id": plan_id, "step_index": 0,
               "variables": {"email_subject": "Bank", "email_body": format!("Call the bank {m}")}})
    };
    // checkpoint_agent is not among a free user's default agents.
    let r = post(
        &app,
        &free,
        "/plans/run-step",
        &step("chat.checkpoint_agent"),
    )
    .await;
    let body = assert_error(r, 403, "tier_required").await;
    assert_eq!(body["error"]["details"]["feature"], "agents", "{body}");
    // The free playbook runs on task_agent until the user disables it.
    assert_eq!(put_agents(&app, &free, &["note_agent"]).await.status(), 200);
    let r = post(
        &app,
        &free,
        "/plans/run-step",
        &step("create_task_from_email"),
    )
    .await;
    assert_error(r, 403, "tier_required").await;
    let r = post(
        &app,
        &free,
        "/plans/run-step",
        &step("chat.task_agent+note_agent"),
    )
    .await;
    assert_error(r, 403, "tier_required").await;
    assert!(
        openai_requests(&app, &m).await.is_empty(),
        "refused before any model call"
    );
    // Enabled again, the same step runs.
    script(&app, &m, "unused", text("A task for the bank."), None).await;
    assert_eq!(put_agents(&app, &free, &["task_agent"]).await.status(), 200);
    let r = post(
        &app,
        &free,
        "/plans/run-step",
        &step("create_task_from_email"),
    )
    .await;
    assert_eq!(r.status(), 200);
}
