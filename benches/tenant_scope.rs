//! How much each way of scoping a query to a tenant schema costs.
//!
//! Run: `scripts/bench-tenant-scope.sh` (or `cargo bench --bench tenant_scope`).
//! Settings: BENCH_TENANTS (50), BENCH_SECONDS (5), BENCH_CONCURRENCY (32), BENCH_POOL (16);
//! the PostgreSQL server comes from DATABASE_URL, a throwaway database is made on it.
//!
//! Every method runs the same primary-key select; each answer is checked to come from
//! the tenant asked for.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use sqlx::{Connection, PgPool, Row, postgres::PgPoolOptions};
use tenantry::db::{TenantSchema, TenantScope};
use uuid::Uuid;

const ROWS_PER_TENANT: i32 = 100;

#[derive(Clone, Copy, Debug)]
enum Method {
    /// The same select on a table in `public`: the floor.
    Unscoped,
    /// `TenantScope`: schema-qualified SQL with the quoted schema name (what we ship).
    Qualified,
    /// `BEGIN`, `set_config('search_path', .., true)`, select, `COMMIT`: four round trips.
    TxSetConfig,
    /// `BEGIN; SET LOCAL search_path ..` sent as one batch, select, `COMMIT`: three.
    TxBatchedBegin,
    /// Session `SET search_path` then select: leaks into the next borrower. Measured
    /// only to show what the unsafe shortcut would buy.
    SessionSetUnsafe,
}

impl Method {
    const ALL: [Method; 5] = [
        Method::Unscoped,
        Method::Qualified,
        Method::TxSetConfig,
        Method::TxBatchedBegin,
        Method::SessionSetUnsafe,
    ];

    fn label(self) -> &'static str {
        match self {
            Method::Unscoped => "unscoped PK select (public table, baseline)",
            Method::Qualified => "schema-qualified SQL (TenantScope, shipped)",
            Method::TxSetConfig => "tx + set_config(search_path, local)",
            Method::TxBatchedBegin => "tx begun with 'BEGIN; SET LOCAL search_path' batch",
            Method::SessionSetUnsafe => "separate SET search_path (UNSAFE, leaks)",
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let tenants: usize = env_or("BENCH_TENANTS", 50);
    let seconds: u64 = env_or("BENCH_SECONDS", 5);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 32);
    let pool_size: u32 = env_or("BENCH_POOL", 16);

    let database = format!("tenantry_bench_{}", Uuid::new_v4().simple());
    let url = format!(
        "{}/{database}",
        server.rsplit_once('/').map_or(&*server, |s| s.0)
    );
    tenantry::db::ensure_database(&url).await?;
    let result = run(&url, tenants, seconds, concurrency, pool_size).await;

    let mut admin = sqlx::PgConnection::connect(&server).await?;
    let drop = format!("drop database if exists \"{database}\" with (force)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&mut admin)
        .await?;
    result
}

async fn run(
    url: &str,
    tenants: usize,
    seconds: u64,
    concurrency: usize,
    pool_size: u32,
) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(pool_size)
        .connect(url)
        .await?;
    let ids = setup(&pool, tenants).await?;
    let scopes: Arc<Vec<TenantScope>> = Arc::new(
        ids.iter()
            .map(|id| TenantScope::new(pool.clone(), *id))
            .collect(),
    );

    println!(
        "tenant scope benchmark: {tenants} tenant schemas, {concurrency} concurrent tasks, \
         pool of {pool_size}, {seconds} s per method, debug_assertions={}",
        cfg!(debug_assertions)
    );
    println!("{:<52} {:>10} {:>9}", "method", "queries/s", "relative");
    let mut baseline = None;
    for method in Method::ALL {
        let qps = measure(method, &pool, &scopes, seconds, concurrency).await?;
        let base = *baseline.get_or_insert(qps);
        println!("{:<52} {:>10.0} {:>8.2}x", method.label(), qps, qps / base);
    }
    pool.close().await;
    Ok(())
}

/// `tenants` schemas with a 100-row table each, and the same table in `public`.
async fn setup(pool: &PgPool, tenants: usize) -> anyhow::Result<Vec<Uuid>> {
    let table = "(id int primary key, tenant uuid not null, name text not null)";
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "create table public.items {table};
         insert into public.items select g, gen_random_uuid(), 'row ' || g
         from generate_series(1, {ROWS_PER_TENANT}) g"
    )))
    .execute(pool)
    .await?;
    let mut ids = Vec::with_capacity(tenants);
    for _ in 0..tenants {
        let id = Uuid::now_v7();
        let schema = TenantSchema::for_tenant(id).quoted();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "create schema {schema};
             create table {schema}.items {table};
             insert into {schema}.items select g, '{id}', 'row ' || g
             from generate_series(1, {ROWS_PER_TENANT}) g"
        )))
        .execute(pool)
        .await?;
        ids.push(id);
    }
    Ok(ids)
}

async fn measure(
    method: Method,
    pool: &PgPool,
    scopes: &Arc<Vec<TenantScope>>,
    seconds: u64,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (pool, scopes, stop, count) =
            (pool.clone(), scopes.clone(), stop.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = worker;
            while !stop.load(Ordering::Relaxed) {
                let scope = &scopes[i % scopes.len()];
                let row_id = (i as i32 % ROWS_PER_TENANT) + 1;
                let tenant = query(method, &pool, scope, row_id).await?;
                if !matches!(method, Method::Unscoped) {
                    anyhow::ensure!(
                        tenant == scope.tenant_id(),
                        "{method:?} read another tenant"
                    );
                }
                count.fetch_add(1, Ordering::Relaxed);
                i = i.wrapping_add(concurrency);
            }
            Ok(())
        }));
    }
    // Warm up, then count over the measured window only.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start_count = count.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let done = count.load(Ordering::Relaxed) - start_count;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await??;
    }
    if matches!(method, Method::SessionSetUnsafe) {
        // Leave no leaked search_path behind for anything that runs after us.
        pool.close().await;
    }
    Ok(done as f64 / elapsed.as_secs_f64())
}

async fn query(
    method: Method,
    pool: &PgPool,
    scope: &TenantScope,
    row_id: i32,
) -> anyhow::Result<Uuid> {
    let by_id = "select tenant, name from items where id = $1";
    let row = match method {
        Method::Unscoped => {
            sqlx::query("select tenant, name from public.items where id = $1")
                .bind(row_id)
                .fetch_one(pool)
                .await?
        }
        Method::Qualified => {
            sqlx::query(scope.sql("select tenant, name from {schema}.items where id = $1"))
                .bind(row_id)
                .fetch_one(scope.db())
                .await?
        }
        Method::TxSetConfig => {
            let mut tx = pool.begin().await?;
            sqlx::query("select set_config('search_path', $1, true)")
                .bind(scope.schema().quoted())
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query(by_id).bind(row_id).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            row
        }
        Method::TxBatchedBegin => {
            let begin = format!(
                "begin; set local search_path to {}",
                scope.schema().quoted()
            );
            let mut tx = pool.begin_with(sqlx::AssertSqlSafe(begin)).await?;
            let row = sqlx::query(by_id).bind(row_id).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            row
        }
        Method::SessionSetUnsafe => {
            let mut conn = pool.acquire().await?;
            let set = format!("set search_path to {}", scope.schema().quoted());
            sqlx::raw_sql(sqlx::AssertSqlSafe(set))
                .execute(&mut *conn)
                .await?;
            sqlx::query(by_id)
                .bind(row_id)
                .fetch_one(&mut *conn)
                .await?
        }
    };
    Ok(row.try_get("tenant")?)
}
