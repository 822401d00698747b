//! Background jobs: how many run at once per worker process, their leases and
//! heartbeats, retries, and the reconciler's period.

use std::time::Duration;

use super::{ConfigError, vars::Vars};

#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// First retry delay of a failed job; later ones double, up to a minute, with jitter
    /// (`JOB_RETRY_BASE_MS`).
    pub retry_base: Duration,
    /// How long a running job stays claimed without its worker renewing the claim; a
    /// dead worker's job is picked up again after it (`JOB_LEASE_MS`).
    pub lease: Duration,
    /// How often a running job renews its lease and looks for a cancellation request
    /// (`JOB_HEARTBEAT_MS`).
    pub heartbeat: Duration,
    /// Tenants' jobs one worker process runs at the same time (`JOB_CONCURRENCY`).
    pub concurrency: usize,
    /// Platform jobs (identity mail, purges, clean-ups) one worker process runs at the
    /// same time, beside the tenants' (`JOB_PLATFORM_CONCURRENCY`).
    pub platform_concurrency: usize,
    /// How often the reconciler looks for queued jobs missing from Redis and expired
    /// leases (`JOB_RECONCILE_MS`).
    pub reconcile_interval: Duration,
    /// A queued job not picked up for this long is handed to Redis again
    /// (`JOB_REQUEUE_AFTER_MS`).
    pub requeue_after: Duration,
}

impl JobsConfig {
    pub(super) fn from_vars(
        vars: &Vars<'_, impl Fn(&str) -> Option<String>>,
    ) -> Result<Self, ConfigError> {
        let millis = |name: &'static str, default: u64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_millis(vars.parse(name, default)?))
        };
        let jobs = Self {
            retry_base: millis("JOB_RETRY_BASE_MS", 1000)?,
            lease: millis("JOB_LEASE_MS", 30_000)?,
            heartbeat: millis("JOB_HEARTBEAT_MS", 1000)?,
            concurrency: vars.parse("JOB_CONCURRENCY", 32)?,
            platform_concurrency: vars.parse("JOB_PLATFORM_CONCURRENCY", 8)?,
            reconcile_interval: millis("JOB_RECONCILE_MS", 5000)?,
            requeue_after: millis("JOB_REQUEUE_AFTER_MS", 60_000)?,
        };
        jobs.validate()?;
        Ok(jobs)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.concurrency == 0 {
            return Err(ConfigError::invalid(
                "JOB_CONCURRENCY",
                "must be at least 1",
            ));
        }
        if self.platform_concurrency == 0 {
            return Err(ConfigError::invalid(
                "JOB_PLATFORM_CONCURRENCY",
                "must be at least 1",
            ));
        }
        if self.heartbeat.is_zero() || self.heartbeat >= self.lease {
            return Err(ConfigError::invalid(
                "JOB_HEARTBEAT_MS",
                "must be at least 1 and shorter than JOB_LEASE_MS",
            ));
        }
        if self.reconcile_interval.is_zero() {
            return Err(ConfigError::invalid(
                "JOB_RECONCILE_MS",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
