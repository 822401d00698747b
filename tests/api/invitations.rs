//! Invitations: invite, mail, accept once; revoke, expire, resend; the owner model.

use axum::http::Method;
use serde_json::{Value, json};

use crate::helpers::{Auth, Onboarded, TestApp};

async fn invite(app: &TestApp, tenant: &Onboarded, email: &str, roles: &[&str]) -> Value {
    let res = app
        .call(
            Method::POST,
            "/api/v1/invitations",
            &tenant.admin(),
            Some(json!({"email": email, "roles": roles})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()
}

/// The token of the latest invitation mail to `email`, unbroken at the end of its text.
async fn mailed_token(app: &TestApp, email: &str) -> String {
    let message = app.wait_for_message(email, "invitation").await;
    assert!(
        !message.subject.contains("Tenant"),
        "no tenant text in the subject"
    );
    let token = message
        .body
        .split_whitespace()
        .last()
        .expect("a token")
        .to_owned();
    assert!(token.len() >= 32);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "URL-safe: {token}"
    );
    token
}

async fn accept(app: &TestApp, token: &str) -> crate::helpers::TestResponse {
    app.post_json(
        "/api/v1/auth/accept-invitation",
        &json!({"token": token, "password": "a new member's password", "first_name": "Ada"}),
    )
    .await
}

async fn state_of(app: &TestApp, tenant: &Onboarded, id: &Value) -> Value {
    let res = app
        .call(Method::GET, "/api/v1/invitations", &tenant.admin(), None)
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["id"] == *id)
        .expect("listed")
        .clone()
}

#[tokio::test]
async fn an_invitation_is_accepted_once_into_a_verified_user_with_its_roles() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let _worker = app.start_worker();
    let invitation = invite(&app, &acme, "ada@example.com", &["developer"]).await;
    assert_eq!(invitation["state"], "pending");
    assert_eq!(invitation["roles"], json!(["developer"]));
    assert!(
        invitation.get("token").is_none(),
        "the token is only mailed"
    );
    let token = mailed_token(&app, "ada@example.com").await;

    let res = accept(&app, &token).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let body = res.json();
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["email_verified"], true);
    assert_eq!(body["user"]["first_name"], "Ada");
    assert_eq!(body["user"]["roles"], json!(["developer"]));
    let access = Auth::Bearer(
        body["tokens"]["access_token"]
            .as_str()
            .expect("token")
            .to_owned(),
    );
    let me = app
        .call(Method::GET, "/api/v1/auth/me", &access, None)
        .await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["roles"], json!(["developer"]));
    app.login("acme", "ada@example.com", "a new member's password")
        .await;

    // Single use.
    accept(&app, &token)
        .await
        .assert_problem(422, "VALIDATION_FAILED");
    let listed = state_of(&app, &acme, &invitation["id"]).await;
    assert_eq!(listed["state"], "accepted");
    assert_eq!(listed["user_id"], body["user"]["id"]);
    // Accepted invitations are neither revoked nor resent.
    let id = invitation["id"].as_str().expect("id");
    app.call(
        Method::POST,
        &format!("/api/v1/invitations/{id}/resend"),
        &acme.admin(),
        None,
    )
    .await
    .assert_problem(409, "CONFLICT");
    for action in ["invitation.created", "invitation.accepted"] {
        let audit = app
            .call(
                Method::GET,
                &format!("/api/v1/audit-logs?action={action}"),
                &acme.admin(),
                None,
            )
            .await;
        assert_eq!(
            audit.json()["items"].as_array().expect("items").len(),
            1,
            "{action}"
        );
    }
}

