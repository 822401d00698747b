//! The bare baseline of `scripts/bench-hot-path.sh`: an axum + sqlx server with one route,
//! `GET /resources/{id}`, running the same primary-key select as the product's
//! `GET /api/v1/resources/{id}` on the same tenant table, and answering the same JSON.
//! No authentication, no layers, no logs: what the product is compared with.
//!
//! It is a bench target (never part of the product binary); the script builds it with
//! `cargo bench --bench hot_path_bare --no-run` and runs the executable with:
//! - `BARE_BIND_ADDR` (default `127.0.0.1:18081`);
//! - `DATABASE_URL` (the product's database) and `DATABASE_MAX_CONNECTIONS` (16);
//! - `BARE_TENANT_ID`: the tenant whose schema holds the resource.

use std::net::SocketAddr;

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::get,
};
use sqlx::{AssertSqlSafe, PgPool, postgres::PgPoolOptions};
use tenantry::{db::TenantSchema, services::resources::Resource};
use uuid::Uuid;

#[derive(Clone)]
struct Bare {
    db: PgPool,
    /// The select, rendered once for the tenant's schema.
    select: &'static str,
}

async fn get_resource(
    State(bare): State<Bare>,
    Path(id): Path<Uuid>,
) -> Result<Json<Resource>, StatusCode> {
    sqlx::query_as(AssertSqlSafe(bare.select))
        .bind(id)
        .fetch_optional(&bare.db)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
        .map(Json)
        .ok_or(StatusCode::NOT_FOUND)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    let addr: SocketAddr = env("BARE_BIND_ADDR")
        .unwrap_or_else(|| "127.0.0.1:18081".into())
        .parse()?;
    let url = env("DATABASE_URL").ok_or_else(|| anyhow::anyhow!("DATABASE_URL is not set"))?;
    let connections: u32 = env("DATABASE_MAX_CONNECTIONS").map_or(Ok(16), |v| v.parse())?;
    let tenant: Uuid = env("BARE_TENANT_ID")
        .ok_or_else(|| anyhow::anyhow!("BARE_TENANT_ID is not set"))?
        .parse()?;
    let select = format!(
        "select id, name, data, owner_id, version, created_at, updated_at
         from {}.resources where id = $1",
        TenantSchema::for_tenant(tenant).quoted()
    );
    let bare = Bare {
        db: PgPoolOptions::new()
            .max_connections(connections)
            .connect(&url)
            .await?,
        select: Box::leak(select.into_boxed_str()),
    };
    let app = Router::new()
        .route("/resources/{id}", get(get_resource))
        .with_state(bare);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("bare handler listening on {addr}");
    axum::serve(listener, app).await?;
    Ok(())
}
