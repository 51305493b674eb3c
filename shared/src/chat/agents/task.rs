//! `task_agent`: tasks and their comments, and reminders about them (`remind_about_task`
//! proposes a `send_notification` at a time after the request).

use serde_json::{json, Value};

use super::args::{
    self, check_project, int_field, listing, lookup, opt, req, str_field, Args, Kind, Tool,
    MAX_COMMENT_CHARS, MAX_CONTENT_CHARS, MAX_NOTIFICATION_BODY_CHARS,
    MAX_NOTIFICATION_TITLE_CHARS, MAX_SHORT_CHARS, MAX_TITLE_CHARS,
};
use crate::api::ContextRecord;
use crate::chat::agent::{utc_offset_minutes, ChatAgent, ToolContext, ToolError, ToolOutcome};
use crate::ports::LlmTool;

const STATUSES: &[&str] = &["todo", "in_progress", "done"];
const PRIORITIES: &[&str] = &["high", "medium", "low"];
const ORDERS: &[&str] = &["due_date", "priority", "created_at", "title"];
const DAY_MS: i64 = 86_400_000;

const TASK_ID: &str = "The task's id, from the context.";
const TITLE: &str = "Short title of the task.";
const DESCRIPTION: &str = "Longer description of the task.";
const STATUS: &str = "Progress: todo, in_progress or done.";
const PRIORITY: &str = "Priority: high, medium or low.";
const ASSIGNEES: &str =
    "People assigned, as a JSON-encoded array of names in a string, e.g. \"[\\\"Ana\\\"]\".";
const DUE_DATE: &str = "When the task is due, in milliseconds since the epoch.";
const PROJECT_ID: &str = "The project the task belongs to, from the context.";
const AI_SUGGESTED: &str = "Whether the task is your suggestion rather than the user's request.";
const APPROVED: &str = "Whether the user approved the task.";

