//! Execution plans (plan Step 5): server-side prompt templates, the plan builder, an LRU plan
//! cache, playbooks, and running one step.
//!
//! A plan names templates by id; their text never leaves the server. Plans made by
//! `POST /chat` in `plan` mode have ids that describe them (`chat.task_agent+note_agent`), so
//! any isolate can rebuild one the cache no longer holds.

use std::num::NonZeroUsize;

use lru::LruCache;
use serde_json::{Map, Value};

use crate::api::{ExecutionPlan, PlanStep, Playbook};
use crate::domain::Tier;
use crate::error::{AppError, FieldError};

/// Plans kept by [`PlanCache`] (the plan's `maxsize`).
pub const PLAN_CACHE_SIZE: usize = 1000;
/// Agents one chat plan (or pipeline) may chain.
pub const MAX_PIPELINE_AGENTS: usize = 3;
/// The step action that runs a template (`POST /plans/run-step`).
pub const LLM_ACTION: &str = "llm";
/// Data actions a step may ask the app to perform with an earlier step's output: an `llm`
/// step's text, or the row a `create_record` step inserted (so an `index_document` step whose
/// `data_from_step` is a `create_record` step indexes the row that step created).
pub const DATA_ACTIONS: &[&str] = &[
    "create_record",
    "update_record",
    "delete_record",
    "index_document",
    "send_notification",
    "call_agent",
];
/// The variable through which a step receives the output of its `data_from_step`.
pub const PREVIOUS_OUTPUT: &str = "previous_output";

/// A variable of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateVar {
    /// Its name (`{name}` in the text).
    pub name: &'static str,
    /// Whether a run must give it.
    pub required: bool,
    /// Its longest accepted value, in characters.
    pub max_chars: usize,
}

const fn var(name: &'static str, required: bool, max_chars: usize) -> TemplateVar {
    TemplateVar {
        name,
        required,
        max_chars,
    }
}

/// A server-side prompt template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptTemplate {
    /// Stable id (what plans carry).
    pub id: &'static str,
    /// The agent whose tools run the rendered prompt; `None`: a plain completion.
    pub agent: Option<&'static str>,
    /// The text, with `{variable}` placeholders.
    pub text: &'static str,
    /// Its variables.
    pub variables: &'static [TemplateVar],
}

const MESSAGE: TemplateVar = var("message", true, crate::api::MAX_MESSAGE_CHARS);
const PREVIOUS: TemplateVar = var(PREVIOUS_OUTPUT, false, 20_000);

/// The product's templates.
pub const TEMPLATES: &[PromptTemplate] = &[
    PromptTemplate {
        id: "agent.task",
        agent: Some("task_agent"),
        text: "Carry out this request about the user's tasks with your tools.\n\
               Request: {message}\nEarlier result to build on: {previous_output}",
        variables: &[MESSAGE, PREVIOUS],
    },
    PromptTemplate {
        id: "agent.checkpoint",
        agent: Some("checkpoint_agent"),
        text: "Carry out this request about project checkpoints with your tools.\n\
               Request: {message}\nEarlier result to build on: {previous_output}",
        variables: &[MESSAGE, PREVIOUS],
    },
    PromptTemplate {
        id: "agent.project",
        agent: Some("project_agent"),
        text: "Carry out this request about the user's projects with your tools.\n\
               Request: {message}\nEarlier result to build on: {previous_output}",
        variables: &[MESSAGE, PREVIOUS],
    },
    PromptTemplate {
        id: "agent.note",
        agent: Some("note_agent"),
        text: "Carry out this request about the user's notes with your tools.\n\
               Request: {message}\nEarlier result to build on: {previous_output}",
        variables: &[MESSAGE, PREVIOUS],
    },
    PromptTemplate {
        id: "synthesize",
        agent: None,
        text: "Combine the results of the previous steps into one clear answer for the user, \
               mentioning every change that was prepared.\nResults: {previous_output}",
        variables: &[var(PREVIOUS_OUTPUT, true, 40_000)],
    },
    PromptTemplate {
        id: "email.extract_task",
        agent: Some("task_agent"),
        text: "The user forwarded an email and wants one task for the action it asks of them. \
               Create the task with a concise title, a description holding the key details, \
               a priority, and a due date only when the email states one.\n\
               Subject: {email_subject}\nBody:\n{email_body}",
        variables: &[
            var("email_subject", false, 500),
            var("email_body", true, 50_000),
        ],
    },
    PromptTemplate {
        id: "report.weekly",
        agent: None,
        text: "Write a weekly report in Markdown for the week ending {week_end}. \
               Group the work into completed, in progress and overdue, name blockers, \
               and end with the three most important priorities for next week.\n\
               The week's tasks as JSON: {tasks}",
        variables: &[var("tasks", true, 100_000), var("week_end", false, 100)],
    },
    PromptTemplate {
        id: "meeting.action_items",
        agent: Some("task_agent"),
        text: "Turn these meeting notes into tasks: one task per concrete action item, \
               assigned to the person named for it, with a due date only when one was agreed. \
               Skip discussion that asks nothing of anyone.\nMeeting notes:\n{notes}",
        variables: &[var("notes", true, 50_000)],
    },
    PromptTemplate {
        id: "project.milestones",
        agent: Some("checkpoint_agent"),
        text: "Propose checkpoints (milestones) for the project with id {project_id}, \
               spread sensibly between now and its deadline {deadline}, each a verifiable \
               outcome rather than an activity.\nThe project's goal: {goal}",
        variables: &[
            var("project_id", true, 20),
            var("goal", true, 5_000),
            var("deadline", false, 100),
        ],
    },
];

