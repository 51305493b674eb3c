//! `LLM_PROVIDERS`: the LLM providers this server may call, parsed into [`ProviderConfig`]s.
//!
//! The setting is a JSON array, the first entry being the default provider:
//!
//! ```json
//! [{"name": "openai", "kind": "openai", "base_url": "https://api.openai.com/v1",
//!   "api_key": "sk-…", "models": ["gpt-4o-mini", "gpt-4o"], "default_model": "gpt-4o-mini"},
//!  {"name": "claude", "kind": "anthropic", "base_url": "https://api.anthropic.com/v1",
//!   "api_key": "sk-ant-…", "models": ["claude-3-5-haiku-latest"],
//!   "default_model": "claude-3-5-haiku-latest", "timeout_ms": 60000}]
//! ```
//!
//! `name` is 1–32 characters of `a-z0-9_-`, unique; `kind` is `openai` (Chat Completions, any
//! compatible base URL such as a local Ollama or vLLM) or `anthropic` (Messages API); `base_url`
//! is absolute http(s) (https only when `ENV=prod`); `api_key` is required (a keyless local
//! server takes any placeholder); `models` is a non-empty list of distinct model names and
//! `default_model` one of them; `timeout_ms` (100–300 000) falls back to `OPENAI_TIMEOUT_MS`.
//! Unknown fields are refused, so a typo cannot silently drop a setting. Since the array holds
//! keys, set it as a secret.
//!
//! Without `LLM_PROVIDERS` there is one provider, `openai`, built from `OPENAI_API_KEY`,
//! `OPENAI_BASE_URL` and `OPENAI_MODEL` exactly as before (no key: `llm_not_configured`).
//!
//! Problems are reported under the key `LLM_PROVIDERS` with the entry's index and field
//! (`[1].base_url must be …`), never with a value: the array holds secrets, and serde's own
//! messages quote what they could not read, so they are not used.

use secrecy::SecretString;
use serde_json::{Map, Value};
use url::Url;

use super::{Environment, OpenAiConfig};
use crate::domain::{check_model_name, check_provider_name, ProviderKind};

/// The setting's name.
pub const LLM_PROVIDERS: &str = "LLM_PROVIDERS";
/// The provider's name when it comes from the `OPENAI_*` settings.
pub const LEGACY_PROVIDER_NAME: &str = "openai";
/// The most providers one server may list.
pub const MAX_PROVIDERS: usize = 16;
/// The most models one provider may list.
pub const MAX_MODELS_PER_PROVIDER: usize = 64;
/// The fields an entry may have.
const FIELDS: &[&str] = &[
    "name",
    "kind",
    "base_url",
    "api_key",
    "models",
    "default_model",
    "timeout_ms",
];

/// One LLM provider the server may call.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Its name (what `ChatRequest.provider` says); unique.
    pub name: String,
    /// The protocol it speaks.
    pub kind: ProviderKind,
    /// Base URL without a trailing slash (`https://api.openai.com/v1`,
    /// `https://api.anthropic.com/v1`).
    pub base_url: Url,
    /// API key; `None` only for the `OPENAI_*` provider without `OPENAI_API_KEY` (every call
    /// then answers `llm_not_configured`).
    pub api_key: Option<SecretString>,
    /// The models a request may name, in the configured order.
    pub models: Vec<String>,
    /// The model used when a request names none; one of `models`.
    pub default_model: String,
    /// Deadline of one attempt and of a pause inside a stream, ms.
    pub timeout_ms: u64,
}

impl ProviderConfig {
    /// The one provider of a server without `LLM_PROVIDERS`: `openai`, from the `OPENAI_*`
    /// settings.
    pub fn from_openai(openai: &OpenAiConfig) -> Self {
        Self {
            name: LEGACY_PROVIDER_NAME.to_owned(),
            kind: ProviderKind::OpenAi,
            base_url: openai.base_url.clone(),
            api_key: openai.api_key.clone(),
            models: vec![openai.model.clone()],
            default_model: openai.model.clone(),
            timeout_ms: openai.timeout_ms,
        }
    }
}

