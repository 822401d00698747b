//! Tenant lifecycle (platform operators and the tenant itself) and isolation between
//! tenants on every identity route.

use axum::http::Method;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_tenant_reads_and_updates_itself_but_not_its_plan() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let current = app
        .call(Method::GET, "/api/v1/tenants/current", &acme.admin(), None)
        .await
        .json();
    assert_eq!(current["id"], acme.id.to_string());
    let path = format!("/api/v1/tenants/{}", acme.id);
    assert_eq!(
        app.call(Method::GET, &path, &acme.admin(), None)
            .await
            .json()["slug"],
        "acme"
    );
    let res = app
        .call(
            Method::PATCH,
            &path,
            &acme.admin(),
            Some(json!({"name": "Acme Ltd"})),
        )
        .await;
    assert_eq!(res.json()["name"], "Acme Ltd");
    app.call(
        Method::PATCH,
        &path,
        &acme.admin(),
        Some(json!({"plan": "premium"})),
    )
    .await
    .assert_problem(403, "FORBIDDEN");

    let platform = app.platform_token().await;
    let res = app
        .call(
            Method::PATCH,
            &path,
            &platform,
            Some(json!({"plan": "standard"})),
        )
        .await;
    assert_eq!(res.json()["plan"], "standard");
    let audit: i64 = sqlx::query_scalar(
        app.scope(acme.id)
            .sql("select count(*) from {schema}.audit_logs where action = 'tenant.updated'"),
    )
    .fetch_one(app.db())
    .await
    .expect("audit");
    assert_eq!(audit, 2);
}

#[tokio::test]
async fn operators_list_filter_suspend_and_activate_tenants() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let globex = app.onboard("globex").await;
    let platform = app.platform_token().await;

    let list = app
        .call(Method::GET, "/api/v1/tenants", &platform, None)
        .await
        .json();
    assert_eq!(list["items"].as_array().expect("items").len(), 2);
    app.call(Method::GET, "/api/v1/tenants", &acme.admin(), None)
        .await
        .assert_problem(403, "FORBIDDEN");

    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/tenants/{}/suspend", acme.id),
            &platform,
            None,
        )
        .await;
    assert_eq!(res.json()["status"], "suspended");
    // Its tokens and keys stop at once, with TENANT_SUSPENDED; others are untouched.
    app.call(Method::GET, "/api/v1/auth/me", &acme.admin(), None)
        .await
        .assert_problem(403, "TENANT_SUSPENDED");
    assert_eq!(
        app.call(Method::GET, "/api/v1/auth/me", &globex.admin(), None)
            .await
            .status,
        200
    );
    let suspended = app
        .call(
            Method::GET,
            "/api/v1/tenants?status=suspended",
            &platform,
            None,
        )
        .await
        .json();
    assert_eq!(suspended["items"].as_array().expect("items").len(), 1);
    app.post_json(
        "/api/v1/auth/login",
        &json!({"tenant": "acme", "email": acme.admin_email, "password": acme.admin_password}),
    )
    .await
    .assert_problem(403, "TENANT_SUSPENDED");
    app.call(
        Method::POST,
        &format!("/api/v1/tenants/{}/suspend", acme.id),
        &acme.admin(),
        None,
    )
    .await
    .assert_problem(403, "TENANT_SUSPENDED");

    app.call(
        Method::POST,
        &format!("/api/v1/tenants/{}/activate", acme.id),
        &platform,
        None,
    )
    .await;
    assert_eq!(
        app.call(Method::GET, "/api/v1/auth/me", &acme.admin(), None)
            .await
            .status,
        200
    );
    app.call(
        Method::POST,
        &format!("/api/v1/tenants/{}/activate", Uuid::now_v7()),
        &platform,
        None,
    )
    .await
    .assert_problem(404, "NOT_FOUND");
}

