//! `GET /agents` and `PUT /agents/enabled`: the agents a user can use and the ones enabled.

use serde::{Deserialize, Serialize};

/// Most names accepted in one `PUT /agents/enabled`.
pub const MAX_ENABLED_AGENTS: usize = 64;
/// Longest agent name accepted in one `PUT /agents/enabled`.
pub const MAX_AGENT_NAME_CHARS: usize = 64;

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

/// The contract of `agents`: 1 to as many names as the server has agents, each one of them and
/// listed once (the names come from the standard registry, so they cannot drift).
#[cfg(feature = "openapi")]
fn enabled_agents_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let names: Vec<String> = crate::chat::registry::AgentRegistry::standard()
        .iter()
        .map(|a| a.name().to_owned())
        .collect();
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(names.clone())),
        )
        .min_items(Some(1))
        .max_items(Some(names.len()))
        .unique_items(true)
        .description(Some("Agent names from `GET /agents`, each once."))
        .build()
}
