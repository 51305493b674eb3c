//! The LLM providers of this server (`LLM_PROVIDERS`), one client each, and the choice of one
//! for a request.
//!
//! [`ProviderRegistry`] is built once from the configuration (generic over the [`HttpClient`],
//! so it runs natively in tests). [`ProviderRegistry::select`] answers, for the caller's tier and
//! the request's `provider` and `model`, a [`SelectedLlm`]: an [`Llm`] that sends every call of
//! the request to that provider *with that model*. So the chosen model reaches the wire without
//! any change to [`LlmRequest`] or to the agents, which keep building requests as before; an
//! [`Llm`] used directly (an `OpenAiClient`) still sends its own default model.
//!
//! The tier rule is the matrix's `providers` row: a tier with `providers: n` may use the first
//! `n` configured providers (free: `1`, the default only), `-1` every one. Naming another is
//! 403 `tier_required` (feature `providers`, the cheapest tier allowing it); an unknown provider
//! or a model outside the provider's list is 422 naming `provider` or `model`.

use async_trait::async_trait;

use super::anthropic::AnthropicClient;
use super::openai::OpenAiClient;
use crate::api::{ProviderInfo, ProvidersResponse};
use crate::config::{Config, ProviderConfig};
use crate::domain::{ProviderKind, Tier};
use crate::error::AppError;
use crate::ports::{HttpClient, Llm, LlmRequest, LlmResponse, LlmStream, UpstreamError};
use crate::tiers::features;

/// The matrix row that limits providers.
pub const FEATURE: &str = "providers";

/// A provider's client, which can be asked for any of the provider's models.
#[async_trait(?Send)]
pub trait ProviderClient {
    /// The model used when a request names none.
    fn default_model(&self) -> &str;
    /// One completion by `model` (as [`Llm::complete`]).
    async fn complete_as(
        &self,
        model: &str,
        req: &LlmRequest,
    ) -> Result<LlmResponse, UpstreamError>;
    /// One completion by `model`, streamed (as [`Llm::stream`]).
    async fn stream_as<'a>(
        &'a self,
        model: &str,
        req: &LlmRequest,
    ) -> Result<LlmStream<'a>, UpstreamError>;
}

/// A client of either kind.
enum Client<H> {
    OpenAi(OpenAiClient<H>),
    Anthropic(AnthropicClient<H>),
}

#[async_trait(?Send)]
impl<H: HttpClient> ProviderClient for Client<H> {
    fn default_model(&self) -> &str {
        match self {
            Client::OpenAi(c) => c.default_model(),
            Client::Anthropic(c) => c.default_model(),
        }
    }

    async fn complete_as(
        &self,
        model: &str,
        req: &LlmRequest,
    ) -> Result<LlmResponse, UpstreamError> {
        match self {
            Client::OpenAi(c) => c.complete_as(model, req).await,
            Client::Anthropic(c) => c.complete_as(model, req).await,
        }
    }

    async fn stream_as<'a>(
        &'a self,
        model: &str,
        req: &LlmRequest,
    ) -> Result<LlmStream<'a>, UpstreamError> {
        match self {
            Client::OpenAi(c) => c.stream_as(model, req).await,
            Client::Anthropic(c) => c.stream_as(model, req).await,
        }
    }
}

/// One configured provider and its client.
struct Provider<H> {
    name: String,
    kind: ProviderKind,
    models: Vec<String>,
    default_model: String,
    client: Client<H>,
}

/// Every configured provider, the default first.
pub struct ProviderRegistry<H> {
    providers: Vec<Provider<H>>,
}

impl<H> std::fmt::Debug for ProviderRegistry<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.providers.iter().map(|p| (&p.name, p.kind.as_str())))
            .finish()
    }
}

impl<H: HttpClient + Clone> ProviderRegistry<H> {
    /// The providers of `config` (`LLM_PROVIDERS`, or the one `OPENAI_*` provider).
    pub fn from_config(http: &H, config: &Config) -> Self {
        Self::new(http, &config.providers)
    }

