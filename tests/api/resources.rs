//! `/api/v1/resources`: CRUD, versions and ETags, If-Match, validation, pagination.

use std::collections::HashSet;

use axum::{
    body::Body,
    http::{Method, Request},
};
use serde_json::{Value, json};

use crate::helpers::{Auth, Onboarded, TestApp, TestResponse};

async fn with_if_match(
    app: &TestApp,
    t: &Onboarded,
    method: Method,
    path: &str,
    etag: &str,
    body: Option<Value>,
) -> TestResponse {
    let Auth::Bearer(token) = t.admin() else {
        unreachable!("admins have tokens")
    };
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("if-match", etag);
    let body = match body {
        Some(json) => {
            builder = builder.header("content-type", "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    app.request(builder.body(body).expect("request")).await
}

#[tokio::test]
async fn resources_are_created_read_replaced_patched_and_deleted_with_etags() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let admin = t.admin();
    let res = app
        .call(
            Method::POST,
            "/api/v1/resources",
            &admin,
            Some(json!({"name": "Widget", "data": {"colour": "red"}})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.header("etag"), Some("\"1\""));
    let created = res.json();
    assert_eq!(created["version"], 1);
    assert_eq!(created["owner_id"], t.admin_id.to_string());
    let path = format!("/api/v1/resources/{}", created["id"].as_str().expect("id"));

    let got = app.call(Method::GET, &path, &admin, None).await;
    assert_eq!(got.header("etag"), Some("\"1\""));
    assert_eq!(got.json()["data"], json!({"colour": "red"}));

    let res = with_if_match(
        &app,
        &t,
        Method::PUT,
        &path,
        "\"1\"",
        Some(json!({"name": "Widget 2", "data": {"colour": "blue"}})),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("etag"), Some("\"2\""));

    // A writer still holding version 1 loses: 412, and nothing changes.
    with_if_match(
        &app,
        &t,
        Method::PATCH,
        &path,
        "\"1\"",
        Some(json!({"name": "stale"})),
    )
    .await
    .assert_problem(412, "PRECONDITION_FAILED");
    with_if_match(&app, &t, Method::DELETE, &path, "\"1\"", None)
        .await
        .assert_problem(412, "PRECONDITION_FAILED");
    with_if_match(
        &app,
        &t,
        Method::PUT,
        &path,
        "garbage",
        Some(json!({"name": "x", "data": {}})),
    )
    .await
    .assert_problem(412, "PRECONDITION_FAILED");
    assert_eq!(
        app.call(Method::GET, &path, &admin, None).await.json()["name"],
        "Widget 2"
    );

    let res = with_if_match(
        &app,
        &t,
        Method::PATCH,
        &path,
        "\"2\"",
        Some(json!({"name": "Widget 3"})),
    )
    .await;
    assert_eq!(
        res.json()["data"],
        json!({"colour": "blue"}),
        "PATCH keeps what it does not name"
    );
    assert_eq!(res.json()["version"], 3);
    let res = app
        .call(
            Method::PATCH,
            &path,
            &admin,
            Some(json!({"data": {"size": 2}})),
        )
        .await;
    assert_eq!(
        res.header("etag"),
        Some("\"4\""),
        "no If-Match: last write wins"
    );

    assert_eq!(
        with_if_match(&app, &t, Method::DELETE, &path, "\"4\"", None)
            .await
            .status,
        204
    );
    app.call(Method::GET, &path, &admin, None)
        .await
        .assert_problem(404, "NOT_FOUND");
    with_if_match(
        &app,
        &t,
        Method::PUT,
        &path,
        "\"4\"",
        Some(json!({"name": "x", "data": {}})),
    )
    .await
    .assert_problem(404, "NOT_FOUND");
}

#[tokio::test]
async fn invalid_resources_are_422() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let create = |body: Value| {
        let auth = t.admin();
        let app = &app;
        async move {
            app.call(Method::POST, "/api/v1/resources", &auth, Some(body))
                .await
        }
    };
    for body in [
        json!({"name": ""}),
        json!({"name": "x".repeat(201)}),
        json!({"name": "ok", "data": [1, 2, 3]}),
        json!({"name": "ok", "data": "text"}),
        json!({"name": "ok", "data": {"blob": "x".repeat(65 * 1024)}}),
        json!({"data": {}}),
    ] {
        create(body).await.assert_problem(422, "VALIDATION_FAILED");
    }
    assert_eq!(
        create(json!({"name": "x".repeat(200), "data": {"blob": "x".repeat(60 * 1024)}}))
            .await
            .status,
        201
    );
    app.call(
        Method::GET,
        "/api/v1/resources/not-a-uuid",
        &t.admin(),
        None,
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
}

#[tokio::test]
async fn pagination_walks_every_row_exactly_once_under_concurrent_inserts() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let mut originals = HashSet::new();
    for i in 0..45 {
        let res = app
            .call(
                Method::POST,
                "/api/v1/resources",
                &t.admin(),
                Some(json!({"name": format!("r{i}")})),
            )
            .await;
        originals.insert(res.json()["id"].as_str().expect("id").to_owned());
    }

    let writer = async {
        for i in 0..30 {
            app.call(
                Method::POST,
                "/api/v1/resources",
                &t.admin(),
                Some(json!({"name": format!("new{i}")})),
            )
            .await;
            tokio::task::yield_now().await;
        }
    };
    let reader = async {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/resources?limit=7&cursor={c}"),
                None => "/api/v1/resources?limit=7".to_owned(),
            };
            let page = app.call(Method::GET, &path, &t.admin(), None).await.json();
            for item in page["items"].as_array().expect("items") {
                seen.push(item["id"].as_str().expect("id").to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
            tokio::task::yield_now().await;
        }
        seen
    };
    let ((), seen) = tokio::join!(writer, reader);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no row twice");
    for id in &originals {
        assert!(unique.contains(id), "{id} was skipped");
    }
}

/// `POST /api/v1/resources` with `body` as written (escapes `json!` would not produce).
async fn post_text(app: &TestApp, auth: &Auth, body: &'static str) -> TestResponse {
    let Auth::Bearer(token) = auth else {
        unreachable!("admins have tokens")
    };
    app.request(
        Request::post("/api/v1/resources")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request"),
    )
    .await
}

#[tokio::test]
async fn nul_characters_are_refused_before_they_reach_the_database() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let body = r#"{"name": "ok", "data": {"key\u0000": "value"}}"#;
    let res = post_text(&app, &t.admin(), body).await;
    res.assert_problem(422, "VALIDATION_FAILED");
    app.call(
        Method::GET,
        "/api/v1/audit-logs?action=a%00b",
        &t.admin(),
        None,
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
    // An escaped backslash followed by "u0000" is ordinary text.
    let res = app
        .call(
            Method::POST,
            "/api/v1/resources",
            &t.admin(),
            Some(json!({"name": "\\u0000 literally"})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
}

/// PostgreSQL keeps a JSON number exactly and renders it in full: one near the largest
/// 64-bit float would be stored and then break every read of the tenant's list. Such
/// numbers are refused when they come in; ordinary large ones are kept as sent.
#[tokio::test]
async fn numbers_that_would_not_read_back_are_refused() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let body = r#"{"name": "huge", "data": {"a": [1.7976931348623155e+308]}}"#;
    let res = post_text(&app, &t.admin(), body).await;
    let problem = res.assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(problem["errors"][0]["field"], "data", "{problem}");
    let job = app
        .call(
            Method::POST,
            "/api/v1/jobs",
            &t.admin(),
            Some(json!({"type": "echo", "payload": {"n": -1.7e308}})),
        )
        .await;
    job.assert_problem(422, "VALIDATION_FAILED");

    let kept = app
        .call(
            Method::POST,
            "/api/v1/resources",
            &t.admin(),
            Some(json!({"name": "big", "data": {"a": 1e300, "b": -12345678901234567890.0}})),
        )
        .await;
    assert_eq!(kept.status, 201, "{}", kept.text());
    let page = app
        .call(Method::GET, "/api/v1/resources", &t.admin(), None)
        .await;
    assert_eq!(page.status, 200, "the list still reads: {}", page.text());
    assert_eq!(page.json()["items"][0]["data"]["a"], json!(1e300));
}

/// A list page is bounded by bytes as well as rows: 100 resources of 64 KiB would be one
/// 6.4 MB answer; a page ends at 1 MiB of `data` and the cursor carries on.
#[tokio::test]
async fn a_page_of_large_resources_stops_at_a_mib_of_data_and_the_cursor_carries_on() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let blob = "x".repeat(60 * 1024);
    for i in 0..20 {
        let res = app
            .call(
                Method::POST,
                "/api/v1/resources",
                &t.admin(),
                Some(json!({"name": format!("r{i}"), "data": {"blob": blob}})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let res = app
            .call(
                Method::GET,
                &format!("/api/v1/resources?limit=100&cursor={cursor}"),
                &t.admin(),
                None,
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.text());
        let body = res.json();
        let items = body["items"].as_array().cloned().unwrap_or_default();
        assert!(
            !items.is_empty() && items.len() <= 17,
            "{} items",
            items.len()
        );
        assert_eq!(
            items[0]["data"]["blob"].as_str().map(str::len),
            Some(60 * 1024)
        );
        seen.extend(
            items
                .iter()
                .map(|r| r["name"].as_str().unwrap_or_default().to_owned()),
        );
        match body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    let expected: Vec<String> = (0..20).rev().map(|i| format!("r{i}")).collect();
    assert_eq!(seen, expected, "every resource once, newest first");
}
