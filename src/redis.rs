//! Redis: one pool shared by rate limits, the deny-list, caches and health checks.

use std::time::Duration;

use anyhow::Context;
use deadpool_redis::{Config, Pool, Runtime};

/// Bounded waits so that a Redis outage answers quickly instead of holding requests.
const TIMEOUT: Duration = Duration::from_secs(2);
const MAX_SIZE: usize = 32;

/// Builds the pool; no connection is opened until one is needed.
pub fn pool(url: &str) -> anyhow::Result<Pool> {
    Config::from_url(url)
        .builder()
        .context("REDIS_URL is not a valid Redis URL")?
        .max_size(MAX_SIZE)
        .wait_timeout(Some(TIMEOUT))
        .create_timeout(Some(TIMEOUT))
        .recycle_timeout(Some(TIMEOUT))
        .runtime(Runtime::Tokio1)
        .build()
        .context("failed to build the Redis pool")
}

/// `PING`, bounded by the pool's timeouts.
pub async fn ping(pool: &Pool) -> anyhow::Result<()> {
    let mut conn = pool.get().await.context("no Redis connection")?;
    let pong: String = tokio::time::timeout(TIMEOUT, redis::cmd("PING").query_async(&mut conn))
        .await
        .context("Redis did not answer in time")??;
    anyhow::ensure!(pong == "PONG", "unexpected PING answer {pong:?}");
    Ok(())
}
