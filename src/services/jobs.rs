//! Job records: the API side of background jobs (submit, list, get, cancel).
//!
//! A job's row is written inside the caller's transaction, so it exists exactly when the
//! change that asked for it does; the message goes to Redis after the commit
//! ([`enqueue`]). If that push fails, or the process dies before it, the reconciler hands
//! the row over later: an accepted job is never lost.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::granted::Granted,
    db::{TenantScope, TenantTx},
    error::{AppError, AppResult, ErrorCode, FieldError, FieldErrors},
    jobs::{JobMessage, JobQueue, JobType, Lane, watch},
    rbac::needs,
};

/// Attempts a job gets unless the request says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 3;
/// The most attempts a request may ask for.
pub const MAX_MAX_ATTEMPTS: i32 = 10;

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct Job {
    pub id: Uuid,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub job_type: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// Runs started so far.
    pub attempts: i32,
    pub max_attempts: i32,
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// The last attempt's error (kept while a retry is queued), or why it did not run.
    pub error: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When a running job was asked to stop; it ends `cancelled` at its next check.
    pub cancel_requested_at: Option<DateTime<Utc>>,
}

impl Job {
    /// A job the platform runs for itself — a platform-owned type (`files.cleanup`), or
    /// one with no creator (identity mail: welcome, verification, password reset) — that
    /// no tenant principal may stop. A type this build does not know counts as the
    /// platform's too.
    pub fn is_platform(&self) -> bool {
        Lane::of_row(self.created_by, &self.job_type) == Lane::Platform
    }

    /// The job as clients see it: internal jobs (`notification.send`, …) may carry
    /// secrets in their payload — a reset token in a message body — so their payload
    /// and result are never shown, whatever the reader's permissions.
    fn shown(mut self) -> Self {
        if !JobType::parse(&self.job_type).is_some_and(JobType::is_public) {
            self.payload = serde_json::json!({});
            self.result = None;
        }
        self
    }
}

const COLUMNS: &str = "select id, type, payload, status, attempts, max_attempts, result, error,
    created_by, created_at, started_at, finished_at, cancel_requested_at from {schema}.jobs";

/// A job request checked at the boundary.
#[derive(Debug)]
pub struct NewJob {
    pub job_type: JobType,
    pub payload: serde_json::Value,
    pub max_attempts: i32,
}

impl NewJob {
    /// Checks a client's request: a known, public type (else 422), a valid bounded
    /// payload, and `max_attempts` from 1 to [`MAX_MAX_ATTEMPTS`].
    pub fn parse(
        job_type: &str,
        payload: Option<serde_json::Value>,
        max_attempts: Option<i32>,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let job_type = errors.take(
            JobType::parse(job_type)
                .filter(|t| t.is_public())
                .ok_or_else(|| FieldError::new("type", "is not a job type (echo, usage_report)")),
        );
        let payload = payload.unwrap_or_else(|| serde_json::json!({}));
        if let Some(t) = job_type {
            errors.check(t.validate(&payload));
        }
        let max_attempts = max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if !(1..=MAX_MAX_ATTEMPTS).contains(&max_attempts) {
            errors.push(FieldError::new("max_attempts", "must be between 1 and 10"));
        }
        errors.finish(|| {
            Some(Self {
                job_type: job_type?,
                payload,
                max_attempts,
            })
        })
    }
}

const INSERT: &[&str] = &[
    "with inserted as (insert into {schema}.jobs (id, type, payload, max_attempts, created_by)
     values ($1, $2, $3, $4, $5) returning *) ",
    "select id, type, payload, status, attempts, max_attempts, result, error,
     created_by, created_at, started_at, finished_at, cancel_requested_at from inserted",
];

const INSERT_DELAYED: &[&str] = &[
    "with inserted as (insert into {schema}.jobs
        (id, type, payload, max_attempts, created_by, enqueued_at)
     values ($1, $2, $3, $4, $5, now() + $6 * interval '1 millisecond') returning *) ",
    "select id, type, payload, status, attempts, max_attempts, result, error,
     created_by, created_at, started_at, finished_at, cancel_requested_at from inserted",
];

