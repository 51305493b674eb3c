//! Batches (`POST /batches`): one plan run once per item, in the user's home.
//!
//! ## Rules (numbers in the README too)
//! - A batch names a playbook the caller's tier may run (`playbook_id`), or — with the matrix's
//!   `batch_builder` (power, team) — custom `steps` built from template ids with the plan
//!   builder's validation (known templates and actions, each step's variables its template's,
//!   `data_from_step` naming an earlier step); other tiers' `steps` are 403 `tier_required`
//!   (feature `batch_builder`). 1–[`MAX_BATCH_ITEMS`] items, 1–[`MAX_BATCH_STEPS`] steps.
//! - Every agent the plan names must be enabled (403 `tier_required`, feature `agents`), as for
//!   plans and run-step; the provider and model follow the tier as in `ChatRequest`.
//! - Every item's variables are checked before the batch starts, as run-step would check them:
//!   each `llm` step gets the item's variables its template declares (so one item can feed
//!   several steps), a step with `data_from_step` gets the earlier `llm` step's output as
//!   `previous_output` (which an item may not set), and every name must belong to some step.
//!   A bad item refuses the whole batch (422 naming `items[i].variables.<name>`).
//! - An item runs the plan's `llm` steps in order; its `output` is the last one's (sanitized
//!   like every chat answer) and its `actions` those of every step. Data steps
//!   (`create_record`, `index_document`, …) are the app's to perform with the output, as for
//!   plans.

use serde_json::{Map, Value};

use crate::api::{BatchRequest, ExecutionPlan, PlanStep, RunStepResponse};
use crate::chat::allowance::EnabledAgents;
use crate::chat::plans::{ExecutionPlanBuilder, PromptTemplateRegistry, LLM_ACTION};
use crate::domain::Tier;
use crate::error::{AppError, FieldError};
use crate::tiers::features;

pub use crate::api::{MAX_BATCH_ITEMS, MAX_BATCH_STEPS};

use super::{plan_agents, Brain, Orchestrator, PREVIOUS_OUTPUT};

/// Items of one batch that run at the same time (the rest wait for a free slot).
pub const BATCH_CONCURRENCY: usize = 3;
/// How long a finished (or cancelled) batch's results stay in the home's memory (ms).
pub const BATCH_RESULT_TTL_MS: i64 = 10 * 60_000;
/// How long the home remembers that a batch existed (its id, size and time, never its
/// content), so an id whose results are gone answers `lost` rather than 404 (ms; one day).
pub const BATCH_ID_TTL_MS: i64 = 24 * 60 * 60_000;
/// The matrix row of custom steps.
pub const BUILDER_FEATURE: &str = "batch_builder";
/// The matrix row bounding batches running at once.
pub const ACTIVE_FEATURE: &str = "batch_active";
/// The plan id of a custom batch.
pub const CUSTOM_PLAN_ID: &str = "batch.custom";
/// Field errors reported for one refused batch, at most.
const MAX_REPORTED: usize = 50;

/// A batch checked and ready to run: its plan and each item's variables.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedBatch {
    /// The plan every item runs.
    pub plan: ExecutionPlan,
    /// Each item's variables, in order.
    pub items: Vec<Map<String, Value>>,
}

/// 403 for custom steps below the batch builder's tier.
fn builder_required() -> AppError {
    AppError::TierRequired {
        feature: BUILDER_FEATURE,
        required_tier: Tier::Power.as_str(),
    }
}

/// Whether `tier` may start another batch with `running` batches running (the matrix's
/// `batch_active`; `-1` unlimited).
///
/// # Errors
/// 409 `conflict` at the limit.
pub fn check_active(tier: Tier, running: usize) -> Result<(), AppError> {
    let limit = features(tier).batch_active;
    if limit < 0 || i64::try_from(running).unwrap_or(i64::MAX) < limit {
        Ok(())
    } else {
        Err(AppError::Conflict(
            "too many batches running at once for this tier; wait for one to finish",
        ))
    }
}

