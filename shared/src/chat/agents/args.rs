//! What the four agents share: tool specifications that give both the JSON Schema offered to the
//! model and the validation of what it sends back, the write results, and lookups in the
//! request's loose context records.
//!
//! One [`Tool`] table per agent is the single source of truth: [`Tool::llm_tool`] renders it as
//! JSON Schema and [`parse`] accepts exactly its properties, so the two cannot drift apart.
//!
//! Besides record changes, tools may propose two app actions: a reminder
//! ([`notification`]: `send_notification` with `data: {title, body, at}`, `at` in the future of
//! the request) and the indexing of a note they wrote (`index_document`; for a row not yet
//! created, correlated by [`client_ref`]).

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::api::{ContextRecord, PlanAction, PlanActionType};
use crate::chat::agent::{ToolError, ToolOutcome};
use crate::input::integral_i64;
use crate::ports::LlmTool;

/// Longest title or name, in characters.
pub const MAX_TITLE_CHARS: usize = 500;
/// Longest note content or task description, in characters.
pub const MAX_CONTENT_CHARS: usize = 100_000;
/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 10_000;
/// Longest short text (an author, a search, one assignee), in characters.
pub const MAX_SHORT_CHARS: usize = 200;
/// Most assignees on one task.
pub const MAX_ASSIGNEES: usize = 50;
/// Most records one read tool returns (the total is always reported).
pub const MAX_LIST_ITEMS: usize = 50;
/// Characters of a note shown in listings.
pub const PREVIEW_CHARS: usize = 200;
/// Longest notification title, in characters.
pub const MAX_NOTIFICATION_TITLE_CHARS: usize = 200;
/// Longest notification body, in characters.
pub const MAX_NOTIFICATION_BODY_CHARS: usize = 1_000;
/// How far ahead a reminder may be set: ten years (a later `at` is a unit mistake, such as
/// microseconds).
pub const MAX_REMINDER_AHEAD_MS: i64 = 10 * 366 * 86_400_000;

/// What a parameter accepts.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A record id: a positive whole number.
    Id,
    /// A record id, or `-1` to leave the field unchanged (update tools).
    IdOrKeep,
    /// Milliseconds since the epoch, not negative.
    Time,
    /// Milliseconds since the epoch, or `-1` to leave the field unchanged (update tools).
    TimeOrKeep,
    /// Text that must not be blank, at most this many characters; stored trimmed.
    Line(usize),
    /// Text that may be empty, at most this many characters; stored as sent.
    Text(usize),
    /// One of these words.
    Choice(&'static [&'static str]),
    /// `true` or `false`.
    Flag,
    /// A JSON-encoded array of names, in a string; stored re-encoded.
    Names,
}

/// One parameter of a tool.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Property name.
    pub name: &'static str,
    /// What it accepts.
    pub kind: Kind,
    /// Whether the model must send it.
    pub required: bool,
    /// Its description for the model.
    pub doc: &'static str,
}

/// A required parameter.
pub const fn req(name: &'static str, kind: Kind, doc: &'static str) -> Param {
    Param {
        name,
        kind,
        required: true,
        doc,
    }
}

/// An optional parameter.
pub const fn opt(name: &'static str, kind: Kind, doc: &'static str) -> Param {
    Param {
        name,
        kind,
        required: false,
        doc,
    }
}

/// One tool: its name, its description for the model and its parameters.
#[derive(Debug)]
pub struct Tool {
    /// Tool name.
    pub name: &'static str,
    /// What it does, for the model.
    pub doc: &'static str,
    /// Its parameters.
    pub params: &'static [Param],
}

impl Tool {
    /// The tool as offered to the model: an object schema with exactly its parameters.
    pub fn llm_tool(&self) -> LlmTool {
        let properties: Map<String, Value> = self
            .params
            .iter()
            .map(|p| (p.name.to_owned(), p.schema()))
            .collect();
        let required: Vec<&str> = self
            .params
            .iter()
            .filter(|p| p.required)
            .map(|p| p.name)
            .collect();
        LlmTool {
            name: self.name.to_owned(),
            description: self.doc.to_owned(),
            parameters: json!({
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": false,
            }),
        }
    }