/// The template text that runs a plugin agent in a chat plan (one template per plugin agent,
/// id `agent.<agent name>`, added by [`PromptTemplateRegistry::with_plugin_agents`]).
pub const PLUGIN_AGENT_TEMPLATE: &str = "Carry out this request with your tools.\n\
                                         Request: {message}\nEarlier result to build on: \
                                         {previous_output}";

/// The templates, by id (plan Step 5's `PromptTemplateRegistry`). Server-side only.
#[derive(Debug, Clone)]
pub struct PromptTemplateRegistry {
    templates: Vec<PromptTemplate>,
}

impl Default for PromptTemplateRegistry {
    fn default() -> Self {
        Self::standard()
    }
}

impl PromptTemplateRegistry {
    /// The product's templates.
    pub fn standard() -> Self {
        Self {
            templates: TEMPLATES.to_vec(),
        }
    }

    /// The product's templates plus one [`PLUGIN_AGENT_TEMPLATE`] per plugin agent of
    /// `agents` (`agent.<name>`), so chat plans can name plugin agents.
    pub fn with_plugin_agents<'n>(agents: impl IntoIterator<Item = &'n str>) -> Self {
        let mut registry = Self::standard();
        for agent in agents {
            let name = crate::chat::plugin_agent::intern(agent);
            registry.templates.push(PromptTemplate {
                id: crate::chat::plugin_agent::intern(&format!("agent.{agent}")),
                agent: Some(name),
                text: PLUGIN_AGENT_TEMPLATE,
                variables: &[MESSAGE, PREVIOUS],
            });
        }
        registry
    }

    /// The template `id`.
    pub fn get(&self, id: &str) -> Option<&PromptTemplate> {
        self.templates.iter().find(|t| t.id == id)
    }

    /// Every template.
    pub fn iter(&self) -> impl Iterator<Item = &PromptTemplate> {
        self.templates.iter()
    }

    /// The template a chat plan runs agent `agent` with: a built-in agent's own
    /// ([`agent_template`]), or a plugin agent's `agent.<name>`.
    pub fn for_agent(&self, agent: &str) -> Option<&'static str> {
        agent_template(agent).or_else(|| {
            self.templates
                .iter()
                .find(|t| t.agent == Some(agent) && t.text == PLUGIN_AGENT_TEMPLATE)
                .map(|t| t.id)
        })
    }
}

