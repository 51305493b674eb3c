use std::cell::Cell;
use std::collections::VecDeque;

use serde_json::json;

use super::*;
use crate::api::{ChatContext, ChatRequest, ExecutionMode, PlanActionType};
use crate::chat::agent::ChatAgent;
use crate::chat::allowance::{self, EnabledAgents};
use crate::chat::orchestrator::{Orchestrated, Orchestrator};
use crate::domain::Tier;
use crate::marketplace::ManifestSubmission;
use crate::ports::{LlmMessage, LlmResponse, LlmToolCall};
use crate::testing::ScriptedLlm;

const NOW: i64 = 1_795_780_800_000;
const SECRET: &str = "Always greet the gardener by the secret name Violet Moonbeam first, \
                      then list the seeds to order for the spring beds.";

fn manifest(agent: &str) -> PluginManifest {
    let raw: ManifestSubmission = serde_json::from_value(json!({
        "name": "Garden",
        "version": "1.0.0",
        "author": "Ada",
        "permissions": ["notifications"],
        "category": "productivity",
        "agents": [{
            "name": agent,
            "description": "Plans what to sow in the garden",
            "instructions": SECRET,
            "tools": [{
                "name": "order_seeds",
                "description": "Orders seeds through the garden app.",
                "parameters": {
                    "type": "object",
                    "properties": {"count": {"type": "integer", "minimum": 1, "maximum": 9}},
                    "required": ["count"]
                },
                "permissions": ["notifications"]
            }]
        }]
    }))
    .unwrap();
    PluginManifest::parse(&raw).unwrap()
}

/// A store of approved versions that counts its queries.
#[derive(Default)]
struct Versions {
    known: Vec<LoadedVersion>,
    queries: Cell<u32>,
}

#[async_trait(?Send)]
impl PluginVersions for Versions {
    async fn versions(&self, wanted: &[InstalledPlugin]) -> Result<Vec<LoadedVersion>, StoreError> {
        self.queries.set(self.queries.get() + 1);
        Ok(self
            .known
            .iter()
            .filter(|v| {
                wanted
                    .iter()
                    .any(|w| w.version_id == v.version_id && w.plugin_id == v.plugin_id)
            })
            .cloned()
            .collect())
    }
}

fn builtin() -> &'static Brain {
    Box::leak(Box::new(Brain::standard()))
}

fn installed(plugin: u128, version: u128) -> InstalledPlugin {
    InstalledPlugin {
        plugin_id: uuid::Uuid::from_u128(plugin),
        version_id: uuid::Uuid::from_u128(version),
    }
}

fn store_of(list: &[(InstalledPlugin, &str)]) -> Versions {
    Versions {
        known: list
            .iter()
            .map(|(p, agent)| LoadedVersion {
                plugin_id: p.plugin_id,
                version_id: p.version_id,
                manifest: manifest(agent),
            })
            .collect(),
        queries: Cell::new(0),
    }
}

fn names(brain: &Brain) -> Vec<&'static str> {
    brain.registry.iter().map(ChatAgent::name).collect()
}

#[tokio::test]
async fn a_user_without_plugin_agents_gets_the_built_in_brain_without_a_query() {
    let cache = RefCell::new(BrainCache::default());
    let std = builtin();
    let store = Versions::default();
    let b = brain_for(&cache, std, &[], &store).await.unwrap();
    assert!(matches!(b, UserBrain::Builtin(p) if std::ptr::eq(p, std)));
    assert_eq!(store.queries.get(), 0);
    assert_eq!(cache.borrow().brains(), 0);
}

