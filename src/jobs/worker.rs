//! The job workers: apalis workers on the Redis queue, and the promoter of delayed
//! messages. Run inside `tenantry serve` (unless `--no-workers` or `WORKERS_ENABLED=false`)
//! and in `tenantry worker` (see [`crate::background`]).

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context;

use apalis::prelude::{BackendExt, BoxDynError, Data, WorkerBuilder, WorkerBuilderExt};
use apalis_redis::RedisStorage;
use uuid::Uuid;

use tokio::sync::Notify;

use super::{JobMessage, JobRuntime, Lane, fair, promoter, queue, runner, tenants::TenantStates};
use crate::{background::Background, services::tenants::Plan};

/// How often an idle worker looks for new messages: the pick-up latency of a job
/// submitted to an idle queue.
const POLL: Duration = Duration::from_millis(50);

/// Pause before a worker that died is started again.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Starts the job workers on `background` (see [`run`]).
pub fn start(runtime: &JobRuntime, background: &Background) {
    let runtime = runtime.clone();
    background.spawn("job workers", move |stop| async move {
        if let Err(e) = run(runtime, stop.cancelled_owned()).await {
            tracing::error!(error = %format!("{e:#}"), "job workers failed");
        }
    });
}

/// Runs workers until `shutdown` completes, then stops taking jobs and lets the running
/// ones finish. A job that cannot finish (the process is killed) keeps its row `running`
/// until its lease runs out; the reconciler then hands it over again. Redis away at start
/// is waited for, like Redis lost later.
///
/// Two lanes, each with its own apalis workers: tenants' jobs, admitted in turn by this
/// process's dispatcher ([`super::fair`]), and the platform's (`JOB_PLATFORM_CONCURRENCY`).
pub async fn run(
    runtime: JobRuntime,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    super::describe_metrics();
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let lanes = [
        runtime.queue.storage_config().clone(),
        runtime.queue.platform_config().clone(),
    ];
    let conn = loop {
        match connect(&runtime.redis_config.url, &lanes).await {
            Ok(conn) => break conn,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "job worker cannot reach Redis; retrying");
                let mut stopped = stopping.clone();
                tokio::select! {
                    () = tokio::time::sleep(RESTART_DELAY) => {}
                    _ = stopped.wait_for(|stop| *stop) => return Ok(()),
                }
            }
        }
    };
    let promoters = lanes
        .clone()
        .map(|lane| tokio::spawn(promoter::run(conn.clone(), lane, POLL)));
    let context = Arc::new(Shared {
        tenants: TenantStates::default(),
        slot_freed: Notify::new(),
    });
    let dispatcher = tokio::spawn(dispatch(
        runtime.clone(),
        conn.clone(),
        Arc::clone(&context),
        stopping.clone(),
    ));
    let [tenant_lane, platform_lane] = lanes;
    let (tenants, platform) = tokio::join!(
        run_lane(
            &runtime,
            &conn,
            tenant_lane,
            runtime.config.concurrency,
            &context,
            &stopping
        ),
        run_lane(
            &runtime,
            &conn,
            platform_lane,
            runtime.config.platform_concurrency,
            &context,
            &stopping
        ),
    );
    for promoter in promoters {
        promoter.abort();
    }
    let _ = dispatcher.await;
    tracing::info!("job worker stopped");
    tenants.and(platform)
}

/// What the handlers of one worker process share.
struct Shared {
    /// Tenants' statuses, cached.
    tenants: TenantStates,
    /// Wakes the dispatcher when a tenant job of this process ended.
    slot_freed: Notify,
}

/// Runs one lane's apalis workers until `stopping`, restarting them after a backend error.
async fn run_lane(
    runtime: &JobRuntime,
    conn: &redis::aio::ConnectionManager,
    config: apalis_redis::Config,
    concurrency: usize,
    context: &Arc<Shared>,
    stopping: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let result = loop {
        // A fresh name per run: apalis treats a name's in-flight messages as that
        // worker's, and a restarted worker must not inherit a dead one's.
        let name = format!("tenantry-{}", Uuid::now_v7().simple());
        tracing::info!(worker = %name, queue = config.queue.as_ref(), concurrency, "job worker starting");
        let storage: queue::Storage = RedisStorage::new(conn.clone()).with_config(config.clone());
        let worker = WorkerBuilder::new(name)
            // apalis parks a worker that found the queue empty until something wakes it
            // (by default its heartbeat, seconds away): look again every POLL instead. An
            // idle process costs one small Lua call per POLL.
            .backend(storage.poll_with_interval(POLL))
            .data(runtime.clone())
            .data(Arc::clone(context))
            .concurrency(concurrency)
            .build(handle);
        let mut stopped = stopping.clone();
        let result = worker
            .run_until(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
                Ok::<(), std::io::Error>(())
            })
            .await;
        if *stopping.borrow() {
            break result;
        }
        // apalis gives a worker up on a backend error (Redis away, a failing script);
        // jobs must not stop for good because of it.
        if let Err(e) = &result {
            tracing::error!(error = %e, "job worker died; restarting it");
        }
        tokio::time::sleep(RESTART_DELAY).await;
    };
    result.map_err(|e| anyhow::anyhow!("job worker failed: {e}"))
}

