//! Agent declarations in plugin manifests, and their part of the submission checklist.
//!
//! A manifest may declare up to [`MAX_AGENTS`] chat agents (`agents`), each
//! `{name, description, instructions, tools}`. The server runs them like its own agents (see
//! [`crate::chat::plugin_agent`]), but a plugin never runs code on the server: a call of one of
//! its tools becomes a `call_agent` action that the desktop app executes with the installed
//! package, unless the tool is answered from the request's context (`returns: "context"`).
//!
//! | field                        | rule                                                        |
//! |------------------------------|-------------------------------------------------------------|
//! | `agents`                     | at most [`MAX_AGENTS`]                                      |
//! | `agents[i].name`             | `[a-z][a-z0-9_]{0,31}`, unique in the plugin; routed as `plugin.<plugin id>.<name>` |
//! | `agents[i].description`      | trimmed, 1–[`MAX_AGENT_DESCRIPTION_CHARS`] characters, one line (it is a line of the router's agent list) |
//! | `agents[i].instructions`     | trimmed, 1–[`MAX_INSTRUCTIONS_CHARS`] characters, line feeds and tabs allowed |
//! | `agents[i].tools`            | at most [`MAX_TOOLS`]                                       |
//! | `…tools[j].name`             | `[a-z][a-z0-9_]{0,31}`, unique in the agent                 |
//! | `…tools[j].description`      | trimmed, 1–[`MAX_TOOL_DESCRIPTION_CHARS`] characters, line feeds and tabs allowed |
//! | `…tools[j].parameters`       | an object schema of the subset in [`super::schema`]        |
//! | `…tools[j].returns`          | absent (the app runs the tool) or `"context"`               |
//! | `…tools[j].context`          | for `returns: "context"` only, and then required: `tasks`, `projects`, `notes` or `checkpoints` |
//! | `…tools[j].permissions`      | each one of [`Permission`], once, and each among the manifest's `permissions` |
//!
//! **Permissions cover what the tools touch.** Every tool declares, in its own `permissions`,
//! what it touches when it runs, and the rule has two parts that an author and a reviewer can
//! both check by reading the manifest:
//! 1. every permission a tool declares must also be requested by the manifest (`permissions`):
//!    a plugin cannot hand a tool more than the user granted at install;
//! 2. a context tool reads one list of the request's context, so it must declare that list's
//!    read permission (`context: "notes"` needs `notes:read`).
//!
//! The desktop app enforces the other half: it runs a tool of a `call_agent` action with the
//! permissions that tool declares and no others, so an app tool that declares none can touch no
//! data. Reviewers judge whether a tool's description and declared permissions agree.
//!
//! **Texts that reach the model** (descriptions, instructions, schema descriptions and `enum`
//! strings) pass the blob rule of [`check_text`] and [`check_prompt_text`]: no chat-template
//! control tokens, none of the sanitizer's [`BUILTIN_MARKERS`](crate::chat::sanitize::BUILTIN_MARKERS), no sentence of the built-in
//! prompts (the sanitizer would strip them from answers), and not the markers that delimit a
//! plugin's instructions in its agent's prompt.
//!
//! `instructions` are server-side like the built-in prompts: the catalog never shows them, only
//! the review queue (to admins); the sanitizer fingerprints them once the agent runs.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::manifest::{check_text, Permission};
use super::schema::ParamSchema;
use crate::api::{AgentDeclarationInfo, PluginAgentInfo, PluginToolInfo, ToolDeclarationInfo};
use crate::chat::orchestrator::prompt_corpus;
use crate::chat::plans::PromptTemplateRegistry;
use crate::chat::plugin_agent::{self, INSTRUCTIONS_BEGIN, INSTRUCTIONS_END};
use crate::chat::registry::AgentRegistry;
use crate::chat::sanitize::{fingerprints_of, Sanitizer};
use crate::error::FieldError;

/// Most agents one plugin declares.
pub const MAX_AGENTS: usize = 3;
/// Most tools one agent declares.
pub const MAX_TOOLS: usize = 16;
/// Longest agent or tool name (characters).
pub const MAX_DECLARED_NAME_CHARS: usize = 32;
/// Longest agent description (characters).
pub const MAX_AGENT_DESCRIPTION_CHARS: usize = 200;
/// Longest agent instructions (characters).
pub const MAX_INSTRUCTIONS_CHARS: usize = 4_000;
/// Longest tool description (characters).
pub const MAX_TOOL_DESCRIPTION_CHARS: usize = 1_000;

