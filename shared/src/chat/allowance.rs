//! The agents allowance: which agents a user's chat may route to (`GET /agents`,
//! `PUT /agents/enabled`), by the tier matrix's `agents` row.
//!
//! - Without a choice of their own, free users have [`DEFAULT_FREE_AGENTS`] (`task_agent`,
//!   `note_agent`, `project_agent`) and paid tiers every agent.
//! - A choice ([`choose`]) names known agents, each once, at least one; beyond the tier's
//!   `agents` limit (free: 3; `-1` unlimited) it is 403 `tier_required` (feature `agents`, the
//!   cheapest tier allowing that many: `pro`).
//! - What one request may use ([`effective`]) is the stored choice, or the tier's default when
//!   there is none, when it names no agent that still exists, or when it no longer fits the
//!   tier (a user back on free after choosing more than 3 gets the free default, not an
//!   arbitrary 3 of theirs).
//! - Every agent of the registry counts, so agents added later (plugins) count against the
//!   same allowance.
//!
//! The orchestrator takes the result as [`EnabledAgents`]: its classifier lists only those
//! agents, its routes, pipelines and plans use only them, and a plan step naming another is
//! 403 `tier_required` ([`disabled`]).
//!
//! Titles ([`title`]) are product copy for the app's screens, not prompt text.

use crate::api::{AgentListing, AgentsResponse, MAX_AGENT_NAME_CHARS, MAX_ENABLED_AGENTS};
use crate::domain::Tier;
use crate::error::{AppError, FieldError};
use crate::tiers::features;

use super::agent::ChatAgent;
use super::registry::AgentRegistry;

/// The matrix row that limits agents.
pub const FEATURE: &str = "agents";
/// What free users have enabled until they choose.
pub const DEFAULT_FREE_AGENTS: [&str; 3] = ["task_agent", "note_agent", "project_agent"];

/// The display title of a built-in agent (product copy).
pub fn title(name: &str) -> Option<&'static str> {
    match name {
        "task_agent" => Some("Tasks"),
        "checkpoint_agent" => Some("Checkpoints"),
        "project_agent" => Some("Projects"),
        "note_agent" => Some("Notes"),
        _ => None,
    }
}

/// The agents one request may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnabledAgents(Option<Vec<String>>);

impl Default for EnabledAgents {
    fn default() -> Self {
        Self::all()
    }
}

impl EnabledAgents {
    /// Every agent of the registry.
    pub fn all() -> Self {
        Self(None)
    }

    /// Only these agents.
    pub fn only<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut list: Vec<String> = Vec::new();
        for name in names {
            let name = name.into();
            if !list.contains(&name) {
                list.push(name);
            }
        }
        Self(Some(list))
    }

    /// Whether the agent `name` may be used.
    pub fn contains(&self, name: &str) -> bool {
        self.0.as_ref().is_none_or(|l| l.iter().any(|n| n == name))
    }

    /// Whether every agent may be used.
    pub fn is_all(&self) -> bool {
        self.0.is_none()
    }

    /// The agents of `registry` that may be used, in registry order.
    pub fn of<'r>(&self, registry: &'r AgentRegistry) -> Vec<&'r str> {
        registry
            .iter()
            .map(ChatAgent::name)
            .filter(|n| self.contains(n))
            .collect()
    }
}

/// How many agents `tier` may enable (`None`: any number).
fn limit(tier: Tier) -> Option<usize> {
    usize::try_from(features(tier).agents).ok()
}

/// The cheapest tier that may enable `count` agents.
fn cheapest_tier_for(count: usize) -> Tier {
    Tier::ALL
        .into_iter()
        .find(|t| limit(*t).is_none_or(|n| count <= n))
        .unwrap_or(Tier::Team)
}

/// The 403 for using an agent that is not enabled: `tier_required`, feature `agents`, with the
/// cheapest tier that has every agent (`pro`).
pub fn disabled() -> AppError {
    AppError::TierRequired {
        feature: FEATURE,
        required_tier: cheapest_tier_for(usize::MAX).as_str(),
    }
}

/// What `tier` has without a choice: every agent for paid tiers; for free,
/// [`DEFAULT_FREE_AGENTS`] (those registered, within the limit).
pub fn default_enabled(tier: Tier, registry: &AgentRegistry) -> EnabledAgents {
    match limit(tier) {
        None => EnabledAgents::all(),
        Some(n) => EnabledAgents::only(
            registry
                .iter()
                .map(ChatAgent::name)
                .filter(|name| DEFAULT_FREE_AGENTS.contains(name))
                .take(n),
        ),
    }
}

