//! Runs `usage_report`: reads the period's usage rollups and stores them as a CSV file.

use chrono::{DateTime, Utc};

use super::JobContext;
use crate::jobs::types::usage_report::{MAX_ROWS, Params};

pub async fn run(
    ctx: &JobContext<'_>,
    payload: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let params = Params::parse(payload).map_err(|e| e.message)?;
    let rows: Vec<(DateTime<Utc>, String, i64)> = sqlx::query_as(
        "select bucket_start, metric, value from platform.usage_rollups
         where tenant_id = $1 and bucket_start >= $2 and bucket_start < $3
           and ($4::text is null or metric = $4)
         order by bucket_start, metric limit $5",
    )
    .bind(ctx.scope.tenant_id())
    .bind(params.from)
    .bind(params.to)
    .bind(&params.metric)
    .bind(MAX_ROWS)
    .fetch_all(&ctx.runtime.db)
    .await
    .map_err(|e| format!("could not read usage: {e}"))?;
    let mut csv = String::from("bucket_start,metric,value\n");
    for (bucket, metric, value) in &rows {
        // Metric names are internal identifiers (no commas or quotes).
        csv.push_str(&format!("{},{metric},{value}\n", bucket.to_rfc3339()));
    }
    let name = format!(
        "usage-report-{}-{}.csv",
        params.from.format("%Y%m%dT%H%M%SZ"),
        params.to.format("%Y%m%dT%H%M%SZ")
    );
    let file = crate::services::files::store_generated(
        &ctx.runtime.storage,
        &ctx.runtime.meter,
        ctx.scope,
        &name,
        "text/csv",
        csv.into(),
        None,
    )
    .await
    .map_err(|e| format!("could not store the report: {e:#}"))?;
    Ok(serde_json::json!({
        "format": "text/csv",
        "rows": rows.len(),
        "truncated": rows.len() as i64 == MAX_ROWS,
        "file_id": file.id,
        "size": file.size,
    }))
}
