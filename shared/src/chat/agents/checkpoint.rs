//! `checkpoint_agent`: project checkpoints (milestones), and reminders about them
//! (`remind_about_checkpoint` proposes a `send_notification` at a time after the request).

use serde_json::{json, Value};

use super::args::{
    self, check_project, int_field, listing, lookup, not_shared, opt, req, Kind, Tool,
    MAX_NOTIFICATION_BODY_CHARS, MAX_NOTIFICATION_TITLE_CHARS, MAX_TITLE_CHARS,
};
use crate::api::ContextRecord;
use crate::chat::agent::{ChatAgent, ToolContext, ToolError, ToolOutcome};
use crate::ports::LlmTool;

const CHECKPOINT_ID: &str = "The checkpoint's id, from list_checkpoints.";
const PROJECT_ID: &str = "The project the checkpoint belongs to, from the context.";
const TITLE: &str = "Short title of the milestone.";
const DATE: &str = "The milestone's date, in milliseconds since the epoch.";
const AI_SUGGESTED: &str =
    "Whether the checkpoint is your suggestion rather than the user's request.";
const APPROVED: &str = "Whether the user approved the checkpoint.";

const TOOLS: &[Tool] = &[
    Tool {
        name: "list_checkpoints",
        doc: "Lists a project's checkpoints the app shared, earliest first.",
        params: &[req("project_id", Kind::Id, PROJECT_ID)],
    },
    Tool {
        name: "create_checkpoint",
        doc: "Prepares a new checkpoint in a project. A checkpoint you create is marked as your \
              suggestion awaiting approval unless you say otherwise.",
        params: &[
            req("project_id", Kind::Id, PROJECT_ID),
            req("title", Kind::Line(MAX_TITLE_CHARS), TITLE),
            req("date", Kind::Time, DATE),
            opt("is_ai_suggested", Kind::Flag, AI_SUGGESTED),
            opt("is_approved", Kind::Flag, APPROVED),
        ],
    },
    Tool {
        name: "update_checkpoint",
        doc: "Prepares changes to a checkpoint: send its id and only the fields that change \
              (is_approved true approves a suggestion).",
        params: &[
            req("checkpoint_id", Kind::Id, CHECKPOINT_ID),
            opt("project_id", Kind::IdOrKeep, PROJECT_ID),
            opt("title", Kind::Line(MAX_TITLE_CHARS), TITLE),
            opt("date", Kind::TimeOrKeep, DATE),
            opt("is_ai_suggested", Kind::Flag, AI_SUGGESTED),
            opt("is_approved", Kind::Flag, APPROVED),
        ],
    },
    Tool {
        name: "delete_checkpoint",
        doc: "Prepares the deletion of a checkpoint. Only when the user asked to delete it.",
        params: &[req("checkpoint_id", Kind::Id, CHECKPOINT_ID)],
    },
    Tool {
        name: "remind_about_checkpoint",
        doc: "Prepares a reminder notification about a milestone that the app shows at the \
              given time. Only when the user asked to be reminded.",
        params: &[
            req(
                "title",
                Kind::Line(MAX_NOTIFICATION_TITLE_CHARS),
                "The notification's title, usually the milestone's title.",
            ),
            opt(
                "body",
                Kind::Text(MAX_NOTIFICATION_BODY_CHARS),
                "A line or two of detail, such as the milestone's date and project.",
            ),
            req(
                "at",
                Kind::Time,
                "When to show it, in milliseconds since the epoch; it must be in the future.",
            ),
        ],
    },
];

const PROMPT: &[&str] = &[
    "You look after project checkpoints, the dated milestones that mark progress in a project.",
    "Every checkpoint belongs to a project, so find the project's id before creating one.",
    "Checkpoints you propose stay suggestions until the user approves them; approving one is \
     an update with is_approved set to true.",
    "Turn relative dates such as next Friday into milliseconds using the user's local time.",
    "When the user asks to be reminded of a milestone, call remind_about_checkpoint with a \
     time after now, for example the morning of the milestone's date.",
];

/// Manages project checkpoints (plan Step 6).
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckpointAgent;

impl ChatAgent for CheckpointAgent {
    fn name(&self) -> &'static str {
        "checkpoint_agent"
    }

    fn description(&self) -> &'static str {
        "Manages project checkpoints (milestones): list, create, update, delete, reminders"
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
        let checkpoints = ctx.context.checkpoints.as_deref();
        let projects = ctx.context.projects.as_deref();
        match args.tool() {
            "list_checkpoints" => {
                let Some(checkpoints) = checkpoints else {
                    return Ok(not_shared("checkpoints"));
                };
                let project = args.id("project_id")?;
                let mut found: Vec<&ContextRecord> = checkpoints
                    .iter()
                    .filter(|c| int_field(c, "project_id") == Some(project))
                    .collect();
                found.sort_by_key(|c| {
                    let date = int_field(c, "date");
                    (date.is_none(), date.unwrap_or_default())
                });
                let items = found.into_iter().cloned().map(Value::Object).collect();
                let mut out = listing("checkpoints", items);
                out.insert("project_id".to_owned(), Value::from(project));
                Ok(ToolOutcome::read(Value::Object(out)))
            }
            "create_checkpoint" => {
                check_project(projects, args.int("project_id"))?;
                Ok(args.create(
                    "checkpoints",
                    &[
                        ("is_ai_suggested", json!(true)),
                        ("is_approved", json!(false)),
                    ],
                ))
            }
            "update_checkpoint" => {
                find(checkpoints, args.id("checkpoint_id")?)?;
                check_project(projects, args.int("project_id"))?;
                args.update("checkpoints", "checkpoint_id")
            }
            "delete_checkpoint" => {
                let id = args.id("checkpoint_id")?;
                find(checkpoints, id)?;
                Ok(args::delete("checkpoints", id))
            }
            "remind_about_checkpoint" => args::notification(&args, ctx.now_ms),
            other => Err(ToolError::UnknownTool(other.to_owned())),
        }
    }
}

