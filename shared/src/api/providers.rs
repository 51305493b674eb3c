//! `GET /providers`: the LLM providers and models the caller may choose in a `ChatRequest`.

use serde::{Deserialize, Serialize};

use crate::domain::ProviderKind;

/// The providers the caller's tier may use, the server's default first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProvidersResponse {
    /// The providers, in the server's order (the default first).
    pub providers: Vec<ProviderInfo>,
}

/// One provider the caller may name in `ChatRequest.provider`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderInfo {
    /// Its name (`ChatRequest.provider`).
    #[cfg_attr(feature = "openapi", schema(example = "openai"))]
    pub name: String,
    /// The protocol it speaks.
    pub kind: ProviderKind,
    /// The models a request may name (`ChatRequest.model`).
    pub models: Vec<String>,
    /// The model used when a request names none.
    pub default_model: String,
    /// Whether this is the server's default provider (used when a request names none).
    pub default: bool,
}
