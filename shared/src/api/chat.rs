//! Chat and plan bodies (plan Step 2, DESIGN "How chat works without server-side user data").
//!
//! The context is whatever the desktop app chose to send for this one request; it is used to
//! answer and then dropped. Its records are loose JSON objects (the app's own rows, integer ids)
//! because the app owns their shape; tools read the fields they know and ignore the rest.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::{check_model_name, check_provider_name};
use crate::error::{AppError, FieldError};

/// Longest accepted message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 8_000;
/// Most context items accepted per list (tasks, projects, notes, checkpoints, documents).
pub const MAX_CONTEXT_ITEMS: usize = 500;
/// Most conversation turns accepted (older ones are the client's to drop).
pub const MAX_HISTORY_TURNS: usize = 50;

/// One JSON object from the app's local database (a task, a note, …).
pub type ContextRecord = Map<String, Value>;

/// `POST /chat` and the first WebSocket frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    /// What the user said: 1–8000 characters, not only spaces, tabs and line breaks.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 8000, pattern = r"[^\t\n\v\f\r ]")
    )]
    pub message: String,
    /// What the app lets the assistant see for this request.
    #[serde(default)]
    pub context: ChatContext,
    /// `direct` (answer now) or `plan` (return an execution plan of template ids).
    #[serde(default)]
    pub execution_mode: ExecutionMode,
    /// The LLM provider to answer with, one of `GET /providers` (free tier: the default only);
    /// absent or `null`: the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 32, pattern = r"^[a-z0-9_-]{1,32}$")
    )]
    pub provider: Option<String>,
    /// The model, one of the provider's `models` in `GET /providers`; absent or `null`: the
    /// provider's `default_model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 128,
            pattern = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$"
        )
    )]
    pub model: Option<String>,
}

/// The request's context: the only user data the agents ever see.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChatContext {
    /// Free-form profile facts (name, locale, `utc_offset_minutes`, …).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub user_profile: ContextRecord,
    /// Snippets the app retrieved for this message.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 500))]
    pub relevant_documents: Vec<String>,
    /// The app's tasks (`id`, `title`, `status`, `priority`, `due_date`, `project_id`, …).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>, max_items = 500))]
    pub recent_tasks: Vec<ContextRecord>,
    /// Earlier turns: `{"role": "user"|"assistant", "content": "…"}`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>, max_items = 50))]
    pub conversation_history: Vec<ContextRecord>,
    /// The app's projects, when it sends them (`null` or absent: not shared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>, max_items = 500))]
    pub projects: Option<Vec<ContextRecord>>,
    /// The app's notes, when it sends them (`null` or absent: not shared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>, max_items = 500))]
    pub notes: Option<Vec<ContextRecord>>,
    /// The app's checkpoints (milestones), when it sends them (`null` or absent: not shared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>, max_items = 500))]
    pub checkpoints: Option<Vec<ContextRecord>>,
}

/// How the orchestrator answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExecutionMode {
    /// Route to the agents and answer.
    #[default]
    Direct,
    /// Return an execution plan (template ids, never prompt text).
    Plan,
}

