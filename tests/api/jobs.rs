//! Background jobs: submission, the worker's outcomes, retries, cancellation, tenant
//! isolation, and the reconciler's guarantees.

use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};
use tenantry::jobs::Lane;
use uuid::Uuid;

use crate::helpers::{Auth, Onboarded, TestApp};

async fn submit(app: &TestApp, auth: &Auth, body: Value) -> Uuid {
    let res = app
        .call(Method::POST, "/api/v1/jobs", auth, Some(body))
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(res.json()["status"], "queued");
    res.json()["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("job id")
}

async fn job(app: &TestApp, auth: &Auth, id: Uuid) -> Value {
    let res = app
        .call(Method::GET, &format!("/api/v1/jobs/{id}"), auth, None)
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

/// Polls the job until `done` holds (up to 15 s).
async fn wait_for(app: &TestApp, auth: &Auth, id: Uuid, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        last = job(app, auth, id).await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the job never got there: {last}");
}

fn finished(job: &Value) -> bool {
    matches!(
        job["status"].as_str(),
        Some("succeeded" | "failed" | "cancelled")
    )
}

#[tokio::test]
async fn an_echo_job_succeeds_with_its_payload_as_result() {
    let app = TestApp::new().await;
    let _worker = app.start_worker();
    let t = app.onboard("acme").await;
    let payload = json!({"hello": "world", "delay_ms": 10});
    let id = submit(
        &app,
        &t.admin(),
        json!({"type": "echo", "payload": payload}),
    )
    .await;
    let done = wait_for(&app, &t.admin(), id, finished).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"], payload);
    assert_eq!(done["attempts"], 1);
    assert_eq!(done["type"], "echo");
    assert_eq!(done["created_by"], t.admin_id.to_string());
    assert!(done["started_at"].is_string() && done["finished_at"].is_string());
}

#[tokio::test]
async fn every_attempt_that_ran_is_metered_as_jobs_executed() {
    let app = TestApp::new().await;
    let _worker = app.start_worker();
    let t = app.onboard("acme").await;
    let id = submit(
        &app,
        &t.admin(),
        json!({"type": "echo", "payload": {"fail_times": 1}}),
    )
    .await;
    let done = wait_for(&app, &t.admin(), id, finished).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    // Onboarding queued the welcome email: a job that runs (and counts) too.
    let welcome = app
        .call(
            Method::GET,
            "/api/v1/jobs?type=notification.send",
            &t.admin(),
            None,
        )
        .await
        .json()["items"][0]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("the welcome email's job");
    wait_for(&app, &t.admin(), welcome, finished).await;
    app.flush_usage().await;
    let usage = app
        .call(
            Method::GET,
            "/api/v1/usage?metric=jobs_executed&granularity=day",
            &t.admin(),
            None,
        )
        .await;
    assert_eq!(usage.status, 200, "{}", usage.text());
    assert_eq!(
        usage.json()["totals"]["jobs_executed"],
        3,
        "the welcome email, a failed attempt and its successful retry: {}",
        usage.text()
    );
}

#[tokio::test]
async fn fail_times_two_succeeds_on_the_third_attempt() {
    let app = TestApp::new().await;
    let _worker = app.start_worker();
    let t = app.onboard("acme").await;
    let id = submit(
        &app,
        &t.admin(),
        json!({"type": "echo", "payload": {"fail_times": 2}, "max_attempts": 3}),
    )
    .await;
    let done = wait_for(&app, &t.admin(), id, finished).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 3);
    assert_eq!(done["result"], json!({"fail_times": 2}));
}

#[tokio::test]
async fn an_always_failing_job_ends_failed_with_its_error_after_max_attempts() {
    let app = TestApp::new().await;
    let _worker = app.start_worker();
    let t = app.onboard("acme").await;
    let id = submit(
        &app,
        &t.admin(),
        json!({"type": "echo", "payload": {"fail_times": 100}, "max_attempts": 2}),
    )
    .await;
    let done = wait_for(&app, &t.admin(), id, finished).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["attempts"], 2);
    assert!(
        done["error"]
            .as_str()
            .is_some_and(|e| e.contains("failed on purpose")),
        "{done}"
    );
    assert!(done["result"].is_null());
}

