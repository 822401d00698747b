//! Resources: the tenant's own data, the example business object. Every change bumps
//! `version`, which is the `ETag`; writes with a stale `If-Match` are refused.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::granted::Granted,
    db::TenantScope,
    error::{AppError, AppResult, ErrorCode},
    rbac::needs,
};

/// The largest `data` object accepted, serialised (checked on the request types).
pub const MAX_DATA_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct Resource {
    pub id: Uuid,
    pub name: String,
    /// Passed through as the JSON text PostgreSQL gives, never parsed into a tree: a list
    /// page of 100 × 64 KiB of small values would be over 100 MiB of `Value`s.
    #[schema(value_type = Object)]
    pub data: sqlx::types::Json<Box<serde_json::value::RawValue>>,
    pub owner_id: Option<Uuid>,
    /// Starts at 1, grows with every change; the `ETag` is `"<version>"`.
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Creates a resource owned by the caller.
pub async fn create(
    caller: &Granted<needs::ResourcesCreate>,
    name: &str,
    data: &serde_json::Value,
) -> AppResult<Resource> {
    let scope = &caller.scope;
    Ok(sqlx::query_as(scope.sql(
        "insert into {schema}.resources (id, name, data, owner_id) values ($1, $2, $3, $4)
         returning id, name, data, owner_id, version, created_at, updated_at",
    ))
    .bind(Uuid::now_v7())
    .bind(name.trim())
    .bind(data)
    .bind(caller.actor.id())
    .fetch_one(scope.db())
    .await?)
}

pub async fn get(scope: &TenantScope, id: Uuid) -> AppResult<Resource> {
    sqlx::query_as(scope.sql(
        "select id, name, data, owner_id, version, created_at, updated_at
         from {schema}.resources where id = $1",
    ))
    .bind(id)
    .fetch_optional(scope.db())
    .await?
    .ok_or_else(AppError::not_found)
}

/// The most `data` one list page carries (its JSON text): a page ends at the row that
/// would pass it (always one row at least), so 100 rows of 64 KiB are not one answer.
pub const PAGE_DATA_BYTES: i64 = 1024 * 1024;

#[derive(sqlx::FromRow)]
struct Listed {
    #[sqlx(flatten)]
    resource: Resource,
    /// `data` bytes of this row and the newer ones of the page.
    running: i64,
}

/// Newest first, keyset-paginated: rows inserted while a client pages through are
/// newer than its cursor, so no row is seen twice. At most `limit` rows and
/// [`PAGE_DATA_BYTES`] of `data`; returns the rows fetched (one more than the page when
/// another follows) and how many of them make the page.
pub async fn list(
    scope: &TenantScope,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<(Vec<Resource>, i64)> {
    let rows: Vec<Listed> = sqlx::query_as(scope.sql(
        "select id, name, data, owner_id, version, created_at, updated_at, running
         from (select id, name, data, owner_id, version, created_at, updated_at,
                      octet_length(data::text) as size,
                      sum(octet_length(data::text)) over (order by id desc)::bigint as running
               from {schema}.resources where ($1::uuid is null or id < $1)
               order by id desc limit $2) page
         where running - size < $3
         order by id desc",
    ))
    .bind(before)
    .bind(limit + 1)
    .bind(PAGE_DATA_BYTES)
    .fetch_all(scope.db())
    .await?;
    let within = rows
        .iter()
        .take_while(|r| r.running <= PAGE_DATA_BYTES)
        .count();
    let page = i64::try_from(within.max(1)).unwrap_or(1).min(limit);
    Ok((rows.into_iter().map(|r| r.resource).collect(), page))
}

fn stale() -> AppError {
    AppError::new(
        ErrorCode::PreconditionFailed,
        "the resource changed since that version (If-Match)",
    )
}

/// Writes `name` and/or `data` when the stored version is `expected` (or always when
/// `None`). A missing row is 404, a version mismatch 412.
pub async fn update(
    caller: &Granted<needs::ResourcesUpdate>,
    id: Uuid,
    name: Option<&str>,
    data: Option<&serde_json::Value>,
    expected: Option<i32>,
) -> AppResult<Resource> {
    let scope = &caller.scope;
    let updated: Option<Resource> = sqlx::query_as(scope.sql(
        "update {schema}.resources set
            name = coalesce($2, name), data = coalesce($3, data),
            version = version + 1, updated_at = now()
         where id = $1 and ($4::int is null or version = $4)
         returning id, name, data, owner_id, version, created_at, updated_at",
    ))
    .bind(id)
    .bind(name.map(str::trim))
    .bind(data)
    .bind(expected)
    .fetch_optional(scope.db())
    .await?;
    match updated {
        Some(resource) => Ok(resource),
        None => Err(missing_or_stale(scope, id).await),
    }
}

pub async fn delete(
    caller: &Granted<needs::ResourcesDelete>,
    id: Uuid,
    expected: Option<i32>,
) -> AppResult<()> {
    let scope = &caller.scope;
    let deleted: Option<Uuid> = sqlx::query_scalar(scope.sql(
        "delete from {schema}.resources where id = $1 and ($2::int is null or version = $2)
         returning id",
    ))
    .bind(id)
    .bind(expected)
    .fetch_optional(scope.db())
    .await?;
    match deleted {
        Some(_) => Ok(()),
        None => Err(missing_or_stale(scope, id).await),
    }
}

async fn missing_or_stale(scope: &TenantScope, id: Uuid) -> AppError {
    match get(scope, id).await {
        Ok(_) => stale(),
        Err(e) => e,
    }
}
