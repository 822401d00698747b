//! The evaluator: every `AUTOSCALER_INTERVAL_SECONDS`, the replica holding the lease
//! decides every active tenant's capacity from its metered request rate.
//!
//! One pass is two statements whatever the number of tenants: one select reads every
//! active tenant's policy, history and last-minute request counts (index lookups on the
//! rollups' primary key), and one statement writes every tenant's new state and inserts
//! the events of those whose capacity changed, with their `scaling.changed` webhooks
//! (`platform.webhook_emit`, called by that statement). Writes are conditional on the row being
//! as it was read (`last_evaluated_at` and `updated_at`), so a pass that raced a policy
//! change or another evaluator (a lease holder paused past its lease) changes nothing
//! for that tenant instead of applying a stale decision.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::json;
use sqlx::types::Json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    Autoscaler,
    decision::{self, Action, History, Recommendation},
    gauge::TenantLoad,
    policy::Policy,
};
use crate::{
    background::Background,
    lease::Lease,
    services::{
        tenants::Plan,
        webhooks::{EventType, events::WAKE_CHANNEL},
    },
};

/// The metric whose rollups give the load (written by metering).
pub const LOAD_METRIC: &str = "api_requests";

/// What one pass did.
#[derive(Debug, Clone, Copy)]
pub struct PassReport {
    /// Active tenants evaluated.
    pub tenants: usize,
    /// Tenants whose capacity changed (one event each).
    pub changes: usize,
    /// The whole pass, and its two statements (the rest is deciding in memory).
    pub elapsed: Duration,
    pub read: Duration,
    pub write: Duration,
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    tenant_id: Uuid,
    plan: String,
    #[sqlx(flatten)]
    policy: Policy,
    current_capacity: i32,
    last_scale_up_at: Option<DateTime<Utc>>,
    recommendations: Json<VecDeque<Recommendation>>,
    last_evaluated_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    requests_previous: i64,
    requests_current: i64,
}

/// The new state of every evaluated tenant, as column arrays for `unnest`.
#[derive(Default)]
struct Writes {
    tenant_id: Vec<Uuid>,
    current_capacity: Vec<i32>,
    desired_capacity: Vec<i32>,
    last_scale_up_at: Vec<Option<DateTime<Utc>>>,
    recommendations: Vec<serde_json::Value>,
    last_metrics: Vec<serde_json::Value>,
    seen_evaluated_at: Vec<Option<DateTime<Utc>>>,
    seen_updated_at: Vec<DateTime<Utc>>,
}

/// The capacity changes, as column arrays for `unnest`.
#[derive(Default)]
struct Events {
    id: Vec<Uuid>,
    tenant_id: Vec<Uuid>,
    action: Vec<&'static str>,
    from_capacity: Vec<i32>,
    to_capacity: Vec<i32>,
    reason: Vec<String>,
    metrics: Vec<serde_json::Value>,
    /// The `scaling.changed` webhook's data; its message takes the event's id.
    webhook_data: Vec<serde_json::Value>,
}

