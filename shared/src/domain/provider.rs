//! LLM providers as the configuration and the API name them: their kinds, and the rules for
//! provider and model names (shared by `LLM_PROVIDERS` and `ChatRequest`).

use serde::{Deserialize, Serialize};

/// The longest provider name.
pub const MAX_PROVIDER_NAME_LEN: usize = 32;
/// The longest model name.
pub const MAX_MODEL_NAME_LEN: usize = 128;
/// The characters a model name may hold besides ASCII letters and digits.
const MODEL_NAME_PUNCTUATION: &str = "._-:/@+";

/// The wire protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI Chat Completions (OpenAI itself, or any compatible server: Ollama, vLLM, …).
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
}

impl ProviderKind {
    /// Every kind.
    pub const ALL: [ProviderKind; 2] = [ProviderKind::OpenAi, ProviderKind::Anthropic];

    /// The wire name (`openai`, `anthropic`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Checks a provider name: 1–32 characters of `a-z`, `0-9`, `_` and `-`.
///
/// # Errors
/// Why the name is invalid, in words safe to show (the name itself is not repeated).
pub fn check_provider_name(name: &str) -> Result<(), &'static str> {
    let valid = (1..=MAX_PROVIDER_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err("must be 1–32 characters of a-z, 0-9, `_` and `-`")
    }
}

/// Checks a model name: 1–128 characters, starting with an ASCII letter or digit, then letters,
/// digits and `.` `_` `-` `:` `/` `@` `+` (`gpt-4o-mini`, `claude-3-5-haiku-latest`,
/// `llama3.1:8b`, `meta-llama/Llama-3.1-8B-Instruct`).
///
/// # Errors
/// Why the name is invalid, in words safe to show (the name itself is not repeated).
pub fn check_model_name(name: &str) -> Result<(), &'static str> {
    let valid = (1..=MAX_MODEL_NAME_LEN).contains(&name.len())
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || MODEL_NAME_PUNCTUATION.contains(c));
    if valid {
        Ok(())
    } else {
        Err(
            "must be 1–128 characters: an ASCII letter or digit, then letters, digits and \
             `.` `_` `-` `:` `/` `@` `+`",
        )
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn provider_names_are_short_lowercase_identifiers() {
        for ok in ["openai", "local-ollama", "claude_2", "a", &"x".repeat(32)] {
            assert!(check_provider_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "OpenAI", "my provider", "ünï", "a.b", &"x".repeat(33)] {
            assert!(check_provider_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn model_names_accept_what_real_servers_call_their_models() {
        for ok in [
            "gpt-4o-mini",
            "claude-3-5-haiku-20241022",
            "llama3.1:8b",
            "meta-llama/Llama-3.1-8B-Instruct",
            "claude-3-5-sonnet@20240620",
            "qwen2.5-coder:7b-instruct-q4_K_M",
        ] {
            assert!(check_model_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " gpt-4o",
            "gpt 4o",
            "-rf",
            "/etc/passwd",
            "gpt-4o\n",
            "模型",
            &"m".repeat(129),
        ] {
            assert!(check_model_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kinds_round_trip_through_their_wire_names() {
        for kind in ProviderKind::ALL {
            assert_eq!(ProviderKind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert_eq!(ProviderKind::parse("gemini"), None);
    }

    proptest! {
        #[test]
        fn a_valid_model_name_never_holds_whitespace_or_control_characters(s in "\\PC{0,140}") {
            if check_model_name(&s).is_ok() {
                prop_assert!(!s.chars().any(|c| c.is_whitespace() || c.is_control()));
                prop_assert!(s.len() <= MAX_MODEL_NAME_LEN);
            }
        }
    }
}
