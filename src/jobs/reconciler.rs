//! The reconciler: makes sure no accepted job is lost between PostgreSQL and Redis.
//!
//! Every `JOB_RECONCILE_MS` one process (a Redis lease makes it a singleton across
//! replicas) reads the due rows of `platform.job_watch`, the index of every tenant's
//! unfinished jobs ([`super::watch`]), and hands to Redis again
//! - `queued` rows not handed over for `JOB_REQUEUE_AFTER_MS` (the process crashed
//!   between the commit and the push, or Redis lost the message), and
//! - `running` rows whose lease ran out (their worker died),
//!
//! and enqueues the purge of every deleted tenant whose schema still exists. A round runs
//! two statements when nothing is stale, with ten tenants or ten thousand; a tenant costs
//! a statement only in a round where one of its jobs is due for a look. Pushes of the
//! same attempt are idempotent in Redis, and a duplicate message that does reach a
//! worker finds nothing to claim.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use uuid::Uuid;

use super::{JobMessage, JobQueue, JobRuntime, Lane, types::purge};
use crate::{background::Background, lease::Lease};

/// Watch rows looked at per round (the oldest first), so a backlog is taken in steps.
const BATCH: i64 = 1000;
/// Tenants looked at concurrently in a round (on the platform pool).
const LOOKS_AT_ONCE: usize = 4;

/// Runs a reconciliation round every `JOB_RECONCILE_MS` while this process holds the
/// lease, until shutdown; then gives the lease up so another process takes over at once.
pub fn start(runtime: &JobRuntime, background: &Background) {
    let runtime = runtime.clone();
    background.spawn("reconciler", move |stop| async move {
        let lease = Lease::new(
            runtime.redis_key("jobs:reconciler"),
            runtime.config.reconcile_interval * 3,
        );
        let mut ticker = tokio::time::interval(runtime.config.reconcile_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut held = false;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = stop.cancelled() => break,
            }
            held = match lease.acquire_or_renew(&runtime.redis).await {
                Ok(held) => held,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "could not take the reconciler lease");
                    false
                }
            };
            if held && let Err(e) = round(&runtime).await {
                tracing::warn!(error = %format!("{e:#}"), "job reconciliation failed");
            }
        }
        if held && let Err(e) = lease.release(&runtime.redis).await {
            tracing::warn!(error = %format!("{e:#}"), "could not release the reconciler lease");
        }
    });
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Job messages handed to Redis again.
    pub handed: usize,
    /// Purges enqueued.
    pub purges: usize,
    /// SQL statements the round ran: two when nothing is stale, whatever the number of
    /// tenants; one more per tenant with a job to look at, and per deleted tenant whose
    /// schema is left.
    pub statements: usize,
}

