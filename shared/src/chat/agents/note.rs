//! `note_agent`: Markdown notes.
//!
//! Every note it creates or updates is also proposed for indexing: the write action is followed
//! by an `index_document` so the app embeds the note and upserts it into its vector store. An
//! update names the row (`data: {table: "notes", id}`); a created row has no id yet, so the
//! `create_record` carries a `client_ref` ([`args::client_ref`]) and the index action repeats it
//! (`data: {table: "notes", client_ref}`): the app indexes the row it inserted for that
//! reference.

use serde_json::{json, Value};

use super::args::{
    self, check_project, int_field, listing, lookup, not_shared, opt, req, str_field, Kind, Tool,
    MAX_CONTENT_CHARS, MAX_TITLE_CHARS, PREVIEW_CHARS,
};
use crate::api::{ContextRecord, PlanAction};
use crate::chat::agent::{ChatAgent, ToolContext, ToolError, ToolOutcome};
use crate::ports::LlmTool;

const NOTE_ID: &str = "The note's id, from list_notes.";
const TITLE: &str = "The note's title.";
const PROJECT_ID: &str = "The project the note belongs to, from the context.";

const TOOLS: &[Tool] = &[
    Tool {
        name: "list_notes",
        doc: "Lists the notes the app shared, with a short preview of each; get_note returns \
              the full content.",
        params: &[opt("project_id", Kind::Id, "Only notes of this project.")],
    },
    Tool {
        name: "get_note",
        doc: "Returns one note the app shared, with its full Markdown content.",
        params: &[req("note_id", Kind::Id, NOTE_ID)],
    },
    Tool {
        name: "create_note",
        doc: "Prepares a new note, which the app also indexes for search.",
        params: &[
            req("title", Kind::Line(MAX_TITLE_CHARS), TITLE),
            req(
                "content",
                Kind::Text(MAX_CONTENT_CHARS),
                "The note's content, in Markdown.",
            ),
            opt("project_id", Kind::Id, PROJECT_ID),
        ],
    },
    Tool {
        name: "update_note",
        doc: "Prepares changes to a note: send its id and only the fields that change. content \
              replaces the whole text, so call get_note first and send the complete new text. \
              The app indexes the changed note for search.",
        params: &[
            req("note_id", Kind::Id, NOTE_ID),
            opt("title", Kind::Line(MAX_TITLE_CHARS), TITLE),
            opt(
                "content",
                Kind::Text(MAX_CONTENT_CHARS),
                "The note's complete new content, in Markdown.",
            ),
            opt("project_id", Kind::IdOrKeep, PROJECT_ID),
        ],
    },
    Tool {
        name: "delete_note",
        doc: "Prepares the deletion of a note. Only when the user asked to delete it.",
        params: &[req("note_id", Kind::Id, NOTE_ID)],
    },
];

const PROMPT: &[&str] = &[
    "You look after the user's notes, whose content is written in Markdown.",
    "Always call get_note before update_note to keep existing content, then send the whole \
     new text with the unchanged parts included.",
    "Write note content as tidy Markdown, with headings and lists where they help the reader.",
];

/// Manages notes (plan Step 6).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoteAgent;

impl ChatAgent for NoteAgent {
    fn name(&self) -> &'static str {
        "note_agent"
    }

    fn description(&self) -> &'static str {
        "Manages notes: list, get, create, update, delete"
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
        let notes = ctx.context.notes.as_deref();
        let projects = ctx.context.projects.as_deref();
        match args.tool() {
            "list_notes" => {
                let Some(notes) = notes else {
                    return Ok(not_shared("notes"));
                };
                let project = args.int("project_id");
                let items = notes
                    .iter()
                    .filter(|n| project.is_none() || int_field(n, "project_id") == project)
                    .map(summary)
                    .collect();
                Ok(ToolOutcome::read(Value::Object(listing("notes", items))))
            }
            "get_note" => {
                let note = find(notes, args.id("note_id")?)?;
                Ok(ToolOutcome::read(json!({ "note": note })))
            }
            "create_note" => {
                check_project(projects, args.int("project_id"))?;
                Ok(indexed_create(args.create("notes", &[])))
            }
            "update_note" => {
                let id = args.id("note_id")?;
                find(notes, id)?;
                check_project(projects, args.int("project_id"))?;
                let mut out = args.update("notes", "note_id")?;
                out.actions.push(PlanAction::index("notes", id));
                Ok(out)
            }
            "delete_note" => {
                let id = args.id("note_id")?;
                find(notes, id)?;
                Ok(args::delete("notes", id))
            }
            other => Err(ToolError::UnknownTool(other.to_owned())),
        }
    }
}

/// A note's `create_record` with its `client_ref`, followed by the `index_document` of the row
/// it creates.
fn indexed_create(mut out: ToolOutcome) -> ToolOutcome {
    if let Some(create) = out.actions.first_mut() {
        let reference = args::client_ref("notes", &create.data.clone().unwrap_or_default());
        create.client_ref = Some(reference.clone());
        out.actions
            .push(PlanAction::index_created("notes", &reference));
    }
    out
}