const TOOLS: &[Tool] = &[
    Tool {
        name: "list_tasks",
        doc: "Lists the tasks the app shared, optionally filtered by project, status or text, \
              and ordered. Returns at most 50 tasks and the total count.",
        params: &[
            opt("project_id", Kind::Id, "Only tasks of this project."),
            opt(
                "status",
                Kind::Choice(STATUSES),
                "Only tasks with this status.",
            ),
            opt(
                "search",
                Kind::Text(MAX_SHORT_CHARS),
                "Only tasks whose title or description contains this text (any case).",
            ),
            opt(
                "order_by",
                Kind::Choice(ORDERS),
                "Order: due_date (soonest first), priority (high first), created_at (newest \
                 first) or title (A to Z). Without it, the app's order.",
            ),
        ],
    },
    Tool {
        name: "create_task",
        doc: "Prepares a new task. Status defaults to todo, priority to medium; a task you \
              create is marked as your suggestion awaiting approval unless you say otherwise.",
        params: &[
            req("title", Kind::Line(MAX_TITLE_CHARS), TITLE),
            opt("description", Kind::Text(MAX_CONTENT_CHARS), DESCRIPTION),
            opt("status", Kind::Choice(STATUSES), STATUS),
            opt("priority", Kind::Choice(PRIORITIES), PRIORITY),
            opt("assignees", Kind::Names, ASSIGNEES),
            opt("due_date", Kind::Time, DUE_DATE),
            opt("project_id", Kind::Id, PROJECT_ID),
            opt("is_ai_suggested", Kind::Flag, AI_SUGGESTED),
            opt("is_approved", Kind::Flag, APPROVED),
        ],
    },
    Tool {
        name: "update_task",
        doc: "Prepares changes to a task: send its id and only the fields that change.",
        params: &[
            req("task_id", Kind::Id, TASK_ID),
            opt("title", Kind::Line(MAX_TITLE_CHARS), TITLE),
            opt("description", Kind::Text(MAX_CONTENT_CHARS), DESCRIPTION),
            opt("status", Kind::Choice(STATUSES), STATUS),
            opt("priority", Kind::Choice(PRIORITIES), PRIORITY),
            opt("assignees", Kind::Names, ASSIGNEES),
            opt("due_date", Kind::TimeOrKeep, DUE_DATE),
            opt("project_id", Kind::IdOrKeep, PROJECT_ID),
            opt("is_ai_suggested", Kind::Flag, AI_SUGGESTED),
            opt("is_approved", Kind::Flag, APPROVED),
        ],
    },
    Tool {
        name: "delete_task",
        doc: "Prepares the deletion of a task. Only when the user asked to delete it.",
        params: &[req("task_id", Kind::Id, TASK_ID)],
    },
    Tool {
        name: "list_tasks_due_today",
        doc: "Lists the tasks due today in the user's time zone, soonest first.",
        params: &[],
    },
    Tool {
        name: "list_task_comments",
        doc: "Lists the comments on a task, when the app shared them.",
        params: &[req("task_id", Kind::Id, TASK_ID)],
    },
    Tool {
        name: "add_task_comment",
        doc: "Prepares a new comment on a task.",
        params: &[
            req("task_id", Kind::Id, TASK_ID),
            req(
                "author",
                Kind::Line(MAX_SHORT_CHARS),
                "Who writes the comment (the user's name unless told otherwise).",
            ),
            req(
                "content",
                Kind::Line(MAX_COMMENT_CHARS),
                "The comment's text.",
            ),
        ],
    },
    Tool {
        name: "delete_task_comment",
        doc: "Prepares the deletion of a comment. Only when the user asked to delete it.",
        params: &[req(
            "comment_id",
            Kind::Id,
            "The comment's id, from list_task_comments.",
        )],
    },
    Tool {
        name: "remind_about_task",
        doc: "Prepares a reminder notification that the app shows at the given time. Only when \
              the user asked to be reminded.",
        params: &[
            req(
                "title",
                Kind::Line(MAX_NOTIFICATION_TITLE_CHARS),
                "The notification's title: what to do, usually the task's title.",
            ),
            opt(
                "body",
                Kind::Text(MAX_NOTIFICATION_BODY_CHARS),
                "A line or two of detail shown under the title.",
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
    "You look after the user's tasks and the comments on them, using the task tools.",
    "A task's status is todo, in_progress or done, and its priority is high, medium or low.",
    "When changing a task with update_task, send only the fields that change; -1 for due_date \
     or project_id keeps them as they are.",
    "For questions about what is due today, call list_tasks_due_today, which already accounts \
     for the user's time zone.",
    "Delete a task only when the user clearly asked for it; otherwise offer to mark it done.",
    "When the user asks to be reminded of something, call remind_about_task with a time after \
     now, converted from the user's local time.",
];

/// Manages tasks and their comments (plan Step 6).
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskAgent;

impl ChatAgent for TaskAgent {
    fn name(&self) -> &'static str {
        "task_agent"
    }

    fn description(&self) -> &'static str {
        "Manages tasks and comments: list, create, update, delete, due-today, comments, \
         reminders"
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
        let tasks = ctx.context.recent_tasks.as_slice();
        let projects = ctx.context.projects.as_deref();
        match args.tool() {
            "list_tasks" => Ok(list_tasks(tasks, &args)),
            "create_task" => {
                check_project(projects, args.int("project_id"))?;
                Ok(args.create(
                    "tasks",
                    &[
                        ("status", json!("todo")),
                        ("priority", json!("medium")),
                        ("is_ai_suggested", json!(true)),
                        ("is_approved", json!(false)),
                    ],
                ))
            }
            "update_task" => {
                find_task(tasks, args.id("task_id")?)?;
                check_project(projects, args.int("project_id"))?;
                args.update("tasks", "task_id")
            }
            "delete_task" => {
                let id = args.id("task_id")?;
                find_task(tasks, id)?;
                Ok(args::delete("tasks", id))
            }
            "list_tasks_due_today" => Ok(due_today(tasks, ctx)),
            "list_task_comments" => Ok(list_comments(find_task(tasks, args.id("task_id")?)?)),
            "add_task_comment" => {
                find_task(tasks, args.id("task_id")?)?;
                Ok(args.create("comments", &[]))
            }
            "delete_task_comment" => {
                let id = args.id("comment_id")?;
                find_comment(tasks, id)?;
                Ok(args::delete("comments", id))
            }
            "remind_about_task" => args::notification(&args, ctx.now_ms),
            other => Err(ToolError::UnknownTool(other.to_owned())),
        }
    }
}

fn find_task(tasks: &[ContextRecord], id: i64) -> Result<&ContextRecord, ToolError> {
    lookup(Some(tasks), "task", "tasks", id)
}

/// A task for a listing: without its comments (`list_task_comments` shows them).
fn summary(task: &ContextRecord) -> Value {
    let mut task = task.clone();
    task.remove("comments");
    Value::Object(task)
}

fn list_tasks(tasks: &[ContextRecord], args: &Args) -> ToolOutcome {
    let project = args.int("project_id");
    let status = args.str("status");
    let search = args
        .str("search")
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty());
    let mut found: Vec<&ContextRecord> = tasks
        .iter()
        .filter(|t| project.is_none() || int_field(t, "project_id") == project)
        .filter(|t| status.is_none() || str_field(t, "status") == status)
        .filter(|t| {
            search.as_deref().is_none_or(|s| {
                ["title", "description"]
                    .iter()
                    .any(|f| str_field(t, f).is_some_and(|v| v.to_lowercase().contains(s)))
            })
        })
        .collect();
    match args.str("order_by") {
        Some("due_date") => found.sort_by_key(|t| missing_last(int_field(t, "due_date"))),
        Some("priority") => found.sort_by_key(|t| {
            let p = str_field(t, "priority");
            PRIORITIES
                .iter()
                .position(|w| Some(*w) == p)
                .unwrap_or(PRIORITIES.len())
        }),
        Some("created_at") => {
            let newest_first =
                |t: &&ContextRecord| int_field(t, "created_at").map(i64::saturating_neg);
            found.sort_by_key(|t| missing_last(newest_first(t)));
        }
        Some("title") => found.sort_by_cached_key(|t| {
            str_field(t, "title").map_or((true, String::new()), |s| (false, s.to_lowercase()))
        }),
        _ => {}
    }
    ToolOutcome::read(Value::Object(listing(
        "tasks",
        found.into_iter().map(summary).collect(),
    )))
}

