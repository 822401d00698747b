use crate::helpers::TestApp;

#[tokio::test]
async fn docs_serves_the_swagger_page_and_its_assets() {
    let app = TestApp::new().await;
    for path in ["/docs", "/docs/"] {
        let res = app.get(path).await;
        assert_eq!(res.status, 200, "{path}");
        assert!(
            res.header("content-type")
                .is_some_and(|c| c.starts_with("text/html"))
        );
        assert!(res.text().contains("swagger-ui"), "{path}");
    }
    let init = app.get("/docs/swagger-initializer.js").await;
    assert_eq!(init.status, 200);
    assert!(init.text().contains("/openapi.json"));
    app.get("/docs/no-such-file.js")
        .await
        .assert_problem(404, "NOT_FOUND");
}

#[tokio::test]
async fn openapi_json_is_3_1_and_documents_routes_errors_and_security() {
    let app = TestApp::new().await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status, 200);
    let doc = res.json();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    for path in ["/", "/health", "/health/live", "/health/ready", "/metrics"] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} is documented"
        );
    }
    assert!(doc["paths"]["/health/ready"]["get"]["responses"]["503"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
}
