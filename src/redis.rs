//! Redis: one multiplexed, self-reconnecting connection shared by the deny-list, cache
//! invalidation and health checks (and, later, rate limits and jobs).
//!
//! A multiplexed connection costs one round trip per command; a pool would add a
//! liveness `PING` to every checkout.

use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Bounded waits, so that a Redis outage answers quickly instead of holding requests.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The shared connection; clone it to send commands.
pub type Redis = ConnectionManager;

/// Connects lazily: the service starts (and reports not ready) while Redis is down.
pub fn connect(url: &str) -> anyhow::Result<Redis> {
    let client = redis::Client::open(url).context("REDIS_URL is not a valid Redis URL")?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT))
        .set_number_of_retries(1);
    ConnectionManager::new_lazy_with_config(client, config)
        .context("failed to set up the Redis connection")
}

/// `PING`, bounded by [`TIMEOUT`].
pub async fn ping(redis: &Redis) -> anyhow::Result<()> {
    let mut conn = redis.clone();
    let pong: String = tokio::time::timeout(TIMEOUT, redis::cmd("PING").query_async(&mut conn))
        .await
        .context("Redis did not answer in time")??;
    anyhow::ensure!(pong == "PONG", "unexpected PING answer {pong:?}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rediss_urls_are_accepted() {
        // ElastiCache with TLS in transit: the URL a deployment puts in REDIS_URL.
        for url in [
            "rediss://cache.example.com:6379/0",
            "rediss://default:secret@cache.example.com:6379/0",
        ] {
            assert!(connect(url).is_ok(), "{url} refused");
        }
        assert!(connect("http://cache.example.com").is_err());
    }
}
