//! The chat brain: the LLM clients (OpenAI-compatible and Anthropic, over what
//! [`upstream`] shares) and the choice among the configured [`providers`], the agents and their
//! shared tool loop, the agents that installed plugins declare, the agents [`allowance`], the
//! orchestrator, execution plans and playbooks, and the sanitizer that keeps prompts from
//! leaving the server.
//!
//! Nothing here stores user data: agents see the request's [`crate::api::ChatContext`] and
//! answer with text and [`crate::api::PlanAction`]s that the app applies locally.

pub mod agent;
pub mod agents;
pub mod allowance;
pub mod anthropic;
pub mod loader;
pub mod openai;
pub mod orchestrator;
pub mod plans;
pub mod plugin_agent;
pub mod prompts;
pub mod providers;
pub mod registry;
pub mod sanitize;
pub mod sent;
pub mod sse;
pub mod upstream;
