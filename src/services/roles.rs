//! Roles inside a tenant: seeding the system roles and resolving role names.

use uuid::Uuid;

use crate::{
    db::{TenantScope, TenantTx},
    rbac::roles::SYSTEM_ROLES,
};

/// The grants stored for the role `name`; `None` when there is no such role.
pub async fn grants_of(scope: &TenantScope, name: &str) -> sqlx::Result<Option<Vec<String>>> {
    sqlx::query_scalar(scope.sql(
        "select array(select permission from {schema}.role_permissions where role_id = r.id)
         from {schema}.roles r where r.name = $1",
    ))
    .bind(name)
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
