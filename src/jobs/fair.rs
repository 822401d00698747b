//! Fair admission of tenants' jobs: which message the workers run next.
//!
//! A tenant's job message does not go to the apalis queue when it is submitted: it waits
//! in its tenant's own list in Redis, and tenants with waiting messages stand in a ring.
//! Every worker process admits messages from the ring *in turn* — one per tenant per
//! turn — into the apalis queue, and only while
//! - the tenant runs fewer jobs than its plan allows across the cluster
//!   ([`Plan::job_concurrency`]: free 2, standard 8, premium 32), and
//! - a worker slot is free for it: everything admitted and not finished stays below the
//!   workers' registered capacity, of which an eighth is kept for tenants that run
//!   nothing at the moment.
//!
//! So a tenant flooding the queue takes at most its cap, never the whole capacity from a
//! tenant that submits one job now and then, and an admitted message finds a free worker
//! at once. A running job's slot is held in a sorted set with a lease (renewed by the
//! job's heartbeat, released when it ends); a process that dies loses its slots when their
//! leases run out. The job's row stays the record of truth: a message lost anywhere on
//! this path is handed over again by the reconciler.
//!
//! Platform work (identity mail, purges, clean-ups) does not queue here: it has its own
//! apalis queue and workers ([`Lane::Platform`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::JobMessage;
use crate::services::tenants::Plan;

/// Which workers run a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// A tenant's own jobs: admitted fairly, capped by plan.
    #[default]
    Tenant,
    /// What the platform does by itself: never waits behind tenants' jobs.
    Platform,
}

/// How long a slot is held without a heartbeat: a dead process's slots come back then.
pub fn slot_lease(job_lease: Duration) -> Duration {
    job_lease
}

/// Messages admitted by one call at most.
const ADMIT_MAX: usize = 256;

/// Ring positions looked at by one call at most, so a ring of thousands of capped
/// tenants never holds Redis for long.
const ADMIT_STEPS: usize = 4096;

/// How long a worker process's registered capacity counts without being renewed.
const CAPACITY_TTL: Duration = Duration::from_secs(5);

/// Queues a message in its tenant's list, or in the delayed set when it is due later.
/// `KEYS`: delayed set, ring, ring members, the tenant's list, idempotency key (or "").
/// `ARGV`: message, tenant id, due time (ms, 0 = now), idempotency ttl (ms).
const PUSH: &str = r"
if KEYS[5] ~= '' then
  if not redis.call('SET', KEYS[5], 1, 'NX', 'PX', ARGV[4]) then return 0 end
end
if tonumber(ARGV[3]) > 0 then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
else
  redis.call('RPUSH', KEYS[4], ARGV[1])
  if redis.call('SADD', KEYS[3], ARGV[2]) == 1 then redis.call('RPUSH', KEYS[2], ARGV[2]) end
end
return 1
";

/// Moves due delayed messages to their tenants, then admits messages in turn.
/// `KEYS`: delayed set, ring, ring members, capacity set, running set (all tenants),
/// caps hash.
/// `ARGV`: tenant list prefix, tenant running-set prefix, now (ms), slot lease (ms),
/// default cap, most to admit, most ring steps.
const ADMIT: &str = r"
local now = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1000)
for _, msg in ipairs(due) do
  redis.call('ZREM', KEYS[1], msg)
  local tenant = cjson.decode(msg)['tenant_id']
  redis.call('RPUSH', ARGV[1] .. tenant, msg)
  if redis.call('SADD', KEYS[3], tenant) == 1 then redis.call('RPUSH', KEYS[2], tenant) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local capacity = 0
