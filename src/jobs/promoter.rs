//! Moves due messages from apalis-redis's scheduled set to its ready list in chunks.
//!
//! Why: apalis-redis 1.0 pushes *every* message through the scheduled sorted set (a
//! message without a delay is scheduled for "now"), and its fetch script promotes all due
//! messages with one `RPUSH key unpack(ids)`. Past Lua's unpack limit (~8,000 values) that
//! call fails, and apalis marks the worker dead. A backlog that size is ordinary (workers
//! down for a minute while the API accepts jobs), so this promoter keeps the due part of
//! the scheduled set small: it drains it before the worker starts, then every poll.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apalis_redis::Config as StorageConfig;
use redis::aio::ConnectionManager;

/// Messages moved per script call: far below the unpack limit.
const CHUNK: usize = 1000;

/// Moves up to [`CHUNK`] due messages; returns how many moved.
const PROMOTE: &str = r"
local ids = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids > 0 then
    redis.call('rpush', KEYS[2], unpack(ids))
    redis.call('zrem', KEYS[1], unpack(ids))
    redis.call('del', KEYS[3])
    redis.call('lpush', KEYS[3], 1)
end
return #ids
";

/// Promotes every due message, chunk by chunk; returns how many moved.
pub async fn promote_due(
    conn: &mut ConnectionManager,
    config: &StorageConfig,
) -> redis::RedisResult<usize> {
    let script = redis::Script::new(PROMOTE);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut moved = 0;
    loop {
        let n: usize = script
            .key(config.scheduled_jobs_set())
            .key(config.active_jobs_list())
            .key(config.signal_list())
            .arg(now)
            .arg(CHUNK)
            .invoke_async(conn)
            .await?;
        moved += n;
        if n < CHUNK {
            return Ok(moved);
        }
    }
}

/// Promotes due messages every `every`, for as long as it runs.
pub async fn run(mut conn: ConnectionManager, config: StorageConfig, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = promote_due(&mut conn, &config).await {
            tracing::warn!(error = %e, "could not promote due job messages");
        }
    }
}
