//! Every route of the service, on one screen.
//!
//! Public operational routes sit at the top level; the tenant API lives under `/api/v1`
//! and each of its routes will name its permission here.

use axum::{Router, routing::get};

use super::{docs, ops};
use crate::app::AppState;

/// The routes, without the layer stack (see [`super::app`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(ops::index::index))
        .route("/health", get(ops::health::health))
        .route("/health/live", get(ops::health::live))
        .route("/health/ready", get(ops::health::ready))
        .route("/metrics", get(ops::metrics::metrics))
        .merge(docs::router())
}