/// Checks `req` for a `tier` user with `enabled` agents (see the module's rules) and answers
/// the plan and the items to run.
///
/// # Errors
/// 422 for a bad shape, plan or item; 404 for an unknown playbook; 403 `tier_required` for a
/// playbook above the tier, custom steps without the batch builder or a disabled agent.
pub fn prepare(
    brain: &Brain,
    tier: Tier,
    enabled: &EnabledAgents,
    req: BatchRequest,
) -> Result<PreparedBatch, AppError> {
    req.validate()?;
    let plan = match (req.playbook_id, req.steps) {
        (Some(id), None) => brain.playbook(&id, tier)?.plan,
        (None, Some(steps)) => {
            if !features(tier).batch_builder {
                return Err(builder_required());
            }
            custom_plan(&brain.templates, steps)?
        }
        _ => return Err(AppError::field("playbook_id", "give exactly one")),
    };
    for agent in plan_agents(&plan, &brain.templates) {
        if !enabled.contains(agent) {
            return Err(crate::chat::allowance::disabled());
        }
    }
    let items: Vec<Map<String, Value>> = req.items.into_iter().map(|i| i.variables).collect();
    let mut errors = Vec::new();
    for (i, vars) in items.iter().enumerate() {
        errors.extend(check_item(&brain.templates, &plan, i, vars));
        if errors.len() >= MAX_REPORTED {
            errors.truncate(MAX_REPORTED);
            break;
        }
    }
    if errors.is_empty() {
        Ok(PreparedBatch { plan, items })
    } else {
        Err(AppError::Validation(errors))
    }
}

/// The plan of custom `steps`, validated by the plan builder; at least one `llm` step.
fn custom_plan(
    templates: &PromptTemplateRegistry,
    steps: Vec<PlanStep>,
) -> Result<ExecutionPlan, AppError> {
    let agent = steps
        .iter()
        .filter_map(|s| s.prompt_template.as_deref())
        .find_map(|id| templates.get(id).and_then(|t| t.agent))
        .unwrap_or_default();
    if !steps.iter().any(|s| s.action == LLM_ACTION) {
        return Err(AppError::field(
            "steps",
            "a batch needs at least one llm step",
        ));
    }
    let builder = steps.into_iter().fold(
        ExecutionPlanBuilder::new(templates, CUSTOM_PLAN_ID, agent),
        ExecutionPlanBuilder::add_plan_step,
    );
    builder
        .build()
        .map_err(|e| AppError::Validation(vec![FieldError::new("steps", e.to_string())]))
}

