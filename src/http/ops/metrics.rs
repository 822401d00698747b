use axum::{extract::State, http::header, response::IntoResponse};

use crate::app::AppState;

/// Prometheus text exposition of the process's metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let mut text = app.metrics.render(&app.db);
    app.autoscaler.gauge.render(&mut text);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}
