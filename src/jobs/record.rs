//! The worker's transitions of a job row. Every one after the claim is fenced by the
//! attempt number the claim returned: a worker whose lease ran out (and whose job was
//! claimed again by another worker) changes nothing.

use std::time::Duration;

use uuid::Uuid;

use crate::db::TenantScope;

/// A row this worker now runs.
#[derive(Debug, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    #[sqlx(rename = "type")]
    pub job_type: String,
    pub payload: serde_json::Value,
    /// This run's attempt number, 1 on the first; the fencing token.
    pub attempts: i32,
    pub max_attempts: i32,
    pub cancel_requested: bool,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Claims a `queued` row, or a `running` one whose lease ran out (its worker died):
/// `None` when the row is gone, finished, or running under a live lease — a duplicate
/// message, which is then dropped.
pub async fn claim(
    scope: &TenantScope,
    id: Uuid,
    lease: Duration,
) -> sqlx::Result<Option<Claimed>> {
    sqlx::query_as(scope.sql(
        "update {schema}.jobs set status = 'running', attempts = attempts + 1,
            started_at = coalesce(started_at, now()),
            lease_until = now() + $2 * interval '1 millisecond', run_after = null
         where id = $1
           and (status = 'queued' or (status = 'running' and lease_until < now()))
         returning id, type, payload, attempts, max_attempts,
            cancel_requested_at is not null as cancel_requested",
    ))
    .bind(id)
    .bind(millis(lease))
    .fetch_optional(scope.db())
    .await
}

/// What a heartbeat found.
#[derive(Debug, PartialEq, Eq)]
pub enum Beat {
    Renewed,
    CancelRequested,
    /// The claim is no longer ours (reclaimed after an expired lease, or the row is gone).
    Lost,
}

/// Extends the lease and reports a cancellation request.
pub async fn heartbeat(
    scope: &TenantScope,
    id: Uuid,
    attempt: i32,
    lease: Duration,
) -> sqlx::Result<Beat> {
    let cancel: Option<bool> = sqlx::query_scalar(scope.sql(
        "update {schema}.jobs set lease_until = now() + $3 * interval '1 millisecond'
         where id = $1 and status = 'running' and attempts = $2
         returning cancel_requested_at is not null",
    ))
    .bind(id)
    .bind(attempt)
    .bind(millis(lease))
    .fetch_optional(scope.db())
    .await?;
    Ok(match cancel {
        None => Beat::Lost,
        Some(true) => Beat::CancelRequested,
        Some(false) => Beat::Renewed,
    })
}

/// Records the end of this attempt: `succeeded` with a result, or `failed` /
/// `cancelled` with an error. `false` when the claim was lost meanwhile.
pub async fn finish(
    scope: &TenantScope,
    id: Uuid,
    attempt: i32,
    status: &str,
    result: Option<&serde_json::Value>,
    error: Option<&str>,
) -> sqlx::Result<bool> {
    // One transaction with the job's webhook event (`job.succeeded`, ...).
    let mut tx = scope.begin().await?;
    let sql = tx.sql(
        "update {schema}.jobs set status = $3, result = $4, error = $5,
            finished_at = now(), lease_until = null
         where id = $1 and status = 'running' and attempts = $2
         returning id, type, status, attempts, error, result",
    );
    let done: Option<Finished> = sqlx::query_as(sql)
        .bind(id)
        .bind(attempt)
        .bind(status)
        .bind(result)
        .bind(error)
        .fetch_optional(tx.conn())
        .await?;
    let Some(done) = done else {
        return Ok(false);
    };
    super::watch::remove(tx.conn(), scope.tenant_id(), done.id).await?;
    emit_finished(&mut tx, &done).await?;
    tx.commit().await?;
    Ok(true)
}

/// A job that reached its end, as its webhook event shows it.
#[derive(Debug, serde::Serialize, sqlx::FromRow)]
pub struct Finished {
    pub id: Uuid,
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    pub job_type: String,
    pub status: String,
    pub attempts: i32,
    pub error: Option<String>,
    pub result: Option<serde_json::Value>,
}

/// Emits `job.succeeded`, `job.failed` or `job.cancelled` for a job the tenant submitted
/// (the platform's own jobs, such as notification sends, are not the tenant's news).
pub async fn emit_finished(tx: &mut crate::db::TenantTx, job: &Finished) -> sqlx::Result<()> {
    use crate::services::webhooks::{self, EventType};
    if !super::types::JobType::parse(&job.job_type).is_some_and(|t| t.is_public()) {
        return Ok(());
    }
    let event = match job.status.as_str() {
        "succeeded" => EventType::JobSucceeded,
        "failed" => EventType::JobFailed,
        "cancelled" => EventType::JobCancelled,
        _ => return Ok(()),
    };
    webhooks::emit(tx, event, job).await.map(drop)
}

/// Puts the row back to `queued`, due after `delay`, keeping the error of this attempt.
pub async fn retry_later(
    scope: &TenantScope,
    id: Uuid,
    attempt: i32,
    error: &str,
    delay: Duration,
) -> sqlx::Result<bool> {
    let done = sqlx::query(scope.sql(
        "update {schema}.jobs set status = 'queued', error = $3, lease_until = null,
            run_after = now() + $4 * interval '1 millisecond', enqueued_at = now() + $4 * interval '1 millisecond'
         where id = $1 and status = 'running' and attempts = $2",
    ))
    .bind(id)
    .bind(attempt)
    .bind(error)
    .bind(millis(delay))
    .execute(scope.db())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Cancels a row that will not run because of its tenant's state (suspended, deleted).
pub async fn cancel_unrun(scope: &TenantScope, id: Uuid, reason: &str) -> sqlx::Result<bool> {
    let mut tx = scope.begin().await?;
    let sql = tx.sql(
        "update {schema}.jobs set status = 'cancelled', error = $2, finished_at = now(),
            lease_until = null
         where id = $1 and (status = 'queued' or (status = 'running' and lease_until < now()))
         returning id, type, status, attempts, error, result",
    );
    let done: Option<Finished> = sqlx::query_as(sql)
        .bind(id)
        .bind(reason)
        .fetch_optional(tx.conn())
        .await?;
    let Some(done) = done else {
        return Ok(false);
    };
    super::watch::remove(tx.conn(), scope.tenant_id(), done.id).await?;
    emit_finished(&mut tx, &done).await?;
    tx.commit().await?;
    Ok(true)
}
