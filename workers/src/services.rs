//! Wiring: the core's services over this request's adapters.

use secrecy::ExposeSecret;
use shared::auth::tokens::AccessTokens;
use shared::auth::{AuthService, AuthSettings};
use shared::backup::BackupService;
use shared::billing::{BillingService, BillingSettings, StripeClient};
use shared::chat::openai::OpenAiClient;
use shared::chat::orchestrator::Brain;
use shared::config::{Config, OpenAiConfig, VectorBackend};
use shared::domain::User;
use shared::keys::{self, KeyPurpose};
use shared::marketplace::Marketplace;
use shared::ports::UserStore;
use shared::ports::{Clock, VectorIndex};
use shared::storage::RecordService;
use shared::tiers::TierManager;
use shared::vectors::VectorService;
use shared::AppError;

use crate::adapters::{
    CryptoRandom, D1BackupStore, D1BillingStore, D1PluginStore, D1RecordStore, D1RefreshTokenStore,
    D1TicketStore, D1TierStore, D1UploadStore, D1UserStore, D1VectorMetaStore, DurableRateLimiter,
    DurableVectorIndex, FetchHttpClient, R2BlobStore, SystemClock, VectorizeIndex,
};
use crate::http::{access_tokens, Ctx};
use crate::state::{BACKUPS, DB, PLUGINS, RATE_LIMITER, RECORDS, VECTOR_INDEX};

/// The chat brain (agents, templates, playbooks, plan cache, sanitizer), built once per
/// isolate and kept for its life.
pub fn brain() -> &'static Brain {
    thread_local! {
        static BRAIN: &'static Brain = Box::leak(Box::new(Brain::standard()));
    }
    BRAIN.with(|b| *b)
}

/// The OpenAI client of this deployment (`llm_not_configured` on first use without a key).
pub fn llm(ctx: &Ctx) -> OpenAiClient<FetchHttpClient> {
    llm_for(&ctx.shared.config.openai)
}

/// The OpenAI client for `config`.
pub fn llm_for(config: &OpenAiConfig) -> OpenAiClient<FetchHttpClient> {
    OpenAiClient::new(FetchHttpClient, config)
}

/// Everything the auth service borrows.
pub struct AuthDeps {
    users: D1UserStore,
    refresh_tokens: D1RefreshTokenStore,
    tickets: D1TicketStore,
    limiter: DurableRateLimiter,
    tokens: AccessTokens,
    settings: AuthSettings,
}

fn binding<T>(r: worker::Result<T>, name: &str) -> Result<T, AppError> {
    r.map_err(|e| AppError::internal(format!("binding {name}: {e}")))
}

impl AuthDeps {
    /// The adapters for `ctx`'s environment.
    pub fn new(ctx: &Ctx) -> Result<Self, AppError> {
        let cfg = &ctx.shared.config;
        let refresh_ttl_ms = i64::try_from(cfg.refresh_token_ttl_secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        Ok(Self {
            users: D1UserStore(binding(ctx.env.d1(DB), DB)?),
            refresh_tokens: D1RefreshTokenStore(binding(ctx.env.d1(DB), DB)?),
            tickets: D1TicketStore(binding(ctx.env.d1(DB), DB)?),
            limiter: DurableRateLimiter(binding(
                ctx.env.durable_object(RATE_LIMITER),
                RATE_LIMITER,
            )?),
            tokens: access_tokens(ctx),
            settings: AuthSettings {
                refresh_ttl_ms,
                admin_emails: cfg.admin_emails.clone(),
                register_per_hour: cfg.register_limit_per_hour,
            },
        })
    }

    /// The service.
    pub fn service(&self) -> AuthService<'_> {
        AuthService {
            users: &self.users,
            refresh_tokens: &self.refresh_tokens,
            tickets: &self.tickets,
            limiter: &self.limiter,
            clock: &SystemClock,
            rng: &CryptoRandom,
            tokens: &self.tokens,
            settings: &self.settings,
        }
    }
}

/// Everything the billing service borrows.
pub struct BillingDeps {
    users: D1UserStore,
    store: D1BillingStore,
    stripe: StripeClient<FetchHttpClient>,
    settings: BillingSettings,
}

impl BillingDeps {
    /// The adapters for `ctx`'s environment.
    pub fn new(ctx: &Ctx) -> Result<Self, AppError> {
        let stripe = &ctx.shared.config.stripe;
        Ok(Self {
            users: D1UserStore(binding(ctx.env.d1(DB), DB)?),
            store: D1BillingStore(binding(ctx.env.d1(DB), DB)?),
            stripe: StripeClient::new(
                FetchHttpClient,
                stripe.api_base.as_str(),
                stripe.secret_key.clone(),
            ),
            settings: BillingSettings {
                webhook_secret: stripe.webhook_secret.clone(),
                price_pro: stripe.price_pro.clone(),
                price_power: stripe.price_power.clone(),
                price_team: stripe.price_team.clone(),
                success_url: stripe.success_url.clone(),
                cancel_url: stripe.cancel_url.clone(),
            },
        })
    }

    /// The authenticated caller's account (401 if it no longer exists).
    pub async fn caller(&self, ctx: &Ctx) -> Result<User, AppError> {
        self.users
            .find_by_id(ctx.principal()?.user_id)
            .await?
            .ok_or(AppError::Unauthorized)
    }

    /// The service.
    pub fn service(&self) -> BillingService<'_> {
        BillingService {
            users: &self.users,
            store: &self.store,
            payments: &self.stripe,
            clock: &SystemClock,
            rng: &CryptoRandom,
            settings: &self.settings,
        }
    }
}

