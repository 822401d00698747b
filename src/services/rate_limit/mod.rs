//! Rate limits: per tenant by plan (or the tenant's override), per client IP on public
//! routes, a global limit that protects the cluster, failed logins per tenant and email,
//! and the daily notification send quota.
//!
//! A check is one `EVALSHA` of a GCRA script (`gcra.lua`) over all the buckets the
//! request touches: either all of them admit it and all are charged, or none is, so a
//! request that one limit refuses costs the others nothing. The state lives in Redis, so
//! the limits hold across replicas. Busy tenants skip most round trips: a replica
//! reserves small slices of their allowance (module `lease`), charged in Redis up front.
//!
//! When Redis does not answer within `RATE_LIMIT_REDIS_TIMEOUT_MS`, an in-process limiter
//! with the same arithmetic and a bounded number of buckets answers instead (each replica
//! then enforces the full limit on its own), a warning is logged at most once a minute and
//! `tenantry_rate_limit_fallback_total` counts the switch. Once a second one request tries
//! Redis again; when it answers, the shared limiter is back without a restart.

mod allowance_slices;
mod breaker;
mod gcra;
mod limit_decision;
mod login_failures;
pub mod overrides;
mod platform_mail;
mod send_quota;

use std::{borrow::Cow, net::IpAddr, sync::Arc, time::Duration};

use uuid::Uuid;

use allowance_slices::Leases;
use breaker::Breaker;
pub use gcra::BucketState;
use gcra::{Cell, LocalBuckets};
pub use limit_decision::{Decision, RATELIMIT_POLICY};
pub use login_failures::LoginAttempt;
pub use overrides::{Override, Overrides, remove_override, set_override};
pub use platform_mail::{MailRefusal, PLATFORM_MAIL_PER_HOUR};
pub use send_quota::daily_send_quota;

use crate::{config::Config, redis::Redis, services::tenants::Plan};

/// Which limit a bucket enforces; it names the policy in the `RateLimit` headers and
/// labels the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Tenant,
    Ip,
    Global,
    Login,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Tenant => "tenant",
            LimitKind::Ip => "ip",
            LimitKind::Global => "global",
            LimitKind::Login => "login",
        }
    }

    const ALL: [LimitKind; 4] = [
        LimitKind::Tenant,
        LimitKind::Ip,
        LimitKind::Global,
        LimitKind::Login,
    ];
}

/// `limit` requests per `window_secs` on average, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub limit: u32,
    pub window_secs: u32,
    pub burst: u32,
}

impl Rate {
    /// `limit` a minute, all of which may come at once.
    pub const fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            window_secs: 60,
            burst: limit,
        }
    }

    /// A tenant's rate by plan: free 60 a minute, standard 1,000, premium 10,000.
    pub fn for_plan(plan: Plan) -> Self {
        match plan {
            Plan::Premium => Self::per_minute(10_000),
            Plan::Standard => Self::per_minute(1_000),
            Plan::Free => Self::per_minute(60),
        }
    }

    fn cell(self) -> Cell {
        Cell {
            interval_us: (u64::from(self.window_secs) * 1_000_000 / u64::from(self.limit.max(1)))
                .max(1),
            burst: u64::from(self.burst.max(1)),
        }
    }
}

/// Failed logins allowed per tenant and email: 10 per 15 minutes.
pub const LOGIN_FAILURES: Rate = Rate {
    limit: 10,
    window_secs: 15 * 60,
    burst: 10,
};

/// Who a request is charged to.
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    /// An authenticated tenant principal.
    Tenant { id: Uuid, plan: Plan },
    /// A platform operator: only the global limit applies.
    Platform,
    /// A caller of a public route, by client address (none for in-process requests).
    Client(Option<IpAddr>),
}

/// Buckets in the fallback limiter; past this, buckets that are full anyway are dropped
/// first, then all.
const LOCAL_MAX_BUCKETS: usize = 100_000;