#[tokio::test]
async fn a_queued_job_is_cancelled_at_once_and_a_finished_one_is_a_conflict() {
    let app = TestApp::new().await;
    // No worker: the job stays queued.
    let t = app.onboard("acme").await;
    let id = submit(&app, &t.admin(), json!({"type": "echo"})).await;
    let cancel = format!("/api/v1/jobs/{id}/cancel");
    let res = app.call(Method::POST, &cancel, &t.admin(), None).await;
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(res.json()["status"], "cancelled");
    app.call(Method::POST, &cancel, &t.admin(), None)
        .await
        .assert_problem(409, "CONFLICT");

    // A worker started afterwards does not run it.
    let worker = app.start_worker();
    tokio::time::sleep(Duration::from_millis(500)).await;
    worker.stop().await;
    let after = job(&app, &t.admin(), id).await;
    assert_eq!(after["status"], "cancelled");
    assert_eq!(after["attempts"], 0);
}

#[tokio::test]
async fn a_running_job_is_cancelled_at_its_next_check() {
    let app = TestApp::new().await;
    let _worker = app.start_worker();
    let t = app.onboard("acme").await;
    let id = submit(
        &app,
        &t.admin(),
        json!({"type": "echo", "payload": {"delay_ms": 10000}}),
    )
    .await;
    wait_for(&app, &t.admin(), id, |j| j["status"] == "running").await;
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/jobs/{id}/cancel"),
            &t.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    assert!(res.json()["cancel_requested_at"].is_string());
    let started = std::time::Instant::now();
    let done = wait_for(&app, &t.admin(), id, finished).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cancelled long before its delay ended"
    );
    assert!(done["result"].is_null());
}

#[tokio::test]
async fn another_tenants_job_is_not_found_on_every_route() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let globex = app.onboard("globex").await;
    let id = submit(&app, &acme.admin(), json!({"type": "echo"})).await;
    for (method, path) in [
        (Method::GET, format!("/api/v1/jobs/{id}")),
        (Method::POST, format!("/api/v1/jobs/{id}/cancel")),
    ] {
        app.call(method, &path, &globex.admin(), None)
            .await
            .assert_problem(404, "NOT_FOUND");
    }
    // Globex sees its own jobs only (its welcome email's), not acme's.
    let list = app
        .call(Method::GET, "/api/v1/jobs?type=echo", &globex.admin(), None)
        .await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["items"], json!([]));
    // Still queued for its own tenant: the other tenant's cancel changed nothing.
    assert_eq!(job(&app, &acme.admin(), id).await["status"], "queued");
}

#[tokio::test]
async fn unknown_or_internal_types_and_bad_payloads_are_rejected() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    for (body, field) in [
        (json!({"type": "mine_bitcoin"}), "type"),
        (
            json!({"type": "notification.send", "payload": {"to": "a@b.c", "template": "welcome"}}),
            "type",
        ),
        (json!({"type": "echo", "payload": [1, 2]}), "payload"),
        (
            json!({"type": "echo", "payload": {"delay_ms": 10001}}),
            "payload.delay_ms",
        ),
        (
            json!({"type": "echo", "payload": {"blob": "x".repeat(17 * 1024)}}),
            "payload",
        ),
        (json!({"type": "echo", "max_attempts": 0}), "max_attempts"),
        (
            json!({"type": "usage_report", "payload": {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}}),
            "payload.from",
        ),
    ] {
        let res = app
            .call(Method::POST, "/api/v1/jobs", &t.admin(), Some(body.clone()))
            .await;
        res.assert_problem(422, "VALIDATION_FAILED");
        assert!(
            res.text().contains(&format!("\"{field}\"")),
            "{body}: {}",
            res.text()
        );
    }
}

