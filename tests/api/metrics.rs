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
