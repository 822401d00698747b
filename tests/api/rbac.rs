//! Roles: what each system role may and may not do, custom roles, escalation, caching.

use axum::http::Method;
use serde_json::{Value, json};

use crate::helpers::{Onboarded, TestApp, eventually};

/// A request a role may or may not be allowed to make, and the permission behind it.
struct Action {
    permission: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
}

/// One action per catalog permission that has a route, against tenant `t`'s objects.
async fn actions(app: &TestApp, t: &Onboarded) -> Vec<Action> {
    let resource = app
        .call(
            Method::POST,
            "/api/v1/resources",
            &t.admin(),
            Some(json!({"name": "r"})),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (user, _) = app
        .user_with_roles(
            t,
            &format!("target-{}@x.example.com", uuid::Uuid::new_v4().simple()),
            &["viewer"],
        )
        .await;
    let a = |permission, method, path: String, body| Action {
        permission,
        method,
        path,
        body,
    };
    vec![
        a(
            "tenant:read",
            Method::GET,
            format!("/api/v1/tenants/{}", t.id),
            None,
        ),
        a(
            "tenant:update",
            Method::PATCH,
            format!("/api/v1/tenants/{}", t.id),
            Some(json!({"name": "Renamed"})),
        ),
        a("users:read", Method::GET, "/api/v1/users".into(), None),
        a(
            "users:create",
            Method::POST,
            "/api/v1/users".into(),
            Some(
                json!({"email": format!("n{}@x.example.com", uuid::Uuid::new_v4().simple()), "password": "a long password", "roles": []}),
            ),
        ),
        a(
            "users:update",
            Method::PATCH,
            format!("/api/v1/users/{user}"),
            Some(json!({"first_name": "X"})),
        ),
        a("roles:read", Method::GET, "/api/v1/roles".into(), None),
        a(
            "roles:manage",
            Method::POST,
            "/api/v1/roles".into(),
            Some(json!({"name": format!("r{}", uuid::Uuid::new_v4().simple()), "permissions": []})),
        ),
        a(
            "roles:assign",
            Method::PUT,
            format!("/api/v1/users/{user}/roles"),
            Some(json!({"roles": []})),
        ),
        a(
            "api_keys:read",
            Method::GET,
            "/api/v1/api-keys".into(),
            None,
        ),
        a(
            "api_keys:manage",
            Method::POST,
            "/api/v1/api-keys".into(),
            Some(json!({"name": "k", "permissions": []})),
        ),
        a(
            "resources:read",
            Method::GET,
            format!("/api/v1/resources/{resource}"),
            None,
        ),
        a(
            "resources:create",
            Method::POST,
            "/api/v1/resources".into(),
            Some(json!({"name": "new"})),
        ),
        a(
            "resources:update",
            Method::PATCH,
            format!("/api/v1/resources/{resource}"),
            Some(json!({"name": "changed"})),
        ),
        a("audit:read", Method::GET, "/api/v1/audit-logs".into(), None),
        a(
            "webhooks:read",
            Method::GET,
            "/api/v1/webhooks/endpoints".into(),
            None,
        ),
        a(
            "webhooks:manage",
            Method::POST,
            "/api/v1/webhooks/endpoints".into(),
            Some(json!({"url": "https://hooks.example.com/in", "event_types": ["*"]})),
        ),
        // Destructive ones last.
        a(
            "users:delete",
            Method::DELETE,
            format!("/api/v1/users/{user}"),
            None,
        ),
        a(
            "resources:delete",
            Method::DELETE,
            format!("/api/v1/resources/{resource}"),
            None,
        ),
    ]
}

/// The SPEC's system roles, as the permissions each must hold among those above.
fn allowed(role: &str, permission: &str) -> bool {
    let read = permission.ends_with(":read");
    match role {
        "admin" => true,
        "manager" => !matches!(permission, "tenant:delete" | "roles:manage"),
        "developer" => {
            (read && permission != "audit:read")
                || permission.starts_with("resources:")
                || matches!(
                    permission,
                    "jobs:create" | "jobs:cancel" | "files:upload" | "files:delete"
                )
        }
        "viewer" => read && !matches!(permission, "audit:read" | "api_keys:read"),
        _ => false,
    }
}

#[tokio::test]
async fn each_system_role_is_allowed_exactly_its_permissions() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    for role in ["admin", "manager", "developer", "viewer"] {
        let (_, auth) = app
            .user_with_roles(&t, &format!("{role}-user@acme.example.com"), &[role])
            .await;
        for action in actions(&app, &t).await {
            let res = app
                .call(
                    action.method.clone(),
                    &action.path,
                    &auth,
                    action.body.clone(),
                )
                .await;
            if allowed(role, action.permission) {
                assert!(
                    res.status.is_success(),
                    "{role} should be allowed {} ({} {}): {}",
                    action.permission,
                    action.method,
                    action.path,
                    res.text()
                );
            } else {
                res.assert_problem(403, "FORBIDDEN");
            }
        }
    }
}