/// A sort key that puts records without the value after all others.
fn missing_last(v: Option<i64>) -> (bool, i64) {
    (v.is_none(), v.unwrap_or_default())
}

fn due_today(tasks: &[ContextRecord], ctx: &ToolContext<'_>) -> ToolOutcome {
    let offset_ms = utc_offset_minutes(ctx.context) * 60_000;
    let start = (ctx.now_ms + offset_ms).div_euclid(DAY_MS) * DAY_MS - offset_ms;
    let end = start + DAY_MS;
    let mut due: Vec<(i64, &ContextRecord)> = tasks
        .iter()
        .filter_map(|t| int_field(t, "due_date").map(|d| (d, t)))
        .filter(|(d, _)| (start..end).contains(d))
        .collect();
    due.sort_by_key(|(d, _)| *d);
    let mut out = listing("tasks", due.into_iter().map(|(_, t)| summary(t)).collect());
    out.insert("day_start".to_owned(), Value::from(start));
    out.insert("day_end".to_owned(), Value::from(end));
    ToolOutcome::read(Value::Object(out))
}

fn list_comments(task: &ContextRecord) -> ToolOutcome {
    let task_id = task.get("id").cloned().unwrap_or(Value::Null);
    let Some(comments) = task.get("comments").and_then(Value::as_array) else {
        return ToolOutcome::read(json!({
            "task_id": task_id,
            "shared": false,
            "note": "the app did not share this task's comments, so none can be listed; say so \
                     rather than guessing",
        }));
    };
    let mut out = listing("comments", comments.clone());
    out.insert("task_id".to_owned(), task_id);
    ToolOutcome::read(Value::Object(out))
}