/// An agent as submitted in a manifest. Unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentSubmission {
    /// `[a-z][a-z0-9_]{0,31}`, unique in the plugin; routed as `plugin.<plugin id>.<name>`.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^[a-z][a-z0-9_]{0,31}$", example = "digest")
    )]
    pub name: String,
    /// One line for the router: what the agent is for (1–200 characters).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub description: String,
    /// The agent's system-prompt instructions, 1–4000 characters (line feeds and tabs
    /// allowed). Server-side: shown to the author and reviewers only.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 4000))]
    pub instructions: String,
    /// Its tools, at most 16.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 16))]
    pub tools: Vec<ToolSubmission>,
}

/// A tool as submitted in an agent declaration. Unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ToolSubmission {
    /// `[a-z][a-z0-9_]{0,31}`, unique in the agent.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^[a-z][a-z0-9_]{0,31}$", example = "summarise_week")
    )]
    pub name: String,
    /// What the tool does, for the model (1–1000 characters).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 1000))]
    pub description: String,
    /// JSON Schema of the arguments: an `object` schema of the documented subset (types
    /// object/string/integer/number/boolean/array, `enum`, depth ≤ 3, no `$ref`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parameters: Value,
    /// Absent: the app runs the tool (a `call_agent` action). `context`: the server answers it
    /// from the request's context list named by `context`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = "^context$", nullable = false))]
    pub returns: Option<String>,
    /// For `returns: "context"`: `tasks`, `projects`, `notes` or `checkpoints`.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^(tasks|projects|notes|checkpoints)$", nullable = false)
    )]
    pub context: Option<String>,
    /// What the tool touches when it runs, each also among the manifest's `permissions`; a
    /// context tool declares its list's read permission.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 10))]
    pub permissions: Vec<String>,
}

/// A list of the request's [`crate::api::ChatContext`] that a context tool answers from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextList {
    /// `context.recent_tasks`.
    Tasks,
    /// `context.projects`.
    Projects,
    /// `context.notes`.
    Notes,
    /// `context.checkpoints`.
    Checkpoints,
}

impl ContextList {
    /// Every list.
    pub const ALL: [Self; 4] = [Self::Tasks, Self::Projects, Self::Notes, Self::Checkpoints];

    /// The manifest name (`tasks`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tasks => "tasks",
            Self::Projects => "projects",
            Self::Notes => "notes",
            Self::Checkpoints => "checkpoints",
        }
    }

    /// The list with this manifest name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == raw)
    }

    /// The permission reading the list needs.
    pub fn read_permission(self) -> Permission {
        match self {
            Self::Tasks => Permission::TasksRead,
            Self::Projects => Permission::ProjectsRead,
            Self::Notes => Permission::NotesRead,
            Self::Checkpoints => Permission::CheckpointsRead,
        }
    }
}

/// Who answers a tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolAnswer {
    /// The desktop app, running the installed package: the call becomes a `call_agent` action.
    App,
    /// The server, from this list of the request's context.
    Context(ContextList),
}

/// A checked tool declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredTool", into = "StoredTool")]
pub struct ToolDeclaration {
    /// Name, unique in its agent.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// Its arguments (an object schema).
    pub parameters: ParamSchema,
    /// Who answers it.
    pub answer: ToolAnswer,
    /// What it touches, in canonical order.
    pub permissions: Vec<Permission>,
}

/// A tool declaration as stored: the submission's shape, so a stored manifest passes the
/// checklist again.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredTool {
    name: String,
    description: String,
    parameters: ParamSchema,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    returns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    context: Option<ContextList>,
    #[serde(default)]
    permissions: Vec<Permission>,
}

const RETURNS_CONTEXT: &str = "context";

impl From<ToolDeclaration> for StoredTool {
    fn from(t: ToolDeclaration) -> Self {
        let (returns, context) = match t.answer {
            ToolAnswer::App => (None, None),
            ToolAnswer::Context(list) => (Some(RETURNS_CONTEXT.to_owned()), Some(list)),
        };
        Self {
            name: t.name,
            description: t.description,
            parameters: t.parameters,
            returns,
            context,
            permissions: t.permissions,
        }
    }
}

impl TryFrom<StoredTool> for ToolDeclaration {
    type Error = String;
    fn try_from(t: StoredTool) -> Result<Self, String> {
        let answer = match (t.returns.as_deref(), t.context) {
            (None, None) => ToolAnswer::App,
            (Some(RETURNS_CONTEXT), Some(list)) => ToolAnswer::Context(list),
            _ => return Err(format!("tool {}: returns and context disagree", t.name)),
        };
        Ok(Self {
            name: t.name,
            description: t.description,
            parameters: t.parameters,
            answer,
            permissions: t.permissions,
        })
    }
}

