//! The use cases of `/api/v1/roles`: each opens the transaction, locks the role, asks the
//! owner-model policy, writes, audits, emits the webhook, commits and publishes the
//! invalidation (a role's grants are what its users and keys may do).

use serde_json::json;
use uuid::Uuid;

use crate::{
    auth::{
        granted::Granted,
        invalidation::{Change, Invalidations},
        principal::TenantPrincipal,
    },
    client_address::ClientInfo,
    db::TenantTx,
    error::AppResult,
    rbac::{Grant, PermissionSet, needs, owner_model},
    services::{
        audit::{self, AuditEntry},
        roles::{self, Role},
        webhooks::{self, EventType},
    },
};

/// Creates a custom role with `grants`, all within the caller's own permissions.
pub async fn create(
    invalidations: &Invalidations,
    principal: &Granted<needs::RolesManage>,
    client: &ClientInfo,
    name: &str,
    description: Option<&str>,
    grants: &[Grant],
) -> AppResult<Role> {
    let grants = owner_model::grant(
        &principal.authority(),
        PermissionSet::new(grants.iter().cloned()),
    )?;
    let mut tx = principal.scope.begin().await?;
    let role = roles::create(&mut tx, name, description, grants).await?;
    audit_role(&mut tx, principal, client, "role.created", &role).await?;
    invalidations
        .commit(tx, Change::Tenant(principal.tenant_id()))
        .await?;
    Ok(role)
}

/// Renames or re-describes a custom role.
pub async fn update(
    invalidations: &Invalidations,
    principal: &Granted<needs::RolesManage>,
    client: &ClientInfo,
    id: Uuid,
    name: Option<&str>,
    description: Option<&str>,
) -> AppResult<Role> {
    let mut tx = principal.scope.begin().await?;
    let cleared =
        owner_model::update_role(&principal.authority(), &roles::target(&mut tx, id).await?)?;
    let role = roles::update(&mut tx, cleared, name, description).await?;
    audit_role(&mut tx, principal, client, "role.updated", &role).await?;
    invalidations
        .commit(tx, Change::Tenant(principal.tenant_id()))
        .await?;
    Ok(role)
}

/// Deletes a custom role; its users lose its permissions.
pub async fn delete(
    invalidations: &Invalidations,
    principal: &Granted<needs::RolesManage>,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<()> {
    let mut tx = principal.scope.begin().await?;
    let cleared =
        owner_model::delete_role(&principal.authority(), &roles::target(&mut tx, id).await?)?;
    // The row is locked by `target`: read in the same transaction.
    let role = roles::get(&mut tx, id).await?;
    roles::delete(&mut tx, cleared).await?;
    audit_role(&mut tx, principal, client, "role.deleted", &role).await?;
    invalidations
        .commit(tx, Change::Tenant(principal.tenant_id()))
        .await?;
    Ok(())
}

/// Grants `grant` (within the caller's own permissions) to a custom role.
pub async fn add_permission(
    invalidations: &Invalidations,
    principal: &Granted<needs::RolesManage>,
    client: &ClientInfo,
    id: Uuid,
    grant: Grant,
) -> AppResult<Role> {
    let mut tx = principal.scope.begin().await?;
    let authority = principal.authority();
    let cleared = owner_model::update_role(&authority, &roles::target(&mut tx, id).await?)?;
    let granted = owner_model::grant(&authority, PermissionSet::new([grant]))?;
    let role = roles::add_permission(&mut tx, cleared, granted).await?;
    audit_role(&mut tx, principal, client, "role.permission_added", &role).await?;
    invalidations
        .commit(tx, Change::Tenant(principal.tenant_id()))
        .await?;
    Ok(role)
}

/// Takes `grant` from a custom role.
pub async fn remove_permission(
    invalidations: &Invalidations,
    principal: &Granted<needs::RolesManage>,
    client: &ClientInfo,
    id: Uuid,
    grant: &Grant,
) -> AppResult<Role> {
    let mut tx = principal.scope.begin().await?;
    let cleared =
        owner_model::update_role(&principal.authority(), &roles::target(&mut tx, id).await?)?;
    let role = roles::remove_permission(&mut tx, cleared, grant).await?;
    audit_role(&mut tx, principal, client, "role.permission_removed", &role).await?;
    invalidations
        .commit(tx, Change::Tenant(principal.tenant_id()))
        .await?;
    Ok(role)
}

/// Records a role event, and its webhook, in the transaction that made it.
async fn audit_role(
    tx: &mut TenantTx,
    principal: &TenantPrincipal,
    client: &ClientInfo,
    action: &'static str,
    role: &Role,
) -> AppResult<()> {
    let entry = AuditEntry::new(Some(principal.actor), action, client)
        .target("role", role.id)
        .metadata(json!({"name": role.name, "permissions": role.permissions}));
    audit::record_in(tx, entry).await?;
    let event = match action {
        "role.created" => EventType::RoleCreated,
        "role.deleted" => EventType::RoleDeleted,
        // permission_added, permission_removed, updated
        _ => EventType::RoleUpdated,
    };
    webhooks::emit(tx, event, role).await?;
    Ok(())
}
