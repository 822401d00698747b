//! The changes to a tenant that its own principals may make as well as platform
//! operators (`TenantOrPlatform` routes): each takes the caller's proof, an operator or a
//! principal of the tenant holding the route's permission.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::{COLUMNS, Plan, Tenant, TenantChanges, TenantSettings, tenant_event};
use crate::{
    auth::granted::GrantedOrPlatform,
    client_address::ClientInfo,
    db::TenantScope,
    error::{AppError, AppResult},
    rbac::needs,
    services::audit::{self, AuditEntry},
    services::webhooks::{self, EventType},
};

/// Applies `changes` and records `tenant.updated` in the tenant's audit log, in one
/// transaction: the change and its record commit together or not at all.
pub async fn update(
    db: &PgPool,
    id: Uuid,
    changes: TenantChanges,
    caller: &GrantedOrPlatform<needs::TenantUpdate>,
    client: &ClientInfo,
) -> AppResult<Tenant> {
    let mut tx = TenantScope::new(db.clone(), id).begin().await?;
    let tenant: Tenant = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update platform.tenants set
            name = coalesce($2, name),
            settings = coalesce($3, settings),
            plan = coalesce($4, plan),
            updated_at = now()
         where id = $1 and status <> 'deleted'
         returning {COLUMNS}"
    )))
    .bind(id)
    .bind(&changes.name)
    .bind(changes.settings.clone().map(TenantSettings::into_value))
    .bind(changes.plan.map(Plan::as_str))
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(AppError::not_found)?;
    let entry = AuditEntry::new(Some(caller.actor()), "tenant.updated", client)
        .target("tenant", id)
        .metadata(json!({
            "name": changes.name,
            "plan": changes.plan,
            "settings_changed": changes.settings.is_some(),
        }));
    audit::record_in(&mut tx, entry).await?;
    webhooks::emit(&mut tx, EventType::TenantUpdated, tenant_event(&tenant)).await?;
    tx.commit().await?;
    Ok(tenant)
}

/// Marks the tenant deleted at once (its tokens and keys stop working) and records
/// `tenant.deleted` in `platform.audit_logs` in the same transaction: the tenant's own
/// audit log goes with its schema, this entry outlives the purge. The schema is purged
/// afterwards by [`super::purge`].
pub async fn mark_deleted(
    db: &PgPool,
    id: Uuid,
    caller: &GrantedOrPlatform<needs::TenantDelete>,
    client: &ClientInfo,
) -> AppResult<Tenant> {
    let mut tx = db.begin().await?;
    let tenant: Tenant = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update platform.tenants set status = 'deleted', deleted_at = now(), updated_at = now()
         where id = $1 and status <> 'deleted'
         returning {COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(AppError::not_found)?;
    let entry = AuditEntry::new(Some(caller.actor()), "tenant.deleted", client)
        .target("tenant", id)
        .metadata(json!({"slug": tenant.slug, "name": tenant.name, "plan": tenant.plan}));
    audit::record_platform(&mut tx, id, entry).await?;
    tx.commit().await?;
    Ok(tenant)
}
