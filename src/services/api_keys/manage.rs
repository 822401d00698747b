//! The use cases of `/api/v1/api-keys`: each opens the transaction, asks the owner-model
//! policy, writes, audits, emits the webhook and commits; revoking and rotating also
//! publish the invalidation, so the old secret stops working everywhere.

use chrono::{DateTime, Utc};
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
    rbac::{needs, owner_model},
    services::{
        api_keys::{self, ApiKey, KeyAccess},
        audit::{self, AuditEntry},
        webhooks::{self, EventType},
    },
};

/// Mints a key whose access cannot exceed the caller's; returns it with its plaintext
/// (shown once).
pub async fn create(
    key_env: &str,
    principal: &Granted<needs::ApiKeysManage>,
    client: &ClientInfo,
    name: &str,
    access: KeyAccess,
    expires_at: Option<DateTime<Utc>>,
) -> AppResult<(ApiKey, String)> {
    let access = owner_model::grant(
        &principal.authority(),
        api_keys::resolve(&principal.scope, access).await?,
    )?;
    let mut tx = principal.scope.begin().await?;
    let (api_key, key) = api_keys::create(
        &mut tx,
        principal.actor.id(),
        key_env,
        name,
        access,
        expires_at,
    )
    .await?;
    audit_key(&mut tx, principal, client, "api_key.created", &api_key).await?;
    tx.commit().await?;
    Ok((api_key, key))
}

/// Revokes a key: it stops working at once on this replica, within 30 s everywhere.
pub async fn revoke(
    invalidations: &Invalidations,
    principal: &Granted<needs::ApiKeysManage>,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<()> {
    let mut tx = principal.scope.begin().await?;
    let cleared = owner_model::revoke_key(
        &principal.authority(),
        &api_keys::target(&mut tx, id).await?,
    )?;
    let api_key = api_keys::revoke(&mut tx, cleared).await?;
    audit_key(&mut tx, principal, client, "api_key.revoked", &api_key).await?;
    invalidations.commit(tx, Change::ApiKey(id)).await?;
    Ok(())
}

/// Replaces a live key's secret; returns it with the new plaintext (shown once).
pub async fn rotate(
    invalidations: &Invalidations,
    key_env: &str,
    principal: &Granted<needs::ApiKeysManage>,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<(ApiKey, String)> {
    let mut tx = principal.scope.begin().await?;
    let cleared = owner_model::rotate_key(
        &principal.authority(),
        &api_keys::target(&mut tx, id).await?,
    )?;
    let (api_key, key) = api_keys::rotate(&mut tx, cleared, key_env).await?;
    audit_key(&mut tx, principal, client, "api_key.rotated", &api_key).await?;
    invalidations.commit(tx, Change::ApiKey(id)).await?;
    Ok((api_key, key))
}

/// Records a key event, and its webhook, in the transaction that made it.
async fn audit_key(
    tx: &mut TenantTx,
    principal: &TenantPrincipal,
    client: &ClientInfo,
    action: &'static str,
    key: &ApiKey,
) -> AppResult<()> {
    let entry = AuditEntry::new(Some(principal.actor), action, client)
        .target("api_key", key.id)
        .metadata(json!({"name": key.name, "prefix": key.prefix, "role": key.role, "permissions": key.permissions}));
    audit::record_in(tx, entry).await?;
    let event = match action {
        "api_key.created" => EventType::ApiKeyCreated,
        "api_key.rotated" => EventType::ApiKeyRotated,
        _ => EventType::ApiKeyRevoked,
    };
    webhooks::emit(tx, event, key).await?;
    Ok(())
}
