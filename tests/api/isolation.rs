//! Tenant isolation through the HTTP API: every route with an id, called with another
//! tenant's credentials on this tenant's objects, answers 404 (403 for operator routes);
//! and concurrent traffic of many tenants through a tiny pool never mixes their rows.

use std::collections::HashMap;

use axum::http::Method;
use futures::future::join_all;
use serde_json::json;
use tenantry::http::{access::Access, router};

use crate::helpers::{Auth, TestApp};

#[tokio::test]
async fn every_id_route_hides_another_tenants_objects() {
    let app = TestApp::with_private_webhook_targets().await;
    let a = app.onboard("alpha").await;
    let b = app.onboard("bravo").await;

    // One object of each kind in A.
    let (a_user, _) = app
        .user_with_roles(&a, "u@alpha.example.com", &["viewer"])
        .await;
    let (a_key, _) = app
        .api_key(&a, json!({"name": "a-key", "role": "viewer"}))
        .await;
    let a_role = app
        .call(
            Method::POST,
            "/api/v1/roles",
            &a.admin(),
            Some(json!({"name": "alpha-role", "permissions": ["users:read"]})),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("role")
        .to_owned();
    let a_resource = app
        .call(
            Method::POST,
            "/api/v1/resources",
            &a.admin(),
            Some(json!({"name": "alpha-secret", "data": {"owner": "alpha"}})),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("resource")
        .to_owned();
    let a_job = app
        .call(
            Method::POST,
            "/api/v1/jobs",
            &a.admin(),
            Some(json!({"type": "echo", "payload": {"owner": "alpha"}})),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("job")
        .to_owned();
    let a_template = app
        .call(
            Method::POST,
            "/api/v1/notifications/templates",
            &a.admin(),
            Some(json!({"name": "alpha-template", "channel": "sms", "body": "alpha"})),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("template")
        .to_owned();
    let a_file = app
        .call(
            Method::POST,
            "/api/v1/files/uploads",
            &a.admin(),
            Some(json!({"name": "alpha-secret.txt", "content_type": "text/plain", "size": 1})),
        )
        .await
        .json()["file"]["id"]
        .as_str()
        .expect("file")
        .to_owned();
    let a_invitation = app
        .call(
            Method::POST,
            "/api/v1/invitations",
            &a.admin(),
            Some(json!({"email": "invited@alpha.example.com"})),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("invitation")
        .to_owned();
    let a_session = app
        .call(Method::GET, "/api/v1/auth/sessions", &a.admin(), None)
        .await
        .json()["items"][0]["id"]
        .as_str()
        .expect("session")
        .to_owned();
    let a_endpoint = app
        .call(
            Method::POST,
            "/api/v1/webhooks/endpoints",
            &a.admin(),
            Some(json!({"url": "http://127.0.0.1:9/hook", "event_types": ["*"]})),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("webhook endpoint")
        .to_owned();
    let a_message = app
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/endpoints/{a_endpoint}/test"),
            &a.admin(),
            None,
        )
        .await
        .json()["message_id"]
        .as_str()
        .expect("webhook message")
        .to_owned();
    let ids: HashMap<&str, String> = HashMap::from([
        ("/api/v1/invitations/", a_invitation),
        ("/api/v1/auth/sessions/", a_session),
        ("/api/v1/webhooks/endpoints/", a_endpoint),
        ("/api/v1/webhooks/messages/", a_message),
        ("/api/v1/jobs/", a_job),
        ("/api/v1/notifications/templates/", a_template),
        ("/api/v1/files/", a_file),
        ("/api/v1/tenants/", a.id.to_string()),
        ("/api/v1/users/", a_user.to_string()),
        ("/api/v1/api-keys/", a_key.to_string()),
        ("/api/v1/roles/", a_role.clone()),
        ("/api/v1/resources/", a_resource.clone()),
    ]);
    let (_, b_key) = app
        .api_key(&b, json!({"name": "b-key", "role": "admin"}))
        .await;
    let bodies = json!({"name": "pwned", "data": {}, "roles": ["viewer"], "permission": "users:read", "first_name": "pwned", "channel": "sms", "body": "pwned"});

    let (_, table) = router::api(&app.state);
    let mut checked = 0;
    for route in table.iter().filter(|r| r.path.contains("{id}")) {
        let prefix = ids
            .keys()
            .find(|p| route.path.starts_with(**p))
            .unwrap_or_else(|| {
                panic!(
                    "no object of tenant A for {} {}: add one",
                    route.method, route.path
                )
            });
        let path = route
            .path
            .replace("{id}", &ids[prefix])
            .replace("{permission}", "users:read");
        let method: Method = route.method.parse().expect("method");
        let body = matches!(route.method, "POST" | "PUT" | "PATCH").then(|| bodies.clone());
        for b_auth in [b.admin(), b_key.clone()] {
            let res = app.call(method.clone(), &path, &b_auth, body.clone()).await;
            if route.access == Access::Platform {
                res.assert_problem(403, "FORBIDDEN");
            } else {
                res.assert_problem(404, "NOT_FOUND");
            }
            checked += 1;
        }
    }
    assert!(checked >= 36, "checked {checked} calls");

    // B's lists show nothing of A.
    for list in [
        "/api/v1/users",
        "/api/v1/api-keys",
        "/api/v1/roles",
        "/api/v1/resources",
        "/api/v1/files",
        "/api/v1/audit-logs",
        "/api/v1/notifications/templates",
        "/api/v1/invitations",
        "/api/v1/auth/sessions",
        "/api/v1/webhooks/endpoints",
        "/api/v1/webhooks/messages",
    ] {
        let text = app
            .call(Method::GET, &format!("{list}?limit=100"), &b.admin(), None)
            .await
            .text();
        for secret in [
            "alpha.example.com",
            "a-key",
            "alpha-role",
            "alpha-secret",
            "alpha-template",
            &a_resource,
        ] {
            assert!(!text.contains(secret), "{list} shows {secret}");
        }
    }

    // A's objects are unchanged.
    let admin = a.admin();
    let resource = app
        .call(
            Method::GET,
            &format!("/api/v1/resources/{a_resource}"),
            &admin,
            None,
        )
        .await
        .json();
    assert_eq!(resource["name"], "alpha-secret");
    assert_eq!(resource["version"], 1);
    let role = app
        .call(
            Method::GET,
            &format!("/api/v1/roles/{a_role}"),
            &admin,
            None,
        )
        .await
        .json();
    assert_eq!(role["permissions"], json!(["users:read"]));
    assert_eq!(
        app.call(
            Method::GET,
            &format!("/api/v1/users/{a_user}"),
            &admin,
            None
        )
        .await
        .status,
        200
    );
    let tenant = app
        .call(
            Method::GET,
            &format!("/api/v1/tenants/{}", a.id),
            &admin,
            None,
        )
        .await
        .json();
    assert_eq!(tenant["status"], "active");
}

#[tokio::test]
async fn concurrent_requests_of_many_tenants_through_two_connections_never_mix_rows() {
    let app = TestApp::builder()
        .with_config(|c| c.database.max_connections = 2)
        .build()
        .await;
    let mut tenants = Vec::new();
    for i in 0..6 {
        let t = app.onboard(&format!("tenant-{i}")).await;
        let (_, key) = app.api_key(&t, json!({"name": "k", "role": "admin"})).await;
        let mut resources = Vec::new();
        for j in 0..4 {
            let res = app
                .call(
                    Method::POST,
                    "/api/v1/resources",
                    &key,
                    Some(json!({"name": format!("{}-{j}", t.slug)})),
                )
                .await;
            resources.push(res.json()["id"].as_str().expect("id").to_owned());
        }
        tenants.push((t, key, resources));
    }

    let requests = (0..240).map(|i| {
        let (t, key, resources) = &tenants[i % tenants.len()];
        let (_, _, foreign) = &tenants[(i + 1) % tenants.len()];
        let app = &app;
        let auth: Auth = if i % 2 == 0 { key.clone() } else { t.admin() };
        async move {
            match i % 3 {
                0 => {
                    let page = app
                        .call(Method::GET, "/api/v1/resources?limit=100", &auth, None)
                        .await;
                    assert_eq!(page.status, 200, "{}", page.text());
                    let items = page.json()["items"].as_array().expect("items").clone();
                    assert_eq!(items.len(), 4);
                    for item in items {
                        let name = item["name"].as_str().expect("name");
                        assert!(
                            name.starts_with(&format!("{}-", t.slug)),
                            "{} saw {name}",
                            t.slug
                        );
                    }
                }
                1 => {
                    let own = &resources[i % resources.len()];
                    let res = app
                        .call(
                            Method::GET,
                            &format!("/api/v1/resources/{own}"),
                            &auth,
                            None,
                        )
                        .await;
                    assert_eq!(res.status, 200);
                    assert!(
                        res.json()["name"]
                            .as_str()
                            .is_some_and(|n| n.starts_with(&t.slug))
                    );
                }
                _ => {
                    let other = &foreign[i % foreign.len()];
                    app.call(
                        Method::GET,
                        &format!("/api/v1/resources/{other}"),
                        &auth,
                        None,
                    )
                    .await
                    .assert_problem(404, "NOT_FOUND");
                }
            }
        }
    });
    join_all(requests).await;
    assert!(app.db().size() <= 2);
}