#[tokio::test]
async fn jobs_are_listed_newest_first_with_filters_and_cursors() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(submit(&app, &t.admin(), json!({"type": "echo"})).await);
    }
    let report = submit(
        &app,
        &t.admin(),
        json!({"type": "usage_report", "payload": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}}),
    )
    .await;
    app.call(
        Method::POST,
        &format!("/api/v1/jobs/{}/cancel", ids[0]),
        &t.admin(),
        None,
    )
    .await;

    let page = app
        .call(
            Method::GET,
            "/api/v1/jobs?type=echo&limit=2",
            &t.admin(),
            None,
        )
        .await
        .json();
    assert_eq!(page["items"][0]["id"], ids[2].to_string());
    assert_eq!(page["items"][1]["id"], ids[1].to_string());
    let cursor = page["next_cursor"].as_str().expect("another page");
    let next = app
        .call(
            Method::GET,
            &format!("/api/v1/jobs?type=echo&limit=2&cursor={cursor}"),
            &t.admin(),
            None,
        )
        .await
        .json();
    assert_eq!(next["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(next["items"][0]["id"], ids[0].to_string());
    assert!(next["next_cursor"].is_null());

    let cancelled = app
        .call(
            Method::GET,
            "/api/v1/jobs?status=cancelled",
            &t.admin(),
            None,
        )
        .await
        .json();
    assert_eq!(cancelled["items"].as_array().map(Vec::len), Some(1));
    let reports = app
        .call(
            Method::GET,
            "/api/v1/jobs?type=usage_report",
            &t.admin(),
            None,
        )
        .await
        .json();
    assert_eq!(reports["items"][0]["id"], report.to_string());
    app.call(
        Method::GET,
        "/api/v1/jobs?status=sleeping",
        &t.admin(),
        None,
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
}

#[tokio::test]
async fn a_usage_report_stores_the_periods_usage_as_a_csv_file() {
    let app = TestApp::new().await;
    let _worker = app.start_worker();
    let t = app.onboard("acme").await;
    sqlx::query(
        "insert into platform.usage_rollups (tenant_id, metric, bucket_start, value) values
         ($1, 'api_requests', '2026-01-01T10:00:00Z', 7),
         ($1, 'api_requests', '2026-01-03T10:00:00Z', 99)",
    )
    .bind(t.id)
    .execute(app.db())
    .await
    .expect("usage");
    let id = submit(
        &app,
        &t.admin(),
        json!({"type": "usage_report", "payload": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}}),
    )
    .await;
    let done = wait_for(&app, &t.admin(), id, finished).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["rows"], 1);
    // The CSV itself is a stored file (tests/api/files.rs downloads it).
    assert!(done["result"]["file_id"].is_string(), "{done}");
    assert_eq!(done["result"]["format"], "text/csv");
}

/// A row committed without its Redis push (a crash between the two) still runs.
#[tokio::test]
async fn a_queued_job_missing_from_redis_is_handed_over_by_the_reconciler() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let scope = app.scope(t.id);
    let new = tenantry::services::jobs::NewJob::parse("echo", Some(json!({"n": 1})), None)
        .expect("valid job");
    let mut tx = scope.begin().await.expect("begin");
    let row = tenantry::services::jobs::insert(&mut tx, &new, None)
        .await
        .expect("insert");
    tx.commit().await.expect("commit");
    // ...and the process "dies" here: nothing is pushed.
    let _worker = app.start_worker();
    let done = wait_for(&app, &t.admin(), row.id, finished).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 1);
}

