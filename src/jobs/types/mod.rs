//! The job types and what a payload of each may hold; what running one does is in
//! [`crate::jobs::handlers`].

pub mod echo;
pub mod notification;
pub mod purge;
pub mod usage_report;

use serde::Serialize;
use utoipa::ToSchema;

use crate::error::FieldError;

/// The largest payload accepted, serialised.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

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

    /// Checks a payload for this type (an object of at most [`MAX_PAYLOAD_BYTES`]).
    pub fn validate(self, payload: &serde_json::Value) -> Result<(), FieldError> {
        if !payload.is_object() {
            return Err(FieldError::new("payload", "must be a JSON object"));
        }
        if !crate::domain::storable_json::storable_numbers(payload) {
            return Err(FieldError::new(
                "payload",
                crate::domain::storable_json::STORABLE_NUMBERS,
            ));
        }
        if serde_json::to_vec(payload).map_or(0, |v| v.len()) > MAX_PAYLOAD_BYTES {
            return Err(FieldError::new("payload", "must be at most 16 KiB"));
        }
        match self {
            Self::Echo => echo::Params::parse(payload).map(drop),
            Self::UsageReport => usage_report::Params::parse(payload).map(drop),
            Self::NotificationSend => notification::Params::parse(payload).map(drop),
            Self::FilesCleanup => Ok(()),
        }
    }
}

/// A payload field as a field error named `payload.<name>`.
pub(crate) fn invalid(name: &str, message: &str) -> FieldError {
    FieldError::new(format!("payload.{name}"), message)
}
