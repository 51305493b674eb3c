//! The wiring: one [`App`] per request, cron run or Durable Object event, built from the
//! `Env` and the isolate's configuration, with an accessor per service and adapter. Every
//! adapter it makes counts its calls in the event's [`Hops`] (the hop budget, logged with each
//! request).
//!
//! Dependencies run one way: entry (`lib.rs`) → routes → handlers → http → app → adapters.

use std::cell::RefCell;
use std::rc::Rc;

use secrecy::ExposeSecret;
use shared::accounts::deletion::{DeletionRequest, Eraser, PendingDeletion};
use shared::accounts::export::Exporter;
use shared::accounts::mfa::MfaService;
use shared::accounts::{AccountService, AccountSettings};
use shared::auth::tokens::AccessTokens;
use shared::auth::{AuthService, AuthSettings};
use shared::backup::BackupService;
use shared::billing::{BillingService, BillingSettings, StripeClient};
use shared::chat::allowance::{self, EnabledAgents};
use shared::chat::loader::{self, BrainCache, UserBrain};
use shared::chat::orchestrator::Brain;
use shared::chat::providers::ProviderRegistry;
use shared::config::{Config, ConfigError, VectorBackend};
use shared::domain::{Tier, UserId};
use shared::email::ResendClient;
use shared::home::ops::{
    ChatChoices, InstalledPlugin, RevokeSessions, SetAccount, SetInstalledPlugins,
};
use shared::keys::{self, KeyPurpose};
use shared::marketplace::Marketplace;
use shared::storage::RecordService;
use shared::vectors::VectorService;
use shared::AppError;
use worker::Env;

use crate::adapters::{
    CryptoRandom, D1AccountLoader, D1AccountTokenStore, D1AdminStore, D1BillingStore,
    D1DeletionStore, D1ExportStore, D1HousekeepingStore, D1MfaStore, D1PluginAgents, D1PluginStore,
    D1RefreshTokenStore, D1SecurityLog, D1SsoStore, D1TeamStore, D1TicketStore, D1UserStore, Db,
    DurableRateLimiter, FetchHttpClient, HomeClient, HomeSeen, Hops, R2BlobStore, SystemClock,
    VectorizeIndex,
};
use crate::state::{self, Shared, BACKUPS, DB, PLUGINS, RATE_LIMITER, RECORDS, USER_HOME};

/// Homes one billing change pushes to at once (see [`App::push_team_accounts`]).
pub const TEAM_PUSH_LIMIT: usize = 100;
/// Pushes in flight at a time.
pub const TEAM_PUSH_CONCURRENCY: usize = 8;

/// One event's wiring.
pub struct App {
    env: Env,
    shared: Rc<Shared>,
    hops: Rc<Hops>,
    /// The request's context, for work that finishes after the answer (`None` in objects and
    /// cron runs, where such work is awaited instead).
    ctx: Option<Rc<worker::Context>>,
}

fn binding<T>(r: worker::Result<T>, name: &str) -> Result<T, AppError> {
    r.map_err(|e| AppError::internal(format!("binding {name}: {e}")))
}

impl App {
    /// The wiring of one event.
    pub fn new(env: Env, shared: Rc<Shared>) -> Self {
        Self {
            env,
            shared,
            hops: Rc::default(),
            ctx: None,
        }
    }

    /// The wiring of one request, whose context can run work after the answer.
    pub fn for_request(env: Env, shared: Rc<Shared>, ctx: Rc<worker::Context>) -> Self {
        Self {
            ctx: Some(ctx),
            ..Self::new(env, shared)
        }
    }

    /// Sends `message` after the answer (awaited here when there is no request context). A
    /// failure is logged only: nobody is left to tell.
    pub async fn send_mail_later(&self, message: shared::ports::OutgoingEmail) {
        let mailer = self.mailer();
        let send = async move {
            if let Err(e) = shared::ports::Mailer::send(&mailer, &message).await {
                shared::accounts::log_send_failure(&e);
            }
        };
        match &self.ctx {
            Some(ctx) => ctx.wait_until(send),
            None => send.await,
        }
    }

