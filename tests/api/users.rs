//! `/api/v1/users`: CRUD inside the tenant, role assignment without escalation,
//! deactivation that ends sessions.

use axum::http::Method;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp};

#[tokio::test]
async fn admins_create_list_get_update_and_delete_users() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let admin = acme.admin();
    let res = app
        .call(
            Method::POST,
            "/api/v1/users",
            &admin,
            Some(json!({"email": "dev@acme.example.com", "password": PASSWORD, "first_name": "Dev", "roles": ["developer"]})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let user = res.json();
    assert_eq!(user["roles"], json!(["developer"]));
    let id = user["id"].as_str().expect("id").to_owned();

    let default_role = app
        .call(
            Method::POST,
            "/api/v1/users",
            &admin,
            Some(json!({"email": "plain@acme.example.com", "password": PASSWORD})),
        )
        .await
        .json();
    assert_eq!(default_role["roles"], json!(["viewer"]));

    let list = app
        .call(Method::GET, "/api/v1/users?limit=2", &admin, None)
        .await
        .json();
    assert_eq!(list["items"].as_array().expect("items").len(), 2);
    let cursor = list["next_cursor"].as_str().expect("more pages").to_owned();
    let rest = app
        .call(
            Method::GET,
            &format!("/api/v1/users?limit=2&cursor={cursor}"),
            &admin,
            None,
        )
        .await
        .json();
    assert_eq!(rest["items"].as_array().expect("items").len(), 1);
    assert!(rest["next_cursor"].is_null());
    app.call(Method::GET, "/api/v1/users?limit=0", &admin, None)
        .await
        .assert_problem(422, "VALIDATION_FAILED");
    app.call(Method::GET, "/api/v1/users?cursor=garbage!", &admin, None)
        .await
        .assert_problem(422, "VALIDATION_FAILED");

    let res = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            &admin,
            Some(json!({"last_name": "Ops"})),
        )
        .await;
    assert_eq!(res.json()["last_name"], "Ops");
    assert_eq!(
        app.call(Method::GET, &format!("/api/v1/users/{id}"), &admin, None)
            .await
            .json()["first_name"],
        "Dev"
    );

    assert_eq!(
        app.call(Method::DELETE, &format!("/api/v1/users/{id}"), &admin, None)
            .await
            .status,
        204
    );
    app.call(Method::GET, &format!("/api/v1/users/{id}"), &admin, None)
        .await
        .assert_problem(404, "NOT_FOUND");
    app.call(
        Method::DELETE,
        &format!("/api/v1/users/{}", acme.admin_id),
        &admin,
        None,
    )
    .await
    .assert_problem(409, "CONFLICT");
}

#[tokio::test]
async fn duplicate_emails_unknown_roles_and_bad_fields_are_refused() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let admin = acme.admin();
    let create = |body| app.call(Method::POST, "/api/v1/users", &admin, Some(body));
    create(json!({"email": acme.admin_email.to_uppercase(), "password": PASSWORD}))
        .await
        .assert_problem(409, "EMAIL_TAKEN");
    let problem =
        create(json!({"email": "x@acme.example.com", "password": PASSWORD, "roles": ["wizard"]}))
            .await
            .assert_problem(422, "VALIDATION_FAILED");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("wizard"))
    );
    create(json!({"email": "bad", "password": "short"}))
        .await
        .assert_problem(422, "VALIDATION_FAILED");
}

#[tokio::test]
async fn a_viewer_cannot_create_users_or_grant_roles() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (viewer_id, viewer) = app
        .user_with_roles(&acme, "viewer@acme.example.com", &["viewer"])
        .await;
    assert_eq!(
        app.call(Method::GET, "/api/v1/users", &viewer, None)
            .await
            .status,
        200
    );
    app.call(
        Method::POST,
        "/api/v1/users",
        &viewer,
        Some(json!({"email": "y@acme.example.com", "password": PASSWORD})),
    )
    .await
    .assert_problem(403, "FORBIDDEN");
    app.call(
        Method::PUT,
        &format!("/api/v1/users/{viewer_id}/roles"),
        &viewer,
        Some(json!({"roles": ["admin"]})),
    )
    .await
    .assert_problem(403, "FORBIDDEN");
}

#[tokio::test]
async fn a_manager_cannot_grant_admin_but_can_grant_developer() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (_, manager) = app
        .user_with_roles(&acme, "manager@acme.example.com", &["manager"])
        .await;
    let (target, _) = app
        .user_with_roles(&acme, "target@acme.example.com", &["viewer"])
        .await;
    let path = format!("/api/v1/users/{target}/roles");
    let set = |roles: serde_json::Value| {
        app.call(Method::PUT, &path, &manager, Some(json!({"roles": roles})))
    };
    // admin holds `*`, including roles:manage and tenant:delete the manager lacks.
    set(json!(["admin"])).await.assert_problem(403, "FORBIDDEN");
    let res = set(json!(["developer"])).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["roles"], json!(["developer"]));
    app.call(
        Method::POST,
        "/api/v1/users",
        &manager,
        Some(json!({"email": "sneaky@acme.example.com", "password": PASSWORD, "roles": ["admin"]})),
    )
    .await
    .assert_problem(403, "FORBIDDEN");
}

#[tokio::test]
async fn role_changes_apply_to_the_next_request() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (id, user) = app
        .user_with_roles(&acme, "grow@acme.example.com", &["viewer"])
        .await;
    let create_key = || {
        app.call(
            Method::POST,
            "/api/v1/api-keys",
            &user,
            Some(json!({"name": "k", "permissions": ["users:read"]})),
        )
    };
    create_key().await.assert_problem(403, "FORBIDDEN");
    let res = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{id}/roles"),
            &acme.admin(),
            Some(json!({"roles": ["manager"]})),
        )
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(
        create_key().await.status,
        201,
        "the same token now carries the new role"
    );
}

#[tokio::test]
async fn deactivated_users_lose_their_tokens_and_sessions_at_once() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (id, user) = app
        .user_with_roles(&acme, "leaver@acme.example.com", &["developer"])
        .await;
    assert_eq!(
        app.call(Method::GET, "/api/v1/auth/me", &user, None)
            .await
            .status,
        200
    );
    let res = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            &acme.admin(),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(res.json()["is_active"], false);
    app.call(Method::GET, "/api/v1/auth/me", &user, None)
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    app.post_json(
        "/api/v1/auth/login",
        &json!({"tenant": "acme", "email": "leaver@acme.example.com", "password": PASSWORD}),
    )
    .await
    .assert_problem(401, "INVALID_CREDENTIALS");
}
