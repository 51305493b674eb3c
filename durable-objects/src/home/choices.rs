//! The user's chat choices: the agents they enabled (`PUT /agents/enabled`). Per-user state,
//! so it lives in the home and reaches every chat request with its admission, without another
//! hop. Names are checked against the agent registry by the worker; the home applies the tier's
//! count limit with the tier in force, so a choice can never be stored beyond it.
//!
//! It also keeps the user's installed plugins whose live version declares agents
//! ([`InstalledPlugin`]: plugin id and live version id), so a chat request learns which plugin
//! agents to load with its admission, without D1. The worker pushes the set on every install and
//! uninstall ([`SetInstalledPlugins`](shared::home::ops::SetInstalledPlugins)) and the home reloads it from D1 with its account copy
//! (at most a minute old), which is how a newly approved version reaches a home. Replacing the
//! set drops, from the stored agent choice, every agent of a plugin that left it, so an
//! uninstalled plugin's agents leave the choice at once.

use shared::chat::allowance;
use shared::home::ops::{ChatChoices, Done, InstalledPlugin, SetEnabledAgents};
use shared::AppError;

use super::sql::Sql;
use super::{store, Caller, Home};

impl<S: Sql> Home<'_, S> {
    /// The user's chat choices.
    ///
    /// # Errors
    /// Storage failures.
    pub fn chat_choices(&self) -> Result<ChatChoices, AppError> {
        let row = self
            .sql
            .one("SELECT agents FROM chat_choices WHERE id = 1", &[])
            .map_err(store)?;
        let agents = match row.and_then(|r| r.opt_text(0)) {
            None => None,
            Some(text) => Some(serde_json::from_str::<Vec<String>>(&text).map_err(|e| {
                AppError::internal(format!("home: stored agent choice unreadable: {e}"))
            })?),
        };
        Ok(ChatChoices {
            agents,
            plugins: self.installed_plugins()?,
        })
    }

    /// The installed plugins with agents, sorted by plugin id.
    ///
    /// # Errors
    /// Storage failures.
    pub fn installed_plugins(&self) -> Result<Vec<InstalledPlugin>, AppError> {
        let row = self
            .sql
            .one("SELECT plugins FROM plugin_set WHERE id = 1", &[])
            .map_err(store)?;
        match row.and_then(|r| r.opt_text(0)) {
            None => Ok(Vec::new()),
            Some(text) => serde_json::from_str(&text).map_err(|e| {
                AppError::internal(format!("home: stored plugin set unreadable: {e}"))
            }),
        }
    }

    /// Replaces the installed plugins with agents (see the module docs); drops the agents of
    /// plugins no longer in the set from the stored choice.
    ///
    /// # Errors
    /// Storage failures.
    pub fn set_installed_plugins(&self, plugins: &[InstalledPlugin]) -> Result<Done, AppError> {
        let mut set = plugins.to_vec();
        set.sort();
        set.dedup_by_key(|p| p.plugin_id);
        let text = serde_json::to_string(&set).map_err(AppError::internal)?;
        self.sql
            .exec(
                "INSERT INTO plugin_set (id, plugins) VALUES (1, ?) \
                 ON CONFLICT (id) DO UPDATE SET plugins = excluded.plugins",
                &[text.into()],
            )
            .map_err(store)?;
        if let Some(chosen) = self.chat_choices()?.agents {
            let kept: Vec<String> = chosen
                .iter()
                .filter(|name| {
                    plugin_of(name).is_none_or(|id| set.iter().any(|p| p.plugin_id == id))
                })
                .cloned()
                .collect();
            if kept.len() != chosen.len() {
                // An empty choice is no choice: the tier's default applies again.
                let stored = if kept.is_empty() {
                    None
                } else {
                    Some(serde_json::to_string(&kept).map_err(AppError::internal)?)
                };
                self.sql
                    .exec(
                        "UPDATE chat_choices SET agents = ? WHERE id = 1",
                        &[stored.into()],
                    )
                    .map_err(store)?;
            }
        }
        Ok(Done {})
    }

    pub(super) fn set_enabled_agents(
        &self,
        c: &Caller,
        op: &SetEnabledAgents,
    ) -> Result<Done, AppError> {
        if op.agents.is_empty() {
            return Err(AppError::field("agents", "choose at least one agent"));
        }
        allowance::check_count(c.principal.tier, op.agents.len())?;
        let text = serde_json::to_string(&op.agents).map_err(AppError::internal)?;
        self.sql
            .exec(
                "INSERT INTO chat_choices (id, agents) VALUES (1, ?) \
                 ON CONFLICT (id) DO UPDATE SET agents = excluded.agents",
                &[text.into()],
            )
            .map_err(store)?;
        Ok(Done {})
    }
}

/// The plugin of a plugin agent's name (`plugin.<id>.<name>`); `None` for a built-in agent.
fn plugin_of(agent: &str) -> Option<uuid::Uuid> {
    let rest = agent.strip_prefix("plugin.")?;
    let (id, _) = rest.split_once('.')?;
    uuid::Uuid::try_parse(id).ok()
}
