//! Login, refresh rotation, logout, password reset, email verification, `/auth/me`.

use axum::http::Method;
use serde_json::json;

use crate::helpers::{Auth, PASSWORD, TestApp};

async fn login_raw(
    app: &TestApp,
    tenant: &str,
    email: &str,
    password: &str,
) -> crate::helpers::TestResponse {
    app.post_json(
        "/api/v1/auth/login",
        &json!({"tenant": tenant, "email": email, "password": password}),
    )
    .await
}

#[tokio::test]
async fn login_by_slug_or_id_returns_a_token_pair() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    for tenant in [acme.slug.clone(), acme.id.to_string()] {
        let res = login_raw(&app, &tenant, &acme.admin_email, PASSWORD).await;
        assert_eq!(res.status, 200, "{}", res.text());
        let body = res.json();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert!(
            body["refresh_token"]
                .as_str()
                .is_some_and(|t| t.starts_with("rt_"))
        );
    }
}

#[tokio::test]
async fn a_login_over_a_hash_of_weaker_parameters_stores_todays() {
    use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};

    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let weak = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(8 * 1024, 1, 1, None).expect("params"),
    )
    .hash_password(PASSWORD.as_bytes())
    .expect("hash")
    .to_string();
    let scope = app.scope(acme.id);
    let stored = || {
        sqlx::query_scalar::<_, String>(
            scope.sql("select password_hash from {schema}.users where id = $1"),
        )
        .bind(acme.admin_id)
        .fetch_one(app.db())
    };
    sqlx::query(scope.sql("update {schema}.users set password_hash = $2 where id = $1"))
        .bind(acme.admin_id)
        .bind(&weak)
        .execute(app.db())
        .await
        .expect("weaken");

    let res = login_raw(&app, "acme", &acme.admin_email, PASSWORD).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let rehashed = stored().await.expect("hash");
    assert!(
        rehashed.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{rehashed}"
    );
    let res = login_raw(&app, "acme", &acme.admin_email, PASSWORD).await;
    assert_eq!(res.status, 200, "the new hash verifies: {}", res.text());
    assert_eq!(stored().await.expect("hash"), rehashed, "no second rehash");
}

#[tokio::test]
async fn unknown_tenant_unknown_user_and_wrong_password_look_the_same() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let answers = [
        login_raw(&app, "nowhere", &acme.admin_email, PASSWORD).await,
        login_raw(&app, "acme", "ghost@acme.example.com", PASSWORD).await,
        login_raw(&app, "acme", &acme.admin_email, "wrong password").await,
    ];
    let bodies: Vec<(String, String)> = answers
        .iter()
        .map(|res| {
            let problem = res.assert_problem(401, "INVALID_CREDENTIALS");
            (problem["detail"].to_string(), problem["title"].to_string())
        })
        .collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");

    let scope = app.scope(acme.id);
    let failed: i64 = sqlx::query_scalar(
        scope.sql("select count(*) from {schema}.audit_logs where action = 'auth.login_failed'"),
    )
    .fetch_one(app.db())
    .await
    .expect("audit");
    assert_eq!(failed, 1, "the wrong password is audited");
}

#[tokio::test]
async fn login_takes_the_tenant_from_the_host_under_base_domain() {
    let app = TestApp::builder()
        .with_config(|c| c.auth.base_domain = Some("tenantry.test".into()))
        .build()
        .await;
    let acme = app.onboard("acme").await;
    let res = app
        .request(
            axum::http::Request::post("/api/v1/auth/login")
                .header("host", "acme.tenantry.test")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    json!({"email": acme.admin_email, "password": PASSWORD}).to_string(),
                ))
                .expect("request"),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let refresh = |token: String| {
        let app = &app;
        async move {
            app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": token}))
                .await
        }
    };
    let first = refresh(acme.refresh_token.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let second_token = first.json()["refresh_token"]
        .as_str()
        .expect("rt")
        .to_owned();
    assert_ne!(second_token, acme.refresh_token);

    // The spent token comes back: somebody copied it. The family dies.
    refresh(acme.refresh_token.clone())
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    refresh(second_token)
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    refresh("rt_garbage".into())
        .await
        .assert_problem(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn logout_kills_the_access_token_and_the_refresh_family() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let token = acme.admin();
    assert_eq!(
        app.call(Method::GET, "/api/v1/auth/me", &token, None)
            .await
            .status,
        200
    );

    let res = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            &token,
            Some(json!({"refresh_token": acme.refresh_token})),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    app.call(Method::GET, "/api/v1/auth/me", &token, None)
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    app.post_json(
        "/api/v1/auth/refresh",
        &json!({"refresh_token": acme.refresh_token}),
    )
    .await
    .assert_problem(401, "UNAUTHENTICATED");

    // Other replicas learn it through Redis.
    let jti = {
        let Auth::Bearer(t) = &token else {
            unreachable!()
        };
        let payload = t.split('.').nth(1).expect("payload");
        use base64::Engine;
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .expect("b64"),
        )
        .expect("json");
        claims["jti"].as_str().expect("jti").to_owned()
    };
    let mut conn = app.state.redis.clone();
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{}deny:{jti}", app.state.config.redis.key_prefix))
        .query_async(&mut conn)
        .await
        .expect("ttl");
    assert!(
        (1..=900).contains(&ttl),
        "deny-list entry lives until expiry: {ttl}"
    );
}

