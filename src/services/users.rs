//! Users of a tenant: accounts, their roles, activation.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::password::Password,
    db::{TenantScope, TenantTx},
    error::{AppError, AppResult, ErrorCode, FieldError, on_unique},
    rbac::PermissionSet,
    services::roles,
};

/// An email address: trimmed, lowercased, `local@domain.tld`, at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= 254
            && !email.chars().any(char::is_whitespace)
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
            });
        if valid {
            Ok(Self(email))
        } else {
            Err(FieldError::new(field, "must be an email address"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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
    pub roles: Vec<String>,
}

/// Inserts a user with its roles inside `tx`. Every role must exist (422 naming the
/// others) and, when `granter` is given, be within the granter's own permissions (403).
pub async fn create(
    tx: &mut TenantTx,
    user: NewUser,
    granter: Option<&PermissionSet>,
) -> AppResult<Uuid> {
    let role_ids = checked_roles(tx, &user.roles, granter).await?;
    let id = Uuid::now_v7();
    let sql = tx.sql(
        "insert into {schema}.users (id, email, password_hash, first_name, last_name)
         values ($1, $2, $3, $4, $5)",
    );
    sqlx::query(sql)
        .bind(id)
        .bind(user.email.as_str())
        .bind(&user.password_hash)
        .bind(&user.first_name)
        .bind(&user.last_name)
        .execute(tx.conn())
        .await
        .map_err(on_unique("users_email_idx", || {
            AppError::new(
                ErrorCode::EmailTaken,
                "a user with this email already exists",
            )
        }))?;
    assign(tx, id, &role_ids).await?;
    Ok(id)
}

/// Role ids for `names`, checked to exist and to be grantable by `granter`.
async fn checked_roles(
    tx: &mut TenantTx,
    names: &[String],
    granter: Option<&PermissionSet>,
) -> AppResult<Vec<Uuid>> {
    let ids = match roles::resolve(tx, names).await? {
        Ok(ids) => ids,
        Err(missing) => {
            return Err(AppError::invalid_field(
                "roles",
                format!("unknown roles: {}", missing.join(", ")),
            ));
        }
    };
    if let Some(granter) = granter {
        let granted = PermissionSet::from_stored(roles::grants_of_all(tx, &ids).await?);
        if !granter.covers_all(&granted) {
            return Err(AppError::forbidden(
                "you cannot grant a role with permissions you do not hold",
            ));
        }
    }
    Ok(ids)
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

/// Replaces a user's roles (checked like [`create`]).
pub async fn set_roles(
    tx: &mut TenantTx,
    user_id: Uuid,
    names: &[String],
    granter: &PermissionSet,
) -> AppResult<()> {
    lock(tx, user_id).await?;
    let ids = checked_roles(tx, names, Some(granter)).await?;
    assign(tx, user_id, &ids).await?;
    Ok(())
}

/// Locks the user row for the rest of the transaction; 404 when there is none.
async fn lock(tx: &mut TenantTx, user_id: Uuid) -> AppResult<()> {
    let sql = tx.sql("select id from {schema}.users where id = $1 for update");
    let found: Option<Uuid> = sqlx::query_scalar(sql)
        .bind(user_id)
        .fetch_optional(tx.conn())
        .await?;
    found.map(|_| ()).ok_or_else(AppError::not_found)
}

pub async fn get(scope: &TenantScope, id: Uuid) -> AppResult<User> {
    let sql = scope.sql_parts(&[SELECT, " where u.id = $1"]);
    sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(scope.db())
        .await?
        .ok_or_else(AppError::not_found)
}

pub async fn get_in(tx: &mut TenantTx, id: Uuid) -> AppResult<User> {
    let sql = tx.sql_parts(&[SELECT, " where u.id = $1"]);
    sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(tx.conn())
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
    pub is_active: Option<bool>,
}

pub async fn update(tx: &mut TenantTx, id: Uuid, changes: &UserChanges) -> AppResult<()> {
    let sql = tx.sql(
        "update {schema}.users set
            first_name = coalesce($2, first_name),
            last_name = coalesce($3, last_name),
            is_active = coalesce($4, is_active),
            updated_at = now()
         where id = $1",
    );
    let done = sqlx::query(sql)
        .bind(id)
        .bind(&changes.first_name)
        .bind(&changes.last_name)
        .bind(changes.is_active)
        .execute(tx.conn())
        .await?;
    if done.rows_affected() == 0 {
        return Err(AppError::not_found());
    }
    Ok(())
}

pub async fn delete(tx: &mut TenantTx, id: Uuid) -> AppResult<()> {
    let sql = tx.sql("delete from {schema}.users where id = $1");
    let done = sqlx::query(sql).bind(id).execute(tx.conn()).await?;
    if done.rows_affected() == 0 {
        return Err(AppError::not_found());
    }
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

/// The login view of a user: id, password hash and whether the account is active.
pub async fn credentials(
    scope: &TenantScope,
    email: &str,
) -> sqlx::Result<Option<(Uuid, String, bool)>> {
    sqlx::query_as(scope.sql(
        "select id, password_hash, is_active from {schema}.users where lower(email) = lower($1)",
    ))
    .bind(email)
    .fetch_optional(scope.db())
    .await
}

/// Checks a new password against the rules (422 naming `field`).
pub fn password(field: &str, raw: String) -> Result<Password, FieldError> {
    Password::parse(raw).map_err(|why| FieldError::new(field, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("email", " Alice@Example.COM ").map(|e| e.0),
            Ok("alice@example.com".to_owned())
        );
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "a b@c.d",
            "a@.com",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad}");
        }
    }
}
