//! Every route declares who may call it, is documented, and refuses strangers.

use axum::http::Method;
use tenantry::http::{access::Access, router};

use crate::helpers::{Auth, TestApp};

/// The routes that are public on purpose. Anything else must name its access.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/.well-known/jwks.json"),
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/password-reset-request"),
    ("POST", "/api/v1/auth/password-reset"),
    ("POST", "/api/v1/auth/verify-email"),
    ("POST", "/api/v1/admin/login"),
    ("POST", "/api/v1/tenants"),
    ("POST", "/api/v1/auth/accept-invitation"),
    ("POST", "/api/v1/auth/mfa/verify"),
];

#[tokio::test]
async fn only_the_intended_routes_are_public_and_the_rest_refuse_strangers() {
    let app = TestApp::new().await;
    let (_, table) = router::api(&app.state);
    assert!(table.len() >= 28);
    for route in &table {
        let intended = PUBLIC.contains(&(route.method, route.path));
        assert_eq!(
            route.access.is_public(),
            intended,
            "{} {} has access {:?}",
            route.method,
            route.path,
            route.access
        );
        if route.access.is_public() {
            continue;
        }
        let path = route
            .path
            .replace("{id}", &uuid::Uuid::now_v7().to_string());
        let method: Method = route.method.parse().expect("method");
        let res = app.call(method, &path, &Auth::None, None).await;
        res.assert_problem(401, "UNAUTHENTICATED");
    }
}

/// Routes open to any principal of a kind, without a particular permission.
const NO_PERMISSION: &[(&str, &str)] = &[
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/auth/me"),
    ("GET", "/api/v1/tenants/current"),
    ("GET", "/api/v1/permissions"),
    ("GET", "/api/v1/webhooks/event-types"),
    ("GET", "/api/v1/tenants"),
    ("POST", "/api/v1/tenants/{id}/suspend"),
    ("POST", "/api/v1/tenants/{id}/activate"),
    ("GET", "/api/v1/admin/scaling"),
    ("PUT", "/api/v1/tenants/{id}/rate-limit"),
    ("DELETE", "/api/v1/tenants/{id}/rate-limit"),
    ("POST", "/api/v1/auth/mfa/totp/enroll"),
    ("POST", "/api/v1/auth/mfa/totp/confirm"),
    ("DELETE", "/api/v1/auth/mfa"),
    ("GET", "/api/v1/auth/sessions"),
    ("DELETE", "/api/v1/auth/sessions/{id}"),
];

#[tokio::test]
async fn every_other_route_names_its_permission() {
    let app = TestApp::new().await;
    let (_, table) = router::api(&app.state);
    for route in table {
        let exempt = PUBLIC.contains(&(route.method, route.path))
            || NO_PERMISSION.contains(&(route.method, route.path));
        assert_eq!(
            route.access.permission().is_some(),
            !exempt,
            "{} {} has access {:?}",
            route.method,
            route.path,
            route.access
        );
        if !exempt {
            assert!(matches!(
                route.access,
                Access::Tenant(_) | Access::TenantOrPlatform(_)
            ));
        }
    }
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document_and_nothing_else_is() {
    let app = TestApp::new().await;
    let doc = app.get("/openapi.json").await.json();
    let (_, table) = router::api(&app.state);
    for route in &table {
        let op = &doc["paths"][route.path][route.method.to_lowercase()];
        assert!(
            op.is_object(),
            "{} {} is not documented",
            route.method,
            route.path
        );
        assert!(op["responses"].is_object());
        if !route.access.is_public() {
            assert!(
                op["security"].is_array(),
                "{} {} documents no security",
                route.method,
                route.path
            );
            for status in ["401", "403"] {
                assert!(
                    op["responses"][status]["content"]["application/problem+json"].is_object(),
                    "{} {} does not document {status}",
                    route.method,
                    route.path
                );
            }
        }
        assert!(op["responses"]["500"].is_object());
        assert!(
            op["responses"]["429"]["content"]["application/problem+json"].is_object(),
            "{} {} does not document its rate limit",
            route.method,
            route.path
        );
    }
    let paths = doc["paths"].as_object().expect("paths");
    for (path, ops) in paths {
        if !path.starts_with("/api/") && !path.starts_with("/.well-known") {
            continue;
        }
        for method in ops.as_object().expect("ops").keys() {
            let method = method.to_uppercase();
            assert!(
                table.iter().any(|r| r.path == path && r.method == method),
                "{method} {path} is documented but not served"
            );
        }
    }
}
