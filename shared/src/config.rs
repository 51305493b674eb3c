//! Typed configuration, parsed once from a key lookup.
//!
//! [`Config::from_lookup`] is a pure function over `|key| Option<String>`, so every rule is
//! tested natively; the worker passes a closure over its `Env` (vars and secrets). All problems
//! are collected and reported together, each naming its key (never its value).

mod providers;

use crate::housekeeping::HousekeepingPolicy;
use std::fmt;

use secrecy::SecretString;
use url::Url;

pub use providers::{
    ProviderConfig, LEGACY_PROVIDER_NAME, LLM_PROVIDERS, MAX_MODELS_PER_PROVIDER, MAX_PROVIDERS,
};

/// Default access-token lifetime (15 minutes).
pub const DEFAULT_ACCESS_TOKEN_TTL_SECS: u64 = 900;
/// Default refresh-token lifetime (30 days).
pub const DEFAULT_REFRESH_TOKEN_TTL_SECS: u64 = 30 * 24 * 3600;
/// The public `OpenAI` API.
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// The default chat model.
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";
/// The public Stripe API.
pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com";
/// Default Checkout success page.
pub const DEFAULT_BILLING_SUCCESS_URL: &str =
    "https://adiuva.app/billing/success?session_id={CHECKOUT_SESSION_ID}";
/// Default Checkout cancel page.
pub const DEFAULT_BILLING_CANCEL_URL: &str = "https://adiuva.app/billing/cancel";
/// Default page the billing portal's "return" link leads to.
pub const DEFAULT_BILLING_PORTAL_RETURN_URL: &str = "https://adiuva.app/billing";
/// The shortest HS256 secret accepted (bytes): the hash output size.
pub const MIN_JWT_SECRET_LEN: usize = 32;
/// Default registrations allowed per client address and hour (`REGISTER_LIMIT_PER_HOUR`).
pub const DEFAULT_REGISTER_LIMIT_PER_HOUR: u32 = 20;

/// Which deployment this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Local development and tests.
    Dev,
    /// Production.
    Prod,
}

/// Which vector store backs `/storage/vectors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorBackend {
    /// The `VectorIndex` Durable Object (local default).
    DurableObject,
    /// Cloudflare Vectorize (production).
    Vectorize,
}

/// The `OPENAI_*` settings: the one provider of a server without `LLM_PROVIDERS` (see
/// [`Config::providers`], which is what chat should use).
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// API key; `None` means the LLM is not configured (`llm_not_configured`).
    pub api_key: Option<SecretString>,
    /// Base URL, e.g. `https://api.openai.com/v1`, without a trailing slash.
    pub base_url: Url,
    /// Model name.
    pub model: String,
    /// Deadline of one attempt (and of a pause inside a stream), ms (`OPENAI_TIMEOUT_MS`,
    /// default 30 000, at most 300 000).
    pub timeout_ms: u64,
}

/// Stripe settings. Every part is optional: billing answers a clear error while unset.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// Secret API key.
    pub secret_key: Option<SecretString>,
    /// Webhook signing secret (`whsec_…`).
    pub webhook_secret: Option<SecretString>,
    /// API base URL.
    pub api_base: Url,
    /// Price id of the Pro plan.
    pub price_pro: Option<String>,
    /// Price id of the Power plan.
    pub price_power: Option<String>,
    /// Price id of the Team plan (per seat).
    pub price_team: Option<String>,
    /// Where Checkout sends the user after paying (`{CHECKOUT_SESSION_ID}` is filled in).
    pub success_url: String,
    /// Where Checkout sends the user after giving up.
    pub cancel_url: String,
    /// Where the billing portal's return link leads (`BILLING_PORTAL_RETURN_URL`).
    pub portal_return_url: String,
}

/// Outgoing email (Resend's HTTP API). Without `EMAIL_API_BASE`, flows that need mail answer
/// 503 `email_not_configured`.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// API base, e.g. `https://api.resend.com` (`EMAIL_API_BASE`); `None`: not configured.
    pub api_base: Option<Url>,
    /// Bearer key (`EMAIL_API_KEY`).
    pub api_key: Option<SecretString>,
    /// The sender (`EMAIL_FROM`, default `Adiuva <no-reply@adiuva.app>`).
    pub from: String,
}

/// The sender of mail when `EMAIL_FROM` is unset.
pub const DEFAULT_EMAIL_FROM: &str = "Adiuva <no-reply@adiuva.app>";