/// Writes a row due after `delay` inside `tx`; [`enqueue_after`] it after the commit.
/// Its `enqueued_at` lies in the future, so the reconciler leaves it alone until then.
pub async fn insert_delayed(
    tx: &mut TenantTx,
    job: &NewJob,
    created_by: Option<Uuid>,
    delay: Duration,
) -> sqlx::Result<Job> {
    let sql = tx.sql_parts(INSERT_DELAYED);
    let row: Job = sqlx::query_as(sql)
        .bind(Uuid::now_v7())
        .bind(job.job_type.as_str())
        .bind(&job.payload)
        .bind(job.max_attempts)
        .bind(created_by)
        .bind(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
        .fetch_one(tx.conn())
        .await?;
    let tenant_id = tx.tenant_id();
    watch::add(tx.conn(), tenant_id, row.id, delay).await?;
    Ok(row)
}

/// Writes the row (`queued`) inside `tx`; [`enqueue`] it after the commit.
pub async fn insert(
    tx: &mut TenantTx,
    job: &NewJob,
    created_by: Option<Uuid>,
) -> sqlx::Result<Job> {
    let row: Job = sqlx::query_as(tx.sql_parts(INSERT))
        .bind(Uuid::now_v7())
        .bind(job.job_type.as_str())
        .bind(&job.payload)
        .bind(job.max_attempts)
        .bind(created_by)
        .fetch_one(tx.conn())
        .await?;
    let tenant_id = tx.tenant_id();
    watch::add(tx.conn(), tenant_id, row.id, Duration::ZERO).await?;
    Ok(row)
}

/// Hands a committed row to Redis. A failure is logged, not returned: the row is
/// committed, and the reconciler hands it over once `JOB_REQUEUE_AFTER_MS` passed.
///
/// The push runs on a task of its own: when the client goes away, axum drops the
/// request's future, and a push cut off there would leave the job waiting for the
/// reconciler.
pub async fn enqueue(queue: &JobQueue, message: JobMessage) {
    enqueue_after(queue, message, Duration::ZERO).await;
}

/// [`enqueue`] for a row written by [`insert_delayed`]: the message is due after `delay`.
pub async fn enqueue_after(queue: &JobQueue, message: JobMessage, delay: Duration) {
    let jobs = queue.clone();
    let push = tokio::spawn(async move { push(&jobs, message, delay).await });
    if let Err(e) = push.await {
        tracing::warn!(job_id = %message.job_id, error = %e, "the enqueue task failed; the reconciler will");
    }
}

async fn push(jobs: &JobQueue, message: JobMessage, delay: Duration) {
    let key = JobQueue::row_key(&message, 0);
    if let Err(e) = jobs.push(message, Some(delay), Some(&key)).await {
        tracing::warn!(job_id = %message.job_id, error = %format!("{e:#}"), "could not enqueue the job; the reconciler will");
    }
}

/// Submits a job on the caller's behalf: the row, then the enqueue.
///
/// Both run on a task of their own, to the end even when the client goes away
/// mid-request: a row committed just as the request was dropped would otherwise wait
/// for the reconciler (`JOB_REQUEUE_AFTER_MS`) instead of running now.
pub async fn submit(
    queue: &JobQueue,
    caller: &Granted<needs::JobsCreate>,
    job: NewJob,
) -> AppResult<Job> {
    let created_by = Some(caller.actor.id());
    let (jobs, scope) = (queue.clone(), caller.scope.clone());
    let submitted = tokio::spawn(async move {
        let mut tx = scope.begin().await?;
        let row = insert(&mut tx, &job, created_by).await?;
        tx.commit().await?;
        let message = JobMessage::row(
            scope.tenant_id(),
            row.id,
            Lane::of_row(created_by, row.job_type.as_str()),
        );
        push(&jobs, message, Duration::ZERO).await;
        Ok::<_, AppError>(row)
    });
    submitted.await.map_err(AppError::internal)?
}

pub async fn get(scope: &TenantScope, id: Uuid) -> AppResult<Job> {
    sqlx::query_as(scope.sql_parts(&[COLUMNS, " where id = $1"]))
        .bind(id)
        .fetch_optional(scope.db())
        .await?
        .map(Job::shown)
        .ok_or_else(AppError::not_found)
}

/// Newest first, keyset-paginated, optionally filtered by status and type.
pub async fn list(
    scope: &TenantScope,
    status: Option<&str>,
    job_type: Option<&str>,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Job>> {
    sqlx::query_as(scope.sql_parts(&[
        COLUMNS,
        " where ($1::uuid is null or id < $1) and ($2::text is null or status = $2)
          and ($3::text is null or type = $3) order by id desc limit $4",
    ]))
    .bind(before)
    .bind(status)
    .bind(job_type)
    .bind(limit)
    .fetch_all(scope.db())
    .await
    .map(|rows: Vec<Job>| rows.into_iter().map(Job::shown).collect())
}

/// Cancels a job: a queued one at once, a running one at its next check (the row shows
/// `cancel_requested_at` meanwhile). A finished job is a 409; a platform job
/// ([`Job::is_platform`]) is a 403 whatever its state.
pub async fn cancel(caller: &Granted<needs::JobsCancel>, id: Uuid) -> AppResult<Job> {
    let scope = &caller.scope;
    // Type and creator never change, so checking before the update leaves no race.
    if get(scope, id).await?.is_platform() {
        return Err(AppError::forbidden(
            "this job belongs to the platform (its own mail or clean-up) and cannot be cancelled",
        ));
    }
    let mut tx = scope.begin().await?;
    // SET expressions see the row as it was, so each `case` tests the old status.
    let cancelled: Option<Job> = sqlx::query_as(tx.sql(
        "with changed as (
            update {schema}.jobs set
                status = case when status = 'queued' then 'cancelled' else status end,
                finished_at = case when status = 'queued' then now() else finished_at end,
                error = case when status = 'queued' then 'cancelled by request' else error end,
                cancel_requested_at = coalesce(cancel_requested_at, now())
            where id = $1 and status in ('queued', 'running') returning *)
         select id, type, payload, status, attempts, max_attempts, result, error,
            created_by, created_at, started_at, finished_at, cancel_requested_at from changed",
    ))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    match cancelled {
        Some(job) => {
            // A queued job ends here (a running one ends `cancelled` in its worker).
            if job.status == "cancelled" {
                watch::remove(tx.conn(), scope.tenant_id(), job.id).await?;
                let finished = crate::jobs::record::Finished {
                    id: job.id,
                    job_type: job.job_type.to_string(),
                    status: job.status.clone(),
                    attempts: job.attempts,
                    error: job.error.clone(),
                    result: None,
                };
                crate::jobs::record::emit_finished(&mut tx, &finished).await?;
            }
            tx.commit().await?;
            Ok(job.shown())
        }
        None => {
            let job = get(scope, id).await?;
            Err(AppError::conflict(
                ErrorCode::Conflict,
                format!("the job is already {}", job.status),
            ))
        }
    }
}