#[tokio::test]
async fn system_roles_cannot_be_changed_or_deleted() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let roles = app
        .call(Method::GET, "/api/v1/roles?limit=100", &t.admin(), None)
        .await
        .json();
    let system: Vec<&Value> = roles["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|r| r["is_system"] == true)
        .collect();
    assert_eq!(system.len(), 4);
    let admin_role = system.iter().find(|r| r["name"] == "admin").expect("admin");
    assert_eq!(admin_role["permissions"], json!(["*"]));
    for role in system {
        let id = role["id"].as_str().expect("id");
        let path = format!("/api/v1/roles/{id}");
        app.call(
            Method::PATCH,
            &path,
            &t.admin(),
            Some(json!({"name": "renamed"})),
        )
        .await
        .assert_problem(403, "FORBIDDEN");
        app.call(Method::DELETE, &path, &t.admin(), None)
            .await
            .assert_problem(403, "FORBIDDEN");
        app.call(
            Method::POST,
            &format!("{path}/permissions"),
            &t.admin(),
            Some(json!({"permission": "audit:read"})),
        )
        .await
        .assert_problem(403, "FORBIDDEN");
        app.call(
            Method::DELETE,
            &format!("{path}/permissions/users:read"),
            &t.admin(),
            None,
        )
        .await
        .assert_problem(403, "FORBIDDEN");
    }
}

