//! `Idempotency-Key` on the tenant routes that create or send: a retry answers the first
//! answer and creates nothing.

use axum::{
    body::Body,
    http::{Method, Request, header},
};
use serde_json::{Value, json};

use crate::helpers::{Auth, TestApp, TestResponse};

async fn post(app: &TestApp, uri: &str, auth: &Auth, key: &str, body: Value) -> TestResponse {
    let token = match auth {
        Auth::Bearer(token) => token.clone(),
        _ => panic!("a bearer token"),
    };
    app.request(
        Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", key)
            .body(Body::from(body.to_string()))
            .expect("request"),
    )
    .await
}

async fn count(app: &TestApp, uri: &str, auth: &Auth) -> usize {
    app.call(Method::GET, uri, auth, None).await.json()["items"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test]
async fn a_retried_job_submission_answers_the_first_answer_and_queues_nothing() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let job = json!({"type": "echo", "payload": {"n": 1}});
    let first = post(&app, "/api/v1/jobs", &t.admin(), "retry-1", job.clone()).await;
    assert_eq!(first.status, 202, "{}", first.text());
    let again = post(&app, "/api/v1/jobs", &t.admin(), "retry-1", job).await;
    assert_eq!(again.status, 202, "{}", again.text());
    assert_eq!(again.json()["id"], first.json()["id"]);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        count(&app, "/api/v1/jobs?type=echo", &t.admin()).await,
        1,
        "one job, not two"
    );
    // Another body under the same key is refused.
    post(
        &app,
        "/api/v1/jobs",
        &t.admin(),
        "retry-1",
        json!({"type": "echo", "payload": {"n": 2}}),
    )
    .await
    .assert_problem(422, "IDEMPOTENCY_KEY_REUSED");
}

#[tokio::test]
async fn a_replayed_api_key_creation_never_shows_the_key_again() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let body = json!({"name": "ci", "role": "developer"});
    let first = post(&app, "/api/v1/api-keys", &t.admin(), "key-1", body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.text());
    assert!(first.json()["key"].is_string());
    let again = post(&app, "/api/v1/api-keys", &t.admin(), "key-1", body).await;
    assert_eq!(again.status, 201, "{}", again.text());
    assert_eq!(again.json()["id"], first.json()["id"]);
    assert!(again.json().get("key").is_none(), "{}", again.text());
    assert_eq!(count(&app, "/api/v1/api-keys", &t.admin()).await, 1);
}

#[tokio::test]
async fn a_failed_first_request_leaves_no_record_and_keys_are_per_tenant() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let other = app.onboard("other").await;
    post(
        &app,
        "/api/v1/jobs",
        &acme.admin(),
        "k",
        json!({"type": "no-such-type"}),
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
    // Nothing was created: the corrected request runs under the same key.
    let job = json!({"type": "echo"});
    let res = post(&app, "/api/v1/jobs", &acme.admin(), "k", job.clone()).await;
    assert_eq!(res.status, 202, "{}", res.text());
    assert!(res.header("idempotent-replayed").is_none(), "it ran");
    // And now the key holds: a retry answers that job.
    let retry = post(&app, "/api/v1/jobs", &acme.admin(), "k", job.clone()).await;
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.json()["id"], res.json()["id"]);
    // The same key in another tenant is that tenant's own.
    let theirs = post(&app, "/api/v1/jobs", &other.admin(), "k", job).await;
    assert_eq!(theirs.status, 202, "{}", theirs.text());
    assert_ne!(theirs.json()["id"], res.json()["id"]);
    assert!(theirs.header("idempotent-replayed").is_none());
}
