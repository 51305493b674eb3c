//! Whole chat requests on a non-default provider: the orchestrator neither knows nor cares
//! which protocol answers.

use secrecy::SecretString;
use serde_json::{json, Value};

use super::*;
use crate::api::{ChatContext, ChatRequest, ExecutionMode};
use crate::chat::agent::TokenSink;
use crate::chat::anthropic::native::{
    sse_text_body, sse_tool_use_body, text_message, tool_use_message,
};
use crate::chat::orchestrator::{Brain, Orchestrated, Orchestrator};
use crate::ports::{HttpError, HttpResponse};
use crate::testing::ScriptedHttp;

fn registry_configs() -> Vec<ProviderConfig> {
    ["openai", "claude"]
        .into_iter()
        .map(|name| ProviderConfig {
            name: name.to_owned(),
            kind: if name == "claude" {
                ProviderKind::Anthropic
            } else {
                ProviderKind::OpenAi
            },
            base_url: url::Url::parse(&format!("https://{name}.test/v1")).unwrap(),
            api_key: Some(SecretString::from("sk-x".to_owned())),
            models: vec![format!("{name}-small"), format!("{name}-large")],
            default_model: format!("{name}-small"),
            timeout_ms: 1_000,
        })
        .collect()
}

fn scripted(bodies: Vec<String>) -> ScriptedHttp {
    ScriptedHttp::with(
        bodies
            .into_iter()
            .map(|b| {
                Ok::<_, HttpError>(HttpResponse {
                    status: 200,
                    body: b.into_bytes(),
                })
            })
            .collect(),
    )
}

fn request(mode: ExecutionMode) -> ChatRequest {
    ChatRequest {
        message: "Remind me to call Ana".into(),
        context: ChatContext::default(),
        execution_mode: mode,
        provider: Some("claude".into()),
        model: Some("claude-large".into()),
    }
}

fn sent(http: &ScriptedHttp) -> Vec<(String, Value)> {
    http.requests
        .borrow()
        .iter()
        .map(|r| (r.url.clone(), serde_json::from_slice(&r.body).unwrap()))
        .collect()
}

#[tokio::test]
async fn a_chat_with_a_tool_call_runs_on_anthropic_with_the_chosen_model() {
    let http = scripted(vec![
        text_message("task_agent").to_string(),
        tool_use_message(&[("toolu_1", "create_task", json!({"title": "Call Ana"}))]).to_string(),
        text_message("I prepared a task to call Ana.").to_string(),
    ]);
    let registry = ProviderRegistry::new(&&http, &registry_configs());
    let req = request(ExecutionMode::Direct);
    let llm = registry
        .select(Tier::Pro, req.provider.as_deref(), req.model.as_deref())
        .unwrap();
    let brain = Brain::standard();
    let Orchestrated::Response(r) = Orchestrator::new(&brain, &llm, 0)
        .orchestrate(&req)
        .await
        .unwrap()
    else {
        panic!("a response")
    };
    assert_eq!(r.response, "I prepared a task to call Ana.");
    assert_eq!(r.actions.len(), 1);
    let sent = sent(&http);
    assert_eq!(sent.len(), 3);
    for (url, body) in &sent {
        assert_eq!(url, "https://claude.test/v1/messages");
        assert_eq!(body["model"], "claude-large");
    }
    assert_eq!(
        sent[2].1["messages"].as_array().unwrap().last().unwrap()["content"][0]["type"],
        "tool_result"
    );
}

#[tokio::test]
async fn a_streamed_chat_with_a_tool_call_runs_on_anthropic() {
    #[derive(Default)]
    struct Sink(Vec<String>);
    impl TokenSink for Sink {
        fn token(&mut self, text: &str) {
            self.0.push(text.to_owned());
        }
    }
    let http = scripted(vec![
        text_message("task_agent").to_string(),
        sse_tool_use_body(
            "",
            &[("toolu_1", "create_task", json!({"title": "Call Ana"}))],
        ),
        sse_text_body(&["Prepared ", "the task."]),
    ]);
    let registry = ProviderRegistry::new(&&http, &registry_configs());
    let llm = registry
        .select(Tier::Pro, Some("claude"), Some("claude-large"))
        .unwrap();
    let brain = Brain::standard();
    let mut sink = Sink::default();
    let Orchestrated::Response(r) = Orchestrator::new(&brain, &llm, 0)
        .orchestrate_stream(&request(ExecutionMode::Direct), &mut sink)
        .await
        .unwrap()
    else {
        panic!("a response")
    };
    assert_eq!(sink.0.concat(), "Prepared the task.");
    assert_eq!(r.response, "Prepared the task.");
    assert_eq!(r.actions.len(), 1);
    let sent = sent(&http);
    assert_eq!(
        sent.iter()
            .map(|(_, b)| b.get("stream").is_some())
            .collect::<Vec<_>>(),
        [false, true, true],
        "the classifier is a plain call; the agent streams"
    );
}

#[tokio::test]
async fn run_step_runs_on_the_chosen_provider() {
    let http = scripted(vec![text_message("A report.").to_string()]);
    let registry = ProviderRegistry::new(&&http, &registry_configs());
    let llm = registry.select(Tier::Pro, Some("claude"), None).unwrap();
    let brain = Brain::standard();
    let tasks = json!({"tasks": [{"id": 1, "title": "x"}]});
    let out = Orchestrator::new(&brain, &llm, 0)
        .run_step(
            "generate_weekly_report",
            0,
            tasks.as_object().unwrap(),
            Tier::Pro,
        )
        .await
        .unwrap();
    assert_eq!(out.output, "A report.");
    assert_eq!(sent(&http)[0].1["model"], "claude-small");
}
