//! The subsystems of a process: `tenantry serve`, `serve --no-workers` and `tenantry
//! worker` are lists of them ([`Subsystem::SERVE`], [`Subsystem::API`],
//! [`Subsystem::WORKER`]), each started on one [`Background`]. Singletons (the
//! reconciler, the autoscaling evaluator) hold a Redis lease, so any number of processes
//! may run them.

use crate::{AppState, background::Background};

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
            Self::Metering => crate::services::metering::flusher::start(
                app.meter.clone(),
                app.db.clone(),
                &app.config.metering,
                background,
            ),
            Self::KeyUses => crate::auth::authenticate::start_key_use_flusher(
                app.auth.clone(),
                app.db.clone(),
                background,
            ),
            Self::Invalidations => app.invalidations.start(background),
            Self::RateLimitOverrides => crate::services::rate_limit::overrides::refresh::start(
                app.limits.overrides.clone(),
                app.db.clone(),
                background,
            ),
            Self::JobWorkers => crate::jobs::worker::start(&app.job_runtime, background),
            Self::Reconciler => crate::jobs::reconciler::start(&app.job_runtime, background),
            Self::Autoscaler => {
                crate::services::scaling::evaluator::start(&app.autoscaler, background)
            }
            Self::Webhooks => crate::services::webhooks::dispatcher::start(
                app.tenant_db.clone(),
                app.meter.clone(),
                &app.config,
                background,
            ),
            Self::PoolLayout => crate::app::start_pool_layout(app, background),
        }
    }
}

impl Background {
    /// Starts `subsystems` on this process's background.
    pub fn start(app: &AppState, subsystems: &[Subsystem]) -> Self {
        let background = Self::new();
        for subsystem in subsystems {
            subsystem.start(app, &background);
        }
        tracing::info!(?subsystems, "background work started");
        background
    }
}
