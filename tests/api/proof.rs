//! Each handler asks for the proof of exactly the permission its route declares.
//!
//! A handler gets `Granted<P>` (or `GrantedOrPlatform<P>`) only for the `P` of its route
//! in the router table: another permission is a 500. So calling every route as a key
//! that holds exactly the route's permission must never meet a 500 (nor a 403), and a
//! key holding every other permission must meet the guard's 403.

use std::collections::HashMap;

use axum::{
    body::Body,
    http::{Method, Request, header},
};
use serde_json::json;
use tenantry::{
    http::router::{self, RouteInfo},
    rbac::Permission,
};
use uuid::Uuid;

use crate::helpers::{Auth, Onboarded, TestApp};

/// `route` called by `auth`, its path ids fresh UUIDs (nothing of the tenant is touched),
/// with a `text/plain` body that every body extractor refuses (no side effect).
async fn call(app: &TestApp, route: &RouteInfo, auth: &Auth) -> (u16, String) {
    let path = route
        .path
        .replace("{id}", &Uuid::now_v7().to_string())
        .replace("{permission}", "users:read");
    let method: Method = route.method.parse().expect("method");
    let mut builder = Request::builder()
        .method(method)
        .uri(&path)
        .header(header::CONTENT_TYPE, "text/plain");
    builder = match auth {
        Auth::ApiKey(key) => builder.header("x-api-key", key),
        Auth::Bearer(token) => builder.header(header::AUTHORIZATION, format!("Bearer {token}")),
        Auth::None => builder,
    };
    let res = app
        .request(builder.body(Body::from("not json")).expect("request"))
        .await;
    (res.status.as_u16(), res.text())
}

/// An API key of `tenant` granting exactly `grants`.
async fn key(app: &TestApp, tenant: &Onboarded, grants: &[Permission]) -> Auth {
    let names: Vec<&str> = grants.iter().map(|p| p.as_str()).collect();
    let name = format!("proof {}", Uuid::now_v7());
    app.api_key(tenant, json!({"name": name, "permissions": names}))
        .await
        .1
}

#[tokio::test]
async fn every_route_takes_the_proof_of_the_permission_it_declares() {
    let app = TestApp::new().await;
    let tenant = app.onboard("proof").await;
    let routes: Vec<(RouteInfo, Permission)> = router::table()
        .into_iter()
        .filter_map(|r| r.access.permission().map(|p| (r, p)))
        .collect();
    assert!(
        routes.len() >= 60,
        "{} routes name a permission",
        routes.len()
    );
    let mut only: HashMap<Permission, Auth> = HashMap::new();
    let mut all_but: HashMap<Permission, Auth> = HashMap::new();
    for (route, permission) in &routes {
        if !only.contains_key(permission) {
            let others: Vec<Permission> = Permission::ALL
                .iter()
                .copied()
                .filter(|p| p != permission)
                .collect();
            only.insert(*permission, key(&app, &tenant, &[*permission]).await);
            all_but.insert(*permission, key(&app, &tenant, &others).await);
        }
        let (status, body) = call(&app, route, &only[permission]).await;
        assert!(
            !matches!(status, 401 | 403 | 500),
            "{} {} as a key holding only {permission}: {status} {body}",
            route.method,
            route.path,
        );
        let (status, body) = call(&app, route, &all_but[permission]).await;
        assert_eq!(
            status, 403,
            "{} {} as a key holding all but {permission}: {body}",
            route.method, route.path,
        );
    }
}