    /// The outgoing email client (`email_not_configured` without `EMAIL_API_BASE`).
    pub fn mailer(&self) -> ResendClient<FetchHttpClient> {
        ResendClient::new(FetchHttpClient, &self.config().email)
    }

    /// The wiring of a Durable Object event or a cron run.
    ///
    /// # Errors
    /// An invalid configuration.
    pub fn for_object(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self::new(env.clone(), state::shared(env)?))
    }

    /// The bindings.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// What this event cost in calls so far.
    pub fn hops(&self) -> &Rc<Hops> {
        &self.hops
    }

    /// The chat brain (agents, templates, playbooks, plan cache, sanitizer), built once per
    /// isolate and kept for its life.
    pub fn brain() -> &'static Brain {
        thread_local! {
            static BRAIN: &'static Brain = Box::leak(Box::new(Brain::standard()));
        }
        BRAIN.with(|b| *b)
    }

    /// The brain of a user whose home holds `choices`: the built-in one without plugin agents,
    /// else the (per-isolate cached) brain of their installed plugins' agents; D1 is read only
    /// for versions this isolate has not loaded yet (see [`shared::chat::loader`]).
    ///
    /// # Errors
    /// 503 when a version must be read and D1 fails.
    pub async fn brain_for(&self, choices: &ChatChoices) -> Result<UserBrain, AppError> {
        thread_local! {
            static BRAINS: &'static RefCell<BrainCache> =
                Box::leak(Box::new(RefCell::new(BrainCache::default())));
        }
        if choices.plugins.is_empty() {
            return Ok(UserBrain::Builtin(Self::brain()));
        }
        let cache = BRAINS.with(|c| *c);
        let source = D1PluginAgents(self.db()?);
        loader::brain_for(cache, Self::brain(), &choices.plugins, &source).await
    }

    /// The installed plugins with agents of `user`, as D1 has them now (a home's set).
    ///
    /// # Errors
    /// D1 failures.
    pub async fn installed_plugins(&self, user: UserId) -> Result<Vec<InstalledPlugin>, AppError> {
        Ok(D1PluginAgents(self.db()?).installed(user).await?)
    }

    /// Pushes the installed plugins with agents of `user`, as D1 has them now, to their home
    /// (after an install or uninstall), so the chat sees the change at once. A failure is
    /// logged, not fatal: the home reloads the set from D1 within a minute anyway.
    pub async fn push_installed_plugins(&self, user: UserId) {
        let pushed = async {
            let plugins = self.installed_plugins(user).await?;
            shared::home::call(
                &self.home_for_service(user)?,
                &SetInstalledPlugins { plugins },
            )
            .await
        }
        .await;
        if let Err(e) = pushed {
            tracing::warn!(user_id = %user, error = ?e, "pushing the installed plugins to their home failed");
        }
    }

    /// The LLM providers of this deployment; [`ProviderRegistry::select`] picks one request's
    /// provider and model by the caller's tier.
    pub fn providers(&self) -> &ProviderRegistry<FetchHttpClient> {
        &self.shared.providers
    }

    /// The access-token signer (JWT_SECRET itself keys HS256 and nothing else).
    pub fn access_tokens(&self) -> AccessTokens {
        let cfg = self.config();
        AccessTokens::new(
            cfg.jwt_secret.expose_secret().as_bytes(),
            cfg.access_token_ttl_secs,
        )
    }

    fn db(&self) -> Result<Db, AppError> {
        Ok(Db::new(
            binding(self.env.d1(DB), DB)?,
            Rc::clone(&self.hops),
        ))
    }

    fn bucket(&self, name: &str) -> Result<R2BlobStore, AppError> {
        Ok(R2BlobStore(binding(self.env.bucket(name), name)?))
    }

    /// The records bucket.
    pub fn records(&self) -> Result<R2BlobStore, AppError> {
        self.bucket(RECORDS)
    }

    /// The backups bucket.
    pub fn backups(&self) -> Result<R2BlobStore, AppError> {
        self.bucket(BACKUPS)
    }

    /// The plugin packages bucket.
    pub fn plugins(&self) -> Result<R2BlobStore, AppError> {
        self.bucket(PLUGINS)
    }

    /// Counters that belong to no user's home (login, registration, plugin submissions).
    pub fn limiter(&self) -> Result<DurableRateLimiter, AppError> {
        Ok(DurableRateLimiter::new(
            binding(self.env.durable_object(RATE_LIMITER), RATE_LIMITER)?,
            Rc::clone(&self.hops),
        ))
    }

    /// What a user's home loads of its account.
    pub fn account_loader(&self) -> Result<D1AccountLoader, AppError> {
        Ok(D1AccountLoader(self.db()?))
    }

    /// The home of a request's caller (its first call takes the admission; what it says of
    /// the caller lands in `seen`).
    pub fn home(
        &self,
        user: UserId,
        sid: Option<uuid::Uuid>,
        seen: Rc<HomeSeen>,
    ) -> Result<HomeClient, AppError> {
        Ok(HomeClient::for_request(
            binding(self.env.durable_object(USER_HOME), USER_HOME)?,
            user,
            sid,
            Rc::clone(&self.hops),
            seen,
        ))
    }

    /// The home of `user` for the service's own calls.
    pub fn home_for_service(&self, user: UserId) -> Result<HomeClient, AppError> {
        Ok(HomeClient::for_service(
            binding(self.env.durable_object(USER_HOME), USER_HOME)?,
            user,
            Rc::clone(&self.hops),
        ))
    }

    /// Pushes the account as D1 has it now to the user's home (after a billing change). A
    /// failure is logged, not fatal: the home re-reads D1 within a minute anyway.
    pub async fn push_account(&self, user: UserId) {
        let pushed = async {
            let account = self.account_loader()?.load(user).await?;
            shared::home::call(&self.home_for_service(user)?, &SetAccount { account }).await
        }
        .await;
        if let Err(e) = pushed {
            tracing::warn!(user_id = %user, error = ?e, "pushing the account to its home failed");
        }
    }

    /// Pushes the account to the home of every member of the team `user` owns or belongs to
    /// (`user` alone outside a team): after a billing change, each member's tier in force may
    /// have changed. Failures are logged per home, as in [`Self::push_account`].
    ///
    /// Each push costs two subrequests (a D1 read, a home call) and a Worker's request has
    /// 1,000, so one webhook pushes to at most [`TEAM_PUSH_LIMIT`] homes, `user`'s first,
    /// [`TEAM_PUSH_CONCURRENCY`] at a time; the homes of a larger team's other members
    /// re-read D1 themselves within a minute.
    pub async fn push_team_accounts(&self, user: UserId) {
        let homes = match self.db() {
            Ok(db) => D1TeamStore(db)
                .homes_of_team_of(user)
                .await
                .map_err(AppError::from),
            Err(e) => Err(e),
        };
        match homes {
            Ok(mut ids) => {
                ids.retain(|u| *u != user);
                let members = ids.len() + 1;
                ids.insert(0, user);
                ids.truncate(TEAM_PUSH_LIMIT);
                if members > TEAM_PUSH_LIMIT {
                    tracing::info!(
                        user_id = %user,
                        members,
                        pushed = TEAM_PUSH_LIMIT,
                        "team push capped; the other homes re-read D1 within a minute"
                    );
                }
                futures_util::StreamExt::for_each_concurrent(
                    futures_util::stream::iter(ids),
                    TEAM_PUSH_CONCURRENCY,
                    |u| self.push_account(u),
                )
                .await;
            }
            Err(e) => {
                tracing::warn!(user_id = %user, error = ?e, "reading the team to push failed");
                self.push_account(user).await;
            }
        }
    }

    /// Ends sessions in the user's home: their tokens stop working and their sockets close.
    ///
    /// # Errors
    /// The home cannot be reached.
    pub async fn revoke_sessions(
        &self,
        user: UserId,
        sids: Vec<uuid::Uuid>,
    ) -> Result<(), AppError> {
        if sids.is_empty() {
            return Ok(());
        }
        shared::home::call(&self.home_for_service(user)?, &RevokeSessions { sids }).await?;
        Ok(())
    }

    /// The vector index when it is not the home (Vectorize).
    pub fn vector_index(&self) -> Result<Option<VectorizeIndex>, AppError> {
        match self.config().vector_backend {
            VectorBackend::DurableObject => Ok(None),
            VectorBackend::Vectorize => VectorizeIndex::new(&self.env).map(Some),
        }
    }

    /// The account service's adapters.
    pub fn auth(&self) -> Result<AuthParts, AppError> {
        let cfg = self.config();
        let refresh_ttl_ms = i64::try_from(cfg.refresh_token_ttl_secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        Ok(AuthParts {
            users: D1UserStore(self.db()?),
            refresh_tokens: D1RefreshTokenStore(self.db()?),
            tickets: D1TicketStore(self.db()?),
            limiter: self.limiter()?,
            events: self.security_log()?,
            mfa: D1MfaStore(self.db()?),
            account_tokens: D1AccountTokenStore(self.db()?),
            tokens: self.access_tokens(),
            settings: AuthSettings {
                refresh_ttl_ms,
                admin_emails: cfg.admin_emails.clone(),
                register_per_hour: cfg.register_limit_per_hour,
            },
        })
    }

    fn security_log(&self) -> Result<D1SecurityLog, AppError> {
        Ok(D1SecurityLog {
            db: self.db()?,
            rng: &CryptoRandom,
        })
    }

    /// The two-factor service's adapters.
    pub fn mfa(&self) -> Result<MfaParts, AppError> {
        Ok(MfaParts {
            auth: self.auth()?,
            mfa: D1MfaStore(self.db()?),
            tokens: D1AccountTokenStore(self.db()?),
            key: keys::derive(
                self.config().jwt_secret.expose_secret().as_bytes(),
                KeyPurpose::TotpSecret,
            ),
        })
    }

    /// The account flows' adapters; links in emails point at `link_base`.
    pub fn accounts(&self, link_base: String) -> Result<AccountParts, AppError> {
        Ok(AccountParts {
            users: D1UserStore(self.db()?),
            tokens: D1AccountTokenStore(self.db()?),
            refresh_tokens: D1RefreshTokenStore(self.db()?),
            limiter: self.limiter()?,
            mailer: self.mailer(),
            events: self.security_log()?,
            settings: AccountSettings {
                admin_emails: self.config().admin_emails.clone(),
                link_base,
            },
        })
    }

    /// The deletion request's adapters.
    pub fn deletion(&self) -> Result<DeletionParts, AppError> {
        Ok(DeletionParts {
            mfa: self.mfa()?,
            store: D1DeletionStore(self.db()?),
        })
    }

    /// The export's adapters.
    pub fn export(&self) -> Result<ExportParts, AppError> {
        Ok(ExportParts {
            store: D1ExportStore(self.db()?),
            sessions: D1RefreshTokenStore(self.db()?),
            events: self.security_log()?,
            limiter: self.limiter()?,
            link_key: self.export_link_key(),
        })
    }

    /// The key of export download links.
    pub fn export_link_key(&self) -> [u8; 32] {
        keys::derive(
            self.config().jwt_secret.expose_secret().as_bytes(),
            KeyPurpose::ExportDownload,
        )
    }

    /// The erasure's adapters.
    pub fn eraser(&self) -> Result<EraserParts<'_>, AppError> {
        Ok(EraserParts {
            store: D1DeletionStore(self.db()?),
            stripe: self.stripe(),
            records: self.records()?,
            backups: self.backups()?,
            index: self.vector_index()?,
            app: self,
        })
    }

    /// Works on a pending deletion for at most `units` units; whether it finished. A failure
    /// is logged: the cron resumes the deletion where it stopped.
    pub async fn erase(&self, pending: PendingDeletion, units: u32) -> bool {
        let now = i64::try_from(worker::Date::now().as_millis()).unwrap_or(i64::MAX);
        let outcome = async { self.eraser()?.service().run(pending, units, now).await }.await;
        match outcome {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(user_id = %pending.user, error = ?e, "account deletion interrupted; the cron resumes it");
                false
            }
        }
    }

    fn stripe(&self) -> StripeClient<FetchHttpClient> {
        let stripe = &self.config().stripe;
        StripeClient::new(
            FetchHttpClient,
            stripe.api_base.as_str(),
            stripe.secret_key.clone(),
        )
    }

    /// The housekeeping service's adapters (the cron).
    pub fn housekeeping(&self) -> Result<HousekeepingParts<'_>, AppError> {
        Ok(HousekeepingParts {
            store: D1HousekeepingStore(self.db()?),
            records: self.records()?,
            backups: self.backups()?,
            plugins: self.plugins()?,
            deletions: self.eraser()?,
            app: self,
        })
    }

    /// The billing service's adapters.
    pub fn billing(&self) -> Result<BillingParts, AppError> {
        let stripe = &self.config().stripe;
        Ok(BillingParts {
            users: D1UserStore(self.db()?),
            store: D1BillingStore(self.db()?),
            stripe: self.stripe(),
            settings: BillingSettings {
                webhook_secret: stripe.webhook_secret.clone(),
                price_pro: stripe.price_pro.clone(),
                price_power: stripe.price_power.clone(),
                price_team: stripe.price_team.clone(),
                success_url: stripe.success_url.clone(),
                cancel_url: stripe.cancel_url.clone(),
                portal_return_url: stripe.portal_return_url.clone(),
            },
        })
    }

    /// The admin service's adapters.
    pub fn admin(&self) -> Result<AdminParts<'_>, AppError> {
        Ok(AdminParts {
            store: D1AdminStore(self.db()?),
            admin_emails: &self.config().admin_emails,
        })
    }

    /// The team service's adapters; invitation links point at `link_base`.
    pub fn teams(&self, link_base: String) -> Result<TeamParts, AppError> {
        Ok(TeamParts {
            store: D1TeamStore(self.db()?),
            users: D1UserStore(self.db()?),
            mailer: self.mailer(),
            stripe: self.stripe(),
            link_base,
        })
    }

    /// Whether `email`'s team requires SSO, so password login is refused (see
    /// [`D1SsoStore::password_login_refused`]).
    ///
    /// # Errors
    /// 503 when D1 fails.
    pub async fn password_login_refused(
        &self,
        email: &shared::domain::Email,
    ) -> Result<bool, AppError> {
        let now = i64::try_from(worker::Date::now().as_millis()).unwrap_or(i64::MAX);
        Ok(D1SsoStore(self.db()?)
            .password_login_refused(email, now)
            .await?)
    }

    /// Team SSO's adapters; the callback is under `public_base`.
    pub fn sso(&self, public_base: String) -> Result<SsoParts, AppError> {
        Ok(SsoParts {
            store: D1SsoStore(self.db()?),
            teams: D1TeamStore(self.db()?),
            auth: self.auth()?,
            seal_key: keys::derive(
                self.config().jwt_secret.expose_secret().as_bytes(),
                KeyPurpose::SsoClientSecret,
            ),
            allow_http: self.config().env == shared::config::Environment::Dev,
            public_base,
        })
    }

    /// The marketplace's adapters; download links point at `base_url`.
    pub fn marketplace(&self, base_url: String) -> Result<MarketParts, AppError> {
        Ok(MarketParts {
            store: D1PluginStore(self.db()?),
            packages: self.plugins()?,
            users: D1UserStore(self.db()?),
            billing: D1BillingStore(self.db()?),
            stripe: self.stripe(),
            limiter: self.limiter()?,
            download_key: keys::derive(
                self.config().jwt_secret.expose_secret().as_bytes(),
                KeyPurpose::PluginDownload,
            ),
            base_url,
        })
    }
}

