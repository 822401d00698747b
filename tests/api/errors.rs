//! Every error, whoever raised it, is RFC 9457 problem+json with the request id.

use std::time::Duration;

use axum::{
    Router,
    http::{Method, Request, header},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::json;
use tenantry::{
    AppError, AppState,
    http::extract::{AppJson, AppPath, AppQuery},
};
use uuid::Uuid;

use crate::helpers::TestApp;

#[derive(Deserialize)]
#[expect(dead_code, reason = "only deserialised")]
struct Admin {
    email: String,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "only deserialised")]
struct Signup {
    name: String,
    admin: Admin,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "only deserialised")]
struct Page {
    limit: u8,
}

/// Routes that exercise the extractors and the layers the way real handlers do.
fn probe_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/probe/json",
            post(|AppJson(_): AppJson<Signup>| async { "ok" }),
        )
        .route(
            "/probe/items/{id}",
            get(|AppPath(id): AppPath<Uuid>| async move { id.to_string() }),
        )
        .route(
            "/probe/list",
            get(|AppQuery(_): AppQuery<Page>| async { "ok" }),
        )
        .route(
            "/probe/panic",
            get(|| async {
                if true {
                    panic!("secret-panic-text");
                }
                "unreachable"
            }),
        )
        .route(
            "/probe/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/probe/sql",
            get(
                |axum::extract::State(app): axum::extract::State<AppState>| async move {
                    sqlx::query("select * from secret_table_name")
                        .execute(&app.db)
                        .await
                        .map_err(AppError::from)?;
                    Ok::<_, AppError>("ok")
                },
            ),
        )
}

async fn probe_app() -> TestApp {
    TestApp::builder()
        .with_routes(probe_routes())
        .with_config(|c| {
            c.http.request_timeout = Duration::from_millis(300);
            c.http.body_limit_bytes = 1024;
        })
        .build()
        .await
}

#[tokio::test]
async fn unknown_route_is_a_404_problem() {
    let app = TestApp::new().await;
    let res = app.get("/no/such/route").await;
    let problem = res.assert_problem(404, "NOT_FOUND");
    assert!(problem.get("errors").is_none());
}

#[tokio::test]
async fn wrong_method_is_a_405_problem() {
    let app = TestApp::new().await;
    let res = app.send(Method::DELETE, "/health", None, "").await;
    res.assert_problem(405, "METHOD_NOT_ALLOWED");
    assert!(res.header("allow").is_some_and(|a| a.contains("GET")));
}

#[tokio::test]
async fn broken_json_is_a_400_problem() {
    let app = probe_app().await;
    let res = app
        .send(
            Method::POST,
            "/probe/json",
            Some("application/json"),
            "{\"name\": ",
        )
        .await;
    res.assert_problem(400, "MALFORMED_REQUEST");
}

#[tokio::test]
async fn a_json_array_is_not_taken_for_an_object() {
    let app = probe_app().await;
    // serde would build `Signup` from its fields in order.
    let res = app
        .send(
            Method::POST,
            "/probe/json",
            Some("application/json"),
            r#" ["Acme", {"email": "a@example.com"}]"#,
        )
        .await;
    let problem = res.assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(problem["errors"][0]["field"], "body");
    let res = app
        .send(
            Method::POST,
            "/probe/json",
            Some("application/json"),
            r#"{"name": "Acme", "admin": {"email": "a@example.com"}}"#,
        )
        .await;
    assert_eq!(res.status, 200);
}

#[tokio::test]
async fn wrong_content_type_is_a_415_problem() {
    let app = probe_app().await;
    let res = app
        .send(Method::POST, "/probe/json", Some("text/plain"), "{}")
        .await;
    res.assert_problem(415, "UNSUPPORTED_MEDIA_TYPE");
    let res = app.send(Method::POST, "/probe/json", None, "{}").await;
    res.assert_problem(415, "UNSUPPORTED_MEDIA_TYPE");
}

