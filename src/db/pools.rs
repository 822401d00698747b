//! How tenants map onto database connections.
//!
//! Every tenant schema has its own statement texts, and PostgreSQL keeps catalog entries
//! and plans per connection per schema: spread over thousands of schemas, one pool's
//! connections keep evicting prepared statements and rebuilding catalog caches. Tenants
//! are therefore hashed onto *lanes*, each a pool of a share of the connections, so that a
//! connection sees about 1/n of the schemas (`docs/scaling.md`).
//!
//! With `DATABASE_TENANT_POOLS=auto` (the default) the number of lanes follows the number
//! of tenants: one lane (the platform pool itself) up to [`TENANTS_PER_LANE`] tenants,
//! then twice as many lanes each time the count doubles, up to one lane per connection.
//! The layout is chosen at start and checked again as tenants come and go
//! ([`TenantPools::fit`], every [`FIT_INTERVAL`] by `crate::app::start_pool_layout`); a new layout takes new requests at once, and the old pools
//! close as their last requests end. Each lane keeps enough statements prepared for the
//! schemas it serves ([`STATEMENTS_PER_TENANT`] per tenant, at least
//! `DATABASE_STATEMENT_CACHE`).
//!
//! **Spill-over.** A lane is a share of the connections, not a wall: a request of a
//! tenant that alone keeps its lane's connections busy, on a lane with twice its
//! connections' worth of work in flight, goes to the least busy lane that is not so
//! loaded itself. One busy tenant among idle ones so uses the whole pool, its excess
//! spread evenly over the lanes; many tenants sharing a lane stay on it (their statements
//! are prepared there), and when every lane is overloaded each tenant waits on its own.

use std::sync::{
    Arc, RwLock,
    atomic::{AtomicU32, Ordering},
};

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

/// Tenants per lane before the layout doubles the lanes.
pub const TENANTS_PER_LANE: u64 = 128;
/// Statements a lane's connections keep prepared per tenant they serve, beyond the
/// floor of `DATABASE_STATEMENT_CACHE`: room for each tenant's most used one. No more,
/// because a prepared statement is not free while it waits: on every catalog change any
/// session makes, PostgreSQL walks each backend's whole list of them, once per changed
/// relation or type. Creating one tenant schema costs an idle backend about 4 µs per
/// statement it keeps, more past 1,500 (20 ms at 2,500: `scripts/bench-invalidation.sh`);
/// at 10,000 tenants, 4 a tenant made onboarding 10.3/s against 15.0/s with 1, for the
/// same spread reads (`docs/scaling.md`).
pub const STATEMENTS_PER_TENANT: usize = 1;
/// The most statements a connection keeps prepared in the automatic layout (PostgreSQL
/// keeps each one's plan in the backend's memory).
const MAX_STATEMENT_CACHE: usize = 8192;

/// Slots counting tenants' work in flight (a tenant's slot is its id's low bits; two
/// tenants rarely share one, and then only make spill-over a little likelier).
const TENANT_SLOTS: usize = 4096;

/// How often a process counts the tenants to fit its layout.
pub const FIT_INTERVAL: Duration = Duration::from_secs(30);
/// How long the count at start may take before the process starts with one lane.
const COUNT_TIMEOUT: Duration = Duration::from_secs(2);

/// The tenants whose schemas requests and jobs reach (all but the deleted).
pub async fn count_tenants(db: &PgPool) -> sqlx::Result<u64> {
    let n: i64 =
        sqlx::query_scalar("select count(*) from platform.tenants where status <> 'deleted'")
            .fetch_one(db)
            .await?;
    Ok(n.unsigned_abs())
}

/// The count at start, or 0 when the database does not answer soon (the layout is then
/// fitted by the first round of [`start`]).
pub async fn count_at_start(db: &PgPool) -> u64 {
    match tokio::time::timeout(COUNT_TIMEOUT, count_tenants(db)).await {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "could not count the tenants at start");
            0
        }
        Err(_) => 0,
    }
}

/// `DATABASE_TENANT_POOLS`: `auto`, or a fixed number of lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolSetting {
    Auto,
    Fixed(u32),
}

impl std::str::FromStr for PoolSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        match s.parse::<u32>() {
            Ok(n) if n > 0 => Ok(Self::Fixed(n)),
            _ => Err("must be auto or a number of pools from 1".to_owned()),
        }
    }
}

/// The pools tenant-scoped work runs on, and the provisioning pool.
///
/// Provisioning (onboarding a tenant: its schema, tables and first rows) has a pool of its
/// own whose connections serve one onboarding each. An onboarding prepares a dozen
/// statements for a schema its connection will hardly see again, and every PostgreSQL
/// backend walks all the plans it keeps on each catalog change any session makes — an
/// onboarding makes hundreds. A backend also keeps a catalog entry for every table and
/// index it has created, and has to process the other sessions' invalidations against
/// all of them (the runs are in `docs/benchmarks.md` and `docs/scaling.md`).
#[derive(Clone)]
pub struct TenantPools(Arc<Inner>);