impl ChatRequest {
    /// Checks the limits the type cannot express.
    ///
    /// # Errors
    /// 422 naming every field out of bounds.
    pub fn validate(&self) -> Result<(), AppError> {
        let mut errors = Vec::new();
        let chars = self.message.chars().count();
        // Exactly the contract's pattern (ASCII blanks only), so client-side schema validation
        // and the server agree on every string.
        if self
            .message
            .chars()
            .all(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'))
        {
            errors.push(FieldError::new("message", "must not be blank"));
        } else if chars > MAX_MESSAGE_CHARS {
            errors.push(FieldError::new(
                "message",
                format!("at most {MAX_MESSAGE_CHARS} characters"),
            ));
        }
        let c = &self.context;
        let lists = [
            ("context.relevant_documents", c.relevant_documents.len()),
            ("context.recent_tasks", c.recent_tasks.len()),
            ("context.projects", c.projects.as_ref().map_or(0, Vec::len)),
            ("context.notes", c.notes.as_ref().map_or(0, Vec::len)),
            (
                "context.checkpoints",
                c.checkpoints.as_ref().map_or(0, Vec::len),
            ),
        ];
        for (field, len) in lists {
            if len > MAX_CONTEXT_ITEMS {
                errors.push(FieldError::new(
                    field,
                    format!("at most {MAX_CONTEXT_ITEMS} items"),
                ));
            }
        }
        if let Some(reason) = self
            .provider
            .as_deref()
            .and_then(|p| check_provider_name(p).err())
        {
            errors.push(FieldError::new("provider", reason));
        }
        if let Some(reason) = self
            .model
            .as_deref()
            .and_then(|m| check_model_name(m).err())
        {
            errors.push(FieldError::new("model", reason));
        }
        if c.conversation_history.len() > MAX_HISTORY_TURNS {
            errors.push(FieldError::new(
                "context.conversation_history",
                format!("at most {MAX_HISTORY_TURNS} turns"),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(errors))
        }
    }
}

/// The answer in `direct` mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatResponse {
    /// The assistant's reply (sanitized).
    pub response: String,
    /// Changes for the app to apply to its local database, in order.
    pub actions: Vec<PlanAction>,
}

/// What a [`PlanAction`] asks the app to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PlanActionType {
    /// Insert `data` into `table`.
    CreateRecord,
    /// Update the row `data.id` of `table` with the other fields of `data`.
    UpdateRecord,
    /// Delete the row `data.id` of `table`.
    DeleteRecord,
    /// Embed a row and upsert it into the app's vector store: `data` is `{table, id}` for a
    /// row that exists, or `{table, client_ref}` for the row(s) a `create_record` of the same
    /// response inserts with that `client_ref`.
    IndexDocument,
    /// Show a notification: `data` is `{title, body, at}` (`at` in epoch ms, in the future).
    SendNotification,
    /// Hand over to `agent`. For a plugin agent's tool (`agent` is `plugin.<id>.<name>`),
    /// `data` is `{tool, arguments}`: the app runs that tool of the installed package with the
    /// arguments (already checked against the tool's declared schema).
    CallAgent,
}

/// A change for the app to apply locally: agents never write anything server-side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanAction {
    /// What to do.
    #[serde(rename = "type")]
    pub kind: PlanActionType,
    /// The app's table (`tasks`, `comments`, `projects`, `notes`, `checkpoints`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub table: Option<String>,
    /// The row's fields (for updates and deletes, `id` names the row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>, nullable = false))]
    pub data: Option<ContextRecord>,
    /// For `call_agent`: the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub agent: Option<String>,
    /// On a `create_record` whose row a later action of the same response refers to (an
    /// `index_document` with `data.client_ref`): the app remembers the local id it assigns to
    /// the inserted row under this reference. Derived from the row's table and fields, so two
    /// identical rows share it (and a later action then means both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub client_ref: Option<String>,
}

impl PlanAction {
    /// A `create_record` of `data` into `table`.
    pub fn create(table: &str, data: ContextRecord) -> Self {
        Self::record(PlanActionType::CreateRecord, table, data)
    }
    /// An `update_record` of `table` (`data` holds `id` and the changed fields).
    pub fn update(table: &str, data: ContextRecord) -> Self {
        Self::record(PlanActionType::UpdateRecord, table, data)
    }
    /// A `delete_record` of the row `id` of `table`.
    pub fn delete(table: &str, id: i64) -> Self {
        let mut data = ContextRecord::new();
        data.insert("id".to_owned(), Value::from(id));
        Self::record(PlanActionType::DeleteRecord, table, data)
    }
    /// An `index_document` of the row `id` of `table` (`data: {table, id}`).
    pub fn index(table: &str, id: i64) -> Self {
        let mut data = ContextRecord::new();
        data.insert("table".to_owned(), Value::from(table));
        data.insert("id".to_owned(), Value::from(id));
        Self::record(PlanActionType::IndexDocument, table, data)
    }
    /// An `index_document` of the row(s) the `create_record` actions carrying `client_ref`
    /// insert into `table` (`data: {table, client_ref}`).
    pub fn index_created(table: &str, client_ref: &str) -> Self {
        let mut data = ContextRecord::new();
        data.insert("table".to_owned(), Value::from(table));
        data.insert("client_ref".to_owned(), Value::from(client_ref));
        Self::record(PlanActionType::IndexDocument, table, data)
    }
    /// A `send_notification` (`data: {title, body, at}`).
    pub fn notification(title: &str, body: &str, at: i64) -> Self {
        let mut data = ContextRecord::new();
        data.insert("title".to_owned(), Value::from(title));
        data.insert("body".to_owned(), Value::from(body));
        data.insert("at".to_owned(), Value::from(at));
        Self {
            kind: PlanActionType::SendNotification,
            table: None,
            data: Some(data),
            agent: None,
            client_ref: None,
        }
    }
    /// A `call_agent` of `agent` with `data`.
    pub fn call_agent(agent: &str, data: ContextRecord) -> Self {
        Self {
            kind: PlanActionType::CallAgent,
            table: None,
            data: Some(data),
            agent: Some(agent.to_owned()),
            client_ref: None,
        }
    }
    fn record(kind: PlanActionType, table: &str, data: ContextRecord) -> Self {
        Self {
            kind,
            table: Some(table.to_owned()),
            data: Some(data),
            agent: None,
            client_ref: None,
        }
    }
}

