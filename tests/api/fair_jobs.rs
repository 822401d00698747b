//! Fair sharing of the job workers: caps by plan, tenants served in turn, and a lane of
//! the platform's own that never waits behind tenants' jobs.

use std::time::Duration;

use axum::http::Method;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Auth, Onboarded, TestApp};

async fn submit(app: &TestApp, auth: &Auth, body: Value) -> Uuid {
    let res = app
        .call(Method::POST, "/api/v1/jobs", auth, Some(body))
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    res.json()["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("job id")
}

async fn job(app: &TestApp, auth: &Auth, id: Uuid) -> Value {
    app.call(Method::GET, &format!("/api/v1/jobs/{id}"), auth, None)
        .await
        .json()
}

/// Waits (up to 20 s) until the job has started; its row then.
async fn started(app: &TestApp, auth: &Auth, id: Uuid) -> Value {
    for _ in 0..400 {
        let row = job(app, auth, id).await;
        if row["started_at"].is_string() {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the job never started: {}", job(app, auth, id).await);
}

fn time(row: &Value, field: &str) -> DateTime<Utc> {
    row[field]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{field} in {row}"))
}

/// How long the job waited between its submission and its start.
fn waited(row: &Value) -> Duration {
    (time(row, "started_at") - time(row, "created_at"))
        .to_std()
        .unwrap_or_default()
}

async fn set_plan(app: &TestApp, tenant: &Onboarded, plan: &str) {
    sqlx::query("update platform.tenants set plan = $2 where id = $1")
        .bind(tenant.id)
        .bind(plan)
        .execute(app.db())
        .await
        .expect("set the plan");
}

async fn running(app: &TestApp, auth: &Auth) -> usize {
    app.call(
        Method::GET,
        "/api/v1/jobs?status=running&limit=100",
        auth,
        None,
    )
    .await
    .json()["items"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test]
async fn a_free_tenant_runs_at_most_two_jobs_at_once_however_many_workers_are_free() {
    // A slot whose lease runs out is given to the next job by design (its process is
    // taken for dead). The tests' 1.5 s lease could run out between admission and the
    // first heartbeat on a busy CI machine and let a third job in (seen once); this test
    // is about the cap, so its leases outlast any stall.
    let app = TestApp::builder()
        .with_config(|c| {
            c.jobs.concurrency = 16;
            c.jobs.lease = Duration::from_secs(30);
        })
        .build()
        .await;
    let t = app.onboard("free").await;
    let _worker = app.start_worker();
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(
            submit(
                &app,
                &t.admin(),
                json!({"type": "echo", "payload": {"delay_ms": 300}}),
            )
            .await,
        );
    }
    let mut most = 0;
    for _ in 0..40 {
        most = most.max(running(&app, &t.admin()).await);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(most >= 1, "the jobs ran");
    assert!(most <= 2, "{most} jobs of a free tenant ran at once");
    for id in ids {
        let row = started(&app, &t.admin(), id).await;
        assert_ne!(row["status"], "failed", "{row}");
    }
}

#[tokio::test]
async fn a_flood_from_one_tenant_does_not_delay_another_tenants_job() {
    // Four worker slots; the noisy tenant queues ten times that, each job for 2 s.
    let app = TestApp::builder()
        .with_config(|c| c.jobs.concurrency = 4)
        .build()
        .await;
    let noisy = app.onboard("noisy").await;
    set_plan(&app, &noisy, "premium").await;
    let quiet = app.onboard("quiet").await;
    let _worker = app.start_worker();
    for _ in 0..40 {
        submit(
            &app,
            &noisy.admin(),
            json!({"type": "echo", "payload": {"delay_ms": 2000}}),
        )
        .await;
    }
    // The flood holds the workers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(running(&app, &noisy.admin()).await >= 3);
    for _ in 0..3 {
        let id = submit(&app, &quiet.admin(), json!({"type": "echo"})).await;
        let row = started(&app, &quiet.admin(), id).await;
        assert!(
            waited(&row) < Duration::from_secs(1),
            "the quiet tenant's job waited {:?} behind the flood: {row}",
            waited(&row)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn platform_mail_does_not_wait_behind_tenants_jobs() {
    let app = TestApp::builder()
        .with_config(|c| c.jobs.concurrency = 2)
        .build()
        .await;
    let noisy = app.onboard("noisy").await;
    set_plan(&app, &noisy, "premium").await;
    let _worker = app.start_worker();
    for _ in 0..20 {
        submit(
            &app,
            &noisy.admin(),
            json!({"type": "echo", "payload": {"delay_ms": 2000}}),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Onboarding sends the welcome email: the platform's own job.
    let fresh = app.onboard("fresh").await;
    let welcome = app
        .call(
            Method::GET,
            "/api/v1/jobs?type=notification.send",
            &fresh.admin(),
            None,
        )
        .await
        .json()["items"][0]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("the welcome email's job");
    let row = started(&app, &fresh.admin(), welcome).await;
    assert!(
        waited(&row) < Duration::from_secs(1),
        "the welcome email waited {:?}: {row}",
        waited(&row)
    );
}