#[tokio::test]
async fn a_plugin_set_is_read_once_then_served_from_the_cache_by_its_version_ids() {
    let cache = RefCell::new(BrainCache::default());
    let (a, b) = (installed(0xa, 0xa1), installed(0xb, 0xb1));
    let store = store_of(&[(a, "sower"), (b, "weeder")]);
    let first = brain_for(&cache, builtin(), &[b, a], &store).await.unwrap();
    assert_eq!(store.queries.get(), 1);
    let agents = names(&first);
    assert_eq!(
        agents.len(),
        6,
        "4 built-in and 2 plugin agents: {agents:?}"
    );
    assert_eq!(
        &agents[4..],
        [
            "plugin.00000000-0000-0000-0000-00000000000a.sower",
            "plugin.00000000-0000-0000-0000-00000000000b.weeder"
        ],
        "plugins in plugin-id order"
    );
    let listed = allowance::listing(&first.registry, &EnabledAgents::all());
    assert_eq!(listed.agents[4].title, "Garden · sower");
    // The same set in another order: the same brain, no query.
    let again = brain_for(&cache, builtin(), &[a, b], &store).await.unwrap();
    assert_eq!(store.queries.get(), 1);
    let (UserBrain::Plugins(x), UserBrain::Plugins(y)) = (&first, &again) else {
        panic!("plugin brains");
    };
    assert!(Rc::ptr_eq(x, y));
    // A subset reuses the cached version: a new brain, still no query.
    let only_a = brain_for(&cache, builtin(), &[a], &store).await.unwrap();
    assert_eq!(store.queries.get(), 1);
    assert_eq!(names(&only_a).len(), 5);
    // A new approved version is a new key, read once.
    let a2 = installed(0xa, 0xa2);
    let store2 = store_of(&[(a2, "planter")]);
    let next = brain_for(&cache, builtin(), &[a2], &store2).await.unwrap();
    assert_eq!(store2.queries.get(), 1);
    assert_eq!(
        names(&next)[4],
        "plugin.00000000-0000-0000-0000-00000000000a.planter"
    );
}

#[tokio::test]
async fn a_version_storage_no_longer_answers_is_left_out_and_not_cached() {
    let cache = RefCell::new(BrainCache::default());
    let (a, gone) = (installed(0xa, 0xa1), installed(0xc, 0xc1));
    let store = store_of(&[(a, "sower")]);
    let b = brain_for(&cache, builtin(), &[a, gone], &store)
        .await
        .unwrap();
    assert_eq!(names(&b).len(), 5);
    assert_eq!(
        cache.borrow().brains(),
        0,
        "an incomplete brain is not kept"
    );
    brain_for(&cache, builtin(), &[a, gone], &store)
        .await
        .unwrap();
    assert_eq!(
        store.queries.get(),
        2,
        "asked again, only for the missing one"
    );
    // A version named under another plugin's id is not taken.
    let forged = InstalledPlugin {
        plugin_id: uuid::Uuid::from_u128(0xd),
        version_id: a.version_id,
    };
    let other = BrainCache::default();
    let other = RefCell::new(other);
    let b = brain_for(&other, builtin(), &[forged], &store)
        .await
        .unwrap();
    assert_eq!(names(&b).len(), 4);
}

#[tokio::test]
async fn the_caches_are_bounded() {
    let cache = RefCell::new(BrainCache::new(2, 3));
    let sets: Vec<InstalledPlugin> = (1..=5).map(|i| installed(i, 0x100 + i)).collect();
    let store = store_of(&sets.iter().map(|p| (*p, "sower")).collect::<Vec<_>>());
    for p in &sets {
        brain_for(&cache, builtin(), &[*p], &store).await.unwrap();
    }
    assert_eq!((cache.borrow().brains(), cache.borrow().versions()), (2, 3));
}

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
            role: "assistant".to_owned(),
            content: None,
            tool_calls: vec![LlmToolCall {
                id: "c1".to_owned(),
                name: name.to_owned(),
                arguments: args.to_string(),
            }],
            tool_call_id: None,
        },
        prompt_tokens: 1,
        completion_tokens: 1,
    }
}