/// An execution plan: steps naming server-side templates, never their text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecutionPlan {
    /// The plan's id, for `POST /plans/run-step`.
    pub id: String,
    /// The agent the plan is for.
    pub agent: String,
    /// The steps, in order.
    pub steps: Vec<PlanStep>,
}

/// One step of an [`ExecutionPlan`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanStep {
    /// `llm` (run with `POST /plans/run-step`) or a data action the app performs
    /// (`create_record`, …) with the output of `data_from_step`.
    pub action: String,
    /// The server-side template's id (for `llm` steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub prompt_template: Option<String>,
    /// Variables: values known now, or `null` for those the app fills in when it runs the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>, nullable = false))]
    pub variables: Option<Map<String, Value>>,
    /// The earlier step whose output this step consumes (a whole number; `2.0` is 2, as JSON
    /// Schema's `integer` allows, for custom batch steps a client sends).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::input::opt_integral_u32"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false, minimum = 0))]
    pub data_from_step: Option<u32>,
}

/// A pre-built plan for a common job (the orchestrator's catalogue entry). The API serves it
/// as a [`PlaybookPlan`]: the plan itself, with the catalogue fields beside its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Playbook {
    /// Stable id (also the plan's id).
    pub id: String,
    /// Human name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// The lowest tier that may run it.
    pub min_tier: crate::domain::Tier,
    /// The plan.
    pub plan: ExecutionPlan,
}

/// What `GET /plans/playbook` lists (as an array) and `GET /plans/playbook/{id}` answers: an
/// `ExecutionPlan` (`id`, `agent`, `steps`, exactly the plan's contract) that also carries
/// the playbook's `name`, `description` and `min_tier`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlaybookPlan {
    /// The plan: `id` (the playbook's stable id, for `POST /plans/run-step`), `agent`, `steps`.
    #[serde(flatten)]
    pub plan: ExecutionPlan,
    /// Human name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// The lowest tier that may run it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "free"))]
    pub min_tier: crate::domain::Tier,
}

impl From<Playbook> for PlaybookPlan {
    fn from(book: Playbook) -> Self {
        debug_assert_eq!(book.id, book.plan.id, "a playbook's id is its plan's id");
        Self {
            plan: book.plan,
            name: book.name,
            description: book.description,
            min_tier: book.min_tier,
        }
    }
}

/// `POST /plans/run-step`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RunStepRequest {
    /// The plan (a playbook id or the id of a plan `POST /chat` returned).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub plan_id: String,
    /// The step to run (an `llm` step).
    #[serde(deserialize_with = "crate::input::integral_u32")]
    #[cfg_attr(feature = "openapi", schema(value_type = u32, minimum = 0))]
    pub step_index: u32,
    /// The template's variables (strings).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub variables: Map<String, Value>,
    /// The LLM provider to run the step with, as in `ChatRequest.provider`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 32, pattern = r"^[a-z0-9_-]{1,32}$")
    )]
    pub provider: Option<String>,
    /// The model, as in `ChatRequest.model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 128,
            pattern = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$"
        )
    )]
    pub model: Option<String>,
}

