//! `notification.send` (internal): delivers one message through the configured backend
//! and records the outcome on its `notification_logs` row.

use serde::Deserialize;
use uuid::Uuid;

use super::invalid;
use crate::{domain::Channel, error::FieldError};

#[derive(Debug, Deserialize)]
pub struct Params {
    pub log_id: Uuid,
    pub channel: Channel,
    pub to: String,
    pub template: Option<String>,
    // Removed from the payload once the log row is final.
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body: String,
    pub data: Option<serde_json::Value>,
}

impl Params {
    pub fn parse(payload: &serde_json::Value) -> Result<Self, FieldError> {
        let params: Self = serde_json::from_value(payload.clone())
            .map_err(|e| invalid("to", &format!("is not a notification: {e}")))?;
        if params.to.trim().is_empty() {
            return Err(invalid("to", "must not be empty"));
        }
        Ok(params)
    }
}
