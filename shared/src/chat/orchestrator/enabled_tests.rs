//! The orchestrator under an agents allowance: the classifier sees only the enabled agents, and
//! no route, pipeline, plan or plan step reaches another.

use std::collections::VecDeque;

use serde_json::json;

use super::*;
use crate::chat::allowance::{default_enabled, EnabledAgents};
use crate::ports::{LlmMessage, LlmResponse, LlmToolCall};
use crate::testing::ScriptedLlm;

const NOW: i64 = 1_795_780_800_000;

fn says(text: &str) -> LlmResponse {
    LlmResponse {
        message: LlmMessage::text("assistant", text),
        prompt_tokens: 1,
        completion_tokens: 1,
    }
}

fn calls(name: &str, args: &serde_json::Value) -> LlmResponse {
    LlmResponse {
        message: LlmMessage {
            role: "assistant".into(),
            content: None,
            tool_calls: vec![LlmToolCall {
                id: "call_1".into(),
                name: name.into(),
                arguments: args.to_string(),
            }],
            tool_call_id: None,
        },
        prompt_tokens: 1,
        completion_tokens: 1,
    }
}

fn scripted(answers: Vec<LlmResponse>) -> ScriptedLlm {
    ScriptedLlm {
        script: std::cell::RefCell::new(answers.into_iter().map(Ok).collect::<VecDeque<_>>()),
        ..ScriptedLlm::default()
    }
}

/// The labels of the calls made (`classify`, an agent's name, `synthesis`, …).
fn labels(llm: &ScriptedLlm) -> Vec<String> {
    llm.requests
        .borrow()
        .iter()
        .map(|r| r.label.clone())
        .collect()
}

fn system_of(req: &LlmRequest) -> &str {
    req.messages[0].content.as_deref().unwrap()
}

fn request(message: &str, mode: ExecutionMode) -> ChatRequest {
    ChatRequest {
        message: message.to_owned(),
        context: ChatContext::default(),
        execution_mode: mode,
        provider: None,
        model: None,
    }
}

fn free(brain: &Brain) -> EnabledAgents {
    default_enabled(Tier::Free, &brain.registry)
}

fn is_agents_tier_error(e: &AppError) -> bool {
    matches!(
        e,
        AppError::TierRequired {
            feature: "agents",
            required_tier: "pro"
        }
    )
}

#[tokio::test]
async fn the_classifier_prompt_lists_exactly_the_enabled_agents() {
    let brain = Brain::standard();
    let llm = scripted(vec![says("note_agent")]);
    let o = Orchestrator::new(&brain, &llm, NOW).with_enabled_agents(free(&brain));
    assert_eq!(
        o.enabled_agents(),
        ["task_agent", "project_agent", "note_agent"]
    );
    o.classify_intent("Write this down", &ChatContext::default())
        .await
        .unwrap();
    let requests = llm.requests.borrow();
    let system = system_of(&requests[0]);
    let roster: Vec<&str> = system
        .lines()
        .filter_map(|l| l.strip_prefix("- "))
        .filter_map(|l| l.split(':').next())
        .collect();
    assert_eq!(roster, ["task_agent", "project_agent", "note_agent"]);
    let checkpoint = brain.registry.get("checkpoint_agent").unwrap();
    assert!(!system.contains("checkpoint"), "{system}");
    assert!(!system.contains(checkpoint.description()), "{system}");
}

#[tokio::test]
async fn with_every_agent_enabled_the_classifier_lists_all_four_as_before() {
    let brain = Brain::standard();
    let llm = scripted(vec![says("task")]);
    Orchestrator::new(&brain, &llm, NOW)
        .classify_intent("hi", &ChatContext::default())
        .await
        .unwrap();
    let requests = llm.requests.borrow();
    let system = system_of(&requests[0]);
    for agent in brain.registry.iter() {
        assert!(
            system.contains(&format!("- {}: ", agent.name())),
            "{system}"
        );
    }
}

