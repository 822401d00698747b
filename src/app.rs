//! The application: configuration and the handles to the services it talks to.

use std::{ops::Deref, sync::Arc};

use anyhow::Context;
use sqlx::PgPool;

use crate::{
    auth::{cache::AuthCache, jwt::JwtKeys},
    config::Config,
    services::notify::Outbox,
    telemetry::Metrics,
};

/// Everything a request handler, a job or a command needs, built once at start.
pub struct App {
    pub config: Config,
    pub db: PgPool,
    pub redis: crate::redis::Redis,
    pub metrics: Metrics,
    pub jwt: JwtKeys,
    /// Per-replica caches of authentication lookups.
    pub auth: AuthCache,
    /// Messages of the `log` notification backend.
    pub outbox: Outbox,
    /// Producer side of the background job queue.
    pub jobs: crate::jobs::JobQueue,
}

impl App {
    /// Builds the pools (lazily: nothing is contacted yet) and the metrics recorder.
    pub fn new(config: Config) -> anyhow::Result<Self> {
        let db = crate::db::connect(&config.database_url, config.database_max_connections)?;
        let redis = crate::redis::connect(&config.redis_url)?;
        Ok(Self {
            db,
            jobs: crate::jobs::JobQueue::new(redis.clone(), &config),
            redis,
            metrics: Metrics::install().context("failed to install the metrics recorder")?,
            jwt: JwtKeys::from_config(&config)?,
            auth: AuthCache::new(
                std::time::Duration::from_secs(config.access_token_ttl_seconds.unsigned_abs()),
                config.deny_list_capacity,
            ),
            outbox: Outbox::default(),
            config,
        })
    }

    /// A Redis key in this deployment's namespace.
    pub fn redis_key(&self, key: &str) -> String {
        format!("{}{key}", self.config.redis_key_prefix)
    }
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
