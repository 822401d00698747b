//! `files.cleanup` (internal): removes the tenant's presigned uploads that were never
//! completed, once their URL has expired (row and object).
//!
//! Each presigned upload enqueues one, due just after that upload's pending lifetime
//! ([`crate::services::files::PENDING_LIFETIME`]); a run removes every expired pending
//! upload of the tenant, so runs are idempotent and a lost one is covered by the next.

use super::JobContext;

pub async fn run(ctx: &JobContext<'_>) -> Result<serde_json::Value, String> {
    let removed = crate::services::files::cleanup_expired(&ctx.runtime.storage, ctx.scope)
        .await
        .map_err(|e| format!("could not remove expired uploads: {e:#}"))?;
    Ok(serde_json::json!({ "removed": removed }))
}
