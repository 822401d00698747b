//! Users of a tenant: accounts, their roles, activation.

pub mod manage;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::password::Password,
    db::{TenantConn, TenantScope, TenantTx},
    error::{AppError, AppResult, ErrorCode, FieldError, on_unique},
    rbac::{
        PermissionSet,
        owner_model::{Cleared, Grants, UserTarget, act},
        roles::ADMIN,
    },
    services::{roles, sessions},
};

pub use crate::domain::Email;

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email_verified: bool,
    pub is_active: bool,
    /// Role names.
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str = "select u.id, u.email, u.first_name, u.last_name, u.email_verified,
        u.is_active, u.created_at, u.updated_at,
        array(select r.name from {schema}.user_roles ur join {schema}.roles r on r.id = ur.role_id
              where ur.user_id = u.id order by r.name) as roles
    from {schema}.users u";

/// A new account.
#[derive(Debug)]
pub struct NewUser {
    pub email: Email,
    pub password_hash: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Registered by themselves: may not log in before the email is verified.
    pub self_registered: bool,
}

/// Roles looked up by name: their ids, and what they grant together.
#[derive(Debug, Clone)]
pub struct ResolvedRoles {
    pub ids: Vec<Uuid>,
    pub grants: PermissionSet,
    /// The system `admin` role is among them.
    pub has_admin: bool,
}

impl Grants for ResolvedRoles {
    fn permissions(&self) -> &PermissionSet {
        &self.grants
    }
}

/// Looks up roles by name; unknown names answer 422 naming them.
pub async fn resolve_roles(tx: &mut TenantTx, names: &[String]) -> AppResult<ResolvedRoles> {
    let ids = match roles::resolve(tx, names).await? {
        Ok(ids) => ids,
        Err(missing) => {
            return Err(AppError::invalid_field(
                "roles",
                format!("unknown roles: {}", missing.join(", ")),
            ));
        }
    };
    let grants = PermissionSet::from_stored(roles::grants_of_all(tx, &ids).await?);
    Ok(ResolvedRoles {
        ids,
        grants,
        has_admin: names.iter().any(|n| n == ADMIN.name),
    })
}

/// Inserts a user inside `tx` with the roles the policy cleared.
pub async fn create(
    tx: &mut TenantTx,
    user: NewUser,
    roles: Cleared<act::Grant, ResolvedRoles>,
) -> AppResult<Uuid> {
    let id = Uuid::now_v7();
    let sql = tx.sql(
        "insert into {schema}.users
            (id, email, password_hash, first_name, last_name, self_registered)
         values ($1, $2, $3, $4, $5, $6)",
    );
    sqlx::query(sql)
        .bind(id)
        .bind(user.email.as_str())
        .bind(&user.password_hash)
        .bind(&user.first_name)
        .bind(&user.last_name)
        .bind(user.self_registered)
        .execute(tx.conn())
        .await
        .map_err(on_unique("users_email_idx", || {
            AppError::new(
                ErrorCode::EmailTaken,
                "a user with this email already exists",
            )
        }))?;
    assign(tx, id, &roles.grants().ids).await?;
    Ok(id)
}

async fn assign(tx: &mut TenantTx, user_id: Uuid, role_ids: &[Uuid]) -> sqlx::Result<()> {
    let sql = tx.sql("delete from {schema}.user_roles where user_id = $1");
    sqlx::query(sql).bind(user_id).execute(tx.conn()).await?;
    let sql =
        tx.sql("insert into {schema}.user_roles (user_id, role_id) select $1, unnest($2::uuid[])");
    sqlx::query(sql)
        .bind(user_id)
        .bind(role_ids)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Replaces a user's roles with the ones the policy cleared.
pub async fn set_roles(
    tx: &mut TenantTx,
    cleared: Cleared<act::SetUserRoles, (Uuid, ResolvedRoles)>,
) -> AppResult<()> {
    assign(tx, cleared.target(), &cleared.grants().ids).await?;
    Ok(())
}

/// Locks a user for change and gathers what the policy needs to know: their
/// permissions, and whether they are an active admin and how many there are. 404 when
/// there is no such user in the tenant.
///
/// Changes to active admins are serialised per tenant (a transaction-scoped advisory
/// lock), so two admins removing each other at once cannot leave the tenant with none.
pub async fn target(tx: &mut TenantTx, id: Uuid) -> AppResult<UserTarget> {
    let sql = tx.sql(
        "select u.is_active and exists (
                select 1 from {schema}.user_roles ur join {schema}.roles r on r.id = ur.role_id
                where ur.user_id = u.id and r.name = 'admin' and r.is_system),
            array(select distinct rp.permission from {schema}.user_roles ur
                  join {schema}.role_permissions rp on rp.role_id = ur.role_id
                  where ur.user_id = u.id)
         from {schema}.users u where u.id = $1 for update",
    );
    let (is_active_admin, grants): (bool, Vec<String>) = sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(AppError::not_found)?;
    let mut active_admins = 0;
    if is_active_admin {
        sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("{}:admins", tx.tenant_id()))
            .execute(tx.conn())
            .await?;
        let sql = tx.sql(
            "select count(*) from {schema}.users u
             where u.is_active and exists (
                select 1 from {schema}.user_roles ur join {schema}.roles r on r.id = ur.role_id
                where ur.user_id = u.id and r.name = 'admin' and r.is_system)",
        );
        active_admins = sqlx::query_scalar(sql).fetch_one(tx.conn()).await?;
    }
    Ok(UserTarget {
        id,
        permissions: PermissionSet::from_stored(grants),
        is_active_admin,
        active_admins,
    })
}

