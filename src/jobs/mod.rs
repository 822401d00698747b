//! Background jobs: apalis workers over a Redis queue, with a row per job in the tenant's
//! `jobs` table as the record of truth.
//!
//! The flow: the API writes the row (`queued`) in its transaction, and after the commit
//! pushes a small [`JobMessage`] (ids only) to Redis. A worker takes the message, checks
//! the tenant, *claims* the row (a conditional update that also bumps `attempts` and sets
//! a lease), runs the job with its lease renewed, and records the outcome with an update
//! fenced by the attempt number, so a worker that lost its claim can never overwrite the
//! outcome of the one that took over. The [`reconciler`] hands rows to Redis again when
//! their message went missing (a crash between commit and push) or when their worker died
//! (expired lease). Duplicate messages are harmless: only one claim can succeed.
//!
//! `docs/jobs.md` describes the design and its guarantees.

pub mod backoff;
pub mod fair;
pub mod handlers;
pub mod promoter;
pub mod queue;
pub mod reconciler;
pub mod record;
pub mod runner;
pub mod runtime;
pub mod tenants;
pub mod types;
pub mod watch;
pub mod worker;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use fair::Lane;
pub use queue::JobQueue;
pub use runtime::JobRuntime;
pub use types::JobType;

/// What travels through Redis: ids only. The payload stays in the row, so a message
/// never carries tenant data and a stale message cannot resurrect an old payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub tenant_id: Uuid,
    /// The row in the tenant's `jobs` table; for [`MessageKind::TenantPurge`] the tenant id.
    pub job_id: Uuid,
    #[serde(default)]
    pub kind: MessageKind,
    /// Which workers run it; messages from before lanes existed are tenants'.
    #[serde(default)]
    pub lane: Lane,
}

/// Whether the message names a job row or a platform job that has none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A row in the tenant's `jobs` table.
    #[default]
    Row,
    /// Purge of a deleted tenant: its schema (and `jobs` table) is what goes away, so the
    /// job's record is the tenant's `deleted` status and the schema still existing.
    TenantPurge,
}

impl JobMessage {
    /// A job row of `lane`.
    pub fn row(tenant_id: Uuid, job_id: Uuid, lane: Lane) -> Self {
        Self {
            tenant_id,
            job_id,
            kind: MessageKind::Row,
            lane,
        }
    }

    pub fn tenant_purge(tenant_id: Uuid) -> Self {
        Self {
            tenant_id,
            job_id: tenant_id,
            kind: MessageKind::TenantPurge,
            lane: Lane::Platform,
        }
    }
}

impl Lane {
    /// The lane of a job row, and so whether it is the platform's (not the tenant's to
    /// cancel): what nobody submitted (`created_by` null: identity mail, clean-ups), or of
    /// a type only the platform runs, or of a type this build does not know.
    pub fn of_row(created_by: Option<Uuid>, job_type: &str) -> Self {
        if created_by.is_some() && JobType::parse(job_type).is_some_and(|t| !t.is_platform_owned())
        {
            Self::Tenant
        } else {
            Self::Platform
        }
    }
}

/// HELP texts of the job metrics, so the exposition passes `promtool check metrics`.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "tenantry_jobs_total",
        "Job runs finished, by type and outcome (succeeded, failed, retried, cancelled, lost)."
    );
    describe_histogram!(
        "tenantry_job_duration_seconds",
        Unit::Seconds,
        "Run time of one job attempt, by type."
    );
    describe_gauge!(
        "tenantry_jobs_queue_depth",
        "Messages waiting in the Redis queue, by state (ready, scheduled), as last seen by the reconciler."
    );
}