impl PromptTemplate {
    /// The text with `variables` filled in, after checking them: unknown names, missing
    /// required ones and overlong values are refused (422, naming `variables.<name>`).
    /// Strings are inserted as they are; other JSON values as compact JSON. Absent optional
    /// variables render as "(none)".
    pub fn render(&self, variables: &Map<String, Value>) -> Result<String, AppError> {
        let mut errors = Vec::new();
        for name in variables.keys() {
            if !self.variables.iter().any(|v| v.name == name) {
                errors.push(FieldError::new(
                    format!("variables.{name}"),
                    "not a variable of this step",
                ));
            }
        }
        let mut values = Vec::with_capacity(self.variables.len());
        for v in self.variables {
            let value = match variables.get(v.name) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            };
            match value {
                None if v.required => {
                    errors.push(FieldError::new(format!("variables.{}", v.name), "required"));
                }
                Some(s) if s.trim().is_empty() && v.required => errors.push(FieldError::new(
                    format!("variables.{}", v.name),
                    "must not be blank",
                )),
                Some(s) if s.chars().count() > v.max_chars => errors.push(FieldError::new(
                    format!("variables.{}", v.name),
                    format!("at most {} characters", v.max_chars),
                )),
                value => values.push((v.name, value)),
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        Ok(fill(self.text, &values))
    }
}

/// Replaces each `{name}` of `text` once, left to right, so a value containing `{other}` is
/// never expanded again.
fn fill(text: &str, values: &[(&str, Option<String>)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        match values.iter().find(|(n, _)| *n == name) {
            Some((_, Some(v))) => out.push_str(v),
            Some((_, None)) => out.push_str("(none)"),
            None => {
                out.push('{');
                out.push_str(name);
                out.push('}');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Why a plan is invalid (a programming error for built-in plans; checked in tests).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A plan needs at least one step.
    #[error("a plan needs at least one step")]
    Empty,
    /// A step names a template that does not exist.
    #[error("step {step}: unknown template `{template}`")]
    UnknownTemplate {
        /// The step.
        step: usize,
        /// The template id.
        template: String,
    },
    /// A step's action is neither `llm` nor a data action.
    #[error("step {step}: unknown action `{action}`")]
    UnknownAction {
        /// The step.
        step: usize,
        /// The action.
        action: String,
    },
    /// A step consumes itself, a later step or one that does not exist.
    #[error("step {step}: data_from_step {from} must name an earlier step")]
    BadReference {
        /// The step.
        step: usize,
        /// The step it named.
        from: u32,
    },
    /// A step gives a variable its template does not have.
    #[error("step {step}: `{variable}` is not a variable of its template")]
    UnknownVariable {
        /// The step.
        step: usize,
        /// The variable.
        variable: String,
    },
    /// An `llm` step without a template, or a data step without its source.
    #[error("step {step}: {problem}")]
    Incomplete {
        /// The step.
        step: usize,
        /// What is missing.
        problem: &'static str,
    },
}

/// Builds a plan step by step (plan Step 5's `ExecutionPlanBuilder`).
#[derive(Debug, Clone)]
pub struct ExecutionPlanBuilder<'t> {
    templates: &'t PromptTemplateRegistry,
    id: String,
    agent: String,
    steps: Vec<PlanStep>,
}

impl<'t> ExecutionPlanBuilder<'t> {
    /// A plan `id` for `agent`.
    pub fn new(templates: &'t PromptTemplateRegistry, id: &str, agent: &str) -> Self {
        Self {
            templates,
            id: id.to_owned(),
            agent: agent.to_owned(),
            steps: Vec::new(),
        }
    }

    /// A step as a client described it (custom batch steps); [`Self::build`] checks it like
    /// every other.
    #[must_use]
    pub fn add_plan_step(mut self, step: PlanStep) -> Self {
        self.steps.push(step);
        self
    }

    /// A step with any action and its parameters.
    #[must_use]
    pub fn add_step(mut self, action: &str, params: Map<String, Value>) -> Self {
        self.steps.push(PlanStep {
            action: action.to_owned(),
            prompt_template: None,
            variables: Some(params),
            data_from_step: None,
        });
        self
    }

    /// A step that runs `template_id` with `variables` (`null` values: the app fills them).
    #[must_use]
    pub fn add_llm_step(mut self, template_id: &str, variables: Map<String, Value>) -> Self {
        self.steps.push(PlanStep {
            action: LLM_ACTION.to_owned(),
            prompt_template: Some(template_id.to_owned()),
            variables: Some(variables),
            data_from_step: None,
        });
        self
    }

    /// As [`Self::add_llm_step`], consuming the output of the earlier step `from`.
    #[must_use]
    pub fn add_llm_step_from(
        mut self,
        template_id: &str,
        variables: Map<String, Value>,
        from: u32,
    ) -> Self {
        self = self.add_llm_step(template_id, variables);
        if let Some(step) = self.steps.last_mut() {
            step.data_from_step = Some(from);
        }
        self
    }

    /// A data step: the app performs `action` with the output of the earlier step `from`.
    #[must_use]
    pub fn add_data_step(mut self, action: &str, data_from_step: u32) -> Self {
        self.steps.push(PlanStep {
            action: action.to_owned(),
            prompt_template: None,
            variables: None,
            data_from_step: Some(data_from_step),
        });
        self
    }

    /// The plan, after checking every step: actions known, templates present, variables
    /// theirs, and every `data_from_step` naming an earlier step.
    pub fn build(self) -> Result<ExecutionPlan, PlanError> {
        if self.steps.is_empty() {
            return Err(PlanError::Empty);
        }
        for (i, step) in self.steps.iter().enumerate() {
            if let Some(from) = step.data_from_step {
                if usize::try_from(from).map_or(true, |f| f >= i) {
                    return Err(PlanError::BadReference { step: i, from });
                }
            }
            if step.action == LLM_ACTION {
                let Some(id) = &step.prompt_template else {
                    return Err(PlanError::Incomplete {
                        step: i,
                        problem: "an llm step needs a prompt_template",
                    });
                };
                let template =
                    self.templates
                        .get(id)
                        .ok_or_else(|| PlanError::UnknownTemplate {
                            step: i,
                            template: id.clone(),
                        })?;
                for name in step.variables.iter().flat_map(Map::keys) {
                    if !template.variables.iter().any(|v| v.name == name) {
                        return Err(PlanError::UnknownVariable {
                            step: i,
                            variable: name.clone(),
                        });
                    }
                }
            } else if DATA_ACTIONS.contains(&step.action.as_str()) {
                if step.data_from_step.is_none() && step.variables.is_none() {
                    return Err(PlanError::Incomplete {
                        step: i,
                        problem: "a data step needs data_from_step or parameters",
                    });
                }
            } else {
                return Err(PlanError::UnknownAction {
                    step: i,
                    action: step.action.clone(),
                });
            }
        }
        Ok(ExecutionPlan {
            id: self.id,
            agent: self.agent,
            steps: self.steps,
        })
    }
}

fn vars(names: &[&str]) -> Map<String, Value> {
    names
        .iter()
        .map(|n| ((*n).to_owned(), Value::Null))
        .collect()
}

/// The template that runs an agent in chat plans.
pub fn agent_template(agent: &str) -> Option<&'static str> {
    match agent {
        "task_agent" => Some("agent.task"),
        "checkpoint_agent" => Some("agent.checkpoint"),
        "project_agent" => Some("agent.project"),
        "note_agent" => Some("agent.note"),
        _ => None,
    }
}

const CHAT_PLAN_PREFIX: &str = "chat.";

/// The plan `POST /chat` returns in `plan` mode for `agents` (in order): one step per agent,
/// each after the first consuming its predecessor's output, then a synthesis when there are
/// several.
///
/// A chat plan carries no content: each agent step's `message` is `null`, and the client sends
/// its message back in `variables` when it runs the step. So the plan depends on nothing but
/// its id, may be cached and served to anyone, and no request's words ever reach another's.
pub fn chat_plan(
    templates: &PromptTemplateRegistry,
    agents: &[&str],
) -> Result<ExecutionPlan, PlanError> {
    let first = agents.first().copied().unwrap_or_default();
    let id = format!("{CHAT_PLAN_PREFIX}{}", agents.join("+"));
    let mut builder = ExecutionPlanBuilder::new(templates, &id, first);
    for (i, agent) in agents.iter().enumerate() {
        let template = templates.for_agent(agent).unwrap_or("unknown");
        let mut variables = vars(&["message"]);
        builder = match u32::try_from(i).ok().and_then(|i| i.checked_sub(1)) {
            None => builder.add_llm_step(template, variables),
            Some(prev) => {
                variables.insert(PREVIOUS_OUTPUT.to_owned(), Value::Null);
                builder.add_llm_step_from(template, variables, prev)
            }
        };
    }
    if agents.len() > 1 {
        let last = u32::try_from(agents.len() - 1).unwrap_or(0);
        builder = builder.add_llm_step_from("synthesize", vars(&[PREVIOUS_OUTPUT]), last);
    }
    builder.build()
}

/// The agents of a chat plan id (`chat.task_agent+note_agent`), if it is one.
pub fn chat_plan_agents(plan_id: &str) -> Option<Vec<&str>> {
    chat_plan_agents_in(plan_id, &PromptTemplateRegistry::standard())
}

/// As [`chat_plan_agents`], among the agents `templates` has a chat template for (plugin agents
/// included).
pub fn chat_plan_agents_in<'p>(
    plan_id: &'p str,
    templates: &PromptTemplateRegistry,
) -> Option<Vec<&'p str>> {
    let rest = plan_id.strip_prefix(CHAT_PLAN_PREFIX)?;
    let agents: Vec<&str> = rest.split('+').collect();
    let valid = (1..=MAX_PIPELINE_AGENTS).contains(&agents.len())
        && agents.iter().all(|a| templates.for_agent(a).is_some());
    valid.then_some(agents)
}