/// The rate limiter of this replica.
pub struct RateLimiter {
    enabled: bool,
    redis: Redis,
    timeout: Duration,
    script: redis::Script,
    refund_script: redis::Script,
    quota_script: redis::Script,
    prefix: String,
    global_key: String,
    public: Rate,
    global: Option<Rate>,
    pub overrides: Arc<Overrides>,
    /// `None` when every request is checked in Redis (`RATE_LIMIT_AMORTIZE=false`).
    leases: Option<Leases>,
    local: LocalBuckets,
    breaker: Breaker,
    decisions: [[metrics::Counter; 2]; 4],
}

impl RateLimiter {
    pub fn new(config: &Config, redis: Redis) -> Self {
        let prefix = format!("{}rl:", config.redis.key_prefix);
        let decisions = LimitKind::ALL.map(|kind| {
            ["allowed", "limited"].map(|outcome| {
                metrics::counter!(
                    "tenantry_rate_limit_decisions_total",
                    "kind" => kind.as_str(),
                    "outcome" => outcome
                )
            })
        });
        Self {
            enabled: config.limits.enabled,
            redis,
            timeout: config.limits.redis_timeout,
            script: redis::Script::new(include_str!("gcra.lua")),
            refund_script: redis::Script::new(login_failures::REFUND),
            quota_script: redis::Script::new(send_quota::SCRIPT),
            global_key: format!("{prefix}global"),
            prefix,
            public: Rate::per_minute(config.limits.public_per_minute),
            global: (config.limits.global_per_minute > 0)
                .then(|| Rate::per_minute(config.limits.global_per_minute)),
            overrides: Arc::default(),
            leases: config.limits.amortize.then(Leases::default),
            local: LocalBuckets::new(LOCAL_MAX_BUCKETS),
            breaker: Breaker::new(),
            decisions,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Whether the in-process fallback is answering (Redis was unreachable).
    pub fn is_degraded(&self) -> bool {
        self.breaker.is_open()
    }

    /// The rate a tenant is held to: its override, else its plan's.
    pub fn tenant_rate(&self, tenant: Uuid, plan: Plan) -> Rate {
        self.overrides
            .get(tenant)
            .unwrap_or_else(|| Rate::for_plan(plan))
    }

    /// Checks and charges one request. `None` when limits are off or none applies.
    pub async fn check(&self, subject: Subject) -> Option<Decision> {
        if !self.enabled {
            return None;
        }
        let mut buckets: Vec<(Cow<'_, str>, LimitKind, Rate)> = Vec::with_capacity(2);
        let (mut want, mut give_back) = (1, 0);
        let mut tenant = None;
        match subject {
            Subject::Tenant { id, plan } => {
                let rate = self.tenant_rate(id, plan);
                if let Some(state) = self.leases.as_ref().and_then(|l| l.take(id, rate)) {
                    self.count(LimitKind::Tenant, true);
                    return Some(Decision {
                        allowed: true,
                        kind: LimitKind::Tenant,
                        rate,
                        state,
                    });
                }
                (want, give_back) = self.leases.as_ref().map_or((1, 0), |l| l.want(id, rate));
                tenant = Some((id, rate));
                buckets.push((
                    Cow::Owned(format!("{}t:{}", self.prefix, id.simple())),
                    LimitKind::Tenant,
                    rate,
                ));
            }
            Subject::Client(Some(ip)) => buckets.push((
                Cow::Owned(format!("{}ip:{}", self.prefix, client_bucket(ip))),
                LimitKind::Ip,
                self.public,
            )),
            Subject::Client(None) | Subject::Platform => {}
        }
        if let Some(global) = self.global {
            buckets.push((Cow::Borrowed(&self.global_key), LimitKind::Global, global));
        }
        if buckets.is_empty() {
            return None;
        }
        let (granted, mut states, shared) = self.take(&buckets, want, give_back).await;
        let allowed = granted > 0;
        if let (Some(leases), Some((id, rate)), true, true) =
            (&self.leases, tenant, allowed, shared)
        {
            states[0] = leases.granted(id, rate, granted, states[0]);
        }
        let headline = if allowed {
            0
        } else {
            (0..states.len())
                .max_by_key(|&i| states[i].retry)
                .unwrap_or(0)
        };
        let (_, kind, rate) = buckets[headline];
        self.count(kind, allowed);
        Some(Decision {
            allowed,
            kind,
            rate,
            state: states[headline],
        })
    }

    /// Grants up to `want` requests over `buckets` (after giving back `give_back`
    /// requests of an expired slice) in Redis when it answers (the last value is then
    /// true); else one request at most, in process.
    async fn take(
        &self,
        buckets: &[(Cow<'_, str>, LimitKind, Rate)],
        want: u64,
        give_back: u64,
    ) -> (u64, Vec<BucketState>, bool) {
        if self.breaker.should_try() {
            let shared = self.take_shared(buckets, want, give_back);
            match tokio::time::timeout(self.timeout, shared).await {
                Ok(Ok((granted, states))) => {
                    if self.breaker.close() {
                        self.local.clear();
                        tracing::info!("Redis answers again; the shared rate limiter is back");
                    }
                    return (granted, states, true);
                }
                Ok(Err(e)) => self.breaker.open(&format!("{e:#}")),
                Err(_) => self.breaker.open("no answer in time"),
            }
        }
        let local: Vec<(&str, Cell)> = buckets
            .iter()
            .map(|(key, _, rate)| (key.as_ref(), rate.cell()))
            .collect();
        let (granted, states) = self.local.check(&local, 1);
        (granted, states, false)
    }

    async fn take_shared(
        &self,
        buckets: &[(Cow<'_, str>, LimitKind, Rate)],
        want: u64,
        give_back: u64,
    ) -> anyhow::Result<(u64, Vec<BucketState>)> {
        let mut invocation = self.script.prepare_invoke();
        invocation.arg(give_back);
        for (key, _, rate) in buckets {
            let cell = rate.cell();
            invocation
                .key(key.as_ref())
                .arg(cell.interval_us)
                .arg(cell.burst)
                .arg(want);
        }
        let mut conn = self.redis.clone();
        let raw: Vec<i64> = invocation.invoke_async(&mut conn).await?;
        anyhow::ensure!(
            raw.len() == 1 + 3 * buckets.len(),
            "the rate-limit script answered {} numbers",
            raw.len()
        );
        let micros = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
        let states = raw[1..]
            .chunks_exact(3)
            .map(|c| BucketState {
                remaining: u64::try_from(c[0]).unwrap_or(0),
                reset: micros(c[1]),
                retry: micros(c[2]),
            })
            .collect();
        Ok((u64::try_from(raw[0]).unwrap_or(0), states))
    }

    fn count(&self, kind: LimitKind, allowed: bool) {
        let kind = LimitKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.decisions[kind][usize::from(!allowed)].increment(1);
    }
}

/// The bucket of a client address: the address itself for IPv4, its /64 for IPv6 (one
/// subscriber usually holds a whole /64, so single addresses would be free to rotate).
fn client_bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_set_the_rate() {
        assert_eq!(Rate::for_plan(Plan::Free).limit, 60);
        assert_eq!(Rate::for_plan(Plan::Standard).limit, 1_000);
        assert_eq!(Rate::for_plan(Plan::Premium).limit, 10_000);
        assert_eq!(Rate::for_plan(Plan::Free).cell().interval_us, 1_000_000);
        assert_eq!(LOGIN_FAILURES.cell().interval_us, 90_000_000);
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(client_bucket(a), client_bucket(b));
        assert_ne!(client_bucket(a), client_bucket(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(client_bucket(mapped), "192.0.2.7");
    }
}