/// The whole configuration of the API.
#[derive(Debug, Clone)]
pub struct Config {
    /// Deployment kind.
    pub env: Environment,
    /// HS256 signing secret for access tokens (and other server-side MACs).
    pub jwt_secret: SecretString,
    /// Access-token lifetime in seconds.
    pub access_token_ttl_secs: u64,
    /// Refresh-token lifetime in seconds.
    pub refresh_token_ttl_secs: u64,
    /// Extra allowed CORS origins (exact, or `scheme://host:*` for any port).
    pub cors_origins: Vec<String>,
    /// Lower-cased emails that get the admin role at registration.
    pub admin_emails: Vec<String>,
    /// The `OPENAI_*` settings as given (also without `LLM_PROVIDERS`: read
    /// [`Config::providers`] for what chat may call).
    pub openai: OpenAiConfig,
    /// The LLM providers chat may call, the default first; never empty. From `LLM_PROVIDERS`
    /// when set, else the one provider `openai` of the `OPENAI_*` settings.
    pub providers: Vec<ProviderConfig>,
    /// Heartbeat of a streaming chat socket, ms (`CHAT_PING_MS`, default 30 000).
    pub chat_ping_ms: u64,
    /// Stripe settings.
    pub stripe: StripeConfig,
    /// Outgoing email.
    pub email: EmailConfig,
    /// Vector store backend.
    pub vector_backend: VectorBackend,
    /// Public base URL of this API, for signed links (`None`: derive from the request).
    pub public_base_url: Option<Url>,
    /// Whether per-user request limits apply (`RATE_LIMITS`, default `on`; `off` is for
    /// measuring the limiter's cost and for emergencies).
    pub rate_limits: bool,
    /// Registrations allowed per client address and hour (`REGISTER_LIMIT_PER_HOUR`, default
    /// 20, 1–1 000 000).
    pub register_limit_per_hour: u32,
    /// Bytes in one quota gigabyte: 10^9, unless `DEV_BYTES_PER_GB` says otherwise — honoured
    /// only with `ENV=dev`, so end-to-end tests can reach a quota's edge.
    pub bytes_per_gb: u64,
    /// Ages and bounds of the cron's housekeeping; `DEV_HOUSEKEEPING_AGE_MS` and
    /// `DEV_HOUSEKEEPING_BATCH` (honoured only with `ENV=dev`) shrink them for tests.
    pub housekeeping: HousekeepingPolicy,
}

/// One invalid setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The setting's name.
    pub key: &'static str,
    /// What is wrong with it (never its value).
    pub reason: String,
}

/// Every problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration: ")?;
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", p.key, p.reason)?;
        }
        Ok(())
    }
}

struct Reader<'a, F: Fn(&str) -> Option<String>> {
    lookup: &'a F,
    problems: Vec<ConfigProblem>,
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    /// The trimmed value, `None` when unset or blank.
    fn get(&self, key: &str) -> Option<String> {
        (self.lookup)(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn problem(&mut self, key: &'static str, reason: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key,
            reason: reason.into(),
        });
    }

    fn secs(&mut self, key: &'static str, default: u64, max: u64) -> u64 {
        match self.get(key) {
            None => default,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => {
                    self.problem(
                        key,
                        format!("must be a whole number of seconds from 1 to {max}"),
                    );
                    default
                }
            },
        }
    }

    fn millis(&mut self, key: &'static str, default: u64, max: u64) -> u64 {
        match self.get(key) {
            None => default,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (100..=max).contains(&n) => n,
                _ => {
                    self.problem(
                        key,
                        format!("must be a whole number of milliseconds from 100 to {max}"),
                    );
                    default
                }
            },
        }
    }

    /// One of `options` by name; the default when unset (a problem and the default when the
    /// value is none of them).
    fn choice<T: Copy>(&mut self, key: &'static str, options: &[(&str, T)], default: T) -> T {
        let Some(v) = self.get(key) else {
            return default;
        };
        if let Some((_, t)) = options.iter().find(|(name, _)| *name == v) {
            return *t;
        }
        let names: Vec<String> = options.iter().map(|(n, _)| format!("`{n}`")).collect();
        self.problem(key, format!("must be one of {}", names.join(", ")));
        default
    }

    fn count(&mut self, key: &'static str, default: u32, max: u32) -> u32 {
        match self.get(key) {
            None => default,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => {
                    self.problem(key, format!("must be a whole number from 1 to {max}"));
                    default
                }
            },
        }
    }

    fn url(&mut self, key: &'static str, default: &str) -> Url {
        let fallback = Url::parse(default).expect("default URLs are valid");
        match self.get(key) {
            None => fallback,
            Some(v) => match Url::parse(v.trim_end_matches('/')) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
                _ => {
                    self.problem(key, "must be an absolute http(s) URL");
                    fallback
                }
            },
        }
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `scheme://host[:port]`, or `scheme://host:*` for any port; no path.
fn is_origin_pattern(origin: &str) -> bool {
    let base = origin.strip_suffix(":*").unwrap_or(origin);
    !origin.ends_with('/') && Url::parse(base).is_ok_and(|u| u.host().is_some() && u.path() == "/")
}