/// Everything the record service borrows.
pub struct RecordDeps {
    records: D1RecordStore,
    /// The records bucket (handlers stream reads from it).
    pub blobs: R2BlobStore,
    usage: D1TierStore,
}

impl RecordDeps {
    /// The adapters for `ctx`'s environment.
    pub fn new(ctx: &Ctx) -> Result<Self, AppError> {
        Ok(Self {
            records: D1RecordStore(binding(ctx.env.d1(DB), DB)?),
            blobs: R2BlobStore(binding(ctx.env.bucket(RECORDS), RECORDS)?),
            usage: D1TierStore(binding(ctx.env.d1(DB), DB)?),
        })
    }

    /// The service.
    pub fn service(&self) -> RecordService<'_, R2BlobStore> {
        RecordService {
            records: &self.records,
            blobs: &self.blobs,
            usage: &self.usage,
            clock: &SystemClock,
            rng: &CryptoRandom,
        }
    }
}

/// Everything the backup service borrows.
pub struct BackupDeps {
    backups: D1BackupStore,
    /// The backups bucket (handlers stream reads from it).
    pub blobs: R2BlobStore,
    /// Multipart uploads in progress.
    pub uploads: D1UploadStore,
}

impl BackupDeps {
    /// The adapters for `env` (also used by the scheduled cleanup, which has no request).
    pub fn new(env: &worker::Env) -> Result<Self, AppError> {
        Ok(Self {
            backups: D1BackupStore(binding(env.d1(DB), DB)?),
            blobs: R2BlobStore(binding(env.bucket(BACKUPS), BACKUPS)?),
            uploads: D1UploadStore(binding(env.d1(DB), DB)?),
        })
    }

    /// The service.
    pub fn service(&self) -> BackupService<'_, R2BlobStore> {
        BackupService {
            backups: &self.backups,
            blobs: &self.blobs,
            clock: &SystemClock,
            rng: &CryptoRandom,
        }
    }
}

/// Everything the vector service borrows: the index `VECTOR_BACKEND` names, and D1.
pub struct VectorDeps {
    index: Box<dyn VectorIndex>,
    meta: D1VectorMetaStore,
    usage: D1TierStore,
}

impl VectorDeps {
    /// The adapters for `ctx`'s environment.
    pub fn new(ctx: &Ctx) -> Result<Self, AppError> {
        let index: Box<dyn VectorIndex> = match ctx.shared.config.vector_backend {
            VectorBackend::DurableObject => Box::new(DurableVectorIndex(binding(
                ctx.env.durable_object(VECTOR_INDEX),
                VECTOR_INDEX,
            )?)),
            VectorBackend::Vectorize => Box::new(VectorizeIndex::new(&ctx.env)?),
        };
        Ok(Self {
            index,
            meta: D1VectorMetaStore(binding(ctx.env.d1(DB), DB)?),
            usage: D1TierStore(binding(ctx.env.d1(DB), DB)?),
        })
    }

    /// The service.
    pub fn service(&self) -> VectorService<'_> {
        VectorService {
            index: self.index.as_ref(),
            meta: &self.meta,
            tiers: TierManager { store: &self.usage },
            now_ms: SystemClock.now_ms(),
        }
    }
}

/// Everything the marketplace borrows.
pub struct MarketplaceDeps {
    store: D1PluginStore,
    /// The plugin packages bucket (handlers stream downloads from it).
    pub packages: R2BlobStore,
    users: D1UserStore,
    billing: D1BillingStore,
    stripe: StripeClient<FetchHttpClient>,
    limiter: DurableRateLimiter,
    download_key: [u8; 32],
    base_url: String,
}

impl MarketplaceDeps {
    /// The adapters for `ctx`'s environment; download links point at `PUBLIC_BASE_URL`, or at
    /// the origin this request came to.
    pub fn new(ctx: &Ctx) -> Result<Self, AppError> {
        let base_url = if let Some(url) = &ctx.shared.config.public_base_url {
            url.as_str().trim_end_matches('/').to_owned()
        } else {
            let url = ctx.req.url().map_err(AppError::internal)?;
            url.origin().ascii_serialization()
        };
        Self::for_env(&ctx.env, &ctx.shared.config, base_url)
    }

    /// The adapters for `env` (the scheduled payout run has no request).
    pub fn for_env(env: &worker::Env, config: &Config, base_url: String) -> Result<Self, AppError> {
        let stripe = &config.stripe;
        Ok(Self {
            store: D1PluginStore(binding(env.d1(DB), DB)?),
            packages: R2BlobStore(binding(env.bucket(PLUGINS), PLUGINS)?),
            users: D1UserStore(binding(env.d1(DB), DB)?),
            billing: D1BillingStore(binding(env.d1(DB), DB)?),
            stripe: StripeClient::new(
                FetchHttpClient,
                stripe.api_base.as_str(),
                stripe.secret_key.clone(),
            ),
            limiter: DurableRateLimiter(binding(env.durable_object(RATE_LIMITER), RATE_LIMITER)?),
            download_key: keys::derive(
                config.jwt_secret.expose_secret().as_bytes(),
                KeyPurpose::PluginDownload,
            ),
            base_url,
        })
    }

    /// The service.
    pub fn service(&self) -> Marketplace<'_, R2BlobStore> {
        Marketplace {
            store: &self.store,
            packages: &self.packages,
            users: &self.users,
            billing: &self.billing,
            payments: &self.stripe,
            limiter: &self.limiter,
            clock: &SystemClock,
            rng: &CryptoRandom,
            download_secret: &self.download_key,
            base_url: &self.base_url,
        }
    }
}
