//! `/api/v1/audit-logs`: who did what in the tenant.

use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::{
    auth::granted::Granted,
    error::{AppError, AppResult, Problem},
    http::{
        extract::AppQuery,
        pagination::{PageParams, Paginated},
    },
    rbac::needs,
    services::audit::{self, AuditFilter, AuditLog},
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Exact action, e.g. `auth.login_failed`.
    pub action: Option<String>,
    pub actor_id: Option<Uuid>,
    /// Entries at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Entries before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// 1 to 100; default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(schema_with = crate::http::pagination::cursor_schema)]
    pub cursor: Option<String>,
}

/// The tenant's audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit-logs", tag = "audit", params(AuditParams),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Entries", body = Paginated<AuditLog>),
        (status = 422, description = "Bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    principal: Granted<needs::AuditRead>,
    AppQuery(params): AppQuery<AuditParams>,
) -> AppResult<Json<Paginated<AuditLog>>> {
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .page()?;
    if let (Some(from), Some(to)) = (params.from, params.to)
        && from > to
    {
        return Err(AppError::invalid_field("from", "must not be after `to`"));
    }
    let filter = AuditFilter {
        action: params.action,
        actor_id: params.actor_id,
        from: params.from,
        to: params.to,
    };
    let rows = audit::list(&principal.scope, &filter, page.before, page.fetch()).await?;
    Ok(Json(Paginated::new(rows, page, |e| e.id)))
}
