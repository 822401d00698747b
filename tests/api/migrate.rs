//! `tenantry migrate`: every tenant schema brought up to date, with a ledger, a lock,
//! skipping of current tenants and resumption after a failure.

use tenantry::db::{self, TenantSchema, migrate};
use uuid::Uuid;

use crate::helpers::TestApp;

/// A tenant row whose schema has not been migrated yet.
async fn tenant_row(app: &TestApp, slug: &str) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into platform.tenants (id, name, slug, status) values ($1, $1::text, $2, 'active')",
    )
    .bind(id)
    .bind(slug)
    .execute(app.db())
    .await
    .expect("insert tenant");
    id
}

async fn versions(app: &TestApp, tenant: Uuid) -> Vec<i64> {
    sqlx::query_scalar(
        "select version from platform.tenant_migrations where tenant_id = $1 order by version",
    )
    .bind(tenant)
    .fetch_all(app.db())
    .await
    .expect("ledger")
}

async fn table_exists(app: &TestApp, tenant: Uuid, table: &str) -> bool {
    sqlx::query_scalar(
        "select exists (select 1 from information_schema.tables where table_schema = $1 and table_name = $2)",
    )
    .bind(TenantSchema::for_tenant(tenant).name())
    .bind(table)
    .fetch_one(app.db())
    .await
    .expect("catalog")
}

async fn run(app: &TestApp) -> Result<migrate::TenantMigrationReport, migrate::MigrateError> {
    let mut lock = db::connect_one(&app.database_url()).await.expect("connect");
    migrate::run_tenants(app.db(), &mut lock, 3).await
}

#[tokio::test]
async fn every_tenant_is_migrated_once_and_current_tenants_are_skipped() {
    let app = TestApp::new().await;
    let tenants = [
        tenant_row(&app, "one").await,
        tenant_row(&app, "two").await,
        tenant_row(&app, "three").await,
        tenant_row(&app, "four").await,
    ];
    let latest = migrate::latest_tenant_version();

    let report = run(&app).await.expect("run");
    assert_eq!(report.migrated.len(), 4);
    assert_eq!(report.skipped, 0);
    assert!(report.failed.is_empty());
    for tenant in tenants {
        assert_eq!(versions(&app, tenant).await.last(), Some(&latest));
        assert!(table_exists(&app, tenant, "users").await);
        assert!(table_exists(&app, tenant, "audit_logs").await);
    }

    let again = run(&app).await.expect("second run");
    assert!(again.migrated.is_empty());
    assert_eq!(again.skipped, 4);
}

/// A schema's tables as a client sees them: columns (in order, with type, nullability and
/// default), constraints and indexes, with the schema's own name taken out.
async fn shape(app: &TestApp, schema: &str) -> Vec<String> {
    sqlx::query_scalar(
        "select format('column %s.%s #%s %s %s %s', table_name, column_name, ordinal_position,
                       udt_name, is_nullable, column_default)
           from information_schema.columns where table_schema = $1
         union all
         select format('constraint %s %s %s', conrelid::regclass, conname,
                       pg_get_constraintdef(oid))
           from pg_constraint where connamespace = $1::regnamespace
         union all
         select format('index %s', indexdef) from pg_indexes where schemaname = $1
         order by 1",
    )
    .bind(schema)
    .fetch_all(app.db())
    .await
    .expect("catalog")
    .into_iter()
    .map(|line: String| line.replace(&format!("{schema}."), "").replace(schema, "S"))
    .collect()
}

/// Columns added to an existing table with a default (PostgreSQL marks them
/// `atthasmissing`).
async fn columns_added_later(app: &TestApp, schema: &str) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pg_attribute a join pg_class c on c.oid = a.attrelid
         where c.relnamespace = $1::regnamespace and a.atthasmissing",
    )
    .bind(schema)
    .fetch_one(app.db())
    .await
    .expect("catalog")
}

