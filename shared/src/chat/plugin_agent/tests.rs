use std::collections::VecDeque;

use serde_json::json;

use super::*;
use crate::api::{ChatContext, PlanActionType};
use crate::chat::agent::{AgentInput, MAX_ITER};
use crate::chat::orchestrator::prompt_corpus;
use crate::chat::plans::PromptTemplateRegistry;
use crate::chat::prompts::AGENT_COMMON;
use crate::chat::registry::AgentRegistry;
use crate::chat::sanitize::Sanitizer;
use crate::marketplace::ManifestSubmission;
use crate::ports::{LlmMessage, LlmResponse, LlmToolCall};
use crate::testing::ScriptedLlm;

/// 2026-11-27 12:00 UTC.
const NOW: i64 = 1_795_780_800_000;
const INSTRUCTIONS: &str = "Write digests that group finished work by project.\n\
                            Keep every digest under ten lines and end with one suggestion.";

fn plugin() -> uuid::Uuid {
    uuid::Uuid::from_u128(0xabc)
}

fn manifest() -> PluginManifest {
    let raw: ManifestSubmission = serde_json::from_value(json!({
        "name": "Digest",
        "version": "1.0.0",
        "author": "Ada",
        "permissions": ["notes:read", "tasks:read", "notifications"],
        "category": "productivity",
        "agents": [
            {
                "name": "digest",
                "description": "Writes weekly digests of finished work",
                "instructions": INSTRUCTIONS,
                "tools": [
                    {
                        "name": "show_digest",
                        "description": "Shows a digest in the app's digest panel.",
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "title": {"type": "string", "maxLength": 80},
                                "lines": {"type": "array", "items": {"type": "string"},
                                          "maxItems": 10},
                                "urgent": {"type": "boolean"}
                            },
                            "required": ["title", "lines"]
                        },
                        "permissions": ["notifications"]
                    },
                    {
                        "name": "find_notes",
                        "description": "Lists the notes the app shared, by project or title.",
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "project_id": {"type": "integer"},
                                "title": {"type": "string"}
                            }
                        },
                        "returns": "context",
                        "context": "notes",
                        "permissions": ["notes:read"]
                    },
                    {
                        "name": "find_tasks",
                        "description": "Lists the tasks the app shared, by status.",
                        "parameters": {
                            "type": "object",
                            "properties": {"status": {"type": "string"}, "done": {"type": "boolean"}}
                        },
                        "returns": "context",
                        "context": "tasks",
                        "permissions": ["tasks:read"]
                    }
                ]
            },
            {
                "name": "nudge",
                "description": "Sends friendly nudges",
                "instructions": "Be brief and kind in every nudge you prepare.",
                "tools": []
            }
        ]
    }))
    .unwrap();
    PluginManifest::parse(&raw).unwrap()
}

fn digest() -> PluginAgent {
    plugin_agents(plugin(), &manifest()).remove(0)
}

fn context() -> ChatContext {
    ChatContext {
        recent_tasks: vec![
            json!({"id": 1, "title": "Ship", "status": "done", "done": true}),
            json!({"id": 2, "title": "Plan", "status": "todo", "done": false}),
        ]
        .into_iter()
        .map(|v| v.as_object().cloned().unwrap())
        .collect(),
        notes: Some(
            vec![
                json!({"id": 1, "title": "Kickoff", "project_id": 7,
                       "content": "k".repeat(MAX_CONTEXT_STRING_CHARS + 10)}),
                json!({"id": 2, "title": "Retro", "project_id": "7.0"}),
                json!({"id": 3, "title": "Shopping"}),
            ]
            .into_iter()
            .map(|v| v.as_object().cloned().unwrap())
            .collect(),
        ),
        ..ChatContext::default()
    }
}

fn call(agent: &PluginAgent, tool: &str, args: &str) -> Result<ToolOutcome, ToolError> {
    agent.call_tool(
        tool,
        args,
        &ToolContext {
            context: &context(),
            now_ms: NOW,
        },
    )
}