/// How often the caps of tenants' plans are read again.
const CAPS_REFRESH: Duration = Duration::from_secs(10);

/// Admits tenants' messages in turn while this process runs: every POLL, and at once
/// when one of its tenant jobs ended. Also keeps the cluster's view of this process's
/// capacity and of the tenants' caps current.
async fn dispatch(
    runtime: JobRuntime,
    mut conn: redis::aio::ConnectionManager,
    context: Arc<Shared>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let fair = runtime.queue.fair().clone();
    let process = Uuid::now_v7().simple().to_string();
    let concurrency = runtime.config.concurrency;
    let lease = fair::slot_lease(runtime.config.lease);
    let mut caps_read: Option<tokio::time::Instant> = None;
    while !*stopping.borrow() {
        if caps_read.is_none_or(|at| at.elapsed() >= CAPS_REFRESH) {
            match refresh_caps(&runtime.db, &mut conn, &fair).await {
                Ok(()) => caps_read = Some(tokio::time::Instant::now()),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "could not refresh the tenants' job caps")
                }
            }
        }
        let admitted = async {
            fair.register_capacity(&mut conn, &process, concurrency)
                .await?;
            fair.admit(&mut conn, lease).await
        }
        .await;
        match admitted {
            Ok(messages) => {
                for message in messages {
                    // Lost here, the message is handed over again by the reconciler.
                    if let Err(e) = runtime.queue.push_admitted(message).await {
                        tracing::warn!(job_id = %message.job_id, error = %format!("{e:#}"), "could not hand an admitted job to the workers");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "job admission failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = context.slot_freed.notified() => {}
            _ = stopping.changed() => {}
        }
    }
    if let Err(e) = fair
        .unregister_capacity(&mut conn, &process, concurrency)
        .await
    {
        tracing::debug!(error = %format!("{e:#}"), "could not withdraw this worker's capacity");
    }
}

/// Writes the caps of tenants whose plan allows more jobs than the default.
async fn refresh_caps(
    db: &sqlx::PgPool,
    conn: &mut redis::aio::ConnectionManager,
    fair: &fair::Keys,
) -> anyhow::Result<()> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "select id, plan from platform.tenants where status = 'active' and plan <> 'free'",
    )
    .fetch_all(db)
    .await?;
    let caps: Vec<(Uuid, usize)> = rows
        .into_iter()
        .filter_map(|(id, plan)| Some((id, plan.parse::<Plan>().ok()?.job_concurrency())))
        .collect();
    fair.set_caps(conn, &caps).await
}

/// The worker's own Redis connection, with the backlog left while no worker ran promoted.
async fn connect(
    redis_url: &str,
    lanes: &[apalis_redis::Config],
) -> anyhow::Result<redis::aio::ConnectionManager> {
    // Its own connection: the worker's fetches and heartbeats should not queue behind
    // the API's commands on the shared multiplexed one.
    let conn = tokio::time::timeout(crate::redis::TIMEOUT, apalis_redis::connect(redis_url))
        .await
        .context("Redis did not answer in time")?
        .context("failed to connect the job worker to Redis")?;
    // A backlog left while no worker ran must be promoted in chunks before apalis
    // fetches (see `promoter`).
    for lane in lanes {
        promoter::promote_due(&mut conn.clone(), lane)
            .await
            .context("failed to promote the waiting job messages")?;
    }
    Ok(conn)
}

async fn handle(
    message: JobMessage,
    runtime: Data<JobRuntime>,
    shared: Data<Arc<Shared>>,
) -> Result<(), BoxDynError> {
    // On a task of its own, so that jobs run on every core rather than all on the
    // worker's task; a panicking job becomes an error here instead of ending the worker.
    let runtime = JobRuntime::clone(&runtime);
    let shared = Arc::clone(&shared);
    let run = tokio::spawn({
        let (runtime, shared) = (runtime.clone(), Arc::clone(&shared));
        async move { runner::handle(&runtime, &shared.tenants, message).await }
    });
    let result = run
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the job panicked: {e}")));
    if result.is_ok() && message.lane == Lane::Tenant {
        // Handled (whatever the job's outcome): its slot goes to the next tenant in turn.
        if let Err(e) = runtime.queue.release_slot(&message).await {
            tracing::warn!(job_id = %message.job_id, error = %format!("{e:#}"), "could not release the job's slot; its lease frees it");
        }
        shared.slot_freed.notify_one();
    }
    result.map_err(|e| {
        tracing::warn!(job_id = %message.job_id, error = %format!("{e:#}"), "job delivery failed; apalis retries it");
        e.into()
    })
}
