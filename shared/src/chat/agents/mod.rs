//! The four agents of plan Step 6, one per part of the app's data model: tasks (and their
//! comments), checkpoints, projects and notes.
//!
//! Read tools answer from the request's [`crate::api::ChatContext`]; write tools validate what
//! the model sent and answer with [`crate::api::PlanAction`]s for the app to apply: one record
//! change, followed for notes by the `index_document` of the written note; reminder tools answer
//! one `send_notification`. Nothing is stored or written server-side.

pub(crate) mod args;
mod checkpoint;
mod note;
mod project;
mod task;

pub use checkpoint::CheckpointAgent;
pub use note::NoteAgent;
pub use project::ProjectAgent;
pub use task::TaskAgent;

use super::agent::ChatAgent;

/// The product's agents, in registration order: task, checkpoint, project, note.
pub fn all() -> Vec<Box<dyn ChatAgent>> {
    vec![
        Box::new(TaskAgent),
        Box::new(CheckpointAgent),
        Box::new(ProjectAgent),
        Box::new(NoteAgent),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::args::testkit::{call, rec};
    use super::*;
    use crate::api::ChatContext;
    use crate::chat::agent::ToolError;
    use crate::chat::prompts::AGENT_COMMON;

    #[test]
    fn all_lists_the_four_agents_in_order() {
        let names: Vec<&str> = all().iter().map(|a| a.name()).collect();
        assert_eq!(
            names,
            [
                "task_agent",
                "checkpoint_agent",
                "project_agent",
                "note_agent"
            ]
        );
    }

    #[test]
    fn every_prompt_fragment_is_a_full_sentence_of_at_least_40_characters() {
        for agent in all() {
            assert!(!agent.prompt().is_empty(), "{}", agent.name());
            for f in agent.prompt() {
                assert!(f.chars().count() >= 40, "{}: {f}", agent.name());
                assert!(f.ends_with('.'), "{}: {f}", agent.name());
                assert!(!AGENT_COMMON.contains(f), "{}: {f}", agent.name());
            }
        }
    }

    #[test]
    fn tool_names_are_unique_across_agents_and_every_tool_is_described() {
        let mut names = Vec::new();
        for agent in all() {
            for tool in agent.tools() {
                assert!(tool.description.len() >= 20, "{}", tool.name);
                assert!(!names.contains(&tool.name), "{}", tool.name);
                names.push(tool.name);
            }
        }
        assert_eq!(names.len(), 9 + 5 + 6 + 5);
    }

    #[test]
    fn tool_errors_never_quote_prompt_text() {
        let context = ChatContext {
            recent_tasks: vec![rec(&json!({"id": 1, "title": "T"}))],
            ..ChatContext::default()
        };
        let fragments: Vec<&str> = all()
            .iter()
            .flat_map(|a| a.prompt().iter().copied())
            .chain(AGENT_COMMON.iter().copied())
            .collect();
        for agent in all() {
            for tool in agent.tools() {
                for args in ["{", "[]", r#"{"zzz": 1}"#, "{}", r#"{"task_id": 99}"#] {
                    if let Err(e) = call(agent.as_ref(), &context, &tool.name, args) {
                        let m = e.to_string();
                        for f in &fragments {
                            assert!(!m.contains(f), "{m}");
                        }
                    }
                }
            }
            assert!(matches!(
                call(agent.as_ref(), &context, "drop_database", "{}"),
                Err(ToolError::UnknownTool(n)) if n == "drop_database"
            ));
        }
    }
}