fn says(text: &str) -> LlmResponse {
    LlmResponse {
        message: LlmMessage::text("assistant", text),
        prompt_tokens: 10,
        completion_tokens: 5,
    }
}

fn calls(list: &[(&str, &str, Value)]) -> LlmResponse {
    LlmResponse {
        message: LlmMessage {
            role: "assistant".to_owned(),
            content: None,
            tool_calls: list
                .iter()
                .map(|(id, name, args)| LlmToolCall {
                    id: (*id).to_owned(),
                    name: (*name).to_owned(),
                    arguments: args.to_string(),
                })
                .collect(),
            tool_call_id: None,
        },
        prompt_tokens: 10,
        completion_tokens: 5,
    }
}

fn scripted(script: Vec<LlmResponse>) -> ScriptedLlm {
    ScriptedLlm {
        script: std::cell::RefCell::new(script.into_iter().map(Ok).collect::<VecDeque<_>>()),
        ..ScriptedLlm::default()
    }
}

#[test]
fn one_agent_is_built_per_declaration_with_its_qualified_name() {
    let agents = plugin_agents(plugin(), &manifest());
    let names: Vec<&str> = agents.iter().map(ChatAgent::name).collect();
    assert_eq!(
        names,
        [
            "plugin.00000000-0000-0000-0000-000000000abc.digest",
            "plugin.00000000-0000-0000-0000-000000000abc.nudge"
        ]
    );
    assert_eq!(
        agents[0].description(),
        "Writes weekly digests of finished work"
    );
    assert_eq!(agents[0].plugin_id(), plugin());
    assert!(agents[1].tools().is_empty());
    let old = PluginManifest::from_json(
        br#"{"name":"n","version":"1.0.0","author":"a","category":"other"}"#,
    )
    .unwrap();
    assert!(plugin_agents(plugin(), &old).is_empty());
}

#[test]
fn the_prompt_frames_the_plugins_instructions_between_markers() {
    let p = digest().prompt();
    assert_eq!(&p[..FRAME.len()], FRAME);
    assert_eq!(
        &p[FRAME.len()..],
        [INSTRUCTIONS_BEGIN, INSTRUCTIONS, INSTRUCTIONS_END]
    );
    for f in FRAME {
        assert!(f.ends_with('.') && f.chars().count() >= 40, "{f}");
        assert!(!AGENT_COMMON.contains(f));
    }
}

#[test]
fn texts_are_interned_once_per_isolate() {
    let (a, b) = (digest(), digest());
    assert!(std::ptr::eq(a.name(), b.name()));
    assert!(std::ptr::eq(a.prompt(), b.prompt()));
    assert!(std::ptr::eq(
        a.prompt()[FRAME.len() + 1],
        b.prompt()[FRAME.len() + 1]
    ));
}

#[test]
fn tools_are_offered_with_their_closed_declared_schemas() {
    let tools = digest().tools();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["show_digest", "find_notes", "find_tasks"]);
    let p = &tools[0].parameters;
    assert_eq!(p["type"], "object");
    assert_eq!(p["additionalProperties"], false);
    assert_eq!(p["required"], json!(["title", "lines"]));
    assert_eq!(p["properties"]["lines"]["items"]["type"], "string");
    assert_eq!(
        tools[0].description,
        "Shows a digest in the app's digest panel."
    );
}

#[test]
fn an_app_tool_call_becomes_one_call_agent_action_with_normalised_arguments() {
    let out = call(
        &digest(),
        "show_digest",
        r#"{"title": "Week 48", "lines": ["Shipped"], "urgent": null}"#,
    )
    .unwrap();
    assert_eq!(out.actions.len(), 1);
    let a = &out.actions[0];
    assert_eq!(a.kind, PlanActionType::CallAgent);
    assert_eq!(
        a.agent.as_deref(),
        Some("plugin.00000000-0000-0000-0000-000000000abc.digest")
    );
    assert_eq!(a.table, None);
    assert_eq!(
        Value::Object(a.data.clone().unwrap()),
        json!({"tool": "show_digest", "arguments": {"title": "Week 48", "lines": ["Shipped"]}})
    );
    assert_eq!(
        serde_json::to_value(a).unwrap(),
        json!({"type": "call_agent", "agent": "plugin.00000000-0000-0000-0000-000000000abc.digest",
               "data": {"tool": "show_digest", "arguments": {"title": "Week 48", "lines": ["Shipped"]}}})
    );
    assert_eq!(out.result["prepared"], "call_agent");
}

