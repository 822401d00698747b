//! `POST /api/v1/tenants`: onboarding in one transaction, slug rules, plans, idempotency.

use axum::http::{Method, Request};
use serde_json::json;

use crate::helpers::{Auth, PASSWORD, TestApp};

fn signup(slug: &str) -> serde_json::Value {
    json!({
        "name": "Acme Corp",
        "slug": slug,
        "admin": {"email": format!("boss@{slug}.example.com"), "password": PASSWORD, "first_name": "Ada"},
    })
}

#[tokio::test]
async fn onboarding_creates_tenant_schema_roles_admin_policy_and_tokens() {
    let app = TestApp::new().await;
    let res = app.post_json("/api/v1/tenants", &signup("acme")).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let body = res.json();
    assert_eq!(body["tenant"]["slug"], "acme");
    assert_eq!(body["tenant"]["plan"], "free");
    assert_eq!(body["tenant"]["status"], "active");
    assert_eq!(body["admin_user"]["email"], "boss@acme.example.com");
    assert_eq!(body["admin_user"]["first_name"], "Ada");
    assert_eq!(body["admin_user"]["roles"], json!(["admin"]));
    assert!(body["admin_user"].get("password_hash").is_none());
    assert_eq!(body["tokens"]["token_type"], "Bearer");
    assert_eq!(body["tokens"]["expires_in"], 900);

    let tenant_id: uuid::Uuid = body["tenant"]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let scope = app.scope(tenant_id);
    let roles: Vec<String> =
        sqlx::query_scalar(scope.sql("select name from {schema}.roles order by name"))
            .fetch_all(app.db())
            .await
            .expect("roles");
    assert_eq!(roles, ["admin", "developer", "manager", "viewer"]);
    let (min, max): (i32, i32) = sqlx::query_as(
        "select min_capacity, max_capacity from platform.scaling_policies where tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_one(app.db())
    .await
    .expect("policy");
    assert_eq!((min, max), (1, 2), "free plan bounds");

    // The tokens work straight away.
    let token = Auth::Bearer(
        body["tokens"]["access_token"]
            .as_str()
            .expect("t")
            .to_owned(),
    );
    let me = app.call(Method::GET, "/api/v1/auth/me", &token, None).await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["tenant"]["slug"], "acme");
    assert_eq!(
        app.state.outbox.sent_to("boss@acme.example.com")[0].template,
        "welcome"
    );
}

#[tokio::test]
async fn a_taken_slug_is_409_and_leaves_nothing_behind() {
    let app = TestApp::new().await;
    app.onboard("acme").await;
    let res = app.post_json("/api/v1/tenants", &signup("acme")).await;
    res.assert_problem(409, "TENANT_SLUG_TAKEN");
    let schemas: i64 = sqlx::query_scalar(
        "select count(*) from information_schema.schemata where schema_name like 't\\_%'",
    )
    .fetch_one(app.db())
    .await
    .expect("count");
    assert_eq!(schemas, 1, "the failed onboarding rolled back its schema");
}

#[tokio::test]
async fn invalid_onboarding_fields_are_named() {
    let app = TestApp::new().await;
    let res = app
        .post_json(
            "/api/v1/tenants",
            &json!({"name": "", "slug": "A!", "admin": {"email": "nope", "password": "short"}}),
        )
        .await;
    let problem = res.assert_problem(422, "VALIDATION_FAILED");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["name", "slug", "admin.email", "admin.password"]);
    app.post_json("/api/v1/tenants", &json!({"name": "x"}))
        .await
        .assert_problem(422, "VALIDATION_FAILED");
}

#[tokio::test]
async fn paid_plans_need_a_platform_operator() {
    let app = TestApp::new().await;
    let mut body = signup("paid");
    body["plan"] = json!("premium");
    app.post_json("/api/v1/tenants", &body)
        .await
        .assert_problem(403, "FORBIDDEN");

    let platform = app.platform_token().await;
    let res = app
        .call(Method::POST, "/api/v1/tenants", &platform, Some(body))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["tenant"]["plan"], "premium");
}

#[tokio::test]
async fn public_signup_can_be_turned_off() {
    let app = TestApp::builder()
        .with_config(|c| c.signup_enabled = false)
        .build()
        .await;
    app.post_json("/api/v1/tenants", &signup("closed"))
        .await
        .assert_problem(403, "FORBIDDEN");
    let platform = app.platform_token().await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/tenants",
            &platform,
            Some(signup("closed")),
        )
        .await;
    assert_eq!(res.status, 201);
}

async fn post_with_key(
    app: &TestApp,
    key: &str,
    body: &serde_json::Value,
) -> crate::helpers::TestResponse {
    app.request(
        Request::post("/api/v1/tenants")
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(axum::body::Body::from(body.to_string()))
            .expect("request"),
    )
    .await
}

#[tokio::test]
async fn a_retried_onboarding_with_the_same_idempotency_key_returns_the_first_tenant() {
    let app = TestApp::new().await;
    let first = post_with_key(&app, "key-123", &signup("once")).await;
    assert_eq!(first.status, 201, "{}", first.text());
    let again = post_with_key(&app, "key-123", &signup("once")).await;
    assert_eq!(again.status, 201, "{}", again.text());
    assert_eq!(first.json()["tenant"]["id"], again.json()["tenant"]["id"]);
    assert_eq!(
        first.json()["admin_user"]["id"],
        again.json()["admin_user"]["id"]
    );

    let count: i64 = sqlx::query_scalar("select count(*) from platform.tenants")
        .fetch_one(app.db())
        .await
        .expect("count");
    assert_eq!(count, 1);

    post_with_key(&app, "key-123", &signup("other"))
        .await
        .assert_problem(409, "CONFLICT");
}

#[tokio::test]
async fn concurrent_retries_with_one_key_create_one_tenant() {
    let app = TestApp::new().await;
    let body = signup("racer");
    let (a, b) = tokio::join!(
        post_with_key(&app, "same", &body),
        post_with_key(&app, "same", &body)
    );
    assert_eq!(
        (a.status.as_u16(), b.status.as_u16()),
        (201, 201),
        "{} {}",
        a.text(),
        b.text()
    );
    assert_eq!(a.json()["tenant"]["id"], b.json()["tenant"]["id"]);
}
