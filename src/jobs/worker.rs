//! The job workers: apalis workers on the Redis queue, and the promoter of delayed
//! messages. Run inside `tenantry serve` (unless `--no-workers` or `WORKERS_ENABLED=false`)
//! and in `tenantry worker` (see [`crate::background`]).

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context;

use apalis::prelude::{BackendExt, BoxDynError, Data, WorkerBuilder, WorkerBuilderExt};
use apalis_redis::RedisStorage;
use uuid::Uuid;

use super::{JobMessage, promoter, queue, runner, tenants::TenantStates};
use crate::{AppState, background::Background};

/// How often an idle worker looks for new messages: the pick-up latency of a job
/// submitted to an idle queue.
const POLL: Duration = Duration::from_millis(50);

/// Pause before a worker that died is started again.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Starts the job workers on `background` (see [`run`]).
pub fn start(app: &AppState, background: &Background) {
    let state = app.clone();
    background.spawn("job workers", move |stop| async move {
        if let Err(e) = run(state, stop.cancelled_owned()).await {
            tracing::error!(error = %format!("{e:#}"), "job workers failed");
        }
    });
}

/// Runs workers until `shutdown` completes, then stops taking jobs and lets the running
/// ones finish. A job that cannot finish (the process is killed) keeps its row `running`
/// until its lease runs out; the reconciler then hands it over again. Redis away at start
/// is waited for, like Redis lost later.
pub async fn run(
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    super::describe_metrics();
    let config = queue::storage_config(&state.config);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let conn = loop {
        match connect(&state, &config).await {
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
    let promoter = tokio::spawn(promoter::run(conn.clone(), config.clone(), POLL));
    let tenants = Arc::new(TenantStates::default());
    let result = loop {
        // A fresh name per run: apalis treats a name's in-flight messages as that
        // worker's, and a restarted worker must not inherit a dead one's.
        let name = format!("tenantry-{}", Uuid::now_v7().simple());
        tracing::info!(worker = %name, concurrency = state.config.job_concurrency, "job worker starting");
        let storage: queue::Storage = RedisStorage::new(conn.clone()).with_config(config.clone());
        let worker = WorkerBuilder::new(name)
            // apalis parks a worker that found the queue empty until something wakes it
            // (by default its heartbeat, seconds away): look again every POLL instead. An
            // idle process costs one small Lua call per POLL.
            .backend(storage.poll_with_interval(POLL))
            .data(state.clone())
            .data(Arc::clone(&tenants))
            .concurrency(state.config.job_concurrency)
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
    promoter.abort();
    tracing::info!("job worker stopped");
    result.map_err(|e| anyhow::anyhow!("job worker failed: {e}"))
}

/// The worker's own Redis connection, with the backlog left while no worker ran promoted.
async fn connect(
    state: &AppState,
    config: &apalis_redis::Config,
) -> anyhow::Result<redis::aio::ConnectionManager> {
    // Its own connection: the worker's fetches and heartbeats should not queue behind
    // the API's commands on the shared multiplexed one.
    let conn = tokio::time::timeout(
        crate::redis::TIMEOUT,
        apalis_redis::connect(state.config.redis_url.as_str()),
    )
    .await
    .context("Redis did not answer in time")?
    .context("failed to connect the job worker to Redis")?;
    // A backlog left while no worker ran must be promoted in chunks before apalis
    // fetches (see `promoter`).
    promoter::promote_due(&mut conn.clone(), config)
        .await
        .context("failed to promote the waiting job messages")?;
    Ok(conn)
}

async fn handle(
    message: JobMessage,
    state: Data<AppState>,
    tenants: Data<Arc<TenantStates>>,
) -> Result<(), BoxDynError> {
    // On a task of its own, so that jobs run on every core rather than all on the
    // worker's task; a panicking job becomes an error here instead of ending the worker.
    let state = AppState::clone(&state);
    let tenants = Arc::clone(&tenants);
    let run = tokio::spawn(async move { runner::handle(&state, &tenants, message).await });
    let result = run
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the job panicked: {e}")));
    result.map_err(|e| {
        tracing::warn!(job_id = %message.job_id, error = %format!("{e:#}"), "job delivery failed; apalis retries it");
        e.into()
    })
}