/// A reconciliation round costs the same few statements with one tenant or five
/// hundred: it reads the platform's index of unfinished jobs, not every tenant's schema.
#[tokio::test]
async fn a_reconciler_round_runs_the_same_statements_whatever_the_tenant_count() {
    use tenantry::jobs::reconciler;
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    // Five hundred more active tenants, as rows only: a round that visited every
    // tenant's schema would run a statement (and fail) for each.
    app.add_tenant_rows(500).await;
    let idle = reconciler::round(&app.state.job_runtime)
        .await
        .expect("round");
    assert_eq!((idle.handed, idle.statements), (0, 2), "{idle:?}");

    // A job of acme's whose push was lost an hour ago.
    let scope = app.scope(t.id);
    let new = tenantry::services::jobs::NewJob::parse("echo", Some(json!({"n": 1})), None)
        .expect("valid job");
    let mut tx = scope.begin().await.expect("begin");
    let row = tenantry::services::jobs::insert(&mut tx, &new, None)
        .await
        .expect("insert");
    tx.commit().await.expect("commit");
    sqlx::query(
        scope.sql("update {schema}.jobs set enqueued_at = now() - interval '1 hour' where id = $1"),
    )
    .bind(row.id)
    .execute(app.db())
    .await
    .expect("age the job");
    sqlx::query(
        "update platform.job_watch set watch_from = now() - interval '1 hour' where job_id = $1",
    )
    .bind(row.id)
    .execute(app.db())
    .await
    .expect("age the watch");
    let stale = reconciler::round(&app.state.job_runtime)
        .await
        .expect("round");
    assert_eq!((stale.handed, stale.statements), (1, 4), "{stale:?}");
    // Handed over, it is not due again until the requeue period has passed.
    let after = reconciler::round(&app.state.job_runtime)
        .await
        .expect("round");
    assert_eq!((after.handed, after.statements), (0, 2), "{after:?}");

    // Run to its end, the job leaves the index.
    let _worker = app.start_worker();
    let done = wait_for(&app, &t.admin(), row.id, finished).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    // (With the onboarding's welcome mail, once that has been sent too.)
    let emptied = crate::helpers::eventually(Duration::from_secs(10), async || {
        let watched: i64 = sqlx::query_scalar("select count(*) from platform.job_watch")
            .fetch_one(app.db())
            .await
            .expect("count");
        watched == 0
    })
    .await;
    assert!(emptied, "every ended job left the index");
}

/// Duplicate messages (the reconciler racing a slow push, two workers) run a job once.
#[tokio::test]
async fn duplicate_messages_and_two_workers_never_run_a_job_twice() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            submit(
                &app,
                &t.admin(),
                json!({"type": "echo", "payload": {"i": i, "delay_ms": 50}}),
            )
            .await,
        );
    }
    for id in &ids {
        let message = tenantry::jobs::JobMessage::row(t.id, *id, Lane::Tenant);
        for _ in 0..3 {
            app.state
                .jobs
                .push(message, None, None)
                .await
                .expect("push duplicate");
        }
    }
    let first = app.start_worker();
    let second = app.start_worker();
    for id in &ids {
        let done = wait_for(&app, &t.admin(), *id, finished).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["attempts"], 1, "one claim per job: {done}");
    }
    first.stop().await;
    second.stop().await;
}

async fn set_tenant_status(app: &TestApp, t: &Onboarded, status: &str) {
    sqlx::query("update platform.tenants set status = $2 where id = $1")
        .bind(t.id)
        .bind(status)
        .execute(app.db())
        .await
        .expect("tenant status");
}

#[tokio::test]
async fn a_suspended_tenants_queued_job_is_cancelled_with_a_reason() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let id = submit(&app, &t.admin(), json!({"type": "echo"})).await;
    set_tenant_status(&app, &t, "suspended").await;
    let worker = app.start_worker();
    let scope = app.scope(t.id);
    let mut status = String::new();
    for _ in 0..100 {
        let row: (String, Option<String>, i32) = sqlx::query_as(
            scope.sql("select status, error, attempts from {schema}.jobs where id = $1"),
        )
        .bind(id)
        .fetch_one(scope.db())
        .await
        .expect("row");
        status = row.0.clone();
        if status == "cancelled" {
            assert_eq!(row.1.as_deref(), Some("not run: the tenant is suspended"));
            assert_eq!(row.2, 0, "it never ran");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "cancelled");
    worker.stop().await;
}

