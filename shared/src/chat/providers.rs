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
mod chat_tests;
#[cfg(test)]
mod tests;
