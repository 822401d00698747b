//! `tenant.purge` (internal): removes a deleted tenant's shared rows and schema.
//!
//! [`crate::services::tenants::purge`] works in batches and every step is idempotent
//! (`delete ... where tenant_id`, `drop ... if exists`), so a purge cut off by a crash or
//! a restart simply runs again from where the database stands. A Redis lease keeps two
//! workers from purging the same tenant at once; the reconciler enqueues the purge again
//! for any deleted tenant whose schema still exists.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use crate::{lease::Lease, redis::Redis, services::tenants, storage::Storage};

/// What one delivery of a purge message did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Purged,
    /// The tenant is not deleted (restored, or never was): nothing to do.
    NotDeleted,
    /// Another worker holds the purge lease.
    Busy,
}

/// The lease's Redis key, in the namespace `key_prefix` (`REDIS_KEY_PREFIX`) names.
fn lease_key(key_prefix: &str, tenant_id: Uuid) -> String {
    format!("{key_prefix}jobs:purge:{tenant_id}")
}

pub async fn run(
    db: &PgPool,
    redis: &Redis,
    storage: &Storage,
    key_prefix: &str,
    tenant_id: Uuid,
    lease: Duration,
) -> anyhow::Result<Outcome> {
    let status: Option<String> =
        sqlx::query_scalar("select status from platform.tenants where id = $1")
            .bind(tenant_id)
            .fetch_optional(db)
            .await?;
    // A missing row counts as deleted: another cleanup may already have removed it.
    if status.as_deref().is_some_and(|s| s != "deleted") {
        return Ok(Outcome::NotDeleted);
    }
    let lease = Lease::new(lease_key(key_prefix, tenant_id), lease);
    if !lease.acquire_or_renew(redis).await? {
        return Ok(Outcome::Busy);
    }
    // Renew the lease while the purge runs, so a long purge keeps it and a dead worker's
    // lease runs out; renewing and releasing only ever touch this worker's own lease.
    let renew = async {
        let mut ticker = tokio::time::interval(lease.ttl() / 3);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            if !matches!(lease.acquire_or_renew(redis).await, Ok(true) | Err(_)) {
                return;
            }
        }
    };
    // Objects first: the rows naming them go with the schema.
    let purge = async {
        let objects = storage
            .delete_prefix(&crate::storage::tenant_prefix(tenant_id))
            .await?;
        tracing::info!(%tenant_id, objects, "deleted the tenant's stored files");
        tenants::purge(db, tenant_id).await
    };
    let result = tokio::select! {
        r = purge => r,
        () = renew => Err(anyhow::anyhow!("the purge lease was lost")),
    };
    if let Err(e) = lease.release(redis).await {
        tracing::warn!(%tenant_id, error = %format!("{e:#}"), "could not release the purge lease");
    }
    result.map(|()| Outcome::Purged)
}

/// Whether a purge of this tenant is running somewhere (its lease is held).
pub async fn is_running(redis: &Redis, key_prefix: &str, tenant_id: Uuid) -> anyhow::Result<bool> {
    let mut conn = redis.clone();
    let exists: i64 = ::redis::cmd("EXISTS")
        .arg(lease_key(key_prefix, tenant_id))
        .query_async(&mut conn)
        .await?;
    Ok(exists == 1)
}
