use axum::{
    Router,
    extract::State,
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
    routing::get,
};

use crate::{app::AppState, error::AppError};

/// Prometheus text exposition of the process's metrics. With `METRICS_TOKEN` set, only for
/// `Authorization: Bearer <token>`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    description = "Answers here unless METRICS_BIND_ADDR moves it to a listener of its own; \
        with METRICS_TOKEN set it requires that bearer token.",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "METRICS_TOKEN is set and the request does not carry it",
            body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &app.config.telemetry.metrics_token
        && !presents(&headers, token)
    {
        return AppError::unauthenticated("this endpoint requires the metrics token")
            .into_response();
    }
    let mut text = app.metrics.render(&app.db);
    app.autoscaler.gauge.render(&mut text);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Whether the request's bearer token is `token`, compared in constant time.
fn presents(headers: &HeaderMap, token: &str) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Digests of equal length: the comparison tells nothing of the token's length.
    let digest = |s: &str| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes());
    aws_lc_rs::constant_time::verify_slices_are_equal(
        digest(presented).as_ref(),
        digest(token).as_ref(),
    )
    .is_ok()
}

/// `/metrics` alone, for the listener on `METRICS_BIND_ADDR`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}