struct Inner {
    platform: PgPool,
    url: String,
    max_connections: u32,
    statement_cache: usize,
    setting: PoolSetting,
    layout: RwLock<Arc<Layout>>,
    provisioning: PgPool,
}

/// One arrangement of lanes.
struct Layout {
    lanes: Vec<Lane>,
    /// Tenant scopes in flight, by tenant slot.
    tenants: Box<[AtomicU32]>,
}

struct Lane {
    pool: PgPool,
    connections: u32,
    /// Tenant scopes using this lane now.
    in_flight: AtomicU32,
}

/// A tenant's share of a lane, held by its scope: counts the scope as in flight until
/// the last clone of the scope is dropped.
#[derive(Debug)]
pub struct LaneUse {
    layout: Arc<Layout>,
    lane: usize,
    slot: usize,
}

impl LaneUse {
    /// The lane's number in its layout.
    pub fn lane(&self) -> usize {
        self.lane
    }
}

impl std::fmt::Debug for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Layout({} lanes)", self.lanes.len())
    }
}

impl Drop for LaneUse {
    fn drop(&mut self) {
        self.layout.lanes[self.lane]
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
        self.layout.tenants[self.slot].fetch_sub(1, Ordering::Relaxed);
    }
}

impl TenantPools {
    /// The layout `setting` asks for, as it fits `tenants` tenants; a provisioning pool of
    /// `max_connections / 4` (at least 2).
    pub fn new(
        platform: &PgPool,
        url: &str,
        max_connections: u32,
        setting: PoolSetting,
        statement_cache: usize,
        tenants: u64,
    ) -> anyhow::Result<Self> {
        let provisioning = super::provisioning_pool(url, (max_connections / 4).max(2))?;
        let mut inner = Inner {
            platform: platform.clone(),
            url: url.to_owned(),
            max_connections,
            statement_cache,
            setting,
            layout: RwLock::new(Arc::new(Layout::new(Vec::new()))),
            provisioning,
        };
        let layout = inner.build(inner.lanes_for(tenants), tenants)?;
        inner.layout = RwLock::new(Arc::new(layout));
        Ok(Self(Arc::new(inner)))
    }

    /// Lays the lanes out anew for `tenants` tenants when the automatic layout calls for
    /// another number of lanes; returns the number of lanes when it changed.
    pub fn fit(&self, tenants: u64) -> anyhow::Result<Option<usize>> {
        let wanted = self.0.lanes_for(tenants);
        if wanted == self.lanes() {
            return Ok(None);
        }
        let layout = Arc::new(self.0.build(wanted, tenants)?);
        *self.0.layout.write().unwrap_or_else(|e| e.into_inner()) = layout;
        Ok(Some(wanted))
    }

    /// The number of lanes now.
    pub fn lanes(&self) -> usize {
        self.current().lanes.len()
    }

    /// The pool for a request or job of `tenant_id`: its own lane's, or a
    /// less loaded one when its own is overloaded by it (see the module's text).
    pub fn for_tenant(&self, tenant_id: Uuid) -> (PgPool, Option<LaneUse>) {
        let layout = self.current();
        let n = layout.lanes.len();
        if n == 1 {
            return (layout.lanes[0].pool.clone(), None);
        }
        // UUIDv7: the low bits are random.
        let bits = tenant_id.as_u128() as u64;
        let home = (bits % n as u64) as usize;
        let slot = (bits % TENANT_SLOTS as u64) as usize;
        let own = layout.tenants[slot].fetch_add(1, Ordering::Relaxed);
        let lane = if layout.lanes[home].overloaded() && own >= layout.lanes[home].connections {
            layout.spare().unwrap_or(home)
        } else {
            home
        };
        layout.lanes[lane].in_flight.fetch_add(1, Ordering::Relaxed);
        let pool = layout.lanes[lane].pool.clone();
        (pool, Some(LaneUse { layout, lane, slot }))
    }

    /// The pool for creating tenants.
    pub fn provisioning(&self) -> &PgPool {
        &self.0.provisioning
    }

    /// The platform pool (`platform.*` tables; the tenants' too with
    /// `DATABASE_TENANT_POOLS=1`).
    pub fn platform(&self) -> &PgPool {
        &self.0.platform
    }

