//! Tenant states as the worker sees them, cached briefly per process.
//!
//! Every job checks its tenant before it is claimed; reading `platform.tenants` for each
//! one would be a third of the worker's database round trips. The cache holds a state for
//! [`TTL`], so a job claimed within that time after its tenant was suspended or deleted
//! may still run — the same outcome as a job claimed just before the change.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use sqlx::PgPool;
use uuid::Uuid;

/// How long a tenant's state is trusted.
pub const TTL: Duration = Duration::from_secs(1);
/// Entries kept at most; past it the cache starts over.
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub struct TenantStates {
    entries: Mutex<HashMap<Uuid, (Option<String>, Instant)>>,
}

impl TenantStates {
    /// The tenant's status (`None` when there is no such tenant).
    pub async fn status(&self, db: &PgPool, tenant_id: Uuid) -> sqlx::Result<Option<String>> {
        {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((status, at)) = entries.get(&tenant_id)
                && at.elapsed() < TTL
            {
                return Ok(status.clone());
            }
        }
        let status: Option<String> =
            sqlx::query_scalar("select status from platform.tenants where id = $1")
                .bind(tenant_id)
                .fetch_optional(db)
                .await?;
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(tenant_id, (status.clone(), Instant::now()));
        Ok(status)
    }
}