    fn names(&self) -> String {
        let names: Vec<&str> = self.params.iter().map(|p| p.name).collect();
        names.join(", ")
    }
}

/// Every tool of `tools` as offered to the model.
pub fn llm_tools(tools: &[Tool]) -> Vec<LlmTool> {
    tools.iter().map(Tool::llm_tool).collect()
}

impl Param {
    fn schema(&self) -> Value {
        let mut s = match self.kind {
            Kind::Id => json!({ "type": "integer", "minimum": 1 }),
            Kind::IdOrKeep | Kind::TimeOrKeep => json!({ "type": "integer", "minimum": -1 }),
            Kind::Time => json!({ "type": "integer", "minimum": 0 }),
            Kind::Line(max) => json!({ "type": "string", "minLength": 1, "maxLength": max }),
            Kind::Text(max) => json!({ "type": "string", "maxLength": max }),
            Kind::Choice(words) => json!({ "type": "string", "enum": words }),
            Kind::Flag => json!({ "type": "boolean" }),
            Kind::Names => json!({ "type": "string" }),
        };
        let doc = if matches!(self.kind, Kind::IdOrKeep | Kind::TimeOrKeep) {
            format!(
                "{} Send -1 (or leave it out) to keep it unchanged.",
                self.doc
            )
        } else {
            self.doc.to_owned()
        };
        s["description"] = Value::String(doc);
        s
    }

    /// The value to keep for `v`, `None` for the "unchanged" sentinel.
    fn check(&self, v: &Value) -> Result<Option<Value>, ToolError> {
        let name = self.name;
        match self.kind {
            Kind::Id | Kind::IdOrKeep | Kind::Time | Kind::TimeOrKeep => {
                let keep = matches!(self.kind, Kind::IdOrKeep | Kind::TimeOrKeep);
                let is_id = matches!(self.kind, Kind::Id | Kind::IdOrKeep);
                let n = integral_i64(v).ok().filter(|n| *n >= i64::from(is_id));
                match n {
                    Some(n) => Ok(Some(Value::from(n))),
                    None if keep && integral_i64(v).ok() == Some(-1) => Ok(None),
                    None => {
                        let what = if is_id {
                            "a positive whole number (an id from the context)"
                        } else {
                            "a whole number of milliseconds since the epoch, not negative"
                        };
                        let or_keep = if keep {
                            ", or -1 to keep it unchanged"
                        } else {
                            ""
                        };
                        Err(invalid(format!("`{name}` must be {what}{or_keep}")))
                    }
                }
            }
            Kind::Line(max) => {
                let s = string(name, v)?.trim();
                if s.is_empty() {
                    return Err(invalid(format!("`{name}` must not be blank")));
                }
                check_len(name, s, max)?;
                Ok(Some(Value::from(s)))
            }
            Kind::Text(max) => {
                let s = string(name, v)?;
                check_len(name, s, max)?;
                Ok(Some(Value::from(s)))
            }
            Kind::Choice(words) => match v.as_str() {
                Some(s) if words.contains(&s) => Ok(Some(Value::from(s))),
                _ => Err(invalid(format!(
                    "`{name}` must be one of: {}",
                    words.join(", ")
                ))),
            },
            Kind::Flag => v
                .as_bool()
                .map(|b| Some(Value::Bool(b)))
                .ok_or_else(|| invalid(format!("`{name}` must be true or false"))),
            Kind::Names => names(name, v).map(Some),
        }
    }
}

fn invalid(message: String) -> ToolError {
    ToolError::InvalidArguments(message)
}

fn string<'a>(name: &str, v: &'a Value) -> Result<&'a str, ToolError> {
    v.as_str()
        .ok_or_else(|| invalid(format!("`{name}` must be a string")))
}