#[tokio::test]
async fn a_disabled_agent_the_classifier_names_is_never_routed_to() {
    let brain = Brain::standard();
    for (answer, expected) in [
        ("checkpoint_agent", vec!["task_agent"]),
        ("checkpoint_agent, note_agent", vec!["note_agent"]),
        ("checkpoint, project", vec!["project_agent"]),
    ] {
        let llm = scripted(vec![says(answer)]);
        let o = Orchestrator::new(&brain, &llm, NOW).with_enabled_agents(free(&brain));
        let chosen = o
            .classify_intent("Plan milestones", &ChatContext::default())
            .await
            .unwrap();
        assert_eq!(chosen, expected, "{answer}");
    }

    // End to end: the classifier insists on the checkpoint agent; the task agent answers.
    let llm = scripted(vec![
        says("checkpoint_agent"),
        says("Here is what I can do."),
    ]);
    let out = Orchestrator::new(&brain, &llm, NOW)
        .with_enabled_agents(free(&brain))
        .orchestrate(&request("Plan milestones", ExecutionMode::Direct))
        .await
        .unwrap();
    assert!(matches!(out, Orchestrated::Response(_)));
    assert_eq!(labels(&llm), ["classify", "task_agent"]);
}

#[test]
fn parse_intent_among_ignores_disabled_agents() {
    let brain = Brain::standard();
    let enabled = EnabledAgents::only(["note_agent", "checkpoint_agent"]);
    assert_eq!(
        parse_intent_among("task, note, checkpoint", &brain.registry, &enabled),
        ["note_agent", "checkpoint_agent"]
    );
    assert!(parse_intent_among("task_agent", &brain.registry, &enabled).is_empty());
    assert_eq!(
        parse_intent_among("task_agent", &brain.registry, &EnabledAgents::all()),
        parse_intent("task_agent", &brain.registry)
    );
}

#[tokio::test]
async fn without_the_task_agent_an_unclear_intent_falls_back_to_the_first_enabled() {
    let brain = Brain::standard();
    let llm = scripted(vec![says("the weather service")]);
    let o = Orchestrator::new(&brain, &llm, NOW)
        .with_enabled_agents(EnabledAgents::only(["note_agent", "project_agent"]));
    let chosen = o
        .classify_intent("Is it raining?", &ChatContext::default())
        .await
        .unwrap();
    assert_eq!(
        chosen,
        ["project_agent"],
        "registry order: project before note"
    );
}

#[tokio::test]
async fn with_one_agent_enabled_it_answers_without_asking_the_classifier() {
    let brain = Brain::standard();
    let llm = scripted(vec![says("Noted.")]);
    let out = Orchestrator::new(&brain, &llm, NOW)
        .with_enabled_agents(EnabledAgents::only(["note_agent"]))
        .orchestrate(&request("anything", ExecutionMode::Direct))
        .await
        .unwrap();
    let Orchestrated::Response(r) = out else {
        panic!("a response")
    };
    assert_eq!(r.response, "Noted.");
    assert_eq!(labels(&llm), ["note_agent"]);
}

#[tokio::test]
async fn an_allowance_naming_no_registered_agent_is_tier_required() {
    let brain = Brain::standard();
    let llm = scripted(vec![]);
    let e = Orchestrator::new(&brain, &llm, NOW)
        .with_enabled_agents(EnabledAgents::only(["ghost_agent"]))
        .orchestrate(&request("hi", ExecutionMode::Direct))
        .await
        .unwrap_err();
    assert!(is_agents_tier_error(&e), "{e:?}");
    assert!(llm.requests.borrow().is_empty());
}

#[tokio::test]
async fn pipelines_run_only_enabled_agents() {
    let brain = Brain::standard();
    let llm = scripted(vec![
        says("project_agent, checkpoint_agent, note_agent"),
        says("Apollo is active."),
        says("Noted."),
        says("Apollo is active; noted."),
    ]);
    let out = Orchestrator::new(&brain, &llm, NOW)
        .with_enabled_agents(free(&brain))
        .orchestrate(&request(
            "Check Apollo, plan it, note it",
            ExecutionMode::Direct,
        ))
        .await
        .unwrap();
    assert!(matches!(out, Orchestrated::Response(_)));
    assert_eq!(
        labels(&llm),
        ["classify", "project_agent", "note_agent", "synthesis"]
    );
}

#[tokio::test]
async fn streamed_answers_honour_the_allowance_too() {
    struct Sink(Vec<String>);
    impl TokenSink for Sink {
        fn token(&mut self, text: &str) {
            self.0.push(text.to_owned());
        }
    }
    let brain = Brain::standard();
    let llm = scripted(vec![says("checkpoint_agent"), says("Tasks, then.")]);
    let mut sink = Sink(Vec::new());
    Orchestrator::new(&brain, &llm, NOW)
        .with_enabled_agents(free(&brain))
        .orchestrate_stream(&request("milestones", ExecutionMode::Direct), &mut sink)
        .await
        .unwrap();
    assert_eq!(labels(&llm), ["classify", "task_agent"]);
    assert_eq!(sink.0.concat(), "Tasks, then.");
}

