//! `GET /agents` and `PUT /agents/enabled`: the agents a user can use and the ones enabled.

use serde::{Deserialize, Serialize};

/// Most names accepted in one `PUT /agents/enabled`.
pub const MAX_ENABLED_AGENTS: usize = 64;
/// Longest agent name accepted in one `PUT /agents/enabled`.
pub const MAX_AGENT_NAME_CHARS: usize = 80;

/// `GET /agents`: every agent of the server, with whether the caller has it enabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentsResponse {
    /// The agents, in the server's order.
    pub agents: Vec<AgentListing>,
}

/// One agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentListing {
    /// Its name (what `PUT /agents/enabled` lists).
    #[cfg_attr(feature = "openapi", schema(example = "task_agent"))]
    pub name: String,
    /// Its display title, for the app's screens.
    #[cfg_attr(feature = "openapi", schema(example = "Tasks"))]
    pub title: String,
    /// Whether the caller's chat may route to it.
    pub enabled: bool,
}

/// `PUT /agents/enabled`: the agents to enable, replacing the current choice. At least one;
/// the free tier may enable at most 3 (more is 403 `tier_required`), paid tiers any number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnableAgentsRequest {
    /// Agent names from `GET /agents`, each once.
    #[cfg_attr(feature = "openapi", schema(schema_with = enabled_agents_schema))]
    pub agents: Vec<String>,
}

/// The contract of `agents`: 1 to [`MAX_ENABLED_AGENTS`] names, each listed once, each one of
/// the built-in agents (from the standard registry, so they cannot drift) or a plugin agent
/// `plugin.<plugin id>.<name>` (which ones exist depends on what the caller installed).
#[cfg(feature = "openapi")]
fn enabled_agents_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let names: Vec<String> = crate::chat::registry::AgentRegistry::standard()
        .iter()
        .map(|a| a.name().to_owned())
        .collect();
    let pattern = format!(
        "^({}|plugin\\.[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}\\.[a-z][a-z0-9_]{{0,31}})$",
        names.join("|")
    );
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(pattern))
                .max_length(Some(MAX_AGENT_NAME_CHARS)),
        )
        .min_items(Some(1))
        .max_items(Some(MAX_ENABLED_AGENTS))
        .unique_items(true)
        .description(Some(
            "Agent names from `GET /agents`, each once: built-in agents, and \
             `plugin.<plugin id>.<name>` for the agents of installed plugins.",
        ))
        .build()
}