/// The product's playbooks: pre-built plans for common jobs, each with the lowest tier that may
/// run it.
pub fn playbooks(templates: &PromptTemplateRegistry) -> Result<Vec<Playbook>, PlanError> {
    let book = |id: &str, name: &str, description: &str, min_tier, plan| Playbook {
        id: id.to_owned(),
        name: name.to_owned(),
        description: description.to_owned(),
        min_tier,
        plan,
    };
    Ok(vec![
        book(
            "create_task_from_email",
            "Create task from email",
            "Turns a forwarded email into one task with title, details, priority and due date.",
            Tier::Free,
            ExecutionPlanBuilder::new(templates, "create_task_from_email", "task_agent")
                .add_llm_step("email.extract_task", vars(&["email_subject", "email_body"]))
                .build()?,
        ),
        book(
            "generate_weekly_report",
            "Generate weekly report",
            "Writes a Markdown report of the week's tasks, saves it as a note and indexes the \
             note for search.",
            Tier::Pro,
            ExecutionPlanBuilder::new(templates, "generate_weekly_report", "note_agent")
                .add_llm_step("report.weekly", vars(&["tasks", "week_end"]))
                .add_data_step("create_record", 0)
                .add_data_step("index_document", 1)
                .build()?,
        ),
        book(
            "meeting_notes_to_tasks",
            "Meeting notes to tasks",
            "Creates one task per action item found in meeting notes.",
            Tier::Pro,
            ExecutionPlanBuilder::new(templates, "meeting_notes_to_tasks", "task_agent")
                .add_llm_step("meeting.action_items", vars(&["notes"]))
                .build()?,
        ),
        book(
            "plan_project_milestones",
            "Plan project milestones",
            "Proposes checkpoints for a project between now and its deadline.",
            Tier::Power,
            ExecutionPlanBuilder::new(templates, "plan_project_milestones", "checkpoint_agent")
                .add_llm_step(
                    "project.milestones",
                    vars(&["project_id", "goal", "deadline"]),
                )
                .build()?,
        ),
    ])
}