/// A checked agent declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentDeclaration {
    /// Name, unique in its plugin (`[a-z][a-z0-9_]{0,31}`).
    pub name: String,
    /// One line for the router.
    pub description: String,
    /// System-prompt instructions (server-side).
    pub instructions: String,
    /// Tools.
    #[serde(default)]
    pub tools: Vec<ToolDeclaration>,
}

impl AgentDeclaration {
    /// The name the agent is routed and shown by: `plugin.<plugin id>.<name>`.
    pub fn qualified_name(&self, plugin_id: uuid::Uuid) -> String {
        qualified_name(plugin_id, &self.name)
    }

    /// What the catalog shows of the agent: no instructions, no tool descriptions or schemas.
    pub fn catalog_info(&self, plugin_id: uuid::Uuid) -> PluginAgentInfo {
        PluginAgentInfo {
            agent: self.qualified_name(plugin_id),
            name: self.name.clone(),
            description: self.description.clone(),
            tools: self
                .tools
                .iter()
                .map(|t| {
                    let (returns, context) = t.answer.names();
                    PluginToolInfo {
                        name: t.name.clone(),
                        permissions: permission_names(&t.permissions),
                        returns,
                        context,
                    }
                })
                .collect(),
        }
    }

    /// The whole declaration, for reviewers.
    pub fn review_info(&self, plugin_id: uuid::Uuid) -> AgentDeclarationInfo {
        AgentDeclarationInfo {
            agent: self.qualified_name(plugin_id),
            name: self.name.clone(),
            description: self.description.clone(),
            instructions: self.instructions.clone(),
            tools: self
                .tools
                .iter()
                .map(|t| {
                    let (returns, context) = t.answer.names();
                    ToolDeclarationInfo {
                        name: t.name.clone(),
                        description: t.description.clone(),
                        parameters: t.parameters.to_json(),
                        permissions: permission_names(&t.permissions),
                        returns,
                        context,
                    }
                })
                .collect(),
        }
    }
}

impl ToolAnswer {
    /// The declared `returns` and `context`.
    pub fn names(self) -> (Option<String>, Option<String>) {
        match self {
            Self::App => (None, None),
            Self::Context(list) => (
                Some(RETURNS_CONTEXT.to_owned()),
                Some(list.as_str().to_owned()),
            ),
        }
    }
}

fn permission_names(permissions: &[Permission]) -> Vec<String> {
    permissions.iter().map(|p| p.as_str().to_owned()).collect()
}

/// `plugin.<plugin id>.<name>` (the id hyphenated, lowercase).
pub fn qualified_name(plugin_id: uuid::Uuid, name: &str) -> String {
    format!("plugin.{}.{name}", plugin_id.hyphenated())
}

/// Whether `name` is a valid agent or tool name: `[a-z][a-z0-9_]{0,31}`.
pub fn is_declared_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= MAX_DECLARED_NAME_CHARS
}

/// Chat-template control tokens refused in model-facing texts besides `<|…|>` (ChatML, Llama
/// 3, Phi), which is matched as a pattern. Compared ASCII-case-insensitively.
const TEMPLATE_TOKENS: &[&str] = &[
    "[inst]",
    "[/inst]",
    "<<sys>>",
    "<</sys>>",
    "<s>",
    "</s>",
    "<start_of_turn>",
    "<end_of_turn>",
];

/// Whether `lower` (ASCII-lowercased) holds a `<|name|>` token.
fn has_pipe_token(lower: &str) -> bool {
    let mut rest = lower;
    while let Some(at) = rest.find("<|") {
        let after = &rest[at + 2..];
        let name = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if after[name..].starts_with("|>") {
            return true;
        }
        rest = after;
    }
    false
}

/// Lowercase, whitespace runs collapsed to one space.
fn squash(raw: &str) -> String {
    raw.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase()
}

/// The sanitizer's markers alone.
fn markers() -> &'static Sanitizer {
    static MARKERS: OnceLock<Sanitizer> = OnceLock::new();
    MARKERS.get_or_init(|| Sanitizer::new(std::iter::empty::<&str>()))
}

/// The built-in prompts' fingerprints (the shared sanitizer's corpus) and those of the frame
/// around plugin instructions.
fn builtin_prompts() -> &'static Sanitizer {
    static PROMPTS: OnceLock<Sanitizer> = OnceLock::new();
    PROMPTS.get_or_init(|| {
        let mut corpus = prompt_corpus(
            &AgentRegistry::standard(),
            &PromptTemplateRegistry::standard(),
        );
        corpus.extend(plugin_agent::FRAME.iter().flat_map(|f| fingerprints_of(f)));
        Sanitizer::new(corpus)
    })
}