#[tokio::test]
async fn password_reset_is_202_always_single_use_and_ends_sessions() {
    let app = TestApp::new().await;
    let _worker = app.start_worker();
    let acme = app.onboard("acme").await;
    for email in [acme.admin_email.as_str(), "ghost@acme.example.com"] {
        let res = app
            .post_json(
                "/api/v1/auth/password-reset-request",
                &json!({"tenant": "acme", "email": email}),
            )
            .await;
        assert_eq!(res.status, 202);
    }
    // The token is sent in the background, by a notification job.
    let body = app
        .wait_for_message(&acme.admin_email, "password_reset")
        .await
        .body;
    let token = body.split_whitespace().last().expect("token").to_owned();
    let outbox = app.state.notifier.outbox().expect("log backend");
    assert!(outbox.sent_to("ghost@acme.example.com").is_empty());
    // The history names the send but never its content (the token).
    let history = app
        .call(
            Method::GET,
            "/api/v1/notifications/history",
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(history.status, 200, "{}", history.text());
    assert!(history.text().contains("password_reset"));
    assert!(!history.text().contains(&token));

    app.post_json(
        "/api/v1/auth/password-reset",
        &json!({"token": token, "new_password": "short"}),
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
    let res = app
        .post_json(
            "/api/v1/auth/password-reset",
            &json!({"token": token, "new_password": "a brand new password"}),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    app.post_json(
        "/api/v1/auth/password-reset",
        &json!({"token": token, "new_password": "yet another password"}),
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");

    app.post_json(
        "/api/v1/auth/refresh",
        &json!({"refresh_token": acme.refresh_token}),
    )
    .await
    .assert_problem(401, "UNAUTHENTICATED");
    login_raw(&app, "acme", &acme.admin_email, PASSWORD)
        .await
        .assert_problem(401, "INVALID_CREDENTIALS");
    assert_eq!(
        login_raw(&app, "acme", &acme.admin_email, "a brand new password")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn the_jwks_publishes_the_key_that_signs_tokens() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let jwks = app.get("/.well-known/jwks.json").await.json();
    let Auth::Bearer(token) = acme.admin() else {
        unreachable!()
    };
    let header = jsonwebtoken::decode_header(&token).expect("header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let kid = header.kid.expect("kid");
    let key = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the signing key is published");
    assert_eq!(key["kty"], "RSA");
    assert!(key.get("d").is_none());
}

#[tokio::test]
async fn platform_login_gives_a_platform_token_that_tenant_routes_refuse() {
    let app = TestApp::new().await;
    let platform = app.platform_token().await;
    let me = app
        .call(Method::GET, "/api/v1/auth/me", &platform, None)
        .await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert!(me.json()["platform_admin"]["id"].is_string());
    assert!(me.json()["tenant"].is_null());
    app.call(Method::GET, "/api/v1/users", &platform, None)
        .await
        .assert_problem(403, "FORBIDDEN");
    app.post_json(
        "/api/v1/admin/login",
        &json!({"email": "ops@platform.example.com", "password": "wrong password"}),
    )
    .await
    .assert_problem(401, "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn with_redis_down_the_service_keeps_serving_authenticated_requests() {
    let app = TestApp::builder()
        .with_config(|c| c.redis.url = "redis://127.0.0.1:1/0".into())
        .build()
        .await;
    let acme = app.onboard("acme").await;
    let (key_id, key) = app
        .api_key(&acme, json!({"name": "k", "role": "viewer"}))
        .await;
    assert_eq!(
        app.call(Method::GET, "/api/v1/auth/me", &acme.admin(), None)
            .await
            .status,
        200
    );
    assert_eq!(
        app.call(Method::GET, "/api/v1/auth/me", &key, None)
            .await
            .status,
        200
    );
    // Revocation and logout still hold on this replica.
    app.call(
        Method::DELETE,
        &format!("/api/v1/api-keys/{key_id}"),
        &acme.admin(),
        None,
    )
    .await;
    app.call(Method::GET, "/api/v1/auth/me", &key, None)
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    let res = app
        .call(Method::POST, "/api/v1/auth/logout", &acme.admin(), None)
        .await;
    assert_eq!(res.status, 204);
    app.call(Method::GET, "/api/v1/auth/me", &acme.admin(), None)
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    let ready = app.get("/health/ready").await;
    assert_eq!(
        (ready.status.as_u16(), ready.json()["status"].as_str()),
        (200, Some("degraded"))
    );
}

#[tokio::test]
async fn a_logout_reaches_running_replicas_and_replicas_started_later() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let token = acme.admin();
    let running = app.replica().await;
    assert_eq!(
        running
            .call(Method::GET, "/api/v1/auth/me", &token)
            .await
            .status,
        200
    );

    let res = app
        .call(Method::POST, "/api/v1/auth/logout", &token, None)
        .await;
    assert_eq!(res.status, 204);
    let mut refused = false;
    for _ in 0..250 {
        if running
            .call(Method::GET, "/api/v1/auth/me", &token)
            .await
            .status
            == 401
        {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "the running replica heard of the logout");

    let later = app.replica().await;
    later
        .call(Method::GET, "/api/v1/auth/me", &token)
        .await
        .assert_problem(401, "UNAUTHENTICATED");
}
