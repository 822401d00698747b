//! Migrations: the shared `platform` schema, and every tenant schema.
//!
//! Tenant migrations are the SQL files under `migrations/tenant/`, applied to one schema
//! in one transaction with a transaction-local `search_path`. The ledger
//! `platform.tenant_migrations` records which versions each tenant has, so a tenant that
//! is already current is skipped without touching its schema, and a run that failed for
//! some tenants resumes where it stopped.
//!
//! On a Citus coordinator (the `citus` extension is present) every file runs one statement
//! at a time — Citus propagates DDL by its query text and refuses multi-statement strings —
//! `platform` is kept a regular schema on the coordinator, and each tenant schema is made
//! a distributed schema (placed on one worker).

use std::time::Instant;

use anyhow::Context;
use futures::{StreamExt, stream};
use sqlx::{PgConnection, PgPool, migrate::Migrator};
use uuid::Uuid;

use super::{TenantSchema, citus, statements};

/// Migrations of the shared `platform` schema.
pub fn shared_migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations/shared");
    migrator.create_schema("platform");
    migrator.dangerous_set_table_name("platform._sqlx_migrations");
    migrator
}

/// Migrations applied to every tenant schema, in version order.
pub static TENANT_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/tenant");

/// A new tenant's schema as the tenant migrations up to [`BASELINE_VERSION`] leave it,
/// created in one pass: onboarding then runs no `ALTER TABLE`, whose cost grows with the
/// catalog (an added column with a default scans all of `pg_class`; the run is in
/// `docs/benchmarks.md`). Existing tenants get the migrations themselves; both give the
/// same schema (`tests/api/migrate.rs`). A new migration goes into `migrations/tenant/`
/// alone: new tenants get it after the baseline; one that only creates tables and
/// indexes joins the baseline's script as it is (0006, 0007), so that onboarding sends
/// one script.
const BASELINE: &str = concat!(
    include_str!("../../migrations/tenant-baseline.sql"),
    "\n",
    include_str!("../../migrations/tenant/0006_identity.sql"),
    "\n",
    include_str!("../../migrations/tenant/0007_webhooks.sql"),
);
const BASELINE_VERSION: i64 = 7;

