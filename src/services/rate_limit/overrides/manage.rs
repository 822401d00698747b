//! The use cases of `/api/v1/tenants/{id}/rate-limit` (platform operators): each writes
//! the override and its audit entry in one transaction, applies it on this replica and
//! publishes the invalidation for the others.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::{Override, remove_override, set_override};
use crate::{
    auth::{invalidation::Invalidations, principal::Actor},
    client_address::ClientInfo,
    db::TenantScope,
    error::{AppError, AppResult},
    services::audit::{self, AuditEntry},
};

/// Creates or replaces a tenant's override; 404 (nothing written) when the tenant does
/// not exist or is deleted.
pub async fn set(
    db: &PgPool,
    invalidations: &Invalidations,
    actor: Actor,
    client: &ClientInfo,
    tenant: Uuid,
    requests_per_minute: i32,
    burst: i32,
) -> AppResult<Override> {
    let entry = AuditEntry::new(Some(actor), "tenant.rate_limit_overridden", client)
        .target("tenant", tenant)
        .metadata(json!({"requests_per_minute": requests_per_minute, "burst": burst}));
    let mut tx = TenantScope::new(db.clone(), tenant).begin().await?;
    let Some(row) = set_override(tx.conn(), tenant, requests_per_minute, burst).await? else {
        return Err(AppError::not_found());
    };
    audit::record_in(&mut tx, entry).await?;
    tx.commit().await?;
    invalidations.override_changed(tenant, Some(&row)).await;
    Ok(row)
}

/// Removes a tenant's override: its plan's rate applies again. 404 (nothing written)
/// when there was none.
pub async fn remove(
    db: &PgPool,
    invalidations: &Invalidations,
    actor: Actor,
    client: &ClientInfo,
    tenant: Uuid,
) -> AppResult<()> {
    let entry = AuditEntry::new(Some(actor), "tenant.rate_limit_override_removed", client)
        .target("tenant", tenant);
    let mut tx = TenantScope::new(db.clone(), tenant).begin().await?;
    if !remove_override(tx.conn(), tenant).await? {
        return Err(AppError::not_found());
    }
    audit::record_in(&mut tx, entry).await?;
    tx.commit().await?;
    invalidations.override_changed(tenant, None).await;
    Ok(())
}