/// What one chat request may use, as the caller's home said with its admission.
#[derive(Debug)]
pub struct ChatGrant {
    /// The tier in force.
    pub tier: Tier,
    /// The agents it may route to.
    pub enabled: EnabledAgents,
    /// The brain of the caller's agents (built-in plus their installed plugins').
    pub brain: UserBrain,
}

impl ChatGrant {
    /// The grant of a `tier` user whose home holds `choices`.
    ///
    /// # Errors
    /// As [`App::brain_for`].
    pub async fn load(app: &App, tier: Tier, choices: &ChatChoices) -> Result<Self, AppError> {
        let brain = app.brain_for(choices).await?;
        let enabled = allowance::effective(tier, &brain.registry, choices.agents.as_deref());
        Ok(Self {
            tier,
            enabled,
            brain,
        })
    }
}

/// The two-factor service's adapters.
pub struct MfaParts {
    auth: AuthParts,
    mfa: D1MfaStore,
    tokens: D1AccountTokenStore,
    key: [u8; 32],
}

impl MfaParts {
    /// The service.
    pub fn service(&self) -> MfaService<'_> {
        MfaService {
            auth: self.auth.service(),
            mfa: &self.mfa,
            tokens: &self.tokens,
            key: &self.key,
        }
    }
}

/// The account flows' adapters (owned; the service borrows them).
pub struct AccountParts {
    users: D1UserStore,
    tokens: D1AccountTokenStore,
    refresh_tokens: D1RefreshTokenStore,
    limiter: DurableRateLimiter,
    mailer: ResendClient<FetchHttpClient>,
    events: D1SecurityLog,
    settings: AccountSettings,
}

