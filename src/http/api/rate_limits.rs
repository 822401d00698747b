//! `/api/v1/tenants/{id}/rate-limit`: platform operators override a tenant's plan rate.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    app::AppState,
    auth::principal::Principal,
    client_address::ClientInfo,
    error::{AppError, AppResult, FieldError, Problem},
    http::extract::{AppJson, AppPath},
    services::rate_limit::{Override, overrides::manage as overrides},
};

/// Largest override accepted, for either field.
const MAX: i64 = 10_000_000;

#[derive(Debug, Deserialize, ToSchema)]
pub struct RateLimitOverride {
    /// Average requests per minute, 1 to 10,000,000.
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub requests_per_minute: i64,
    /// Requests accepted at once, 1 to 10,000,000; default `requests_per_minute`.
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub burst: Option<i64>,
}

fn bounded(field: &str, value: i64) -> Result<i32, FieldError> {
    if (1..=MAX).contains(&value) {
        Ok(i32::try_from(value).unwrap_or(i32::MAX))
    } else {
        Err(FieldError::new(
            field,
            format!("must be between 1 and {MAX}"),
        ))
    }
}

/// Set a tenant's rate limit, replacing its plan's (platform). In force at once on the
/// replica that answers, within seconds on the others.
#[utoipa::path(put, path = "/api/v1/tenants/{id}/rate-limit", tag = "tenants",
    params(("id" = Uuid, Path)), request_body = RateLimitOverride,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The override in force", body = Override),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Out of bounds", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set(
    State(app): State<AppState>,
    principal: Principal,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<RateLimitOverride>,
) -> AppResult<Json<Override>> {
    let rpm = bounded("requests_per_minute", body.requests_per_minute);
    let burst = bounded("burst", body.burst.unwrap_or(body.requests_per_minute));
    let (rpm, burst) = match (rpm, burst) {
        (Ok(rpm), Ok(burst)) => (rpm, burst),
        (rpm, burst) => {
            return Err(AppError::validation(
                [rpm.err(), burst.err()].into_iter().flatten().collect(),
            ));
        }
    };
    let row = overrides::set(
        &app.db,
        &app.invalidations,
        principal.actor(),
        &client,
        id,
        rpm,
        burst,
    )
    .await?;
    Ok(Json(row))
}

/// Remove a tenant's override: its plan's rate applies again (platform).
#[utoipa::path(delete, path = "/api/v1/tenants/{id}/rate-limit", tag = "tenants",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The plan's rate applies"),
        (status = 404, description = "No such tenant, or it has no override", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove(
    State(app): State<AppState>,
    principal: Principal,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<StatusCode> {
    overrides::remove(&app.db, &app.invalidations, principal.actor(), &client, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