/// Checks a text that reaches the model (see the module docs): no chat-template control
/// tokens, no plugin-instruction markers, none of the sanitizer's
/// [`BUILTIN_MARKERS`](crate::chat::sanitize::BUILTIN_MARKERS) and no
/// sentence of the built-in prompts, matched as the sanitizer matches (ASCII case and
/// whitespace ignored).
///
/// # Errors
/// A [`FieldError`] on `field` saying which rule the text breaks (never quoting it).
pub fn check_prompt_text(raw: &str, field: &str) -> Result<(), FieldError> {
    let lower = squash(raw);
    if has_pipe_token(&lower) || TEMPLATE_TOKENS.iter().any(|t| lower.contains(t)) {
        return Err(FieldError::new(
            field,
            "must not contain chat-template control tokens",
        ));
    }
    if [INSTRUCTIONS_BEGIN, INSTRUCTIONS_END]
        .iter()
        .any(|m| lower.contains(&squash(m.trim_matches('-'))))
    {
        return Err(FieldError::new(
            field,
            "must not contain the markers that delimit plugin instructions",
        ));
    }
    if markers().clean(raw).removed > 0 {
        return Err(FieldError::new(
            field,
            "must not contain markers of tool schemas, echoed messages or routing, which the \
             response sanitizer removes",
        ));
    }
    if builtin_prompts().clean(raw).removed > 0 {
        return Err(FieldError::new(
            field,
            "must not quote the assistant's built-in prompts, which the response sanitizer \
             removes",
        ));
    }
    Ok(())
}