impl AccountParts {
    /// The service.
    pub fn service(&self) -> AccountService<'_> {
        AccountService {
            users: &self.users,
            tokens: &self.tokens,
            refresh_tokens: &self.refresh_tokens,
            limiter: &self.limiter,
            mailer: &self.mailer,
            events: &self.events,
            clock: &SystemClock,
            rng: &CryptoRandom,
            settings: &self.settings,
        }
    }
}

/// The auth service's adapters (owned; the service borrows them).
pub struct AuthParts {
    users: D1UserStore,
    refresh_tokens: D1RefreshTokenStore,
    tickets: D1TicketStore,
    limiter: DurableRateLimiter,
    events: D1SecurityLog,
    mfa: D1MfaStore,
    account_tokens: D1AccountTokenStore,
    tokens: AccessTokens,
    settings: AuthSettings,
}

impl AuthParts {
    /// The service.
    pub fn service(&self) -> AuthService<'_> {
        AuthService {
            users: &self.users,
            refresh_tokens: &self.refresh_tokens,
            tickets: &self.tickets,
            limiter: &self.limiter,
            events: &self.events,
            mfa: &self.mfa,
            account_tokens: &self.account_tokens,
            clock: &SystemClock,
            rng: &CryptoRandom,
            tokens: &self.tokens,
            settings: &self.settings,
        }
    }
}

