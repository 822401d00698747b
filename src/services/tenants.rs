//! Tenants: the `platform.tenants` rows, their lifecycle and the purge of deleted ones.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgExecutor, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    db::TenantSchema,
    error::{AppError, AppResult, FieldError},
};

/// A customer organisation.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    /// `free`, `standard` or `premium`.
    pub plan: String,
    /// `provisioning`, `active`, `suspended` or `deleted`.
    pub status: String,
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Tenant {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }

    /// Whether and who may register themselves (`settings.self_registration`); off
    /// unless the tenant opted in.
    pub fn self_registration(&self) -> SelfRegistration {
        self.settings
            .get("self_registration")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }
}

/// A tenant's self-registration setting: `{enabled, allowed_email_domains?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SelfRegistration {
    #[serde(default)]
    pub enabled: bool,
    /// When set, only addresses at these domains may register.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_email_domains: Option<Vec<String>>,
}

impl SelfRegistration {
    /// Whether `email` (already normalised to lowercase) may register.
    pub fn admits(&self, email: &str) -> bool {
        let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
        self.enabled
            && self.allowed_email_domains.as_ref().is_none_or(|allowed| {
                allowed
                    .iter()
                    .any(|a| a.trim().eq_ignore_ascii_case(domain))
            })
    }
}

/// A plan, which sets limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Free,
    Standard,
    Premium,
}

impl Plan {
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Standard => "standard",
            Plan::Premium => "premium",
        }
    }

    /// Capacity bounds of the autoscaling policy: free 1–2, standard 1–10, premium 2–50.
    pub fn capacity_bounds(self) -> (i32, i32) {
        match self {
            Plan::Free => (1, 2),
            Plan::Standard => (1, 10),
            Plan::Premium => (2, 50),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Plan {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "free" => Ok(Plan::Free),
            "standard" => Ok(Plan::Standard),
            "premium" => Ok(Plan::Premium),
            _ => Err(()),
        }
    }
}

/// A tenant slug: `^[a-z][a-z0-9-]{2,39}$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSlug(String);

impl TenantSlug {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let ok = raw.len() >= 3
            && raw.len() <= 40
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(
                "slug",
                "must match ^[a-z][a-z0-9-]{2,39}$ (3 to 40 lowercase letters, digits, dashes)",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const COLUMNS: &str = "id, name, slug, plan, status, settings, created_at, updated_at, deleted_at";

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Tenant>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from platform.tenants where id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Finds a tenant by slug, or by id when `key` is a UUID.
pub async fn find_by_key(db: &PgPool, key: &str) -> sqlx::Result<Option<Tenant>> {
    if let Ok(id) = Uuid::parse_str(key) {
        return find(db, id).await;
    }
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from platform.tenants where slug = $1"
    )))
    .bind(key.to_ascii_lowercase())
    .fetch_optional(db)
    .await
}

/// Filters of the operators' tenant list.
#[derive(Debug, Default)]
pub struct TenantFilter {
    pub status: Option<String>,
    pub plan: Option<String>,
}

/// Newest first, keyset-paginated on the (time-ordered) id.
pub async fn list(
    db: &PgPool,
    filter: &TenantFilter,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Tenant>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from platform.tenants
         where ($1::text is null or status = $1)
           and ($2::text is null or plan = $2)
           and ($3::uuid is null or id < $3)
         order by id desc limit $4"
    )))
    .bind(&filter.status)
    .bind(&filter.plan)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Changes to a tenant; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct TenantChanges {
    pub name: Option<String>,
    pub settings: Option<serde_json::Value>,
    pub plan: Option<Plan>,
}

pub async fn update(db: &PgPool, id: Uuid, changes: &TenantChanges) -> AppResult<Tenant> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update platform.tenants set
            name = coalesce($2, name),
            settings = coalesce($3, settings),
            plan = coalesce($4, plan),
            updated_at = now()
         where id = $1 and status <> 'deleted'
         returning {COLUMNS}"
    )))
    .bind(id)
    .bind(&changes.name)
    .bind(&changes.settings)
    .bind(changes.plan.map(Plan::as_str))
    .fetch_optional(db)
    .await?
    .ok_or_else(AppError::not_found)
}

/// Moves a tenant between `active` and `suspended`; deleted tenants stay deleted.
pub async fn set_status(db: &PgPool, id: Uuid, status: &str) -> AppResult<Tenant> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update platform.tenants set status = $2, updated_at = now()
         where id = $1 and status <> 'deleted'
         returning {COLUMNS}"
    )))
    .bind(id)
    .bind(status)
    .fetch_optional(db)
    .await?
    .ok_or_else(AppError::not_found)
}

/// Marks the tenant deleted at once (its tokens and keys stop working); the schema is
/// purged afterwards by [`purge`].
pub async fn mark_deleted(db: &PgPool, id: Uuid) -> AppResult<Tenant> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update platform.tenants set status = 'deleted', deleted_at = now(), updated_at = now()
         where id = $1 and status <> 'deleted'
         returning {COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or_else(AppError::not_found)
}

/// Tables dropped per transaction while purging, so a tenant with many objects never
/// needs more locks than `max_locks_per_transaction` allows.
const PURGE_BATCH: i64 = 20;

/// Removes a deleted tenant's schema (in batches of tables, then the schema itself) and
/// its rows in shared tables. Safe to run again after an interruption.
pub async fn purge(db: &PgPool, tenant_id: Uuid) -> anyhow::Result<()> {
    // Shared rows first: once the schema is gone, nothing of the tenant remains.
    let mut tx = db.begin().await?;
    for table in [
        "platform.api_keys",
        "platform.tenant_migrations",
        "platform.rate_limit_overrides",
        "platform.scaling_policies",
    ] {
        let sql = format!("delete from {table} where tenant_id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;

    let schema = TenantSchema::for_tenant(tenant_id);
    loop {
        let mut tx = db.begin().await?;
        let tables: Vec<String> = sqlx::query_scalar(
            "select tablename::text from pg_tables where schemaname = $1 order by tablename limit $2",
        )
        .bind(schema.name())
        .bind(PURGE_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if tables.is_empty() {
            break;
        }
        let names: Vec<String> = tables
            .iter()
            .map(|t| format!("{}.{}", schema.quoted(), crate::db::quote_ident(t)))
            .collect();
        let drop = format!("drop table if exists {} cascade", names.join(", "));
        sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    let drop = format!("drop schema if exists {} cascade", schema.quoted());
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(db).await?;
    tracing::info!(%tenant_id, "tenant purged");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_registration_is_off_unless_enabled_and_limited_to_allowed_domains() {
        let off = SelfRegistration::default();
        assert!(!off.admits("a@example.com"));
        let open = SelfRegistration {
            enabled: true,
            allowed_email_domains: None,
        };
        assert!(open.admits("a@example.com"));
        let limited = SelfRegistration {
            enabled: true,
            allowed_email_domains: Some(vec!["Acme.com".into()]),
        };
        assert!(limited.admits("a@acme.com"));
        assert!(!limited.admits("a@evil.com"));
        assert!(!limited.admits("a@acme.com.evil.com"));
    }

    #[test]
    fn slugs_follow_the_rule() {
        for ok in ["acme", "a-1", "abc", &"a".repeat(40)] {
            assert!(TenantSlug::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "1abc",
            "Acme",
            "ac_me",
            "-abc",
            &"a".repeat(41),
            "acmé",
        ] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad}");
        }
    }
}