/// What step `index` of `plan` gets from an item's `vars`, with `outputs` of earlier steps.
fn step_variables(
    templates: &PromptTemplateRegistry,
    step: &PlanStep,
    vars: &Map<String, Value>,
    outputs: &[Option<String>],
) -> Map<String, Value> {
    let Some(template) = step
        .prompt_template
        .as_deref()
        .and_then(|id| templates.get(id))
    else {
        return Map::new();
    };
    let mut out: Map<String, Value> = vars
        .iter()
        .filter(|(k, _)| k.as_str() != PREVIOUS_OUTPUT)
        .filter(|(k, _)| template.variables.iter().any(|v| v.name == k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let previous = step
        .data_from_step
        .and_then(|f| usize::try_from(f).ok())
        .and_then(|f| outputs.get(f).cloned().flatten());
    if let (Some(text), Some(var)) = (
        previous,
        template
            .variables
            .iter()
            .find(|v| v.name == PREVIOUS_OUTPUT),
    ) {
        let text: String = text.chars().take(var.max_chars).collect();
        out.insert(PREVIOUS_OUTPUT.to_owned(), Value::String(text));
    }
    out
}

/// The field errors of item `index` against `plan` (empty when it may run).
fn check_item(
    templates: &PromptTemplateRegistry,
    plan: &ExecutionPlan,
    index: usize,
    vars: &Map<String, Value>,
) -> Vec<FieldError> {
    let field = |name: &str| format!("items[{index}].variables.{name}");
    let mut errors = Vec::new();
    for name in vars.keys() {
        let known = plan
            .steps
            .iter()
            .filter_map(|s| s.prompt_template.as_deref())
            .filter_map(|id| templates.get(id))
            .any(|t| t.variables.iter().any(|v| v.name == name.as_str()));
        if name == PREVIOUS_OUTPUT {
            errors.push(FieldError::new(
                field(name),
                "set by the server from the earlier step",
            ));
        } else if !known {
            errors.push(FieldError::new(field(name), "not a variable of this plan"));
        }
    }
    // Earlier llm steps stand in with a placeholder output; data steps' outputs are the app's.
    let mut outputs: Vec<Option<String>> = vec![None; plan.steps.len()];
    for (i, step) in plan.steps.iter().enumerate() {
        if step.action != LLM_ACTION {
            continue;
        }
        let Some(template) = step
            .prompt_template
            .as_deref()
            .and_then(|id| templates.get(id))
        else {
            continue;
        };
        let mut merged: Map<String, Value> = step
            .variables
            .iter()
            .flatten()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        merged.extend(step_variables(templates, step, vars, &outputs));
        if let Err(AppError::Validation(fields)) = template.render(&merged) {
            for f in fields {
                let name = f.field.strip_prefix("variables.").unwrap_or(&f.field);
                let path = field(name);
                if !errors.iter().any(|e: &FieldError| e.field == path) {
                    errors.push(FieldError::new(path, f.message));
                }
            }
        }
        outputs[i] = Some("(the earlier step's output)".to_owned());
    }
    errors
}

impl Orchestrator<'_> {
    /// Runs one item of a batch: the plan's `llm` steps in order, each with the item's
    /// variables for its template and its `data_from_step`'s output (see the module's rules).
    /// Answers the last step's output and every step's actions, sanitized.
    ///
    /// # Errors
    /// As run-step: 422 for variables a step refuses; LLM errors.
    pub async fn run_batch_item(
        &self,
        plan: &ExecutionPlan,
        vars: &Map<String, Value>,
    ) -> Result<RunStepResponse, AppError> {
        let mut outputs: Vec<Option<String>> = vec![None; plan.steps.len()];
        let mut last = RunStepResponse {
            output: String::new(),
            actions: Vec::new(),
        };
        for (i, step) in plan.steps.iter().enumerate() {
            if step.action != LLM_ACTION {
                continue;
            }
            let step_vars = step_variables(&self.brain.templates, step, vars, &outputs);
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            let out = self.run_plan_step(plan, index, &step_vars).await?;
            outputs[i] = Some(out.output.clone());
            last.output = out.output;
            last.actions.extend(out.actions);
        }
        Ok(last)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::BatchItem;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("an object"),
        }
    }

    fn request(playbook: Option<&str>, steps: Option<Value>, items: Vec<Value>) -> BatchRequest {
        BatchRequest {
            playbook_id: playbook.map(str::to_owned),
            steps: steps.map(|s| serde_json::from_value(s).unwrap()),
            items: items
                .into_iter()
                .map(|v| BatchItem { variables: obj(v) })
                .collect(),
            provider: None,
            model: None,
        }
    }

    fn fields(e: AppError) -> Vec<String> {
        match e {
            AppError::Validation(f) => f.into_iter().map(|f| f.field).collect(),
            other => panic!("a 422, not {other:?}"),
        }
    }

    #[test]
    fn a_playbook_batch_is_prepared_with_each_items_variables() {
        let brain = Brain::standard();
        let req = request(
            Some("create_task_from_email"),
            None,
            vec![
                json!({"email_body": "one"}),
                json!({"email_body": "two", "email_subject": "s"}),
            ],
        );
        let batch = prepare(&brain, Tier::Free, &EnabledAgents::all(), req).unwrap();
        assert_eq!(batch.plan.id, "create_task_from_email");
        assert_eq!(batch.items.len(), 2);
    }

    #[test]
    fn zero_and_a_hundred_and_one_items_are_refused_and_a_hundred_pass() {
        let brain = Brain::standard();
        let item = json!({"email_body": "b"});
        for n in [0, 101] {
            let req = request(Some("create_task_from_email"), None, vec![item.clone(); n]);
            let e = prepare(&brain, Tier::Free, &EnabledAgents::all(), req).unwrap_err();
            assert_eq!(fields(e), ["items"], "{n} items");
        }
        let req = request(Some("create_task_from_email"), None, vec![item; 100]);
        assert!(prepare(&brain, Tier::Free, &EnabledAgents::all(), req).is_ok());
    }

    #[test]
    fn every_bad_item_is_named_by_index_before_anything_runs() {
        let brain = Brain::standard();
        let req = request(
            Some("create_task_from_email"),
            None,
            vec![
                json!({"email_body": "fine"}),
                json!({}),
                json!({"email_body": "b", "system": "x", "previous_output": "y"}),
            ],
        );
        let e = prepare(&brain, Tier::Free, &EnabledAgents::all(), req).unwrap_err();
        let mut names = fields(e);
        names.sort();
        assert_eq!(
            names,
            [
                "items[1].variables.email_body",
                "items[2].variables.previous_output",
                "items[2].variables.system"
            ]
        );
    }

    #[test]
    fn custom_steps_need_the_batch_builder_tier() {
        let brain = Brain::standard();
        let steps = json!([{"action": "llm", "prompt_template": "meeting.action_items"}]);
        for tier in [Tier::Free, Tier::Pro] {
            let req = request(None, Some(steps.clone()), vec![json!({"notes": "n"})]);
            let e = prepare(&brain, tier, &EnabledAgents::all(), req).unwrap_err();
            assert!(
                matches!(
                    e,
                    AppError::TierRequired {
                        feature: "batch_builder",
                        required_tier: "power"
                    }
                ),
                "{e:?}"
            );
        }
        for tier in [Tier::Power, Tier::Team] {
            let req = request(None, Some(steps.clone()), vec![json!({"notes": "n"})]);
            assert!(prepare(&brain, tier, &EnabledAgents::all(), req).is_ok());
        }
    }

    #[test]
    fn custom_steps_are_checked_like_the_plan_builder_checks_plans() {
        let brain = Brain::standard();
        let bad = [
            json!([{"action": "llm", "prompt_template": "nope"}]),
            json!([{"action": "llm", "prompt_template": "report.weekly"},
                   {"action": "create_record", "data_from_step": 1}]),
            json!([{"action": "format_disk", "variables": {}}]),
            json!([{"action": "llm", "prompt_template": "report.weekly",
                    "variables": {"system": "x"}}]),
            json!([{"action": "create_record", "variables": {"a": 1}}]),
        ];
        for steps in bad {
            let req = request(None, Some(steps.clone()), vec![json!({"tasks": "t"})]);
            let e = prepare(&brain, Tier::Power, &EnabledAgents::all(), req).unwrap_err();
            assert_eq!(fields(e), ["steps"], "{steps}");
        }
    }

    #[test]
    fn a_custom_steps_data_from_step_may_be_an_integral_float_and_nothing_else() {
        let step: PlanStep =
            serde_json::from_value(json!({"action": "create_record", "data_from_step": 1.0}))
                .unwrap();
        assert_eq!(step.data_from_step, Some(1));
        for bad in [json!(1.5), json!(-1), json!("1")] {
            let r = serde_json::from_value::<PlanStep>(
                json!({"action": "create_record", "data_from_step": bad}),
            );
            assert!(r.is_err(), "{bad}");
        }
    }

    #[test]
    fn a_step_fed_by_an_earlier_llm_step_needs_no_previous_output_from_the_item() {
        let brain = Brain::standard();
        let steps = json!([
            {"action": "llm", "prompt_template": "meeting.action_items"},
            {"action": "llm", "prompt_template": "synthesize", "data_from_step": 0},
        ]);
        let req = request(None, Some(steps), vec![json!({"notes": "n"})]);
        assert!(prepare(&brain, Tier::Power, &EnabledAgents::all(), req).is_ok());
        let unfed = json!([{"action": "llm", "prompt_template": "synthesize"}]);
        let req = request(None, Some(unfed), vec![json!({})]);
        let e = prepare(&brain, Tier::Power, &EnabledAgents::all(), req).unwrap_err();
        assert_eq!(fields(e), ["items[0].variables.previous_output"]);
    }

    #[test]
    fn a_plan_naming_a_disabled_agent_is_refused_with_tier_required() {
        let brain = Brain::standard();
        let only_notes = EnabledAgents::only(["note_agent"]);
        let req = request(
            Some("create_task_from_email"),
            None,
            vec![json!({"email_body": "b"})],
        );
        let e = prepare(&brain, Tier::Free, &only_notes, req).unwrap_err();
        assert!(
            matches!(
                e,
                AppError::TierRequired {
                    feature: "agents",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn playbooks_above_the_tier_and_unknown_ones_are_refused() {
        let brain = Brain::standard();
        let req = request(Some("plan_project_milestones"), None, vec![json!({})]);
        let e = prepare(&brain, Tier::Free, &EnabledAgents::all(), req).unwrap_err();
        assert!(matches!(
            e,
            AppError::TierRequired {
                feature: "playbook",
                ..
            }
        ));
        let req = request(Some("no_such_book"), None, vec![json!({})]);
        let e = prepare(&brain, Tier::Free, &EnabledAgents::all(), req).unwrap_err();
        assert!(matches!(e, AppError::NotFound));
    }

    #[test]
    fn batch_active_follows_the_matrix() {
        assert!(check_active(Tier::Free, 1).is_ok());
        assert!(matches!(
            check_active(Tier::Free, 2),
            Err(AppError::Conflict(_))
        ));
        assert!(check_active(Tier::Pro, 9).is_ok());
        assert!(check_active(Tier::Pro, 10).is_err());
        assert!(check_active(Tier::Power, 10_000).is_ok());
        assert!(check_active(Tier::Team, 10_000).is_ok());
    }
}