fn check_len(name: &str, s: &str, max: usize) -> Result<(), ToolError> {
    let chars = s.chars().count();
    if chars > max {
        return Err(invalid(format!(
            "`{name}` must be at most {max} characters (it has {chars}); shorten it"
        )));
    }
    Ok(())
}

/// A JSON-encoded array of names: parsed, each name trimmed and checked, re-encoded.
fn names(name: &str, v: &Value) -> Result<Value, ToolError> {
    let shape = || {
        invalid(format!(
            "`{name}` must be a string holding a JSON array of names, e.g. \"[\\\"Ana\\\", \
             \\\"Ben\\\"]\" (\"[]\" for nobody)"
        ))
    };
    let text = v.as_str().ok_or_else(shape)?;
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text) else {
        return Err(shape());
    };
    if items.len() > MAX_ASSIGNEES {
        return Err(invalid(format!(
            "`{name}` may list at most {MAX_ASSIGNEES} names"
        )));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        let s = item.as_str().map(str::trim).ok_or_else(shape)?;
        if s.is_empty() || s.chars().count() > MAX_SHORT_CHARS {
            return Err(invalid(format!(
                "every name in `{name}` must be 1 to {MAX_SHORT_CHARS} characters"
            )));
        }
        out.push(s);
    }
    Ok(Value::String(Value::from(out).to_string()))
}

/// At most `max` characters of `s` (for echoing model-chosen names in errors).
fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// A tool call's validated arguments: only the tool's parameters, normalised (whole numbers as
/// integers, lines trimmed, names re-encoded), with `null` and the `-1` sentinel left out.
#[derive(Debug)]
pub struct Args {
    tool: &'static Tool,
    values: ContextRecord,
}

/// Finds the tool `name` in `tools` and validates `text` (the model's raw arguments) against it.
/// Blank text counts as `{}` (models send it for tools without parameters); `null` for an
/// optional parameter counts as leaving it out.
pub fn parse(tools: &'static [Tool], name: &str, text: &str) -> Result<Args, ToolError> {
    let tool = tools
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| ToolError::UnknownTool(clip(name, 64)))?;
    let raw = if text.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str(text).map_err(|e| {
            invalid(format!(
                "the arguments are not valid JSON ({e}); send one JSON object"
            ))
        })?
    };
    let Value::Object(raw) = raw else {
        return Err(invalid(
            "the arguments must be one JSON object of named fields".to_owned(),
        ));
    };
    let unknown: Vec<String> = raw
        .keys()
        .filter(|k| !tool.params.iter().any(|p| p.name == k.as_str()))
        .map(|k| format!("`{}`", clip(k, 40)))
        .collect();
    if !unknown.is_empty() {
        let accepted = if tool.params.is_empty() {
            format!("{} takes no arguments", tool.name)
        } else {
            format!("{} accepts only: {}", tool.name, tool.names())
        };
        return Err(invalid(format!(
            "unknown field {}; {accepted}",
            unknown.join(", ")
        )));
    }
    let mut values = Map::new();
    let mut missing = Vec::new();
    for p in tool.params {
        match raw.get(p.name) {
            None | Some(Value::Null) if p.required => missing.push(p.name),
            None | Some(Value::Null) => {}
            Some(v) => {
                if let Some(v) = p.check(v)? {
                    values.insert(p.name.to_owned(), v);
                }
            }
        }
    }
    if !missing.is_empty() {
        return Err(invalid(format!(
            "missing required field {}",
            missing.join(", ")
        )));
    }
    Ok(Args { tool, values })
}

