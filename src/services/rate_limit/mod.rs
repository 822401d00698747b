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

mod gcra;
mod lease;
mod overrides;
mod quota;

use std::{
    borrow::Cow,
    net::IpAddr,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::http::{HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use gcra::BucketState;
use gcra::{Cell, LocalBuckets};
use lease::Leases;
pub use overrides::{Override, Overrides, remove_override, set_override, spawn_refresher};
pub use quota::daily_send_quota;

use crate::{config::Config, error::AppError, redis::Redis};

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
    pub fn for_plan(plan: &str) -> Self {
        match plan {
            "premium" => Self::per_minute(10_000),
            "standard" => Self::per_minute(1_000),
            _ => Self::per_minute(60),
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
pub enum Subject<'a> {
    /// An authenticated tenant principal.
    Tenant { id: Uuid, plan: &'a str },
    /// A platform operator: only the global limit applies.
    Platform,
    /// A caller of a public route, by client address (none for in-process requests).
    Client(Option<IpAddr>),
}

/// The answer to one check, describing the bucket the response headers report: the
/// caller's own limit when admitted, the limit that refused it otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub allowed: bool,
    pub kind: LimitKind,
    pub rate: Rate,
    pub state: BucketState,
}

/// Buckets in the fallback limiter; past this, buckets that are full anyway are dropped
/// first, then all.
const LOCAL_MAX_BUCKETS: usize = 100_000;
/// While Redis is unreachable, how often one request tries it again.
const REDIS_RETRY: Duration = Duration::from_secs(1);
/// At most one warning per this interval while the fallback answers.
const WARN_EVERY: Duration = Duration::from_secs(60);

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
    pub overrides: Overrides,
    /// `None` when every request is checked in Redis (`RATE_LIMIT_AMORTIZE=false`).
    leases: Option<Leases>,
    local: LocalBuckets,
    breaker: Breaker,
    decisions: [[metrics::Counter; 2]; 4],
}

impl RateLimiter {
    pub fn new(config: &Config, redis: Redis) -> Self {
        let prefix = format!("{}rl:", config.redis_key_prefix);
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
            enabled: config.rate_limit_enabled,
            redis,
            timeout: config.rate_limit_redis_timeout,
            script: redis::Script::new(include_str!("gcra.lua")),
            refund_script: redis::Script::new(REFUND),
            quota_script: redis::Script::new(quota::SCRIPT),
            global_key: format!("{prefix}global"),
            prefix,
            public: Rate::per_minute(config.rate_limit_public_per_minute),
            global: (config.rate_limit_global_per_minute > 0)
                .then(|| Rate::per_minute(config.rate_limit_global_per_minute)),
            overrides: Overrides::default(),
            leases: config.rate_limit_amortize.then(Leases::default),
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
    pub fn tenant_rate(&self, tenant: Uuid, plan: &str) -> Rate {
        self.overrides
            .get(tenant)
            .unwrap_or_else(|| Rate::for_plan(plan))
    }

    /// Checks and charges one request. `None` when limits are off or none applies.
    pub async fn check(&self, subject: Subject<'_>) -> Option<Decision> {
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

    /// Before a login: refuses (429) when this tenant and email already failed
    /// [`LOGIN_FAILURES`] times recently; otherwise charges one failure up front, which
    /// [`LoginAttempt::succeeded`] gives back. Charging first means parallel guesses
    /// cannot all slip through before the first failure is counted.
    pub async fn login_attempt(&self, tenant: &str, email: &str) -> Result<LoginAttempt, AppError> {
        if !self.enabled {
            return Ok(LoginAttempt { key: None });
        }
        let email = Sha256::digest(email.trim().to_lowercase().as_bytes());
        let key = format!(
            "{}login:{}:{}",
            self.prefix,
            tenant.trim().to_lowercase(),
            hex(&email[..16])
        );
        let buckets = [(
            Cow::Borrowed(key.as_str()),
            LimitKind::Login,
            LOGIN_FAILURES,
        )];
        let (granted, states, _) = self.take(&buckets, 1, 0).await;
        self.count(LimitKind::Login, granted > 0);
        if granted == 0 {
            let decision = Decision {
                allowed: false,
                kind: LimitKind::Login,
                rate: LOGIN_FAILURES,
                state: states[0],
            };
            return Err(
                decision.rejection("too many failed logins for this account; try again later")
            );
        }
        Ok(LoginAttempt { key: Some(key) })
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

    async fn refund(&self, key: &str, rate: Rate) {
        let cell = rate.cell();
        if !self.breaker.is_open() {
            let refund = async {
                let mut conn = self.redis.clone();
                self.refund_script
                    .key(key)
                    .arg(cell.interval_us)
                    .invoke_async::<i64>(&mut conn)
                    .await
            };
            if let Ok(Ok(_)) = tokio::time::timeout(self.timeout, refund).await {
                return;
            }
        }
        self.local.refund(key, cell, 1);
    }

    fn count(&self, kind: LimitKind, allowed: bool) {
        let kind = LimitKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.decisions[kind][usize::from(!allowed)].increment(1);
    }
}

/// A login attempt charged against its account's failure budget.
#[must_use = "a successful login gives its charge back"]
pub struct LoginAttempt {
    key: Option<String>,
}

impl LoginAttempt {
    /// The login did not fail on its credentials: the charge is given back, so only
    /// failures count.
    pub async fn succeeded(self, limiter: &RateLimiter) {
        if let Some(key) = &self.key {
            limiter.refund(key, LOGIN_FAILURES).await;
        }
    }
}

/// Gives one request back to a GCRA bucket.
const REFUND: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
tat = tat - tonumber(ARGV[1])
if tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.floor((tat - now) / 1000) + 1)
end
return 1
";

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

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

impl Decision {
    /// Whole seconds until the bucket is full again.
    pub fn reset_secs(&self) -> u64 {
        ceil_secs(self.state.reset)
    }

    /// Whole seconds until one more request fits (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        ceil_secs(self.state.retry).max(1)
    }

    /// The 429 answer for a refused request, with `Retry-After` and the headers that
    /// describe the limit.
    pub fn rejection(&self, detail: &'static str) -> AppError {
        self.headers().into_iter().fold(
            AppError::rate_limited(detail, self.retry_after_secs()),
            |error, (name, value)| error.with_header(name, value),
        )
    }

    /// The IETF `RateLimit-Policy` and `RateLimit` fields (named by the limit's kind)
    /// and the legacy `X-RateLimit-Limit`, `-Remaining` and `-Reset` (epoch seconds).
    pub fn headers(&self) -> [(HeaderName, HeaderValue); 5] {
        let name = self.kind.as_str();
        let remaining = self.state.remaining;
        let reset = self.reset_secs();
        let text = |s: String| HeaderValue::try_from(s).unwrap_or(HeaderValue::from_static(""));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        [
            (
                RATELIMIT_POLICY.clone(),
                text(format!(
                    "\"{name}\";q={};w={}",
                    self.rate.limit, self.rate.window_secs
                )),
            ),
            (
                RATELIMIT.clone(),
                text(format!("\"{name}\";r={remaining};t={reset}")),
            ),
            (
                X_RATELIMIT_LIMIT.clone(),
                HeaderValue::from(self.rate.limit),
            ),
            (X_RATELIMIT_REMAINING.clone(), HeaderValue::from(remaining)),
            (X_RATELIMIT_RESET.clone(), HeaderValue::from(now + reset)),
        ]
    }
}

pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
static X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

fn ceil_secs(d: Duration) -> u64 {
    d.as_micros()
        .div_ceil(1_000_000)
        .try_into()
        .unwrap_or(u64::MAX)
}

/// Whether Redis is worth asking: closed while it answers; open for [`REDIS_RETRY`] after
/// a failure, then one caller at a time probes it.
struct Breaker {
    epoch: Instant,
    /// Milliseconds since `epoch` (plus one) when Redis may be tried again; 0 = closed.
    retry_at: AtomicU64,
    last_warning: AtomicU64,
}

impl Breaker {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            retry_at: AtomicU64::new(0),
            last_warning: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
    }

    fn is_open(&self) -> bool {
        self.retry_at.load(Ordering::Relaxed) != 0
    }

    /// Closed: yes. Open: only when the retry time has come, and then only for the one
    /// caller that moves it on.
    fn should_try(&self) -> bool {
        let retry_at = self.retry_at.load(Ordering::Relaxed);
        if retry_at == 0 {
            return true;
        }
        let now = self.now_ms();
        now >= retry_at
            && self
                .retry_at
                .compare_exchange(
                    retry_at,
                    now + ms(REDIS_RETRY),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// Redis failed: fall back, count the switch, warn at most once per [`WARN_EVERY`].
    fn open(&self, reason: &str) {
        let now = self.now_ms();
        let was = self.retry_at.swap(now + ms(REDIS_RETRY), Ordering::Relaxed);
        if was == 0 {
            metrics::counter!("tenantry_rate_limit_fallback_total").increment(1);
            metrics::gauge!("tenantry_rate_limit_degraded").set(1.0);
        }
        let last = self.last_warning.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= ms(WARN_EVERY))
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                reason,
                "Redis is unreachable: rate limits fall back to this replica's own counters"
            );
        }
    }

    /// Redis answered; true when that ends a fallback.
    fn close(&self) -> bool {
        if self.retry_at.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let was_open = self.retry_at.swap(0, Ordering::Relaxed) != 0;
        if was_open {
            metrics::gauge!("tenantry_rate_limit_degraded").set(0.0);
        }
        was_open
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_set_the_rate() {
        assert_eq!(Rate::for_plan("free").limit, 60);
        assert_eq!(Rate::for_plan("standard").limit, 1_000);
        assert_eq!(Rate::for_plan("premium").limit, 10_000);
        assert_eq!(Rate::for_plan("free").cell().interval_us, 1_000_000);
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

    #[test]
    fn the_breaker_lets_one_probe_through_after_the_retry_time() {
        let breaker = Breaker::new();
        assert!(breaker.should_try());
        breaker.open("test");
        assert!(breaker.is_open());
        assert!(!breaker.should_try());
        breaker
            .retry_at
            .store(breaker.now_ms().saturating_sub(1).max(1), Ordering::Relaxed);
        assert!(breaker.should_try(), "the first caller probes");
        assert!(!breaker.should_try(), "the others keep to the fallback");
        assert!(breaker.close());
        assert!(!breaker.close());
        assert!(breaker.should_try());
    }
}
