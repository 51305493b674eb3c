//! The agent registry (plan Step 3): registration, lookup, the list the router sees, and
//! inter-agent calls.

use crate::error::AppError;
use crate::ports::Llm;

use super::agent::{AgentInput, AgentReply, ChatAgent};
use super::agents;

/// The agent used when the classifier's answer names no agent.
pub const FALLBACK_AGENT: &str = "task_agent";

/// A registered agent's public face, for the classifier prompt and listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentInfo {
    /// Registry name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
}

/// Why an agent could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Another agent has the name.
    #[error("an agent named `{0}` is registered already")]
    Duplicate(&'static str),
}

/// The agents, in registration order.
#[derive(Default)]
pub struct AgentRegistry {
    agents: Vec<Box<dyn ChatAgent>>,
}

impl std::fmt::Debug for AgentRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.agents.iter().map(|a| a.name()))
            .finish()
    }
}

impl AgentRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The product's registry: the task, checkpoint, project and note agents.
    pub fn standard() -> Self {
        let mut registry = Self::new();
        for agent in agents::all() {
            if let Err(e) = registry.register(agent) {
                unreachable!("the standard agents have distinct names: {e}");
            }
        }
        registry
    }

    /// Adds an agent.
    pub fn register(&mut self, agent: Box<dyn ChatAgent>) -> Result<(), RegistryError> {
        if self.get(agent.name()).is_some() {
            return Err(RegistryError::Duplicate(agent.name()));
        }
        self.agents.push(agent);
        Ok(())
    }

    /// The agent named `name`.
    pub fn get(&self, name: &str) -> Option<&dyn ChatAgent> {
        self.agents
            .iter()
            .find(|a| a.name() == name)
            .map(AsRef::as_ref)
    }

    /// Every agent's name and description, in registration order.
    pub fn list_agents(&self) -> Vec<AgentInfo> {
        self.agents
            .iter()
            .map(|a| AgentInfo {
                name: a.name(),
                description: a.description(),
            })
            .collect()
    }

    /// Every agent.
    pub fn iter(&self) -> impl Iterator<Item = &dyn ChatAgent> {
        self.agents.iter().map(AsRef::as_ref)
    }

    /// Asks the agent `name` (inter-agent calls).
    ///
    /// # Errors
    /// 404 for an unknown agent; the agent's own errors otherwise.
    pub async fn call_agent(
        &self,
        name: &str,
        input: &AgentInput<'_>,
        llm: &dyn Llm,
    ) -> Result<AgentReply, AppError> {
        let agent = self.get(name).ok_or(AppError::NotFound)?;
        agent.handle(input, llm).await
    }
}