/// One reconciliation: the due rows of `platform.job_watch` (one statement), one
/// statement per tenant they belong to, one to write when each is due next; then the
/// deleted tenants whose schema is still there (one statement).
pub async fn round(runtime: &JobRuntime) -> anyhow::Result<Round> {
    let started = std::time::Instant::now();
    let mut round = Round::default();
    let requeue_after = millis(runtime.config.requeue_after);
    // Only active tenants: a suspended tenant's jobs wait for it (a worker would cancel
    // them), a deleted tenant's go with its purge.
    let due: Vec<(Uuid, Vec<Uuid>)> = sqlx::query_as(
        "select tenant_id, array_agg(job_id) from (
             select w.tenant_id, w.job_id from platform.job_watch w
             join platform.tenants t on t.id = w.tenant_id and t.status = 'active'
             where w.watch_from <= now() - $1 * interval '1 millisecond'
             order by w.watch_from limit $2) due
         group by tenant_id",
    )
    .bind(requeue_after)
    .bind(BATCH)
    .fetch_all(&runtime.db)
    .await?;
    round.statements += 1;
    let mut next = NextLooks::default();
    round.statements += due.len();
    let looks = futures::stream::iter(due)
        .map(|(tenant_id, jobs)| async move {
            let looked = look(runtime, tenant_id, &jobs, requeue_after).await;
            (tenant_id, jobs, looked)
        })
        .buffer_unordered(LOOKS_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    for (tenant_id, jobs, looked) in looks {
        match looked {
            Ok(looked) => {
                round.handed += looked.handed;
                next.add(tenant_id, &jobs, &looked.next);
            }
            Err(e) => {
                tracing::warn!(%tenant_id, error = %format!("{e:#}"), "could not reconcile the tenant's jobs")
            }
        }
    }
    if !next.job_id.is_empty() {
        next.write(&runtime.db).await?;
        round.statements += 1;
    }
    round.purges = purge_left(runtime).await?;
    round.statements += 1;
    if let Err(e) = queue_depth(runtime).await {
        tracing::debug!(error = %format!("{e:#}"), "could not read the queue depth");
    }
    if round.handed > 0 {
        tracing::info!(
            handed = round.handed,
            "reconciler handed jobs to the queue again"
        );
    }
    tracing::debug!(
        statements = round.statements,
        handed = round.handed,
        purges = round.purges,
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "reconciliation round"
    );
    Ok(round)
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What looking at one tenant's due jobs found.
struct Looked {
    handed: usize,
    /// When each job that is still unfinished is due for another look.
    next: HashMap<Uuid, DateTime<Utc>>,
}

/// A due job as [`look`] found it.
#[derive(sqlx::FromRow)]
struct LookedAt {
    id: Uuid,
    attempts: i32,
    created_by: Option<Uuid>,
    #[sqlx(rename = "type")]
    job_type: String,
    /// Handed to Redis again in this round.
    handed: bool,
    /// When to look at it again.
    watch_from: DateTime<Utc>,
}

/// Hands over the tenant's stale `queued` rows and expired `running` ones among `jobs`,
/// and tells when each unfinished one is due for another look (jobs that ended or are
/// gone are not in the answer: their watch rows are dropped).
async fn look(
    runtime: &JobRuntime,
    tenant_id: Uuid,
    jobs: &[Uuid],
    requeue_after: i64,
) -> anyhow::Result<Looked> {
    // On the platform pool, unprepared: a round may look at a thousand tenants once each,
    // and their statements would otherwise evict the prepared statements of the lanes
    // that serve those tenants' requests.
    let scope = crate::db::TenantScope::new(runtime.db.clone(), tenant_id);
    // Marking `enqueued_at` first means a crash after this statement costs one more
    // round, never a lost job; for an expired lease it is set past `lease_until`, so the
    // row is handed over once per expiry. A running job under a live lease is looked at
    // again when the lease would run out.
    let rows: Vec<LookedAt> =
        sqlx::query_as(scope.sql(
            "with handed as (
                update {schema}.jobs set enqueued_at = now()
                where id in (
                    select id from {schema}.jobs
                    where id = any($2)
                      and ((status = 'queued' and enqueued_at < now() - $1 * interval '1 millisecond')
                        or (status = 'running' and lease_until < now() and enqueued_at < lease_until))
                    for update skip locked)
                returning id)
             select j.id, j.attempts, j.created_by, j.type, h.id is not null as handed,
                case when h.id is not null then now()
                     when j.status = 'queued' then j.enqueued_at
                     else greatest(j.lease_until - $1 * interval '1 millisecond', j.enqueued_at)
                end as watch_from
             from {schema}.jobs j left join handed h on h.id = j.id
             where j.id = any($2) and j.status in ('queued', 'running')",
        ))
        .bind(requeue_after)
        .bind(jobs)
        .persistent(false)
        .fetch_all(scope.db())
        .await?;
    let mut handed = 0;
    for row in rows.iter().filter(|row| row.handed) {
        let lane = Lane::of_row(row.created_by, &row.job_type);
        let message = JobMessage::row(tenant_id, row.id, lane);
        runtime
            .queue
            .push(
                message,
                None,
                Some(&JobQueue::row_key(&message, row.attempts)),
            )
            .await?;
        handed += 1;
    }
    let next = rows
        .into_iter()
        .map(|row| (row.id, row.watch_from))
        .collect();
    Ok(Looked { handed, next })
}

