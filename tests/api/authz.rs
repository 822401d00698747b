//! The owner model through the API: no route lets a weaker principal act on a stronger
//! one, the last admin stays, and API keys keep the role they were given.

use axum::http::Method;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Auth, Onboarded, TestApp};

fn user_uri(id: Uuid) -> String {
    format!("/api/v1/users/{id}")
}

/// A second admin and a manager in `acme`.
async fn staff(app: &TestApp, acme: &Onboarded) -> (Uuid, Auth, Uuid, Auth) {
    let (admin2, admin2_auth) = app
        .user_with_roles(acme, "admin2@acme.example.com", &["admin"])
        .await;
    let (manager, manager_auth) = app
        .user_with_roles(acme, "manager@acme.example.com", &["manager"])
        .await;
    (admin2, admin2_auth, manager, manager_auth)
}

#[tokio::test]
async fn a_manager_cannot_rotate_or_revoke_an_admin_key() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (_, _, _, manager) = staff(&app, &acme).await;
    let (key_id, admin_key) = app
        .api_key(&acme, json!({"name": "deploy", "role": "admin"}))
        .await;

    for (method, uri) in [
        (Method::POST, format!("/api/v1/api-keys/{key_id}/rotate")),
        (Method::DELETE, format!("/api/v1/api-keys/{key_id}")),
    ] {
        app.call(method, &uri, &manager, None)
            .await
            .assert_problem(403, "FORBIDDEN");
    }
    // The admin key still works: nothing was rotated or revoked.
    let res = app
        .call(Method::GET, "/api/v1/auth/me", &admin_key, None)
        .await;
    assert_eq!(res.status, 200, "{}", res.text());

    // A key within the manager's own permissions is theirs to rotate.
    let (dev_key_id, _) = app
        .api_key(&acme, json!({"name": "ci", "role": "developer"}))
        .await;
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/api-keys/{dev_key_id}/rotate"),
            &manager,
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
}

