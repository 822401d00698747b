//! The bare baseline of `scripts/bench-hot-path.sh` and `scripts/bench-table.sh`: an axum +
//! sqlx server running the product's own SQL on the same tenant table and answering the
//! same JSON, with no authentication, no layers and no logs — what the product is compared
//! with:
//! - `GET /resources/{id}`: the primary-key select of `GET /api/v1/resources/{id}`;
//! - `GET /resources`: the first page (20) of `GET /api/v1/resources`;
//! - `POST /resources` `{name, data}`: the insert of `POST /api/v1/resources`;
//! - `GET /health`: a constant JSON body, as the product's `GET /health`.
//!
//! It is a bench target (never part of the product binary); the script builds it with
//! `cargo bench --bench hot_path_bare --no-run` and runs the executable with:
//! - `BARE_BIND_ADDR` (default `127.0.0.1:18081`);
//! - `DATABASE_URL` (the product's database) and `DATABASE_MAX_CONNECTIONS` (16);
//! - `BARE_TENANT_ID`: the tenant whose schema holds the resource (its first user owns the
//!   resources the bare handler creates);
//! - `BARE_POOL`: `sqlx` (the default: sqlx's pool as it comes, which pings a connection
//!   before handing it out) or `product` (the product's pool settings, `db::connect`,
//!   which skips that ping for a connection used within the last second).

use std::net::SocketAddr;

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::get,
};
use serde::Deserialize;
use sqlx::{AssertSqlSafe, PgPool, postgres::PgPoolOptions};
use tenantry::{db::TenantSchema, services::resources::Resource};
use uuid::Uuid;

#[derive(Clone)]
struct Bare {
    db: PgPool,
    /// The statements, rendered once for the tenant's schema.
    select: &'static str,
    list: &'static str,
    insert: &'static str,
    owner: Uuid,
}

#[derive(Deserialize)]
struct NewResource {
    name: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

const COLUMNS: &str = "id, name, data, owner_id, version, created_at, updated_at";

async fn list_resources(State(bare): State<Bare>) -> Result<Json<Vec<Resource>>, StatusCode> {
    sqlx::query_as(AssertSqlSafe(bare.list))
        .bind(None::<Uuid>)
        .bind(21_i64)
        .fetch_all(&bare.db)
        .await
        .map(|mut page| {
            page.truncate(20);
            Json(page)
        })
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}

async fn create_resource(
    State(bare): State<Bare>,
    Json(new): Json<NewResource>,
) -> Result<(StatusCode, Json<Resource>), StatusCode> {
    sqlx::query_as(AssertSqlSafe(bare.insert))
        .bind(Uuid::now_v7())
        .bind(new.name.trim())
        .bind(new.data.unwrap_or_else(|| serde_json::json!({})))
        .bind(bare.owner)
        .fetch_one(&bare.db)
        .await
        .map(|created| (StatusCode::CREATED, Json(created)))
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
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
    let schema = TenantSchema::for_tenant(tenant).quoted();
    let leak = |sql: String| -> &'static str { Box::leak(sql.into_boxed_str()) };
    let db = match env("BARE_POOL").as_deref() {
        None | Some("sqlx") => {
            PgPoolOptions::new()
                .max_connections(connections)
                .connect(&url)
                .await?
        }
        Some("product") => tenantry::db::connect(&url, connections)?,
        Some(other) => anyhow::bail!("BARE_POOL is sqlx or product, not {other}"),
    };
    let owner = sqlx::query_scalar(AssertSqlSafe(format!(
        "select id from {schema}.users order by created_at limit 1"
    )))
    .fetch_one(&db)
    .await?;
    let bare = Bare {
        select: leak(format!(
            "select {COLUMNS} from {schema}.resources where id = $1"
        )),
        list: leak(format!(
            "select {COLUMNS} from {schema}.resources where ($1::uuid is null or id < $1)
             order by id desc limit $2"
        )),
        insert: leak(format!(
            "insert into {schema}.resources (id, name, data, owner_id) values ($1, $2, $3, $4)
             returning {COLUMNS}"
        )),
        owner,
        db,
    };
    let app = Router::new()
        .route("/health", get(health))
        .route("/resources", get(list_resources).post(create_resource))
        .route("/resources/{id}", get(get_resource))
        .with_state(bare);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("bare handler listening on {addr}");
    axum::serve(listener, app).await?;
    Ok(())
}