/// Recently built plans, least recently used evicted first (plan Step 5's `PlanCache`), with
/// the playbooks kept apart so they are never evicted.
#[derive(Debug)]
pub struct PlanCache {
    plans: LruCache<String, ExecutionPlan>,
    playbooks: Vec<Playbook>,
}

impl PlanCache {
    /// A cache of `capacity` plans (at least 1) holding `playbooks`.
    pub fn new(capacity: usize, playbooks: Vec<Playbook>) -> Self {
        Self {
            plans: LruCache::new(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN)),
            playbooks,
        }
    }

    /// Keeps `plan` under `key`.
    pub fn cache_plan(&mut self, key: &str, plan: ExecutionPlan) {
        self.plans.put(key.to_owned(), plan);
    }

    /// The plan `key`: a playbook's, or a cached one (marking it recently used).
    pub fn get_plan(&mut self, key: &str) -> Option<ExecutionPlan> {
        if let Some(p) = self.playbooks.iter().find(|p| p.id == key) {
            return Some(p.plan.clone());
        }
        self.plans.get(key).cloned()
    }

    /// The playbook `id`.
    pub fn playbook(&self, id: &str) -> Option<&Playbook> {
        self.playbooks.iter().find(|p| p.id == id)
    }

    /// Every playbook.
    pub fn get_all_playbooks(&self) -> &[Playbook] {
        &self.playbooks
    }

    /// Plans cached (playbooks not counted).
    pub fn len(&self) -> usize {
        self.plans.len()
    }

    /// Whether no plan is cached.
    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("an object"),
        }
    }

    #[test]
    fn a_plan_builds_from_llm_and_data_steps_in_order() {
        let t = PromptTemplateRegistry::standard();
        let plan = ExecutionPlanBuilder::new(&t, "p1", "note_agent")
            .add_llm_step("report.weekly", obj(json!({"tasks": null})))
            .add_data_step("create_record", 0)
            .add_step("send_notification", obj(json!({"title": "Report ready"})))
            .build()
            .unwrap();
        assert_eq!(plan.id, "p1");
        assert_eq!(plan.agent, "note_agent");
        assert_eq!(plan.steps.len(), 3);
        assert_eq!(plan.steps[0].action, "llm");
        assert_eq!(
            plan.steps[0].prompt_template.as_deref(),
            Some("report.weekly")
        );
        assert_eq!(plan.steps[1].data_from_step, Some(0));
    }

    #[test]
    fn build_rejects_references_to_missing_later_or_own_steps() {
        let t = PromptTemplateRegistry::standard();
        let own = ExecutionPlanBuilder::new(&t, "p", "a")
            .add_data_step("create_record", 0)
            .build();
        assert_eq!(own, Err(PlanError::BadReference { step: 0, from: 0 }));
        let later = ExecutionPlanBuilder::new(&t, "p", "a")
            .add_llm_step("report.weekly", Map::new())
            .add_data_step("create_record", 2)
            .add_llm_step("report.weekly", Map::new())
            .build();
        assert_eq!(later, Err(PlanError::BadReference { step: 1, from: 2 }));
        let missing = ExecutionPlanBuilder::new(&t, "p", "a")
            .add_llm_step("report.weekly", Map::new())
            .add_data_step("create_record", 9)
            .build();
        assert_eq!(missing, Err(PlanError::BadReference { step: 1, from: 9 }));
    }

    #[test]
    fn build_rejects_unknown_templates_actions_variables_and_empty_plans() {
        let t = PromptTemplateRegistry::standard();
        assert_eq!(
            ExecutionPlanBuilder::new(&t, "p", "a").build(),
            Err(PlanError::Empty)
        );
        assert!(matches!(
            ExecutionPlanBuilder::new(&t, "p", "a")
                .add_llm_step("nope", Map::new())
                .build(),
            Err(PlanError::UnknownTemplate { step: 0, .. })
        ));
        assert!(matches!(
            ExecutionPlanBuilder::new(&t, "p", "a")
                .add_step("format_disk", Map::new())
                .build(),
            Err(PlanError::UnknownAction { step: 0, .. })
        ));
        assert!(matches!(
            ExecutionPlanBuilder::new(&t, "p", "a")
                .add_llm_step("report.weekly", obj(json!({"system": "x"})))
                .build(),
            Err(PlanError::UnknownVariable { step: 0, .. })
        ));
    }

    #[test]
    fn every_playbook_validates_and_names_only_templates_that_exist() {
        let t = PromptTemplateRegistry::standard();
        let books = playbooks(&t).unwrap();
        let ids: Vec<&str> = books.iter().map(|b| b.id.as_str()).collect();
        assert!(ids.contains(&"create_task_from_email"));
        assert!(ids.contains(&"generate_weekly_report"));
        for b in &books {
            assert_eq!(b.plan.id, b.id);
            for s in &b.plan.steps {
                if let Some(id) = &s.prompt_template {
                    assert!(t.get(id).is_some(), "{id}");
                }
            }
        }
    }

    #[test]
    fn the_weekly_report_is_saved_as_a_note_then_indexed() {
        let t = PromptTemplateRegistry::standard();
        let books = playbooks(&t).unwrap();
        let report = books
            .iter()
            .find(|b| b.id == "generate_weekly_report")
            .unwrap();
        let steps: Vec<(&str, Option<u32>)> = report
            .plan
            .steps
            .iter()
            .map(|s| (s.action.as_str(), s.data_from_step))
            .collect();
        assert_eq!(
            steps,
            [
                ("llm", None),
                ("create_record", Some(0)),
                ("index_document", Some(1))
            ],
            "the app indexes the note the create step inserted"
        );
    }

    #[test]
    fn templates_render_checked_variables_once_without_re_expanding_values() {
        let t = PromptTemplateRegistry::standard();
        let email = t.get("email.extract_task").unwrap();
        let out = email
            .render(&obj(json!({"email_body": "Send {email_subject} now"})))
            .unwrap();
        assert!(out.contains("Body:\nSend {email_subject} now"));
        assert!(out.contains("Subject: (none)"));
        let report = t.get("report.weekly").unwrap();
        let out = report
            .render(&obj(
                json!({"tasks": [{"id": 1}], "week_end": "2026-11-29"}),
            ))
            .unwrap();
        assert!(out.contains(r#"[{"id":1}]"#));
    }

    #[test]
    fn rendering_names_every_bad_variable() {
        let t = PromptTemplateRegistry::standard();
        let email = t.get("email.extract_task").unwrap();
        let Err(AppError::Validation(fields)) = email.render(&obj(json!({
            "email_subject": "s".repeat(501), "extra": "x"
        }))) else {
            panic!("refused");
        };
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "variables.extra",
                "variables.email_subject",
                "variables.email_body"
            ]
        );
        assert!(email.render(&obj(json!({"email_body": "  "}))).is_err());
    }

    #[test]
    fn chat_plans_chain_agents_then_synthesize_and_their_ids_rebuild_them() {
        let t = PromptTemplateRegistry::standard();
        let plan = chat_plan(&t, &["task_agent", "note_agent"]).unwrap();
        assert_eq!(plan.id, "chat.task_agent+note_agent");
        let templates: Vec<_> = plan
            .steps
            .iter()
            .map(|s| s.prompt_template.as_deref().unwrap())
            .collect();
        assert_eq!(templates, ["agent.task", "agent.note", "synthesize"]);
        assert_eq!(plan.steps[1].data_from_step, Some(0));
        assert_eq!(plan.steps[2].data_from_step, Some(1));
        assert!(
            plan.steps[0].variables.as_ref().unwrap()["message"].is_null(),
            "a chat plan carries no message: the client sends it back"
        );
        let agents = chat_plan_agents(&plan.id).unwrap();
        let rebuilt = chat_plan(&t, &agents).unwrap();
        assert_eq!(rebuilt, plan, "the id alone rebuilds the plan");
        let single = chat_plan(&t, &["checkpoint_agent"]).unwrap();
        assert_eq!(single.steps.len(), 1);
    }

    #[test]
    fn only_well_formed_chat_plan_ids_are_accepted() {
        assert_eq!(
            chat_plan_agents("chat.note_agent"),
            Some(vec!["note_agent"])
        );
        assert_eq!(chat_plan_agents("chat.ghost_agent"), None);
        assert_eq!(chat_plan_agents("chat."), None);
        assert_eq!(
            chat_plan_agents("chat.task_agent+task_agent+task_agent+task_agent"),
            None
        );
        assert_eq!(chat_plan_agents("create_task_from_email"), None);
    }

    #[test]
    fn the_plan_cache_evicts_the_least_recently_used_and_keeps_playbooks() {
        let t = PromptTemplateRegistry::standard();
        let mut cache = PlanCache::new(2, playbooks(&t).unwrap());
        let plan = |_: &str| chat_plan(&t, &["task_agent"]).unwrap();
        cache.cache_plan("a", plan("a"));
        cache.cache_plan("b", plan("b"));
        assert!(cache.get_plan("a").is_some(), "a is now the most recent");
        cache.cache_plan("c", plan("c"));
        assert!(cache.get_plan("b").is_none(), "b was evicted");
        assert!(cache.get_plan("a").is_some());
        assert!(cache.get_plan("c").is_some());
        assert_eq!(cache.len(), 2);
        assert!(cache.get_plan("create_task_from_email").is_some());
        assert_eq!(cache.get_all_playbooks().len(), 4);
        assert_eq!(PLAN_CACHE_SIZE, 1000);
    }
}