/// A trimmed, bounded, blob- and prompt-safe text (`None` after pushing its error).
fn model_text(
    raw: &str,
    field: &str,
    max: usize,
    allow_newlines: bool,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let trimmed = raw.trim();
    let len = trimmed.chars().count();
    if len == 0 || len > max {
        errors.push(FieldError::new(
            field,
            format!("must be 1-{max} characters"),
        ));
        return None;
    }
    match check_text(trimmed, field, allow_newlines)
        .and_then(|()| check_prompt_text(trimmed, field))
    {
        Ok(()) => Some(trimmed.to_owned()),
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

fn declared_name(raw: &str, field: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    if is_declared_name(raw) {
        Some(raw.to_owned())
    } else {
        errors.push(FieldError::new(field, "must match [a-z][a-z0-9_]{0,31}"));
        None
    }
}

/// Checks a tool's own permissions: known, once each, granted by the manifest.
fn tool_permissions(
    raw: &[String],
    granted: &[Permission],
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<Permission>> {
    let mut out: Vec<Permission> = Vec::with_capacity(raw.len());
    let mut ok = true;
    for (k, name) in raw.iter().enumerate() {
        let field = format!("{path}.permissions[{k}]");
        match Permission::parse(name) {
            None => {
                let allowed: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
                errors.push(FieldError::new(
                    field,
                    format!("must be one of {}", allowed.join(", ")),
                ));
                ok = false;
            }
            Some(p) if out.contains(&p) => {
                errors.push(FieldError::new(field, "repeats an earlier permission"));
                ok = false;
            }
            Some(p) if !granted.contains(&p) => {
                errors.push(FieldError::new(
                    field,
                    format!(
                        "`{}` is not among the manifest's permissions; request it there too",
                        p.as_str()
                    ),
                ));
                ok = false;
            }
            Some(p) => out.push(p),
        }
    }
    out.sort_unstable();
    ok.then_some(out)
}

fn tool(
    raw: &ToolSubmission,
    granted: &[Permission],
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<ToolDeclaration> {
    let before = errors.len();
    let name = declared_name(&raw.name, &format!("{path}.name"), errors);
    let description = model_text(
        &raw.description,
        &format!("{path}.description"),
        MAX_TOOL_DESCRIPTION_CHARS,
        true,
        errors,
    );
    let parameters =
        ParamSchema::parse_parameters(&raw.parameters, &format!("{path}.parameters"), errors);
    let permissions = tool_permissions(&raw.permissions, granted, path, errors);
    let answer = match (raw.returns.as_deref(), raw.context.as_deref()) {
        (None, None) => Some(ToolAnswer::App),
        (None, Some(_)) => {
            errors.push(FieldError::new(
                format!("{path}.context"),
                "only for tools with returns: \"context\"",
            ));
            None
        }
        (Some(RETURNS_CONTEXT), None) => {
            errors.push(FieldError::new(
                format!("{path}.context"),
                "required with returns: \"context\": tasks, projects, notes or checkpoints",
            ));
            None
        }
        (Some(RETURNS_CONTEXT), Some(list)) => {
            if let Some(list) = ContextList::parse(list) {
                Some(ToolAnswer::Context(list))
            } else {
                errors.push(FieldError::new(
                    format!("{path}.context"),
                    "must be one of tasks, projects, notes, checkpoints",
                ));
                None
            }
        }
        (Some(_), _) => {
            errors.push(FieldError::new(
                format!("{path}.returns"),
                "must be \"context\" or left out (the app runs the tool)",
            ));
            None
        }
    };
    if let (Some(ToolAnswer::Context(list)), Some(perms)) = (answer, &permissions) {
        let needed = list.read_permission();
        if !perms.contains(&needed) {
            errors.push(FieldError::new(
                format!("{path}.permissions"),
                format!(
                    "a tool answered from context.{} must declare {}",
                    list.as_str(),
                    needed.as_str()
                ),
            ));
        }
    }
    if let (Some(ToolAnswer::Context(_)), Some(p)) = (answer, &parameters) {
        for (prop, schema) in p.properties() {
            if !schema.kind.is_scalar() {
                errors.push(FieldError::new(
                    format!("{path}.parameters.properties.{prop}.type"),
                    "a context tool's arguments filter records: use string, integer, number \
                     or boolean",
                ));
            }
        }
    }
    match (name, description, parameters, answer, permissions) {
        (Some(name), Some(description), Some(parameters), Some(answer), Some(permissions))
            if errors.len() == before =>
        {
            Some(ToolDeclaration {
                name,
                description,
                parameters,
                answer,
                permissions,
            })
        }
        _ => None,
    }
}

fn agent(
    raw: &AgentSubmission,
    granted: &[Permission],
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<AgentDeclaration> {
    let before = errors.len();
    let name = declared_name(&raw.name, &format!("{path}.name"), errors);
    let description = model_text(
        &raw.description,
        &format!("{path}.description"),
        MAX_AGENT_DESCRIPTION_CHARS,
        false,
        errors,
    );
    let instructions = model_text(
        &raw.instructions,
        &format!("{path}.instructions"),
        MAX_INSTRUCTIONS_CHARS,
        true,
        errors,
    );
    let mut tools = Vec::new();
    if raw.tools.len() > MAX_TOOLS {
        errors.push(FieldError::new(
            format!("{path}.tools"),
            format!("at most {MAX_TOOLS} tools"),
        ));
    } else {
        for (j, t) in raw.tools.iter().enumerate() {
            let tool_path = format!("{path}.tools[{j}]");
            if let Some(first) = raw.tools[..j].iter().position(|o| o.name == t.name) {
                if is_declared_name(&t.name) {
                    errors.push(FieldError::new(
                        format!("{tool_path}.name"),
                        format!("duplicates {path}.tools[{first}].name"),
                    ));
                }
            }
            if let Some(t) = tool(t, granted, &tool_path, errors) {
                tools.push(t);
            }
        }
    }
    match (name, description, instructions) {
        (Some(name), Some(description), Some(instructions)) if errors.len() == before => {
            Some(AgentDeclaration {
                name,
                description,
                instructions,
                tools,
            })
        }
        _ => None,
    }
}

/// Runs the agent part of the checklist over `raw` (the manifest's `agents`), given the
/// manifest's checked permissions; pushes every problem onto `errors` with its path
/// (`agents[0].tools[2].parameters.properties.x.type`).
pub fn parse_agents(
    raw: &[AgentSubmission],
    granted: &[Permission],
    errors: &mut Vec<FieldError>,
) -> Vec<AgentDeclaration> {
    if raw.len() > MAX_AGENTS {
        errors.push(FieldError::new(
            "agents",
            format!("at most {MAX_AGENTS} agents"),
        ));
        return Vec::new();
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, a) in raw.iter().enumerate() {
        let path = format!("agents[{i}]");
        if let Some(first) = raw[..i].iter().position(|o| o.name == a.name) {
            if is_declared_name(&a.name) {
                errors.push(FieldError::new(
                    format!("{path}.name"),
                    format!("duplicates agents[{first}].name"),
                ));
            }
        }
        if let Some(a) = agent(a, granted, &path, errors) {
            out.push(a);
        }
    }
    out
}

#[cfg(test)]
mod tests;
