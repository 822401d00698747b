//! The application: configuration and the handles to the services it talks to, built
//! once at start. This is the composition root: the services, the authentication, the
//! job types and the job runtime take the handles they use (`&TenantPools`, `&Mailer`,
//! `&Invalidations`, `&Storage`, `JobRuntime`…), never the whole `App`; the routes, the
//! commands and the subsystems hand them over.

use std::{ops::Deref, sync::Arc};

use anyhow::Context;
use sqlx::PgPool;

use crate::{
    auth::{
        authenticate::Authenticator, cache::AuthCache, invalidation::Invalidations, jwt::JwtKeys,
        token_cache::TokenCache,
    },
    config::{Config, NotificationsBackend, StorageBackend},
    services::{
        metering::{self, Meter},
        notifications::{Mailer, Notifier},
        rate_limit::RateLimiter,
        sessions::Issuer,
    },
    telemetry::Metrics,
};

/// Everything a request handler, a job or a command needs, built once at start.
pub struct App {
    pub config: Config,
    /// The platform pool (and, with `DATABASE_TENANT_POOLS=1`, the tenants' too).
    pub db: PgPool,
    /// The pools of tenant-scoped work; see [`crate::db::TenantPools::scope`].
    pub tenant_db: crate::db::TenantPools,
    pub redis: crate::redis::Redis,
    pub metrics: Metrics,
    pub jwt: Arc<JwtKeys>,
    /// Per-replica caches of authentication lookups.
    pub auth: Arc<AuthCache>,
    /// What authenticates a request (the pools, the keys, the caches, the deny-list).
    pub authenticator: Authenticator,
    /// Publishes authentication changes to this replica's caches and the others'.
    pub invalidations: Invalidations,
    /// Signs sessions' tokens.
    pub issuer: Issuer,
    /// Where notifications go: the `log` backend (an in-process outbox) or SNS.
    pub notifier: Arc<Notifier>,
    /// What sends spend (the limiter) and where their jobs go (the queue).
    pub mailer: Mailer,
    /// This replica's autoscaler: what its evaluator works with, and the capacity gauge.
    pub autoscaler: crate::services::scaling::Autoscaler,
    /// Rate limits (Redis, with an in-process fallback) and per-tenant overrides.
    pub limits: Arc<RateLimiter>,
    /// The usage buffer that the metering layer and other services record into.
    pub meter: Arc<Meter>,
    /// Producer side of the background job queue.
    pub jobs: crate::jobs::JobQueue,
    /// File contents (S3 or the filesystem).
    pub storage: Arc<crate::storage::Storage>,
    /// What the job workers, the runner, the reconciler and the job handlers use.
    pub job_runtime: crate::jobs::JobRuntime,
}

