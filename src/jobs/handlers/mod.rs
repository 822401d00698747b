//! What running a job does, one module per job type; the types and their payloads are in
//! [`crate::jobs::types`].

pub mod echo;
pub mod files_cleanup;
pub mod notification;
pub mod usage_report;

use uuid::Uuid;

use crate::{
    db::TenantScope,
    jobs::{JobRuntime, types::JobType},
};

/// What a running job may use: the job runtime's handles and the tenant's scope.
pub struct JobContext<'a> {
    pub runtime: &'a JobRuntime,
    pub scope: &'a TenantScope,
    pub job_id: Uuid,
    /// 1 on the first run.
    pub attempt: i32,
    /// The last attempt the job gets.
    pub max_attempts: i32,
}

/// Runs one attempt; `Err` is the error recorded (and retried while attempts remain).
pub async fn run(
    job_type: JobType,
    ctx: &JobContext<'_>,
    payload: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    match job_type {
        JobType::Echo => echo::run(ctx, payload).await,
        JobType::UsageReport => usage_report::run(ctx, payload).await,
        JobType::NotificationSend => notification::run(ctx, payload).await,
        JobType::FilesCleanup => files_cleanup::run(ctx).await,
    }
}
