//! `project_agent`: projects, archiving included.

use serde_json::{json, Value};

use super::args::MAX_TITLE_CHARS;
use super::args::{self, int_field, listing, lookup, not_shared, opt, req, str_field, Kind, Tool};
use crate::api::ContextRecord;
use crate::chat::agent::{ChatAgent, ToolContext, ToolError, ToolOutcome};
use crate::ports::LlmTool;

const STATUSES: &[&str] = &["active", "archived"];

const PROJECT_ID: &str = "The project's id, from the context.";
const NAME: &str = "The project's name.";
const CLIENT_ID: &str = "The client the project is for (the app's client id).";

const TOOLS: &[Tool] = &[
    Tool {
        name: "list_projects",
        doc: "Lists the projects the app shared, optionally only one client's; archived \
              projects only when include_archived is true.",
        params: &[
            opt("client_id", Kind::Id, "Only this client's projects."),
            opt(
                "include_archived",
                Kind::Flag,
                "Whether to include archived projects (default false).",
            ),
        ],
    },
    Tool {
        name: "list_all_projects",
        doc: "Lists every project the app shared, archived ones included.",
        params: &[],
    },
    Tool {
        name: "get_project",
        doc: "Returns one project the app shared.",
        params: &[req("project_id", Kind::Id, PROJECT_ID)],
    },
    Tool {
        name: "create_project",
        doc: "Prepares a new active project.",
        params: &[
            req("name", Kind::Line(MAX_TITLE_CHARS), NAME),
            opt("client_id", Kind::Id, CLIENT_ID),
        ],
    },
    Tool {
        name: "update_project",
        doc: "Prepares changes to a project: send its id and only the fields that change. \
              Archive a project with status archived; restore it with status active.",
        params: &[
            req("project_id", Kind::Id, PROJECT_ID),
            opt("name", Kind::Line(MAX_TITLE_CHARS), NAME),
            opt("client_id", Kind::IdOrKeep, CLIENT_ID),
            opt(
                "status",
                Kind::Choice(STATUSES),
                "active, or archived to hide the project while keeping its data.",
            ),
        ],
    },
    Tool {
        name: "delete_project",
        doc: "Prepares the permanent deletion of a project. Prefer update_project with status \
              archived; delete only when the user explicitly asked to delete it for good.",
        params: &[req("project_id", Kind::Id, PROJECT_ID)],
    },
];

const PROMPT: &[&str] = &[
    "You look after the user's projects: listing, creating, renaming, archiving and deleting \
     them.",
    "Prefer archiving over deleting: set the status to archived unless the user explicitly \
     asks to delete the project for good.",
    "Archived projects stay out of list_projects unless include_archived is true, so check \
     there before saying a project does not exist.",
];

/// Manages projects (plan Step 6).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProjectAgent;

impl ChatAgent for ProjectAgent {
    fn name(&self) -> &'static str {
        "project_agent"
    }

    fn description(&self) -> &'static str {
        "Manages projects: list, get, create, update, archive, delete"
    }

    fn prompt(&self) -> &'static [&'static str] {
        PROMPT
    }

    fn tools(&self) -> Vec<LlmTool> {
        args::llm_tools(TOOLS)
    }

    fn call_tool(
        &self,
        name: &str,
        arguments: &str,
        ctx: &ToolContext<'_>,
    ) -> Result<ToolOutcome, ToolError> {
        let args = args::parse(TOOLS, name, arguments)?;
        let projects = ctx.context.projects.as_deref();
        match args.tool() {
            "list_projects" | "list_all_projects" => {
                let Some(projects) = projects else {
                    return Ok(not_shared("projects"));
                };
                let client = args.int("client_id");
                let archived = args.tool() == "list_all_projects"
                    || args.flag("include_archived") == Some(true);
                let items = projects
                    .iter()
                    .filter(|p| client.is_none() || int_field(p, "client_id") == client)
                    .filter(|p| archived || str_field(p, "status") != Some("archived"))
                    .cloned()
                    .map(Value::Object)
                    .collect();
                Ok(ToolOutcome::read(Value::Object(listing("projects", items))))
            }
            "get_project" => {
                let project = find(projects, args.id("project_id")?)?;
                Ok(ToolOutcome::read(json!({ "project": project })))
            }
            "create_project" => Ok(args.create("projects", &[("status", json!("active"))])),
            "update_project" => {
                find(projects, args.id("project_id")?)?;
                args.update("projects", "project_id")
            }
            "delete_project" => {
                let id = args.id("project_id")?;
                find(projects, id)?;
                Ok(args::delete("projects", id))
            }
            other => Err(ToolError::UnknownTool(other.to_owned())),
        }
    }
}

