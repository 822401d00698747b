//! Roles inside a tenant: the seeded system roles, custom roles and their grants.

pub mod manage;

use uuid::Uuid;

use crate::{
    db::{TenantConn, TenantScope, TenantTx},
    error::{AppError, AppResult, ErrorCode, on_unique},
    rbac::{
        Grant, PermissionSet,
        owner_model::{Cleared, RoleTarget, act},
        roles::SYSTEM_ROLES,
    },
};

/// The id and grants of the role `name`; `None` when there is no such role.
pub async fn find_by_name(
    scope: &TenantScope,
    name: &str,
) -> sqlx::Result<Option<(Uuid, Vec<String>)>> {
    sqlx::query_as(scope.sql(
        "select r.id, array(select permission from {schema}.role_permissions where role_id = r.id)
         from {schema}.roles r where r.name = $1",
    ))
    .bind(name)
    .fetch_optional(scope.db())
    .await
}

/// The name and grants of the role `id`; `None` when there is no such role.
pub async fn name_and_grants(
    scope: &TenantScope,
    id: Uuid,
) -> sqlx::Result<Option<(String, Vec<String>)>> {
    sqlx::query_as(scope.sql(
        "select r.name, array(select permission from {schema}.role_permissions where role_id = r.id)
         from {schema}.roles r where r.id = $1",
    ))
    .bind(id)
    .fetch_optional(scope.db())
    .await
}

/// The grants of several roles together.
pub async fn grants_of_all(tx: &mut TenantTx, role_ids: &[Uuid]) -> sqlx::Result<Vec<String>> {
    let sql =
        tx.sql("select distinct permission from {schema}.role_permissions where role_id = any($1)");
    sqlx::query_scalar(sql)
        .bind(role_ids)
        .fetch_all(tx.conn())
        .await
}

