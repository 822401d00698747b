//! API keys: machine credentials of a tenant, stored in the shared schema so the key
//! alone finds its tenant. Only a SHA-256 of each key is kept.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::{api_key, principal::TenantPrincipal},
    error::{AppError, AppResult},
    rbac::{Grant, PermissionSet},
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

/// What a new key may do.
#[derive(Debug, Clone)]
pub enum KeyAccess {
    Role(String),
    Permissions(Vec<Grant>),
}

/// Mints a key for the caller's tenant. Its permissions must be within the caller's own
/// (403), and its role must exist (422).
pub async fn create(
    db: &PgPool,
    principal: &TenantPrincipal,
    env: &str,
    name: &str,
    access: KeyAccess,
    expires_at: Option<DateTime<Utc>>,
) -> AppResult<(ApiKey, String)> {
    let (role, scopes, granted) = match access {
        KeyAccess::Role(role) => {
            let grants = roles::grants_of(&principal.scope, &role)
                .await?
                .ok_or_else(|| AppError::invalid_field("role", format!("unknown role {role:?}")))?;
            (Some(role), None, PermissionSet::from_stored(grants))
        }
        KeyAccess::Permissions(grants) => {
            let strings: Vec<String> = grants.iter().map(ToString::to_string).collect();
            (None, Some(strings), PermissionSet::new(grants))
        }
    };
    if !principal.permissions.covers_all(&granted) {
        return Err(AppError::forbidden(
            "an API key cannot have permissions its creator does not hold",
        ));
    }
    let key = api_key::generate(env);
    let created = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into platform.api_keys
            (id, tenant_id, name, prefix, key_hash, role, scopes, created_by, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         returning {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(principal.tenant_id())
    .bind(name)
    .bind(&key.prefix)
    .bind(&key.hash)
    .bind(role)
    .bind(scopes)
    .bind(principal.actor.id())
    .bind(expires_at)
    .fetch_one(db)
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

/// Revokes a key of the tenant; revoking twice is fine, another tenant's key is 404.
pub async fn revoke(db: &PgPool, tenant_id: Uuid, id: Uuid) -> AppResult<()> {
    let found: Option<Uuid> = sqlx::query_scalar(
        "update platform.api_keys set revoked_at = coalesce(revoked_at, now())
         where id = $1 and tenant_id = $2 returning id",
    )
    .bind(id)
    .bind(tenant_id)
    .fetch_optional(db)
    .await?;
    found.map(|_| ()).ok_or_else(AppError::not_found)
}

/// Replaces the secret of a live key: the old key stops working, the new one is shown once.
pub async fn rotate(
    db: &PgPool,
    tenant_id: Uuid,
    id: Uuid,
    env: &str,
) -> AppResult<(ApiKey, String)> {
    let key = api_key::generate(env);
    let rotated: ApiKey = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update platform.api_keys set key_hash = $3, prefix = $4
         where id = $1 and tenant_id = $2 and revoked_at is null
         returning {COLUMNS}"
    )))
    .bind(id)
    .bind(tenant_id)
    .bind(&key.hash)
    .bind(&key.prefix)
    .fetch_optional(db)
    .await?
    .ok_or_else(AppError::not_found)?;
    Ok((rotated, key.plaintext))
}
