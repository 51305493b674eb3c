//! The user's chat choices: the agents they enabled (`PUT /agents/enabled`). Per-user state,
//! so it lives in the home and reaches every chat request with its admission, without another
//! hop. Names are checked against the agent registry by the worker; the home applies the tier's
//! count limit with the tier in force, so a choice can never be stored beyond it.

use shared::chat::allowance;
use shared::home::ops::{ChatChoices, Done, SetEnabledAgents};
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
        Ok(ChatChoices { agents })
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