#[async_trait::async_trait(?Send)]
impl shared::accounts::deletion::AccountRefresh for App {
    async fn refresh(&self, user: UserId) {
        self.push_account(user).await;
    }
}

impl shared::housekeeping::Homes for App {
    fn home(&self, user: UserId) -> Result<Box<dyn shared::home::HomePort + '_>, AppError> {
        Ok(Box::new(self.home_for_service(user)?))
    }
}

/// The housekeeping service's adapters.
pub struct HousekeepingParts<'a> {
    store: D1HousekeepingStore,
    records: R2BlobStore,
    backups: R2BlobStore,
    plugins: R2BlobStore,
    deletions: EraserParts<'a>,
    app: &'a App,
}

/// The deletion request's adapters.
pub struct DeletionParts {
    mfa: MfaParts,
    store: D1DeletionStore,
}

impl DeletionParts {
    /// The request service.
    pub fn request(&self) -> DeletionRequest<'_> {
        DeletionRequest {
            mfa: self.mfa.service(),
            store: &self.store,
        }
    }
}

/// The export's adapters.
pub struct ExportParts {
    store: D1ExportStore,
    sessions: D1RefreshTokenStore,
    events: D1SecurityLog,
    limiter: DurableRateLimiter,
    link_key: [u8; 32],
}

