//! The HTTP edge: routes, the layer stack and the server.

pub mod access;
pub mod api;
pub mod client_names;
pub mod contract;
pub mod docs;
pub mod extract;
pub mod idempotency;
pub mod limits;
pub mod middleware;
pub mod no_nul;
pub mod openapi_operations;
pub mod ops;
pub mod pagination;
pub mod request_shapes;
pub mod router;
pub mod validate;

use std::time::Duration;

use anyhow::Context;
use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, Method, StatusCode, header},
    middleware::from_fn,
};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::CompressionLayer,
    cors::{AllowOrigin, CorsLayer},
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    timeout::TimeoutLayer,
};

use crate::app::AppState;

/// The whole service: every route, and the document's, inside the layer stack.
pub fn app(state: AppState) -> Router {
    with_layers(router::routes(&state).merge(docs::router()), state)
}

/// Puts `routes` inside the SPEC's layer stack (listed outermost first) and gives them
/// the state. Tests use it to drive the stack with routes of their own.
pub fn with_layers(routes: Router<AppState>, state: AppState) -> Router {
    let config = &state.config;
    let layers = ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            HeaderName::from_static("x-api-key"),
        ]))
        .layer(from_fn(middleware::edge))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            config.http.request_timeout,
        ))
        .layer(DefaultBodyLimit::max(config.http.body_limit_bytes))
        .layer(CompressionLayer::new())
        .layer(cors(&config.http.cors_allowed_origins));

    routes
        .fallback(middleware::not_found)
        .layer(layers)
        .with_state(state)
}

fn cors(origins: &[String]) -> CorsLayer {
    let origins = origins.iter().filter_map(|o| o.parse().ok());
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("ratelimit"),
            HeaderName::from_static("ratelimit-policy"),
        ])
        .max_age(Duration::from_secs(600))
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    let service = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
        .context("server error")
}