/// Evaluates every active tenant once, as of `now`, and publishes the capacity gauge.
///
/// The load is the request rate of the 60 s before `now`, from the `api_requests`
/// rollups of the current minute and the one before (see [`decision::request_rate`]).
pub async fn run_pass(autoscaler: &Autoscaler, now: DateTime<Utc>) -> anyhow::Result<PassReport> {
    let started = Instant::now();
    let minute = now
        .duration_trunc(TimeDelta::minutes(1))
        .context("the clock is out of range")?;
    let previous_minute = minute - TimeDelta::minutes(1);
    let seconds_into_minute = (now - minute).as_seconds_f64();
    let t = epoch_seconds(now);

    let rows: Vec<TenantRow> = sqlx::query_as(
        "select p.tenant_id, t.plan, p.min_capacity, p.max_capacity, p.target_rps_per_unit,
                p.tolerance, p.scale_up_cooldown_s, p.scale_down_stabilization_s,
                p.current_capacity, p.last_scale_up_at, p.recommendations,
                p.last_evaluated_at, p.updated_at,
                coalesce(u.previous, 0)::bigint as requests_previous,
                coalesce(u.current, 0)::bigint as requests_current
         from platform.scaling_policies p
         join platform.tenants t on t.id = p.tenant_id
         left join lateral (
             select sum(r.value) filter (where r.bucket_start < $3) as previous,
                    sum(r.value) filter (where r.bucket_start >= $3) as current
             from platform.usage_rollups r
             where r.tenant_id = p.tenant_id and r.metric = $1
               and r.bucket_start >= $2 and r.bucket_start <= $4
         ) u on true
         where t.status = 'active'",
    )
    .bind(LOAD_METRIC)
    .bind(previous_minute)
    .bind(minute)
    .bind(now)
    .fetch_all(&autoscaler.db)
    .await
    .context("failed to read the scaling policies")?;
    let read = started.elapsed();

    let mut writes = Writes::default();
    let mut events = Events::default();
    let tenants = rows.len();
    let mut loads = Vec::with_capacity(tenants);
    for row in rows {
        // The column's check constraint admits only the three plans.
        let plan: Plan = row.plan.parse().unwrap_or(Plan::Free);
        let policy = row.policy.within_plan(plan);
        let history = History {
            last_scale_up_at: row.last_scale_up_at.map(epoch_seconds),
            window: row.recommendations.0,
        };
        let rps = decision::request_rate(
            row.requests_previous,
            row.requests_current,
            seconds_into_minute,
        );
        let (decision, history) = decision::decide(&policy, row.current_capacity, history, t, rps);
        let metrics = json!({
            "rps": (rps * 1000.0).round() / 1000.0,
            "window_seconds": 60,
            "requests_previous_minute": row.requests_previous,
            "requests_current_minute": row.requests_current,
            "recommendation": decision.recommendation,
        });
        if decision.action != Action::None {
            events.id.push(Uuid::now_v7());
            events.tenant_id.push(row.tenant_id);
            events.action.push(decision.action.as_str());
            events.from_capacity.push(row.current_capacity);
            events.to_capacity.push(decision.desired);
            events
                .webhook_data
                .push(json!({"action": decision.action.as_str(),
                "from_capacity": row.current_capacity, "to_capacity": decision.desired,
                "reason": decision.reason, "at": now}));
            events.reason.push(decision.reason);
            events.metrics.push(metrics.clone());
        }
        writes.tenant_id.push(row.tenant_id);
        writes.current_capacity.push(decision.desired);
        writes.desired_capacity.push(decision.recommendation);
        writes
            .last_scale_up_at
            .push(history.last_scale_up_at.and_then(from_epoch_seconds));
        writes.recommendations.push(json!(history.window));
        writes.last_metrics.push(metrics);
        writes.seen_evaluated_at.push(row.last_evaluated_at);
        writes.seen_updated_at.push(row.updated_at);
        loads.push(TenantLoad {
            tenant_id: row.tenant_id,
            rps,
            capacity: decision.desired,
        });
    }

    let writing = Instant::now();
    let changes = write(&autoscaler.db, now, writes, events).await?;
    let write = writing.elapsed();
    autoscaler
        .gauge
        .publish(loads, autoscaler.config.gauge_tenants);
    let elapsed = started.elapsed();
    metrics::gauge!("tenantry_autoscaler_pass_seconds").set(elapsed.as_secs_f64());
    Ok(PassReport {
        tenants,
        changes,
        elapsed,
        read,
        write,
    })
}

