//! `/api/v1/jobs`: submit, list, read and cancel background jobs.

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    AppState,
    auth::granted::Granted,
    error::{AppError, AppResult, FieldError, FieldErrors, Problem},
    http::{
        extract::{AppJson, AppPath, AppQuery},
        pagination::{PageParams, Paginated},
    },
    rbac::needs,
    services::jobs::{self, Job, NewJob},
};

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateJob {
    /// `echo` or `usage_report`.
    #[serde(rename = "type")]
    #[schema(schema_with = public_types)]
    pub job_type: String,
    /// A JSON object of at most 16 KiB. `echo`: anything, with optional `delay_ms`
    /// (≤ 10000) and `fail_times`; `usage_report`: `from`, `to` (RFC 3339, ≤ 31 days
    /// apart) and optional `metric`.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
    /// 1 to 10; default 3.
    #[schema(minimum = 1, maximum = 10)]
    pub max_attempts: Option<i32>,
}

/// The type parsed (a public one), the payload checked for it, `max_attempts` within
/// its bounds: every broken field named at once.
impl TryFrom<CreateJob> for NewJob {
    type Error = FieldErrors;

    fn try_from(body: CreateJob) -> Result<Self, FieldErrors> {
        NewJob::parse(&body.job_type, body.payload, body.max_attempts)
    }
}

fn public_types() -> utoipa::openapi::Object {
    crate::http::pagination::one_of(&["echo", "usage_report"])
}

/// The answer to a submission.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub id: Uuid,
    /// `queued`.
    pub status: String,
}

/// Submit a job; it runs in the background.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs", request_body = CreateJob,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Accepted", body = Accepted),
        (status = 422, description = "Unknown type or invalid payload", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(app): State<AppState>,
    principal: Granted<needs::JobsCreate>,
    AppJson(body): AppJson<CreateJob>,
) -> AppResult<(StatusCode, Json<Accepted>)> {
    let job = NewJob::try_from(body)?;
    let row = jobs::submit(&app.jobs, &principal, job).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            id: row.id,
            status: row.status,
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobFilter {
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    #[param(schema_with = status_schema)]
    pub status: Option<String>,
    /// A job type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub job_type: Option<String>,
    /// 1 to 100; default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(schema_with = crate::http::pagination::cursor_schema)]
    pub cursor: Option<String>,
}

const STATUSES: &[&str] = &["queued", "running", "succeeded", "failed", "cancelled"];

fn status_schema() -> utoipa::openapi::Object {
    crate::http::pagination::one_of(STATUSES)
}

/// The tenant's jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobFilter),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Jobs", body = Paginated<Job>),
        (status = 422, description = "Bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    principal: Granted<needs::JobsRead>,
    AppQuery(filter): AppQuery<JobFilter>,
) -> AppResult<Json<Paginated<Job>>> {
    let page = PageParams {
        limit: filter.limit,
        cursor: filter.cursor.clone(),
    }
    .page()?;
    if let Some(status) = &filter.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(AppError::validation(vec![FieldError::new(
            "status",
            "must be queued, running, succeeded, failed or cancelled",
        )]));
    }
    let rows = jobs::list(
        &principal.scope,
        filter.status.as_deref(),
        filter.job_type.as_deref(),
        page.before,
        page.fetch(),
    )
    .await?;
    Ok(Json(Paginated::new(rows, page, |j| j.id)))
}

/// One job, with its status, attempts, result or error.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 404, description = "No such job in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    principal: Granted<needs::JobsRead>,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<Json<Job>> {
    Ok(Json(jobs::get(&principal.scope, id).await?))
}

/// Cancel a job: a queued one at once, a running one at its next check. The platform's
/// own jobs (its mail: welcome, verification, password reset; clean-ups) are not the
/// tenant's to stop.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Cancelled, or cancellation requested", body = Job),
        (status = 403, description = "FORBIDDEN: a platform job, whatever its state", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job already finished", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel(
    principal: Granted<needs::JobsCancel>,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<(StatusCode, Json<Job>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(jobs::cancel(&principal, id).await?),
    ))
}
