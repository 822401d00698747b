//! Session invalidation: password resets, refresh-token reuse and logouts end access
//! tokens too, the deny-list never forgets, operators' tokens are re-checked.

use axum::http::Method;
use serde_json::json;

use crate::helpers::{Auth, PASSWORD, TestApp};

async fn me(app: &TestApp, auth: &Auth) -> u16 {
    app.call(Method::GET, "/api/v1/auth/me", auth, None)
        .await
        .status
        .as_u16()
}

#[tokio::test]
async fn a_password_reset_ends_existing_access_tokens_here_and_on_other_replicas() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let replica = app.replica().await;
    let old = acme.admin();
    assert_eq!(me(&app, &old).await, 200);
    assert_eq!(
        replica
            .call(Method::GET, "/api/v1/auth/me", &old)
            .await
            .status,
        200
    );

    let res = app
        .post_json(
            "/api/v1/auth/password-reset-request",
            &json!({"tenant": "acme", "email": acme.admin_email}),
        )
        .await;
    assert_eq!(res.status, 202);
    let _worker = app.start_worker();
    let message = app
        .wait_for_message(&acme.admin_email, "password_reset")
        .await;
    let token = message
        .body
        .split_whitespace()
        .last()
        .expect("a reset token was sent")
        .to_owned();
    let res = app
        .post_json(
            "/api/v1/auth/password-reset",
            &json!({"token": token, "new_password": "a brand new password"}),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text());

    app.call(Method::GET, "/api/v1/auth/me", &old, None)
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    // The other replica was told through the invalidation channel (and would drop its
    // cache within 30 s if it had not been).
    let mut ended = false;
    for _ in 0..50 {
        if replica
            .call(Method::GET, "/api/v1/auth/me", &old)
            .await
            .status
            == 401
        {
            ended = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ended, "the old token still works on the other replica");
    // A token from a login after the reset works at once.
    let new = app
        .login("acme", &acme.admin_email, "a brand new password")
        .await;
    assert_eq!(me(&app, &new).await, 200);
}

#[tokio::test]
async fn refresh_token_reuse_ends_the_users_access_tokens() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let first = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": acme.refresh_token}),
        )
        .await;
    assert_eq!(first.status, 200);
    let fresh = Auth::Bearer(first.json()["access_token"].as_str().expect("t").to_owned());
    assert_eq!(me(&app, &fresh).await, 200);
    // The stolen, already-used refresh token is presented again.
    app.post_json(
        "/api/v1/auth/refresh",
        &json!({"refresh_token": acme.refresh_token}),
    )
    .await
    .assert_problem(401, "UNAUTHENTICATED");
    assert_eq!(me(&app, &fresh).await, 401);
    assert_eq!(me(&app, &acme.admin()).await, 401);
}

#[tokio::test]
async fn logged_out_tokens_stay_refused_beyond_the_in_memory_capacity() {
    let app = TestApp::builder()
        .with_config(|c| c.auth.deny_list_capacity = 2)
        .build()
        .await;
    let acme = app.onboard("acme").await;
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(app.login("acme", &acme.admin_email, PASSWORD).await);
    }
    for token in &tokens {
        let res = app
            .call(Method::POST, "/api/v1/auth/logout", token, None)
            .await;
        assert_eq!(res.status, 204, "{}", res.text());
    }
    assert!(
        app.state.auth.denied_in_memory() <= 2,
        "memory stays bounded"
    );
    for token in &tokens {
        assert_eq!(me(&app, token).await, 401, "a logout was forgotten");
    }
    // Tokens that were never logged out still work.
    let live = app.login("acme", &acme.admin_email, PASSWORD).await;
    assert_eq!(me(&app, &live).await, 200);
}

#[tokio::test]
async fn operators_can_log_out_and_a_password_change_ends_their_tokens() {
    let app = TestApp::new().await;
    let first = app.platform_token().await;
    assert_eq!(me(&app, &first).await, 200);
    let res = app
        .call(Method::POST, "/api/v1/auth/logout", &first, None)
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(me(&app, &first).await, 401);

    let second = app.platform_token().await;
    assert_eq!(me(&app, &second).await, 200);
    let replica = app.replica().await;
    assert_eq!(
        replica
            .call(Method::GET, "/api/v1/auth/me", &second)
            .await
            .status,
        200,
        "the other replica has the operator cached"
    );
    // The same password again (a replica starting with PLATFORM_ADMIN_PASSWORD) keeps it.
    app.platform_token().await;
    assert_eq!(me(&app, &second).await, 200);
    // A new password ends it.
    let email = tenantry::services::users::Email::parse("email", "ops@platform.example.com")
        .expect("email");
    let password = tenantry::auth::password::Password::parse("another long password".into())
        .expect("password");
    tenantry::services::identity::set_platform_admin(
        &app.state.db,
        &app.state.invalidations,
        &email,
        password,
    )
    .await
    .expect("reset");
    assert_eq!(me(&app, &second).await, 401, "this replica knows at once");
    let mut ended = false;
    for _ in 0..50 {
        if replica
            .call(Method::GET, "/api/v1/auth/me", &second)
            .await
            .status
            == 401
        {
            ended = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        ended,
        "the other replica heard of the change well before its cache expired"
    );
}

#[tokio::test]
async fn a_deleted_and_purged_tenant_answers_401_or_403_never_500() {
    let app = TestApp::new().await;
    let _worker = app.start_worker();
    let acme = app.onboard("acme").await;
    let res = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tenants/{}", acme.id),
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 202);
    crate::tenant_purge::wait_for_purge(&app, acme.id).await;
    for tenant in [acme.slug.clone(), acme.id.to_string()] {
        app.post_json(
            "/api/v1/auth/login",
            &json!({"tenant": tenant, "email": acme.admin_email, "password": PASSWORD}),
        )
        .await
        .assert_problem(401, "INVALID_CREDENTIALS");
    }
    let res = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": acme.refresh_token}),
        )
        .await;
    assert!(
        [401, 403].contains(&res.status.as_u16()),
        "refresh: {}",
        res.text()
    );
    let res = app
        .post_json(
            "/api/v1/auth/password-reset-request",
            &json!({"tenant": "acme", "email": acme.admin_email}),
        )
        .await;
    assert_eq!(res.status, 202);
    for uri in [
        "/api/v1/auth/me",
        "/api/v1/users",
        "/api/v1/tenants/current",
    ] {
        let res = app.call(Method::GET, uri, &acme.admin(), None).await;
        assert!(
            [401, 403].contains(&res.status.as_u16()),
            "{uri}: {}",
            res.text()
        );
    }
}