/// Writes every tenant's new state, the events of those that changed and their
/// `scaling.changed` webhooks, in one statement; returns how many events were written.
async fn write(
    db: &sqlx::PgPool,
    now: DateTime<Utc>,
    writes: Writes,
    events: Events,
) -> anyhow::Result<usize> {
    // `recorded` runs whether or not it is read (PostgreSQL runs every data-modifying
    // `with`), and `platform.webhook_emit` once per event: an event's webhook commits
    // with it, and a tenant with no endpoint subscribed gets nothing written.
    let written: Vec<(String,)> = sqlx::query_as(
        "with input as (
             select * from unnest($1::uuid[], $2::int[], $3::int[], $4::timestamptz[],
                                  $5::jsonb[], $6::jsonb[], $7::timestamptz[], $8::timestamptz[])
                 as i(tenant_id, current_capacity, desired_capacity, last_scale_up_at,
                      recommendations, last_metrics, seen_evaluated_at, seen_updated_at)
         ), updated as (
             update platform.scaling_policies p set
                 current_capacity = i.current_capacity,
                 desired_capacity = i.desired_capacity,
                 last_scale_up_at = i.last_scale_up_at,
                 recommendations = i.recommendations,
                 last_metrics = i.last_metrics,
                 last_evaluated_at = $9
             from input i
             where p.tenant_id = i.tenant_id
               and p.last_evaluated_at is not distinct from i.seen_evaluated_at
               and p.updated_at = i.seen_updated_at
             returning p.tenant_id
         ), events as (
             select * from unnest($10::uuid[], $11::uuid[], $12::text[], $13::int[],
                                  $14::int[], $15::text[], $16::jsonb[], $17::jsonb[])
                 as e(id, tenant_id, action, from_capacity, to_capacity, reason, metrics,
                      webhook_data)
             where e.tenant_id in (select tenant_id from updated)
         ), recorded as (
             insert into platform.scaling_events
                 (id, tenant_id, action, from_capacity, to_capacity, reason, metrics,
                  created_at)
             select id, tenant_id, action, from_capacity, to_capacity, reason, metrics, $9
             from events
         )
         select e.action from events e
         cross join lateral platform.webhook_emit(
             e.tenant_id, e.id, $18, e.webhook_data, null, $19) as webhook",
    )
    .bind(writes.tenant_id)
    .bind(writes.current_capacity)
    .bind(writes.desired_capacity)
    .bind(writes.last_scale_up_at)
    .bind(writes.recommendations)
    .bind(writes.last_metrics)
    .bind(writes.seen_evaluated_at)
    .bind(writes.seen_updated_at)
    .bind(now)
    .bind(events.id)
    .bind(events.tenant_id)
    .bind(events.action)
    .bind(events.from_capacity)
    .bind(events.to_capacity)
    .bind(events.reason)
    .bind(events.metrics)
    .bind(events.webhook_data)
    .bind(EventType::ScalingChanged.as_str())
    .bind(WAKE_CHANNEL)
    .fetch_all(db)
    .await
    .context("failed to write the scaling decisions")?;
    for (action,) in &written {
        metrics::counter!("tenantry_autoscaler_changes_total", "action" => action.clone())
            .increment(1);
    }
    Ok(written.len())
}

fn epoch_seconds(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

fn from_epoch_seconds(seconds: f64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64)
}

/// How long the lease lasts without renewal: three intervals, so a slow pass or a
/// delayed tick does not lose it, while a replica that died is replaced within about
/// four intervals (the lease runs out, then another replica's next tick takes it).
pub fn lease_ttl(interval: Duration) -> Duration {
    interval * 3
}

/// What the running evaluator shows of itself.
#[derive(Debug, Default)]
pub struct EvaluatorStats {
    passes: AtomicU64,
    leader: AtomicBool,
}

/// The running evaluator of this replica.
pub struct Evaluator {
    stop: CancellationToken,
    task: JoinHandle<()>,
    stats: Arc<EvaluatorStats>,
}

impl Evaluator {
    /// Passes this replica has run.
    pub fn passes(&self) -> u64 {
        self.stats.passes.load(Ordering::Relaxed)
    }

    /// Whether this replica held the lease at its last attempt.
    pub fn is_leader(&self) -> bool {
        self.stats.leader.load(Ordering::Relaxed)
    }

    /// Stops after the pass in progress and releases the lease, so another replica takes
    /// over at its next tick.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }

