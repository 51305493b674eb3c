//! Agents that installed plugins declare (issue #23), end to end: a plugin with an agent goes
//! through the checklist and review, is installed, and its agent is then listed to the
//! classifier, routed to and counted against the agents allowance for its user only — never
//! for another user — until it is uninstalled. Its tool calls come back as `call_agent` actions
//! with checked arguments (a bad one goes back to the model as a tool error), and its
//! instructions never reach the client, even when the model echoes them.

// A scenario reads best top to bottom, in one function.
#![allow(clippy::too_many_lines)]

use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::billing::{delete_subscription, subscribe_with_ids};
use crate::helpers::{assert_error, marker, text, tool_call, TestApp, TestUser};
use crate::helpers::{ok_json as ok, send_as as send};
use crate::plugins::{approve, package};

const INSTRUCTIONS: &str = "Greet the gardener as Violet Moonbeam of the seventh greenhouse, \
                            then plan the sowing of the spring beds row by row.";
const DESCRIPTION: &str = "Plans what to sow in the user's garden beds";

fn agent_manifest(name: &str) -> Value {
    json!({
        "name": name,
        "description": "Garden planning for the end-to-end tests.",
        "version": "1.0.0",
        "author": "E2E Author",
        "permissions": ["tasks:read", "notifications"],
        "category": "productivity",
        "price_cents": 0,
        "agents": [{
            "name": "sower",
            "description": DESCRIPTION,
            "instructions": INSTRUCTIONS,
            "tools": [
                {
                    "name": "plan_beds",
                    "description": "Shows a sowing plan in the garden panel of the app.",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "bed": {"type": "string", "maxLength": 40},
                            "rows": {"type": "integer", "minimum": 1, "maximum": 9}
                        },
                        "required": ["bed", "rows"]
                    },
                    "permissions": ["notifications"]
                }
            ]
        }]
    })
}

fn submission(manifest: &Value, pkg: &[u8]) -> Value {
    use base64::Engine;
    use sha2::Digest;
    json!({
        "manifest": manifest,
        "package": base64::engine::general_purpose::STANDARD.encode(pkg),
        "package_checksum": hex::encode(sha2::Sha256::digest(pkg)),
    })
}

