//! The Redis queue (apalis-redis storage) that job messages travel through.

use std::time::Duration;

use anyhow::Context;
use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_redis::{Config as StorageConfig, RedisStorage};
use redis::aio::ConnectionManager;

use super::{JobMessage, Lane, fair};
use crate::config::Config;

/// The storage type every worker and producer shares.
pub type Storage = RedisStorage<JobMessage, ConnectionManager>;

/// How long a push's idempotency key is kept: a second push of the same job attempt
/// within it (the reconciler racing a slow first push) is dropped by Redis itself.
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(3600);

/// Producer side of the queues: clone-cheap, shares the app's Redis connection.
#[derive(Clone)]
pub struct JobQueue {
    /// Tenants' jobs once admitted ([`fair`]).
    storage: Storage,
    /// Platform work, straight to its own workers.
    platform: Storage,
    fair: fair::Keys,
    conn: ConnectionManager,
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobQueue")
            .field("queue", &self.storage.get_config().queue.as_ref())
            .field("platform", &self.platform.get_config().queue.as_ref())
            .finish()
    }
}

/// The queue's apalis configuration, named inside the deployment's Redis key prefix so
/// that deployments (and parallel tests) sharing one Redis never share a queue.
pub fn storage_config(config: &Config) -> StorageConfig {
    lane_config(config, "jobs")
}

/// The platform lane's apalis configuration (see [`storage_config`]).
pub fn platform_config(config: &Config) -> StorageConfig {
    lane_config(config, "platform-jobs")
}

fn lane_config(config: &Config, queue: &str) -> StorageConfig {
    // apalis declares a worker dead after `heartbeat × missed`; its messages go back to
    // the queue then. The row lease is the primary guard; this only bounds how long a
    // dead worker's message lingers.
    let heartbeat = config.jobs.lease / 3;
    StorageConfig::default()
        .queue(format!("{}{queue}", config.redis.key_prefix))
        .batch_size(config.jobs.concurrency.clamp(1, 100))
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
            storage: RedisStorage::new(conn.clone()).with_config(storage_config(config)),
            platform: RedisStorage::new(conn.clone()).with_config(platform_config(config)),
            fair: fair::Keys::new(&config.redis.key_prefix),
            conn,
        }
    }

    /// The keys of fair admission.
    pub fn fair(&self) -> &fair::Keys {
        &self.fair
    }

    /// The tenant lane's apalis configuration ([`storage_config`]).
    pub fn storage_config(&self) -> &StorageConfig {
        self.storage.get_config()
    }

    /// The platform lane's apalis configuration ([`platform_config`]).
    pub fn platform_config(&self) -> &StorageConfig {
        self.platform.get_config()
    }

    /// Queues a message, due after `delay`: a tenant's waits for admission in its
    /// tenant's turn, a platform one goes to the platform workers. `key` makes the push
    /// idempotent: a second push with the same key while the first is remembered does
    /// nothing.
    pub async fn push(
        &self,
        message: JobMessage,
        delay: Option<Duration>,
        key: Option<&str>,
    ) -> anyhow::Result<()> {
        match message.lane {
            Lane::Tenant => {
                let mut conn = self.conn.clone();
                let push = self.fair.push(
                    &mut conn,
                    &message,
                    delay.unwrap_or_default(),
                    key.map(|key| (key, IDEMPOTENCY_TTL)),
                );
                tokio::time::timeout(crate::redis::TIMEOUT, push)
                    .await
                    .context("Redis did not accept the job in time")??;
                Ok(())
            }
            Lane::Platform => push_to(&self.platform, message, delay, key).await,
        }
    }

    /// Keeps a running tenant job's slot for another `lease` (its heartbeat).
    pub async fn renew_slot(&self, message: &JobMessage, lease: Duration) -> anyhow::Result<()> {
        self.fair
            .renew(&mut self.conn.clone(), message, lease)
            .await
    }

    /// Gives a handled tenant job's slot back.
    pub async fn release_slot(&self, message: &JobMessage) -> anyhow::Result<()> {
        self.fair.release(&mut self.conn.clone(), message).await
    }

    /// Hands admitted messages to the tenant lane's workers.
    pub async fn push_admitted(&self, message: JobMessage) -> anyhow::Result<()> {
        push_to(&self.storage, message, None, None).await
    }

    /// Key making the push of one attempt of a job row idempotent.
    pub fn row_key(message: &JobMessage, attempts: i32) -> String {
        format!("job:{}:{attempts}", message.job_id)
    }
}

/// Pushes a message to an apalis queue, due after `delay`.
async fn push_to(
    storage: &Storage,
    message: JobMessage,
    delay: Option<Duration>,
    key: Option<&str>,
) -> anyhow::Result<()> {
    let mut builder = TaskBuilder::new(message);
    if let Some(delay) = delay.filter(|d| !d.is_zero()) {
        // apalis schedules with whole seconds; round up so a retry is never early.
        builder = builder.run_after(Duration::from_secs(delay.as_millis().div_ceil(1000) as u64));
    }
    if let Some(key) = key {
        builder = builder.idempotency_key(key);
    }
    let mut storage = storage.clone();
    tokio::time::timeout(crate::redis::TIMEOUT, storage.push_task(builder.build()))
        .await
        .context("Redis did not accept the job in time")?
        .map_err(|e| anyhow::anyhow!("failed to push the job: {e}"))
}
