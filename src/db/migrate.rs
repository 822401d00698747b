//! Migrations: the shared `platform` schema, and every tenant schema.
//!
//! Tenant migrations are the SQL files under `migrations/tenant/`, applied to one schema
//! in one transaction with a transaction-local `search_path`. The ledger
//! `platform.tenant_migrations` records which versions each tenant has, so a tenant that
//! is already current is skipped without touching its schema, and a run that failed for
//! some tenants resumes where it stopped.

use std::time::Instant;

use anyhow::Context;
use futures::{StreamExt, stream};
use sqlx::{PgConnection, PgPool, migrate::Migrator};
use uuid::Uuid;

use super::TenantSchema;

/// Migrations of the shared `platform` schema.
pub fn shared_migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations/shared");
    migrator.create_schema("platform");
    migrator.dangerous_set_table_name("platform._sqlx_migrations");
    migrator
}

/// Migrations applied to every tenant schema, in version order.
pub static TENANT_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/tenant");

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

/// Applies the shared migrations (sqlx's migrator takes its own advisory lock).
pub async fn run_shared(pool: &PgPool) -> anyhow::Result<()> {
    shared_migrator()
        .run(pool)
        .await
        .context("failed to apply shared migrations")
}

/// Creates the tenant's schema if needed and applies its pending migrations, all inside
/// the caller's transaction. Returns how many migrations were applied.
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
    let create = format!("create schema if not exists {}", schema.quoted());
    sqlx::raw_sql(sqlx::AssertSqlSafe(create))
        .execute(&mut *conn)
        .await?;
    sqlx::query("select set_config('search_path', $1, true)")
        .bind(schema.quoted())
        .execute(&mut *conn)
        .await?;

    let applied: Vec<i64> =
        sqlx::query_scalar("select version from platform.tenant_migrations where tenant_id = $1")
            .bind(tenant_id)
            .fetch_all(&mut *conn)
            .await?;
    let mut count = 0;
    for migration in TENANT_MIGRATIONS.iter() {
        if applied.contains(&migration.version) {
            continue;
        }
        sqlx::raw_sql(migration.sql.clone())
            .execute(&mut *conn)
            .await?;
        sqlx::query("insert into platform.tenant_migrations (tenant_id, version) values ($1, $2)")
            .bind(tenant_id)
            .bind(migration.version)
            .execute(&mut *conn)
            .await?;
        count += 1;
    }
    Ok(count)
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

    let (current, pending): (Vec<_>, Vec<_>) = tenants.into_iter().partition(|t| t.1 >= latest);
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