for _, worker in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  capacity = capacity + (tonumber(string.match(worker, '|(%d+)$')) or 0)
end
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
local total = redis.call('ZCARD', KEYS[5])
local reserve = math.max(1, math.floor(capacity / 8))
local admitted = {}
local most = tonumber(ARGV[6])
local steps = tonumber(ARGV[7])
local progress = true
while progress and total < capacity and #admitted < most and steps > 0 do
  progress = false
  local n = redis.call('LLEN', KEYS[2])
  for _ = 1, n do
    if total >= capacity or #admitted >= most or steps <= 0 then break end
    steps = steps - 1
    local tenant = redis.call('LPOP', KEYS[2])
    if not tenant then break end
    local list = ARGV[1] .. tenant
    local running_key = ARGV[2] .. tenant
    redis.call('ZREMRANGEBYSCORE', running_key, '-inf', now)
    local running = redis.call('ZCARD', running_key)
    local cap = tonumber(redis.call('HGET', KEYS[6], tenant) or ARGV[5])
    if running < cap and (running == 0 or total < capacity - reserve) then
      local msg = redis.call('LPOP', list)
      if msg then
        local id = cjson.decode(msg)['job_id']
        redis.call('ZADD', running_key, now + lease, id)
        redis.call('PEXPIRE', running_key, lease * 2)
        redis.call('ZADD', KEYS[5], now + lease, id)
        total = total + 1
        admitted[#admitted + 1] = msg
        progress = true
      end
    end
    if redis.call('LLEN', list) > 0 then
      redis.call('RPUSH', KEYS[2], tenant)
    else
      redis.call('SREM', KEYS[3], tenant)
    end
  end
end
return admitted
";

/// Renews (`ARGV[3]` = 1) or releases (0) a running job's slot.
/// `KEYS`: the tenant's running set, the running set of all tenants.
/// `ARGV`: job id, lease end (ms), renew.
const SLOT: &str = r"
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
  redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1
";

/// The Redis keys of fair admission, inside the deployment's prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(redis_key_prefix: &str) -> Self {
        Self {
            prefix: format!("{redis_key_prefix}fair:"),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn waiting(&self, tenant: Uuid) -> String {
        format!("{}wait:{tenant}", self.prefix)
    }

    fn running(&self, tenant: Uuid) -> String {
        format!("{}running:{tenant}", self.prefix)
    }

    /// Messages of `tenant` waiting for admission (for tests and metrics).
    pub async fn waiting_len(&self, conn: &mut ConnectionManager, tenant: Uuid) -> usize {
        redis::cmd("LLEN")
            .arg(self.waiting(tenant))
            .query_async(conn)
            .await
            .unwrap_or(0)
    }

    /// Queues `message`, due after `delay`; `idempotency` makes a second push of the same
    /// key within `ttl` do nothing. Whether it was queued.
    pub async fn push(
        &self,
        conn: &mut ConnectionManager,
        message: &JobMessage,
        delay: Duration,
        idempotency: Option<(&str, Duration)>,
    ) -> anyhow::Result<bool> {
        let due = if delay.is_zero() {
            0
        } else {
            now_ms() + millis(delay)
        };
        let (key, ttl) = idempotency
            .map(|(key, ttl)| (self.key(&format!("key:{key}")), millis(ttl)))
            .unwrap_or_default();
        let queued: i64 = redis::Script::new(PUSH)
            .key(self.key("delayed"))
            .key(self.key("ring"))
            .key(self.key("members"))
            .key(self.waiting(message.tenant_id))
            .key(key)
            .arg(serde_json::to_string(message)?)
            .arg(message.tenant_id.to_string())
            .arg(due)
            .arg(ttl)
            .invoke_async(conn)
            .await?;
        Ok(queued == 1)
    }

    /// Admits the next messages in turn (see the module's description).
    pub async fn admit(
        &self,
        conn: &mut ConnectionManager,
        slot_lease: Duration,
    ) -> anyhow::Result<Vec<JobMessage>> {
        let admitted: Vec<String> = redis::Script::new(ADMIT)
            .key(self.key("delayed"))
            .key(self.key("ring"))
            .key(self.key("members"))
            .key(self.key("capacity"))
            .key(self.key("running"))
            .key(self.key("caps"))
            .arg(self.key("wait:"))
            .arg(self.key("running:"))
            .arg(now_ms())
            .arg(millis(slot_lease))
            .arg(Plan::Free.job_concurrency())
            .arg(ADMIT_MAX)
            .arg(ADMIT_STEPS)
            .invoke_async(conn)
            .await?;
        Ok(admitted
            .iter()
            .filter_map(|m| serde_json::from_str(m).ok())
            .collect())
    }

    /// Counts this process's `concurrency` in the workers' capacity for a few seconds.
    pub async fn register_capacity(
        &self,
        conn: &mut ConnectionManager,
        process: &str,
        concurrency: usize,
    ) -> anyhow::Result<()> {
        let _: i64 = redis::cmd("ZADD")
            .arg(self.key("capacity"))
            .arg(now_ms() + millis(CAPACITY_TTL))
            .arg(format!("{process}|{concurrency}"))
            .query_async(conn)
            .await?;
        Ok(())
    }

    /// Takes this process's capacity out at once (a clean stop).
    pub async fn unregister_capacity(
        &self,
        conn: &mut ConnectionManager,
        process: &str,
        concurrency: usize,
    ) -> anyhow::Result<()> {
        let _: i64 = redis::cmd("ZREM")
            .arg(self.key("capacity"))
            .arg(format!("{process}|{concurrency}"))
            .query_async(conn)
            .await?;
        Ok(())
    }

    /// Renews a running job's slot for another `lease`.
    pub async fn renew(
        &self,
        conn: &mut ConnectionManager,
        message: &JobMessage,
        lease: Duration,
    ) -> anyhow::Result<()> {
        self.slot(conn, message, now_ms() + millis(lease), true)
            .await
    }

    /// Gives a finished job's slot back.
    pub async fn release(
        &self,
        conn: &mut ConnectionManager,
        message: &JobMessage,
    ) -> anyhow::Result<()> {
        self.slot(conn, message, 0, false).await
    }

    async fn slot(
        &self,
        conn: &mut ConnectionManager,
        message: &JobMessage,
        until: u64,
        renew: bool,
    ) -> anyhow::Result<()> {
        let _: i64 = redis::Script::new(SLOT)
            .key(self.running(message.tenant_id))
            .key(self.key("running"))
            .arg(message.job_id.to_string())
            .arg(until)
            .arg(if renew { "1" } else { "0" })
            .invoke_async(conn)
            .await?;
        Ok(())
    }

    /// Replaces the caps of tenants whose plan allows more than the default (free) cap.
    pub async fn set_caps(
        &self,
        conn: &mut ConnectionManager,
        caps: &[(Uuid, usize)],
    ) -> anyhow::Result<()> {
        let next = self.key("caps:next");
        let mut pipe = redis::pipe();
        pipe.atomic().del(&next);
        for chunk in caps.chunks(1000) {
            let fields: Vec<(String, usize)> = chunk
                .iter()
                .map(|(tenant, cap)| (tenant.to_string(), *cap))
                .collect();
            pipe.hset_multiple(&next, &fields);
        }
        if caps.is_empty() {
            pipe.del(self.key("caps"));
        } else {
            pipe.rename(&next, self.key("caps"));
        }
        let () = pipe.query_async(conn).await?;
        Ok(())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn now_ms() -> u64 {
    millis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}
