//! Runs `notification.send`: delivers the message and records the outcome on its log row.

use super::JobContext;
use crate::{
    jobs::types::notification::Params,
    services::{
        metering::Metric,
        notifications::{self, Outcome, Outgoing},
    },
};

/// The longest error kept on the log row.
const MAX_ERROR_CHARS: usize = 1000;

/// Sends unless the log row is already final: a retry of a job whose delivery went
/// through (and was recorded) does not deliver twice. The last failed attempt marks
/// the row `failed`; earlier ones keep it `queued` with the error.
pub async fn run(
    ctx: &JobContext<'_>,
    payload: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let params = Params::parse(payload).map_err(|e| e.message)?;
    let status = notifications::log_status(ctx.scope, params.log_id)
        .await
        .map_err(|e| format!("could not read the notification log: {e}"))?;
    let Some((status, message_id)) = status else {
        return Err("the notification log row is missing".to_owned());
    };
    if status != "queued" {
        return Ok(serde_json::json!({
            "status": status, "message_id": message_id, "delivered": false
        }));
    }
    let notifier = &ctx.runtime.notifier;
    let message = Outgoing {
        channel: params.channel,
        to: params.to,
        template: params.template,
        subject: params.subject,
        body: params.body,
        data: params.data,
    };
    let record = |outcome| notifications::record(ctx.scope, params.log_id, ctx.job_id, outcome);
    match notifier.send(params.log_id, &message).await {
        Ok(message_id) => {
            ctx.runtime
                .meter
                .record(ctx.scope.tenant_id(), Metric::NotificationsSent, 1);
            record(Outcome::Sent(&message_id))
                .await
                .map_err(|e| format!("sent, but could not record it: {e}"))?;
            Ok(serde_json::json!({
                "status": "sent", "message_id": message_id, "backend": notifier.name()
            }))
        }
        Err(error) => {
            let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
            tracing::warn!(
                log_id = %params.log_id,
                channel = message.channel.as_str(),
                attempt = ctx.attempt,
                %error,
                "notification not delivered"
            );
            let outcome = if ctx.attempt >= ctx.max_attempts {
                Outcome::Failed(&error)
            } else {
                Outcome::Retrying(&error)
            };
            if let Err(e) = record(outcome).await {
                tracing::warn!(log_id = %params.log_id, error = %e, "could not record the failed send");
            }
            Err(error)
        }
    }
}