/// The access-token signing secret (required, at least [`MIN_JWT_SECRET_LEN`] bytes).
fn jwt_secret<F: Fn(&str) -> Option<String>>(r: &mut Reader<'_, F>) -> String {
    match r.get("JWT_SECRET") {
        Some(s) if s.len() >= MIN_JWT_SECRET_LEN => s,
        Some(_) => {
            r.problem(
                "JWT_SECRET",
                format!("must be at least {MIN_JWT_SECRET_LEN} bytes"),
            );
            String::new()
        }
        None => {
            r.problem("JWT_SECRET", "is required");
            String::new()
        }
    }
}

/// The housekeeping policy: the production one, scaled by `DEV_HOUSEKEEPING_AGE_MS`
/// (1–86 400 000) and `DEV_HOUSEKEEPING_BATCH` (1–10 000) with `ENV=dev` only.
fn housekeeping<F: Fn(&str) -> Option<String>>(
    r: &mut Reader<'_, F>,
    env: Environment,
) -> HousekeepingPolicy {
    let age_set = r.get("DEV_HOUSEKEEPING_AGE_MS").is_some();
    let batch_set = r.get("DEV_HOUSEKEEPING_BATCH").is_some();
    if env == Environment::Prod {
        for (set, key) in [
            (age_set, "DEV_HOUSEKEEPING_AGE_MS"),
            (batch_set, "DEV_HOUSEKEEPING_BATCH"),
        ] {
            if set {
                r.problem(key, "is honoured only with ENV=dev");
            }
        }
        return HousekeepingPolicy::default();
    }
    let age = age_set
        .then(|| r.count("DEV_HOUSEKEEPING_AGE_MS", 1, 86_400_000))
        .map(i64::from);
    let batch = batch_set.then(|| r.count("DEV_HOUSEKEEPING_BATCH", 1, 10_000));
    HousekeepingPolicy::default().scaled(age, batch)
}

/// Bytes per quota gigabyte: `DEV_BYTES_PER_GB` (dev only), else 10^9.
fn bytes_per_gb<F: Fn(&str) -> Option<String>>(r: &mut Reader<'_, F>, env: Environment) -> u64 {
    let gb = crate::tiers::GB;
    match (r.get("DEV_BYTES_PER_GB"), env) {
        (None, _) => gb,
        (Some(_), Environment::Prod) => {
            r.problem("DEV_BYTES_PER_GB", "is honoured only with ENV=dev");
            gb
        }
        (Some(v), Environment::Dev) => match v.parse::<u64>() {
            Ok(n) if (1..=gb).contains(&n) => n,
            _ => {
                r.problem(
                    "DEV_BYTES_PER_GB",
                    format!("must be a whole number from 1 to {gb}"),
                );
                gb
            }
        },
    }
}

/// The outgoing email settings.
fn email_config<F: Fn(&str) -> Option<String>>(
    r: &mut Reader<'_, F>,
    env: Environment,
) -> EmailConfig {
    let api_base = r
        .get("EMAIL_API_BASE")
        .map(|_| r.url("EMAIL_API_BASE", "http://localhost"));
    if env == Environment::Prod && api_base.as_ref().is_some_and(|u| u.scheme() != "https") {
        r.problem("EMAIL_API_BASE", "must be https in prod");
    }
    EmailConfig {
        api_base,
        api_key: r.get("EMAIL_API_KEY").map(SecretString::from),
        from: r
            .get("EMAIL_FROM")
            .unwrap_or_else(|| DEFAULT_EMAIL_FROM.to_owned()),
    }
}

