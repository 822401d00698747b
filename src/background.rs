//! Background work: the loops a process runs beside HTTP (or instead of it), with one
//! lifecycle.
//!
//! Each [`Subsystem`] starts the same way, `start(&app, &background)`, and stops the same
//! way: [`Background::shutdown`] (what SIGTERM leads to) first cancels the *work* — HTTP
//! takes no new connection, job workers fetch no new job, loops end their round — and
//! waits for what is in flight; only then are the *flushers* told to write what was
//! recorded (usage, API key use), so nothing recorded by a request or a job is lost.
//!
//! `tenantry serve`, `serve --no-workers` and `tenantry worker` are lists of subsystems
//! ([`Subsystem::SERVE`], [`Subsystem::API`], [`Subsystem::WORKER`]). Singletons (the
//! reconciler, the autoscaling evaluator) hold a Redis lease, so any number of processes
//! may run them.

use std::future::Future;

use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::AppState;

/// A part of the background work, started by [`Subsystem::start`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subsystem {
    /// Writes the usage counts of requests, jobs and sends every `METERING_FLUSH_INTERVAL`
    /// and at shutdown.
    Metering,
    /// Writes API keys' `last_used_at` every few seconds and at shutdown.
    KeyUses,
    /// Hears other replicas' authentication changes (logouts, revocations, role changes).
    Invalidations,
    /// Keeps per-tenant rate-limit overrides current.
    RateLimitOverrides,
    /// apalis workers on the job queue, with the promoter of delayed messages.
    JobWorkers,
    /// Hands lost jobs and pending purges to the queue again (a singleton, by lease).
    Reconciler,
    /// The autoscaling evaluator (a singleton, by lease).
    Autoscaler,
    /// The webhook dispatcher: its own lane, safe in any number of processes.
    Webhooks,
    /// Fits this process's tenant connection lanes to the number of tenants
    /// (`DATABASE_TENANT_POOLS=auto`).
    PoolLayout,
}

impl Subsystem {
    /// `tenantry serve`: everything.
    pub const SERVE: &[Self] = &[
        Self::Metering,
        Self::KeyUses,
        Self::Invalidations,
        Self::RateLimitOverrides,
        Self::JobWorkers,
        Self::Reconciler,
        Self::Autoscaler,
        Self::Webhooks,
        Self::PoolLayout,
    ];

    /// `tenantry serve --no-workers`: what the requests of this process need.
    pub const API: &[Self] = &[
        Self::Metering,
        Self::KeyUses,
        Self::Invalidations,
        Self::RateLimitOverrides,
        Self::PoolLayout,
    ];

    /// `tenantry worker`: jobs and the singleton loops, and the meter their work records
    /// into. Invalidations keep the tenant and user caches that jobs read current.
    pub const WORKER: &[Self] = &[
        Self::Metering,
        Self::Invalidations,
        Self::JobWorkers,
        Self::Reconciler,
        Self::Autoscaler,
        Self::Webhooks,
        Self::PoolLayout,
    ];

    /// Starts this subsystem's tasks on `background`.
    pub fn start(self, app: &AppState, background: &Background) {
        match self {
            Self::Metering => crate::services::metering::start(app, background),
            Self::KeyUses => crate::auth::authenticate::start_key_use_flusher(app, background),
            Self::Invalidations => crate::auth::invalidation::start(app, background),
            Self::RateLimitOverrides => {
                crate::services::rate_limit::overrides::start(app, background)
            }
            Self::JobWorkers => crate::jobs::worker::start(app, background),
            Self::Reconciler => crate::jobs::reconciler::start(app, background),
            Self::Autoscaler => crate::services::scaling::evaluator::start(app, background),
            Self::Webhooks => crate::services::webhooks::dispatcher::start(app, background),
            Self::PoolLayout => crate::db::pools::start(app, background),
        }
    }
}

/// The background tasks of one process, and the two tokens that stop them in order.
#[derive(Debug, Default)]
pub struct Background {
    /// Cancelled when the process is asked to stop: intake ends.
    stop: CancellationToken,
    /// Cancelled once the work has drained: flushers write the last of what was recorded.
    drain: CancellationToken,
    work: TaskTracker,
    flushers: TaskTracker,
}

impl Background {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts `subsystems` on this process's background.
    pub fn start(app: &AppState, subsystems: &[Subsystem]) -> Self {
        let background = Self::new();
        for subsystem in subsystems {
            subsystem.start(app, &background);
        }
        tracing::info!(?subsystems, "background work started");
        background
    }

    /// Runs `task` until shutdown. It is handed the token that says stop and should end
    /// soon after it is cancelled, having finished what it had started.
    pub fn spawn<F>(&self, name: &'static str, task: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop.clone();
        let running = task(stop.clone());
        self.work.spawn(async move {
            running.await;
            if !stop.is_cancelled() {
                tracing::error!(subsystem = name, "background task ended before shutdown");
            }
        });
    }

    /// Runs a flusher: `task` is handed a token cancelled only after every task started
    /// by [`Background::spawn`] has ended, and should then write what is left and end.
    pub fn spawn_flusher<F>(&self, task: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.flushers.spawn(task(self.drain.clone()));
    }

    /// Completes when shutdown has begun: the graceful-shutdown signal of the HTTP server.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        self.stop.clone().cancelled_owned()
    }

    /// Begins the shutdown: intake ends; [`Background::shutdown`] waits for the rest.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Begins the shutdown when the process receives SIGTERM or Ctrl-C.
    pub fn stop_on_signal(&self) {
        let stop = self.stop.clone();
        tokio::spawn(async move {
            crate::cli::shutdown_signal().await;
            stop.cancel();
        });
    }

    /// Stops intake, waits for the work in flight, then lets the flushers write and waits
    /// for them. Call it after the HTTP server (if any) has finished its requests, so that
    /// what they recorded is flushed too, and before the pools close.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.work.close();
        self.work.wait().await;
        self.drain.cancel();
        self.flushers.close();
        self.flushers.wait().await;
        tracing::info!("background work stopped");
    }
}

impl Drop for Background {
    /// A background dropped without [`Background::shutdown`] (an error path, a test)
    /// still ends its tasks, flushers last-writing as at a shutdown, without waiting.
    fn drop(&mut self) {
        self.stop.cancel();
        self.drain.cancel();
    }
}