    fn current(&self) -> Arc<Layout> {
        self.0
            .layout
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Inner {
    /// The number of lanes for `tenants` tenants.
    fn lanes_for(&self, tenants: u64) -> usize {
        let n = match self.setting {
            PoolSetting::Fixed(n) => n,
            PoolSetting::Auto => auto_lanes(tenants, self.max_connections),
        };
        n.clamp(1, self.max_connections.max(1)) as usize
    }

    /// `n` lanes sharing the connections (one lane: the platform pool itself).
    fn build(&self, n: usize, tenants: u64) -> anyhow::Result<Layout> {
        if n == 1 {
            return Ok(Layout::new(vec![Lane::new(
                self.platform.clone(),
                self.max_connections,
            )]));
        }
        let cache = match self.setting {
            PoolSetting::Fixed(_) => self.statement_cache,
            PoolSetting::Auto => statement_cache(tenants, n, self.statement_cache),
        };
        let lanes = lane_sizes(self.max_connections, n)
            .into_iter()
            .map(|size| {
                Ok(Lane::new(
                    super::connect_with(&self.url, size, cache)?,
                    size,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Layout::new(lanes))
    }
}

impl Layout {
    fn new(lanes: Vec<Lane>) -> Self {
        Self {
            lanes,
            tenants: (0..TENANT_SLOTS).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// The least busy lane that is not overloaded itself: a busy tenant's excess is
    /// spread evenly, up to twice each lane's connections, instead of queueing on one.
    fn spare(&self) -> Option<usize> {
        self.lanes
            .iter()
            .enumerate()
            .filter(|(_, lane)| !lane.overloaded())
            .min_by_key(|(_, lane)| lane.in_flight())
            .map(|(i, _)| i)
    }
}

impl Lane {
    fn new(pool: PgPool, connections: u32) -> Self {
        Self {
            pool,
            connections,
            in_flight: AtomicU32::new(0),
        }
    }

    fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Twice its connections' worth of work in flight already.
    fn overloaded(&self) -> bool {
        self.in_flight() >= 2 * self.connections
    }
}

/// Lanes for `tenants` tenants: a power of two, one per [`TENANTS_PER_LANE`] tenants,
/// at most one per connection. Powers of two keep changes rare: the layout changes at
/// 129, 257, 513, ... tenants.
pub fn auto_lanes(tenants: u64, max_connections: u32) -> u32 {
    let wanted = tenants
        .div_ceil(TENANTS_PER_LANE)
        .max(1)
        .next_power_of_two();
    u32::try_from(wanted)
        .unwrap_or(u32::MAX)
        .min(max_connections.max(1))
}

/// `max_connections` shared by `n` lanes as evenly as possible (each at least one).
fn lane_sizes(max_connections: u32, n: usize) -> Vec<u32> {
    let n32 = n as u32;
    (0..n32)
        .map(|i| (max_connections / n32 + u32::from(i < max_connections % n32)).max(1))
        .collect()
}

/// Statements a connection of one of `n` lanes keeps prepared for `tenants` tenants.
fn statement_cache(tenants: u64, n: usize, at_least: usize) -> usize {
    let per_lane = usize::try_from(tenants.div_ceil(n as u64)).unwrap_or(usize::MAX);
    per_lane
        .saturating_mul(STATEMENTS_PER_TENANT)
        .clamp(at_least, MAX_STATEMENT_CACHE.max(at_least))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_double_with_the_tenants_up_to_one_per_connection() {
        assert_eq!(auto_lanes(0, 20), 1);
        assert_eq!(auto_lanes(128, 20), 1);
        assert_eq!(auto_lanes(129, 20), 2);
        assert_eq!(auto_lanes(1000, 20), 8);
        assert_eq!(auto_lanes(2000, 20), 16);
        assert_eq!(auto_lanes(10_000, 20), 20);
        assert_eq!(auto_lanes(10_000, 16), 16);
        assert_eq!(auto_lanes(10_000, 1), 1);
    }

    #[test]
    fn connections_are_shared_evenly() {
        assert_eq!(
            lane_sizes(20, 16),
            [2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
        );
        assert_eq!(lane_sizes(16, 16), [1; 16]);
        assert_eq!(lane_sizes(20, 20).iter().sum::<u32>(), 20);
    }

    #[test]
    fn the_statement_cache_grows_with_the_tenants_of_a_lane() {
        assert_eq!(statement_cache(2000, 16, 1024), 1024);
        assert_eq!(statement_cache(10_000, 16, 1024), 1024);
        assert_eq!(statement_cache(40_000, 16, 1024), 2500);
        assert_eq!(statement_cache(1_000_000, 16, 1024), 8192);
        assert_eq!(statement_cache(10_000, 16, 10_000), 10_000);
    }

    #[test]
    fn the_setting_reads_auto_or_a_number() {
        assert_eq!("auto".parse(), Ok(PoolSetting::Auto));
        assert_eq!("8".parse(), Ok(PoolSetting::Fixed(8)));
        assert!("0".parse::<PoolSetting>().is_err());
        assert!("many".parse::<PoolSetting>().is_err());
    }
}