/// New tenants start from the baseline; it must be exactly what the migrations build.
#[tokio::test]
async fn the_baseline_of_new_tenants_is_the_schema_the_migrations_build() {
    let app = TestApp::new().await;
    let stepwise = TenantSchema::for_tenant(Uuid::now_v7());
    let mut tx = app.db().begin().await.expect("begin");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "create schema {0}; set local search_path = {0}",
        stepwise.quoted()
    )))
    .execute(&mut *tx)
    .await
    .expect("schema");
    for migration in migrate::TENANT_MIGRATIONS.iter() {
        sqlx::raw_sql(migration.sql.clone())
            .execute(&mut *tx)
            .await
            .expect("migration");
    }
    tx.commit().await.expect("commit");

    let tenant = tenant_row(&app, "from-baseline").await;
    let mut tx = app.db().begin().await.expect("begin");
    migrate::apply_tenant(&mut tx, tenant)
        .await
        .expect("baseline");
    tx.commit().await.expect("commit");
    let every_version: Vec<i64> = migrate::TENANT_MIGRATIONS
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(versions(&app, tenant).await, every_version);

    let expected = shape(&app, stepwise.name()).await;
    assert!(expected.len() > 50, "{expected:#?}");
    let baseline = TenantSchema::for_tenant(tenant);
    assert_eq!(shape(&app, baseline.name()).await, expected);

    // Created in one pass: no column was added later with a default, as the stepwise
    // schema's were.
    assert!(columns_added_later(&app, stepwise.name()).await > 0);
    assert_eq!(columns_added_later(&app, baseline.name()).await, 0);
}

#[tokio::test]
async fn a_failing_tenant_is_reported_the_others_proceed_and_a_rerun_resumes() {
    let app = TestApp::new().await;
    let good = tenant_row(&app, "good").await;
    let bad = tenant_row(&app, "bad").await;
    // Sabotage: the bad tenant's schema already has a conflicting `users` table.
    let schema = TenantSchema::for_tenant(bad).quoted();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "create schema {schema}; create table {schema}.users (id int)"
    )))
    .execute(app.db())
    .await
    .expect("sabotage");

    let report = run(&app).await.expect("run");
    assert_eq!(report.migrated, vec![good]);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, bad);
    assert!(
        versions(&app, bad).await.is_empty(),
        "the failed tenant stays at its version"
    );
    assert!(
        !table_exists(&app, bad, "roles").await,
        "its transaction rolled back whole"
    );

    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("drop table {schema}.users")))
        .execute(app.db())
        .await
        .expect("repair");
    let resumed = run(&app).await.expect("rerun");
    assert_eq!(resumed.migrated, vec![bad]);
    assert_eq!(resumed.skipped, 1);
    assert!(table_exists(&app, bad, "roles").await);
}

#[tokio::test]
async fn two_runs_never_overlap() {
    let app = TestApp::new().await;
    tenant_row(&app, "solo").await;
    let mut holder = db::connect_one(&app.database_url()).await.expect("connect");
    let mut other = db::connect_one(&app.database_url()).await.expect("connect");

    // Hold the lock the way a running migration does, from another session.
    sqlx::query("select pg_advisory_lock($1)")
        .bind(migrate::MIGRATE_LOCK_KEY)
        .execute(&mut holder)
        .await
        .expect("lock");
    let blocked = migrate::run_tenants(app.db(), &mut other, 2).await;
    assert!(matches!(
        blocked,
        Err(migrate::MigrateError::AlreadyRunning)
    ));

    drop(holder);
    // With the holder gone, the run proceeds.
    let mut report = None;
    for _ in 0..50 {
        match migrate::run_tenants(app.db(), &mut other, 2).await {
            Ok(r) => {
                report = Some(r);
                break;
            }
            Err(migrate::MigrateError::AlreadyRunning) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(report.expect("ran").migrated.len(), 1);
}

#[tokio::test]
async fn deleted_tenants_are_not_migrated() {
    let app = TestApp::new().await;
    let gone = tenant_row(&app, "gone").await;
    sqlx::query("update platform.tenants set status = 'deleted' where id = $1")
        .bind(gone)
        .execute(app.db())
        .await
        .expect("delete");
    let report = run(&app).await.expect("run");
    assert!(report.migrated.is_empty());
    assert!(!table_exists(&app, gone, "users").await);
}
