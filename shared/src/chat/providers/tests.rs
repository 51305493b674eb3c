//! The registry: selection by tier, provider and model, and the listing.

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
