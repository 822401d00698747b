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
    // The welcome email is a notification job, delivered by a worker.
    let _worker = app.start_worker();
    let welcome = app
        .wait_for_message("boss@acme.example.com", "welcome")
        .await;
    assert!(welcome.subject.contains("Welcome"), "{welcome:?}");
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
        .with_config(|c| c.auth.signup_enabled = false)
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
    assert_eq!(first.header("idempotent-replayed"), Some("false"));
    assert!(first.json()["tokens"]["access_token"].is_string());
    let again = post_with_key(&app, "key-123", &signup("once")).await;
    assert_eq!(again.status, 201, "{}", again.text());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert!(
        again.json().get("tokens").is_none(),
        "a replay carries no tokens"
    );
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
        .assert_problem(422, "IDEMPOTENCY_KEY_REUSED");
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
    let with_tokens = [&a, &b]
        .iter()
        .filter(|r| r.json().get("tokens").is_some())
        .count();
    assert_eq!(
        with_tokens, 1,
        "only the request that onboarded gets tokens"
    );
}

#[tokio::test]
async fn replaying_public_onboarding_with_a_wrong_password_gets_no_tokens() {
    let app = TestApp::new().await;
    let victim = signup("victim");
    let first = post_with_key(&app, "leaked-key", &victim).await;
    assert_eq!(first.status, 201, "{}", first.text());

    // The attacker knows the key, the slug and the email, not the password.
    let mut guess = victim.clone();
    guess["admin"]["password"] = json!("not the password");
    let res = post_with_key(&app, "leaked-key", &guess).await;
    res.assert_problem(422, "IDEMPOTENCY_KEY_REUSED");
    assert!(!res.text().contains("access_token"));

    // Even the exact request replayed hands out no credentials.
    let replay = post_with_key(&app, "leaked-key", &victim).await;
    assert_eq!(replay.status, 201, "{}", replay.text());
    assert!(replay.json().get("tokens").is_none(), "{}", replay.text());
    assert!(!replay.text().contains("refresh_token"));
}

#[tokio::test]
async fn idempotency_records_are_scoped_to_the_caller() {
    let app = TestApp::new().await;
    let platform = app.platform_token().await;
    let public = post_with_key(&app, "shared-key", &signup("public-one")).await;
    assert_eq!(public.status, 201, "{}", public.text());
    // The operator's key lives in the operator's scope: a new tenant, not a replay.
    let res = app
        .request(
            Request::post("/api/v1/tenants")
                .header("content-type", "application/json")
                .header("idempotency-key", "shared-key")
                .header("authorization", format!("Bearer {}", bearer(&platform)))
                .body(axum::body::Body::from(signup("operator-one").to_string()))
                .expect("request"),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.header("idempotent-replayed"), Some("false"));
    assert_eq!(res.json()["tenant"]["slug"], "operator-one");
}

fn bearer(auth: &Auth) -> &str {
    match auth {
        Auth::Bearer(token) => token,
        _ => panic!("expected a bearer token"),
    }
}

#[tokio::test]
async fn idempotency_records_expire_after_a_day_and_are_purged() {
    let app = TestApp::new().await;
    let first = post_with_key(&app, "old-key", &signup("yesterday")).await;
    assert_eq!(first.status, 201, "{}", first.text());
    sqlx::query("update platform.idempotency_keys set created_at = now() - interval '25 hours'")
        .execute(app.db())
        .await
        .expect("age the record");
    sqlx::query(
        "insert into platform.idempotency_keys (scope, key, request_hash, created_at)
         values ('tenants:public', 'stale', '\\x00', now() - interval '30 hours')",
    )
    .execute(app.db())
    .await
    .expect("a stale record");

    // The expired record is ignored: the key works for another request.
    let res = post_with_key(&app, "old-key", &signup("today")).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["tenant"]["slug"], "today");
    assert!(res.json()["tokens"]["access_token"].is_string());

    let keys: Vec<String> =
        sqlx::query_scalar("select key from platform.idempotency_keys order by key")
            .fetch_all(app.db())
            .await
            .expect("keys");
    assert_eq!(keys, ["old-key"], "expired records are purged");
}
