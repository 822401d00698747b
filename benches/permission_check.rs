//! What a cached permission check costs a request.
//!
//! Run: `cargo bench --bench permission_check` (DATABASE_URL and REDIS_URL as for the
//! tests; `scripts/bench-permission-check.sh` starts them when needed). It makes a
//! throwaway database, onboards a tenant, and measures in-process (no sockets):
//! 1. `PermissionSet::allows` alone;
//! 2. `JwtKeys::verify` alone;
//! 3. requests through the whole router: `GET /health` (no authentication) against
//!    `GET /api/v1/tenants/current` with an API key and with a JWT, every lookup cached;
//!    the difference is what authentication plus the permission check cost per request.

use std::time::{Duration, Instant};

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode},
};
use serde_json::{Value, json};
use tenantry::{
    App, AppState, Config,
    db::migrate,
    rbac::{Grant, Permission, PermissionSet},
};
use tower::ServiceExt;

const ROUNDS: u32 = 20_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let database = format!("tenantry_bench_{}", uuid::Uuid::new_v4().simple());
    let url = format!(
        "{}/{database}",
        server.rsplit_once('/').map_or(&*server, |s| s.0)
    );
    tenantry::db::ensure_database(&url).await?;
    let result = run(&url, &redis, &database).await;
    let admin = sqlx::PgPool::connect(&server).await?;
    let drop = format!("drop database if exists \"{database}\" with (force)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&admin)
        .await?;
    result
}

fn allows_alone() {
    let set = PermissionSet::new([
        Grant::Resource("resources"),
        Grant::One(Permission::UsersRead),
        Grant::One(Permission::FilesRead),
        Grant::One(Permission::JobsRead),
        Grant::One(Permission::TenantRead),
    ]);
    let started = Instant::now();
    let mut hits = 0u32;
    for i in 0..1_000_000u32 {
        let p = Permission::ALL[(i as usize) % Permission::ALL.len()];
        hits += u32::from(std::hint::black_box(&set).allows(p));
    }
    let per = started.elapsed() / 1_000_000;
    println!(
        "PermissionSet::allows:                         {per:>10.2?} per check ({hits} allowed)"
    );
}

async fn send(router: &Router, path: &str, header: Option<(&str, &str)>) -> (StatusCode, Value) {
    let mut request = Request::get(path);
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn per_request(router: &Router, path: &str, header: Option<(&str, &str)>) -> Duration {
    for _ in 0..500 {
        send(router, path, header).await;
    }
    let started = Instant::now();
    for _ in 0..ROUNDS {
        let (status, _) = send(router, path, header).await;
        assert_eq!(status, StatusCode::OK);
    }
    started.elapsed() / ROUNDS
}

async fn run(url: &str, redis: &str, database: &str) -> anyhow::Result<()> {
    let config = Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.to_owned()),
        "REDIS_URL" => Some(redis.to_owned()),
        "REDIS_KEY_PREFIX" => Some(format!("bench:{database}:")),
        "RUST_LOG" => Some("error".to_owned()),
        _ => None,
    })?;
    let state = AppState::new(App::new(config).await?);
    migrate::run_shared(&state.db).await?;
    let router = tenantry::http::app(state.clone());

    let onboard = Request::post("/api/v1/tenants")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"name": "Bench", "slug": "bench", "admin": {"email": "a@bench.example.com", "password": "bench password"}})
                .to_string(),
        ))?;
    let response = router.clone().oneshot(onboard).await?;
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(response.into_body(), usize::MAX).await?)?;
    let token = format!(
        "Bearer {}",
        body["tokens"]["access_token"].as_str().unwrap_or_default()
    );
    let create_key = Request::post("/api/v1/api-keys")
        .header("content-type", "application/json")
        .header("authorization", &token)
        .body(Body::from(
            json!({"name": "bench", "role": "admin"}).to_string(),
        ))?;
    let response = router.clone().oneshot(create_key).await?;
    let key: Value =
        serde_json::from_slice(&axum::body::to_bytes(response.into_body(), usize::MAX).await?)?;
    let key = key["key"].as_str().unwrap_or_default().to_owned();

    println!(
        "permission check benchmark: in-process router, {ROUNDS} sequential requests each, debug_assertions={}",
        cfg!(debug_assertions)
    );
    allows_alone();
    let bare_token = token.trim_start_matches("Bearer ");
    let started = Instant::now();
    for _ in 0..2_000 {
        state.jwt.verify(bare_token).expect("valid token");
    }
    println!(
        "JwtKeys::verify (RS256):                       {:>10.2?} per token",
        started.elapsed() / 2_000
    );
    let health = per_request(&router, "/health", None).await;
    let with_key = per_request(
        &router,
        "/api/v1/tenants/current",
        Some(("x-api-key", &key)),
    )
    .await;
    let with_jwt = per_request(
        &router,
        "/api/v1/tenants/current",
        Some(("authorization", &token)),
    )
    .await;
    println!("GET /health (no authentication):               {health:>10.2?} per request");
    println!(
        "GET /api/v1/tenants/current, API key (cached): {with_key:>10.2?} per request  (+{:.2?} for authentication and permission check)",
        with_key.saturating_sub(health)
    );
    println!(
        "GET /api/v1/tenants/current, JWT (cached):     {with_jwt:>10.2?} per request  (+{:.2?}, mostly the RS256 verify)",
        with_jwt.saturating_sub(health)
    );
    Ok(())
}
