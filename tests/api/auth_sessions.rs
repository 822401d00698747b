//! The caller's sessions: listed with their client, ended one by one on every replica.

use std::time::Duration;

use axum::{
    body::Body,
    http::{Method, Request, header},
};
use serde_json::{Value, json};

use crate::helpers::{Auth, PASSWORD, TestApp, eventually};

/// Logs in with a `User-Agent`; returns the token pair.
async fn login_as(app: &TestApp, tenant: &str, email: &str, agent: &str) -> Value {
    let request = Request::post("/api/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, agent)
        .body(Body::from(
            json!({"tenant": tenant, "email": email, "password": PASSWORD}).to_string(),
        ))
        .expect("request");
    let res = app.request(request).await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

fn bearer(pair: &Value) -> Auth {
    Auth::Bearer(pair["access_token"].as_str().expect("token").to_owned())
}

async fn sessions(app: &TestApp, auth: &Auth) -> Vec<Value> {
    let res = app
        .call(Method::GET, "/api/v1/auth/sessions", auth, None)
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn sessions_are_listed_and_one_ended_is_refused_on_every_replica() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let replica = app.replica().await;
    let laptop = login_as(&app, "acme", &acme.admin_email, "laptop/1.0").await;
    let phone = login_as(&app, "acme", &acme.admin_email, "phone/2.0").await;

    let listed = sessions(&app, &bearer(&laptop)).await;
    assert_eq!(listed.len(), 3, "onboarding, laptop and phone: {listed:?}");
    let current: Vec<&Value> = listed.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["user_agent"], "laptop/1.0");
    let phone_session = listed
        .iter()
        .find(|s| s["user_agent"] == "phone/2.0")
        .expect("the phone's session")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for s in &listed {
        for field in ["id", "created_at", "last_used_at"] {
            assert!(s[field].is_string(), "{field}: {s}");
        }
    }

    // A refresh continues the same session.
    let res = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": laptop["refresh_token"]}),
        )
        .await;
    assert_eq!(res.status, 200);
    let laptop = res.json();
    assert_eq!(sessions(&app, &bearer(&laptop)).await.len(), 3);

    // The phone works on both replicas, then the laptop ends the phone's session.
    let me = "/api/v1/auth/me";
    assert_eq!(
        replica.call(Method::GET, me, &bearer(&phone)).await.status,
        200
    );
    let res = app
        .call(
            Method::DELETE,
            &format!("/api/v1/auth/sessions/{phone_session}"),
            &bearer(&laptop),
            None,
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    app.call(Method::GET, me, &bearer(&phone), None)
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    assert!(
        eventually(Duration::from_secs(3), async || {
            replica.call(Method::GET, me, &bearer(&phone)).await.status == 401
        })
        .await,
        "the other replica refuses the ended session's token"
    );
    let res = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": phone["refresh_token"]}),
        )
        .await;
    res.assert_problem(401, "UNAUTHENTICATED");
    // The laptop is untouched, and the phone is gone from the list.
    let listed = sessions(&app, &bearer(&laptop)).await;
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|s| s["id"] != phone_session.as_str()));
    assert_eq!(
        replica.call(Method::GET, me, &bearer(&laptop)).await.status,
        200
    );
}

#[tokio::test]
async fn only_your_own_sessions_can_be_ended() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (_, other) = app
        .user_with_roles(&acme, "other@acme.example.com", &["admin"])
        .await;
    let theirs = sessions(&app, &other).await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.call(
        Method::DELETE,
        &format!("/api/v1/auth/sessions/{theirs}"),
        &acme.admin(),
        None,
    )
    .await
    .assert_problem(404, "NOT_FOUND");
    let globex = app.onboard("globex").await;
    let foreign = sessions(&app, &globex.admin()).await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.call(
        Method::DELETE,
        &format!("/api/v1/auth/sessions/{foreign}"),
        &acme.admin(),
        None,
    )
    .await
    .assert_problem(404, "NOT_FOUND");
    // Both still work.
    assert_eq!(
        app.call(Method::GET, "/api/v1/auth/me", &other, None)
            .await
            .status,
        200
    );
    assert_eq!(
        app.call(Method::GET, "/api/v1/auth/me", &globex.admin(), None)
            .await
            .status,
        200
    );
    // API keys have no sessions.
    let (_, key) = app
        .api_key(&acme, json!({"name": "k", "role": "admin"}))
        .await;
    app.call(Method::GET, "/api/v1/auth/sessions", &key, None)
        .await
        .assert_problem(403, "FORBIDDEN");
}

#[tokio::test]
async fn ending_your_current_session_logs_you_out() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let listed = sessions(&app, &acme.admin()).await;
    let current = listed
        .iter()
        .find(|s| s["current"] == true)
        .expect("current")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let res = app
        .call(
            Method::DELETE,
            &format!("/api/v1/auth/sessions/{current}"),
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 204);
    app.call(Method::GET, "/api/v1/auth/me", &acme.admin(), None)
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    let audit = app
        .call(
            Method::GET,
            "/api/v1/audit-logs?action=auth.session_ended",
            &app.login("acme", &acme.admin_email, PASSWORD).await,
            None,
        )
        .await;
    assert_eq!(audit.json()["items"].as_array().expect("items").len(), 1);
}