/// Seeds the system roles of a new tenant (inside the onboarding transaction); returns
/// the role ids by name.
pub async fn seed_system_roles(tx: &mut TenantTx) -> sqlx::Result<Vec<(&'static str, Uuid)>> {
    let roles: Vec<(&'static str, Uuid)> = SYSTEM_ROLES
        .iter()
        .map(|r| (r.name, Uuid::now_v7()))
        .collect();
    let ids: Vec<Uuid> = roles.iter().map(|(_, id)| *id).collect();
    let names: Vec<&str> = roles.iter().map(|(name, _)| *name).collect();
    let descriptions: Vec<&str> = SYSTEM_ROLES.iter().map(|r| r.description).collect();
    let sql = tx.sql(
        "insert into {schema}.roles (id, name, description, is_system)
         select id, name, description, true
         from unnest($1::uuid[], $2::text[], $3::text[]) as r(id, name, description)",
    );
    sqlx::query(sql)
        .bind(&ids)
        .bind(&names)
        .bind(&descriptions)
        .execute(tx.conn())
        .await?;

    let mut role_ids = Vec::new();
    let mut grants = Vec::new();
    for (role, (_, id)) in SYSTEM_ROLES.iter().zip(&roles) {
        for grant in role.grants() {
            role_ids.push(*id);
            grants.push(grant.to_string());
        }
    }
    let sql = tx.sql(
        "insert into {schema}.role_permissions (role_id, permission)
         select * from unnest($1::uuid[], $2::text[])",
    );
    sqlx::query(sql)
        .bind(&role_ids)
        .bind(&grants)
        .execute(tx.conn())
        .await?;
    Ok(roles)
}

/// Role ids for `names`; the names that match no role are the error.
pub async fn resolve(
    tx: &mut TenantTx,
    names: &[String],
) -> sqlx::Result<Result<Vec<Uuid>, Vec<String>>> {
    let sql = tx.sql("select id, name from {schema}.roles where name = any($1)");
    let found: Vec<(Uuid, String)> = sqlx::query_as(sql).bind(names).fetch_all(tx.conn()).await?;
    let missing: Vec<String> = names
        .iter()
        .filter(|n| !found.iter().any(|(_, f)| f == *n))
        .cloned()
        .collect();
    Ok(if missing.is_empty() {
        Ok(found.into_iter().map(|(id, _)| id).collect())
    } else {
        Err(missing)
    })
}

/// A role as the API shows it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Role {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// System roles are seeded in every tenant and cannot be changed.
    pub is_system: bool,
    /// Grants: `resource:action`, `resource:*` or `*`.
    pub permissions: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

const SELECT: &str = "select r.id, r.name, r.description, r.is_system, r.created_at, r.updated_at,
        array(select permission from {schema}.role_permissions
              where role_id = r.id order by permission) as permissions
    from {schema}.roles r";

pub use crate::domain::RoleName;

pub async fn list(
    scope: &TenantScope,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Role>> {
    sqlx::query_as(scope.sql_parts(&[
        SELECT,
        " where ($1::uuid is null or r.id < $1) order by r.id desc limit $2",
    ]))
    .bind(before)
    .bind(limit)
    .fetch_all(scope.db())
    .await
}

/// One role, inside a transaction (`&mut TenantTx`) or not (`scope.acquire()`).
pub async fn get(db: &mut impl TenantConn, id: Uuid) -> AppResult<Role> {
    let sql = db.sql_parts(&[SELECT, " where r.id = $1"]);
    sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(db.conn())
        .await?
        .ok_or_else(AppError::not_found)
}

/// Locks a role for change and gathers what the policy needs to know about it; 404 when
/// there is no such role in the tenant.
pub async fn target(tx: &mut TenantTx, id: Uuid) -> AppResult<RoleTarget> {
    let sql = tx.sql(
        "select r.is_system,
            array(select permission from {schema}.role_permissions where role_id = r.id)
         from {schema}.roles r where r.id = $1 for update",
    );
    let (is_system, grants): (bool, Vec<String>) = sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(AppError::not_found)?;
    let live_keys: i64 = sqlx::query_scalar(
        "select count(*) from platform.api_keys
         where tenant_id = $1 and role_id = $2 and revoked_at is null",
    )
    .bind(tx.tenant_id())
    .bind(id)
    .fetch_one(tx.conn())
    .await?;
    Ok(RoleTarget {
        id,
        permissions: PermissionSet::from_stored(grants),
        is_system,
        live_keys,
    })
}

fn name_taken() -> AppError {
    AppError::new(ErrorCode::Conflict, "a role with this name already exists")
}

/// Creates a custom role with the grants the policy cleared.
pub async fn create(
    tx: &mut TenantTx,
    name: &str,
    description: Option<&str>,
    grants: Cleared<act::Grant, PermissionSet>,
) -> AppResult<Role> {
    let id = Uuid::now_v7();
    let sql = tx.sql("insert into {schema}.roles (id, name, description) values ($1, $2, $3)");
    sqlx::query(sql)
        .bind(id)
        .bind(name)
        .bind(description)
        .execute(tx.conn())
        .await
        .map_err(on_unique("roles_name_key", name_taken))?;
    set_grants(tx, id, grants.grants()).await?;
    get(tx, id).await
}

async fn set_grants(tx: &mut TenantTx, id: Uuid, grants: &PermissionSet) -> sqlx::Result<()> {
    let strings: Vec<String> = grants.grants().map(ToString::to_string).collect();
    let sql = tx.sql(
        "insert into {schema}.role_permissions (role_id, permission)
         select $1, unnest($2::text[]) on conflict do nothing",
    );
    sqlx::query(sql)
        .bind(id)
        .bind(strings)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Renames or re-describes a custom role. API keys reference the role by id, so they
/// keep it; their displayed role name follows.
pub async fn update(
    tx: &mut TenantTx,
    cleared: Cleared<act::UpdateRole>,
    name: Option<&str>,
    description: Option<&str>,
) -> AppResult<Role> {
    let id = cleared.target();
    let sql = tx.sql(
        "update {schema}.roles set name = coalesce($2, name),
            description = coalesce($3, description), updated_at = now()
         where id = $1",
    );
    sqlx::query(sql)
        .bind(id)
        .bind(name)
        .bind(description)
        .execute(tx.conn())
        .await
        .map_err(on_unique("roles_name_key", name_taken))?;
    if let Some(name) = name {
        sqlx::query("update platform.api_keys set role = $3 where tenant_id = $1 and role_id = $2")
            .bind(tx.tenant_id())
            .bind(id)
            .bind(name)
            .execute(tx.conn())
            .await?;
    }
    get(tx, id).await
}

/// Deletes a custom role no live API key uses; users lose it.
pub async fn delete(tx: &mut TenantTx, cleared: Cleared<act::DeleteRole>) -> AppResult<()> {
    let sql = tx.sql("delete from {schema}.roles where id = $1");
    sqlx::query(sql)
        .bind(cleared.target())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Adds the grants cleared as within the actor's own to a role cleared for change.
pub async fn add_permission(
    tx: &mut TenantTx,
    cleared: Cleared<act::UpdateRole>,
    granted: Cleared<act::Grant, PermissionSet>,
) -> AppResult<Role> {
    set_grants(tx, cleared.target(), granted.grants()).await?;
    get(tx, cleared.target()).await
}

pub async fn remove_permission(
    tx: &mut TenantTx,
    cleared: Cleared<act::UpdateRole>,
    grant: &Grant,
) -> AppResult<Role> {
    let sql =
        tx.sql("delete from {schema}.role_permissions where role_id = $1 and permission = $2");
    sqlx::query(sql)
        .bind(cleared.target())
        .bind(grant.to_string())
        .execute(tx.conn())
        .await?;
    get(tx, cleared.target()).await
}
