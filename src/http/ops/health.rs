use std::{collections::BTreeMap, future::Future, time::Instant};

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;

/// Liveness: the process answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
    pub version: &'static str,
}

/// Readiness: whether this replica can serve, and how each dependency answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ok` when every check passed; `degraded` (still 200) when only a dependency the
    /// service can do without for a while is down (Redis: the limiter and caches fall
    /// back; storage: only file routes fail); `unavailable` (503) when the database is
    /// down.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// One entry per dependency (`database`, `redis`, `storage`).
    pub checks: BTreeMap<&'static str, Check>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    pub latency_ms: f64,
    /// Why the check failed (no secrets: the kind of failure only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

const HEALTH: Health = Health {
    status: "ok",
    version: env!("CARGO_PKG_VERSION"),
};

/// The process is up.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(HEALTH)
}

/// The process is up (for liveness probes).
#[utoipa::path(get, path = "/health/live", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn live() -> Json<Health> {
    Json(HEALTH)
}

/// Whether this replica can serve: 503 only without the database. Redis or file storage
/// down is reported as `degraded` with 200, because failing readiness on every replica for a
/// shared dependency would take the whole service out of the load balancer while it
/// could still serve.
#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready (`ok`), or `degraded`: Redis or file storage is down and the service serves without it", body = Readiness),
        (status = 503, description = "The database is down", body = Readiness),
    ))]
pub async fn ready(State(app): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let (database, redis, storage) = tokio::join!(
        check(crate::db::ping(&app.db)),
        check(crate::redis::ping(&app.redis)),
        check(app.storage.ping()),
    );
    let (status, word) = readiness(database.is_ok(), redis.is_ok() && storage.is_ok());
    let checks = BTreeMap::from([
        ("database", database),
        ("redis", redis),
        ("storage", storage),
    ]);
    (
        status,
        Json(Readiness {
            status: word,
            checks,
        }),
    )
}

/// The answer for the checks' outcomes: only the database is required.
fn readiness(database: bool, others: bool) -> (StatusCode, &'static str) {
    match (database, others) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (true, false) => (StatusCode::OK, "degraded"),
        (true, true) => (StatusCode::OK, "ok"),
    }
}

async fn check(probe: impl Future<Output = anyhow::Result<()>>) -> Check {
    let started = Instant::now();
    let result = tokio::time::timeout(std::time::Duration::from_secs(3), probe).await;
    let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    let error = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            tracing::warn!(error = %format!("{e:#}"), "readiness check failed");
            Some("unreachable".to_owned())
        }
        Err(_) => Some("timed out".to_owned()),
    };
    Check {
        status: if error.is_none() { "ok" } else { "unavailable" },
        latency_ms,
        error,
    }
}

impl Check {
    fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}