#[tokio::test]
async fn deleting_a_tenant_stops_its_credentials_and_purges_its_schema() {
    let app = TestApp::new().await;
    // The purge is a background job.
    let _worker = app.start_worker();
    let acme = app.onboard("acme").await;
    let (_, key) = app
        .api_key(&acme, json!({"name": "ci", "role": "viewer"}))
        .await;
    let res = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tenants/{}", acme.id),
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(res.json()["status"], "deleted");
    app.call(Method::GET, "/api/v1/auth/me", &acme.admin(), None)
        .await
        .assert_problem(403, "TENANT_SUSPENDED");
    // 403 while the key row still exists, 401 once the purge removed it.
    let res = app.call(Method::GET, "/api/v1/auth/me", &key, None).await;
    match res.status.as_u16() {
        403 => res.assert_problem(403, "TENANT_SUSPENDED"),
        _ => res.assert_problem(401, "UNAUTHENTICATED"),
    };

    let schema = tenantry::db::TenantSchema::for_tenant(acme.id);
    let mut gone = false;
    for _ in 0..100 {
        let exists: bool = sqlx::query_scalar(
            "select exists (select 1 from information_schema.schemata where schema_name = $1)",
        )
        .bind(schema.name())
        .fetch_one(app.db())
        .await
        .expect("catalog");
        if !exists {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(gone, "the schema is purged in the background");
    let keys: i64 =
        sqlx::query_scalar("select count(*) from platform.api_keys where tenant_id = $1")
            .bind(acme.id)
            .fetch_one(app.db())
            .await
            .expect("count");
    assert_eq!(keys, 0);
}

#[tokio::test]
async fn a_viewer_cannot_delete_or_update_the_tenant() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (_, viewer) = app
        .user_with_roles(&acme, "v@acme.example.com", &["viewer"])
        .await;
    let path = format!("/api/v1/tenants/{}", acme.id);
    app.call(Method::DELETE, &path, &viewer, None)
        .await
        .assert_problem(403, "FORBIDDEN");
    app.call(Method::PATCH, &path, &viewer, Some(json!({"name": "Mine"})))
        .await
        .assert_problem(403, "FORBIDDEN");
    assert_eq!(
        app.call(Method::GET, &path, &viewer, None).await.status,
        200
    );
}

/// Tenant B's credentials on tenant A's ids: 404 on every identity route (403 where the
/// route is about operators only), and A's objects are untouched.
#[tokio::test]
async fn another_tenants_ids_are_not_found_with_tokens_and_keys() {
    let app = TestApp::new().await;
    let a = app.onboard("alpha").await;
    let b = app.onboard("bravo").await;
    let (a_user, _) = app
        .user_with_roles(&a, "u@alpha.example.com", &["viewer"])
        .await;
    let (a_key, _) = app
        .api_key(&a, json!({"name": "a-key", "role": "viewer"}))
        .await;
    let (_, b_key) = app
        .api_key(&b, json!({"name": "b-key", "role": "admin"}))
        .await;

    for b_auth in [b.admin(), b_key] {
        let cases: Vec<(Method, String, Option<serde_json::Value>)> = vec![
            (Method::GET, format!("/api/v1/tenants/{}", a.id), None),
            (
                Method::PATCH,
                format!("/api/v1/tenants/{}", a.id),
                Some(json!({"name": "pwned"})),
            ),
            (Method::DELETE, format!("/api/v1/tenants/{}", a.id), None),
            (Method::GET, format!("/api/v1/users/{a_user}"), None),
            (
                Method::PATCH,
                format!("/api/v1/users/{a_user}"),
                Some(json!({"first_name": "pwned"})),
            ),
            (Method::DELETE, format!("/api/v1/users/{a_user}"), None),
            (
                Method::PUT,
                format!("/api/v1/users/{a_user}/roles"),
                Some(json!({"roles": ["viewer"]})),
            ),
            (Method::DELETE, format!("/api/v1/api-keys/{a_key}"), None),
            (
                Method::POST,
                format!("/api/v1/api-keys/{a_key}/rotate"),
                None,
            ),
        ];
        for (method, path, body) in cases {
            let res = app.call(method.clone(), &path, &b_auth, body).await;
            res.assert_problem(404, "NOT_FOUND");
        }
        for (path, status) in [
            (format!("/api/v1/tenants/{}/suspend", a.id), 403),
            (format!("/api/v1/tenants/{}/activate", a.id), 403),
        ] {
            assert_eq!(
                app.call(Method::POST, &path, &b_auth, None).await.status,
                status
            );
        }
        // Lists show only B's own objects.
        let users = app
            .call(Method::GET, "/api/v1/users", &b_auth, None)
            .await
            .text();
        assert!(!users.contains("alpha.example.com"), "{users}");
        let keys = app
            .call(Method::GET, "/api/v1/api-keys", &b_auth, None)
            .await
            .text();
        assert!(!keys.contains("a-key"), "{keys}");
        let current = app
            .call(Method::GET, "/api/v1/tenants/current", &b_auth, None)
            .await
            .json();
        assert_eq!(current["slug"], "bravo");
    }

    // A is untouched.
    let a_admin = a.admin();
    let tenant = app
        .call(
            Method::GET,
            &format!("/api/v1/tenants/{}", a.id),
            &a_admin,
            None,
        )
        .await
        .json();
    assert_eq!(tenant["name"], "Tenant alpha");
    let user = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{a_user}"),
            &a_admin,
            None,
        )
        .await
        .json();
    assert!(user["first_name"].is_null());
    let keys = app
        .call(Method::GET, "/api/v1/api-keys", &a_admin, None)
        .await
        .json();
    assert!(keys["items"][0]["revoked_at"].is_null());
}

#[tokio::test]
async fn a_large_tenant_is_purged_in_batches() {
    let app = TestApp::new().await;
    let big = app.create_tenant("big").await;
    let schema = tenantry::db::TenantSchema::for_tenant(big).quoted();
    let extra: String = (0..60)
        .map(|i| format!("create table {schema}.extra_{i} (id int primary key);"))
        .collect();
    sqlx::raw_sql(sqlx::AssertSqlSafe(extra))
        .execute(app.db())
        .await
        .expect("tables");
    tenantry::services::tenants::purge(app.db(), big)
        .await
        .expect("purge");
    let left: i64 = sqlx::query_scalar("select count(*) from pg_tables where schemaname = $1")
        .bind(tenantry::db::TenantSchema::for_tenant(big).name())
        .fetch_one(app.db())
        .await
        .expect("count");
    assert_eq!(left, 0);
    // Running it again (after an interruption) is harmless.
    tenantry::services::tenants::purge(app.db(), big)
        .await
        .expect("purge again");
}