fn find(notes: Option<&[ContextRecord]>, id: i64) -> Result<&ContextRecord, ToolError> {
    lookup(notes, "note", "notes", id)
}

/// A note for a listing: its fields, with the content cut to a preview and its length.
fn summary(note: &ContextRecord) -> Value {
    let mut note = note.clone();
    if let Some(content) = str_field(&note, "content").map(str::to_owned) {
        let chars = content.chars().count();
        note.remove("content");
        note.insert(
            "preview".to_owned(),
            Value::from(content.chars().take(PREVIEW_CHARS).collect::<String>()),
        );
        note.insert("content_chars".to_owned(), Value::from(chars));
    }
    Value::Object(note)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::args::testkit::{call, invalid, only_action, rec, schemas_match_validation};
    use super::*;
    use crate::api::{ChatContext, PlanAction};

    fn context() -> ChatContext {
        ChatContext {
            projects: Some(vec![rec(&json!({"id": 1, "name": "Website relaunch"}))]),
            notes: Some(vec![
                rec(&json!({"id": 1, "title": "Kickoff", "project_id": 1,
                            "content": format!("# Kickoff\n\n{}", "a".repeat(300))})),
                rec(&json!({"id": "2", "title": "Shopping", "content": "- milk\n- eggs"})),
                rec(&json!({"id": 3.0, "title": "Empty"})),
            ]),
            ..ChatContext::default()
        }
    }

    fn run(tool: &str, args: &str) -> Result<ToolOutcome, ToolError> {
        call(&NoteAgent, &context(), tool, args)
    }

    #[test]
    fn it_is_named_and_described_as_the_plan_says() {
        assert_eq!(NoteAgent.name(), "note_agent");
        assert_eq!(
            NoteAgent.description(),
            "Manages notes: list, get, create, update, delete"
        );
    }

    #[test]
    fn it_offers_exactly_five_tools() {
        let names: Vec<String> = NoteAgent.tools().into_iter().map(|t| t.name).collect();
        assert_eq!(
            names,
            [
                "list_notes",
                "get_note",
                "create_note",
                "update_note",
                "delete_note"
            ]
        );
    }

    #[test]
    fn every_schema_lists_exactly_the_accepted_properties() {
        schemas_match_validation(&NoteAgent, &context());
    }

    #[test]
    fn the_prompt_asks_for_get_note_before_update_note() {
        assert!(NoteAgent
            .prompt()
            .iter()
            .any(|f| f.contains("call get_note before update_note to keep existing content")));
    }

    #[test]
    fn list_notes_shows_previews_not_whole_contents() {
        let out = run("list_notes", "{}").unwrap();
        assert!(out.actions.is_empty());
        assert_eq!(out.result["count"], 3);
        let first = &out.result["notes"][0];
        assert!(first.get("content").is_none());
        assert_eq!(first["preview"].as_str().unwrap().chars().count(), 200);
        assert_eq!(first["content_chars"], 311);
        assert_eq!(out.result["notes"][1]["preview"], "- milk\n- eggs");
        assert_eq!(out.result["notes"][2]["title"], "Empty");
        let out = run("list_notes", r#"{"project_id": 1}"#).unwrap();
        assert_eq!(out.result["count"], 1);
        assert_eq!(out.result["notes"][0]["title"], "Kickoff");
    }

    #[test]
    fn list_notes_says_when_the_app_shared_none() {
        let out = call(&NoteAgent, &ChatContext::default(), "list_notes", "{}").unwrap();
        assert_eq!(out.result["shared"], false);
        assert!(out.result["note"].as_str().unwrap().contains("notes"));
    }

    #[test]
    fn get_note_returns_the_whole_note_or_not_found() {
        let out = run("get_note", r#"{"note_id": 2}"#).unwrap();
        assert_eq!(out.result["note"]["content"], "- milk\n- eggs");
        assert!(matches!(
            run("get_note", r#"{"note_id": 4}"#),
            Err(ToolError::NotFound(m)) if m.contains("note 4")
        ));
        assert!(matches!(
            call(&NoteAgent, &ChatContext::default(), "get_note", r#"{"note_id": 1}"#),
            Err(ToolError::NotFound(m)) if m.contains("did not share its notes")
        ));
    }

    #[test]
    fn create_note_keeps_the_markdown_as_written() {
        let out = run(
            "create_note",
            r###"{"title": "Retro", "content": "## Went well\n\n- shipping\n", "project_id": 1}"###,
        )
        .unwrap();
        assert_eq!(
            out.result,
            json!({"prepared": "create_record", "table": "notes"})
        );
        let data = rec(
            &json!({"title": "Retro", "content": "## Went well\n\n- shipping\n",
                               "project_id": 1}),
        );
        assert_eq!(out.actions.len(), 2);
        let mut create = PlanAction::create("notes", data.clone());
        create.client_ref = Some(args::client_ref("notes", &data));
        assert_eq!(out.actions[0], create);
    }

    #[test]
    fn create_note_proposes_indexing_the_created_row_by_its_client_ref() {
        let out = run(
            "create_note",
            r#"{"title": "Retro", "content": "Went well"}"#,
        )
        .unwrap();
        let reference = out.actions[0].client_ref.clone().unwrap();
        assert!(reference.starts_with("notes:"), "{reference}");
        assert_eq!(reference.len(), "notes:".len() + 16);
        assert_eq!(
            out.actions[1],
            PlanAction::index_created("notes", &reference)
        );
        assert_eq!(
            serde_json::to_value(&out.actions[1]).unwrap(),
            json!({"type": "index_document", "table": "notes",
                   "data": {"table": "notes", "client_ref": reference}})
        );
        let create = serde_json::to_value(&out.actions[0]).unwrap();
        assert_eq!(create["client_ref"], reference.as_str());
        assert!(
            create["data"].get("client_ref").is_none(),
            "the row's fields stay the row's"
        );
        let other = run(
            "create_note",
            r#"{"title": "Retro", "content": "Went badly"}"#,
        )
        .unwrap();
        assert_ne!(other.actions[0].client_ref.as_ref(), Some(&reference));
        let same = run(
            "create_note",
            r#"{"title": "Retro", "content": "Went well"}"#,
        )
        .unwrap();
        assert_eq!(
            same.actions[0].client_ref.as_ref(),
            Some(&reference),
            "identical rows share a reference, so indexing one indexes both"
        );
    }

    #[test]
    fn update_note_proposes_indexing_the_updated_row_by_its_id() {
        let out = run("update_note", r#"{"note_id": 2, "title": "Groceries"}"#).unwrap();
        assert_eq!(out.actions.len(), 2);
        assert_eq!(out.actions[1], PlanAction::index("notes", 2));
        assert_eq!(
            serde_json::to_value(&out.actions[1]).unwrap(),
            json!({"type": "index_document", "table": "notes", "data": {"table": "notes", "id": 2}})
        );
    }

    #[test]
    fn nothing_is_indexed_when_a_write_is_refused_or_a_note_deleted() {
        assert!(run("update_note", r#"{"note_id": 9, "title": "X"}"#).is_err());
        assert!(run("create_note", r#"{"title": "A"}"#).is_err());
        let out = run("delete_note", r#"{"note_id": 3}"#).unwrap();
        assert_eq!(out.actions.len(), 1);
    }

    #[test]
    fn create_note_validates_its_arguments() {
        for (args, want) in [
            ("{\"title\": ", "not valid JSON"),
            (r#"{"title": "A"}"#, "missing required field content"),
            (r#"{"content": "x"}"#, "missing required field title"),
            (
                r#"{"title": "A", "content": ["x"]}"#,
                "`content` must be a string",
            ),
            (
                r#"{"title": "A", "content": "x", "tags": "a"}"#,
                "unknown field `tags`",
            ),
            (
                r#"{"title": "A", "content": "x", "project_id": -1}"#,
                "positive whole number",
            ),
        ] {
            let m = invalid(run("create_note", args));
            assert!(m.contains(want), "{args}: {m}");
        }
        let long = json!({"title": "A", "content": "x".repeat(100_001)}).to_string();
        assert!(invalid(run("create_note", &long)).contains("at most 100000 characters"));
        assert!(matches!(
            run(
                "create_note",
                r#"{"title": "A", "content": "x", "project_id": 5}"#
            ),
            Err(ToolError::NotFound(_))
        ));
    }

    #[test]
    fn update_note_sends_only_the_changed_fields() {
        let out = run(
            "update_note",
            r#"{"note_id": 2, "content": "- milk\n- eggs\n- bread", "project_id": -1}"#,
        )
        .unwrap();
        assert_eq!(
            out.result,
            json!({"prepared": "update_record", "table": "notes", "id": 2})
        );
        assert_eq!(
            out.actions[0],
            PlanAction::update(
                "notes",
                rec(&json!({"id": 2, "content": "- milk\n- eggs\n- bread"}))
            )
        );
        let out = run(
            "update_note",
            r#"{"note_id": 3, "title": "Ideas", "project_id": 1}"#,
        )
        .unwrap();
        assert_eq!(
            out.actions[0],
            PlanAction::update(
                "notes",
                rec(&json!({"id": 3, "title": "Ideas", "project_id": 1}))
            )
        );
        let m = invalid(run("update_note", r#"{"note_id": 3, "project_id": -1}"#));
        assert!(m.contains("nothing to change: give at least one of title, content, project_id"));
        assert!(matches!(
            run("update_note", r#"{"note_id": 9, "title": "X"}"#),
            Err(ToolError::NotFound(_))
        ));
    }

    #[test]
    fn delete_note_prepares_a_delete() {
        let out = run("delete_note", r#"{"note_id": 3}"#).unwrap();
        assert_eq!(only_action(&out), &PlanAction::delete("notes", 3));
        assert!(matches!(
            run("delete_note", r#"{"note_id": 33}"#),
            Err(ToolError::NotFound(_))
        ));
    }

    #[test]
    fn an_unknown_tool_is_refused() {
        assert_eq!(
            run("search_notes", "{}").unwrap_err(),
            ToolError::UnknownTool("search_notes".to_owned())
        );
    }
}