/// One user, inside a transaction (`&mut TenantTx`) or not (`scope.acquire()`).
pub async fn get(db: &mut impl TenantConn, id: Uuid) -> AppResult<User> {
    let sql = db.sql_parts(&[SELECT, " where u.id = $1"]);
    sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(db.conn())
        .await?
        .ok_or_else(AppError::not_found)
}

/// Newest first, keyset-paginated.
pub async fn list(scope: &TenantScope, before: Option<Uuid>, limit: i64) -> AppResult<Vec<User>> {
    let sql = scope.sql_parts(&[
        SELECT,
        " where ($1::uuid is null or u.id < $1) order by u.id desc limit $2",
    ]);
    Ok(sqlx::query_as(sql)
        .bind(before)
        .bind(limit)
        .fetch_all(scope.db())
        .await?)
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// `Some(true)` reactivates; deactivation is [`deactivate`].
    pub reactivate: bool,
}

pub async fn update(
    tx: &mut TenantTx,
    cleared: Cleared<act::UpdateUser>,
    changes: &UserChanges,
) -> AppResult<()> {
    let sql = tx.sql(
        "update {schema}.users set
            first_name = coalesce($2, first_name),
            last_name = coalesce($3, last_name),
            is_active = is_active or $4,
            updated_at = now()
         where id = $1",
    );
    sqlx::query(sql)
        .bind(cleared.target())
        .bind(&changes.first_name)
        .bind(&changes.last_name)
        .bind(changes.reactivate)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Deactivates a user and ends every session they have (refresh tokens and access
/// tokens alike).
pub async fn deactivate(tx: &mut TenantTx, cleared: Cleared<act::DeactivateUser>) -> AppResult<()> {
    let sql =
        tx.sql("update {schema}.users set is_active = false, updated_at = now() where id = $1");
    sqlx::query(sql)
        .bind(cleared.target())
        .execute(tx.conn())
        .await?;
    sessions::end_all_in(tx, cleared.target()).await?;
    Ok(())
}

pub async fn delete(tx: &mut TenantTx, cleared: Cleared<act::DeleteUser>) -> AppResult<()> {
    let sql = tx.sql("delete from {schema}.users where id = $1");
    sqlx::query(sql)
        .bind(cleared.target())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Stores a new password hash.
pub async fn set_password(tx: &mut TenantTx, id: Uuid, hash: &str) -> sqlx::Result<()> {
    let sql =
        tx.sql("update {schema}.users set password_hash = $2, updated_at = now() where id = $1");
    sqlx::query(sql)
        .bind(id)
        .bind(hash)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The login view of a user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credentials {
    pub id: Uuid,
    /// The address as stored: where mail about the account goes. The lookup matched it
    /// with PostgreSQL's `lower()`, which folds look-alikes (`İ` → `i`) that are other
    /// mailboxes, so the address a request typed is never the one written to.
    pub email: String,
    pub password_hash: String,
    pub is_active: bool,
    /// Self-registered and not yet verified: may not log in.
    pub must_verify_email: bool,
}

pub async fn credentials(scope: &TenantScope, email: &str) -> sqlx::Result<Option<Credentials>> {
    sqlx::query_as(scope.sql(
        "select id, email, password_hash, is_active,
            self_registered and not email_verified as must_verify_email
         from {schema}.users where lower(email) = lower($1)",
    ))
    .bind(email)
    .fetch_optional(scope.db())
    .await
}

/// Checks a new password against the rules (422 naming `field`).
pub fn password(field: &str, raw: String) -> Result<Password, FieldError> {
    Password::parse(raw).map_err(|why| FieldError::new(field, why))
}