    /// A registry of `providers` (in order; the first is the default), each client over a clone
    /// of `http`. With none, every selection answers `llm_not_configured`.
    pub fn new(http: &H, providers: &[ProviderConfig]) -> Self {
        Self {
            providers: providers
                .iter()
                .map(|p| Provider {
                    name: p.name.clone(),
                    kind: p.kind,
                    models: p.models.clone(),
                    default_model: p.default_model.clone(),
                    client: match p.kind {
                        ProviderKind::OpenAi => {
                            Client::OpenAi(OpenAiClient::for_provider(http.clone(), p))
                        }
                        ProviderKind::Anthropic => {
                            Client::Anthropic(AnthropicClient::new(http.clone(), p))
                        }
                    },
                })
                .collect(),
        }
    }
}

impl<H: HttpClient> ProviderRegistry<H> {
    /// The default provider's name, if any provider is configured.
    pub fn default_provider(&self) -> Option<&str> {
        self.providers.first().map(|p| p.name.as_str())
    }

    /// The model for a request by a `tier` user naming `provider` and `model` (either may be
    /// absent: the default provider, the provider's default model).
    ///
    /// # Errors
    /// 422 `validation_failed` on `provider` for a provider this server does not have, or on
    /// `model` for a model outside the provider's list; 403 `tier_required` (feature
    /// `providers`) for a provider beyond the tier's allowance; `llm_not_configured` when no
    /// provider is configured.
    pub fn select(
        &self,
        tier: Tier,
        provider: Option<&str>,
        model: Option<&str>,
    ) -> Result<SelectedLlm<'_>, AppError> {
        let (index, chosen) = match provider {
            None => (0, self.providers.first().ok_or(AppError::LlmNotConfigured)?),
            Some(name) => self
                .providers
                .iter()
                .enumerate()
                .find(|(_, p)| p.name == name)
                .ok_or_else(|| AppError::field("provider", "is not a provider of this server"))?,
        };
        if !may_use(tier, index) {
            return Err(AppError::TierRequired {
                feature: FEATURE,
                required_tier: cheapest_tier_for(index).as_str(),
            });
        }
        let model = match model {
            None => chosen.default_model.as_str(),
            Some(m) => chosen
                .models
                .iter()
                .find(|known| *known == m)
                .ok_or_else(|| AppError::field("model", "is not a model of this provider"))?,
        };
        Ok(SelectedLlm {
            provider: &chosen.name,
            kind: chosen.kind,
            model,
            client: &chosen.client,
        })
    }

    /// What a `tier` user may choose (`GET /providers`): the providers within the allowance,
    /// in order, with their models.
    pub fn list(&self, tier: Tier) -> ProvidersResponse {
        ProvidersResponse {
            providers: self
                .providers
                .iter()
                .enumerate()
                .filter(|(i, _)| may_use(tier, *i))
                .map(|(i, p)| ProviderInfo {
                    name: p.name.clone(),
                    kind: p.kind,
                    models: p.models.clone(),
                    default_model: p.default_model.clone(),
                    default: i == 0,
                })
                .collect(),
        }
    }
}

/// Whether `tier` may use the provider at `index` (the first `n` of the `providers` row).
fn may_use(tier: Tier, index: usize) -> bool {
    let limit = features(tier).providers;
    limit < 0 || usize::try_from(limit).is_ok_and(|n| index < n)
}

/// The cheapest tier that may use the provider at `index`.
fn cheapest_tier_for(index: usize) -> Tier {
    Tier::ALL
        .into_iter()
        .find(|t| may_use(*t, index))
        .unwrap_or(Tier::Team)
}

/// The provider and model chosen for one request: every call goes to that provider with that
/// model. Pass it wherever an [`Llm`] is wanted (the orchestrator).
pub struct SelectedLlm<'a> {
    provider: &'a str,
    kind: ProviderKind,
    model: &'a str,
    client: &'a dyn ProviderClient,
}

