//! Runs `echo`: waits `delay_ms`, fails the first `fail_times` attempts, then returns the
//! payload.

use std::time::Duration;

use super::JobContext;
use crate::jobs::types::echo::Params;

pub async fn run(
    ctx: &JobContext<'_>,
    payload: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let params = Params::parse(payload).map_err(|e| e.message)?;
    if params.delay_ms > 0 {
        // An await point: a cancellation or shutdown drops the job here.
        tokio::time::sleep(Duration::from_millis(params.delay_ms)).await;
    }
    if i64::from(ctx.attempt) <= i64::from(params.fail_times) {
        return Err(format!(
            "echo failed on purpose (attempt {} of the first {} to fail)",
            ctx.attempt, params.fail_times
        ));
    }
    Ok(payload.clone())
}
