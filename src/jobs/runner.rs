//! Runs one message: tenant check, claim, the job under a renewed lease, the outcome.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::JobRuntime;
use super::tenants::TenantStates;
use super::{
    JobMessage, JobQueue, Lane, MessageKind, backoff,
    handlers::{self, JobContext},
    record::{self, Beat},
    types::{JobType, purge},
};
use crate::{db::TenantScope, services::metering::Metric};

/// How a run ended, for the row and the metrics.
enum Ended {
    Done(Result<serde_json::Value, String>),
    CancelRequested,
    Lost,
}

/// Handles one delivery. `Err` means the message could not be handled at all (the
/// database or Redis is down): apalis keeps the message and delivers it again.
pub async fn handle(
    runtime: &JobRuntime,
    tenants: &TenantStates,
    message: JobMessage,
) -> anyhow::Result<()> {
    match message.kind {
        MessageKind::TenantPurge => {
            let started = Instant::now();
            let outcome = purge::run(
                &runtime.db,
                &runtime.redis,
                &runtime.storage,
                &runtime.redis_config.key_prefix,
                message.tenant_id,
                runtime.config.lease,
            )
            .await;
            observe("tenant.purge", started, &outcome);
            let outcome = outcome.context("tenant purge failed")?;
            tracing::info!(tenant_id = %message.tenant_id, ?outcome, "tenant purge job done");
            Ok(())
        }
        MessageKind::Row => run_row(runtime, tenants, message).await,
    }
}

fn observe<T, E>(job_type: &'static str, started: Instant, outcome: &Result<T, E>) {
    metrics::histogram!("tenantry_job_duration_seconds", "type" => job_type)
        .record(started.elapsed().as_secs_f64());
    count(
        job_type,
        if outcome.is_ok() {
            "succeeded"
        } else {
            "failed"
        },
    );
}

fn count(job_type: &'static str, outcome: &'static str) {
    metrics::counter!("tenantry_jobs_total", "type" => job_type, "outcome" => outcome).increment(1);
}

async fn run_row(
    runtime: &JobRuntime,
    tenants: &TenantStates,
    message: JobMessage,
) -> anyhow::Result<()> {
    let scope = runtime.tenant_scope(message.tenant_id);
    let status = tenants
        .status(&runtime.db, message.tenant_id)
        .await
        .context("failed to read the job's tenant")?;
    match status.as_deref() {
        Some("active") => {}
        // Not ready yet: apalis delivers the message again later.
        Some("provisioning") => anyhow::bail!("the job's tenant is still provisioning"),
        Some(other) => {
            // Suspended or deleted: the job does not run. A deleted tenant's schema may
            // already be gone with the row, which is just as final.
            let reason = format!("not run: the tenant is {other}");
            if let Ok(true) = record::cancel_unrun(&scope, message.job_id, &reason).await {
                count("unknown", "cancelled");
            }
            return Ok(());
        }
        None => return Ok(()),
    }
    let lease = runtime.config.lease;
    let Some(claimed) = record::claim(&scope, message.job_id, lease)
        .await
        .context("failed to claim the job")?
    else {
        // A duplicate delivery: the job is finished, or another worker holds it.
        return Ok(());
    };
    let (id, attempt) = (claimed.id, claimed.attempts);
    let Some(job_type) = JobType::parse(&claimed.job_type) else {
        record::finish(
            &scope,
            id,
            attempt,
            "failed",
            None,
            Some("unknown job type"),
        )
        .await?;
        return Ok(());
    };
    let name = job_type.as_str();
    if claimed.cancel_requested {
        record::finish(
            &scope,
            id,
            attempt,
            "cancelled",
            None,
            Some("cancelled by request"),
        )
        .await?;
        count(name, "cancelled");
        return Ok(());
    }
    let ctx = JobContext {
        runtime,
        scope: &scope,
        job_id: id,
        attempt,
        max_attempts: claimed.max_attempts,
    };
    let started = Instant::now();
    // The job runs while the watch renews its lease; when the watch sees a cancellation
    // request (or finds the claim lost) the job's future is dropped at its await point.
    let ended = tokio::select! {
        result = handlers::run(job_type, &ctx, &claimed.payload) => Ended::Done(result),
        ended = watch(runtime, &message, &scope, attempt, lease) => ended,
    };
    metrics::histogram!("tenantry_job_duration_seconds", "type" => name)
        .record(started.elapsed().as_secs_f64());
    if matches!(ended, Ended::Done(_)) {
        // Every attempt that ran is usage, whatever its outcome.
        runtime
            .meter
            .record(message.tenant_id, Metric::JobsExecuted, 1);
    }
    let recorded = match ended {
        Ended::Done(Ok(result)) => {
            count(name, "succeeded");
            record::finish(&scope, id, attempt, "succeeded", Some(&result), None).await?
        }
        Ended::Done(Err(error)) if attempt < claimed.max_attempts => {
            count(name, "retried");
            let delay = backoff::delay(runtime.config.retry_base, attempt, backoff::jitter());
            let requeued = record::retry_later(&scope, id, attempt, &error, delay).await?;
            if requeued {
                // Should this push fail, the reconciler hands the row over once it is due.
                let key = JobQueue::row_key(&message, attempt);
                if let Err(e) = runtime.queue.push(message, Some(delay), Some(&key)).await {
                    tracing::warn!(job_id = %id, error = %format!("{e:#}"), "could not enqueue the retry");
                }
            }
            requeued
        }
        Ended::Done(Err(error)) => {
            count(name, "failed");
            record::finish(&scope, id, attempt, "failed", None, Some(&error)).await?
        }
        Ended::CancelRequested => {
            count(name, "cancelled");
            record::finish(
                &scope,
                id,
                attempt,
                "cancelled",
                None,
                Some("cancelled by request"),
            )
            .await?
        }
        Ended::Lost => false,
    };
    if !recorded {
        count(name, "lost");
        tracing::warn!(job_id = %id, attempt, "job claim lost before its outcome was recorded");
    }
    Ok(())
}

/// Renews the lease (and a tenant job's admission slot) every `JOB_HEARTBEAT_MS` until a
/// cancellation request or a lost claim.
async fn watch(
    runtime: &JobRuntime,
    message: &JobMessage,
    scope: &TenantScope,
    attempt: i32,
    lease: Duration,
) -> Ended {
    let id = message.job_id;
    loop {
        tokio::time::sleep(runtime.config.heartbeat).await;
        if message.lane == Lane::Tenant
            && let Err(e) = runtime.queue.renew_slot(message, lease).await
        {
            tracing::warn!(job_id = %id, error = %format!("{e:#}"), "could not renew the job's slot");
        }
        match record::heartbeat(scope, id, attempt, lease).await {
            Ok(Beat::Renewed) => {}
            Ok(Beat::CancelRequested) => return Ended::CancelRequested,
            Ok(Beat::Lost) => return Ended::Lost,
            // The database is unreachable: keep running; if it stays away the lease runs
            // out and the job is run again elsewhere (its outcome update is fenced).
            Err(e) => tracing::warn!(job_id = %id, error = %e, "could not renew the job lease"),
        }
    }
}