impl Args {
    /// The tool these arguments are for.
    pub fn tool(&self) -> &'static str {
        self.tool.name
    }

    /// A required integer parameter.
    pub fn id(&self, name: &str) -> Result<i64, ToolError> {
        self.int(name)
            .ok_or_else(|| invalid(format!("missing required field {name}")))
    }

    /// An optional integer parameter (absent when left out or `-1`).
    pub fn int(&self, name: &str) -> Option<i64> {
        self.values.get(name).and_then(Value::as_i64)
    }

    /// A text parameter.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(Value::as_str)
    }

    /// A boolean parameter.
    pub fn flag(&self, name: &str) -> Option<bool> {
        self.values.get(name).and_then(Value::as_bool)
    }

    /// A `create_record` of the given fields into `table`, with `defaults` for those left out.
    pub fn create(self, table: &str, defaults: &[(&str, Value)]) -> ToolOutcome {
        let mut data = self.values;
        for (k, v) in defaults {
            data.entry(*k).or_insert_with(|| v.clone());
        }
        prepared(PlanAction::create(table, data))
    }

    /// An `update_record` of the row named by the parameter `id_param` of `table`, with the
    /// other given fields.
    ///
    /// # Errors
    /// [`ToolError::InvalidArguments`] when no field would change.
    pub fn update(self, table: &str, id_param: &str) -> Result<ToolOutcome, ToolError> {
        let id = self.id(id_param)?;
        let mut data = self.values;
        data.remove(id_param);
        if data.is_empty() {
            let fields: Vec<&str> = self
                .tool
                .params
                .iter()
                .map(|p| p.name)
                .filter(|n| *n != id_param)
                .collect();
            return Err(invalid(format!(
                "nothing to change: give at least one of {} (-1 and null mean unchanged)",
                fields.join(", ")
            )));
        }
        data.insert("id".to_owned(), Value::from(id));
        Ok(prepared(PlanAction::update(table, data)))
    }
}

/// The `client_ref` of a `create_record` of `data` into `table`: `<table>:` and 16 hex digits
/// of the SHA-256 of the table and the row's JSON. Equal rows get equal references, so an
/// `index_document` naming one covers every identical row the response creates.
pub fn client_ref(table: &str, data: &ContextRecord) -> String {
    let mut hash = Sha256::new();
    hash.update(table.as_bytes());
    hash.update([0]);
    hash.update(Value::Object(data.clone()).to_string().as_bytes());
    let digest = hash.finalize();
    format!("{table}:{}", hex::encode(&digest[..8]))
}

/// A reminder: one `send_notification` action from the parameters `title`, `body` (optional)
/// and `at`, which must lie after `now_ms` and at most [`MAX_REMINDER_AHEAD_MS`] beyond it.
///
/// # Errors
/// [`ToolError::InvalidArguments`] for a missing title or an `at` out of range.
pub fn notification(args: &Args, now_ms: i64) -> Result<ToolOutcome, ToolError> {
    let at = args.id("at")?;
    if at <= now_ms {
        return Err(invalid(format!(
            "`at` must be in the future: now is {now_ms} ms since the epoch; convert the \
             user's local time with their UTC offset"
        )));
    }
    if at - now_ms > MAX_REMINDER_AHEAD_MS {
        return Err(invalid(
            "`at` is more than ten years ahead; send milliseconds since the epoch".to_owned(),
        ));
    }
    let title = args
        .str("title")
        .ok_or_else(|| invalid("missing required field title".to_owned()))?;
    let action = PlanAction::notification(title, args.str("body").unwrap_or(""), at);
    Ok(ToolOutcome {
        result: json!({ "prepared": action.kind, "at": at }),
        actions: vec![action],
    })
}

/// A `delete_record` of the row `id` of `table`.
pub fn delete(table: &str, id: i64) -> ToolOutcome {
    prepared(PlanAction::delete(table, id))
}

/// A write tool's outcome: a short result for the model and the one action.
fn prepared(action: PlanAction) -> ToolOutcome {
    let mut result = json!({ "prepared": action.kind, "table": action.table });
    if action.kind != PlanActionType::CreateRecord {
        if let Some(id) = action.data.as_ref().and_then(|d| d.get("id")) {
            result["id"] = id.clone();
        }
    }
    ToolOutcome {
        result,
        actions: vec![action],
    }
}

