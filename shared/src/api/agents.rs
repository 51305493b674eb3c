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
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Vec<AgentName>, min_items = 1, max_items = 4)
    )]
    pub agents: Vec<String>,
}

/// The agents of this server, as the contract names them (plugin agents are not loaded yet).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[allow(non_camel_case_types, dead_code)]
enum AgentName {
    task_agent,
    note_agent,
    project_agent,
    checkpoint_agent,
}