/// The Stripe settings.
fn stripe_config<F: Fn(&str) -> Option<String>>(r: &mut Reader<'_, F>) -> StripeConfig {
    StripeConfig {
        secret_key: r.get("STRIPE_SECRET_KEY").map(SecretString::from),
        webhook_secret: r.get("STRIPE_WEBHOOK_SECRET").map(SecretString::from),
        api_base: r.url("STRIPE_API_BASE", DEFAULT_STRIPE_API_BASE),
        price_pro: r.get("STRIPE_PRICE_PRO"),
        price_power: r.get("STRIPE_PRICE_POWER"),
        price_team: r.get("STRIPE_PRICE_TEAM"),
        success_url: r
            .url("BILLING_SUCCESS_URL", DEFAULT_BILLING_SUCCESS_URL)
            .as_str()
            .replace("%7BCHECKOUT_SESSION_ID%7D", "{CHECKOUT_SESSION_ID}"),
        cancel_url: r
            .url("BILLING_CANCEL_URL", DEFAULT_BILLING_CANCEL_URL)
            .to_string(),
        portal_return_url: r
            .url(
                "BILLING_PORTAL_RETURN_URL",
                DEFAULT_BILLING_PORTAL_RETURN_URL,
            )
            .to_string(),
    }
}

/// `CORS_ORIGINS` (each an origin pattern) and `ADMIN_EMAILS` (lower-cased).
fn origins_and_admins<F: Fn(&str) -> Option<String>>(
    r: &mut Reader<'_, F>,
) -> (Vec<String>, Vec<String>) {
    let cors_origins = r.list("CORS_ORIGINS");
    if !cors_origins.iter().all(|o| is_origin_pattern(o)) {
        r.problem(
            "CORS_ORIGINS",
            "each entry must be an origin like `https://app.example.com` or `http://host:*`",
        );
    }
    let admin_emails = r
        .list("ADMIN_EMAILS")
        .into_iter()
        .map(|e| e.to_lowercase())
        .collect();
    (cors_origins, admin_emails)
}

