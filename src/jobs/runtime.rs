//! [`JobRuntime`]: what running jobs uses, handed to the worker, the runner, the
//! reconciler and the job handlers.

use std::sync::Arc;

use sqlx::PgPool;
use uuid::Uuid;

use super::JobQueue;
use crate::{
    config::{JobsConfig, RedisConfig},
    db::{TenantPools, TenantScope},
    redis::Redis,
    services::{metering::Meter, notifications::Notifier},
    storage::Storage,
    telemetry::QueueDepthPublisher,
};

/// The handles a job process works with, built once by `App` and cheap to clone (pools,
/// connections and `Arc`s): the worker clones it into every job it runs.
#[derive(Clone)]
pub struct JobRuntime {
    /// The platform pool (the reconciler's rounds, the tenants' statuses and caps).
    pub db: PgPool,
    /// The pools of tenant-scoped work; see [`JobRuntime::tenant_scope`].
    pub tenant_db: TenantPools,
    pub redis: Redis,
    /// Where retries, hand-overs, purges and admitted messages go.
    pub queue: JobQueue,
    /// File contents: reports written, uploads cleaned up, a purged tenant's files.
    pub storage: Arc<Storage>,
    /// Where `notification.send` delivers.
    pub notifier: Arc<Notifier>,
    /// The usage buffer that jobs record into.
    pub meter: Arc<Meter>,
    /// `JOB_*`: leases, heartbeats, retries, concurrency, the reconciler's periods.
    pub config: JobsConfig,
    /// Redis's URL (the worker's own connection) and key prefix.
    pub redis_config: RedisConfig,
    /// The job backlog as CloudWatch sees it (the reconciler reads it).
    pub queue_depth: QueueDepthPublisher,
}

impl JobRuntime {
    /// The tenant's schema, on the tenant's pool.
    pub fn tenant_scope(&self, tenant_id: Uuid) -> TenantScope {
        self.tenant_db.scope(tenant_id)
    }

    /// A Redis key in this deployment's namespace.
    pub fn redis_key(&self, key: &str) -> String {
        format!("{}{key}", self.redis_config.key_prefix)
    }
}
