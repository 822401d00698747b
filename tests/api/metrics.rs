use crate::helpers::TestApp;

#[tokio::test]
async fn metrics_count_requests_by_route_template_with_pool_gauges() {
    let app = TestApp::new().await;
    app.get("/health").await;
    app.get("/docs/swagger-ui.css").await;
    app.get("/definitely/not/a/route").await;

    let res = app.get("/metrics").await;
    assert_eq!(res.status, 200);
    assert!(
        res.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    let text = res.text();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/health",status="200"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/docs/{*file}""#),
        "templates, not raw paths"
    );
    assert!(!text.contains("swagger-ui.css"), "no raw paths in labels");
    assert!(!text.contains("definitely"), "unknown paths are not labels");
    assert!(text.contains(r#"route="unmatched",status="404""#));
    assert!(text.contains("http_request_duration_seconds_bucket"));
    assert!(text.contains(r#"tenantry_db_pool_connections{state="idle"}"#));
    assert!(text.contains("# HELP http_requests_total"));
}

#[tokio::test]
async fn a_metrics_token_is_required_when_set() {
    let app = TestApp::builder()
        .with_config(|c| c.telemetry.metrics_token = Some("scrape-secret".into()))
        .build()
        .await;
    app.get("/metrics")
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    let scrape = |token: &str| {
        axum::http::Request::get("/metrics")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .expect("request")
    };
    app.request(scrape("scrape-secreT"))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    let right = app.request(scrape("scrape-secret")).await;
    assert_eq!(right.status, 200);
    assert!(right.text().contains("http_requests_total"));
}

/// Behind a load balancer that routes the API port, `/metrics` must not be reachable:
/// with `METRICS_BIND_ADDR` it answers only there, in `serve` and in `worker`.
#[tokio::test]
async fn metrics_answer_on_their_own_listener_only() {
    use crate::binary::{free_port, http_get, tenantry, wait_ready};
    let app = TestApp::new().await;
    let addr = format!("127.0.0.1:{}", free_port().await);
    let metrics_addr = format!("127.0.0.1:{}", free_port().await);
    let worker_metrics = format!("127.0.0.1:{}", free_port().await);
    let env = |command: &mut tokio::process::Command| {
        command
            .env("DATABASE_URL", app.database_url())
            .env("REDIS_URL", &app.state.config.redis.url)
            .env("REDIS_KEY_PREFIX", &app.state.config.redis.key_prefix)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
    };
    let mut serve = tenantry();
    env(&mut serve);
    let _serve = serve
        .args(["serve", "--no-workers"])
        .env("BIND_ADDR", &addr)
        .env("METRICS_BIND_ADDR", &metrics_addr)
        .spawn()
        .expect("spawn serve");
    let mut worker = tenantry();
    env(&mut worker);
    let _worker = worker
        .arg("worker")
        .env("METRICS_BIND_ADDR", &worker_metrics)
        .spawn()
        .expect("spawn worker");
    wait_ready(&addr).await;

    let (status, _) = http_get(&addr, "/metrics").await.expect("api answers");
    assert_eq!(status, 404, "not on the API's listener");
    let (status, text) = http_get(&metrics_addr, "/metrics")
        .await
        .expect("metrics answer");
    assert_eq!(status, 200);
    assert!(text.contains("http_requests_total"), "{text}");
    let mut answered = None;
    for _ in 0..100 {
        if let Ok(answer) = http_get(&worker_metrics, "/metrics").await {
            answered = Some(answer);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, text) = answered.expect("the worker's metrics answer");
    assert_eq!(status, 200);
    assert!(text.contains("tenantry_"), "{text}");
}