fn find(projects: Option<&[ContextRecord]>, id: i64) -> Result<&ContextRecord, ToolError> {
    lookup(projects, "project", "projects", id)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::args::testkit::{call, invalid, only_action, rec, schemas_match_validation};
    use super::*;
    use crate::api::{ChatContext, PlanAction};

    fn context() -> ChatContext {
        ChatContext {
            projects: Some(vec![
                rec(
                    &json!({"id": 1, "name": "Website relaunch", "status": "active",
                            "client_id": 1}),
                ),
                rec(
                    &json!({"id": 2.0, "name": "Old brochure", "status": "archived",
                            "client_id": "1"}),
                ),
                rec(&json!({"id": "3", "name": "Hiring", "client_id": 2})),
            ]),
            ..ChatContext::default()
        }
    }

    fn run(tool: &str, args: &str) -> Result<ToolOutcome, ToolError> {
        call(&ProjectAgent, &context(), tool, args)
    }

    fn names(out: &ToolOutcome) -> Vec<&str> {
        out.result["projects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn it_is_named_and_described_as_the_plan_says() {
        assert_eq!(ProjectAgent.name(), "project_agent");
        assert_eq!(
            ProjectAgent.description(),
            "Manages projects: list, get, create, update, archive, delete"
        );
    }

    #[test]
    fn it_offers_exactly_six_tools() {
        let names: Vec<String> = ProjectAgent.tools().into_iter().map(|t| t.name).collect();
        assert_eq!(
            names,
            [
                "list_projects",
                "list_all_projects",
                "get_project",
                "create_project",
                "update_project",
                "delete_project"
            ]
        );
    }

    #[test]
    fn every_schema_lists_exactly_the_accepted_properties() {
        schemas_match_validation(&ProjectAgent, &context());
        let tools = ProjectAgent.tools();
        assert_eq!(
            tools[4].parameters["properties"]["status"]["enum"],
            json!(["active", "archived"])
        );
    }

    #[test]
    fn deleting_is_described_as_the_last_resort() {
        let tools = ProjectAgent.tools();
        assert!(tools[5]
            .description
            .contains("Prefer update_project with status archived"));
    }

    #[test]
    fn list_projects_hides_archived_ones_unless_asked() {
        let out = run("list_projects", "{}").unwrap();
        assert!(out.actions.is_empty());
        assert_eq!(names(&out), ["Website relaunch", "Hiring"]);
        assert_eq!(out.result["count"], 2);
        let out = run("list_projects", r#"{"include_archived": true}"#).unwrap();
        assert_eq!(out.result["count"], 3);
        let out = run(
            "list_projects",
            r#"{"client_id": 1, "include_archived": true}"#,
        )
        .unwrap();
        assert_eq!(names(&out), ["Website relaunch", "Old brochure"]);
        let out = run("list_projects", r#"{"client_id": 1.0}"#).unwrap();
        assert_eq!(names(&out), ["Website relaunch"]);
        assert!(
            invalid(run("list_projects", r#"{"include_archived": "yes"}"#))
                .contains("true or false")
        );
    }

    #[test]
    fn list_all_projects_includes_archived_ones() {
        let out = run("list_all_projects", "{}").unwrap();
        assert_eq!(names(&out), ["Website relaunch", "Old brochure", "Hiring"]);
    }

    #[test]
    fn listings_say_when_the_app_shared_no_projects() {
        for tool in ["list_projects", "list_all_projects"] {
            let out = call(&ProjectAgent, &ChatContext::default(), tool, "{}").unwrap();
            assert_eq!(out.result["shared"], false, "{tool}");
        }
    }

    #[test]
    fn get_project_returns_the_record_or_not_found() {
        let out = run("get_project", r#"{"project_id": 3}"#).unwrap();
        assert_eq!(out.result["project"]["name"], "Hiring");
        assert!(matches!(
            run("get_project", r#"{"project_id": 4}"#),
            Err(ToolError::NotFound(m)) if m.contains("project 4")
        ));
        assert!(matches!(
            call(&ProjectAgent, &ChatContext::default(), "get_project", r#"{"project_id": 1}"#),
            Err(ToolError::NotFound(m)) if m.contains("did not share")
        ));
        assert!(
            invalid(run("get_project", r#"{"project_id": "3"}"#)).contains("positive whole number")
        );
    }

    #[test]
    fn create_project_prepares_an_active_project() {
        let out = run(
            "create_project",
            r#"{"name": "Annual report", "client_id": 2}"#,
        )
        .unwrap();
        assert_eq!(
            out.result,
            json!({"prepared": "create_record", "table": "projects"})
        );
        assert_eq!(
            only_action(&out),
            &PlanAction::create(
                "projects",
                rec(&json!({"name": "Annual report", "client_id": 2, "status": "active"}))
            )
        );
        for (args, want) in [
            ("{}", "missing required field name"),
            (r#"{"name": ""}"#, "must not be blank"),
            (
                r#"{"name": "A", "status": "archived"}"#,
                "unknown field `status`",
            ),
            (r#"{"name": "A", "client_id": -1}"#, "positive whole number"),
        ] {
            let m = invalid(run("create_project", args));
            assert!(m.contains(want), "{args}: {m}");
        }
    }

    #[test]
    fn archiving_is_an_update_of_the_status() {
        let out = run(
            "update_project",
            r#"{"project_id": 1, "status": "archived", "client_id": -1}"#,
        )
        .unwrap();
        assert_eq!(
            only_action(&out),
            &PlanAction::update("projects", rec(&json!({"id": 1, "status": "archived"})))
        );
        let out = run(
            "update_project",
            r#"{"project_id": 2, "name": "Brochure 2025", "client_id": 7, "status": "active"}"#,
        )
        .unwrap();
        assert_eq!(
            only_action(&out),
            &PlanAction::update(
                "projects",
                rec(&json!({"id": 2, "name": "Brochure 2025", "client_id": 7, "status": "active"}))
            )
        );
    }

    #[test]
    fn update_project_refuses_bad_or_empty_changes() {
        let m = invalid(run(
            "update_project",
            r#"{"project_id": 1, "status": "paused"}"#,
        ));
        assert!(m.contains("active, archived"), "{m}");
        let m = invalid(run(
            "update_project",
            r#"{"project_id": 1, "client_id": -1}"#,
        ));
        assert!(m.contains("nothing to change: give at least one of name, client_id, status"));
        assert!(matches!(
            run("update_project", r#"{"project_id": 9, "name": "X"}"#),
            Err(ToolError::NotFound(_))
        ));
    }

    #[test]
    fn delete_project_prepares_a_delete_of_a_shared_project() {
        let out = run("delete_project", r#"{"project_id": 2}"#).unwrap();
        assert_eq!(only_action(&out), &PlanAction::delete("projects", 2));
        assert!(matches!(
            run("delete_project", r#"{"project_id": 20}"#),
            Err(ToolError::NotFound(_))
        ));
        assert!(
            invalid(run("delete_project", r#"{"project_id": 2, "force": true}"#))
                .contains("unknown field `force`")
        );
    }

    #[test]
    fn an_unknown_tool_is_refused() {
        assert_eq!(
            run("archive_project", "{}").unwrap_err(),
            ToolError::UnknownTool("archive_project".to_owned())
        );
    }
}
