//! The reconciler: makes sure no accepted job is lost between PostgreSQL and Redis.
//!
//! Every `JOB_RECONCILE_MS` one process (a Redis lease makes it a singleton across
//! replicas) looks at each active tenant's unfinished rows and hands to Redis again
//! - `queued` rows not handed over for `JOB_REQUEUE_AFTER_MS` (the process crashed
//!   between the commit and the push, or Redis lost the message), and
//! - `running` rows whose lease ran out (their worker died),
//!
//! and enqueues the purge of every deleted tenant whose schema still exists. Pushes of
//! the same attempt are idempotent in Redis, and a duplicate message that does reach a
//! worker finds nothing to claim.

use uuid::Uuid;

use super::{JobMessage, JobQueue, Lane, types::purge};
use crate::{AppState, background::Background, lease::Lease};

/// Rows handed over per tenant and round, so one tenant's backlog cannot stall the round.
const BATCH: i64 = 500;

/// Runs a reconciliation round every `JOB_RECONCILE_MS` while this process holds the
/// lease, until shutdown; then gives the lease up so another process takes over at once.
pub fn start(app: &AppState, background: &Background) {
    let state = app.clone();
    background.spawn("reconciler", move |stop| async move {
        let lease = Lease::new(
            state.redis_key("jobs:reconciler"),
            state.config.job_reconcile_interval * 3,
        );
        let mut ticker = tokio::time::interval(state.config.job_reconcile_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut held = false;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = stop.cancelled() => break,
            }
            held = match lease.acquire_or_renew(&state.redis).await {
                Ok(held) => held,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "could not take the reconciler lease");
                    false
                }
            };
            if held && let Err(e) = round(&state).await {
                tracing::warn!(error = %format!("{e:#}"), "job reconciliation failed");
            }
        }
        if held && let Err(e) = lease.release(&state.redis).await {
            tracing::warn!(error = %format!("{e:#}"), "could not release the reconciler lease");
        }
    });
}

pub async fn round(state: &AppState) -> anyhow::Result<usize> {
    let tenants: Vec<(Uuid, String)> = sqlx::query_as(
        "select id, status from platform.tenants where status in ('active', 'deleted')",
    )
    .fetch_all(&state.db)
    .await?;
    let mut handed = 0;
    for (tenant_id, status) in tenants {
        let result = if status == "deleted" {
            purge_if_left(state, tenant_id).await.map(usize::from)
        } else {
            requeue(state, tenant_id).await
        };
        match result {
            Ok(n) => handed += n,
            Err(e) => {
                tracing::warn!(%tenant_id, error = %format!("{e:#}"), "could not reconcile the tenant's jobs")
            }
        }
    }
    if let Err(e) = queue_depth(state).await {
        tracing::debug!(error = %format!("{e:#}"), "could not read the queue depth");
    }
    if handed > 0 {
        tracing::info!(handed, "reconciler handed jobs to the queue again");
    }
    Ok(handed)
}

/// Hands over one tenant's stale `queued` rows and expired `running` ones.
async fn requeue(state: &AppState, tenant_id: Uuid) -> anyhow::Result<usize> {
    let scope = state.tenant_scope(tenant_id);
    // Marking `enqueued_at` first means a crash after this statement costs one more
    // round, never a lost job; for an expired lease it is set past `lease_until`, so the
    // row is handed over once per expiry.
    let rows: Vec<(Uuid, i32, Option<Uuid>, String)> = sqlx::query_as(scope.sql(
        "update {schema}.jobs set enqueued_at = now()
         where id in (
            select id from {schema}.jobs
            where (status = 'queued' and enqueued_at < now() - $1 * interval '1 millisecond')
               or (status = 'running' and lease_until < now() and enqueued_at < lease_until)
            order by id limit $2
            for update skip locked)
         returning id, attempts, created_by, type",
    ))
    .bind(i64::try_from(state.config.job_requeue_after.as_millis()).unwrap_or(i64::MAX))
    .bind(BATCH)
    .fetch_all(scope.db())
    .await?;
    for (job_id, attempts, created_by, job_type) in &rows {
        let message = JobMessage::row(tenant_id, *job_id, Lane::of_row(*created_by, job_type));
        state
            .jobs
            .push(message, None, Some(&JobQueue::row_key(&message, *attempts)))
            .await?;
    }
    Ok(rows.len())
}

/// Enqueues the purge of a deleted tenant whose schema is still there, unless a purge
/// runs or was enqueued recently.
async fn purge_if_left(state: &AppState, tenant_id: Uuid) -> anyhow::Result<bool> {
    let schema = crate::db::TenantSchema::for_tenant(tenant_id);
    let left: bool =
        sqlx::query_scalar("select exists (select 1 from pg_namespace where nspname = $1)")
            .bind(schema.name())
            .fetch_one(&state.db)
            .await?;
    if !left || purge::is_running(state, tenant_id).await? {
        return Ok(false);
    }
    // At most one push per requeue period: the marker expires on its own.
    let mut conn = state.redis.clone();
    let marked: Option<String> = redis::cmd("SET")
        .arg(state.redis_key(&format!("jobs:purge-queued:{tenant_id}")))
        .arg("1")
        .arg("NX")
        .arg("PX")
        .arg(state.config.job_requeue_after.as_millis() as u64)
        .query_async(&mut conn)
        .await?;
    if marked.is_none() {
        return Ok(false);
    }
    state
        .jobs
        .push(JobMessage::tenant_purge(tenant_id), None, None)
        .await?;
    Ok(true)
}

/// Publishes how many messages wait (ready and scheduled).
async fn queue_depth(state: &AppState) -> anyhow::Result<()> {
    let config = state.jobs.storage_config();
    let mut conn = state.redis.clone();
    let (ready, scheduled): (u64, u64) = redis::pipe()
        .cmd("LLEN")
        .arg(config.active_jobs_list())
        .cmd("ZCARD")
        .arg(config.scheduled_jobs_set())
        .query_async(&mut conn)
        .await?;
    metrics::gauge!("tenantry_jobs_queue_depth", "state" => "ready").set(ready as f64);
    metrics::gauge!("tenantry_jobs_queue_depth", "state" => "scheduled").set(scheduled as f64);
    crate::telemetry::publish_queue_depth(&state.config, ready, scheduled);
    Ok(())
}