impl Config {
    /// Parses the configuration from `lookup` (which returns a setting's raw value, if any).
    ///
    /// # Errors
    /// Returns every invalid or missing required setting at once.
    pub fn from_lookup<F: Fn(&str) -> Option<String>>(lookup: F) -> Result<Self, ConfigError> {
        let mut r = Reader {
            lookup: &lookup,
            problems: Vec::new(),
        };

        let env = r.choice(
            "ENV",
            &[("dev", Environment::Dev), ("prod", Environment::Prod)],
            Environment::Dev,
        );
        let jwt_secret = jwt_secret(&mut r);

        let access_token_ttl_secs = r.secs(
            "ACCESS_TOKEN_TTL_SECS",
            DEFAULT_ACCESS_TOKEN_TTL_SECS,
            24 * 3600,
        );
        let refresh_token_ttl_secs = r.secs(
            "REFRESH_TOKEN_TTL_SECS",
            DEFAULT_REFRESH_TOKEN_TTL_SECS,
            365 * 24 * 3600,
        );

        let (cors_origins, admin_emails) = origins_and_admins(&mut r);

        let openai = OpenAiConfig {
            api_key: r.get("OPENAI_API_KEY").map(SecretString::from),
            base_url: r.url("OPENAI_BASE_URL", DEFAULT_OPENAI_BASE_URL),
            model: r
                .get("OPENAI_MODEL")
                .unwrap_or_else(|| DEFAULT_OPENAI_MODEL.to_owned()),
            timeout_ms: r.millis("OPENAI_TIMEOUT_MS", 30_000, 300_000),
        };

        let providers = match r.get(LLM_PROVIDERS) {
            None => vec![ProviderConfig::from_openai(&openai)],
            Some(raw) => {
                let mut problems = Vec::new();
                let parsed = providers::parse(&raw, env, openai.timeout_ms, &mut problems);
                for p in problems {
                    r.problem(LLM_PROVIDERS, p);
                }
                parsed.unwrap_or_default()
            }
        };

        let chat_ping_ms = r.millis("CHAT_PING_MS", 30_000, 300_000);
        let stripe = stripe_config(&mut r);
        let email = email_config(&mut r, env);

        let vector_backend = r.choice(
            "VECTOR_BACKEND",
            &[
                ("durable-object", VectorBackend::DurableObject),
                ("vectorize", VectorBackend::Vectorize),
            ],
            VectorBackend::DurableObject,
        );

        let public_base_url = r
            .get("PUBLIC_BASE_URL")
            .map(|_| r.url("PUBLIC_BASE_URL", "http://localhost"));

        let rate_limits = r.choice("RATE_LIMITS", &[("on", true), ("off", false)], true);

        let register_limit_per_hour = r.count(
            "REGISTER_LIMIT_PER_HOUR",
            DEFAULT_REGISTER_LIMIT_PER_HOUR,
            1_000_000,
        );

        let bytes_per_gb = bytes_per_gb(&mut r, env);
        let housekeeping = housekeeping(&mut r, env);

        if env == Environment::Prod && openai.base_url.scheme() != "https" {
            r.problem("OPENAI_BASE_URL", "must be https in prod");
        }
        if env == Environment::Prod && stripe.api_base.scheme() != "https" {
            r.problem("STRIPE_API_BASE", "must be https in prod");
        }

        if !r.problems.is_empty() {
            return Err(ConfigError(r.problems));
        }
        Ok(Self {
            env,
            jwt_secret: SecretString::from(jwt_secret),
            access_token_ttl_secs,
            refresh_token_ttl_secs,
            cors_origins,
            admin_emails,
            openai,
            providers,
            chat_ping_ms,
            stripe,
            email,
            vector_backend,
            public_base_url,
            rate_limits,
            register_limit_per_hour,
            bytes_per_gb,
            housekeeping,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    fn keys(err: &ConfigError) -> Vec<&'static str> {
        err.0.iter().map(|p| p.key).collect()
    }

    #[test]
    fn a_secret_alone_yields_the_documented_defaults() {
        let c = parse(&[("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(c.env, Environment::Dev);
        assert_eq!(c.access_token_ttl_secs, 900);
        assert_eq!(c.refresh_token_ttl_secs, 2_592_000);
        assert_eq!(c.openai.model, "gpt-4o-mini");
        assert_eq!(c.openai.timeout_ms, 30_000);
        assert_eq!(c.chat_ping_ms, 30_000);
        assert_eq!(c.openai.base_url.as_str(), "https://api.openai.com/v1");
        assert!(c.openai.api_key.is_none());
        assert_eq!(c.stripe.api_base.as_str(), "https://api.stripe.com/");
        assert_eq!(c.vector_backend, VectorBackend::DurableObject);
        assert!(c.cors_origins.is_empty());
        assert!(c.public_base_url.is_none());
        assert!(c.rate_limits);
        assert_eq!(c.register_limit_per_hour, 20);
        assert_eq!(c.bytes_per_gb, 1_000_000_000);
        assert_eq!(
            c.stripe.success_url,
            "https://adiuva.app/billing/success?session_id={CHECKOUT_SESSION_ID}"
        );
        assert_eq!(c.stripe.portal_return_url, "https://adiuva.app/billing");
        assert_eq!(c.jwt_secret.expose_secret(), SECRET);
    }

    #[test]
    fn shrunken_housekeeping_is_for_dev_only() {
        let c = parse(&[("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(c.housekeeping, HousekeepingPolicy::default());
        let c = parse(&[
            ("JWT_SECRET", SECRET),
            ("DEV_HOUSEKEEPING_AGE_MS", "1500"),
            ("DEV_HOUSEKEEPING_BATCH", "2"),
        ])
        .unwrap();
        assert_eq!(
            (c.housekeeping.tombstone_age_ms, c.housekeeping.batch),
            (1_500, 2)
        );
        let err = parse(&[
            ("JWT_SECRET", SECRET),
            ("ENV", "prod"),
            ("DEV_HOUSEKEEPING_AGE_MS", "1500"),
            ("DEV_HOUSEKEEPING_BATCH", "0"),
        ])
        .unwrap_err();
        assert_eq!(
            keys(&err),
            vec!["DEV_HOUSEKEEPING_AGE_MS", "DEV_HOUSEKEEPING_BATCH"]
        );
        let err = parse(&[("JWT_SECRET", SECRET), ("DEV_HOUSEKEEPING_BATCH", "0")]).unwrap_err();
        assert_eq!(keys(&err), vec!["DEV_HOUSEKEEPING_BATCH"]);
    }

    #[test]
    fn shrunken_quotas_are_for_dev_only() {
        let c = parse(&[("JWT_SECRET", SECRET), ("DEV_BYTES_PER_GB", "1000")]).unwrap();
        assert_eq!(c.bytes_per_gb, 1_000);
        let err = parse(&[
            ("JWT_SECRET", SECRET),
            ("ENV", "prod"),
            ("DEV_BYTES_PER_GB", "1000"),
        ])
        .unwrap_err();
        assert_eq!(keys(&err), vec!["DEV_BYTES_PER_GB"]);
    }

    #[test]
    fn a_missing_jwt_secret_is_reported_by_name() {
        let err = parse(&[]).unwrap_err();
        assert_eq!(keys(&err), vec!["JWT_SECRET"]);
    }

    #[test]
    fn a_short_jwt_secret_is_rejected_without_echoing_it() {
        let err = parse(&[("JWT_SECRET", "short-secret-value")]).unwrap_err();
        assert_eq!(keys(&err), vec!["JWT_SECRET"]);
        assert!(!err.to_string().contains("short-secret-value"));
    }

    #[test]
    fn every_invalid_setting_is_reported_together() {
        let err = parse(&[
            ("JWT_SECRET", SECRET),
            ("ENV", "staging"),
            ("ACCESS_TOKEN_TTL_SECS", "0"),
            ("REFRESH_TOKEN_TTL_SECS", "soon"),
            ("OPENAI_BASE_URL", "not a url"),
            ("OPENAI_TIMEOUT_MS", "5"),
            ("STRIPE_API_BASE", "ftp://stripe.example"),
            ("VECTOR_BACKEND", "pinecone"),
            ("CORS_ORIGINS", "app.example.com"),
            ("RATE_LIMITS", "sometimes"),
            ("REGISTER_LIMIT_PER_HOUR", "0"),
        ])
        .unwrap_err();
        assert_eq!(
            keys(&err),
            vec![
                "ENV",
                "ACCESS_TOKEN_TTL_SECS",
                "REFRESH_TOKEN_TTL_SECS",
                "CORS_ORIGINS",
                "OPENAI_BASE_URL",
                "OPENAI_TIMEOUT_MS",
                "STRIPE_API_BASE",
                "VECTOR_BACKEND",
                "RATE_LIMITS",
                "REGISTER_LIMIT_PER_HOUR",
            ]
        );
    }

    #[test]
    fn values_are_trimmed_and_lists_split_on_commas() {
        let c = parse(&[
            ("JWT_SECRET", SECRET),
            ("ENV", " prod "),
            ("ADMIN_EMAILS", " Admin@Example.com, ops@example.com ,,"),
            (
                "CORS_ORIGINS",
                "https://web.example.com, http://127.0.0.1:*",
            ),
            ("OPENAI_BASE_URL", "https://llm.example.com/v1/"),
            ("VECTOR_BACKEND", "vectorize"),
            ("ACCESS_TOKEN_TTL_SECS", "60"),
        ])
        .unwrap();
        assert_eq!(c.env, Environment::Prod);
        assert_eq!(c.admin_emails, vec!["admin@example.com", "ops@example.com"]);
        assert_eq!(
            c.cors_origins,
            vec!["https://web.example.com", "http://127.0.0.1:*"]
        );
        assert_eq!(c.openai.base_url.as_str(), "https://llm.example.com/v1");
        assert_eq!(c.vector_backend, VectorBackend::Vectorize);
        assert_eq!(c.access_token_ttl_secs, 60);
    }

    #[test]
    fn prod_refuses_plain_http_upstreams() {
        let err = parse(&[
            ("JWT_SECRET", SECRET),
            ("ENV", "prod"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9000/v1"),
        ])
        .unwrap_err();
        assert_eq!(keys(&err), vec!["OPENAI_BASE_URL"]);
    }

    #[test]
    fn dev_accepts_loopback_upstreams() {
        let c = parse(&[
            ("JWT_SECRET", SECRET),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9000/v1"),
            ("STRIPE_API_BASE", "http://127.0.0.1:9001"),
            ("OPENAI_API_KEY", "sk-test"),
        ])
        .unwrap();
        assert_eq!(c.openai.base_url.as_str(), "http://127.0.0.1:9000/v1");
        assert!(c.openai.api_key.is_some());
    }

    #[test]
    fn blank_values_count_as_unset() {
        let c = parse(&[("JWT_SECRET", SECRET), ("OPENAI_API_KEY", "  ")]).unwrap();
        assert!(c.openai.api_key.is_none());
    }
}
