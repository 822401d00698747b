//! The daily notification send quota per tenant (free 100, standard 10,000, premium
//! 100,000): SMS and email cost money. A Redis counter per tenant and UTC day.

use chrono::{Duration as Days, Utc};
use uuid::Uuid;

use super::RateLimiter;
use crate::{error::AppError, services::tenants::Plan};

/// Sends a tenant on `plan` may make per UTC day.
pub fn daily_send_quota(plan: Plan) -> i64 {
    match plan {
        Plan::Free => 100,
        Plan::Standard => 10_000,
        Plan::Premium => 100_000,
    }
}

/// Adds `ARGV[1]` to the day's counter unless that passes `ARGV[2]`; -1 when refused.
pub(super) const SCRIPT: &str = r"
local n = tonumber(ARGV[1])
local used = redis.call('INCRBY', KEYS[1], n)
if used == n then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
if used > tonumber(ARGV[2]) then
  redis.call('DECRBY', KEYS[1], n)
  return -1
end
return used
";

impl RateLimiter {
    /// Takes one send from the tenant's quota for today; 429 `RATE_LIMITED` (with
    /// `Retry-After` until midnight UTC) when it is used up. Unlike request limits this
    /// has no in-process fallback: a quota that money depends on is not guessed, so an
    /// unreachable Redis answers 503 and the send can be retried.
    pub async fn consume_send_quota(&self, tenant: Uuid, plan: Plan) -> Result<(), AppError> {
        let now = Utc::now();
        let key = format!(
            "{}quota:send:{}:{}",
            self.prefix,
            tenant.simple(),
            now.format("%Y%m%d")
        );
        let limit = daily_send_quota(plan);
        let mut conn = self.redis.clone();
        let mut invocation = self.quota_script.prepare_invoke();
        invocation.key(&key).arg(1).arg(limit).arg(2 * 24 * 3600);
        let call = invocation.invoke_async::<i64>(&mut conn);
        let failure = match tokio::time::timeout(crate::redis::TIMEOUT, call).await {
            Ok(Ok(used)) => Ok(used),
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(_) => Err("no answer in time".to_owned()),
        };
        let used = failure.map_err(|reason| {
            metrics::counter!("tenantry_redis_errors_total", "op" => "send_quota").increment(1);
            tracing::warn!(reason, "could not check the send quota in Redis");
            AppError::unavailable("the send quota cannot be checked now; retry later")
        })?;
        let allowed = used >= 0;
        metrics::counter!(
            "tenantry_rate_limit_decisions_total",
            "kind" => "send_quota",
            "outcome" => if allowed { "allowed" } else { "limited" }
        )
        .increment(1);
        if allowed {
            return Ok(());
        }
        let midnight = (now + Days::days(1))
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(now);
        let wait = u64::try_from((midnight - now).num_seconds()).unwrap_or(1);
        Err(AppError::rate_limited(
            format!("the daily send quota of {limit} for this plan is used up"),
            wait,
        ))
    }
}