    /// Stops at once without releasing the lease, as if the process had died: another
    /// replica takes over only when the lease runs out.
    pub fn kill(self) {
        self.task.abort();
    }
}

/// Starts the evaluator loop of this process on `background`: a pass every
/// `AUTOSCALER_INTERVAL_SECONDS` while it holds the lease.
pub fn start(autoscaler: &Autoscaler, background: &Background) {
    describe_metrics();
    let autoscaler = autoscaler.clone();
    background.spawn("autoscaler", move |stop| {
        run(autoscaler, stop, Arc::new(EvaluatorStats::default()))
    });
}

/// Starts an evaluator of its own, stopped through the handle (tests, tools).
pub fn spawn(autoscaler: Autoscaler) -> Evaluator {
    describe_metrics();
    let stop = CancellationToken::new();
    let stats = Arc::new(EvaluatorStats::default());
    let task = tokio::spawn(run(autoscaler, stop.clone(), stats.clone()));
    Evaluator { stop, task, stats }
}

async fn run(autoscaler: Autoscaler, stop: CancellationToken, stats: Arc<EvaluatorStats>) {
    let interval = autoscaler.config.interval;
    let lease = Lease::new(autoscaler.lease_key.clone(), lease_ttl(interval));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = stop.cancelled() => break,
        }
        let leader = match lease.acquire_or_renew(&autoscaler.redis).await {
            Ok(held) => held,
            Err(e) => {
                // Without Redis nobody can know who evaluates: stand down rather than
                // risk two evaluators.
                tracing::warn!(error = %format!("{e:#}"), "autoscaler lease unavailable");
                metrics::counter!("tenantry_redis_errors_total", "op" => "autoscaler_lease")
                    .increment(1);
                false
            }
        };
        let was_leader = stats.leader.swap(leader, Ordering::Relaxed);
        metrics::gauge!("tenantry_autoscaler_leader").set(if leader { 1.0 } else { 0.0 });
        if leader != was_leader {
            tracing::info!(
                leader,
                owner = lease.owner(),
                "autoscaler evaluator {}",
                if leader {
                    "took the lease"
                } else {
                    "lost the lease"
                }
            );
        }
        if !leader {
            autoscaler.gauge.clear();
            continue;
        }
        match run_pass(&autoscaler, Utc::now()).await {
            Ok(report) => {
                stats.passes.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("tenantry_autoscaler_passes_total").increment(1);
                tracing::debug!(
                    tenants = report.tenants,
                    changes = report.changes,
                    elapsed_ms = report.elapsed.as_millis() as u64,
                    "autoscaler pass"
                );
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "autoscaler pass failed"),
        }
    }
    if stats.leader.swap(false, Ordering::Relaxed) {
        metrics::gauge!("tenantry_autoscaler_leader").set(0.0);
        autoscaler.gauge.clear();
        if let Err(e) = lease.release(&autoscaler.redis).await {
            tracing::warn!(error = %format!("{e:#}"), "could not release the autoscaler lease");
        }
    }
}

/// HELP texts, so the exposition passes `promtool check metrics`.
fn describe_metrics() {
    metrics::describe_gauge!(
        "tenantry_autoscaler_pass_seconds",
        metrics::Unit::Seconds,
        "Duration of the last autoscaler evaluation pass over every active tenant."
    );
    metrics::describe_gauge!(
        "tenantry_autoscaler_leader",
        "1 while this replica holds the autoscaler lease (one replica evaluates), else 0."
    );
    metrics::describe_counter!(
        "tenantry_autoscaler_passes_total",
        "Autoscaler evaluation passes this replica ran as the leader."
    );
    metrics::describe_counter!(
        "tenantry_autoscaler_changes_total",
        "Tenant capacity changes decided by the autoscaler, by action."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seconds_round_trip_to_the_millisecond() {
        let at = DateTime::from_timestamp_millis(1_790_000_123_456).expect("valid");
        assert_eq!(from_epoch_seconds(epoch_seconds(at)), Some(at));
    }
}