impl std::fmt::Debug for SelectedLlm<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelectedLlm")
            .field("provider", &self.provider)
            .field("kind", &self.kind)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl SelectedLlm<'_> {
    /// The provider's name.
    pub fn provider(&self) -> &str {
        self.provider
    }

    /// The provider's kind.
    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    /// The model every call asks for.
    pub fn model(&self) -> &str {
        self.model
    }
}

#[async_trait(?Send)]
impl Llm for SelectedLlm<'_> {
    async fn complete(&self, req: &LlmRequest) -> Result<LlmResponse, UpstreamError> {
        self.client.complete_as(self.model, req).await
    }

    async fn stream<'s>(&'s self, req: &LlmRequest) -> Result<LlmStream<'s>, UpstreamError> {
        self.client.stream_as(self.model, req).await
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use secrecy::SecretString;
    use serde_json::{json, Value};

    use super::*;
    use crate::chat::anthropic::native::text_message;
    use crate::chat::openai::native::text_completion;
    use crate::config::OpenAiConfig;
    use crate::ports::{HttpError, HttpResponse, LlmDelta, LlmMessage};
    use crate::testing::ScriptedHttp;

    fn provider(name: &str, kind: ProviderKind, base: &str, models: &[&str]) -> ProviderConfig {
        ProviderConfig {
            name: name.to_owned(),
            kind,
            base_url: url::Url::parse(base).unwrap(),
            api_key: Some(SecretString::from(format!("sk-{name}"))),
            models: models.iter().map(|m| (*m).to_owned()).collect(),
            default_model: models[0].to_owned(),
            timeout_ms: 1_000,
        }
    }

    /// `openai` (default: `gpt-4o-mini`, also `gpt-4o`), `claude` (Anthropic) and `local`
    /// (an Ollama).
    fn three() -> Vec<ProviderConfig> {
        vec![
            provider(
                "openai",
                ProviderKind::OpenAi,
                "https://api.openai.test/v1",
                &["gpt-4o-mini", "gpt-4o"],
            ),
            provider(
                "claude",
                ProviderKind::Anthropic,
                "https://api.anthropic.test/v1",
                &["claude-3-5-haiku-latest", "claude-3-5-sonnet-latest"],
            ),
            provider(
                "local",
                ProviderKind::OpenAi,
                "http://127.0.0.1:11434/v1",
                &["llama3.1:8b"],
            ),
        ]
    }

    fn answers(n: usize, body: &Value) -> ScriptedHttp {
        ScriptedHttp::with(
            (0..n)
                .map(|_| {
                    Ok::<_, HttpError>(HttpResponse {
                        status: 200,
                        body: body.to_string().into_bytes(),
                    })
                })
                .collect(),
        )
    }

    fn request() -> LlmRequest {
        LlmRequest::plain("test", "Be brief.".into(), "Hi".into())
    }

    /// The URL and the `model` of each request sent.
    fn sent(http: &ScriptedHttp) -> Vec<(String, String)> {
        http.requests
            .borrow()
            .iter()
            .map(|r| {
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                (r.url.clone(), body["model"].as_str().unwrap().to_owned())
            })
            .collect()
    }

    #[tokio::test]
    async fn naming_nothing_uses_the_default_provider_and_its_default_model() {
        let http = answers(1, &text_completion("hi"));
        let registry = ProviderRegistry::new(&&http, &three());
        assert_eq!(registry.default_provider(), Some("openai"));
        let llm = registry.select(Tier::Free, None, None).unwrap();
        assert_eq!(
            (llm.provider(), llm.kind(), llm.model()),
            ("openai", ProviderKind::OpenAi, "gpt-4o-mini")
        );
        llm.complete(&request()).await.unwrap();
        assert_eq!(
            sent(&http),
            [(
                "https://api.openai.test/v1/chat/completions".to_owned(),
                "gpt-4o-mini".to_owned()
            )]
        );
    }

    #[tokio::test]
    async fn the_chosen_model_reaches_the_wire_for_every_call_plain_or_streamed() {
        let http = answers(2, &text_completion("hi"));
        let registry = ProviderRegistry::new(&&http, &three());
        let llm = registry
            .select(Tier::Free, Some("openai"), Some("gpt-4o"))
            .unwrap();
        llm.complete(&request()).await.unwrap();
        // ScriptedHttp answers streams with the whole body: a JSON body is no event stream,
        // but the request was sent with the chosen model all the same.
        let items: Vec<_> = llm.stream(&request()).await.unwrap().collect().await;
        assert!(items.last().is_some_and(Result::is_err));
        let models: Vec<String> = sent(&http).into_iter().map(|(_, m)| m).collect();
        assert_eq!(models, ["gpt-4o", "gpt-4o"]);
    }

    #[tokio::test]
    async fn a_paid_tier_may_name_any_provider_and_reaches_it_with_its_model() {
        let http = answers(1, &text_message("Hello from Claude."));
        let registry = ProviderRegistry::new(&&http, &three());
        let llm = registry
            .select(Tier::Pro, Some("claude"), Some("claude-3-5-sonnet-latest"))
            .unwrap();
        assert_eq!(llm.kind(), ProviderKind::Anthropic);
        let resp = llm.complete(&request()).await.unwrap();
        assert_eq!(resp.message.content.as_deref(), Some("Hello from Claude."));
        assert_eq!(
            sent(&http),
            [(
                "https://api.anthropic.test/v1/messages".to_owned(),
                "claude-3-5-sonnet-latest".to_owned()
            )]
        );
        let headers = &http.requests.borrow()[0].headers;
        assert!(headers.contains(&("x-api-key".to_owned(), "sk-claude".to_owned())));

        let local = registry.select(Tier::Team, Some("local"), None).unwrap();
        assert_eq!(local.model(), "llama3.1:8b");
    }

    #[test]
    fn a_free_user_naming_another_provider_needs_pro() {
        let http = ScriptedHttp::default();
        let registry = ProviderRegistry::new(&&http, &three());
        for name in ["claude", "local"] {
            let e = registry.select(Tier::Free, Some(name), None).unwrap_err();
            assert_eq!((e.status(), e.code()), (403, "tier_required"));
            assert!(matches!(
                e,
                AppError::TierRequired {
                    feature: "providers",
                    required_tier: "pro"
                }
            ));
        }
        assert!(registry
            .select(Tier::Free, Some("openai"), Some("gpt-4o"))
            .is_ok());
        for tier in [Tier::Pro, Tier::Power, Tier::Team] {
            assert!(
                registry.select(tier, Some("local"), None).is_ok(),
                "{tier:?}"
            );
        }
    }

    fn field_of(e: &AppError) -> &str {
        match e {
            AppError::Validation(fields) => {
                assert_eq!(fields.len(), 1);
                &fields[0].field
            }
            other => panic!("validation expected, got {other:?}"),
        }
    }

    #[test]
    fn unknown_providers_and_models_outside_the_list_are_422_by_field() {
        let http = ScriptedHttp::default();
        let registry = ProviderRegistry::new(&&http, &three());
        let e = registry
            .select(Tier::Team, Some("gemini"), None)
            .unwrap_err();
        assert_eq!((e.status(), field_of(&e)), (422, "provider"));
        // Unknown is unknown whatever the tier: a free user learns nothing more.
        let e = registry
            .select(Tier::Free, Some("gemini"), None)
            .unwrap_err();
        assert_eq!(field_of(&e), "provider");
        let e = registry
            .select(Tier::Free, None, Some("gpt-5-ultra"))
            .unwrap_err();
        assert_eq!((e.status(), field_of(&e)), (422, "model"));
        let e = registry
            .select(Tier::Pro, Some("claude"), Some("gpt-4o"))
            .unwrap_err();
        assert_eq!(field_of(&e), "model", "another provider's model");
        // The tier is checked before the model.
        let e = registry
            .select(Tier::Free, Some("claude"), Some("gpt-4o"))
            .unwrap_err();
        assert_eq!(e.code(), "tier_required");
    }

    #[test]
    fn the_list_shows_what_the_tier_may_use_with_the_default_marked() {
        let http = ScriptedHttp::default();
        let registry = ProviderRegistry::new(&&http, &three());
        let free = registry.list(Tier::Free);
        assert_eq!(
            serde_json::to_value(&free).unwrap(),
            json!({"providers": [{"name": "openai", "kind": "openai",
                "models": ["gpt-4o-mini", "gpt-4o"], "default_model": "gpt-4o-mini",
                "default": true}]})
        );
        let pro = registry.list(Tier::Pro);
        let rows: Vec<(&str, &str, bool)> = pro
            .providers
            .iter()
            .map(|p| (p.name.as_str(), p.kind.as_str(), p.default))
            .collect();
        assert_eq!(
            rows,
            [
                ("openai", "openai", true),
                ("claude", "anthropic", false),
                ("local", "openai", false)
            ]
        );
        assert_eq!(registry.list(Tier::Team), pro);
    }

    #[tokio::test]
    async fn without_llm_providers_the_openai_settings_answer_as_before() {
        let openai = OpenAiConfig {
            api_key: None,
            base_url: url::Url::parse("https://api.openai.com/v1").unwrap(),
            model: "gpt-4o-mini".to_owned(),
            timeout_ms: 30_000,
        };
        let http = ScriptedHttp::default();
        let registry = ProviderRegistry::new(&&http, &[ProviderConfig::from_openai(&openai)]);
        let llm = registry.select(Tier::Free, None, None).unwrap();
        assert_eq!((llm.provider(), llm.model()), ("openai", "gpt-4o-mini"));
        let e = llm.complete(&request()).await.unwrap_err();
        assert_eq!(
            e.into_app_error(crate::error::Upstream::Llm).code(),
            "llm_not_configured"
        );
        assert!(http.requests.borrow().is_empty());
        assert_eq!(
            registry
                .select(Tier::Free, Some("openai"), Some("gpt-4o-mini"))
                .unwrap()
                .model(),
            "gpt-4o-mini"
        );
    }

    #[test]
    fn a_registry_without_providers_is_not_configured() {
        let http = ScriptedHttp::default();
        let registry = ProviderRegistry::new(&&http, &[]);
        assert_eq!(registry.default_provider(), None);
        let e = registry.select(Tier::Team, None, None).unwrap_err();
        assert_eq!(e.code(), "llm_not_configured");
        assert!(registry.list(Tier::Team).providers.is_empty());
    }

    #[tokio::test]
    async fn a_streamed_answer_through_the_selection_comes_from_the_chosen_provider() {
        let body = crate::chat::anthropic::native::sse_text_body(&["Hel", "lo"]);
        let http = ScriptedHttp::with(vec![Ok(HttpResponse {
            status: 200,
            body: body.into_bytes(),
        })]);
        let registry = ProviderRegistry::new(&&http, &three());
        let llm = registry.select(Tier::Power, Some("claude"), None).unwrap();
        let items: Vec<_> = llm.stream(&request()).await.unwrap().collect().await;
        let Some(Ok(LlmDelta::Done(resp))) = items.last() else {
            panic!("{items:?}")
        };
        assert_eq!(
            resp.message,
            LlmMessage {
                role: "assistant".into(),
                content: Some("Hello".into()),
                tool_calls: vec![],
                tool_call_id: None,
            }
        );
        assert_eq!(sent(&http)[0].1, "claude-3-5-haiku-latest");
    }
}
