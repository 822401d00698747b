use crate::helpers::TestApp;

#[tokio::test]
async fn health_and_liveness_answer_ok_with_the_version() {
    let app = TestApp::new().await;
    for path in ["/health", "/health/live"] {
        let res = app.get(path).await;
        assert_eq!(res.status, 200);
        let body = res.json();
        assert_eq!(body["status"], "ok");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    }
}

#[tokio::test]
async fn ready_checks_database_and_redis_with_latency() {
    let app = TestApp::new().await;
    let res = app.get("/health/ready").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    assert_eq!(body["status"], "ok");
    for check in ["database", "redis"] {
        assert_eq!(body["checks"][check]["status"], "ok", "{body}");
        assert!(
            body["checks"][check]["latency_ms"].as_f64().is_some(),
            "{body}"
        );
    }
}

#[tokio::test]
async fn ready_is_degraded_but_200_when_redis_is_down_and_the_service_keeps_serving() {
    let app = TestApp::builder()
        .with_config(|c| c.redis.url = "redis://127.0.0.1:1/0".into())
        .build()
        .await;
    let res = app.get("/health/ready").await;
    assert_eq!(res.status, 200, "Redis alone does not take the replica out");
    let body = res.json();
    assert_eq!(body["status"], "degraded");
    assert!(body["checks"]["redis"]["latency_ms"].as_f64().is_some());
    assert_eq!(body["checks"]["redis"]["status"], "unavailable");
    assert_eq!(body["checks"]["database"]["status"], "ok");
    assert_eq!(app.get("/health").await.status, 200);
}

#[tokio::test]
async fn ready_is_503_when_the_database_is_down() {
    let app = TestApp::builder()
        .with_config(|c| c.database.url = "postgres://postgres@127.0.0.1:1/nothing".into())
        .build()
        .await;
    let res = app.get("/health/ready").await;
    assert_eq!(res.status, 503);
    let body = res.json();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"]["status"], "unavailable");
    assert_eq!(body["checks"]["redis"]["status"], "ok");
    assert!(
        !res.text().contains("postgres://"),
        "no connection strings in answers"
    );
}
