//! Per-isolate state: the typed configuration, parsed once, and binding names.

use std::cell::OnceCell;
use std::rc::Rc;

use shared::chat::providers::ProviderRegistry;
use shared::config::{Config, ConfigError};
use shared::cors::CorsPolicy;
use worker::Env;

use crate::adapters::FetchHttpClient;

/// D1 database binding.
pub const DB: &str = "DB";
/// R2 bucket of storage records.
pub const RECORDS: &str = "RECORDS";
/// R2 bucket of backups.
pub const BACKUPS: &str = "BACKUPS";
/// R2 bucket of plugin packages.
pub const PLUGINS: &str = "PLUGINS";
/// `UserHome` Durable Object namespace: one object per user.
pub const USER_HOME: &str = "USER_HOME";
/// `RateLimiter` Durable Object namespace (counters that belong to no user's home).
pub const RATE_LIMITER: &str = "RATE_LIMITER";

/// What every request needs, built once per isolate.
pub struct Shared {
    /// Typed configuration.
    pub config: Config,
    /// CORS policy derived from it.
    pub cors: CorsPolicy,
    /// The LLM providers (`LLM_PROVIDERS`, or the one `OPENAI_*` provider), one client each.
    pub providers: ProviderRegistry<FetchHttpClient>,
}

thread_local! {
    static SHARED: OnceCell<Result<Rc<Shared>, ConfigError>> = const { OnceCell::new() };
}

/// The isolate's configuration, parsed from `env` on first use.
///
/// Vars come from `[vars]`, secrets from `wrangler secret` or `.dev.vars`; both are plain
/// strings to the worker.
pub fn shared(env: &Env) -> Result<Rc<Shared>, ConfigError> {
    SHARED.with(|cell| {
        cell.get_or_init(|| {
            let config = Config::from_lookup(|key| env.var(key).ok().map(|v| v.to_string()))?;
            let cors = CorsPolicy::new(config.cors_origins.clone());
            let providers = ProviderRegistry::from_config(&FetchHttpClient, &config);
            Ok(Rc::new(Shared {
                config,
                cors,
                providers,
            }))
        })
        .clone()
    })
}
