//! `/api/v1/audit-logs`: the sensitive actions, filters, and no secrets.

use axum::http::Method;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp};

#[tokio::test]
async fn sensitive_actions_are_recorded_with_actor_target_ip_and_agent() {
    let app = TestApp::builder()
        .with_config(|c| c.http.trusted_proxies = vec!["10.0.0.0/8".parse().expect("cidr")])
        .build()
        .await;
    let t = app.onboard("acme").await;
    let admin = t.admin();
    app.post_json(
        "/api/v1/auth/login",
        &json!({"tenant": "acme", "email": t.admin_email, "password": "wrong password"}),
    )
    .await;
    let res = app
        .request(
            axum::http::Request::post("/api/v1/auth/login")
                .header("content-type", "application/json")
                .header("user-agent", "audit-test/1.0")
                .header("x-forwarded-for", "203.0.113.7, 10.0.0.1")
                // Through a trusted proxy: the right-most untrusted hop is the client.
                .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                    [10, 0, 0, 2],
                    443,
                ))))
                .body(axum::body::Body::from(
                    json!({"tenant": "acme", "email": t.admin_email, "password": PASSWORD})
                        .to_string(),
                ))
                .expect("request"),
        )
        .await;
    assert_eq!(res.status, 200);
    let (key_id, _) = app
        .api_key(&t, json!({"name": "ci", "role": "viewer"}))
        .await;
    app.call(
        Method::DELETE,
        &format!("/api/v1/api-keys/{key_id}"),
        &admin,
        None,
    )
    .await;
    let (user_id, _) = app
        .user_with_roles(&t, "u@acme.example.com", &["viewer"])
        .await;
    app.call(
        Method::DELETE,
        &format!("/api/v1/users/{user_id}"),
        &admin,
        None,
    )
    .await;
    app.call(Method::POST, "/api/v1/auth/logout", &admin, None)
        .await;

    let admin = app.login("acme", &t.admin_email, PASSWORD).await;
    let log = app
        .call(Method::GET, "/api/v1/audit-logs?limit=100", &admin, None)
        .await;
    assert_eq!(log.status, 200, "{}", log.text());
    let text = log.text();
    let items = log.json()["items"].as_array().expect("items").clone();
    let actions: Vec<&str> = items.iter().filter_map(|e| e["action"].as_str()).collect();
    for expected in [
        "tenant.created",
        "auth.login_failed",
        "auth.login",
        "api_key.created",
        "api_key.revoked",
        "user.created",
        "user.deleted",
        "auth.logout",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    let login = items
        .iter()
        .find(|e| e["action"] == "auth.login" && e["user_agent"] == "audit-test/1.0")
        .expect("the login with our agent");
    assert_eq!(login["ip"], "203.0.113.7");
    assert_eq!(login["actor_type"], "user");
    assert_eq!(login["actor_id"], t.admin_id.to_string());
    let revoked = items
        .iter()
        .find(|e| e["action"] == "api_key.revoked")
        .expect("revoked");
    assert_eq!(revoked["target_type"], "api_key");
    assert_eq!(revoked["target_id"], key_id.to_string());

    // Secrets never reach the log.
    assert!(!text.contains(PASSWORD));
    assert!(!text.contains("wrong password"));
    assert!(!text.contains("argon2"));
}

#[tokio::test]
async fn the_audit_log_filters_by_action_actor_and_time() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let admin = t.admin();
    let before = chrono::Utc::now();
    for _ in 0..3 {
        app.post_json(
            "/api/v1/auth/login",
            &json!({"tenant": "acme", "email": t.admin_email, "password": "nope nope"}),
        )
        .await;
    }
    let get = |query: String| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let res = app
                .call(
                    Method::GET,
                    &format!("/api/v1/audit-logs?{query}"),
                    &admin,
                    None,
                )
                .await;
            assert_eq!(res.status, 200, "{}", res.text());
            res.json()["items"].as_array().expect("items").len()
        }
    };
    assert_eq!(get("action=auth.login_failed".into()).await, 3);
    assert_eq!(
        get(format!("actor_id={}&action=tenant.created", t.admin_id)).await,
        1
    );
    let from = before
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        .replace('+', "%2B");
    assert_eq!(get(format!("action=tenant.created&from={from}")).await, 0);
    assert_eq!(get("action=auth.login_failed&limit=2".into()).await, 2);
    app.call(
        Method::GET,
        "/api/v1/audit-logs?from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z",
        &admin,
        None,
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
    app.call(
        Method::GET,
        "/api/v1/audit-logs?from=yesterday",
        &admin,
        None,
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
}
