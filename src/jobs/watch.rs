//! `platform.job_watch`: the index of every tenant's unfinished jobs, which the
//! reconciler reads with one statement however many tenants there are. A row is written
//! in the transaction of its job's row and deleted in the transaction that ends the job;
//! the job row stays the record of truth (see [`super::reconciler`]).

use std::time::Duration;

use sqlx::PgConnection;
use uuid::Uuid;

/// Watches a job just written in this transaction, whose `enqueued_at` is now plus
/// `delay` (now being the transaction's time, as in the row's default).
pub async fn add(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    job_id: Uuid,
    delay: Duration,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into platform.job_watch (tenant_id, job_id, watch_from)
         values ($1, $2, now() + $3 * interval '1 millisecond')",
    )
    .bind(tenant_id)
    .bind(job_id)
    .bind(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
    .execute(conn)
    .await
    .map(drop)
}

/// Stops watching a job that ended in this transaction.
pub async fn remove(conn: &mut PgConnection, tenant_id: Uuid, job_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("delete from platform.job_watch where tenant_id = $1 and job_id = $2")
        .bind(tenant_id)
        .bind(job_id)
        .execute(conn)
        .await
        .map(drop)
}