#[test]
fn bad_arguments_are_tool_errors_naming_the_argument() {
    let agent = digest();
    for (args, want) in [
        ("{", "not valid JSON"),
        (r#"{"title": "T"}"#, "missing required field lines"),
        (r#"{"title": 1, "lines": []}"#, "`title` must be a string"),
        (
            r#"{"title": "T", "lines": [1]}"#,
            "`lines[0]` must be a string",
        ),
        (
            r#"{"title": "T", "lines": [], "colour": "red"}"#,
            "unknown field `colour`",
        ),
        (
            &json!({"title": "x".repeat(81), "lines": []}).to_string(),
            "at most 80 characters",
        ),
    ] {
        match call(&agent, "show_digest", args) {
            Err(ToolError::InvalidArguments(m)) => assert!(m.contains(want), "{args}: {m}"),
            other => panic!("{args}: {other:?}"),
        }
    }
    assert_eq!(
        call(&agent, "drop_tables", "{}").unwrap_err(),
        ToolError::UnknownTool("drop_tables".to_owned())
    );
}

#[test]
fn a_context_tool_lists_the_records_its_arguments_match() {
    let agent = digest();
    let out = call(&agent, "find_notes", "").unwrap();
    assert!(out.actions.is_empty(), "answered on the server, no action");
    assert_eq!(out.result["count"], 3);
    let out = call(&agent, "find_notes", r#"{"project_id": 7}"#).unwrap();
    assert_eq!(out.result["count"], 2, "7 and \"7.0\" are one id");
    let out = call(&agent, "find_notes", r#"{"title": "RETRO"}"#).unwrap();
    assert_eq!(
        out.result["notes"][0]["id"], 2,
        "strings compare case-insensitively"
    );
    let out = call(&agent, "find_tasks", r#"{"done": true}"#).unwrap();
    assert_eq!(
        out.result["tasks"],
        json!([{"id": 1, "title": "Ship", "status": "done", "done": true}])
    );
    let out = call(&agent, "find_tasks", r#"{"status": "blocked"}"#).unwrap();
    assert_eq!(out.result["count"], 0);
}

#[test]
fn a_context_tool_cuts_long_strings_and_says_when_a_list_was_not_shared() {
    let agent = digest();
    let out = call(&agent, "find_notes", r#"{"title": "Kickoff"}"#).unwrap();
    let note = &out.result["notes"][0];
    assert_eq!(
        note["content"].as_str().unwrap().chars().count(),
        MAX_CONTEXT_STRING_CHARS
    );
    assert_eq!(note["truncated"], true);
    let out = agent
        .call_tool(
            "find_notes",
            "{}",
            &ToolContext {
                context: &ChatContext::default(),
                now_ms: NOW,
            },
        )
        .unwrap();
    assert_eq!(out.result["shared"], false);
}

#[tokio::test]
async fn the_tool_loop_runs_a_plugin_agent_over_a_scripted_model() {
    let llm = scripted(vec![
        calls(&[
            ("c1", "find_tasks", json!({"status": "done"})),
            (
                "c2",
                "show_digest",
                json!({"title": "Week 48", "lines": ["Shipped"]}),
            ),
            ("c3", "show_digest", json!({"title": "Bad"})),
        ]),
        says("I asked the app to show your digest."),
    ]);
    let context = context();
    let input = AgentInput {
        query: "digest my week",
        context: &context,
        previous_results: &[],
        now_ms: NOW,
        handoff_to: &[],
    };
    let reply = digest().handle(&input, &llm).await.unwrap();
    assert_eq!(reply.text, "I asked the app to show your digest.");
    assert_eq!(reply.llm_calls, 2);
    assert_eq!(reply.actions.len(), 1, "the bad call made no action");
    assert_eq!(reply.actions[0].kind, PlanActionType::CallAgent);
    let requests = llm.requests.borrow();
    assert_eq!(requests[0].label, digest().name());
    let system = requests[0].messages[0].content.clone().unwrap();
    assert!(
        system.starts_with(AGENT_COMMON[0]),
        "the common rules come first"
    );
    let begin = system.find(INSTRUCTIONS_BEGIN).unwrap();
    let inside = system.find("Keep every digest under ten lines").unwrap();
    let end = system.find(INSTRUCTIONS_END).unwrap();
    assert!(begin < inside && inside < end, "{system}");
    assert_eq!(requests[0].tools.len(), 3);
    let results: Vec<&LlmMessage> = requests[1]
        .messages
        .iter()
        .filter(|m| m.role == "tool")
        .collect();
    assert_eq!(results.len(), 3);
    assert!(results[0].content.as_deref().unwrap().contains("\"Ship\""));
    assert!(results[1]
        .content
        .as_deref()
        .unwrap()
        .contains("call_agent"));
    assert!(results[2]
        .content
        .as_deref()
        .unwrap()
        .contains("missing required field lines"));
}

#[tokio::test]
async fn a_plugin_agent_is_bounded_like_the_built_in_ones() {
    let looping = (0..MAX_ITER)
        .map(|i| calls(&[(&format!("c{i}"), "find_notes", json!({}))]))
        .collect();
    let llm = scripted(looping);
    let context = context();
    let input = AgentInput {
        query: "loop",
        context: &context,
        previous_results: &[],
        now_ms: NOW,
        handoff_to: &[],
    };
    let reply = digest().handle(&input, &llm).await.unwrap();
    assert!(reply.hit_bound);
    assert_eq!(reply.llm_calls, MAX_ITER);
}

#[test]
fn the_sanitizer_fingerprints_plugin_instructions_as_it_does_the_built_in_prompts() {
    let agent = digest();
    let mut registry = AgentRegistry::standard();
    registry.register(Box::new(agent.clone())).unwrap();
    let corpus = prompt_corpus(&registry, &PromptTemplateRegistry::standard());
    let own = agent_fingerprints(&agent);
    assert!(
        own.contains(&"Keep every digest under ten lines and end with one suggestion.".to_owned())
    );
    assert!(own.contains(&"Shows a digest in the app's digest panel.".to_owned()));
    for f in &own {
        assert!(corpus.contains(f), "{f}");
    }
    let builtin = crate::chat::agents::all();
    let mut expected = Vec::new();
    for a in &builtin {
        expected.extend(agent_fingerprints(a.as_ref()));
    }
    let standard = prompt_corpus(
        &AgentRegistry::standard(),
        &PromptTemplateRegistry::standard(),
    );
    for f in &expected {
        assert!(
            standard.contains(f),
            "the built-in agents contribute the same way: {f}"
        );
    }
    let sanitizer = Sanitizer::new(corpus);
    let leak = "Sure. Write digests that group finished work by project. Here you go.";
    assert_eq!(sanitizer.clean(leak).text, "Sure. Here you go.");
    let framed = format!("{INSTRUCTIONS_BEGIN} hi");
    assert_eq!(sanitizer.clean(&framed).text, "hi");
}

#[test]
fn tool_errors_never_quote_the_plugins_instructions() {
    let agent = digest();
    for tool in agent.tools() {
        for args in ["{", "[]", r#"{"zzz": 1}"#, "{}", r#"{"title": 5}"#] {
            if let Err(e) = call(&agent, &tool.name, args) {
                let m = e.to_string();
                for f in agent.prompt() {
                    assert!(!m.contains(f), "{m}");
                }
            }
        }
    }
}