impl App {
    /// Builds the pools (lazily: nothing is contacted yet) and the metrics recorder.
    /// Without `JWT_PRIVATE_KEY_FILE`, tokens are signed with a key of this process alone:
    /// for tests and tools. A serving replica is built by [`App::connect`].
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        let db = platform_pool(&config)?;
        let jwt = JwtKeys::from_config(&config, None)?;
        Self::assemble(config, db, jwt).await
    }

    /// Builds a serving replica. Outside production the shared schema is migrated first
    /// (a development convenience, like creating the database) and, without
    /// `JWT_PRIVATE_KEY_FILE`, the development signing key is loaded from it — generated
    /// by the first replica — so that every replica signs and verifies with one key.
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        let db = platform_pool(&config)?;
        let mut development_key = None;
        if !config.is_production() {
            crate::db::migrate::run_shared(&db).await?;
            if config.auth.jwt_private_key_file.is_none() {
                development_key = Some(crate::auth::dev_key::load_or_create(&db).await?);
            }
        }
        // Logged, not required: the service starts while the database is down. Migrations
        // and onboarding look for Citus themselves on the connection they use.
        let probe = db.clone();
        tokio::spawn(async move {
            match crate::db::citus::detect(&probe).await {
                Ok(true) => tracing::info!(
                    "database is a Citus coordinator: tenant schemas are distributed schemas, `platform` stays on the coordinator"
                ),
                Ok(false) => tracing::debug!("database is plain PostgreSQL (no citus extension)"),
                Err(e) => tracing::warn!(error = %e, "could not check the database for Citus"),
            }
        });
        if config.auth.mfa_encryption_key.is_none() {
            tracing::warn!(
                "MFA_ENCRYPTION_KEY is not set: TOTP secrets are sealed with the public \
                 development key (production refuses to start without one)"
            );
        }
        let jwt = JwtKeys::from_config(&config, development_key.as_deref())?;
        let app = Self::assemble(config, db, jwt).await?;
        if !app.config.is_production() {
            // The bucket (or directory) is created in development, like the database.
            app.storage.prepare().await;
        }
        Ok(app)
    }

    async fn assemble(config: Config, db: PgPool, jwt: JwtKeys) -> anyhow::Result<Self> {
        let tenants = match config.database.tenant_pools {
            crate::db::PoolSetting::Auto => crate::db::pools::count_at_start(&db).await,
            crate::db::PoolSetting::Fixed(_) => 0,
        };
        let tenant_db = crate::db::TenantPools::new(
            &db,
            &config.database.url,
            config.database.max_connections,
            config.database.tenant_pools,
            config.database.statement_cache,
            tenants,
        )?;
        // Only S3 storage and SNS notifications talk to AWS.
        let aws = if config.storage.backend == StorageBackend::S3
            || config.notifications.backend == NotificationsBackend::Sns
        {
            Some(crate::aws::sdk_config(&config).await)
        } else {
            None
        };
        let notifier = Arc::new(Notifier::from_config(&config, aws.as_ref()).await?);
        let storage = Arc::new(crate::storage::Storage::new(
            &config,
            aws.as_ref(),
            db.clone(),
        )?);
        let redis = crate::redis::connect(&config.redis.url)?;
        // The recorder first: the limiter and meter register their metrics when built.
        let metrics = Metrics::install().context("failed to install the metrics recorder")?;
        let limits = Arc::new(RateLimiter::new(&config, redis.clone()));
        let meter = Arc::new(Meter::new(
            config.metering.enabled,
            metering::DEFAULT_MAX_KEYS,
        ));
        let jobs = crate::jobs::JobQueue::new(redis.clone(), &config);
        let jwt = Arc::new(jwt);
        let auth = Arc::new(AuthCache::new(
            std::time::Duration::from_secs(config.auth.access_token_ttl_seconds.unsigned_abs()),
            config.auth.deny_list_capacity,
        ));
        let invalidations = Invalidations::new(
            redis.clone(),
            &config.redis,
            auth.clone(),
            limits.overrides.clone(),
        );
        let autoscaler = crate::services::scaling::Autoscaler::new(
            db.clone(),
            redis.clone(),
            config.autoscaler.clone(),
            format!("{}autoscaler:lease", config.redis.key_prefix),
        );
        let job_runtime = crate::jobs::JobRuntime {
            db: db.clone(),
            tenant_db: tenant_db.clone(),
            redis: redis.clone(),
            queue: jobs.clone(),
            storage: storage.clone(),
            notifier: notifier.clone(),
            meter: meter.clone(),
            config: config.jobs.clone(),
            redis_config: config.redis.clone(),
            queue_depth: crate::telemetry::QueueDepthPublisher::from_config(&config),
        };
        Ok(Self {
            authenticator: Authenticator {
                pools: tenant_db.clone(),
                jwt: jwt.clone(),
                tokens: TokenCache::default(),
                cache: auth.clone(),
                invalidations: invalidations.clone(),
            },
            issuer: Issuer {
                jwt: jwt.clone(),
                refresh_ttl: chrono::Duration::days(config.auth.refresh_token_ttl_days),
            },
            mailer: Mailer {
                limits: limits.clone(),
                queue: jobs.clone(),
            },
            db,
            tenant_db,
            jobs,
            redis,
            metrics,
            limits,
            meter,
            jwt,
            auth,
            invalidations,
            notifier,
            autoscaler,
            storage,
            job_runtime,
            config,
        })
    }

    /// A Redis key in this deployment's namespace.
    pub fn redis_key(&self, key: &str) -> String {
        format!("{}{key}", self.config.redis.key_prefix)
    }
}

/// The platform pool (also the tenants' with `DATABASE_TENANT_POOLS=1`), not connected yet.
fn platform_pool(config: &Config) -> anyhow::Result<PgPool> {
    crate::db::connect_with(
        &config.database.url,
        config.database.max_connections,
        config.database.statement_cache,
    )
}

/// Shared application state, cheap to clone into every request.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl AppState {
    pub fn new(app: App) -> Self {
        Self(Arc::new(app))
    }
}

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

/// Counts the tenants every `database.layout_interval` ([`crate::db::pools::FIT_INTERVAL`])
/// and lays the lanes out anew when their number calls for it.
pub fn start_pool_layout(app: &AppState, background: &crate::background::Background) {
    let state = app.clone();
    background.spawn("pool layout", move |stop| async move {
        let mut ticker = tokio::time::interval(state.config.database.layout_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = stop.cancelled() => break,
            }
            let fitted = match crate::db::pools::count_tenants(&state.db).await {
                Ok(tenants) => state.tenant_db.fit(tenants).map(|n| (tenants, n)),
                Err(e) => Err(e.into()),
            };
            match fitted {
                Ok((tenants, Some(lanes))) => {
                    tracing::info!(tenants, lanes, "tenant connection lanes laid out anew")
                }
                Ok((_, None)) => {}
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "could not fit the tenant connection lanes")
                }
            }
            metrics::gauge!("tenantry_db_tenant_lanes").set(state.tenant_db.lanes() as f64);
        }
    });
}