impl ExportParts {
    /// The export over the caller's `home`, links pointing at `base_url`.
    pub fn service<'a>(&'a self, home: &'a HomeClient, base_url: &'a str) -> Exporter<'a> {
        Exporter {
            store: &self.store,
            sessions: &self.sessions,
            events: &self.events,
            limiter: &self.limiter,
            home,
            clock: &SystemClock,
            link_key: &self.link_key,
            base_url,
        }
    }
}

/// The erasure's adapters.
pub struct EraserParts<'a> {
    store: D1DeletionStore,
    stripe: StripeClient<FetchHttpClient>,
    records: R2BlobStore,
    backups: R2BlobStore,
    index: Option<VectorizeIndex>,
    app: &'a App,
}

impl EraserParts<'_> {
    /// The erasure.
    pub fn service(&self) -> Eraser<'_> {
        Eraser {
            store: &self.store,
            payments: &self.stripe,
            records: &self.records,
            backups: &self.backups,
            uploads: &self.backups,
            homes: self.app,
            index: self
                .index
                .as_ref()
                .map(|i| i as &dyn shared::ports::VectorIndex),
            accounts: self.app,
        }
    }
}

#[async_trait::async_trait(?Send)]
impl shared::housekeeping::Deletions for EraserParts<'_> {
    async fn finish_pending(&self, now: i64) -> Result<u32, AppError> {
        self.service().finish_pending(now).await
    }
}