#[tokio::test]
async fn a_deleted_tenants_queued_jobs_do_not_run_and_its_schema_is_purged() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let id = submit(
        &app,
        &t.admin(),
        json!({"type": "echo", "payload": {"delay_ms": 1}}),
    )
    .await;
    let res = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tenants/{}", t.id),
            &t.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    // Before the worker starts, the row is still queued and never ran.
    let scope = app.scope(t.id);
    let attempts: i32 =
        sqlx::query_scalar(scope.sql("select attempts from {schema}.jobs where id = $1"))
            .bind(id)
            .fetch_one(scope.db())
            .await
            .expect("row");
    assert_eq!(attempts, 0);
    let worker = app.start_worker();
    let schema = tenantry::db::TenantSchema::for_tenant(t.id);
    let mut gone = false;
    for _ in 0..200 {
        // Until the schema is gone the job must not have run.
        let row: Option<(String, i32)> =
            sqlx::query_as(scope.sql("select status, attempts from {schema}.jobs where id = $1"))
                .bind(id)
                .fetch_optional(scope.db())
                .await
                .unwrap_or(None);
        if let Some((status, attempts)) = row {
            assert_eq!(attempts, 0, "a deleted tenant's job ran");
            assert_ne!(status, "succeeded");
        }
        gone = !sqlx::query_scalar::<_, bool>(
            "select exists (select 1 from pg_namespace where nspname = $1)",
        )
        .bind(schema.name())
        .fetch_one(app.db())
        .await
        .expect("catalog");
        if gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the purge job removed the schema");
    worker.stop().await;
}

/// The purge survives a restart: a purge cut off half-way is enqueued again by the
/// reconciler and finishes.
#[tokio::test]
async fn a_purge_cut_off_half_way_is_finished_after_a_restart() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    // "Half-way": deleted, the shared rows gone, the schema still there, no message.
    sqlx::query("update platform.tenants set status = 'deleted', deleted_at = now() where id = $1")
        .bind(t.id)
        .execute(app.db())
        .await
        .expect("delete");
    sqlx::query("delete from platform.api_keys where tenant_id = $1")
        .bind(t.id)
        .execute(app.db())
        .await
        .expect("shared rows");
    let _worker = app.start_worker();
    let schema = tenantry::db::TenantSchema::for_tenant(t.id);
    let mut gone = false;
    for _ in 0..200 {
        gone = !sqlx::query_scalar::<_, bool>(
            "select exists (select 1 from pg_namespace where nspname = $1)",
        )
        .bind(schema.name())
        .fetch_one(app.db())
        .await
        .expect("catalog");
        if gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        gone,
        "the reconciler enqueued the purge again and it finished"
    );
}

#[tokio::test]
async fn job_metrics_are_exported() {
    let app = TestApp::new().await;
    let _worker = app.start_worker();
    let t = app.onboard("acme").await;
    let id = submit(&app, &t.admin(), json!({"type": "echo"})).await;
    wait_for(&app, &t.admin(), id, finished).await;
    let text = app.get("/metrics").await.text();
    assert!(text.contains("tenantry_jobs_total"), "{text}");
    assert!(text.contains("tenantry_job_duration_seconds"), "{text}");
}

/// A `tenantry worker` process on the test's database and Redis namespace.
fn worker_process(app: &TestApp) -> tokio::process::Child {
    let config = &app.state.config;
    tokio::process::Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .arg("worker")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("APP_ENV", "test")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .env("DATABASE_URL", app.database_url())
        .env("REDIS_URL", &config.redis.url)
        .env("REDIS_KEY_PREFIX", &config.redis.key_prefix)
        .env("JOB_RETRY_BASE_MS", "20")
        .env("JOB_LEASE_MS", "1500")
        .env("JOB_HEARTBEAT_MS", "100")
        .env("JOB_RECONCILE_MS", "200")
        .env("JOB_REQUEUE_AFTER_MS", "1000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn tenantry worker")
}

async fn signal(child: &tokio::process::Child, signal: &str) {
    let pid = child.id().expect("pid").to_string();
    let sent = tokio::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .await
        .expect("kill");
    assert!(sent.success());
}

