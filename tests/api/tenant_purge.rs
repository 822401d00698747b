//! A deleted, then purged, tenant: its credentials answer 401/403 on every route (never
//! 5xx), its rows leave every platform table, and the deletion stays on record.

use std::time::Duration;

use axum::http::Method;
use serde_json::json;
use tenantry::db::TenantSchema;
use uuid::Uuid;

use crate::helpers::{Auth, TestApp};

/// Waits until the purge job has dropped the tenant's schema.
pub(crate) async fn wait_for_purge(app: &TestApp, tenant_id: Uuid) {
    let schema = TenantSchema::for_tenant(tenant_id);
    for _ in 0..200 {
        let exists: bool =
            sqlx::query_scalar("select exists (select 1 from pg_namespace where nspname = $1)")
                .bind(schema.name())
                .fetch_one(app.db())
                .await
                .expect("catalog");
        if !exists {
            // The shared rows go before the schema; give the task a moment to finish.
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the tenant was not purged");
}

async fn count(app: &TestApp, table: &str, tenant_id: Uuid) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from platform.{table} where tenant_id = $1"
    )))
    .bind(tenant_id)
    .fetch_one(app.db())
    .await
    .expect("count")
}

#[tokio::test]
async fn a_purged_tenants_credentials_answer_401_or_403_on_every_route() {
    let app = TestApp::new().await;
    // The purge is a job.
    let _worker = app.start_worker();
    let acme = app.onboard("acme").await;
    let other = app.onboard("other").await;
    let (key_id, key) = app
        .api_key(&acme, json!({"name": "ci", "role": "admin"}))
        .await;
    for sql in [
        "insert into platform.usage_rollups (tenant_id, metric, bucket_start, value)
         values ($1, 'api_requests', date_trunc('minute', now()), 5)",
        "insert into platform.scaling_events (id, tenant_id, action, from_capacity, to_capacity, reason)
         values (gen_random_uuid(), $1, 'scale_up', 1, 2, 'load')",
        "insert into platform.rate_limit_overrides (tenant_id, requests_per_minute, burst)
         values ($1, 100, 10)",
        "insert into platform.idempotency_keys (scope, key, request_hash, tenant_id)
         values ('tenants:public', 'k', '\\x00', $1)",
    ] {
        sqlx::query(sql)
            .bind(acme.id)
            .execute(app.db())
            .await
            .expect("seed a platform row");
    }

    let res = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tenants/{}", acme.id),
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    wait_for_purge(&app, acme.id).await;

    let tenant = format!("/api/v1/tenants/{}", acme.id);
    let routes: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (Method::GET, tenant.clone(), None),
        (Method::PATCH, tenant.clone(), Some(json!({"name": "Back"}))),
        (Method::DELETE, tenant.clone(), None),
        (Method::GET, "/api/v1/tenants/current".into(), None),
        (Method::GET, "/api/v1/auth/me".into(), None),
        (Method::POST, "/api/v1/auth/logout".into(), Some(json!({}))),
        (Method::GET, "/api/v1/users".into(), None),
        (
            Method::GET,
            format!("/api/v1/users/{}", acme.admin_id),
            None,
        ),
        (Method::GET, "/api/v1/roles".into(), None),
        (Method::GET, "/api/v1/permissions".into(), None),
        (Method::GET, "/api/v1/api-keys".into(), None),
        (
            Method::POST,
            format!("/api/v1/api-keys/{key_id}/rotate"),
            None,
        ),
        (Method::GET, "/api/v1/resources".into(), None),
        (
            Method::POST,
            "/api/v1/resources".into(),
            Some(json!({"name": "x", "data": {}})),
        ),
        (Method::GET, "/api/v1/audit-logs".into(), None),
        (Method::GET, format!("/api/v1/tenants/{}", other.id), None),
    ];
    for auth in [acme.admin(), key.clone()] {
        for (method, uri, body) in &routes {
            let res = app.call(method.clone(), uri, &auth, body.clone()).await;
            let kind = match auth {
                Auth::ApiKey(_) => "API key",
                _ => "token",
            };
            assert!(
                [401, 403].contains(&res.status.as_u16()),
                "{method} {uri} with the old {kind}: {} {}",
                res.status,
                res.text()
            );
        }
    }

    // Operators still see the tenant, as deleted; changing it is 404, never 5xx.
    let platform = app.platform_token().await;
    let res = app.call(Method::GET, &tenant, &platform, None).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["status"], "deleted");
    for (method, uri) in [
        (Method::PATCH, tenant.clone()),
        (Method::DELETE, tenant.clone()),
        (Method::POST, format!("{tenant}/suspend")),
        (Method::POST, format!("{tenant}/activate")),
    ] {
        let body = (method == Method::PATCH).then(|| json!({"name": "Back"}));
        app.call(method, &uri, &platform, body)
            .await
            .assert_problem(404, "NOT_FOUND");
    }
}

#[tokio::test]
async fn the_purge_clears_every_platform_table_but_keeps_the_tenant_row_and_the_deletion_record() {
    let app = TestApp::new().await;
    // The purge is a job.
    let _worker = app.start_worker();
    let acme = app.onboard("acme").await;
    app.api_key(&acme, json!({"name": "ci", "role": "viewer"}))
        .await;
    sqlx::query(
        "insert into platform.usage_rollups (tenant_id, metric, bucket_start, value)
         values ($1, 'api_requests', date_trunc('minute', now()), 5)",
    )
    .bind(acme.id)
    .execute(app.db())
    .await
    .expect("usage");
    sqlx::query(
        "insert into platform.scaling_events (id, tenant_id, action, from_capacity, to_capacity, reason)
         values (gen_random_uuid(), $1, 'scale_up', 1, 2, 'load')",
    )
    .bind(acme.id)
    .execute(app.db())
    .await
    .expect("event");
    let platform = app.platform_token().await;
    let res = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tenants/{}", acme.id),
            &platform,
            None,
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    wait_for_purge(&app, acme.id).await;

    for table in [
        "api_keys",
        "tenant_migrations",
        "rate_limit_overrides",
        "scaling_policies",
        "scaling_events",
        "usage_rollups",
        "idempotency_keys",
    ] {
        assert_eq!(count(&app, table, acme.id).await, 0, "platform.{table}");
    }
    let status: String = sqlx::query_scalar("select status from platform.tenants where id = $1")
        .bind(acme.id)
        .fetch_one(app.db())
        .await
        .expect("the tenant row stays");
    assert_eq!(status, "deleted");

    let (action, actor_type, target): (String, String, Option<String>) = sqlx::query_as(
        "select action, actor_type, target_id from platform.audit_logs where tenant_id = $1",
    )
    .bind(acme.id)
    .fetch_one(app.db())
    .await
    .expect("the deletion is on record after the purge");
    assert_eq!(action, "tenant.deleted");
    assert_eq!(actor_type, "platform");
    assert_eq!(target, Some(acme.id.to_string()));

    // The slug stays taken: ids and slugs of deleted tenants are never reused.
    let res = app
        .post_json(
            "/api/v1/tenants",
            &json!({"name": "Again", "slug": "acme",
                    "admin": {"email": "a@acme.example.com", "password": crate::helpers::PASSWORD}}),
        )
        .await;
    res.assert_problem(409, "TENANT_SLUG_TAKEN");
}
