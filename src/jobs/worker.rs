//! The worker process part: apalis workers on the Redis queue and the reconciler.
//! Runs inside `tenantry serve` (unless `--no-workers` or `WORKERS_ENABLED=false`) and
//! alone as `tenantry worker`.

use std::future::Future;

use anyhow::Context;
use apalis::prelude::{BoxDynError, Data, WorkerBuilder, WorkerBuilderExt};
use apalis_redis::RedisStorage;
use uuid::Uuid;

use super::{JobMessage, queue, reconciler, runner};
use crate::AppState;

/// Runs workers and the reconciler until `shutdown` completes, then stops taking jobs and
/// lets the running ones finish. A job that cannot finish (the process is killed) keeps
/// its row `running` until its lease runs out; the reconciler then hands it over again.
pub async fn run(
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    super::describe_metrics();
    // Its own connection: the worker's fetches and heartbeats should not queue behind
    // the API's commands on the shared multiplexed one.
    let conn = tokio::time::timeout(
        crate::redis::TIMEOUT,
        apalis_redis::connect(state.config.redis_url.as_str()),
    )
    .await
    .context("Redis did not answer in time")?
    .context("failed to connect the job worker to Redis")?;
    let storage: queue::Storage =
        RedisStorage::new(conn).with_config(queue::storage_config(&state.config));
    // A fresh name per process: apalis treats a name's in-flight messages as that
    // process's, and a restarted process must not inherit a dead one's.
    let name = format!("tenantry-{}", Uuid::now_v7().simple());
    tracing::info!(worker = %name, concurrency = state.config.job_concurrency, "job worker starting");
    let worker = WorkerBuilder::new(name)
        .backend(storage)
        .data(state.clone())
        .concurrency(state.config.job_concurrency)
        .build(handle);
    let reconciler = tokio::spawn(reconciler::run(state.clone()));
    let result = worker
        .run_until(async move {
            shutdown.await;
            Ok::<(), std::io::Error>(())
        })
        .await;
    reconciler.abort();
    tracing::info!("job worker stopped");
    result.map_err(|e| anyhow::anyhow!("job worker failed: {e}"))
}

async fn handle(message: JobMessage, state: Data<AppState>) -> Result<(), BoxDynError> {
    // On a task of its own, so that jobs run on every core rather than all on the
    // worker's task; a panicking job becomes an error here instead of ending the worker.
    let state = AppState::clone(&state);
    let run = tokio::spawn(async move { runner::handle(&state, message).await });
    let result = run
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the job panicked: {e}")));
    result.map_err(|e| {
        tracing::warn!(job_id = %message.job_id, error = %format!("{e:#}"), "job delivery failed; apalis retries it");
        e.into()
    })
}