fn scripted(script: Vec<LlmResponse>) -> ScriptedLlm {
    ScriptedLlm {
        script: RefCell::new(script.into_iter().map(Ok).collect::<VecDeque<_>>()),
        ..ScriptedLlm::default()
    }
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

const AGENT: &str = "plugin.00000000-0000-0000-0000-00000000000a.sower";

#[tokio::test]
async fn a_plugin_agent_is_listed_to_the_classifier_routed_to_and_its_instructions_never_leave() {
    let cache = RefCell::new(BrainCache::default());
    let a = installed(0xa, 0xa1);
    let brain = brain_for(&cache, builtin(), &[a], &store_of(&[(a, "sower")]))
        .await
        .unwrap();
    let llm = scripted(vec![
        says(&format!("{AGENT}.")),
        calls("order_seeds", &json!({"count": 3})),
        says(&format!("Ordered. My instructions: {SECRET}")),
    ]);
    let out = Orchestrator::new(&brain, &llm, NOW)
        .orchestrate(&request("order seeds", ExecutionMode::Direct))
        .await
        .unwrap();
    let Orchestrated::Response(r) = out else {
        panic!("direct")
    };
    let system = llm.requests.borrow()[0].messages[0]
        .content
        .clone()
        .unwrap_or_default();
    assert!(system.contains(AGENT), "the classifier lists it: {system}");
    assert!(system.contains("Plans what to sow in the garden"));
    assert_eq!(r.actions.len(), 1);
    assert_eq!(r.actions[0].kind, PlanActionType::CallAgent);
    assert_eq!(
        r.actions[0].data.as_ref().unwrap()["arguments"],
        json!({"count": 3})
    );
    assert!(!r.response.contains("Violet Moonbeam"), "{}", r.response);
    // The built-in brain neither lists nor routes to it.
    let llm = scripted(vec![says(AGENT), says("done")]);
    Orchestrator::new(builtin(), &llm, NOW)
        .orchestrate(&request("order seeds", ExecutionMode::Direct))
        .await
        .unwrap();
    let reqs = llm.requests.borrow();
    let system = reqs[0].messages[0].content.clone().unwrap_or_default();
    assert!(!system.contains("plugin."), "{system}");
    assert_eq!(reqs[1].label, "task_agent", "the fallback, not the plugin");
}

#[tokio::test]
async fn plans_and_run_step_name_plugin_agents_the_user_has() {
    let cache = RefCell::new(BrainCache::default());
    let a = installed(0xa, 0xa1);
    let brain = brain_for(&cache, builtin(), &[a], &store_of(&[(a, "sower")]))
        .await
        .unwrap();
    let llm = scripted(vec![says(&format!("{AGENT} and note_agent"))]);
    let Orchestrated::Plan(plan) = Orchestrator::new(&brain, &llm, NOW)
        .orchestrate(&request("order seeds and note it", ExecutionMode::Plan))
        .await
        .unwrap()
    else {
        panic!("plan")
    };
    assert_eq!(plan.id, format!("chat.{AGENT}+note_agent"));
    assert_eq!(
        plan.steps[0].prompt_template.as_deref(),
        Some(format!("agent.{AGENT}").as_str())
    );
    // A fresh brain of the same set rebuilds the plan from its id and runs the plugin step.
    let fresh = brain_for(
        &RefCell::new(BrainCache::default()),
        builtin(),
        &[a],
        &store_of(&[(a, "sower")]),
    )
    .await
    .unwrap();
    let llm = scripted(vec![calls("order_seeds", &json!({"count": 2})), says("ok")]);
    let mut vars = serde_json::Map::new();
    vars.insert("message".into(), json!("order two"));
    let out = Orchestrator::new(&fresh, &llm, NOW)
        .run_step(&plan.id, 0, &vars, Tier::Pro)
        .await
        .unwrap();
    assert_eq!(out.actions[0].kind, PlanActionType::CallAgent);
    // Without the plugin the same id is unknown.
    let e = Orchestrator::new(builtin(), &llm, NOW)
        .run_step(&plan.id, 0, &vars, Tier::Pro)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_found");
    // A free user's three include plugin agents.
    let chosen = vec![
        AGENT.to_owned(),
        "task_agent".to_owned(),
        "note_agent".to_owned(),
        "project_agent".to_owned(),
    ];
    let e = allowance::choose(Tier::Free, &fresh.registry, &chosen).unwrap_err();
    assert_eq!(e.code(), "tier_required");
    let three = allowance::choose(Tier::Free, &fresh.registry, &chosen[..3]).unwrap();
    let enabled = allowance::effective(Tier::Free, &fresh.registry, Some(&three));
    assert!(enabled.contains(AGENT));
}
