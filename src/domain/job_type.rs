//! The job types: the work `POST /api/v1/jobs` accepts and the platform's own background
//! work. What a payload of each may hold is checked in `crate::jobs::types`, what running
//! one does in `crate::jobs::handlers`.

use serde::Serialize;
use utoipa::ToSchema;

/// A job type with a row in the tenant's `jobs` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum JobType {
    /// Returns its payload; `delay_ms` (≤ 10,000) waits first, `fail_times` fails that
    /// many attempts first.
    #[serde(rename = "echo")]
    Echo,
    /// Usage of a period as CSV.
    #[serde(rename = "usage_report")]
    UsageReport,
    /// Internal: delivers one message.
    #[serde(rename = "notification.send")]
    NotificationSend,
    /// Internal: removes the tenant's presigned uploads left pending past their expiry.
    #[serde(rename = "files.cleanup")]
    FilesCleanup,
}

impl JobType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Echo => "echo",
            Self::UsageReport => "usage_report",
            Self::NotificationSend => "notification.send",
            Self::FilesCleanup => "files.cleanup",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Echo,
            Self::UsageReport,
            Self::NotificationSend,
            Self::FilesCleanup,
        ]
        .into_iter()
        .find(|t| t.as_str() == raw)
    }

    /// Whether only the platform runs jobs of this type (clean-ups): such a job is the
    /// platform's whoever's tenant it serves. `notification.send` is not: a tenant's own
    /// sends are its jobs; the platform's mail is told apart by having no creator.
    pub fn is_platform_owned(self) -> bool {
        matches!(self, Self::FilesCleanup)
    }

    /// Whether clients may submit it through `POST /api/v1/jobs`.
    pub fn is_public(self) -> bool {
        matches!(self, Self::Echo | Self::UsageReport)
    }
}
