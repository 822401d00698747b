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

/// Readiness: every dependency answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ok` when every check passed, else `unavailable`.
    pub status: &'static str,
    /// One entry per dependency (`database`, `redis`).
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

/// The database and Redis answer; 503 when one does not.
#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A dependency is down", body = Readiness),
    ))]
pub async fn ready(State(app): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let (database, redis) = tokio::join!(
        check(async {
            sqlx::query("select 1").execute(&app.db).await?;
            Ok(())
        }),
        check(crate::redis::ping(&app.redis)),
    );
    let checks = BTreeMap::from([("database", database), ("redis", redis)]);
    let all_ok = checks.values().all(|c| c.status == "ok");
    let (status, word) = if all_ok {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (
        status,
        Json(Readiness {
            status: word,
            checks,
        }),
    )
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