#[tokio::test]
async fn a_manager_cannot_demote_deactivate_or_delete_an_admin() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (admin2, _, _, manager) = staff(&app, &acme).await;
    for (method, uri, body) in [
        (
            Method::PUT,
            format!("{}/roles", user_uri(admin2)),
            Some(json!({"roles": ["viewer"]})),
        ),
        (
            Method::PATCH,
            user_uri(admin2),
            Some(json!({"is_active": false})),
        ),
        (
            Method::PATCH,
            user_uri(admin2),
            Some(json!({"first_name": "Pwned"})),
        ),
        (Method::DELETE, user_uri(admin2), None),
        (
            Method::PUT,
            format!("{}/roles", user_uri(acme.admin_id)),
            Some(json!({"roles": ["viewer"]})),
        ),
        (Method::DELETE, user_uri(acme.admin_id), None),
    ] {
        app.call(method, &uri, &manager, body)
            .await
            .assert_problem(403, "FORBIDDEN");
    }
    let admin = app
        .call(Method::GET, &user_uri(admin2), &acme.admin(), None)
        .await
        .json();
    assert_eq!(admin["roles"], json!(["admin"]));
    assert_eq!(admin["is_active"], true);
    assert_eq!(admin["first_name"], json!(null));

    // Users within the manager's permissions are theirs to manage.
    let (dev, _) = app
        .user_with_roles(&acme, "dev@acme.example.com", &["developer"])
        .await;
    let res = app
        .call(
            Method::PUT,
            &format!("{}/roles", user_uri(dev)),
            &manager,
            Some(json!({"roles": ["viewer"]})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let res = app
        .call(Method::DELETE, &user_uri(dev), &manager, None)
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_removed_demoted_or_deactivated() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (admin2, admin2_auth) = app
        .user_with_roles(&acme, "admin2@acme.example.com", &["admin"])
        .await;
    // With two admins, one may remove the other...
    let res = app
        .call(Method::DELETE, &user_uri(admin2), &acme.admin(), None)
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(
        app.call(Method::GET, "/api/v1/auth/me", &admin2_auth, None)
            .await
            .status,
        401
    );
    // ...but the last one stays: not demoted (even by themselves), deactivated or deleted.
    let roles = format!("{}/roles", user_uri(acme.admin_id));
    app.call(
        Method::PUT,
        &roles,
        &acme.admin(),
        Some(json!({"roles": ["manager"]})),
    )
    .await
    .assert_problem(409, "CONFLICT");
    let (other_admin, other) = app
        .user_with_roles(&acme, "admin3@acme.example.com", &["admin"])
        .await;
    app.call(
        Method::PATCH,
        &user_uri(other_admin),
        &other,
        Some(json!({"is_active": false})),
    )
    .await
    .assert_problem(409, "CONFLICT");
    // admin3 deactivates the first admin; now admin3 is the last and stays.
    let res = app
        .call(
            Method::PATCH,
            &user_uri(acme.admin_id),
            &other,
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    app.call(
        Method::PUT,
        &format!("{}/roles", user_uri(other_admin)),
        &other,
        Some(json!({"roles": ["viewer"]})),
    )
    .await
    .assert_problem(409, "CONFLICT");
}

#[tokio::test]
async fn api_keys_keep_their_role_through_renames_and_used_roles_cannot_be_deleted() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let create_role = |name: &'static str, permissions: serde_json::Value| {
        let app = &app;
        let acme = &acme;
        async move {
            let res = app
                .call(
                    Method::POST,
                    "/api/v1/roles",
                    &acme.admin(),
                    Some(json!({"name": name, "permissions": permissions})),
                )
                .await;
            assert_eq!(res.status, 201, "{}", res.text());
            res.json()["id"].as_str().expect("id").to_owned()
        }
    };
    let empty = create_role("empty", json!([])).await;
    let strong = create_role("strong", json!(["users:*", "api_keys:*"])).await;
    let (key_id, key) = app
        .api_key(&acme, json!({"name": "bot", "role": "empty"}))
        .await;

    // The role a key uses cannot be deleted...
    app.call(
        Method::DELETE,
        &format!("/api/v1/roles/{empty}"),
        &acme.admin(),
        None,
    )
    .await
    .assert_problem(409, "CONFLICT");
    // ...and renaming another role to its name changes nothing for the key.
    let res = app
        .call(
            Method::PATCH,
            &format!("/api/v1/roles/{empty}"),
            &acme.admin(),
            Some(json!({"name": "was-empty"})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let res = app
        .call(
            Method::PATCH,
            &format!("/api/v1/roles/{strong}"),
            &acme.admin(),
            Some(json!({"name": "empty"})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    app.call(Method::GET, "/api/v1/users", &key, None)
        .await
        .assert_problem(403, "FORBIDDEN");
    let keys = app
        .call(Method::GET, "/api/v1/api-keys", &acme.admin(), None)
        .await
        .json();
    assert_eq!(
        keys["items"][0]["role"], "was-empty",
        "listings follow the rename"
    );

    // Once its keys are revoked, the role can go.
    let res = app
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{key_id}"),
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 204);
    let res = app
        .call(
            Method::DELETE,
            &format!("/api/v1/roles/{empty}"),
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
}

#[tokio::test]
async fn a_role_manager_cannot_change_a_role_stronger_than_itself() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let create = |name: &'static str, permissions: serde_json::Value| {
        let app = &app;
        let acme = &acme;
        async move {
            let res = app
                .call(
                    Method::POST,
                    "/api/v1/roles",
                    &acme.admin(),
                    Some(json!({"name": name, "permissions": permissions})),
                )
                .await;
            assert_eq!(res.status, 201, "{}", res.text());
            res.json()["id"].as_str().expect("id").to_owned()
        }
    };
    create(
        "role-keeper",
        json!(["roles:manage", "roles:read", "resources:read"]),
    )
    .await;
    let auditors = create("auditors", json!(["audit:read", "resources:read"])).await;
    let (_, keeper) = app
        .user_with_roles(&acme, "keeper@acme.example.com", &["role-keeper"])
        .await;
    for (method, uri, body) in [
        (Method::DELETE, format!("/api/v1/roles/{auditors}"), None),
        (
            Method::DELETE,
            format!("/api/v1/roles/{auditors}/permissions/audit:read"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/roles/{auditors}"),
            Some(json!({"name": "renamed"})),
        ),
    ] {
        app.call(method, &uri, &keeper, body)
            .await
            .assert_problem(403, "FORBIDDEN");
    }
}
