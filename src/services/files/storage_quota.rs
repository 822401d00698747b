//! The size limits of a plan and the tenant's storage quota: stored files plus the
//! declared size of uploads in flight.

use uuid::Uuid;

use crate::{
    auth::principal::TenantPrincipal,
    error::{AppError, AppResult, ErrorCode},
    services::tenants::Plan,
};

use super::MAX_FILE_BYTES;

/// The largest file a plan may store: free 10 MiB, standard 100 MiB, premium 1 GiB.
pub fn size_limit(plan: Plan) -> u64 {
    const MIB: u64 = 1024 * 1024;
    match plan {
        Plan::Premium => MAX_FILE_BYTES,
        Plan::Standard => 100 * MIB,
        Plan::Free => 10 * MIB,
    }
}

/// The most a tenant may store, files and uploads in flight together: free 1 GiB,
/// standard 100 GiB, premium 10 TiB.
pub fn storage_quota(plan: Plan) -> u64 {
    const GIB: u64 = 1024 * 1024 * 1024;
    match plan {
        Plan::Premium => 10 * 1024 * GIB,
        Plan::Standard => 100 * GIB,
        Plan::Free => GIB,
    }
}

pub(super) fn quota_exceeded(quota: u64, used: u64) -> AppError {
    AppError::new(
        ErrorCode::StorageQuotaExceeded,
        format!(
            "the tenant's storage quota of {quota} bytes is used up ({used} bytes stored or \
             being uploaded); delete files or move to a larger plan"
        ),
    )
}

/// Bytes the tenant stores or has reserved: available files, plus the declared size of
/// uploads in flight, leaving out the file `except`. Inside `tx`, after
/// [`lock_quota`], the figure stays true until the commit.
pub(super) async fn used_bytes(
    tx: &mut crate::db::TenantTx,
    except: Option<Uuid>,
) -> sqlx::Result<u64> {
    let sql = tx.sql(
        "select coalesce(sum(size), 0)::bigint from {schema}.files
         where ($1::uuid is null or id <> $1)",
    );
    let used: i64 = sqlx::query_scalar(sql)
        .bind(except)
        .fetch_one(tx.conn())
        .await?;
    Ok(u64::try_from(used).unwrap_or_default())
}

/// Serialises the tenant's quota checks until the transaction ends, so two concurrent
/// uploads cannot both take the last free bytes.
pub(super) async fn lock_quota(tx: &mut crate::db::TenantTx, tenant_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('files.quota:' || $1::text, 0))")
        .bind(tenant_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Takes `size` more bytes under the quota inside `tx` (locked until its end), or 413
/// `STORAGE_QUOTA_EXCEEDED`.
pub(super) async fn reserve(
    tx: &mut crate::db::TenantTx,
    p: &TenantPrincipal,
    except: Option<Uuid>,
    size: u64,
) -> AppResult<()> {
    lock_quota(tx, p.tenant_id()).await?;
    let used = used_bytes(tx, except).await?;
    let quota = storage_quota(p.tenant.plan);
    if used.saturating_add(size) > quota {
        return Err(quota_exceeded(quota, used));
    }
    Ok(())
}

/// Bytes left under the quota now (a first check before streaming; [`reserve`] decides).
pub(super) async fn quota_left(p: &TenantPrincipal) -> AppResult<u64> {
    let mut tx = p.scope.begin().await?;
    let used = used_bytes(&mut tx, None).await?;
    tx.commit().await?;
    Ok(storage_quota(p.tenant.plan).saturating_sub(used))
}
