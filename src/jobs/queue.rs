//! The Redis queue (apalis-redis storage) that job messages travel through.

use std::time::Duration;

use anyhow::Context;
use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_redis::{Config as StorageConfig, RedisStorage};
use redis::aio::ConnectionManager;

use super::JobMessage;
use crate::config::Config;

/// The storage type every worker and producer shares.
pub type Storage = RedisStorage<JobMessage, ConnectionManager>;

/// How long a push's idempotency key is kept: a second push of the same job attempt
/// within it (the reconciler racing a slow first push) is dropped by Redis itself.
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(3600);

/// Producer side of the queue: clone-cheap, shares the app's Redis connection.
#[derive(Clone)]
pub struct JobQueue {
    storage: Storage,
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobQueue")
            .field("queue", &self.storage.get_config().queue.as_ref())
            .finish()
    }
}

/// The queue's apalis configuration, named inside the deployment's Redis key prefix so
/// that deployments (and parallel tests) sharing one Redis never share a queue.
pub fn storage_config(config: &Config) -> StorageConfig {
    // apalis declares a worker dead after `heartbeat × missed`; its messages go back to
    // the queue then. The row lease is the primary guard; this only bounds how long a
    // dead worker's message lingers.
    let heartbeat = config.job_lease / 3;
    StorageConfig::default()
        .queue(format!("{}jobs", config.redis_key_prefix))
        .batch_size(config.job_concurrency.clamp(1, 100))
        .heartbeat_interval(heartbeat.max(Duration::from_millis(100)))
        .missed_heartbeats(3)
        .idempotency_ttl(Some(IDEMPOTENCY_TTL))
        // Outcomes live in the tenant's `jobs` rows; apalis need not keep them too.
        .persist_results(false)
        .emit_events(false)
}

impl JobQueue {
    pub fn new(conn: ConnectionManager, config: &Config) -> Self {
        Self {
            storage: RedisStorage::new(conn).with_config(storage_config(config)),
        }
    }

    pub fn storage_config(&self) -> &StorageConfig {
        self.storage.get_config()
    }

    /// Pushes a message, due after `delay`. `key` makes the push idempotent: a second
    /// push with the same key while the first is remembered does nothing.
    pub async fn push(
        &self,
        message: JobMessage,
        delay: Option<Duration>,
        key: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut builder = TaskBuilder::new(message);
        if let Some(delay) = delay.filter(|d| !d.is_zero()) {
            // apalis schedules with whole seconds; round up so a retry is never early.
            builder =
                builder.run_after(Duration::from_secs(delay.as_millis().div_ceil(1000) as u64));
        }
        if let Some(key) = key {
            builder = builder.idempotency_key(key);
        }
        let mut storage = self.storage.clone();
        tokio::time::timeout(crate::redis::TIMEOUT, storage.push_task(builder.build()))
            .await
            .context("Redis did not accept the job in time")?
            .map_err(|e| anyhow::anyhow!("failed to push the job: {e}"))
    }

    /// Key making the push of one attempt of a job row idempotent.
    pub fn row_key(message: &JobMessage, attempts: i32) -> String {
        format!("job:{}:{attempts}", message.job_id)
    }
}