impl RunStepRequest {
    /// Checks the provider and model names (their existence is the provider registry's).
    ///
    /// # Errors
    /// 422 naming `provider` or `model`.
    pub fn validate(&self) -> Result<(), AppError> {
        let mut errors = Vec::new();
        if let Some(reason) = self
            .provider
            .as_deref()
            .and_then(|p| check_provider_name(p).err())
        {
            errors.push(FieldError::new("provider", reason));
        }
        if let Some(reason) = self
            .model
            .as_deref()
            .and_then(|m| check_model_name(m).err())
        {
            errors.push(FieldError::new("model", reason));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(errors))
        }
    }
}

/// The answer of `POST /plans/run-step`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunStepResponse {
    /// The step's output (sanitized).
    pub output: String,
    /// Changes for the app to apply, when the step's agent made any.
    pub actions: Vec<PlanAction>,
}

#[cfg(test)]
mod playbook_tests {
    use super::*;
    use crate::domain::Tier;

    #[test]
    fn a_playbook_is_served_as_a_flat_execution_plan_with_its_catalogue_fields() {
        let book = Playbook {
            id: "create_task_from_email".into(),
            name: "Create task from email".into(),
            description: "Turns an email into a task.".into(),
            min_tier: Tier::Pro,
            plan: ExecutionPlan {
                id: "create_task_from_email".into(),
                agent: "task_agent".into(),
                steps: vec![PlanStep {
                    action: "llm".into(),
                    prompt_template: Some("email.extract_task".into()),
                    variables: None,
                    data_from_step: None,
                }],
            },
        };
        let wire = serde_json::to_value(PlaybookPlan::from(book.clone())).unwrap();
        assert_eq!(
            wire,
            serde_json::json!({
                "id": "create_task_from_email", "agent": "task_agent",
                "steps": [{"action": "llm", "prompt_template": "email.extract_task"}],
                "name": "Create task from email", "description": "Turns an email into a task.",
                "min_tier": "pro"
            })
        );
        // Any ExecutionPlan reader reads it, and it reads back whole.
        let plan: ExecutionPlan = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(plan, book.plan);
        let back: PlaybookPlan = serde_json::from_value(wire).unwrap();
        assert_eq!(back, PlaybookPlan::from(book));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: serde_json::Value) -> Result<ChatRequest, serde_json::Error> {
        serde_json::from_value(v)
    }

    fn fields(r: &ChatRequest) -> Vec<String> {
        match r.validate() {
            Ok(()) => Vec::new(),
            Err(AppError::Validation(f)) => f.into_iter().map(|f| f.field).collect(),
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn provider_and_model_are_optional_and_null_means_absent() {
        let r = parse(json!({"message": "hi"})).unwrap();
        assert_eq!((r.provider.as_deref(), r.model.as_deref()), (None, None));
        let r = parse(json!({"message": "hi", "provider": null, "model": null})).unwrap();
        assert_eq!((r.provider.as_deref(), r.model.as_deref()), (None, None));
        let r = parse(
            json!({"message": "hi", "provider": "claude", "model": "claude-3-5-haiku-latest"}),
        )
        .unwrap();
        assert_eq!(r.provider.as_deref(), Some("claude"));
        assert_eq!(r.model.as_deref(), Some("claude-3-5-haiku-latest"));
        assert!(fields(&r).is_empty());
        let again = serde_json::to_value(&r).unwrap();
        assert_eq!(again["provider"], "claude");
        let plain = serde_json::to_value(parse(json!({"message": "hi"})).unwrap()).unwrap();
        assert!(plain.get("provider").is_none() && plain.get("model").is_none());
    }

    #[test]
    fn malformed_provider_and_model_names_are_named_in_the_422() {
        let r = parse(json!({
            "message": "hi", "provider": "Open AI", "model": "x".repeat(129),
        }))
        .unwrap();
        assert_eq!(fields(&r), ["provider", "model"]);
        let r = parse(json!({"message": "hi", "provider": "", "model": ""})).unwrap();
        assert_eq!(fields(&r), ["provider", "model"]);
        let r = parse(json!({"message": "hi", "model": "llama3.1:8b"})).unwrap();
        assert!(fields(&r).is_empty());
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_still_refused() {
        assert!(parse(json!({"message": "hi", "providr": "claude"})).is_err());
        assert!(parse(json!({"message": "hi", "provider": 7})).is_err());
        assert!(parse(json!({"message": "hi", "model": ["gpt-4o"]})).is_err());
    }
}
