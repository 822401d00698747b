//! `/api/v1/usage` and `/api/v1/tenants/{id}/usage`: metered usage, per metric and period.

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::{
    app::AppState,
    auth::granted::{Granted, GrantedOrPlatform},
    error::{AppError, AppResult, Problem},
    http::extract::{AppPath, AppQuery},
    rbac::needs,
    services::{
        metering::Metric,
        usage::{self, Usage, UsageQuery},
    },
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// RFC 3339; default: a day before `to`.
    pub from: Option<DateTime<Utc>>,
    /// RFC 3339; default: now. Minutes that start in `[from, to)` count.
    pub to: Option<DateTime<Utc>>,
    /// `minute`, `hour` (default) or `day`; at most 10,080 points per series.
    #[param(schema_with = granularity_schema)]
    pub granularity: Option<String>,
    /// One metric or several, comma-separated (`api_requests`, `compute_ms`, `bytes_in`,
    /// `bytes_out`, `jobs_executed`, `notifications_sent`, `files_uploaded`,
    /// `storage_bytes`); default: all.
    #[param(schema_with = metric_schema)]
    pub metric: Option<String>,
}

fn granularity_schema() -> utoipa::openapi::Object {
    crate::http::pagination::one_of(&["minute", "hour", "day"])
}

/// Known metric names, comma-separated, each maybe padded with whitespace (what
/// `str::trim` removes); blank means all.
fn metric_schema() -> utoipa::openapi::Object {
    const SPACE: &str =
        r"[\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*";
    let names: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
    let name = format!("({})", names.join("|"));
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .pattern(Some(format!(
            "^{SPACE}({name}({SPACE},{SPACE}{name})*{SPACE})?$"
        )))
        .build()
}

impl UsageParams {
    fn query(&self) -> Result<UsageQuery, AppError> {
        UsageQuery::parse(
            self.from,
            self.to,
            self.granularity.as_deref(),
            self.metric.as_deref(),
        )
    }
}

/// The caller's tenant's usage: a series per metric and the totals. Usage is written
/// every few seconds (`METERING_FLUSH_INTERVAL_MS`), so the last seconds may not show yet.
#[utoipa::path(get, path = "/api/v1/usage", tag = "usage", params(UsageParams),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Usage of the period", body = Usage),
        (status = 422, description = "`from` after `to`, an unknown granularity or metric, or too many points (more than 10,080 periods per series, or more than 20,160 periods × metrics in one answer)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn usage(
    State(app): State<AppState>,
    principal: Granted<needs::UsageRead>,
    AppQuery(params): AppQuery<UsageParams>,
) -> AppResult<Json<Usage>> {
    let query = params.query()?;
    Ok(Json(
        usage::usage(&app.db, principal.tenant_id(), &query).await?,
    ))
}

/// A tenant's usage: its own (`usage:read`), or any tenant's for platform operators.
/// Another tenant's id answers 404.
#[utoipa::path(get, path = "/api/v1/tenants/{id}/usage", tag = "usage",
    params(("id" = Uuid, Path), UsageParams),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Usage of the period", body = Usage),
        (status = 404, description = "No such tenant (or another tenant's)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`from` after `to`, an unknown granularity or metric, or too many points (more than 10,080 periods per series, or more than 20,160 periods × metrics in one answer)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn tenant_usage(
    State(app): State<AppState>,
    principal: GrantedOrPlatform<needs::UsageRead>,
    AppPath(id): AppPath<Uuid>,
    AppQuery(params): AppQuery<UsageParams>,
) -> AppResult<Json<Usage>> {
    super::tenants::visible(&app, &principal, id).await?;
    let query = params.query()?;
    Ok(Json(usage::usage(&app.db, id, &query).await?))
}
