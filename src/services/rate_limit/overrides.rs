//! Per-tenant overrides of the plan's rate (`platform.rate_limit_overrides`), held in
//! memory on every replica so that the request path never queries for them.
//!
//! The replica that changes an override applies it at once; the others reload when the
//! change reaches them on the cache-invalidation channel (`Change::Tenant`), and in any
//! case every [`REFRESH`], which bounds staleness when Redis is down.

use std::{collections::HashMap, sync::RwLock, time::Duration};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
use tokio::sync::Notify;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Rate;

pub mod manage;
pub mod refresh;

/// How often every replica reloads all overrides, whatever it heard.
pub const REFRESH: Duration = Duration::from_secs(20);

/// A tenant's override as stored and shown.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct Override {
    pub tenant_id: Uuid,
    /// Average requests per minute.
    pub requests_per_minute: i32,
    /// Requests accepted at once.
    pub burst: i32,
    pub updated_at: DateTime<Utc>,
}

impl Override {
    fn rate(&self) -> Rate {
        Rate {
            limit: u32::try_from(self.requests_per_minute).unwrap_or(1).max(1),
            window_secs: 60,
            burst: u32::try_from(self.burst).unwrap_or(1).max(1),
        }
    }
}

/// This replica's copy of the overrides.
#[derive(Default)]
pub struct Overrides {
    rates: RwLock<HashMap<Uuid, Rate>>,
    changed: Notify,
}

impl Overrides {
    pub fn get(&self, tenant: Uuid) -> Option<Rate> {
        self.rates
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&tenant)
            .copied()
    }

    /// Applies a change made on this replica at once.
    pub fn apply(&self, tenant: Uuid, row: Option<&Override>) {
        let mut rates = self.rates.write().unwrap_or_else(|e| e.into_inner());
        match row {
            Some(row) => rates.insert(tenant, row.rate()),
            None => rates.remove(&tenant),
        };
    }

    /// Something about a tenant changed (maybe elsewhere): reload soon.
    pub fn changed(&self) {
        self.changed.notify_one();
    }

    /// Replaces the copy with what the database holds.
    pub async fn reload(&self, db: impl PgExecutor<'_>) -> sqlx::Result<usize> {
        let rows: Vec<Override> = sqlx::query_as(
            "select tenant_id, requests_per_minute, burst, updated_at
             from platform.rate_limit_overrides",
        )
        .fetch_all(db)
        .await?;
        let rates: HashMap<Uuid, Rate> = rows.iter().map(|r| (r.tenant_id, r.rate())).collect();
        let count = rates.len();
        *self.rates.write().unwrap_or_else(|e| e.into_inner()) = rates;
        Ok(count)
    }
}

/// Creates or replaces a tenant's override; `None` when the tenant does not exist (or
/// is deleted).
pub async fn set_override(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    requests_per_minute: i32,
    burst: i32,
) -> sqlx::Result<Option<Override>> {
    sqlx::query_as(
        "insert into platform.rate_limit_overrides (tenant_id, requests_per_minute, burst)
         select id, $2, $3 from platform.tenants where id = $1 and status <> 'deleted'
         on conflict (tenant_id) do update
            set requests_per_minute = excluded.requests_per_minute,
                burst = excluded.burst,
                updated_at = now()
         returning tenant_id, requests_per_minute, burst, updated_at",
    )
    .bind(tenant)
    .bind(requests_per_minute)
    .bind(burst)
    .fetch_optional(db)
    .await
}

/// Removes a tenant's override; whether there was one.
pub async fn remove_override(db: impl PgExecutor<'_>, tenant: Uuid) -> sqlx::Result<bool> {
    let done = sqlx::query("delete from platform.rate_limit_overrides where tenant_id = $1")
        .bind(tenant)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}
