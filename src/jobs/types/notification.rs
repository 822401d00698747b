//! `notification.send` (internal): delivers one message through the notification
//! backend. Until the SNS backends exist, that is the `log` backend's outbox.

use serde::Deserialize;

use super::{JobContext, invalid};
use crate::{error::FieldError, services::notify::Message};

#[derive(Debug, Deserialize)]
pub struct Params {
    pub to: String,
    pub template: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body: String,
}

/// Templates the identity flows send; the outbox records the name as `&'static str`.
const TEMPLATES: &[&str] = &["welcome", "password_reset", "email_verification", "message"];

impl Params {
    pub fn parse(payload: &serde_json::Value) -> Result<Self, FieldError> {
        let params: Self = serde_json::from_value(payload.clone())
            .map_err(|e| invalid("to", &format!("is not a notification: {e}")))?;
        if params.to.trim().is_empty() {
            return Err(invalid("to", "must not be empty"));
        }
        if !TEMPLATES.contains(&params.template.as_str()) {
            return Err(invalid("template", "is not a known template"));
        }
        Ok(params)
    }
}

/// Delivers with the job id as the deduplication key: a retry of a job whose first run
/// delivered but crashed before recording it does not deliver twice.
pub async fn run(
    ctx: &JobContext<'_>,
    payload: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let params = Params::parse(payload).map_err(|e| e.message)?;
    let template = TEMPLATES
        .iter()
        .copied()
        .find(|t| *t == params.template)
        .unwrap_or("message");
    let delivered = ctx.state.outbox.send_once(
        ctx.job_id,
        Message {
            to: params.to,
            template,
            subject: params.subject,
            body: params.body,
        },
    );
    Ok(serde_json::json!({ "backend": "log", "delivered": delivered }))
}