#[tokio::test]
async fn an_address_that_is_a_user_or_already_invited_is_a_conflict() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    app.call(
        Method::POST,
        "/api/v1/invitations",
        &acme.admin(),
        Some(json!({"email": acme.admin_email.to_uppercase()})),
    )
    .await
    .assert_problem(409, "EMAIL_TAKEN");
    let invitation = invite(&app, &acme, "bob@example.com", &[]).await;
    assert_eq!(invitation["roles"], json!([]));
    app.call(
        Method::POST,
        "/api/v1/invitations",
        &acme.admin(),
        Some(json!({"email": "bob@example.com"})),
    )
    .await
    .assert_problem(409, "CONFLICT");
    // Without roles: viewer.
    let res = app
        .call(
            Method::POST,
            "/api/v1/invitations",
            &acme.admin(),
            Some(json!({"email": "carol@example.com"})),
        )
        .await;
    assert_eq!(res.json()["roles"], json!(["viewer"]));
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_refused_and_resending_replaces_the_token() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let _worker = app.start_worker();

    let revoked = invite(&app, &acme, "rev@example.com", &["viewer"]).await;
    let token = mailed_token(&app, "rev@example.com").await;
    let id = revoked["id"].as_str().expect("id");
    let res = app
        .call(
            Method::DELETE,
            &format!("/api/v1/invitations/{id}"),
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    accept(&app, &token)
        .await
        .assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(
        state_of(&app, &acme, &revoked["id"]).await["state"],
        "revoked"
    );

    let expired = invite(&app, &acme, "late@example.com", &["viewer"]).await;
    let old_token = mailed_token(&app, "late@example.com").await;
    let scope = app.scope(acme.id);
    sqlx::query(
        scope.sql("update {schema}.invitations set expires_at = now() - interval '1 second'"),
    )
    .execute(app.db())
    .await
    .expect("expire");
    accept(&app, &old_token)
        .await
        .assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(
        state_of(&app, &acme, &expired["id"]).await["state"],
        "expired"
    );

    let id = expired["id"].as_str().expect("id");
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/invitations/{id}/resend"),
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["state"], "pending");
    let mut new_token = old_token.clone();
    for _ in 0..250 {
        new_token = mailed_token(&app, "late@example.com").await;
        if new_token != old_token {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_ne!(new_token, old_token, "a new token was mailed");
    accept(&app, &old_token)
        .await
        .assert_problem(422, "VALIDATION_FAILED");
    let res = accept(&app, &new_token).await;
    assert_eq!(res.status, 201, "{}", res.text());
}

#[tokio::test]
async fn nobody_invites_beyond_what_they_hold() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (_, manager) = app
        .user_with_roles(&acme, "manager@acme.example.com", &["manager"])
        .await;
    let (_, developer) = app
        .user_with_roles(&acme, "dev@acme.example.com", &["developer"])
        .await;
    let body = |roles: &[&str]| Some(json!({"email": "x@example.com", "roles": roles}));
    app.call(
        Method::POST,
        "/api/v1/invitations",
        &manager,
        body(&["admin"]),
    )
    .await
    .assert_problem(403, "FORBIDDEN");
    app.call(
        Method::POST,
        "/api/v1/invitations",
        &developer,
        body(&["viewer"]),
    )
    .await
    .assert_problem(403, "FORBIDDEN");
    app.call(
        Method::POST,
        "/api/v1/invitations",
        &manager,
        body(&["nope"]),
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
    let res = app
        .call(
            Method::POST,
            "/api/v1/invitations",
            &manager,
            body(&["developer"]),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
}

#[tokio::test]
async fn another_tenants_invitations_are_not_found() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let globex = app.onboard("globex").await;
    let theirs = invite(&app, &globex, "g@example.com", &["viewer"]).await;
    let id = theirs["id"].as_str().expect("id");
    app.call(
        Method::DELETE,
        &format!("/api/v1/invitations/{id}"),
        &acme.admin(),
        None,
    )
    .await
    .assert_problem(404, "NOT_FOUND");
    app.call(
        Method::POST,
        &format!("/api/v1/invitations/{id}/resend"),
        &acme.admin(),
        None,
    )
    .await
    .assert_problem(404, "NOT_FOUND");
    let listed = app
        .call(Method::GET, "/api/v1/invitations", &acme.admin(), None)
        .await;
    assert_eq!(listed.json()["items"], json!([]));
    assert_eq!(
        state_of(&app, &globex, &theirs["id"]).await["state"],
        "pending"
    );
}