#[tokio::test]
async fn custom_role_lifecycle_takes_effect_on_the_next_request() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let admin = t.admin();
    let res = app
        .call(Method::POST, "/api/v1/roles", &admin, Some(json!({"name": "auditor", "description": "Reads the log", "permissions": ["audit:read"]})))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let role = res.json();
    assert_eq!(role["is_system"], false);
    let id = role["id"].as_str().expect("id").to_owned();
    app.call(
        Method::POST,
        "/api/v1/roles",
        &admin,
        Some(json!({"name": "auditor"})),
    )
    .await
    .assert_problem(409, "CONFLICT");
    let problem = app
        .call(
            Method::POST,
            "/api/v1/roles",
            &admin,
            Some(json!({"name": "bad", "permissions": ["audit:write"]})),
        )
        .await
        .assert_problem(422, "VALIDATION_FAILED");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("audit:write"))
    );

    let (_, user) = app
        .user_with_roles(&t, "aud@acme.example.com", &["auditor"])
        .await;
    assert_eq!(
        app.call(Method::GET, "/api/v1/audit-logs", &user, None)
            .await
            .status,
        200
    );
    app.call(Method::GET, "/api/v1/users", &user, None)
        .await
        .assert_problem(403, "FORBIDDEN");

    let path = format!("/api/v1/roles/{id}");
    let res = app
        .call(
            Method::POST,
            &format!("{path}/permissions"),
            &admin,
            Some(json!({"permission": "users:*"})),
        )
        .await;
    assert_eq!(res.json()["permissions"], json!(["audit:read", "users:*"]));
    assert_eq!(
        app.call(Method::GET, "/api/v1/users", &user, None)
            .await
            .status,
        200,
        "granted at once"
    );

    let res = app
        .call(
            Method::DELETE,
            &format!("{path}/permissions/audit:read"),
            &admin,
            None,
        )
        .await;
    assert_eq!(res.json()["permissions"], json!(["users:*"]));
    app.call(Method::GET, "/api/v1/audit-logs", &user, None)
        .await
        .assert_problem(403, "FORBIDDEN");
    app.call(
        Method::DELETE,
        &format!("{path}/permissions/nope:nope"),
        &admin,
        None,
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");

    let res = app
        .call(
            Method::PATCH,
            &path,
            &admin,
            Some(json!({"name": "people-reader"})),
        )
        .await;
    assert_eq!(res.json()["name"], "people-reader");
    assert_eq!(
        app.call(Method::GET, &path, &admin, None).await.json()["name"],
        "people-reader"
    );

    assert_eq!(
        app.call(Method::DELETE, &path, &admin, None).await.status,
        204
    );
    app.call(Method::GET, "/api/v1/users", &user, None)
        .await
        .assert_problem(403, "FORBIDDEN");
    app.call(Method::GET, &path, &admin, None)
        .await
        .assert_problem(404, "NOT_FOUND");

    let log = app
        .call(Method::GET, "/api/v1/audit-logs?limit=100", &admin, None)
        .await
        .json();
    let actions: Vec<&str> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for expected in [
        "role.created",
        "role.permission_added",
        "role.permission_removed",
        "role.updated",
        "role.deleted",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
}

#[tokio::test]
async fn nobody_grants_what_they_do_not_hold() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    // A custom role that may manage roles and assign them, but holds little else.
    let res = app
        .call(Method::POST, "/api/v1/roles", &t.admin(), Some(json!({"name": "role-admin", "permissions": ["roles:manage", "roles:assign", "roles:read", "users:read"]})))
        .await;
    assert_eq!(res.status, 201);
    let (_, limited) = app
        .user_with_roles(&t, "ra@acme.example.com", &["role-admin"])
        .await;
    for permissions in [json!(["*"]), json!(["users:*"]), json!(["audit:read"])] {
        app.call(
            Method::POST,
            "/api/v1/roles",
            &limited,
            Some(json!({"name": "grab", "permissions": permissions})),
        )
        .await
        .assert_problem(403, "FORBIDDEN");
    }
    let ok = app
        .call(
            Method::POST,
            "/api/v1/roles",
            &limited,
            Some(json!({"name": "reader", "permissions": ["users:read"]})),
        )
        .await;
    assert_eq!(ok.status, 201);
    let id = ok.json()["id"].as_str().expect("id").to_owned();
    app.call(
        Method::POST,
        &format!("/api/v1/roles/{id}/permissions"),
        &limited,
        Some(json!({"permission": "users:delete"})),
    )
    .await
    .assert_problem(403, "FORBIDDEN");
    let (target, _) = app
        .user_with_roles(&t, "tg@acme.example.com", &["viewer"])
        .await;
    app.call(
        Method::PUT,
        &format!("/api/v1/users/{target}/roles"),
        &limited,
        Some(json!({"roles": ["manager"]})),
    )
    .await
    .assert_problem(403, "FORBIDDEN");
}

#[tokio::test]
async fn the_catalog_lists_every_permission() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let (_, viewer) = app
        .user_with_roles(&t, "v@acme.example.com", &["viewer"])
        .await;
    let catalog = app
        .call(Method::GET, "/api/v1/permissions", &viewer, None)
        .await
        .json();
    let names: Vec<&str> = catalog["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["permission"].as_str())
        .collect();
    assert_eq!(names.len(), 31);
    for name in [
        "tenant:delete",
        "notifications:manage_templates",
        "scaling:manage",
        "audit:read",
    ] {
        assert!(names.contains(&name), "{name}");
    }
}

