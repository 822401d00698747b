//! `/api/v1/auth/sessions`: the caller's own sessions.

use axum::{Json, extract::State, http::StatusCode};
use uuid::Uuid;

use crate::{
    app::AppState,
    auth::principal::TenantPrincipal,
    client_address::ClientInfo,
    error::{AppResult, Problem},
    http::{
        extract::{AppPath, AppQuery},
        pagination::{PageParams, Paginated},
    },
    services::active_sessions::{self, Session},
};

/// The caller's live sessions (refresh-token families), newest first; `current` marks
/// the one the calling token belongs to.
#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth", params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Sessions", body = Paginated<Session>),
        (status = 403, description = "API keys and operators have no sessions", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    principal: TenantPrincipal,
    AppQuery(params): AppQuery<PageParams>,
) -> AppResult<Json<Paginated<Session>>> {
    let page = params.page()?;
    let rows = active_sessions::list(&principal, page.before, page.fetch()).await?;
    Ok(Json(Paginated::new(rows, page, |s| s.id)))
}

/// End one of the caller's sessions: its refresh tokens are revoked and its access
/// tokens refused, here at once and on every replica as a logout is.
#[utoipa::path(delete, path = "/api/v1/auth/sessions/{id}", tag = "auth", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Ended"),
        (status = 403, description = "API keys and operators have no sessions", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session of the caller", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn end(
    State(app): State<AppState>,
    principal: TenantPrincipal,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<StatusCode> {
    active_sessions::end(&app.invalidations, &app.jwt, &principal, id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}
