//! PostgreSQL: the pool, the tenant scope and the migration runner.

pub mod citus;
pub mod migrate;
pub mod schema;
pub mod scope;
pub mod statements;

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    ConnectOptions, Connection, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

pub use schema::TenantSchema;
pub use scope::{TenantScope, TenantSql, TenantTx};

/// Pool settings that are not in [`crate::config::Config`].
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Recycling connections bounds PostgreSQL's per-connection catalog cache, which grows with
/// every tenant schema a connection has touched.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Statements a connection keeps prepared unless configured (`DATABASE_STATEMENT_CACHE`
/// for the service's pools).
const STATEMENT_CACHE_CAPACITY: usize = 1024;

/// Connects the pool (lazily: the service starts, and reports not ready, while the
/// database is down).
pub fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    connect_with(url, max_connections, STATEMENT_CACHE_CAPACITY)
}

/// [`connect`], keeping `statement_cache` statements prepared per connection.
pub fn connect_with(
    url: &str,
    max_connections: u32,
    statement_cache: usize,
) -> anyhow::Result<PgPool> {
    Ok(pool_options(max_connections)
        .max_lifetime(MAX_LIFETIME)
        .connect_lazy_with(connect_options(url, statement_cache)?))
}

fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
}

fn connect_options(url: &str, statement_cache: usize) -> anyhow::Result<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(url)
        .context("DATABASE_URL is not a valid PostgreSQL URL")?
        .statement_cache_capacity(statement_cache)
        .application_name("tenantry"))
}

/// The provisioning pool of [`TenantPools`]: a connection serves one onboarding and is
/// closed when it is returned.
fn provisioning_pool(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    Ok(pool_options(max_connections)
        .after_release(|_, _| Box::pin(async { Ok(false) }))
        .connect_lazy_with(
            connect_options(url, STATEMENT_CACHE_CAPACITY)?
                .application_name("tenantry-provisioning"),
        ))
}

/// The pools tenant-scoped work runs on: tenants hashed onto `n` pools, so that each
/// connection sees about 1/n of the tenant schemas. Every tenant schema has its own
/// statement texts, and PostgreSQL keeps catalog entries per connection per schema:
/// spread over thousands of schemas, one pool's connections keep evicting prepared
/// statements and rebuilding catalog caches. With one pool this is the platform pool.
///
/// Provisioning (onboarding a tenant: its schema, tables and first rows) has a pool of its
/// own whose connections serve one onboarding each. An onboarding prepares a dozen
/// statements for a schema its connection will hardly see again, and every PostgreSQL
/// backend walks all the plans it keeps on each catalog change any session makes — an
/// onboarding makes hundreds. Kept in the tenant pools' caches, those statements made
/// every onboarding slower as tenants accumulated. A backend also keeps a catalog entry
/// for every table and index it has created, and has to process the other sessions'
/// invalidations against all of them: a provisioning connection kept for 30 minutes had
/// created thousands of schemas and spent most of its time there, and onboarding slowed
/// as tenants accumulated until the connections were replaced (the runs are in
/// `docs/benchmarks.md` and `docs/scaling.md`).
#[derive(Clone)]
pub struct TenantPools {
    pools: Vec<PgPool>,
    provisioning: PgPool,
}

impl TenantPools {
    /// `n` pools of `max_connections / n` connections, each keeping `statement_cache`
    /// statements prepared (`n` = 1: `platform` itself), and a provisioning pool of
    /// `max_connections / 4` (at least 2).
    pub fn new(
        platform: &PgPool,
        url: &str,
        max_connections: u32,
        n: u32,
        statement_cache: usize,
    ) -> anyhow::Result<Self> {
        let provisioning = provisioning_pool(url, (max_connections / 4).max(2))?;
        let pools = if n <= 1 {
            vec![platform.clone()]
        } else {
            let each = (max_connections / n).max(1);
            (0..n)
                .map(|_| connect_with(url, each, statement_cache))
                .collect::<anyhow::Result<_>>()?
        };
        Ok(Self {
            pools,
            provisioning,
        })
    }

    /// The pool of `tenant_id` (UUIDv7: the low bits are random).
    pub fn for_tenant(&self, tenant_id: uuid::Uuid) -> &PgPool {
        let n = self.pools.len() as u64;
        &self.pools[(tenant_id.as_u128() as u64 % n) as usize]
    }

    /// The pool for creating tenants.
    pub fn provisioning(&self) -> &PgPool {
        &self.provisioning
    }

    /// The pools requests and jobs run on.
    pub fn all(&self) -> &[PgPool] {
        &self.pools
    }
}

/// Creates the database named in `url` when it does not exist (development convenience).
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    let options = PgConnectOptions::from_str(url).context("DATABASE_URL is not valid")?;
    let name = options
        .get_database()
        .context("DATABASE_URL names no database")?
        .to_owned();
    let mut admin = options
        .database("postgres")
        .connect()
        .await
        .context("failed to connect to the postgres maintenance database")?;
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let sql = format!("create database {}", quote_ident(&name));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .with_context(|| format!("failed to create database {name}"))?;
        tracing::info!(database = %name, "created database");
    }
    admin.close().await?;
    Ok(())
}

/// One connection outside the pool, for work that holds a session-level lock.
pub async fn connect_one(url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::connect(url)
        .await
        .context("failed to open a database connection")
}

/// Quotes an identifier for SQL text (doubling embedded quotes).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