/// 403 `tier_required` (feature `agents`, the cheapest tier allowing that many) when `tier`
/// may not enable `count` agents. The user's home applies it again to what it stores, with the
/// tier in force there.
///
/// # Errors
/// As said.
pub fn check_count(tier: Tier, count: usize) -> Result<(), AppError> {
    if limit(tier).is_some_and(|n| count > n) {
        return Err(AppError::TierRequired {
            feature: FEATURE,
            required_tier: cheapest_tier_for(count).as_str(),
        });
    }
    Ok(())
}

/// Checks a `PUT /agents/enabled` choice and answers it as it should be stored: the names in
/// registry order.
///
/// # Errors
/// 422 naming `agents` for an empty choice, or `agents[i]` for an overlong, unknown or repeated
/// name (every one at once); then 403 `tier_required` (feature `agents`) for more agents than
/// the tier allows.
pub fn choose(
    tier: Tier,
    registry: &AgentRegistry,
    chosen: &[String],
) -> Result<Vec<String>, AppError> {
    let mut errors = Vec::new();
    if chosen.is_empty() {
        errors.push(FieldError::new("agents", "choose at least one agent"));
    } else if chosen.len() > MAX_ENABLED_AGENTS {
        errors.push(FieldError::new(
            "agents",
            format!("at most {MAX_ENABLED_AGENTS} names"),
        ));
    }
    for (i, name) in chosen.iter().enumerate().take(MAX_ENABLED_AGENTS) {
        let field = || format!("agents[{i}]");
        if name.chars().count() > MAX_AGENT_NAME_CHARS {
            errors.push(FieldError::new(
                field(),
                format!("at most {MAX_AGENT_NAME_CHARS} characters"),
            ));
        } else if registry.get(name).is_none() {
            errors.push(FieldError::new(field(), "is not an agent of this server"));
        } else if chosen[..i].contains(name) {
            errors.push(FieldError::new(field(), "is listed twice"));
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    check_count(tier, chosen.len())?;
    Ok(registry
        .iter()
        .map(ChatAgent::name)
        .filter(|n| chosen.iter().any(|c| c == n))
        .map(str::to_owned)
        .collect())
}

/// What a `tier` user with the stored choice `stored` (if any) may use now (see the module
/// docs for when the tier's default applies instead).
pub fn effective(tier: Tier, registry: &AgentRegistry, stored: Option<&[String]>) -> EnabledAgents {
    let Some(stored) = stored else {
        return default_enabled(tier, registry);
    };
    let known = EnabledAgents::only(stored.iter().map(String::as_str)).of(registry);
    if known.is_empty() || limit(tier).is_some_and(|n| known.len() > n) {
        return default_enabled(tier, registry);
    }
    EnabledAgents::only(known)
}

/// `GET /agents`: every agent of `registry` with its title and whether `enabled` holds it.
pub fn listing(registry: &AgentRegistry, enabled: &EnabledAgents) -> AgentsResponse {
    AgentsResponse {
        agents: registry
            .iter()
            .map(|a| AgentListing {
                name: a.name().to_owned(),
                title: title(a.name())
                    .or_else(|| a.title())
                    .unwrap_or(a.name())
                    .to_owned(),
                enabled: enabled.contains(a.name()),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn fields(e: &AppError) -> Vec<&str> {
        match e {
            AppError::Validation(f) => f.iter().map(|f| f.field.as_str()).collect(),
            other => panic!("validation expected, got {other:?}"),
        }
    }

    #[test]
    fn free_users_start_with_tasks_notes_and_projects_and_paid_tiers_with_every_agent() {
        let r = AgentRegistry::standard();
        let free = default_enabled(Tier::Free, &r);
        assert_eq!(free.of(&r), ["task_agent", "project_agent", "note_agent"]);
        assert!(!free.contains("checkpoint_agent"));
        for tier in [Tier::Pro, Tier::Power, Tier::Team] {
            let paid = default_enabled(tier, &r);
            assert!(paid.is_all());
            assert_eq!(paid.of(&r).len(), 4);
        }
    }

    #[test]
    fn every_built_in_agent_has_a_title_that_is_no_prompt_text() {
        let r = AgentRegistry::standard();
        let brain = crate::chat::orchestrator::Brain::standard();
        for agent in r.iter() {
            let t = title(agent.name()).unwrap();
            assert_eq!(
                brain.sanitizer.clean(t).removed,
                0,
                "{t} is a prompt fragment"
            );
        }
    }

    #[test]
    fn a_free_user_may_choose_up_to_three_agents_stored_in_registry_order() {
        let r = AgentRegistry::standard();
        let chosen = choose(
            Tier::Free,
            &r,
            &names(&["note_agent", "checkpoint_agent", "task_agent"]),
        )
        .unwrap();
        assert_eq!(chosen, ["task_agent", "checkpoint_agent", "note_agent"]);
        assert_eq!(
            choose(Tier::Free, &r, &names(&["note_agent"])).unwrap(),
            ["note_agent"]
        );
    }

    #[test]
    fn a_fourth_agent_on_free_needs_pro_and_paid_tiers_take_any_number() {
        let r = AgentRegistry::standard();
        let all = names(&[
            "task_agent",
            "note_agent",
            "project_agent",
            "checkpoint_agent",
        ]);
        let e = choose(Tier::Free, &r, &all).unwrap_err();
        assert_eq!((e.status(), e.code()), (403, "tier_required"));
        assert!(matches!(
            e,
            AppError::TierRequired {
                feature: "agents",
                required_tier: "pro"
            }
        ));
        for tier in [Tier::Pro, Tier::Power, Tier::Team] {
            assert_eq!(choose(tier, &r, &all).unwrap().len(), 4);
        }
    }

    #[test]
    fn bad_choices_are_422_naming_every_bad_entry_before_any_tier_check() {
        let r = AgentRegistry::standard();
        let e = choose(Tier::Pro, &r, &[]).unwrap_err();
        assert_eq!((e.status(), fields(&e)), (422, vec!["agents"]));
        let e = choose(
            Tier::Free,
            &r,
            &names(&[
                "task_agent",
                "weather_agent",
                "task_agent",
                &"x".repeat(65),
                "note_agent",
            ]),
        )
        .unwrap_err();
        assert_eq!(fields(&e), ["agents[1]", "agents[2]", "agents[3]"]);
        let too_many: Vec<String> = (0..65).map(|_| "task_agent".to_owned()).collect();
        let e = choose(Tier::Team, &r, &too_many).unwrap_err();
        assert_eq!(fields(&e)[0], "agents");
    }

    #[test]
    fn the_stored_choice_applies_while_it_fits_the_tier_and_exists() {
        let r = AgentRegistry::standard();
        let two = names(&["checkpoint_agent", "note_agent"]);
        let e = effective(Tier::Free, &r, Some(&two));
        assert_eq!(e.of(&r), ["checkpoint_agent", "note_agent"]);
        assert!(!e.contains("task_agent"));
        // A paid user's own choice is theirs too.
        assert_eq!(effective(Tier::Pro, &r, Some(&two)), e);
        // Unknown names (an uninstalled plugin's) are dropped; none left: the default.
        let with_ghost = names(&["ghost_agent", "note_agent"]);
        assert_eq!(
            effective(Tier::Free, &r, Some(&with_ghost)).of(&r),
            ["note_agent"]
        );
        let ghosts = names(&["ghost_agent"]);
        assert_eq!(
            effective(Tier::Free, &r, Some(&ghosts)),
            default_enabled(Tier::Free, &r)
        );
        assert!(effective(Tier::Team, &r, None).is_all());
    }

    #[test]
    fn a_user_back_on_free_with_four_agents_chosen_gets_the_free_default() {
        let r = AgentRegistry::standard();
        let four = choose(
            Tier::Pro,
            &r,
            &names(&[
                "task_agent",
                "checkpoint_agent",
                "project_agent",
                "note_agent",
            ]),
        )
        .unwrap();
        assert_eq!(
            effective(Tier::Free, &r, Some(&four)),
            default_enabled(Tier::Free, &r)
        );
        assert_eq!(effective(Tier::Pro, &r, Some(&four)).of(&r).len(), 4);
    }

    #[test]
    fn the_listing_shows_every_agent_with_its_title_and_state() {
        let r = AgentRegistry::standard();
        let list = listing(&r, &default_enabled(Tier::Free, &r));
        assert_eq!(
            serde_json::to_value(&list).unwrap(),
            json!({"agents": [
                {"name": "task_agent", "title": "Tasks", "enabled": true},
                {"name": "checkpoint_agent", "title": "Checkpoints", "enabled": false},
                {"name": "project_agent", "title": "Projects", "enabled": true},
                {"name": "note_agent", "title": "Notes", "enabled": true},
            ]})
        );
        assert!(listing(&r, &EnabledAgents::all())
            .agents
            .iter()
            .all(|a| a.enabled));
    }

    #[test]
    fn the_put_body_refuses_unknown_fields() {
        let ok: crate::api::EnableAgentsRequest =
            serde_json::from_value(json!({"agents": ["task_agent"]})).unwrap();
        assert_eq!(ok.agents, ["task_agent"]);
        assert!(serde_json::from_value::<crate::api::EnableAgentsRequest>(
            json!({"agents": [], "all": true})
        )
        .is_err());
    }
}
