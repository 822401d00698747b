//! The `tenantry` binary: its commands, configuration errors and graceful shutdown.

use std::{process::Stdio, time::Duration};

use axum::{Router, routing::get};
use tenantry::{AppState, db::TenantSchema};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    process::Command,
};
use uuid::Uuid;

use crate::helpers::TestApp;

pub(crate) fn tenantry() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenantry"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// A minimal HTTP/1.1 GET over a fresh connection; returns status and body.
pub(crate) async fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    http_request(addr, "GET", path, &[], None).await
}

/// A minimal HTTP/1.1 request with extra headers and an optional JSON body; returns
/// status and body, or `UnexpectedEof` when the connection closed with no answer.
pub(crate) async fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let body = body.map(ToString::to_string).unwrap_or_default();
    let headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    if raw.is_empty() {
        // Closed unanswered, as a server shutting down does with a connection whose
        // request it has not started: nothing was promised.
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// [`http_request`] with an optional bearer token.
async fn http_call(
    addr: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&serde_json::Value>,
) -> std::io::Result<(u16, String)> {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    http_request(addr, method, path, &headers, body).await
}

/// Waits until `serve` at `addr` answers readiness with 200.
pub(crate) async fn wait_ready(addr: &str) {
    for _ in 0..150 {
        if let Ok((200, _)) = http_get(addr, "/health/ready").await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server at {addr} did not come up");
}

pub(crate) async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

#[tokio::test]
async fn openapi_command_prints_the_served_document() {
    let app = TestApp::new().await;
    let output = tenantry().arg("openapi").output().await.expect("run");
    assert!(output.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(printed, app.get("/openapi.json").await.json());
}

#[tokio::test]
async fn a_bad_setting_stops_the_program_naming_the_variable() {
    let output = tenantry()
        .arg("serve")
        .env("DATABASE_MAX_CONNECTIONS", "plenty")
        .output()
        .await
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DATABASE_MAX_CONNECTIONS"), "{stderr}");
}

#[tokio::test]
async fn serve_answers_and_exits_zero_on_sigterm() {
    let app = TestApp::new().await;
    let addr = format!("127.0.0.1:{}", free_port().await);
    let mut child = tenantry()
        .arg("serve")
        .env("BIND_ADDR", &addr)
        .env("DATABASE_URL", app.database_url())
        .env("REDIS_URL", &app.state.config.redis.url)
        .env("REDIS_KEY_PREFIX", &app.state.config.redis.key_prefix)
        .spawn()
        .expect("spawn");

    let mut ready = None;
    for _ in 0..100 {
        if let Ok(answer) = http_get(&addr, "/health/ready").await {
            ready = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = ready.expect("the server came up");
    assert_eq!(status, 200, "{body}");

    let pid = child.id().expect("pid").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits promptly")
        .expect("wait");
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn shutdown_finishes_the_requests_in_flight() {
    let app = TestApp::new().await;
    let started = std::sync::Arc::new(tokio::sync::Notify::new());
    let routes = Router::<AppState>::new().route(
        "/slow",
        get({
            let started = started.clone();
            move || async move {
                started.notify_one();
                tokio::time::sleep(Duration::from_millis(500)).await;
                "finished"
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = app.state.clone();
    let server = tokio::spawn(async move {
        let router = tenantry::http::with_layers(routes, state);
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });

    let in_flight = tokio::spawn({
        let addr = addr.clone();
        async move { http_get(&addr, "/slow").await }
    });
    // Shut down while the request is being handled.
    started.notified().await;
    stop.send(()).expect("signal shutdown");

    let (status, body) = in_flight.await.expect("join").expect("answered");
    assert_eq!(status, 200);
    assert!(body.contains("finished"));
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops")
        .expect("join")
        .expect("clean stop");
    assert!(
        TcpStream::connect(&addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn migrate_command_exits_non_zero_when_a_tenant_fails() {
    let app = TestApp::new().await;
    let bad = Uuid::now_v7();
    sqlx::query(
        "insert into platform.tenants (id, name, slug, status) values ($1, 'Bad', 'bad', 'active')",
    )
    .bind(bad)
    .execute(app.db())
    .await
    .expect("tenant");
    let schema = TenantSchema::for_tenant(bad).quoted();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "create schema {schema}; create table {schema}.roles (id int)"
    )))
    .execute(app.db())
    .await
    .expect("sabotage");

    let migrate = || {
        let mut command = tenantry();
        command
            .args(["migrate", "--concurrency", "2"])
            .env("DATABASE_URL", app.database_url());
        command
    };
    let failed = migrate().output().await.expect("run");
    assert_eq!(failed.status.code(), Some(1));
    let log = String::from_utf8_lossy(&failed.stdout);
    assert!(log.contains("tenant migration failed"), "{log}");

    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("drop table {schema}.roles")))
        .execute(app.db())
        .await
        .expect("repair");
    let fixed = migrate().output().await.expect("run");
    assert!(
        fixed.status.success(),
        "{}",
        String::from_utf8_lossy(&fixed.stdout)
    );
}

#[tokio::test]
async fn admin_command_creates_a_platform_operator_who_can_log_in() {
    let app = TestApp::new().await;
    let output = tenantry()
        .args([
            "admin",
            "create-platform-admin",
            "--email",
            "root@ops.example.com",
        ])
        .env("TENANTRY_ADMIN_PASSWORD", "operator password")
        .env("DATABASE_URL", app.database_url())
        .output()
        .await
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("operator password"));
    let res = app
        .post_json(
            "/api/v1/admin/login",
            &serde_json::json!({"email": "root@ops.example.com", "password": "operator password"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["scope"], "platform");

    let short = tenantry()
        .args([
            "admin",
            "create-platform-admin",
            "--email",
            "x@ops.example.com",
            "--password",
            "short",
        ])
        .env("DATABASE_URL", app.database_url())
        .output()
        .await
        .expect("run");
    assert!(!short.status.success());
}

#[tokio::test]
async fn replicas_without_a_key_file_share_the_development_key_through_the_database() {
    let app = TestApp::new().await;
    let spawn = |addr: &str| {
        tenantry()
            .args(["serve", "--no-workers"])
            .env("BIND_ADDR", addr)
            .env("DATABASE_URL", app.database_url())
            .env("REDIS_URL", &app.state.config.redis.url)
            .env("REDIS_KEY_PREFIX", &app.state.config.redis.key_prefix)
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (
        format!("127.0.0.1:{}", free_port().await),
        format!("127.0.0.1:{}", free_port().await),
    );
    // Started together: they race to create the key, and must still agree on it.
    let (_first, _second) = (spawn(&a), spawn(&b));
    tokio::join!(wait_ready(&a), wait_ready(&b));

    let (status, body) = http_call(
        &a,
        "POST",
        "/api/v1/tenants",
        None,
        Some(&serde_json::json!({
            "name": "Replicated", "slug": "replicated",
            "admin": {"email": "admin@replicated.example.com", "password": crate::helpers::PASSWORD},
        })),
    )
    .await
    .expect("onboard on the first replica");
    assert_eq!(status, 201, "{body}");
    let onboarded: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let token = onboarded["tokens"]["access_token"].as_str().expect("token");

    let (status, body) = http_call(&b, "GET", "/api/v1/tenants/current", Some(token), None)
        .await
        .expect("call the second replica");
    assert_eq!(
        status, 200,
        "a token from one replica works on the other: {body}"
    );

    let (_, jwks_a) = http_get(&a, "/.well-known/jwks.json").await.expect("jwks");
    let (_, jwks_b) = http_get(&b, "/.well-known/jwks.json").await.expect("jwks");
    assert_eq!(jwks_a, jwks_b, "both publish the same key");
    let stored: i64 = sqlx::query_scalar("select count(*) from platform.secrets")
        .fetch_one(app.db())
        .await
        .expect("count");
    assert_eq!(stored, 1, "one development key");
}