#[tokio::test]
async fn missing_field_is_a_422_naming_the_field() {
    let app = probe_app().await;
    let res = app
        .post_json("/probe/json", &json!({"admin": {"email": "a@b.c"}}))
        .await;
    let problem = res.assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(problem["errors"][0]["field"], "name", "{problem}");

    let res = app
        .post_json("/probe/json", &json!({"name": "x", "admin": {}}))
        .await;
    let problem = res.assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(problem["errors"][0]["field"], "admin.email", "{problem}");

    let res = app
        .post_json("/probe/json", &json!({"name": "x", "admin": {"email": 5}}))
        .await;
    let problem = res.assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(problem["errors"][0]["field"], "admin.email", "{problem}");
}

#[tokio::test]
async fn body_over_the_limit_is_a_413_problem() {
    let app = probe_app().await;
    let big = json!({"name": "x".repeat(4096), "admin": {"email": "a@b.c"}});
    let res = app.post_json("/probe/json", &big).await;
    res.assert_problem(413, "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn bad_path_and_query_parameters_are_422_problems() {
    let app = probe_app().await;
    app.get("/probe/items/not-a-uuid")
        .await
        .assert_problem(422, "VALIDATION_FAILED");
    let id = Uuid::now_v7();
    let res = app.get(&format!("/probe/items/{id}")).await;
    assert_eq!(res.text(), id.to_string());

    let problem = app
        .get("/probe/list?limit=many")
        .await
        .assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(problem["errors"][0]["field"], "limit", "{problem}");
    app.get("/probe/list?limit=300")
        .await
        .assert_problem(422, "VALIDATION_FAILED");
}

#[tokio::test]
async fn a_panic_is_a_500_that_hides_its_message_and_the_service_goes_on() {
    let app = probe_app().await;
    let res = app.get("/probe/panic").await;
    let problem = res.assert_problem(500, "INTERNAL");
    assert!(!res.text().contains("secret-panic-text"), "{problem}");
    let id = Uuid::now_v7();
    assert_eq!(app.get(&format!("/probe/items/{id}")).await.status, 200);
}

#[tokio::test]
async fn a_database_error_never_reaches_the_client() {
    let app = probe_app().await;
    let res = app.get("/probe/sql").await;
    res.assert_problem(500, "INTERNAL");
    let body = res.text();
    assert!(!body.contains("secret_table_name"), "{body}");
    assert!(!body.contains("relation"), "{body}");
}

#[tokio::test]
async fn a_slow_request_times_out_with_a_503_problem() {
    let app = probe_app().await;
    let res = app.get("/probe/slow").await;
    res.assert_problem(503, "SERVICE_UNAVAILABLE");
}

#[tokio::test]
async fn request_ids_are_echoed_when_sane_and_generated_otherwise() {
    let app = TestApp::new().await;
    let res = app
        .request(
            Request::get("/health")
                .header("x-request-id", "client-id-123")
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(res.header("x-request-id"), Some("client-id-123"));

    let res = app
        .request(
            Request::get("/nope")
                .header("x-request-id", "bad id with spaces")
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await;
    let generated = res.header("x-request-id").expect("an id").to_owned();
    assert_ne!(generated, "bad id with spaces");
    assert!(Uuid::parse_str(&generated).is_ok_and(|id| id.get_version_num() == 7));
    res.assert_problem(404, "NOT_FOUND");
}

#[tokio::test]
async fn errors_carry_cors_headers_for_allowed_origins_only() {
    let app = TestApp::new().await;
    let from = |origin: &str| {
        Request::get("/missing")
            .header(header::ORIGIN, origin)
            .body(axum::body::Body::empty())
            .expect("request")
    };
    let res = app.request(from("https://app.example.com")).await;
    res.assert_problem(404, "NOT_FOUND");
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let res = app.request(from("https://evil.example.net")).await;
    assert_eq!(res.header("access-control-allow-origin"), None);
}