/// A whole number from a loose context value: `7`, `7.0` or `"7"`.
pub fn loose_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(_) => integral_i64(v).ok(),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| integral_i64(&Value::from(s.parse::<f64>().ok()?)).ok())
        }
        _ => None,
    }
}

/// The whole number in `field` of `record`, if any.
pub fn int_field(record: &ContextRecord, field: &str) -> Option<i64> {
    record.get(field).and_then(loose_int)
}

/// The text in `field` of `record`, if any.
pub fn str_field<'a>(record: &'a ContextRecord, field: &str) -> Option<&'a str> {
    record.get(field).and_then(Value::as_str)
}

/// The record of `records` whose `id` is `id` (compared numerically).
pub fn find(records: &[ContextRecord], id: i64) -> Option<&ContextRecord> {
    records.iter().find(|r| int_field(r, "id") == Some(id))
}

/// The record `id` of a context list (`what` is its singular, `plural` its name).
///
/// # Errors
/// [`ToolError::NotFound`] when the list was not shared or does not hold the id.
pub fn lookup<'a>(
    records: Option<&'a [ContextRecord]>,
    what: &str,
    plural: &str,
    id: i64,
) -> Result<&'a ContextRecord, ToolError> {
    let Some(records) = records else {
        return Err(ToolError::NotFound(format!(
            "the app did not share its {plural} with this request, so {what} {id} cannot be \
             read or changed; tell the user"
        )));
    };
    find(records, id).ok_or_else(|| {
        ToolError::NotFound(format!(
            "{what} {id} is not among the {plural} the app shared; list them to find the \
             right id"
        ))
    })
}

/// Checks a referenced project against the shared projects (anything goes when the app did
/// not share them).
///
/// # Errors
/// [`ToolError::NotFound`] when the projects were shared and do not hold `project_id`.
pub fn check_project(
    projects: Option<&[ContextRecord]>,
    project_id: Option<i64>,
) -> Result<(), ToolError> {
    match (projects, project_id) {
        (Some(projects), Some(id)) if find(projects, id).is_none() => Err(ToolError::NotFound(
            format!("project {id} is not among the projects the app shared; use one of their ids"),
        )),
        _ => Ok(()),
    }
}

/// A read result: at most [`MAX_LIST_ITEMS`] items under `key`, and the total `count`.
pub fn listing(key: &str, items: Vec<Value>) -> Map<String, Value> {
    let count = items.len();
    let mut out = Map::new();
    out.insert(
        key.to_owned(),
        Value::Array(items.into_iter().take(MAX_LIST_ITEMS).collect()),
    );
    out.insert("count".to_owned(), Value::from(count));
    if count > MAX_LIST_ITEMS {
        out.insert(
            "note".to_owned(),
            Value::from(format!(
                "showing the first {MAX_LIST_ITEMS} of {count}; narrow the request to see others"
            )),
        );
    }
    out
}

/// The read result when the app did not send the list `plural` at all.
pub fn not_shared(plural: &str) -> ToolOutcome {
    ToolOutcome::read(json!({
        "shared": false,
        "note": format!(
            "the app did not share {plural} with this request, so none can be listed; say so \
             rather than guessing"
        ),
    }))
}

#[cfg(test)]
pub mod testkit {
    //! Checks every agent's tests share.

    use serde_json::{json, Map, Value};

    use crate::api::{ChatContext, ContextRecord, PlanAction};
    use crate::chat::agent::{ChatAgent, ToolContext, ToolError, ToolOutcome};

    /// 2026-11-27 12:00 UTC, a Friday.
    pub const NOW: i64 = 1_795_780_800_000;

    /// A record from a JSON object literal.
    pub fn rec(v: &Value) -> ContextRecord {
        v.as_object().cloned().expect("an object")
    }

