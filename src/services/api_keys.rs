//! API keys: machine credentials of a tenant, stored in the shared schema so the key
//! alone finds its tenant. Only a SHA-256 of each key is kept.

pub mod manage;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::api_key,
    db::{TenantScope, TenantTx},
    error::{AppError, AppResult},
    rbac::{
        Grant, PermissionSet,
        owner_model::{Cleared, Grants, KeyTarget, act},
    },
    services::roles,
};

/// An API key as listings show it (never the key itself).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// The role whose permissions the key has, or
    pub role: Option<String>,
    /// the explicit permissions it has.
    #[sqlx(rename = "scopes")]
    pub permissions: Option<Vec<String>>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, name, prefix, role, scopes, created_by, created_at, last_used_at,
    expires_at, revoked_at";

/// What a new key may do: a role (by name, bound by id) or explicit permissions.
#[derive(Debug, Clone)]
pub enum KeyAccess {
    Role(String),
    Permissions(Vec<Grant>),
}

/// A new key's access, resolved: the role it is bound to, or its scopes, and what it
/// grants (for the policy's grant check).
#[derive(Debug, Clone)]
pub struct ResolvedAccess {
    role: Option<(Uuid, String)>,
    scopes: Option<Vec<String>>,
    pub grants: PermissionSet,
}

impl Grants for ResolvedAccess {
    fn permissions(&self) -> &PermissionSet {
        &self.grants
    }
}

/// Resolves a role name to its id and grants (422 for an unknown role).
pub async fn resolve(scope: &TenantScope, access: KeyAccess) -> AppResult<ResolvedAccess> {
    Ok(match access {
        KeyAccess::Role(role) => {
            let (id, grants) = roles::find_by_name(scope, &role)
                .await?
                .ok_or_else(|| AppError::invalid_field("role", format!("unknown role {role:?}")))?;
            ResolvedAccess {
                role: Some((id, role)),
                scopes: None,
                grants: PermissionSet::from_stored(grants),
            }
        }
        KeyAccess::Permissions(grants) => ResolvedAccess {
            role: None,
            scopes: Some(grants.iter().map(ToString::to_string).collect()),
            grants: PermissionSet::new(grants),
        },
    })
}

/// Mints a key for the tenant inside `tx` (whose audit entry commits with it), with the
/// access the policy cleared.
pub async fn create(
    tx: &mut TenantTx,
    created_by: Uuid,
    env: &str,
    name: &str,
    access: Cleared<act::Grant, ResolvedAccess>,
    expires_at: Option<DateTime<Utc>>,
) -> AppResult<(ApiKey, String)> {
    let key = api_key::generate(env);
    let access = access.into_grants();
    let (role_id, role) = access.role.unzip();
    let created = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into platform.api_keys
            (id, tenant_id, name, prefix, key_hash, role_id, role, scopes, created_by, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         returning {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(tx.tenant_id())
    .bind(name)
    .bind(&key.prefix)
    .bind(&key.hash)
    .bind(role_id)
    .bind(role)
    .bind(access.scopes)
    .bind(created_by)
    .bind(expires_at)
    .fetch_one(tx.conn())
    .await?;
    Ok((created, key.plaintext))
}

/// The tenant's keys, newest first.
pub async fn list(
    db: &PgPool,
    tenant_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<ApiKey>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from platform.api_keys
         where tenant_id = $1 and ($2::uuid is null or id < $2)
         order by id desc limit $3"
    )))
    .bind(tenant_id)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Locks a key of the tenant for change and gathers what the policy needs: what the
/// key may do. Another tenant's key is 404, like one that does not exist.
pub async fn target(tx: &mut TenantTx, id: Uuid) -> AppResult<KeyTarget> {
    let row: Option<(Option<Uuid>, Option<Vec<String>>)> = sqlx::query_as(
        "select role_id, scopes from platform.api_keys
         where id = $1 and tenant_id = $2 for update",
    )
    .bind(id)
    .bind(tx.tenant_id())
    .fetch_optional(tx.conn())
    .await?;
    let (role_id, scopes) = row.ok_or_else(AppError::not_found)?;
    let grants = match role_id {
        Some(role_id) => {
            let sql = tx.sql("select permission from {schema}.role_permissions where role_id = $1");
            sqlx::query_scalar(sql)
                .bind(role_id)
                .fetch_all(tx.conn())
                .await?
        }
        None => scopes.unwrap_or_default(),
    };
    Ok(KeyTarget {
        id,
        permissions: PermissionSet::from_stored(grants),
    })
}

/// Revokes a key; revoking twice is fine.
pub async fn revoke(tx: &mut TenantTx, cleared: Cleared<act::RevokeKey>) -> AppResult<ApiKey> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update platform.api_keys set revoked_at = coalesce(revoked_at, now())
         where id = $1 and tenant_id = $2 returning {COLUMNS}"
    )))
    .bind(cleared.target())
    .bind(tx.tenant_id())
    .fetch_one(tx.conn())
    .await?)
}

/// Replaces the secret of a live key: the old key stops working, the new one is shown
/// once. A revoked key is 404.
pub async fn rotate(
    tx: &mut TenantTx,
    cleared: Cleared<act::RotateKey>,
    env: &str,
) -> AppResult<(ApiKey, String)> {
    let key = api_key::generate(env);
    let rotated: ApiKey = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update platform.api_keys set key_hash = $3, prefix = $4
         where id = $1 and tenant_id = $2 and revoked_at is null
         returning {COLUMNS}"
    )))
    .bind(cleared.target())
    .bind(tx.tenant_id())
    .bind(&key.hash)
    .bind(&key.prefix)
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(AppError::not_found)?;
    Ok((rotated, key.plaintext))
}
