//! How long one autoscaler evaluation pass over every active tenant takes.
//!
//! Run: `scripts/bench-scaling.sh` (or `cargo bench --bench scaling_pass`).
//! Settings: BENCH_TENANTS (2000), BENCH_PASSES (10); the PostgreSQL server comes from
//! DATABASE_URL, a throwaway database is made on it and dropped afterwards.
//!
//! It creates the tenants (mixed plans) with their schemas, policies and two minutes of
//! `api_requests` rollups each, every tenth with a webhook endpoint subscribed to
//! `scaling.changed` (the pass records their events in their schemas), then times `evaluator::run_pass` — the function the
//! lease holder runs every `AUTOSCALER_INTERVAL_SECONDS`: the first pass (most tenants
//! change capacity, one event each), then passes at a steady load, and passes after the
//! load of every tenant moved (half go up, half go down).

use std::time::Duration;

use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use sqlx::PgPool;
use tenantry::{App, Config, db::migrate, services::scaling::evaluator};

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
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let database = format!("tenantry_bench_{}", uuid::Uuid::new_v4().simple());
    let url = format!(
        "{}/{database}",
        server.rsplit_once('/').map_or(&*server, |s| s.0)
    );
    tenantry::db::ensure_database(&url).await?;
    let result = run(&url, &redis).await;
    let admin = PgPool::connect(&server).await?;
    let drop = format!("drop database if exists \"{database}\" with (force)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&admin)
        .await?;
    result
}

async fn run(url: &str, redis: &str) -> anyhow::Result<()> {
    let tenants: i32 = env_or("BENCH_TENANTS", 2000);
    let passes: usize = env_or("BENCH_PASSES", 10);
    let config = Config::from_lookup(|name| match name {
        "APP_ENV" => Some("test".into()),
        "DATABASE_URL" => Some(url.to_owned()),
        "DATABASE_MAX_CONNECTIONS" => Some("4".into()),
        "REDIS_URL" => Some(redis.to_owned()),
        "RUST_LOG" => Some("warn".into()),
        _ => None,
    })?;
    let app = App::new(config).await?;
    migrate::run_shared(&app.db).await?;
    seed(&app.db, tenants).await?;

    println!("command: scripts/bench-scaling.sh (cargo bench --bench scaling_pass)");
    println!(
        "{tenants} active tenants, {passes} passes per phase, release build; load average before: {}\n",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let first = evaluator::run_pass(&app.autoscaler, Utc::now()).await?;
    let webhooks: i64 = sqlx::query_scalar("select count(*) from platform.webhook_queue")
        .fetch_one(&app.db)
        .await?;
    println!(
        "first pass   {:>8.1} ms (read {:.1} ms, write {:.1} ms; {} tenants, {} capacity changes written, {webhooks} scaling.changed webhooks queued)",
        ms(first.elapsed),
        ms(first.read),
        ms(first.write),
        first.tenants,
        first.changes
    );
    let steady = time_passes(&app, passes, None).await?;
    report("steady load", &steady);
    let moving = time_passes(&app, passes, Some(tenants)).await?;
    report("moving load", &moving);
    Ok(())
}

/// Runs `n` passes; with `reshuffle`, every tenant's load changes before each (untimed).
async fn time_passes(
    app: &App,
    n: usize,
    reshuffle: Option<i32>,
) -> anyhow::Result<Vec<evaluator::PassReport>> {
    let mut out = Vec::with_capacity(n);
    for round in 0..n {
        if reshuffle.is_some() {
            sqlx::query(
                "update platform.usage_rollups
                 set value = (value * case when (hashtext(tenant_id::text) + $1) % 2 = 0 then 3 else 1 end) / 2 + 1",
            )
            .bind(round as i32)
            .execute(&app.db)
            .await?;
        }
        out.push(evaluator::run_pass(&app.autoscaler, Utc::now()).await?);
    }
    Ok(out)
}

fn report(label: &str, runs: &[evaluator::PassReport]) {
    let median = |f: fn(&evaluator::PassReport) -> Duration| {
        let mut times: Vec<f64> = runs.iter().map(|r| ms(f(r))).collect();
        times.sort_by(f64::total_cmp);
        (times[times.len() / 2], times[0], times[times.len() - 1])
    };
    let (total, min, max) = median(|r| r.elapsed);
    let changes: usize = runs.iter().map(|r| r.changes).sum();
    println!(
        "{label:<12} {total:>8.1} ms median (min {min:.1}, max {max:.1}; read {:.1} ms, write {:.1} ms median; {changes} changes over {} passes)",
        median(|r| r.read).0,
        median(|r| r.write).0,
        runs.len()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `n` active tenants (plans in turn), their default policies and two minutes of load.
async fn seed(db: &PgPool, n: i32) -> anyhow::Result<()> {
    sqlx::query(
        "insert into platform.tenants (id, name, slug, plan, status)
         select gen_random_uuid(), 'Tenant ' || i, 'bench-' || i,
                (array['free', 'standard', 'premium'])[1 + i % 3], 'active'
         from generate_series(1, $1) i",
    )
    .bind(n)
    .execute(db)
    .await?;
    // Each tenant's schema, four at a time (as onboarding leaves it); every tenth with
    // an endpoint for `scaling.changed`.
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("select id from platform.tenants order by slug")
        .fetch_all(db)
        .await?;
    futures::stream::iter(ids.into_iter().enumerate())
        .map(|(i, id)| async move {
            let mut tx = db.begin().await?;
            migrate::apply_tenant(&mut tx, id).await?;
            if i % 10 == 0 {
                let schema = tenantry::db::TenantSchema::for_tenant(id).quoted();
                let sql = format!(
                    "insert into {schema}.webhook_endpoints (id, url, event_types, secret)
                     values (gen_random_uuid(), 'https://hooks.example.com/scaling',
                             array['scaling.changed'], 'whsec_bench')"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })
        .buffer_unordered(4)
        .try_collect::<()>()
        .await?;
    sqlx::query(
        "insert into platform.scaling_policies
            (tenant_id, min_capacity, max_capacity, target_rps_per_unit, current_capacity)
         select id, b.lo, b.hi, 50, b.lo
         from platform.tenants t
         join (values ('free', 1, 2), ('standard', 1, 10), ('premium', 2, 50)) b(plan, lo, hi)
           on b.plan = t.plan",
    )
    .execute(db)
    .await?;
    // 0 to ~2,500 rps per tenant, spread by a hash of the id; this minute and the last.
    sqlx::query(
        "insert into platform.usage_rollups (tenant_id, metric, bucket_start, value)
         select t.id, 'api_requests', m, abs(hashtext(t.id::text)) % 150000
         from platform.tenants t,
              unnest(array[date_trunc('minute', now()), date_trunc('minute', now()) - interval '1 minute']) m",
    )
    .execute(db)
    .await?;
    sqlx::query("analyze platform.tenants, platform.scaling_policies, platform.usage_rollups")
        .execute(db)
        .await?;
    Ok(())
}