#[tokio::test]
async fn plans_are_built_only_from_enabled_agents() {
    let brain = Brain::standard();
    let llm = scripted(vec![says("checkpoint_agent, note_agent")]);
    let out = Orchestrator::new(&brain, &llm, NOW)
        .with_enabled_agents(free(&brain))
        .orchestrate(&request("Plan and note", ExecutionMode::Plan))
        .await
        .unwrap();
    let Orchestrated::Plan(plan) = out else {
        panic!("a plan")
    };
    assert_eq!(plan.id, "chat.note_agent");
}

#[tokio::test]
async fn routing_to_a_disabled_agent_directly_is_tier_required_before_any_call() {
    let brain = Brain::standard();
    let llm = scripted(vec![says("x")]);
    let o = Orchestrator::new(&brain, &llm, NOW).with_enabled_agents(free(&brain));
    let ctx = ChatContext::default();
    let e = o
        .route_single("checkpoint_agent", "hi", &ctx)
        .await
        .unwrap_err();
    assert!(is_agents_tier_error(&e), "{e:?}");
    let e = o
        .route_pipeline(&["task_agent", "checkpoint_agent"], "hi", &ctx, None)
        .await
        .unwrap_err();
    assert!(is_agents_tier_error(&e), "{e:?}");
    assert!(llm.requests.borrow().is_empty());
    assert_eq!((e.status(), e.code()), (403, "tier_required"));
}

#[tokio::test]
async fn run_step_of_a_plan_naming_a_disabled_agent_is_tier_required() {
    let brain = Brain::standard();
    let llm = scripted(vec![]);
    let message = json!({"message": "Plan Apollo"});
    let vars = message.as_object().unwrap();
    let o = Orchestrator::new(&brain, &llm, NOW).with_enabled_agents(free(&brain));
    for plan in ["chat.checkpoint_agent", "chat.task_agent+checkpoint_agent"] {
        let e = o.run_step(plan, 0, vars, Tier::Free).await.unwrap_err();
        assert!(is_agents_tier_error(&e), "{plan}: {e:?}");
    }
    // A playbook whose template runs the task agent, for a user who disabled it.
    let email = json!({"email_body": "Please send the figures"});
    let e = Orchestrator::new(&brain, &llm, NOW)
        .with_enabled_agents(EnabledAgents::only(["note_agent", "project_agent"]))
        .run_step(
            "create_task_from_email",
            0,
            email.as_object().unwrap(),
            Tier::Free,
        )
        .await
        .unwrap_err();
    assert!(is_agents_tier_error(&e), "{e:?}");
    // A playbook whose own agent is disabled, even though its step is a plain completion.
    let tasks = json!({"tasks": []});
    let e = Orchestrator::new(&brain, &llm, NOW)
        .with_enabled_agents(EnabledAgents::only(["task_agent"]))
        .run_step(
            "generate_weekly_report",
            0,
            tasks.as_object().unwrap(),
            Tier::Pro,
        )
        .await
        .unwrap_err();
    assert!(is_agents_tier_error(&e), "{e:?}");
    assert!(llm.requests.borrow().is_empty(), "refused before any call");
}

#[tokio::test]
async fn run_step_of_a_plan_of_enabled_agents_runs() {
    let brain = Brain::standard();
    let llm = scripted(vec![
        calls(
            "create_note",
            &json!({"title": "Apollo", "content": "Active."}),
        ),
        says("Prepared the note."),
    ]);
    let message = json!({"message": "Note that Apollo is active"});
    let out = Orchestrator::new(&brain, &llm, NOW)
        .with_enabled_agents(free(&brain))
        .run_step(
            "chat.note_agent",
            0,
            message.as_object().unwrap(),
            Tier::Free,
        )
        .await
        .unwrap();
    assert_eq!(out.output, "Prepared the note.");
    // The note's create_record, then the index_document that follows it.
    assert_eq!(out.actions.len(), 2);
    assert_eq!(
        out.actions[1].kind,
        crate::api::PlanActionType::IndexDocument
    );
}
