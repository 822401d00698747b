use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// Where to find things.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceIndex {
    pub name: &'static str,
    pub version: &'static str,
    pub docs: &'static str,
    pub openapi: &'static str,
    pub health: &'static str,
}

/// Names the service and links its documentation and health check.
#[utoipa::path(get, path = "/", tag = "operations",
    responses((status = 200, description = "Service index", body = ServiceIndex)))]
pub async fn index() -> Json<ServiceIndex> {
    Json(ServiceIndex {
        name: "tenantry",
        version: env!("CARGO_PKG_VERSION"),
        docs: "/docs",
        openapi: "/openapi.json",
        health: "/health",
    })
}