    /// Calls `tool` of `agent` on `context` at [`NOW`].
    pub fn call(
        agent: &dyn ChatAgent,
        context: &ChatContext,
        tool: &str,
        args: &str,
    ) -> Result<ToolOutcome, ToolError> {
        agent.call_tool(
            tool,
            args,
            &ToolContext {
                context,
                now_ms: NOW,
            },
        )
    }

    /// The one action of a write outcome.
    pub fn only_action(out: &ToolOutcome) -> &PlanAction {
        assert_eq!(out.actions.len(), 1, "{out:?}");
        &out.actions[0]
    }

    /// The message of an `InvalidArguments` error.
    pub fn invalid(r: Result<ToolOutcome, ToolError>) -> String {
        match r {
            Err(ToolError::InvalidArguments(m)) => m,
            other => panic!("expected invalid arguments, got {other:?}"),
        }
    }

    /// A value the property's schema accepts, for a context where every record has id 1.
    fn sample(name: &str, schema: &Value) -> Value {
        if name == "assignees" {
            return json!("[\"Ana\"]");
        }
        if name == "at" {
            return json!(NOW + 3_600_000);
        }
        if let Some(words) = schema["enum"].as_array() {
            return words[0].clone();
        }
        match schema["type"].as_str() {
            Some("integer") => json!(1),
            Some("boolean") => json!(true),
            Some("string") => json!("Quarterly review"),
            other => panic!("unexpected schema type {other:?} for {name}"),
        }
    }

