//! PostgreSQL: the pool, the tenant scope and the migration runner.

pub mod citus;
pub mod migrate;
pub mod pools;
pub mod schema;
pub mod scope;
pub mod statements;

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    ConnectOptions, Connection, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

pub use pools::{PoolSetting, TenantPools};
pub use schema::TenantSchema;
pub use scope::{ScopedConn, TenantConn, TenantScope, TenantSql, TenantTx};

/// Pool settings that are not in [`crate::config::Config`].
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Recycling connections bounds PostgreSQL's per-connection catalog cache, which grows with
/// every tenant schema a connection has touched.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// How long a pooled connection may sit idle before it is pinged when handed out.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);
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
        // sqlx pings every connection it hands out: a round trip before each statement.
        // A connection used within the last second is known to be alive; one idle for
        // longer (a restarted server, a proxy's idle timeout) is still checked, and
        // replaced if it does not answer. HikariCP's `aliveBypassWindowMs` does the same.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_WHEN_IDLE_FOR {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

fn connect_options(url: &str, statement_cache: usize) -> anyhow::Result<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(url)
        .context("DATABASE_URL is not a valid PostgreSQL URL")?
        .statement_cache_capacity(statement_cache)
        .application_name("tenantry"))
}

/// How long a provisioning connection serves onboardings before it is closed: long
/// enough to spare a burst a new PostgreSQL backend per tenant (its start, and the page
/// faults of a fresh process on every shared buffer it touches, were about a tenth of
/// PostgreSQL's time in an onboarding profile), short enough that it never keeps the
/// catalog entries of more than a few dozen new schemas.
const PROVISIONING_REUSE: Duration = Duration::from_secs(2);

/// The provisioning pool of [`TenantPools`]: a connection serves the onboardings of
/// [`PROVISIONING_REUSE`] and is closed when it is returned after that, or after a second
/// idle.
fn provisioning_pool(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    Ok(pool_options(max_connections)
        .idle_timeout(Duration::from_secs(1))
        .after_release(|_, meta| Box::pin(async move { Ok(meta.age < PROVISIONING_REUSE) }))
        .connect_lazy_with(
            connect_options(url, STATEMENT_CACHE_CAPACITY)?
                .application_name("tenantry-provisioning"),
        ))
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

/// Whether the database answers (the readiness probe).
pub async fn ping(db: &PgPool) -> anyhow::Result<()> {
    sqlx::query("select 1").execute(db).await?;
    Ok(())
}

/// Quotes an identifier for SQL text (doubling embedded quotes).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