/// The newest tenant migration version.
pub fn latest_tenant_version() -> i64 {
    TENANT_MIGRATIONS
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// Key of the advisory lock that keeps two tenant migration runs from overlapping.
pub const MIGRATE_LOCK_KEY: i64 = 0x7465_6e61_6e74_7279; // "tenantry"

/// Key of the advisory lock of shared migrations run statement by statement (Citus).
const SHARED_LOCK_KEY: i64 = 0x706c_6174_666f_726d; // "platform"

/// Applies the shared migrations (sqlx's migrator takes its own advisory lock). On Citus,
/// statement by statement on one connection, into the same ledger.
pub async fn run_shared(pool: &PgPool) -> anyhow::Result<()> {
    let on_citus = citus::detect(pool)
        .await
        .context("failed to connect to apply shared migrations")?;
    let result = if on_citus {
        let mut conn = pool.acquire().await?;
        run_shared_by_statement(&mut conn).await
    } else {
        shared_migrator().run(pool).await.map_err(Into::into)
    };
    result.context("failed to apply shared migrations")
}

/// What sqlx's migrator does, one statement at a time and with `platform` kept off
/// schema-based sharding, recording in the same `platform._sqlx_migrations` ledger (so
/// either runner can follow the other).
async fn run_shared_by_statement(conn: &mut PgConnection) -> anyhow::Result<()> {
    // Session-level: `platform` stays a regular schema even if the database's default
    // distributes new schemas. Reset before the connection returns to the pool.
    sqlx::raw_sql("set citus.enable_schema_based_sharding = off")
        .execute(&mut *conn)
        .await?;
    sqlx::query("select pg_advisory_lock($1)")
        .bind(SHARED_LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    let result = apply_shared_by_statement(conn).await;
    sqlx::query("select pg_advisory_unlock($1)")
        .bind(SHARED_LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    sqlx::raw_sql("reset citus.enable_schema_based_sharding")
        .execute(&mut *conn)
        .await?;
    result
}

async fn apply_shared_by_statement(conn: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::raw_sql("create schema if not exists platform")
        .execute(&mut *conn)
        .await?;
    // The table sqlx's migrator creates (sqlx-postgres 0.9).
    sqlx::raw_sql(
        "create table if not exists platform._sqlx_migrations (
            version bigint primary key,
            description text not null,
            installed_on timestamptz not null default now(),
            success boolean not null,
            checksum bytea not null,
            execution_time bigint not null)",
    )
    .execute(&mut *conn)
    .await?;
    let applied: Vec<(i64, Vec<u8>, bool)> =
        sqlx::query_as("select version, checksum, success from platform._sqlx_migrations")
            .fetch_all(&mut *conn)
            .await?;
    for migration in shared_migrator().iter() {
        if let Some((_, checksum, success)) = applied.iter().find(|a| a.0 == migration.version) {
            anyhow::ensure!(*success, "shared migration {} is dirty", migration.version);
            anyhow::ensure!(
                checksum[..] == migration.checksum[..],
                "shared migration {} was changed after it was applied",
                migration.version
            );
            continue;
        }
        let started = Instant::now();
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        for statement in statements::split(migration.sql.as_str()) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
                .execute(&mut *tx)
                .await
                .with_context(|| format!("shared migration {}", migration.version))?;
        }
        sqlx::query(
            "insert into platform._sqlx_migrations
                (version, description, success, checksum, execution_time)
             values ($1, $2, true, $3, $4)",
        )
        .bind(migration.version)
        .bind(&*migration.description)
        .bind(&*migration.checksum)
        .bind(started.elapsed().as_nanos() as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(
            version = migration.version,
            "applied shared migration (by statement)"
        );
    }
    Ok(())
}

/// Creates the tenant's schema if needed and applies its pending migrations, all inside
/// the caller's transaction (a tenant without any yet: [`BASELINE`], then the migrations
/// after it). Returns how many migrations were applied (or stand applied).
///
/// `conn` must be inside a transaction: the `search_path` set here is transaction-local
/// and ends with it, so the connection goes back to the pool clean.
pub async fn apply_tenant(conn: &mut PgConnection, tenant_id: Uuid) -> sqlx::Result<usize> {
    let schema = TenantSchema::for_tenant(tenant_id);
    // Serialise concurrent attempts on the same tenant (two replicas, or onboarding and
    // `tenantry migrate`); the lock ends with the transaction.
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(schema.name())
        .execute(&mut *conn)
        .await?;
    let on_citus = citus::detect(&mut *conn).await?;
    if on_citus {
        // Transaction-local: this schema (if new) becomes a distributed schema, placed on
        // one worker with every table created in it.
        sqlx::raw_sql("set local citus.enable_schema_based_sharding = on")
            .execute(&mut *conn)
            .await?;
    }
    let create = format!("create schema if not exists {}", schema.quoted());
    sqlx::raw_sql(sqlx::AssertSqlSafe(create))
        .execute(&mut *conn)
        .await?;
    sqlx::query("select set_config('search_path', $1, true)")
        .bind(schema.quoted())
        .execute(&mut *conn)
        .await?;

    let mut applied: Vec<i64> =
        sqlx::query_scalar("select version from platform.tenant_migrations where tenant_id = $1")
            .bind(tenant_id)
            .fetch_all(&mut *conn)
            .await?;
    let mut count = 0;
    if applied.is_empty() {
        execute_script(conn, BASELINE, on_citus).await?;
        applied = TENANT_MIGRATIONS
            .iter()
            .map(|m| m.version)
            .filter(|v| *v <= BASELINE_VERSION)
            .collect();
        sqlx::query(
            "insert into platform.tenant_migrations (tenant_id, version)
             select $1, unnest($2::bigint[])",
        )
        .bind(tenant_id)
        .bind(&applied)
        .execute(&mut *conn)
        .await?;
        count += applied.len();
    }
    for migration in TENANT_MIGRATIONS.iter() {
        if applied.contains(&migration.version) {
            continue;
        }
        execute_script(conn, migration.sql.as_str(), on_citus).await?;
        sqlx::query("insert into platform.tenant_migrations (tenant_id, version) values ($1, $2)")
            .bind(tenant_id)
            .bind(migration.version)
            .execute(&mut *conn)
            .await?;
        count += 1;
    }
    if on_citus && !citus::is_distributed(&mut *conn, schema.name()).await? {
        // A schema created before Citus, or outside the setting above.
        sqlx::query("select citus_schema_distribute($1::regnamespace)")
            .bind(schema.name())
            .execute(&mut *conn)
            .await?;
        tracing::info!(%tenant_id, "tenant schema distributed");
    }
    Ok(count)
}

/// Runs a migration script: whole, or statement by statement on Citus.
async fn execute_script(conn: &mut PgConnection, sql: &str, on_citus: bool) -> sqlx::Result<()> {
    let statements = if on_citus {
        statements::split(sql)
    } else {
        vec![sql]
    };
    for statement in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// What one `tenantry migrate` run did.
#[derive(Debug, Default)]
pub struct TenantMigrationReport {
    /// Tenants brought up to date by this run.
    pub migrated: Vec<Uuid>,
    /// Tenants that were already current and were not touched.
    pub skipped: usize,
    /// Tenants whose migration failed, with the error; they stay at their old version.
    pub failed: Vec<(Uuid, String)>,
}

/// Why a tenant migration run did not start.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("another tenant migration run holds the lock")]
    AlreadyRunning,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Brings every tenant schema (except deleted tenants) to the latest version, at most
/// `concurrency` tenants at a time, each in its own transaction. One failing tenant is
/// reported and does not stop the others.
///
/// `lock_conn` is a connection outside the pool that holds the run's session-level
/// advisory lock; closing it releases the lock even if this process dies.
pub async fn run_tenants(
    pool: &PgPool,
    lock_conn: &mut PgConnection,
    concurrency: usize,
) -> Result<TenantMigrationReport, MigrateError> {
    let locked: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
        .bind(MIGRATE_LOCK_KEY)
        .fetch_one(&mut *lock_conn)
        .await
        .context("failed to take the migration lock")?;
    if !locked {
        return Err(MigrateError::AlreadyRunning);
    }
    let result = migrate_pending(pool, concurrency).await;
    sqlx::query("select pg_advisory_unlock($1)")
        .bind(MIGRATE_LOCK_KEY)
        .execute(&mut *lock_conn)
        .await
        .context("failed to release the migration lock")?;
    result.map_err(MigrateError::Other)
}

async fn migrate_pending(
    pool: &PgPool,
    concurrency: usize,
) -> anyhow::Result<TenantMigrationReport> {
    let latest = latest_tenant_version();
    let tenants: Vec<(Uuid, i64)> = sqlx::query_as(
        "select t.id, coalesce(max(m.version), 0)
         from platform.tenants t
         left join platform.tenant_migrations m on m.tenant_id = t.id
         where t.status <> 'deleted'
         group by t.id
         order by t.id",
    )
    .fetch_all(pool)
    .await
    .context("failed to list tenants")?;

    // On Citus a tenant is also pending while its schema is not distributed yet.
    let on_citus = citus::detect(pool).await?;
    let distributed: std::collections::HashSet<String> = if on_citus {
        citus::distributed_schemas(pool)
            .await?
            .into_iter()
            .collect()
    } else {
        Default::default()
    };
    let is_current = |(id, version): &(Uuid, i64)| {
        *version >= latest
            && (!on_citus || distributed.contains(TenantSchema::for_tenant(*id).name()))
    };
    let (current, pending): (Vec<_>, Vec<_>) = tenants.into_iter().partition(is_current);
    let mut report = TenantMigrationReport {
        skipped: current.len(),
        ..Default::default()
    };
    let total = pending.len();
    tracing::info!(
        pending = total,
        current = report.skipped,
        latest,
        "migrating tenant schemas"
    );
    metrics::gauge!("tenantry_tenant_migrations_pending").set(total as f64);

    let mut results = stream::iter(pending)
        .map(|(tenant_id, _)| async move {
            let started = Instant::now();
            let result = migrate_one(pool, tenant_id).await;
            (tenant_id, result, started.elapsed())
        })
        .buffer_unordered(concurrency);

    let mut done = 0;
    while let Some((tenant_id, result, elapsed)) = results.next().await {
        done += 1;
        metrics::gauge!("tenantry_tenant_migrations_pending").set((total - done) as f64);
        match result {
            Ok(applied) => {
                metrics::counter!("tenantry_tenant_migrations_total", "outcome" => "applied")
                    .increment(1);
                tracing::info!(%tenant_id, applied, elapsed_ms = elapsed.as_millis() as u64, done, total, "tenant migrated");
                report.migrated.push(tenant_id);
            }
            Err(e) => {
                metrics::counter!("tenantry_tenant_migrations_total", "outcome" => "failed")
                    .increment(1);
                tracing::error!(%tenant_id, error = %e, done, total, "tenant migration failed");
                report.failed.push((tenant_id, e.to_string()));
            }
        }
    }
    Ok(report)
}

async fn migrate_one(pool: &PgPool, tenant_id: Uuid) -> sqlx::Result<usize> {
    let mut tx = pool.begin().await?;
    let applied = apply_tenant(&mut tx, tenant_id).await?;
    tx.commit().await?;
    Ok(applied)
}
