//! Tenant states as the worker sees them, cached briefly per process.
//!
//! Every job checks its tenant before it is claimed; reading `platform.tenants` for each
//! one would be a third of the worker's database round trips. The cache holds a state for
//! [`TTL`], so a job claimed within that time after its tenant was suspended or deleted
//! may still run — the same outcome as a job claimed just before the change.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use crate::cache::TtlCache;

/// How long a tenant's state is trusted.
pub const TTL: Duration = Duration::from_secs(1);
/// Entries kept at most.
const CAPACITY: usize = 10_000;

pub struct TenantStates(TtlCache<Uuid, Option<String>>);

impl Default for TenantStates {
    fn default() -> Self {
        Self(TtlCache::new(TTL, CAPACITY))
    }
}

impl TenantStates {
    /// The tenant's status (`None` when there is no such tenant).
    pub async fn status(&self, db: &PgPool, tenant_id: Uuid) -> sqlx::Result<Option<String>> {
        if let Some(status) = self.0.get(&tenant_id) {
            return Ok(status);
        }
        let seen = self.0.generation();
        let status: Option<String> =
            sqlx::query_scalar("select status from platform.tenants where id = $1")
                .bind(tenant_id)
                .fetch_optional(db)
                .await?;
        self.0.insert_loaded(seen, tenant_id, status.clone());
        Ok(status)
    }
}