impl HousekeepingParts<'_> {
    /// The service over these adapters.
    pub fn service(&self) -> shared::housekeeping::Housekeeping<'_> {
        shared::housekeeping::Housekeeping {
            store: &self.store,
            homes: self.app,
            records: &self.records,
            backups: &self.backups,
            plugins: &self.plugins,
            deletions: &self.deletions,
            policy: self.app.config().housekeeping,
        }
    }
}

/// The billing service's adapters.
pub struct BillingParts {
    /// Accounts.
    pub users: D1UserStore,
    store: D1BillingStore,
    stripe: StripeClient<FetchHttpClient>,
    settings: BillingSettings,
}

impl BillingParts {
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

/// The admin service's adapters.
pub struct AdminParts<'a> {
    store: D1AdminStore,
    admin_emails: &'a [String],
}

impl AdminParts<'_> {
    /// The service.
    pub fn service(&self) -> shared::admin::AdminService<'_> {
        shared::admin::AdminService {
            store: &self.store,
            clock: &SystemClock,
            rng: &CryptoRandom,
            admin_emails: self.admin_emails,
        }
    }
}

/// Team SSO's adapters.
pub struct SsoParts {
    store: D1SsoStore,
    teams: D1TeamStore,
    auth: AuthParts,
    seal_key: [u8; 32],
    allow_http: bool,
    public_base: String,
}

impl SsoParts {
    /// The service.
    pub fn service(&self) -> shared::teams::sso::SsoService<'_> {
        shared::teams::sso::SsoService {
            store: &self.store,
            teams: &self.teams,
            auth: self.auth.service(),
            http: &FetchHttpClient,
            seal_key: &self.seal_key,
            allow_http: self.allow_http,
            public_base: self.public_base.clone(),
        }
    }
}

/// The team service's adapters.
pub struct TeamParts {
    store: D1TeamStore,
    users: D1UserStore,
    mailer: ResendClient<FetchHttpClient>,
    stripe: StripeClient<FetchHttpClient>,
    link_base: String,
}

impl TeamParts {
    /// The service.
    pub fn service(&self) -> shared::teams::TeamService<'_> {
        shared::teams::TeamService {
            store: &self.store,
            users: &self.users,
            mailer: &self.mailer,
            payments: &self.stripe,
            clock: &SystemClock,
            rng: &CryptoRandom,
            link_base: self.link_base.clone(),
        }
    }
}

/// The marketplace's adapters.
pub struct MarketParts {
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

impl MarketParts {
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

/// Record and backup services over the caller's home and one bucket.
pub struct Storage {
    /// The caller's home.
    pub home: HomeClient,
    /// The bucket.
    pub bucket: R2BlobStore,
}

impl Storage {
    /// Records.
    pub fn records(&self) -> RecordService<'_, R2BlobStore> {
        RecordService {
            home: &self.home,
            blobs: &self.bucket,
        }
    }

    /// Backups.
    pub fn backups(&self) -> BackupService<'_, R2BlobStore> {
        BackupService {
            home: &self.home,
            blobs: &self.bucket,
        }
    }
}

/// The vector service over the caller's home and the index.
pub fn vectors<'a>(
    home: &'a HomeClient,
    index: Option<&'a VectorizeIndex>,
    user: UserId,
) -> VectorService<'a> {
    VectorService {
        home,
        index: index.map(|i| i as &dyn shared::ports::VectorIndex),
        user,
    }
}