fn find_comment(tasks: &[ContextRecord], id: i64) -> Result<(), ToolError> {
    let mut shared = false;
    for task in tasks {
        if let Some(comments) = task.get("comments").and_then(Value::as_array) {
            shared = true;
            if comments
                .iter()
                .filter_map(Value::as_object)
                .any(|c| int_field(c, "id") == Some(id))
            {
                return Ok(());
            }
        }
    }
    Err(ToolError::NotFound(if shared {
        format!(
            "comment {id} is not among the comments the app shared; list_task_comments shows \
             their ids"
        )
    } else {
        format!(
            "the app did not share any task comments with this request, so comment {id} \
             cannot be changed; tell the user"
        )
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::args::testkit::{
        call, invalid, only_action, rec, schemas_match_validation, NOW,
    };
    use super::*;
    use crate::api::{ChatContext, PlanAction};

    /// NOW is 2026-11-27 12:00 UTC.
    fn context() -> ChatContext {
        ChatContext {
            user_profile: rec(&json!({"utc_offset_minutes": 60})),
            recent_tasks: vec![
                rec(&json!({
                    "id": 1, "title": "Write quarterly report", "description": "Numbers for Q3",
                    "status": "in_progress", "priority": "high", "project_id": 1,
                    "due_date": NOW + 3_600_000, "created_at": 100,
                    "comments": [
                        {"id": 1, "task_id": 1, "author": "Ana", "content": "Draft is up"},
                    ],
                })),
                rec(&json!({
                    "id": 2.0, "title": "book flights", "status": "todo", "priority": "low",
                    "project_id": "2", "due_date": NOW + 2 * 86_400_000, "created_at": 300,
                })),
                rec(&json!({
                    "id": "3", "title": "Call the bank", "status": "done", "priority": "medium",
                    "created_at": 200, "due_date": NOW - 3_600_000,
                })),
                rec(&json!({"id": 4, "title": "Untitled leftovers"})),
            ],
            projects: Some(vec![
                rec(&json!({"id": 1, "name": "Reporting"})),
                rec(&json!({"id": 2, "name": "Travel"})),
            ]),
            ..ChatContext::default()
        }
    }

    fn run(tool: &str, args: &str) -> Result<ToolOutcome, ToolError> {
        call(&TaskAgent, &context(), tool, args)
    }

    fn ids(out: &ToolOutcome, key: &str) -> Vec<i64> {
        out.result[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| super::args::loose_int(&t["id"]).unwrap())
            .collect()
    }

    #[test]
    fn it_is_named_and_described_as_the_plan_says_plus_reminders() {
        assert_eq!(TaskAgent.name(), "task_agent");
        assert_eq!(
            TaskAgent.description(),
            "Manages tasks and comments: list, create, update, delete, due-today, comments, \
             reminders"
        );
    }

    #[test]
    fn it_offers_the_plans_eight_tools_and_a_reminder() {
        let names: Vec<String> = TaskAgent.tools().into_iter().map(|t| t.name).collect();
        assert_eq!(
            names,
            [
                "list_tasks",
                "create_task",
                "update_task",
                "delete_task",
                "list_tasks_due_today",
                "list_task_comments",
                "add_task_comment",
                "delete_task_comment",
                "remind_about_task"
            ]
        );
    }

    #[test]
    fn every_schema_lists_exactly_the_accepted_properties() {
        schemas_match_validation(&TaskAgent, &context());
    }

    #[test]
    fn the_schemas_carry_the_enums() {
        let tools = TaskAgent.tools();
        let create = &tools[1].parameters["properties"];
        assert_eq!(create["status"]["enum"], json!(STATUSES));
        assert_eq!(create["priority"]["enum"], json!(PRIORITIES));
        assert_eq!(tools[1].parameters["required"], json!(["title"]));
        assert_eq!(
            tools[0].parameters["properties"]["order_by"]["enum"],
            json!(ORDERS)
        );
    }

    #[test]
    fn list_tasks_returns_every_task_without_comments_and_the_count() {
        let out = run("list_tasks", "{}").unwrap();
        assert!(out.actions.is_empty());
        assert_eq!(ids(&out, "tasks"), [1, 2, 3, 4]);
        assert_eq!(out.result["count"], 4);
        assert!(out.result["tasks"][0].get("comments").is_none());
        assert_eq!(out.result["tasks"][0]["title"], "Write quarterly report");
    }

    #[test]
    fn list_tasks_filters_by_project_status_and_text() {
        let out = run("list_tasks", r#"{"project_id": 2.0}"#).unwrap();
        assert_eq!(ids(&out, "tasks"), [2]);
        let out = run("list_tasks", r#"{"status": "done"}"#).unwrap();
        assert_eq!(ids(&out, "tasks"), [3]);
        let out = run("list_tasks", r#"{"search": "q3"}"#).unwrap();
        assert_eq!(ids(&out, "tasks"), [1]);
        let out = run("list_tasks", r#"{"search": "BANK", "status": "done"}"#).unwrap();
        assert_eq!(ids(&out, "tasks"), [3]);
        let out = run("list_tasks", r#"{"search": "  "}"#).unwrap();
        assert_eq!(out.result["count"], 4);
    }

    #[test]
    fn list_tasks_orders_with_missing_values_last() {
        for (order, want) in [
            ("due_date", [3, 1, 2, 4]),
            ("priority", [1, 3, 2, 4]),
            ("created_at", [2, 3, 1, 4]),
            ("title", [2, 3, 4, 1]),
        ] {
            let out = run("list_tasks", &json!({ "order_by": order }).to_string()).unwrap();
            assert_eq!(ids(&out, "tasks"), want, "{order}");
        }
    }

    #[test]
    fn list_tasks_shows_at_most_fifty_tasks_with_the_total() {
        let context = ChatContext {
            recent_tasks: (1..=70)
                .map(|i| rec(&json!({"id": i, "title": format!("Task {i}")})))
                .collect(),
            ..ChatContext::default()
        };
        let out = call(&TaskAgent, &context, "list_tasks", "{}").unwrap();
        assert_eq!(out.result["tasks"].as_array().unwrap().len(), 50);
        assert_eq!(out.result["count"], 70);
    }

    #[test]
    fn create_task_prepares_a_row_with_defaults() {
        let out = run("create_task", r#"{"title": "  Renew passport "}"#).unwrap();
        assert_eq!(
            out.result,
            json!({"prepared": "create_record", "table": "tasks"})
        );
        assert_eq!(
            only_action(&out),
            &PlanAction::create(
                "tasks",
                rec(&json!({
                    "title": "Renew passport", "status": "todo", "priority": "medium",
                    "is_ai_suggested": true, "is_approved": false,
                }))
            )
        );
    }

    #[test]
    fn create_task_keeps_every_given_field() {
        let out = run(
            "create_task",
            &json!({
                "title": "Plan offsite", "description": "Venue and agenda",
                "status": "in_progress", "priority": "high",
                "assignees": "[\"Ana\", \" Ben \"]", "due_date": 1_796_000_000_000.0,
                "project_id": 2, "is_ai_suggested": false, "is_approved": true,
            })
            .to_string(),
        )
        .unwrap();
        assert_eq!(
            only_action(&out),
            &PlanAction::create(
                "tasks",
                rec(&json!({
                    "title": "Plan offsite", "description": "Venue and agenda",
                    "status": "in_progress", "priority": "high", "assignees": "[\"Ana\",\"Ben\"]",
                    "due_date": 1_796_000_000_000_i64, "project_id": 2,
                    "is_ai_suggested": false, "is_approved": true,
                }))
            )
        );
    }

    #[test]
    fn create_task_refuses_what_the_schema_forbids() {
        for (args, want) in [
            ("{title: 1}", "not valid JSON"),
            (r#"{"title": "A", "owner": "Ana"}"#, "unknown field `owner`"),
            (
                r#"{"title": "A", "status": "blocked"}"#,
                "todo, in_progress, done",
            ),
            (
                r#"{"title": "A", "priority": "urgent"}"#,
                "high, medium, low",
            ),
            (
                r#"{"title": "A", "assignees": "Ana, Ben"}"#,
                "JSON array of names",
            ),
            (
                r#"{"title": "A", "assignees": "{\"a\": 1}"}"#,
                "JSON array of names",
            ),
            (r#"{"title": "A", "due_date": -5}"#, "not negative"),
            (r#"{"title": "A", "due_date": -1}"#, "not negative"),
            (
                r#"{"title": "A", "project_id": -1}"#,
                "positive whole number",
            ),
            (r#"{"title": "A", "is_approved": "true"}"#, "true or false"),
            (r#"{"title": " "}"#, "`title` must not be blank"),
            (r#"{"description": "x"}"#, "missing required field title"),
        ] {
            let m = invalid(run("create_task", args));
            assert!(m.contains(want), "{args}: {m}");
        }
        let long = json!({ "title": "x".repeat(501) }).to_string();
        assert!(invalid(run("create_task", &long)).contains("at most 500 characters"));
    }

    #[test]
    fn create_task_refuses_a_project_the_app_did_not_share() {
        let e = run("create_task", r#"{"title": "A", "project_id": 9}"#).unwrap_err();
        assert!(matches!(e, ToolError::NotFound(m) if m.contains("project 9")));
        let context = ChatContext::default();
        let out = call(
            &TaskAgent,
            &context,
            "create_task",
            r#"{"title": "A", "project_id": 9}"#,
        )
        .unwrap();
        assert_eq!(only_action(&out).data.as_ref().unwrap()["project_id"], 9);
    }

    #[test]
    fn update_task_sends_only_the_changed_fields() {
        let out = run(
            "update_task",
            r#"{"task_id": 2.0, "status": "done", "due_date": -1, "project_id": -1}"#,
        )
        .unwrap();
        assert_eq!(
            out.result,
            json!({"prepared": "update_record", "table": "tasks", "id": 2})
        );
        assert_eq!(
            only_action(&out),
            &PlanAction::update("tasks", rec(&json!({"id": 2, "status": "done"})))
        );
        let out = run(
            "update_task",
            r#"{"task_id": 3, "due_date": 0, "project_id": 1, "assignees": "[]"}"#,
        )
        .unwrap();
        assert_eq!(
            only_action(&out),
            &PlanAction::update(
                "tasks",
                rec(&json!({"id": 3, "due_date": 0, "project_id": 1, "assignees": "[]"}))
            )
        );
    }

    #[test]
    fn update_task_with_nothing_to_change_is_refused() {
        for args in [
            r#"{"task_id": 1}"#,
            r#"{"task_id": 1, "due_date": -1, "project_id": -1}"#,
            r#"{"task_id": 1, "title": null}"#,
        ] {
            let m = invalid(run("update_task", args));
            assert!(m.contains("nothing to change"), "{m}");
            assert!(m.contains("title, description, status"), "{m}");
        }
    }

    #[test]
    fn update_task_refuses_bad_sentinels_and_unknown_ids() {
        let m = invalid(run("update_task", r#"{"task_id": 1, "project_id": -2}"#));
        assert!(m.contains("or -1 to keep it unchanged"), "{m}");
        let m = invalid(run("update_task", r#"{"task_id": -1, "title": "A"}"#));
        assert!(
            m.contains("`task_id` must be a positive whole number"),
            "{m}"
        );
        assert!(matches!(
            run("update_task", r#"{"task_id": 99, "title": "A"}"#),
            Err(ToolError::NotFound(m)) if m.contains("task 99")
        ));
        assert!(matches!(
            run("update_task", r#"{"task_id": 1, "project_id": 9}"#),
            Err(ToolError::NotFound(_))
        ));
    }

    #[test]
    fn delete_task_prepares_a_delete_of_a_shared_task() {
        let out = run("delete_task", r#"{"task_id": 3}"#).unwrap();
        assert_eq!(only_action(&out), &PlanAction::delete("tasks", 3));
        assert_eq!(
            out.result,
            json!({"prepared": "delete_record", "table": "tasks", "id": 3})
        );
        assert!(matches!(
            run("delete_task", r#"{"task_id": 5}"#),
            Err(ToolError::NotFound(_))
        ));
        assert!(invalid(run("delete_task", "{}")).contains("missing required field task_id"));
    }

    #[test]
    fn tasks_due_today_use_the_users_local_day() {
        // Local time is 13:00 on the 27th (UTC+1): the day runs 23:00 UTC the 26th to 23:00.
        let out = run("list_tasks_due_today", "").unwrap();
        assert_eq!(ids(&out, "tasks"), [3, 1]);
        let start = NOW - 13 * 3_600_000;
        assert_eq!(out.result["day_start"], start);
        assert_eq!(out.result["day_end"], start + 86_400_000);
        // At UTC+12 the local day starts now: the task due an hour ago was yesterday.
        // At UTC-13 it is 23:00 on the 26th: the task due in an hour is tomorrow.
        for (offset, want) in [(720, [1]), (-780, [3])] {
            let mut context = context();
            context.user_profile = rec(&json!({ "utc_offset_minutes": offset }));
            let out = call(&TaskAgent, &context, "list_tasks_due_today", "{}").unwrap();
            assert_eq!(ids(&out, "tasks"), want, "{offset}");
        }
        assert!(invalid(run("list_tasks_due_today", r#"{"day": 1}"#)).contains("no arguments"));
    }

    #[test]
    fn list_task_comments_reads_the_tasks_comments_or_says_they_were_not_shared() {
        let out = run("list_task_comments", r#"{"task_id": 1}"#).unwrap();
        assert_eq!(out.result["count"], 1);
        assert_eq!(out.result["task_id"], 1);
        assert_eq!(out.result["comments"][0]["content"], "Draft is up");
        let out = run("list_task_comments", r#"{"task_id": 2}"#).unwrap();
        assert_eq!(out.result["shared"], false);
        assert!(out.result["note"]
            .as_str()
            .unwrap()
            .contains("did not share"));
        assert!(matches!(
            run("list_task_comments", r#"{"task_id": 8}"#),
            Err(ToolError::NotFound(_))
        ));
    }

    #[test]
    fn add_task_comment_prepares_a_comment_row() {
        let out = run(
            "add_task_comment",
            r#"{"task_id": 1, "author": "Ben", "content": "Numbers checked"}"#,
        )
        .unwrap();
        assert_eq!(
            only_action(&out),
            &PlanAction::create(
                "comments",
                rec(&json!({"task_id": 1, "author": "Ben", "content": "Numbers checked"}))
            )
        );
        assert!(invalid(run(
            "add_task_comment",
            r#"{"task_id": 1, "author": "Ben"}"#
        ))
        .contains("missing required field content"));
        assert!(matches!(
            run(
                "add_task_comment",
                r#"{"task_id": 7, "author": "Ben", "content": "x"}"#
            ),
            Err(ToolError::NotFound(_))
        ));
    }

    #[test]
    fn delete_task_comment_needs_a_shared_comment() {
        let out = run("delete_task_comment", r#"{"comment_id": 1}"#).unwrap();
        assert_eq!(only_action(&out), &PlanAction::delete("comments", 1));
        let e = run("delete_task_comment", r#"{"comment_id": 2}"#).unwrap_err();
        assert!(matches!(e, ToolError::NotFound(m) if m.contains("list_task_comments")));
        let context = ChatContext {
            recent_tasks: vec![rec(&json!({"id": 1}))],
            ..ChatContext::default()
        };
        let e = call(
            &TaskAgent,
            &context,
            "delete_task_comment",
            r#"{"comment_id": 1}"#,
        )
        .unwrap_err();
        assert!(matches!(e, ToolError::NotFound(m) if m.contains("did not share")));
    }

    #[test]
    fn remind_about_task_proposes_a_notification_in_the_future() {
        let at = NOW + 3 * 3_600_000;
        let out = run(
            "remind_about_task",
            &format!(r#"{{"title": " Call the bank ", "body": "About the card", "at": {at}.0}}"#),
        )
        .unwrap();
        assert_eq!(
            only_action(&out),
            &PlanAction::notification("Call the bank", "About the card", at)
        );
        assert_eq!(
            serde_json::to_value(only_action(&out)).unwrap(),
            json!({"type": "send_notification",
                   "data": {"title": "Call the bank", "body": "About the card", "at": at}})
        );
        assert_eq!(
            out.result,
            json!({"prepared": "send_notification", "at": at})
        );
        let out = run(
            "remind_about_task",
            &json!({"title": "Stretch", "at": NOW + 1}).to_string(),
        )
        .unwrap();
        assert_eq!(only_action(&out).data.as_ref().unwrap()["body"], "");
    }

    #[test]
    fn remind_about_task_refuses_times_that_are_not_ahead() {
        for (at, want) in [
            (json!(NOW), "must be in the future"),
            (json!(NOW - 60_000), "must be in the future"),
            (json!(NOW * 1000), "more than ten years ahead"),
            (json!(-1), "not negative"),
            (json!("tomorrow"), "whole number of milliseconds"),
        ] {
            let args = json!({"title": "Stretch", "at": at}).to_string();
            let m = invalid(run("remind_about_task", &args));
            assert!(m.contains(want), "{args}: {m}");
        }
        for (args, want) in [
            (json!({"at": NOW + 1}), "missing required field title"),
            (json!({"title": "T"}), "missing required field at"),
            (json!({"title": " ", "at": NOW + 1}), "must not be blank"),
            (
                json!({"title": "x".repeat(201), "at": NOW + 1}),
                "at most 200 characters",
            ),
            (
                json!({"title": "T", "body": "b".repeat(1001), "at": NOW + 1}),
                "at most 1000 characters",
            ),
            (
                json!({"title": "T", "at": NOW + 1, "task_id": 1}),
                "unknown field `task_id`",
            ),
        ] {
            let m = invalid(run("remind_about_task", &args.to_string()));
            assert!(m.contains(want), "{args}: {m}");
        }
    }

    #[test]
    fn the_prompt_says_when_to_set_a_reminder() {
        assert!(TaskAgent
            .prompt()
            .iter()
            .any(|f| f.contains("asks to be reminded") && f.contains("remind_about_task")));
    }

    #[test]
    fn an_unknown_tool_is_refused() {
        assert_eq!(
            run("list_notes", "{}").unwrap_err(),
            ToolError::UnknownTool("list_notes".to_owned())
        );
    }
}
