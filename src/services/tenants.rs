//! Tenants: the `platform.tenants` rows, their lifecycle and the purge of deleted ones.

use serde_json::json;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

pub mod manage;

use crate::{
    auth::principal::Actor,
    client_address::ClientInfo,
    db::{TenantSchema, TenantScope},
    error::{AppError, AppResult},
    services::audit::{self, AuditEntry},
    services::webhooks::{self, EventType},
};

pub use crate::domain::{
    Plan, Tenant, TenantSlug,
    tenant_settings::{Security, SelfRegistration, TenantSettings},
};

const COLUMNS: &str = "id, name, slug, plan, status, settings, created_at, updated_at, deleted_at";

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Tenant>> {
    Ok(find_with_auth_epoch(db, id)
        .await?
        .map(|(tenant, _)| tenant))
}

/// A tenant and its `auth_epoch`, the count of changes to its users, roles, role
/// assignments, sessions and API keys (bumped by
/// [`crate::auth::invalidation::Invalidations::commit`]).
pub async fn find_with_auth_epoch(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> sqlx::Result<Option<(Tenant, i64)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        tenant: Tenant,
        auth_epoch: i64,
    }
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS}, auth_epoch from platform.tenants where id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.tenant, r.auth_epoch)))
}

/// Finds a tenant by slug, or by id when `key` is a UUID.
pub async fn find_by_key(db: &PgPool, key: &str) -> sqlx::Result<Option<Tenant>> {
    if let Ok(id) = Uuid::parse_str(key) {
        return find(db, id).await;
    }
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from platform.tenants where slug = $1"
    )))
    .bind(key.to_ascii_lowercase())
    .fetch_optional(db)
    .await
}

/// Filters of the operators' tenant list.
#[derive(Debug, Default)]
pub struct TenantFilter {
    pub status: Option<String>,
    pub plan: Option<String>,
}

/// Newest first, keyset-paginated on the (time-ordered) id.
pub async fn list(
    db: &PgPool,
    filter: &TenantFilter,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Tenant>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from platform.tenants
         where ($1::text is null or status = $1)
           and ($2::text is null or plan = $2)
           and ($3::uuid is null or id < $3)
         order by id desc limit $4"
    )))
    .bind(&filter.status)
    .bind(&filter.plan)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Changes to a tenant; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct TenantChanges {
    pub name: Option<String>,
    pub settings: Option<TenantSettings>,
    pub plan: Option<Plan>,
}

/// A tenant as webhook events show it (settings stay out: they are the tenant's
/// configuration, not news).
fn tenant_event(t: &Tenant) -> serde_json::Value {
    json!({"id": t.id, "name": t.name, "slug": t.slug, "plan": t.plan, "status": t.status,
        "updated_at": t.updated_at})
}

/// The states an operator moves a tenant between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Suspend,
    Activate,
}

impl Lifecycle {
    fn status(self) -> &'static str {
        match self {
            Lifecycle::Suspend => "suspended",
            Lifecycle::Activate => "active",
        }
    }

    fn action(self) -> &'static str {
        match self {
            Lifecycle::Suspend => "tenant.suspended",
            Lifecycle::Activate => "tenant.activated",
        }
    }
}

/// Suspends or reactivates a tenant and records it in the tenant's audit log, in one
/// transaction; deleted tenants stay deleted (404).
pub async fn set_status(
    db: &PgPool,
    id: Uuid,
    change: Lifecycle,
    actor: Actor,
    client: &ClientInfo,
) -> AppResult<Tenant> {
    let mut tx = TenantScope::new(db.clone(), id).begin().await?;
    let tenant: Tenant = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update platform.tenants set status = $2, updated_at = now()
         where id = $1 and status <> 'deleted'
         returning {COLUMNS}"
    )))
    .bind(id)
    .bind(change.status())
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(AppError::not_found)?;
    let entry = AuditEntry::new(Some(actor), change.action(), client).target("tenant", id);
    audit::record_in(&mut tx, entry).await?;
    let event = match change {
        Lifecycle::Suspend => EventType::TenantSuspended,
        Lifecycle::Activate => EventType::TenantActivated,
    };
    webhooks::emit(&mut tx, event, tenant_event(&tenant)).await?;
    tx.commit().await?;
    Ok(tenant)
}

/// Platform tables whose rows about a tenant outlive its purge: the tenant row itself
/// (status `deleted`, so ids and slugs stay unique and logins answer cleanly) and the
/// platform audit log.
const KEPT_AFTER_PURGE: [&str; 2] = ["tenants", "audit_logs"];

/// Tables dropped per transaction while purging, so a tenant with many objects never
/// needs more locks than `max_locks_per_transaction` allows.
const PURGE_BATCH: i64 = 20;

/// Removes a deleted tenant's schema (in batches of tables, then the schema itself) and
/// its rows in shared tables. Safe to run again after an interruption.
pub async fn purge(db: &PgPool, tenant_id: Uuid) -> anyhow::Result<()> {
    // Shared rows first: once the schema is gone, nothing of the tenant remains. Every
    // platform table with a tenant_id column is cleared, so tables added later are too.
    let tables: Vec<String> = sqlx::query_scalar(
        "select table_name::text from information_schema.columns
         where table_schema = 'platform' and column_name = 'tenant_id'
           and table_name::text <> all($1)
         order by table_name",
    )
    .bind(KEPT_AFTER_PURGE)
    .fetch_all(db)
    .await?;
    let mut tx = db.begin().await?;
    for table in &tables {
        let sql = format!(
            "delete from platform.{} where tenant_id = $1",
            crate::db::quote_ident(table)
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;

    let schema = TenantSchema::for_tenant(tenant_id);
    loop {
        let mut tx = db.begin().await?;
        let tables: Vec<String> = sqlx::query_scalar(
            "select tablename::text from pg_tables where schemaname = $1 order by tablename limit $2",
        )
        .bind(schema.name())
        .bind(PURGE_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if tables.is_empty() {
            break;
        }
        let names: Vec<String> = tables
            .iter()
            .map(|t| format!("{}.{}", schema.quoted(), crate::db::quote_ident(t)))
            .collect();
        let drop = format!("drop table if exists {} cascade", names.join(", "));
        sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    let drop = format!("drop schema if exists {} cascade", schema.quoted());
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(db).await?;
    tracing::info!(%tenant_id, "tenant purged");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_registration_is_off_unless_enabled_and_limited_to_allowed_domains() {
        let off = SelfRegistration::default();
        assert!(!off.admits("a@example.com"));
        let open = SelfRegistration {
            enabled: true,
            allowed_email_domains: None,
        };
        assert!(open.admits("a@example.com"));
        let limited = SelfRegistration {
            enabled: true,
            allowed_email_domains: Some(vec!["Acme.com".into()]),
        }
        .normalized();
        assert!(limited.admits("a@acme.com"));
        assert!(!limited.admits("a@evil.com"));
        assert!(!limited.admits("a@acme.com.evil.com"));
    }

    #[test]
    fn slugs_follow_the_rule() {
        for ok in ["acme", "a-1", "abc", &"a".repeat(40)] {
            assert!(TenantSlug::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "1abc",
            "Acme",
            "ac_me",
            "-abc",
            &"a".repeat(41),
            "acmé",
        ] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad}");
        }
    }
}