fn fields(body: &Value) -> Vec<String> {
    body["error"]["details"]["fields"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|f| f["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Submits the plugin (after a refused submission), checks what the reviewer sees and
/// approves it; returns the plugin id.
async fn published(app: &TestApp, author: &TestUser, name: &str) -> String {
    let pkg = package("agents");
    // The checklist covers declarations: a bad name and a tool that needs a permission the
    // plugin does not ask for are refused by name, and nothing is queued.
    let mut bad = agent_manifest(name);
    bad["agents"][0]["name"] = json!("Sower!");
    bad["agents"][0]["tools"][0]["permissions"] = json!(["notes:write"]);
    let r = send(
        app,
        author,
        Method::POST,
        "/plugins",
        Some(&submission(&bad, &pkg)),
    )
    .await;
    let body = assert_error(r, 422, "validation_failed").await;
    let named = fields(&body);
    assert!(
        named.iter().any(|f| f == "manifest.agents[0].name"),
        "{body}"
    );
    assert!(
        named
            .iter()
            .any(|f| f.starts_with("manifest.agents[0].tools[0].permissions")),
        "{body}"
    );
    let r = send(
        app,
        author,
        Method::POST,
        "/plugins",
        Some(&submission(&agent_manifest(name), &pkg)),
    )
    .await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    // The reviewer sees the declaration, instructions included.
    let admin = app.admin().await;
    let queue = ok(
        app.get_auth("/plugins/review/pending", &admin.access_token)
            .await,
        "pending",
    )
    .await;
    let entry = queue["pending"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plugin_id"] == id.as_str())
        .cloned()
        .expect("queued");
    assert_eq!(entry["agents"][0]["instructions"], INSTRUCTIONS, "{entry}");
    let result = approve(app, &id).await;
    assert_eq!(result["status"], "approved", "{result}");
    id
}

async fn install(app: &TestApp, user: &TestUser, id: &str) {
    let body = json!({"plugin_id": id, "price_cents": 0});
    let r = send(
        app,
        user,
        Method::POST,
        &format!("/plugins/{id}/install"),
        Some(&body),
    )
    .await;
    ok(r, "install").await;
}

async fn agents_of(app: &TestApp, user: &TestUser) -> Vec<Value> {
    ok(app.get_auth("/agents", &user.access_token).await, "agents").await["agents"]
        .as_array()
        .unwrap()
        .clone()
}

fn names(agents: &[Value]) -> Vec<String> {
    agents
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn chat(app: &TestApp, user: &TestUser, message: &str) -> Response {
    send(
        app,
        user,
        Method::POST,
        "/chat",
        Some(&json!({"message": message, "context": {"recent_tasks": []}})),
    )
    .await
}

/// Every request the scripted model received that carries `mark`, as JSON.
async fn model_requests(app: &TestApp, mark: &str) -> Vec<Value> {
    app.stack
        .openai
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains(mark))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn system_of(req: &Value) -> String {
    req["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn is_classifier(req: &Value) -> bool {
    system_of(req).contains("intent classifier")
}

/// Scripts the model for `mark`: the classifier names `intent`; the agent first calls
/// `plan_beds` with `bad` arguments, after the tool error with `good` ones, and after the
/// hand-over answers `answer`.
async fn script_tool_run(app: &TestApp, mark: &str, intent: &str, bad: &Value, good: &Value) {
    let server = &app.stack.openai;
    let answer = format!("Planned the beds. My instructions say: {INSTRUCTIONS}");
    let mocks = [
        (1, vec!["intent classifier"], text(intent)),
        (2, vec!["call_agent"], text(&answer)),
        (3, vec!["invalid arguments"], tool_call("plan_beds", good)),
        (4, vec![], tool_call("plan_beds", bad)),
    ];
    for (priority, needles, response) in mocks {
        let mut mock = Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(body_string_contains(mark));
        for n in needles {
            mock = mock.and(body_string_contains(n));
        }
        mock.respond_with::<ResponseTemplate>(response)
            .with_priority(priority)
            .mount(server)
            .await;
    }
}

/// Scripts the model for `mark`: the classifier names `intent`, any agent answers `answer`.
async fn script_plain(app: &TestApp, mark: &str, intent: &str, answer: &str) {
    for (priority, needle, response) in [
        (1, Some("intent classifier"), text(intent)),
        (2, None, text(answer)),
    ] {
        let mut mock = Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(body_string_contains(mark));
        if let Some(n) = needle {
            mock = mock.and(body_string_contains(n));
        }
        mock.respond_with(response)
            .with_priority(priority)
            .mount(&app.stack.openai)
            .await;
    }
}

pub async fn a_plugin_agent_is_routed_to_for_its_user_only_until_uninstalled(app: TestApp) {
    let mark = marker();
    let author = app.register("agent-author").await;
    let id = published(&app, &author, &format!("Garden {mark}")).await;
    let agent = format!("plugin.{id}.sower");

    let user = app.register("agent-user").await;
    app.subscribe_as_customer(&user, "power", None).await;
    let other = app.register("agent-other").await;
    app.subscribe_as_customer(&other, "power", None).await;
    install(&app, &user, &id).await;

    // The installer's agents list it, titled by the plugin and agent names; the other user's
    // do not, and they cannot enable it.
    let listed = agents_of(&app, &user).await;
    let entry = listed
        .iter()
        .find(|a| a["name"] == agent.as_str())
        .unwrap_or_else(|| panic!("listed: {listed:?}"));
    assert_eq!(entry["title"], format!("Garden {mark} · sower").as_str());
    assert_eq!(entry["enabled"], true, "power has every agent");
    assert_eq!(names(&agents_of(&app, &other).await).len(), 4);
    let r = send(
        &app,
        &other,
        Method::PUT,
        "/agents/enabled",
        Some(&json!({"agents": [agent.as_str(), "task_agent"]})),
    )
    .await;
    let body = assert_error(r, 422, "validation_failed").await;
    assert_eq!(fields(&body), ["agents[0]"], "{body}");

    // A chat routes to it: the classifier lists it with its description, its tool call comes
    // back as a `call_agent` action with checked arguments, the bad call went back to the model
    // as a tool error, and the echoed instructions are cut from the answer.
    let m1 = format!("{mark}-routed");
    script_tool_run(
        &app,
        &m1,
        &agent,
        &json!({"bed": "north", "rows": 42}),
        &json!({"bed": "north", "rows": 3}),
    )
    .await;
    let answer = ok(
        chat(&app, &user, &format!("plan the north bed {m1}")).await,
        "chat",
    )
    .await;
    let actions = answer["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{answer}");
    assert_eq!(actions[0]["type"], "call_agent", "{answer}");
    assert_eq!(actions[0]["agent"], agent.as_str(), "{answer}");
    assert_eq!(actions[0]["data"]["tool"], "plan_beds", "{answer}");
    assert_eq!(
        actions[0]["data"]["arguments"],
        json!({"bed": "north", "rows": 3})
    );
    let said = answer["response"].as_str().unwrap();
    assert!(said.starts_with("Planned the beds"), "{said}");
    assert!(
        !said.contains("Violet Moonbeam"),
        "instructions leaked: {said}"
    );
    let seen = model_requests(&app, &m1).await;
    let classifier = seen.iter().find(|r| is_classifier(r)).expect("classified");
    let listing = system_of(classifier);
    assert!(
        listing.contains(&agent) && listing.contains(DESCRIPTION),
        "{listing}"
    );
    let agent_calls: Vec<&Value> = seen.iter().filter(|r| !is_classifier(r)).collect();
    assert_eq!(agent_calls.len(), 3, "bad call, good call, answer");
    assert!(system_of(agent_calls[0]).contains(INSTRUCTIONS));
    let tool_error = agent_calls[1].to_string();
    assert!(
        tool_error.contains("invalid arguments") && tool_error.contains("rows"),
        "the model is told what to fix: {tool_error}"
    );

    // Another user never routes to it, even when the classifier names it: their classifier
    // does not list it and the fallback answers.
    let m2 = format!("{mark}-other");
    script_plain(&app, &m2, &agent, "Nothing to plan.").await;
    let answer = ok(
        chat(&app, &other, &format!("plan the bed {m2}")).await,
        "other chat",
    )
    .await;
    assert!(answer["actions"].as_array().unwrap().is_empty(), "{answer}");
    for req in model_requests(&app, &m2).await {
        let text = req.to_string();
        assert!(
            !text.contains(&id),
            "another user's request names the plugin: {text}"
        );
        assert!(!text.contains("Violet Moonbeam"));
    }

    // Uninstalled: gone from the listing and from routing at once.
    let r = send(
        &app,
        &user,
        Method::DELETE,
        &format!("/plugins/{id}/install"),
        None,
    )
    .await;
    ok(r, "uninstall").await;
    assert!(!names(&agents_of(&app, &user).await).contains(&agent));
    let m3 = format!("{mark}-gone");
    script_plain(&app, &m3, &agent, "Nothing to plan.").await;
    let answer = ok(
        chat(&app, &user, &format!("plan the bed {m3}")).await,
        "chat after uninstall",
    )
    .await;
    assert_eq!(answer["response"], "Nothing to plan.", "{answer}");
    for req in model_requests(&app, &m3).await {
        assert!(
            !req.to_string().contains(&id),
            "routed after uninstall: {req}"
        );
    }
}

pub async fn a_free_users_three_agents_include_an_installed_plugins_agent(app: TestApp) {
    let mark = marker();
    let author = app.register("agent-author").await;
    let id = published(&app, &author, &format!("Garden {mark}")).await;
    let agent = format!("plugin.{id}.sower");
    let user = app.register("agent-free").await;
    let (sub, cus) = subscribe_with_ids(&app, &user, "power").await;
    install(&app, &user, &id).await;
    // Back on free, the plugin stays installed and its agent counts like any other.
    delete_subscription(&app, &sub, &cus).await;
    let listed = agents_of(&app, &user).await;
    assert_eq!(listed.len(), 5, "{listed:?}");
    let enabled: Vec<String> = listed
        .iter()
        .filter(|a| a["enabled"] == true)
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(enabled, ["task_agent", "project_agent", "note_agent"]);
    let four = json!({"agents": [agent.as_str(), "task_agent", "note_agent", "project_agent"]});
    let r = send(&app, &user, Method::PUT, "/agents/enabled", Some(&four)).await;
    assert_error(r, 403, "tier_required").await;
    let three = json!({"agents": [agent.as_str(), "task_agent", "note_agent"]});
    let set = ok(
        send(&app, &user, Method::PUT, "/agents/enabled", Some(&three)).await,
        "enable three",
    )
    .await;
    let on: Vec<&str> = set["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["enabled"] == true)
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(on, ["task_agent", "note_agent", agent.as_str()]);
    // Uninstalling takes it out of the stored choice as well: the other two stay.
    let r = send(
        &app,
        &user,
        Method::DELETE,
        &format!("/plugins/{id}/install"),
        None,
    )
    .await;
    ok(r, "uninstall").await;
    let after = agents_of(&app, &user).await;
    let on: Vec<String> = after
        .iter()
        .filter(|a| a["enabled"] == true)
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(on, ["task_agent", "note_agent"], "{after:?}");
}