/// The watch rows to move or drop after a round, as column arrays for `unnest`.
#[derive(Default)]
struct NextLooks {
    tenant_id: Vec<Uuid>,
    job_id: Vec<Uuid>,
    /// `None`: the job ended or is gone; its watch row is dropped.
    watch_from: Vec<Option<DateTime<Utc>>>,
}

impl NextLooks {
    fn add(&mut self, tenant_id: Uuid, jobs: &[Uuid], next: &HashMap<Uuid, DateTime<Utc>>) {
        for job in jobs {
            self.tenant_id.push(tenant_id);
            self.job_id.push(*job);
            self.watch_from.push(next.get(job).copied());
        }
    }

    async fn write(self, db: &sqlx::PgPool) -> sqlx::Result<()> {
        sqlx::query(
            "with input as (
                 select * from unnest($1::uuid[], $2::uuid[], $3::timestamptz[])
                     as i(tenant_id, job_id, watch_from)
             ), dropped as (
                 delete from platform.job_watch w using input i
                 where w.tenant_id = i.tenant_id and w.job_id = i.job_id and i.watch_from is null
             )
             update platform.job_watch w set watch_from = i.watch_from
             from input i
             where w.tenant_id = i.tenant_id and w.job_id = i.job_id
               and i.watch_from is not null",
        )
        .bind(self.tenant_id)
        .bind(self.job_id)
        .bind(self.watch_from)
        .execute(db)
        .await
        .map(drop)
    }
}

/// Enqueues the purge of every deleted tenant whose schema is still there, unless a
/// purge runs or was enqueued recently: one statement finds them all. Returns the purges
/// enqueued.
async fn purge_left(runtime: &JobRuntime) -> anyhow::Result<usize> {
    let left: Vec<Uuid> = sqlx::query_scalar(
        "select t.id from platform.tenants t
         join pg_namespace n on n.nspname = 't_' || replace(t.id::text, '-', '')
         where t.status = 'deleted'",
    )
    .fetch_all(&runtime.db)
    .await?;
    let mut purges = 0;
    for tenant_id in left {
        match enqueue_purge(runtime, tenant_id).await {
            Ok(queued) => purges += usize::from(queued),
            Err(e) => {
                tracing::warn!(%tenant_id, error = %format!("{e:#}"), "could not enqueue the tenant's purge")
            }
        }
    }
    Ok(purges)
}

/// Enqueues the purge of a deleted tenant whose schema is left, unless a purge runs or
/// was enqueued within the requeue period.
async fn enqueue_purge(runtime: &JobRuntime, tenant_id: Uuid) -> anyhow::Result<bool> {
    if purge::is_running(&runtime.redis, &runtime.redis_config.key_prefix, tenant_id).await? {
        return Ok(false);
    }
    // At most one push per requeue period: the marker expires on its own.
    let mut conn = runtime.redis.clone();
    let marked: Option<String> = redis::cmd("SET")
        .arg(runtime.redis_key(&format!("jobs:purge-queued:{tenant_id}")))
        .arg("1")
        .arg("NX")
        .arg("PX")
        .arg(runtime.config.requeue_after.as_millis() as u64)
        .query_async(&mut conn)
        .await?;
    if marked.is_none() {
        return Ok(false);
    }
    runtime
        .queue
        .push(JobMessage::tenant_purge(tenant_id), None, None)
        .await?;
    Ok(true)
}

/// Publishes how many messages wait (ready and scheduled).
async fn queue_depth(runtime: &JobRuntime) -> anyhow::Result<()> {
    let config = runtime.queue.storage_config();
    let mut conn = runtime.redis.clone();
    let (ready, scheduled): (u64, u64) = redis::pipe()
        .cmd("LLEN")
        .arg(config.active_jobs_list())
        .cmd("ZCARD")
        .arg(config.scheduled_jobs_set())
        .query_async(&mut conn)
        .await?;
    metrics::gauge!("tenantry_jobs_queue_depth", "state" => "ready").set(ready as f64);
    metrics::gauge!("tenantry_jobs_queue_depth", "state" => "scheduled").set(scheduled as f64);
    runtime.queue_depth.publish(ready, scheduled);
    Ok(())
}