#[tokio::test]
async fn a_replica_that_missed_a_role_change_drops_it_within_30_seconds() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let (user_id, user) = app
        .user_with_roles(&t, "shrink@acme.example.com", &["admin"])
        .await;
    let deaf = app.replica().await;
    deaf.stop_listening();
    // The deaf replica caches the admin's permissions (its user cache keeps them for
    // minutes while nothing changes).
    assert_eq!(
        deaf.call(Method::GET, "/api/v1/audit-logs", &user)
            .await
            .status,
        200
    );

    let res = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{user_id}/roles"),
            &t.admin(),
            Some(json!({"roles": ["viewer"]})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        deaf.call(Method::GET, "/api/v1/audit-logs", &user)
            .await
            .status,
        200,
        "no message reached the deaf replica: it still acts on what it cached"
    );
    // The change bumped the tenant's epoch; the tenant's row is re-read within 30 s.
    let refused = eventually(std::time::Duration::from_secs(31), async || {
        deaf.call(Method::GET, "/api/v1/audit-logs", &user)
            .await
            .status
            == 403
    })
    .await;
    assert!(
        refused,
        "the narrowed role reached the deaf replica within 30 s"
    );
}

/// Like users, keys are cached while their tenant's epoch stands: a revocation that
/// never reaches a replica as a message still stops the key there within 30 s.
#[tokio::test]
async fn a_replica_that_missed_a_key_revocation_refuses_the_key_within_30_seconds() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let (key_id, key) = app
        .api_key(&t, json!({"name": "k", "role": "viewer"}))
        .await;
    let deaf = app.replica().await;
    deaf.stop_listening();
    assert_eq!(
        deaf.call(Method::GET, "/api/v1/auth/me", &key).await.status,
        200
    );

    let res = app
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{key_id}"),
            &t.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(
        app.call(Method::GET, "/api/v1/auth/me", &key, None)
            .await
            .status,
        401,
        "the revoking replica refuses the key at once"
    );
    assert_eq!(
        deaf.call(Method::GET, "/api/v1/auth/me", &key).await.status,
        200,
        "no message reached the deaf replica: it still acts on what it cached"
    );
    let refused = eventually(std::time::Duration::from_secs(31), async || {
        deaf.call(Method::GET, "/api/v1/auth/me", &key).await.status == 401
    })
    .await;
    assert!(
        refused,
        "the revocation reached the deaf replica within 30 s"
    );
}

#[tokio::test]
async fn a_role_change_on_one_replica_is_seen_by_another() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let (user_id, user) = app
        .user_with_roles(&t, "grow@acme.example.com", &["viewer"])
        .await;
    let other = app.replica().await;
    // The other replica caches the viewer's permissions.
    other
        .call(Method::GET, "/api/v1/audit-logs", &user)
        .await
        .assert_problem(403, "FORBIDDEN");

    let res = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{user_id}/roles"),
            &t.admin(),
            Some(json!({"roles": ["admin"]})),
        )
        .await;
    assert_eq!(res.status, 200);
    let mut seen = false;
    for _ in 0..250 {
        if other
            .call(Method::GET, "/api/v1/audit-logs", &user)
            .await
            .status
            == 200
        {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(seen, "the other replica dropped its cached permissions");

    // A key revoked on one replica stops on the other.
    let (key_id, key) = app
        .api_key(&t, json!({"name": "k", "role": "viewer"}))
        .await;
    assert_eq!(
        other
            .call(Method::GET, "/api/v1/auth/me", &key)
            .await
            .status,
        200
    );
    app.call(
        Method::DELETE,
        &format!("/api/v1/api-keys/{key_id}"),
        &t.admin(),
        None,
    )
    .await;
    let mut refused = false;
    for _ in 0..250 {
        if other
            .call(Method::GET, "/api/v1/auth/me", &key)
            .await
            .status
            == 401
        {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "revocation reached the other replica");
}
