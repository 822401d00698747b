//! The job types and what a payload of each may hold; what running one does is in
//! [`crate::jobs::handlers`].

pub mod echo;
pub mod notification;
pub mod purge;
pub mod usage_report;

use crate::error::FieldError;

/// The largest payload accepted, serialised.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

pub use crate::domain::JobType;

impl JobType {
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