fn find(checkpoints: Option<&[ContextRecord]>, id: i64) -> Result<&ContextRecord, ToolError> {
    lookup(checkpoints, "checkpoint", "checkpoints", id)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::args::testkit::{
        call, invalid, only_action, rec, schemas_match_validation, NOW,
    };
    use super::*;
    use crate::api::{ChatContext, PlanAction};

    const DAY: i64 = 86_400_000;

    fn context() -> ChatContext {
        ChatContext {
            projects: Some(vec![
                rec(&json!({"id": 1, "name": "Website relaunch"})),
                rec(&json!({"id": 2, "name": "Hiring"})),
            ]),
            checkpoints: Some(vec![
                rec(&json!({"id": 1, "project_id": 1, "title": "Launch", "date": 30 * DAY})),
                rec(
                    &json!({"id": 2.0, "project_id": "1", "title": "Design sign-off",
                            "date": 10 * DAY, "is_ai_suggested": true, "is_approved": false}),
                ),
                rec(&json!({"id": 3, "project_id": 2, "title": "Offers out", "date": 20 * DAY})),
                rec(&json!({"id": 4, "project_id": 1, "title": "Someday"})),
            ]),
            ..ChatContext::default()
        }
    }

    fn run(tool: &str, args: &str) -> Result<ToolOutcome, ToolError> {
        call(&CheckpointAgent, &context(), tool, args)
    }

    #[test]
    fn it_is_named_and_described_as_the_plan_says_plus_reminders() {
        assert_eq!(CheckpointAgent.name(), "checkpoint_agent");
        assert_eq!(
            CheckpointAgent.description(),
            "Manages project checkpoints (milestones): list, create, update, delete, reminders"
        );
    }

    #[test]
    fn it_offers_the_plans_four_tools_and_a_reminder() {
        let names: Vec<String> = CheckpointAgent
            .tools()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(
            names,
            [
                "list_checkpoints",
                "create_checkpoint",
                "update_checkpoint",
                "delete_checkpoint",
                "remind_about_checkpoint"
            ]
        );
    }

    #[test]
    fn every_schema_lists_exactly_the_accepted_properties() {
        schemas_match_validation(&CheckpointAgent, &context());
        let tools = CheckpointAgent.tools();
        assert_eq!(
            tools[1].parameters["required"],
            json!(["project_id", "title", "date"])
        );
    }

    #[test]
    fn list_checkpoints_returns_a_projects_checkpoints_by_date() {
        let out = run("list_checkpoints", r#"{"project_id": 1}"#).unwrap();
        assert!(out.actions.is_empty());
        let titles: Vec<&str> = out.result["checkpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles, ["Design sign-off", "Launch", "Someday"]);
        assert_eq!(out.result["count"], 3);
        assert_eq!(out.result["project_id"], 1);
        let out = run("list_checkpoints", r#"{"project_id": 9}"#).unwrap();
        assert_eq!(out.result["count"], 0);
    }

    #[test]
    fn list_checkpoints_says_when_the_app_shared_none() {
        let out = call(
            &CheckpointAgent,
            &ChatContext::default(),
            "list_checkpoints",
            r#"{"project_id": 1}"#,
        )
        .unwrap();
        assert_eq!(out.result["shared"], false);
        assert!(out.result["note"].as_str().unwrap().contains("checkpoints"));
        assert!(
            invalid(run("list_checkpoints", "{}")).contains("missing required field project_id")
        );
    }

    #[test]
    fn create_checkpoint_prepares_a_suggested_unapproved_row() {
        let out = run(
            "create_checkpoint",
            &json!({"project_id": 2, "title": " Interviews done ", "date": 25.0 * 86_400_000.0})
                .to_string(),
        )
        .unwrap();
        assert_eq!(
            out.result,
            json!({"prepared": "create_record", "table": "checkpoints"})
        );
        assert_eq!(
            only_action(&out),
            &PlanAction::create(
                "checkpoints",
                rec(&json!({
                    "project_id": 2, "title": "Interviews done", "date": 25 * DAY,
                    "is_ai_suggested": true, "is_approved": false,
                }))
            )
        );
        let out = run(
            "create_checkpoint",
            r#"{"project_id": 2, "title": "Kickoff", "date": 0,
                "is_ai_suggested": false, "is_approved": true}"#,
        )
        .unwrap();
        let data = only_action(&out).data.as_ref().unwrap();
        assert_eq!(data["is_ai_suggested"], false);
        assert_eq!(data["is_approved"], true);
    }

    #[test]
    fn create_checkpoint_validates_its_arguments() {
        for (args, want) in [
            ("not json", "not valid JSON"),
            (
                r#"{"title": "A", "date": 1}"#,
                "missing required field project_id",
            ),
            (
                r#"{"project_id": 1, "date": 1}"#,
                "missing required field title",
            ),
            (
                r#"{"project_id": 1, "title": "A"}"#,
                "missing required field date",
            ),
            (
                r#"{"project_id": 1, "title": "A", "date": -1}"#,
                "not negative",
            ),
            (
                r#"{"project_id": 1, "title": "A", "date": "tomorrow"}"#,
                "whole number",
            ),
            (
                r#"{"project_id": 1, "title": "A", "date": 1, "due": 1}"#,
                "unknown field `due`",
            ),
        ] {
            let m = invalid(run("create_checkpoint", args));
            assert!(m.contains(want), "{args}: {m}");
        }
        assert!(matches!(
            run("create_checkpoint", r#"{"project_id": 9, "title": "A", "date": 1}"#),
            Err(ToolError::NotFound(m)) if m.contains("project 9")
        ));
    }

    #[test]
    fn update_checkpoint_sends_only_the_changed_fields() {
        let out = run(
            "update_checkpoint",
            r#"{"checkpoint_id": 2, "is_approved": true, "project_id": -1, "date": -1}"#,
        )
        .unwrap();
        assert_eq!(
            only_action(&out),
            &PlanAction::update("checkpoints", rec(&json!({"id": 2, "is_approved": true})))
        );
        let out = run(
            "update_checkpoint",
            r#"{"checkpoint_id": 1, "project_id": 2, "date": 5, "title": "Go live"}"#,
        )
        .unwrap();
        assert_eq!(
            only_action(&out),
            &PlanAction::update(
                "checkpoints",
                rec(&json!({"id": 1, "project_id": 2, "date": 5, "title": "Go live"}))
            )
        );
        let m = invalid(run(
            "update_checkpoint",
            r#"{"checkpoint_id": 1, "date": -1}"#,
        ));
        assert!(m.contains("nothing to change"), "{m}");
        assert!(matches!(
            run("update_checkpoint", r#"{"checkpoint_id": 8, "title": "X"}"#),
            Err(ToolError::NotFound(_))
        ));
    }

    #[test]
    fn changing_a_checkpoint_the_app_did_not_share_is_not_found() {
        let context = ChatContext::default();
        for (tool, args) in [
            ("update_checkpoint", r#"{"checkpoint_id": 1, "title": "X"}"#),
            ("delete_checkpoint", r#"{"checkpoint_id": 1}"#),
        ] {
            let e = call(&CheckpointAgent, &context, tool, args).unwrap_err();
            assert!(matches!(e, ToolError::NotFound(m) if m.contains("did not share")));
        }
    }

    #[test]
    fn delete_checkpoint_prepares_a_delete() {
        let out = run("delete_checkpoint", r#"{"checkpoint_id": 3}"#).unwrap();
        assert_eq!(only_action(&out), &PlanAction::delete("checkpoints", 3));
        assert!(matches!(
            run("delete_checkpoint", r#"{"checkpoint_id": 30}"#),
            Err(ToolError::NotFound(_))
        ));
        assert!(invalid(run("delete_checkpoint", r#"{"checkpoint_id": 0}"#))
            .contains("positive whole number"));
    }

    #[test]
    fn remind_about_checkpoint_proposes_a_notification_in_the_future() {
        let at = NOW + 2 * DAY;
        let out = run(
            "remind_about_checkpoint",
            &json!({"title": "Launch", "body": "Website relaunch, in two days", "at": at})
                .to_string(),
        )
        .unwrap();
        assert_eq!(
            only_action(&out),
            &PlanAction::notification("Launch", "Website relaunch, in two days", at)
        );
        assert!(only_action(&out).table.is_none());
        let m = invalid(run(
            "remind_about_checkpoint",
            &json!({"title": "Launch", "at": 10 * DAY}).to_string(),
        ));
        assert!(m.contains("must be in the future"), "{m}");
        assert!(
            m.contains(&NOW.to_string()),
            "the model is told what now is: {m}"
        );
        let m = invalid(run(
            "remind_about_checkpoint",
            &json!({"title": "Launch"}).to_string(),
        ));
        assert!(m.contains("missing required field at"), "{m}");
    }

    #[test]
    fn the_prompt_says_when_to_set_a_reminder() {
        assert!(CheckpointAgent
            .prompt()
            .iter()
            .any(|f| f.contains("reminded") && f.contains("remind_about_checkpoint")));
    }

    #[test]
    fn an_unknown_tool_is_refused() {
        assert_eq!(
            run("list_tasks", "{}").unwrap_err(),
            ToolError::UnknownTool("list_tasks".to_owned())
        );
    }
}
