//! A Redis lease: at most one replica holds it at a time, and a replica that dies loses
//! it when its time runs out.
//!
//! Redis rather than a PostgreSQL advisory lock: a lock held on a connection outlives a
//! replica that vanished without closing its socket until TCP keepalive notices (hours by
//! default), while a lease expires on its own after `ttl`.

use std::time::Duration;

use anyhow::Context;
use uuid::Uuid;

use crate::redis::{Redis, TIMEOUT};

/// Takes the lease when it is free, extends it when this owner already holds it.
const ACQUIRE_OR_RENEW: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
";

/// Gives the lease up, only if this owner still holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// One replica's claim on a named lease.
#[derive(Debug, Clone)]
pub struct Lease {
    key: String,
    owner: String,
    ttl: Duration,
}

impl Lease {
    /// A claim on `key` by a new owner id (unique per process and lease).
    pub fn new(key: String, ttl: Duration) -> Self {
        Self {
            key,
            owner: Uuid::now_v7().to_string(),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Takes or renews the lease for another `ttl`; `true` when this owner holds it now.
    pub async fn acquire_or_renew(&self, redis: &Redis) -> anyhow::Result<bool> {
        let mut conn = redis.clone();
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let held: i64 = tokio::time::timeout(
            TIMEOUT,
            redis::Script::new(ACQUIRE_OR_RENEW)
                .key(&self.key)
                .arg(&self.owner)
                .arg(ttl_ms)
                .invoke_async(&mut conn),
        )
        .await
        .context("Redis did not answer in time")?
        .context("failed to take or renew the lease")?;
        Ok(held == 1)
    }

    /// Releases the lease if this owner holds it, so another replica takes over at its
    /// next attempt instead of waiting for the lease to expire.
    pub async fn release(&self, redis: &Redis) -> anyhow::Result<()> {
        let mut conn = redis.clone();
        let _: i64 = tokio::time::timeout(
            TIMEOUT,
            redis::Script::new(RELEASE)
                .key(&self.key)
                .arg(&self.owner)
                .invoke_async(&mut conn),
        )
        .await
        .context("Redis did not answer in time")?
        .context("failed to release the lease")?;
        Ok(())
    }
}
