//! Self-registration: off unless the tenant opts in, limited to allowed domains, login
//! only after the address is verified, and no way to learn which addresses exist.

use axum::http::Method;
use serde_json::{Value, json};

use crate::helpers::{Onboarded, PASSWORD, TestApp, TestResponse};

async fn register(app: &TestApp, email: &str) -> TestResponse {
    app.post_json(
        "/api/v1/auth/register",
        &json!({"tenant": "acme", "email": email, "password": PASSWORD}),
    )
    .await
}

async fn set_self_registration(app: &TestApp, acme: &Onboarded, setting: Value) {
    let res = app
        .call(
            Method::PATCH,
            &format!("/api/v1/tenants/{}", acme.id),
            &acme.admin(),
            Some(json!({"settings": {"self_registration": setting}})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
}

async fn user_count(app: &TestApp, acme: &Onboarded) -> i64 {
    let sql = app
        .scope(acme.id)
        .sql("select count(*) from {schema}.users");
    sqlx::query_scalar(sql)
        .fetch_one(app.db())
        .await
        .expect("count")
}

#[tokio::test]
async fn strangers_cannot_join_a_tenant_that_did_not_opt_in() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    register(&app, "stranger@evil.example.com")
        .await
        .assert_problem(403, "FORBIDDEN");
    // An unknown tenant answers the same, so tenants cannot be probed this way.
    app.post_json(
        "/api/v1/auth/register",
        &json!({"tenant": "nope", "email": "a@b.example.com", "password": PASSWORD}),
    )
    .await
    .assert_problem(403, "FORBIDDEN");
    assert_eq!(user_count(&app, &acme).await, 1);
}

#[tokio::test]
async fn a_registered_user_logs_in_only_after_verifying_the_email() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    set_self_registration(&app, &acme, json!({"enabled": true})).await;

    let res = register(&app, "New@Acme.example.com").await;
    assert_eq!(res.status, 201, "{}", res.text());
    let body = res.json();
    assert_eq!(body["email"], "new@acme.example.com");
    assert_eq!(body["roles"], json!(["viewer"]));
    assert_eq!(body["email_verified"], false);

    let res = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"tenant": "acme", "email": "new@acme.example.com", "password": PASSWORD}),
        )
        .await;
    res.assert_problem(403, "EMAIL_NOT_VERIFIED");
    // A wrong password still answers like any wrong password: nothing is revealed.
    app.post_json(
        "/api/v1/auth/login",
        &json!({"tenant": "acme", "email": "new@acme.example.com", "password": "wrong password"}),
    )
    .await
    .assert_problem(401, "INVALID_CREDENTIALS");

    let _worker = app.start_worker();
    let message = &app
        .wait_for_message("new@acme.example.com", "email_verification")
        .await;
    let token = message.body.split_whitespace().last().expect("token");
    let res = app
        .post_json("/api/v1/auth/verify-email", &json!({"token": token}))
        .await;
    assert_eq!(res.status, 204, "{}", res.text());

    let viewer = app.login("acme", "new@acme.example.com", PASSWORD).await;
    let me = app
        .call(Method::GET, "/api/v1/auth/me", &viewer, None)
        .await
        .json();
    assert_eq!(me["user"]["email_verified"], true);
    assert_eq!(me["roles"], json!(["viewer"]));
    let permissions = me["permissions"].as_array().expect("list");
    assert!(permissions.contains(&json!("users:read")));
    assert!(!permissions.contains(&json!("users:create")));

    // Turned off again, registration stops.
    set_self_registration(&app, &acme, json!({"enabled": false})).await;
    register(&app, "late@acme.example.com")
        .await
        .assert_problem(403, "FORBIDDEN");
}

#[tokio::test]
async fn a_taken_address_gets_the_same_answer_and_a_notice_instead_of_an_account() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    set_self_registration(&app, &acme, json!({"enabled": true})).await;

    let fresh = register(&app, "fresh@acme.example.com").await;
    let taken = register(&app, &acme.admin_email).await;
    assert_eq!(fresh.status, 201);
    assert_eq!(taken.status, 201, "{}", taken.text());
    let shape = |res: &TestResponse| {
        let mut body = res.json();
        body["email"] = json!("*");
        body
    };
    assert_eq!(
        shape(&fresh),
        shape(&taken),
        "no enumeration through the body"
    );
    assert_eq!(
        user_count(&app, &acme).await,
        2,
        "no second account for the admin"
    );
    // The owner of the address is told.
    let _worker = app.start_worker();
    app.wait_for_message(&acme.admin_email, "registration_existing_account")
        .await;
    // The admin's password was not changed by the attempt.
    app.login("acme", &acme.admin_email, PASSWORD).await;
}

#[tokio::test]
async fn only_allowed_email_domains_may_register() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    set_self_registration(
        &app,
        &acme,
        json!({"enabled": true, "allowed_email_domains": ["acme.example.com"]}),
    )
    .await;
    register(&app, "mallory@evil.example.com")
        .await
        .assert_problem(403, "FORBIDDEN");
    register(&app, "mallory@acme.example.com.evil.example.com")
        .await
        .assert_problem(403, "FORBIDDEN");
    let res = register(&app, "colleague@acme.example.com").await;
    assert_eq!(res.status, 201, "{}", res.text());
}