/// Parses `raw` (the value of `LLM_PROVIDERS`). Every problem found is pushed to `problems`
/// (none quotes a value); the providers are returned only when there was none.
pub(super) fn parse(
    raw: &str,
    env: Environment,
    default_timeout_ms: u64,
    problems: &mut Vec<String>,
) -> Option<Vec<ProviderConfig>> {
    let before = problems.len();
    let value: Value = match serde_json::from_str(raw) {
        Ok(v) => v,
        Err(e) => {
            problems.push(format!(
                "must be a JSON array of providers ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ));
            return None;
        }
    };
    let Value::Array(entries) = value else {
        problems.push("must be a JSON array of providers".to_owned());
        return None;
    };
    if entries.is_empty() {
        problems.push("must list at least one provider".to_owned());
        return None;
    }
    if entries.len() > MAX_PROVIDERS {
        problems.push(format!("may list at most {MAX_PROVIDERS} providers"));
    }
    let mut providers = Vec::with_capacity(entries.len());
    // Names seen so far (valid ones, whether or not their entry is), to report repeats even
    // in entries with other problems.
    let mut names: Vec<&str> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let mut entry_problems = Vec::new();
        let Value::Object(fields) = entry else {
            problems.push(format!("[{i}] must be an object"));
            continue;
        };
        let provider = Entry {
            fields,
            env,
            default_timeout_ms,
            problems: &mut entry_problems,
        }
        .parse();
        if let Some(name) = fields
            .get("name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| check_provider_name(n).is_ok())
        {
            if let Some(j) = names.iter().position(|n| *n == name) {
                entry_problems.push(format!(".name repeats the name of entry [{j}]"));
            }
            names.push(name);
        } else {
            names.push("");
        }
        problems.extend(entry_problems.into_iter().map(|p| format!("[{i}]{p}")));
        providers.extend(provider);
    }
    (problems.len() == before).then_some(providers)
}

/// One entry being read; problems are `.field …` (the caller prefixes the index).
struct Entry<'a> {
    fields: &'a Map<String, Value>,
    env: Environment,
    default_timeout_ms: u64,
    problems: &'a mut Vec<String>,
}

impl<'a> Entry<'a> {
    fn problem(&mut self, field: &str, reason: impl std::fmt::Display) {
        self.problems.push(format!(".{field} {reason}"));
    }

    /// A required non-blank string field.
    fn string(&mut self, field: &str) -> Option<&'a str> {
        let fields = self.fields;
        match fields.get(field) {
            None | Some(Value::Null) => {
                self.problem(field, "is required");
                None
            }
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim()),
            Some(_) => {
                self.problem(field, "must be a non-blank string");
                None
            }
        }
    }

    fn parse(mut self) -> Option<ProviderConfig> {
        let fields = self.fields;
        for key in fields.keys() {
            if !FIELDS.contains(&key.as_str()) {
                self.problems.push(format!(": unknown field `{key}`"));
            }
        }
        let name = self
            .string("name")
            .and_then(|n| match check_provider_name(n) {
                Ok(()) => Some(n.to_owned()),
                Err(reason) => {
                    self.problem("name", reason);
                    None
                }
            });
        let kind = self.string("kind").and_then(|k| {
            let kind = ProviderKind::parse(k);
            if kind.is_none() {
                self.problem("kind", "must be `openai` or `anthropic`");
            }
            kind
        });
        let base_url = self.base_url();
        let api_key = self
            .string("api_key")
            .map(|k| SecretString::from(k.to_owned()));
        let models = self.models();
        let default_model = self.string("default_model").map(str::to_owned);
        if let (Some(Value::Array(listed)), Some(default)) = (fields.get("models"), &default_model)
        {
            // Checked against what is listed, valid or not, so both problems show at once.
            if !listed.iter().any(|m| m.as_str() == Some(default.as_str())) {
                self.problem("default_model", "must be one of the entry's models");
            }
        }
        let timeout_ms = self.timeout_ms();
        if !self.problems.is_empty() {
            return None;
        }
        Some(ProviderConfig {
            name: name?,
            kind: kind?,
            base_url: base_url?,
            api_key,
            models: models?,
            default_model: default_model?,
            timeout_ms,
        })
    }

    fn base_url(&mut self) -> Option<Url> {
        let raw = self.string("base_url")?;
        match Url::parse(raw.trim_end_matches('/')) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                if self.env == Environment::Prod && u.scheme() != "https" {
                    self.problem("base_url", "must be https in prod");
                    return None;
                }
                Some(u)
            }
            _ => {
                self.problem("base_url", "must be an absolute http(s) URL");
                None
            }
        }
    }

    fn models(&mut self) -> Option<Vec<String>> {
        let Some(Value::Array(items)) = self.fields.get("models") else {
            self.problem("models", "must be a non-empty array of model names");
            return None;
        };
        if items.is_empty() {
            self.problem("models", "must be a non-empty array of model names");
            return None;
        }
        if items.len() > MAX_MODELS_PER_PROVIDER {
            self.problem(
                "models",
                format!("may list at most {MAX_MODELS_PER_PROVIDER} models"),
            );
        }
        let mut models: Vec<String> = Vec::with_capacity(items.len());
        let mut ok = true;
        for (k, item) in items.iter().enumerate() {
            let field = format!("models[{k}]");
            let Value::String(m) = item else {
                self.problem(&field, "must be a string");
                ok = false;
                continue;
            };
            match check_model_name(m) {
                Ok(()) if models.contains(m) => {
                    self.problem(&field, "repeats an earlier model");
                    ok = false;
                }
                Ok(()) => models.push(m.clone()),
                Err(reason) => {
                    self.problem(&field, reason);
                    ok = false;
                }
            }
        }
        ok.then_some(models)
    }

    fn timeout_ms(&mut self) -> u64 {
        match self.fields.get("timeout_ms") {
            None | Some(Value::Null) => self.default_timeout_ms,
            Some(v) => match v.as_u64() {
                Some(n) if (100..=300_000).contains(&n) => n,
                _ => {
                    self.problem(
                        "timeout_ms",
                        "must be a whole number of milliseconds from 100 to 300000",
                    );
                    self.default_timeout_ms
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;
    use serde_json::json;

    use super::super::{Config, ConfigError};
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn parse_with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        map.insert("JWT_SECRET".to_owned(), SECRET.to_owned());
        Config::from_lookup(|k| map.get(k).cloned())
    }

    fn providers(value: &Value) -> Result<Config, ConfigError> {
        parse_with(&[(LLM_PROVIDERS, &value.to_string())])
    }

    /// The reasons reported, all under `LLM_PROVIDERS`.
    fn reasons(err: &ConfigError) -> Vec<String> {
        assert!(err.0.iter().all(|p| p.key == LLM_PROVIDERS), "{:?}", err.0);
        err.0.iter().map(|p| p.reason.clone()).collect()
    }

    fn openai_entry() -> Value {
        json!({
            "name": "openai", "kind": "openai", "base_url": "https://api.openai.com/v1/",
            "api_key": "sk-openai-secret", "models": ["gpt-4o-mini", "gpt-4o"],
            "default_model": "gpt-4o-mini",
        })
    }

    fn anthropic_entry() -> Value {
        json!({
            "name": "claude", "kind": "anthropic", "base_url": "https://api.anthropic.com/v1",
            "api_key": "sk-ant-secret", "models": ["claude-3-5-haiku-latest"],
            "default_model": "claude-3-5-haiku-latest", "timeout_ms": 60_000,
        })
    }

    #[test]
    fn without_llm_providers_the_openai_settings_make_the_one_provider_as_before() {
        let c = parse_with(&[]).unwrap();
        assert_eq!(c.providers.len(), 1);
        let p = &c.providers[0];
        assert_eq!(p.name, "openai");
        assert_eq!(p.kind, ProviderKind::OpenAi);
        assert_eq!(p.base_url.as_str(), "https://api.openai.com/v1");
        assert!(p.api_key.is_none(), "no key: llm_not_configured as today");
        assert_eq!(p.models, ["gpt-4o-mini"]);
        assert_eq!(p.default_model, "gpt-4o-mini");
        assert_eq!(p.timeout_ms, 30_000);

        let c = parse_with(&[
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9000/v1"),
            ("OPENAI_MODEL", "llama3.1:8b"),
            ("OPENAI_TIMEOUT_MS", "5000"),
        ])
        .unwrap();
        let p = &c.providers[0];
        assert_eq!(p.api_key.as_ref().unwrap().expose_secret(), "sk-test");
        assert_eq!(p.base_url.as_str(), "http://127.0.0.1:9000/v1");
        assert_eq!(
            (p.models.as_slice(), p.default_model.as_str()),
            (&["llama3.1:8b".to_owned()][..], "llama3.1:8b")
        );
        assert_eq!(p.timeout_ms, 5_000);
    }

    #[test]
    fn a_list_of_providers_is_read_in_order_with_the_first_as_default() {
        let c = parse_with(&[
            (
                LLM_PROVIDERS,
                &json!([openai_entry(), anthropic_entry()]).to_string(),
            ),
            ("OPENAI_TIMEOUT_MS", "12000"),
            ("OPENAI_API_KEY", "sk-ignored"),
        ])
        .unwrap();
        let names: Vec<&str> = c.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["openai", "claude"]);
        let (openai, claude) = (&c.providers[0], &c.providers[1]);
        assert_eq!(openai.base_url.as_str(), "https://api.openai.com/v1");
        assert_eq!(
            openai.api_key.as_ref().unwrap().expose_secret(),
            "sk-openai-secret"
        );
        assert_eq!(openai.models, ["gpt-4o-mini", "gpt-4o"]);
        assert_eq!(openai.timeout_ms, 12_000, "falls back to OPENAI_TIMEOUT_MS");
        assert_eq!(claude.kind, ProviderKind::Anthropic);
        assert_eq!(claude.default_model, "claude-3-5-haiku-latest");
        assert_eq!(claude.timeout_ms, 60_000);
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("sk-openai-secret") && !debug.contains("sk-ant-secret"),
            "keys never show in Debug"
        );
    }

    #[test]
    fn every_problem_of_every_entry_is_reported_at_once_without_a_value() {
        let err = providers(&json!([
            {
                "name": "Bad Name!", "kind": "gemini", "base_url": "ftp://secret-host.example",
                "api_key": "", "models": ["gpt-4o", "gpt-4o", "bad model", 7],
                "default_model": "sk-not-listed", "timeout_ms": "sk-live-123", "tmeout": 1,
            },
            "sk-a-string-entry",
            {"name": "ok", "kind": "openai", "base_url": "https://x.example/v1",
             "api_key": "sk-fine", "models": [], "default_model": "m"},
        ]))
        .unwrap_err();
        let reasons = reasons(&err);
        let starts: Vec<&str> = reasons
            .iter()
            .map(|r| r.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            starts,
            [
                "[0]:",
                "[0].name",
                "[0].kind",
                "[0].base_url",
                "[0].api_key",
                "[0].models[1]",
                "[0].models[2]",
                "[0].models[3]",
                "[0].default_model",
                "[0].timeout_ms",
                "[1]",
                "[2].models",
                "[2].default_model",
            ],
            "{reasons:#?}"
        );
        assert!(reasons[0].contains("unknown field `tmeout`"));
        let shown = err.to_string();
        for value in [
            "Bad Name!",
            "gemini",
            "secret-host",
            "bad model",
            "sk-",
            "sk-a-string-entry",
        ] {
            assert!(!shown.contains(value), "{value} leaked: {shown}");
        }
    }

    #[test]
    fn unreadable_json_is_reported_by_position_not_by_content() {
        let err = parse_with(&[(LLM_PROVIDERS, r#"[{"api_key": "sk-live-abc", "name": }]"#)])
            .unwrap_err();
        let reasons = reasons(&err);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("line 1 column"), "{}", reasons[0]);
        assert!(!err.to_string().contains("sk-live"), "{err}");
    }

    #[test]
    fn the_setting_must_be_a_non_empty_array() {
        for (raw, reason) in [
            ("{}", "must be a JSON array of providers"),
            ("[]", "must list at least one provider"),
            ("\"openai\"", "must be a JSON array of providers"),
        ] {
            assert_eq!(
                reasons(&parse_with(&[(LLM_PROVIDERS, raw)]).unwrap_err()),
                [reason],
                "{raw}"
            );
        }
        let many: Vec<Value> = (0..=MAX_PROVIDERS)
            .map(|i| {
                let mut e = openai_entry();
                e["name"] = json!(format!("p{i}"));
                e
            })
            .collect();
        assert_eq!(
            reasons(&providers(&json!(many)).unwrap_err()),
            ["may list at most 16 providers"]
        );
    }

    #[test]
    fn names_must_be_unique_even_in_broken_entries_and_the_default_model_one_of_the_models() {
        let mut second = anthropic_entry();
        second["name"] = json!("openai");
        second["kind"] = json!("gemini");
        let mut third = anthropic_entry();
        third["name"] = json!("third");
        third["default_model"] = json!("claude-3-opus-latest");
        let err = providers(&json!([openai_entry(), second, third])).unwrap_err();
        assert_eq!(
            reasons(&err),
            [
                "[1].kind must be `openai` or `anthropic`",
                "[1].name repeats the name of entry [0]",
                "[2].default_model must be one of the entry's models",
            ]
        );
    }

    #[test]
    fn missing_fields_are_each_named() {
        let err = providers(&json!([{"timeout_ms": null}])).unwrap_err();
        assert_eq!(
            reasons(&err),
            [
                "[0].name is required",
                "[0].kind is required",
                "[0].base_url is required",
                "[0].api_key is required",
                "[0].models must be a non-empty array of model names",
                "[0].default_model is required",
            ]
        );
    }

    #[test]
    fn prod_refuses_plain_http_providers_and_dev_accepts_a_local_server() {
        let mut local = openai_entry();
        local["base_url"] = json!("http://127.0.0.1:11434/v1");
        let raw = json!([anthropic_entry(), local]).to_string();
        let err = parse_with(&[(LLM_PROVIDERS, &raw), ("ENV", "prod")]).unwrap_err();
        assert_eq!(reasons(&err), ["[1].base_url must be https in prod"]);
        let c = parse_with(&[(LLM_PROVIDERS, &raw)]).unwrap();
        assert_eq!(
            c.providers[1].base_url.as_str(),
            "http://127.0.0.1:11434/v1"
        );
    }

    #[test]
    fn out_of_range_timeouts_are_refused() {
        for bad in [json!(99), json!(300_001), json!(-5), json!(1.5)] {
            let mut e = openai_entry();
            e["timeout_ms"] = bad.clone();
            assert_eq!(
                reasons(&providers(&json!([e])).unwrap_err()),
                ["[0].timeout_ms must be a whole number of milliseconds from 100 to 300000"],
                "{bad}"
            );
        }
    }

    #[test]
    fn problems_elsewhere_are_reported_together_with_the_providers() {
        let err = parse_with(&[(LLM_PROVIDERS, "[]"), ("ENV", "staging")]).unwrap_err();
        let keys: Vec<&str> = err.0.iter().map(|p| p.key).collect();
        assert_eq!(keys, ["ENV", LLM_PROVIDERS]);
    }
}