#[tokio::test]
async fn a_worker_killed_mid_job_loses_nothing_the_job_is_retried_and_succeeds() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let id = submit(
        &app,
        &t.admin(),
        json!({"type": "echo", "payload": {"delay_ms": 3000}}),
    )
    .await;
    let mut first = worker_process(&app);
    wait_for(&app, &t.admin(), id, |j| j["status"] == "running").await;
    signal(&first, "-KILL").await;
    first.wait().await.expect("killed");
    // Another process takes over once the dead one's lease ran out.
    let _second = worker_process(&app);
    let done = wait_for(&app, &t.admin(), id, finished).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2, "run again after the kill: {done}");
    assert_eq!(done["result"], json!({"delay_ms": 3000}));
}

#[tokio::test]
async fn a_worker_stopped_with_sigterm_finishes_its_running_job_and_exits_zero() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let id = submit(
        &app,
        &t.admin(),
        json!({"type": "echo", "payload": {"delay_ms": 1000}}),
    )
    .await;
    let mut worker = worker_process(&app);
    wait_for(&app, &t.admin(), id, |j| j["status"] == "running").await;
    signal(&worker, "-TERM").await;
    let status = tokio::time::timeout(Duration::from_secs(15), worker.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert!(status.success(), "{status:?}");
    let done = job(&app, &t.admin(), id).await;
    assert_eq!(
        done["status"], "succeeded",
        "finished before exiting: {done}"
    );
    assert_eq!(done["attempts"], 1);
}

#[tokio::test]
async fn two_worker_processes_share_the_queue_and_never_run_a_job_twice() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let _first = worker_process(&app);
    let _second = worker_process(&app);
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(
            submit(
                &app,
                &t.admin(),
                json!({"type": "echo", "payload": {"i": i, "delay_ms": 100}}),
            )
            .await,
        );
    }
    for id in ids {
        let done = wait_for(&app, &t.admin(), id, finished).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["attempts"], 1, "{done}");
    }
}

/// apalis-redis promotes all due messages with one Lua `unpack`, which fails past ~8,000
/// values and kills the worker; the promoter keeps that from happening.
#[tokio::test]
async fn a_backlog_larger_than_luas_unpack_limit_does_not_stop_the_worker() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    // Messages of a tenant that does not exist: each is dropped at once when taken.
    let ghost = Uuid::now_v7();
    for chunk in 0..90 {
        let pushes = (0..100).map(|i| {
            let message = tenantry::jobs::JobMessage::row(
                ghost,
                Uuid::from_u128(chunk * 1000 + i),
                Lane::Platform,
            );
            app.state.jobs.push(message, None, None)
        });
        for pushed in futures::future::join_all(pushes).await {
            pushed.expect("push");
        }
    }
    let _worker = app.start_worker();
    let id = submit(&app, &t.admin(), json!({"type": "echo"})).await;
    let done = wait_for(&app, &t.admin(), id, finished).await;
    assert_eq!(done["status"], "succeeded", "{done}");
}

#[tokio::test]
async fn internal_jobs_never_show_their_payload_or_result() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let mut tx = app.scope(t.id).begin().await.expect("begin");
    let job = tenantry::services::jobs::insert(
        &mut tx,
        &tenantry::services::jobs::NewJob {
            job_type: tenantry::jobs::JobType::NotificationSend,
            payload: json!({"to": "bob@acme.example.com", "body": "reset token: pr_secret"}),
            max_attempts: 1,
        },
        None,
    )
    .await
    .expect("insert");
    tx.commit().await.expect("commit");
    for uri in [
        format!("/api/v1/jobs/{}", job.id),
        "/api/v1/jobs?type=notification.send".to_owned(),
    ] {
        let res = app.call(Method::GET, &uri, &t.admin(), None).await;
        assert_eq!(res.status, 200, "{}", res.text());
        assert!(
            res.text().contains(&job.id.to_string()),
            "{uri}: the job is listed"
        );
        assert!(!res.text().contains("pr_secret"), "{uri}: {}", res.text());
    }
}
