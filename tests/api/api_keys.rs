//! `/api/v1/api-keys`: shown once, hashed at rest, bounded by the creator's permissions,
//! revoked at once, rotated.

use axum::http::Method;
use serde_json::json;

use crate::helpers::{Auth, TestApp};

#[tokio::test]
async fn a_key_alone_finds_its_tenant_and_acts_with_its_role() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/api-keys",
            &acme.admin(),
            Some(json!({"name": "ci", "role": "developer"})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let created = res.json();
    let key = created["key"].as_str().expect("key").to_owned();
    assert!(key.starts_with("tnt_test_"));
    assert!(key.starts_with(created["prefix"].as_str().expect("prefix")));

    let stored: Vec<u8> = sqlx::query_scalar("select key_hash from platform.api_keys")
        .fetch_one(app.db())
        .await
        .expect("row");
    assert_eq!(
        stored,
        tenantry::auth::secrets::sha256(&key),
        "only the hash is stored"
    );

    let me = app
        .call(
            Method::GET,
            "/api/v1/auth/me",
            &Auth::ApiKey(key.clone()),
            None,
        )
        .await;
    assert_eq!(me.status, 200, "{}", me.text());
    let me = me.json();
    assert_eq!(me["tenant"]["slug"], "acme");
    assert_eq!(me["api_key"]["id"], created["id"]);
    assert_eq!(me["roles"], json!(["developer"]));

    let key = Auth::ApiKey(key);
    assert_eq!(
        app.call(Method::GET, "/api/v1/users", &key, None)
            .await
            .status,
        200
    );
    app.call(
        Method::POST,
        "/api/v1/api-keys",
        &key,
        Some(json!({"name": "x", "role": "viewer"})),
    )
    .await
    .assert_problem(403, "FORBIDDEN");

    let list = app
        .call(Method::GET, "/api/v1/api-keys", &acme.admin(), None)
        .await;
    assert_eq!(list.status, 200);
    let plaintext = created["key"].as_str().expect("key");
    assert!(
        !list.text().contains(plaintext),
        "listings never show the key"
    );
    assert!(list.json()["items"][0].get("key").is_none());
}

#[tokio::test]
async fn a_viewer_cannot_mint_an_admin_key() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (_, manager) = app
        .user_with_roles(&acme, "m@acme.example.com", &["manager"])
        .await;
    for body in [
        json!({"name": "k", "role": "admin"}),
        json!({"name": "k", "permissions": ["*"]}),
        json!({"name": "k", "permissions": ["roles:manage"]}),
    ] {
        app.call(Method::POST, "/api/v1/api-keys", &manager, Some(body))
            .await
            .assert_problem(403, "FORBIDDEN");
    }
    let (_, viewer) = app
        .user_with_roles(&acme, "v@acme.example.com", &["viewer"])
        .await;
    app.call(
        Method::POST,
        "/api/v1/api-keys",
        &viewer,
        Some(json!({"name": "k", "role": "admin"})),
    )
    .await
    .assert_problem(403, "FORBIDDEN");
    let res = app
        .call(
            Method::POST,
            "/api/v1/api-keys",
            &manager,
            Some(json!({"name": "k", "permissions": ["users:*", "resources:read"]})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
}

#[tokio::test]
async fn invalid_key_requests_name_the_problem() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let admin = acme.admin();
    let create = |body| app.call(Method::POST, "/api/v1/api-keys", &admin, Some(body));
    let problem = create(json!({"name": "k", "permissions": ["users:read", "users:fly"]}))
        .await
        .assert_problem(422, "VALIDATION_FAILED");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("users:fly"))
    );
    create(json!({"name": "k", "role": "wizard"}))
        .await
        .assert_problem(422, "VALIDATION_FAILED");
    create(json!({"name": "k"}))
        .await
        .assert_problem(422, "VALIDATION_FAILED");
    create(json!({"name": "k", "role": "viewer", "permissions": []}))
        .await
        .assert_problem(422, "VALIDATION_FAILED");
    create(json!({"name": "", "role": "viewer"}))
        .await
        .assert_problem(422, "VALIDATION_FAILED");
    create(json!({"name": "k", "role": "viewer", "expires_at": "2000-01-01T00:00:00Z"}))
        .await
        .assert_problem(422, "VALIDATION_FAILED");
}

#[tokio::test]
async fn a_revoked_key_fails_at_once_and_a_rotated_key_replaces_the_old() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (id, key) = app
        .api_key(&acme, json!({"name": "ci", "role": "viewer"}))
        .await;
    assert_eq!(
        app.call(Method::GET, "/api/v1/auth/me", &key, None)
            .await
            .status,
        200
    );

    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/api-keys/{id}/rotate"),
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let new_key = Auth::ApiKey(res.json()["key"].as_str().expect("key").to_owned());
    app.call(Method::GET, "/api/v1/auth/me", &key, None)
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    assert_eq!(
        app.call(Method::GET, "/api/v1/auth/me", &new_key, None)
            .await
            .status,
        200
    );

    let res = app
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{id}"),
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 204);
    app.call(Method::GET, "/api/v1/auth/me", &new_key, None)
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    app.call(
        Method::POST,
        &format!("/api/v1/api-keys/{id}/rotate"),
        &acme.admin(),
        None,
    )
    .await
    .assert_problem(404, "NOT_FOUND");

    let list = app
        .call(Method::GET, "/api/v1/api-keys", &acme.admin(), None)
        .await
        .json();
    assert!(list["items"][0]["revoked_at"].is_string());
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let soon = chrono::Utc::now() + chrono::Duration::seconds(3);
    let (_, key) = app
        .api_key(
            &acme,
            json!({"name": "short", "role": "viewer", "expires_at": soon}),
        )
        .await;
    assert_eq!(
        app.call(Method::GET, "/api/v1/auth/me", &key, None)
            .await
            .status,
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    app.call(Method::GET, "/api/v1/auth/me", &key, None)
        .await
        .assert_problem(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn key_use_is_recorded_in_batches() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (id, key) = app
        .api_key(&acme, json!({"name": "ci", "role": "viewer"}))
        .await;
    for _ in 0..3 {
        app.call(Method::GET, "/api/v1/auth/me", &key, None).await;
    }
    let before: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select last_used_at from platform.api_keys where id = $1")
            .bind(id)
            .fetch_one(app.db())
            .await
            .expect("row");
    assert!(before.is_none(), "requests do not write");
    tenantry::auth::authenticate::flush_key_uses(&app.state.auth, &app.state.db)
        .await
        .expect("flush");
    let after: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select last_used_at from platform.api_keys where id = $1")
            .bind(id)
            .fetch_one(app.db())
            .await
            .expect("row");
    assert!(after.is_some());
}

/// `role` and `expires_at` may be left out, but not sent as `null`: the document says
/// neither is nullable, and a client sending `null` means something the API would
/// otherwise silently ignore.
#[tokio::test]
async fn role_and_expiry_may_be_omitted_but_not_null() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    for body in [
        json!({"name": "n", "role": null, "permissions": ["resources:read"]}),
        json!({"name": "n", "role": "viewer", "expires_at": null}),
    ] {
        let res = app
            .call(
                Method::POST,
                "/api/v1/api-keys",
                &t.admin(),
                Some(body.clone()),
            )
            .await;
        res.assert_problem(422, "VALIDATION_FAILED");
    }
    let res = app
        .call(
            Method::POST,
            "/api/v1/api-keys",
            &t.admin(),
            Some(json!({"name": "n", "permissions": ["resources:read"]})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
}