    /// Every tool schema is a closed object whose properties the tool accepts, together and each
    /// alone with the required ones, and nothing more. `context` must hold id 1 everywhere.
    pub fn schemas_match_validation(agent: &dyn ChatAgent, context: &ChatContext) {
        for tool in agent.tools() {
            let p = &tool.parameters;
            assert_eq!(p["type"], "object", "{}", tool.name);
            assert_eq!(p["additionalProperties"], false, "{}", tool.name);
            let props = p["properties"].as_object().expect("properties");
            let required: Vec<&str> = p["required"]
                .as_array()
                .expect("required")
                .iter()
                .map(|r| r.as_str().expect("a name"))
                .collect();
            for r in &required {
                assert!(props.contains_key(*r), "{}: {r}", tool.name);
            }
            let minimal: Map<String, Value> = required
                .iter()
                .map(|r| ((*r).to_owned(), sample(r, &props[*r])))
                .collect();
            let full: Map<String, Value> = props
                .iter()
                .map(|(k, s)| (k.clone(), sample(k, s)))
                .collect();
            let mut variants = vec![full.clone()];
            for (k, s) in props
                .iter()
                .filter(|(k, _)| !required.contains(&k.as_str()))
            {
                let mut one = minimal.clone();
                one.insert(k.clone(), sample(k, s));
                variants.push(one);
            }
            for args in variants {
                let text = Value::Object(args).to_string();
                let r = call(agent, context, &tool.name, &text);
                assert!(r.is_ok(), "{} {text}: {r:?}", tool.name);
            }
            let mut extra = full;
            extra.insert("colour".to_owned(), json!("blue"));
            let text = Value::Object(extra).to_string();
            let m = invalid(call(agent, context, &tool.name, &text));
            assert!(m.contains("`colour`"), "{m}");
            for r in &required {
                let mut short = minimal.clone();
                short.remove(*r);
                let m = invalid(call(
                    agent,
                    context,
                    &tool.name,
                    &Value::Object(short).to_string(),
                ));
                assert!(m.contains(r), "{m}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOOLS: &[Tool] = &[
        Tool {
            name: "edit",
            doc: "Edits a thing.",
            params: &[
                req("thing_id", Kind::Id, "The thing."),
                opt("owner_id", Kind::IdOrKeep, "Its owner."),
                opt("due", Kind::TimeOrKeep, "When."),
                opt("at", Kind::Time, "At."),
                opt("title", Kind::Line(5), "Title."),
                opt("body", Kind::Text(5), "Body."),
                opt("mood", Kind::Choice(&["up", "down"]), "Mood."),
                opt("done", Kind::Flag, "Done."),
                opt("people", Kind::Names, "People."),
            ],
        },
        Tool {
            name: "ping",
            doc: "Pings.",
            params: &[],
        },
    ];

    fn err(text: &str) -> String {
        match parse(TOOLS, "edit", text) {
            Err(ToolError::InvalidArguments(m)) => m,
            other => panic!("expected invalid arguments for {text}, got {other:?}"),
        }
    }

    #[test]
    fn valid_arguments_are_normalised() {
        let a = parse(
            TOOLS,
            "edit",
            r#"{"thing_id": 7.0, "owner_id": 3, "due": 0, "title": "  Hi ", "body": " x ",
                "mood": "up", "done": false, "people": "[\" Ana \", \"Ben\"]"}"#,
        )
        .unwrap();
        assert_eq!(a.tool(), "edit");
        assert_eq!(a.id("thing_id").unwrap(), 7);
        assert_eq!(a.int("owner_id"), Some(3));
        assert_eq!(a.int("due"), Some(0));
        assert_eq!(a.str("title"), Some("Hi"));
        assert_eq!(a.str("body"), Some(" x "));
        assert_eq!(a.str("mood"), Some("up"));
        assert_eq!(a.flag("done"), Some(false));
        assert_eq!(a.str("people"), Some(r#"["Ana","Ben"]"#));
    }

    #[test]
    fn the_minus_one_sentinel_and_null_mean_left_out() {
        let a = parse(
            TOOLS,
            "edit",
            r#"{"thing_id": 7, "owner_id": -1, "due": -1.0, "title": null}"#,
        )
        .unwrap();
        assert_eq!(a.values.len(), 1);
        let m = a.update("things", "thing_id").unwrap_err().to_string();
        assert!(m.contains("nothing to change"), "{m}");
        assert!(m.contains("owner_id, due, at"), "{m}");
    }

    #[test]
    fn the_sentinel_is_refused_where_it_is_not_allowed() {
        assert!(err(r#"{"thing_id": -1}"#).contains("positive whole number"));
        assert!(err(r#"{"thing_id": 1, "at": -1}"#).contains("not negative"));
        assert!(err(r#"{"thing_id": 1, "owner_id": -2}"#).contains("-1 to keep"));
        assert!(err(r#"{"thing_id": 1, "owner_id": 0}"#).contains("-1 to keep"));
    }

    #[test]
    fn wrong_shapes_say_what_to_fix() {
        for (text, want) in [
            ("{", "not valid JSON"),
            ("[1]", "one JSON object"),
            ("null", "one JSON object"),
            (
                r#"{"thing_id": "7"}"#,
                "`thing_id` must be a positive whole number",
            ),
            (
                r#"{"thing_id": 7.5}"#,
                "`thing_id` must be a positive whole number",
            ),
            (
                r#"{"thing_id": 1, "title": "   "}"#,
                "`title` must not be blank",
            ),
            (
                r#"{"thing_id": 1, "title": "abcdef"}"#,
                "at most 5 characters",
            ),
            (
                r#"{"thing_id": 1, "body": "abcdef"}"#,
                "at most 5 characters",
            ),
            (r#"{"thing_id": 1, "body": 3}"#, "`body` must be a string"),
            (r#"{"thing_id": 1, "mood": "sideways"}"#, "one of: up, down"),
            (r#"{"thing_id": 1, "done": "yes"}"#, "true or false"),
            (r#"{"thing_id": 1, "people": "Ana"}"#, "JSON array of names"),
            (
                r#"{"thing_id": 1, "people": ["Ana"]}"#,
                "JSON array of names",
            ),
            (r#"{"thing_id": 1, "people": "[1]"}"#, "JSON array of names"),
            (
                r#"{"thing_id": 1, "people": "[\" \"]"}"#,
                "1 to 200 characters",
            ),
            (r#"{"owner_id": 1}"#, "missing required field thing_id"),
            (r#"{"thing_id": null}"#, "missing required field thing_id"),
            (
                r#"{"thing_id": 1, "b": 1, "a": 2}"#,
                "unknown field `a`, `b`; edit accepts only",
            ),
        ] {
            let m = err(text);
            assert!(m.contains(want), "{text}: {m}");
        }
    }

    #[test]
    fn too_many_names_are_refused() {
        let many: Vec<String> = (0..=MAX_ASSIGNEES).map(|i| format!("p{i}")).collect();
        let text = json!({"thing_id": 1, "people": Value::from(many).to_string()}).to_string();
        assert!(err(&text).contains("at most 50 names"));
    }

    #[test]
    fn a_tool_without_parameters_takes_blank_or_empty_arguments_only() {
        assert!(parse(TOOLS, "ping", "").is_ok());
        assert!(parse(TOOLS, "ping", " {} ").is_ok());
        let Err(ToolError::InvalidArguments(m)) = parse(TOOLS, "ping", r#"{"x":1}"#) else {
            panic!("expected invalid arguments")
        };
        assert!(m.contains("ping takes no arguments"), "{m}");
    }

    #[test]
    fn an_unknown_tool_is_named_in_the_error() {
        assert_eq!(
            parse(TOOLS, "explode", "{}").unwrap_err(),
            ToolError::UnknownTool("explode".to_owned())
        );
    }

    #[test]
    fn sentinel_parameters_say_so_in_their_schema() {
        let t = TOOLS[0].llm_tool();
        let d = t.parameters["properties"]["owner_id"]["description"]
            .as_str()
            .unwrap();
        assert!(d.contains("Send -1"), "{d}");
        assert_eq!(t.parameters["required"], json!(["thing_id"]));
        assert_eq!(TOOLS[1].llm_tool().parameters["properties"], json!({}));
    }

    #[test]
    fn context_ids_compare_numerically_whatever_their_notation() {
        for v in [json!(7), json!(7.0), json!("7"), json!(" 7 "), json!("7.0")] {
            assert_eq!(loose_int(&v), Some(7), "{v}");
        }
        for v in [
            json!(7.5),
            json!("seven"),
            json!(null),
            json!(true),
            json!([7]),
        ] {
            assert_eq!(loose_int(&v), None, "{v}");
        }
        let records = vec![
            testkit::rec(&json!({"title": "no id"})),
            testkit::rec(&json!({"id": "7.0", "title": "seven"})),
        ];
        assert_eq!(
            str_field(find(&records, 7).unwrap(), "title"),
            Some("seven")
        );
        assert!(find(&records, 8).is_none());
    }

    #[test]
    fn long_listings_are_cut_and_say_so() {
        let items: Vec<Value> = (0..60).map(Value::from).collect();
        let l = listing("things", items);
        assert_eq!(l["things"].as_array().unwrap().len(), MAX_LIST_ITEMS);
        assert_eq!(l["count"], 60);
        assert!(l["note"].as_str().unwrap().contains("first 50 of 60"));
        assert!(!listing("things", vec![json!(1)]).contains_key("note"));
    }

    #[test]
    fn write_results_name_the_action_table_and_row() {
        let out = delete("notes", 4);
        assert_eq!(
            out.result,
            json!({"prepared": "delete_record", "table": "notes", "id": 4})
        );
        let a = parse(TOOLS, "edit", r#"{"thing_id": 2, "title": "T"}"#).unwrap();
        let out = a.create("things", &[("mood", json!("up")), ("title", json!("X"))]);
        assert_eq!(
            out.result,
            json!({"prepared": "create_record", "table": "things"})
        );
        assert_eq!(
            out.actions[0].data.as_ref().unwrap(),
            &testkit::rec(&json!({"thing_id": 2, "title": "T", "mood": "up"}))
        );
    }
}
