//! The shipped topology: `tenantry serve --no-workers` beside `tenantry worker`, two
//! processes on one database and one Redis namespace, as docker-compose.yml and Terraform
//! run them. Nothing here shares a struct with the processes under test.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::{
    binary::{free_port, http_request, tenantry, wait_ready},
    helpers::{PASSWORD, TestApp},
};

/// The two processes of the compose topology, over the test's database and Redis
/// namespace (a [`TestApp`] made them, and removes them at the end).
struct Topology {
    /// Kept for its database and Redis namespace, removed when the test ends.
    _app: TestApp,
    api: Child,
    worker: Option<Child>,
    addr: String,
}

impl Topology {
    /// Starts `serve --no-workers` and `worker` with `env` on top of the test's settings.
    async fn start(env: &[(&str, &str)]) -> Self {
        let app = TestApp::new().await;
        let addr = format!("127.0.0.1:{}", free_port().await);
        let api = process(&app, env)
            .args(["serve", "--no-workers"])
            .env("BIND_ADDR", &addr)
            .spawn()
            .expect("spawn the api");
        wait_ready(&addr).await;
        let worker = process(&app, env)
            .arg("worker")
            .spawn()
            .expect("spawn the worker");
        Self {
            _app: app,
            api,
            worker: Some(worker),
            addr,
        }
    }

    async fn call(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> Value {
        let auth = format!("Bearer {token}");
        let (status, text) = http_request(
            &self.addr,
            method,
            path,
            &[("Authorization", auth.as_str())],
            body,
        )
        .await
        .expect("the api answers");
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {text}"
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Onboards a tenant through the API process; its admin's access token.
    async fn onboard(&self, slug: &str) -> String {
        let (status, text) = http_request(
            &self.addr,
            "POST",
            "/api/v1/tenants",
            &[],
            Some(&json!({
                "name": format!("Tenant {slug}"),
                "slug": slug,
                "admin": {"email": format!("admin@{slug}.example.com"), "password": PASSWORD},
            })),
        )
        .await
        .expect("the api answers");
        assert_eq!(status, 201, "{text}");
        let body: Value = serde_json::from_str(&text).expect("json");
        body["tokens"]["access_token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    /// Submits a job and waits (up to 20 s) for it to finish; its final state.
    async fn run_job(&self, token: &str, job: Value) -> Value {
        let submitted = self.call("POST", "/api/v1/jobs", token, Some(&job)).await;
        let id = submitted["id"].as_str().expect("job id").to_owned();
        let path = format!("/api/v1/jobs/{id}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = self.call("GET", &path, token, None).await;
            if ["succeeded", "failed", "cancelled"]
                .contains(&state["status"].as_str().unwrap_or(""))
            {
                return state;
            }
            assert!(Instant::now() < deadline, "the job never finished: {state}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Today's total of `metric` in `/api/v1/usage`.
    async fn usage(&self, token: &str, metric: &str) -> i64 {
        let path = format!("/api/v1/usage?metric={metric}&granularity=day");
        self.call("GET", &path, token, None).await["totals"][metric]
            .as_i64()
            .unwrap_or(0)
    }

    /// Waits (up to `within`) until `metric` reaches `expected`.
    async fn usage_reaches(&self, token: &str, metric: &str, expected: i64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let total = self.usage(token, metric).await;
            if total >= expected {
                assert_eq!(total, expected, "{metric} overshot");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{metric} stayed at {total}, expected {expected}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM to the worker and waits for its exit status.
    async fn stop_worker(&mut self) -> std::process::ExitStatus {
        let mut worker = self.worker.take().expect("running");
        terminate(&worker).await;
        tokio::time::timeout(Duration::from_secs(20), worker.wait())
            .await
            .expect("the worker exits promptly")
            .expect("wait")
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = self.api.start_kill();
        if let Some(worker) = &mut self.worker {
            let _ = worker.start_kill();
        }
    }
}

fn process(app: &TestApp, env: &[(&str, &str)]) -> Command {
    let mut command = tenantry();
    command
        .env("DATABASE_URL", app.database_url())
        .env("DATABASE_MAX_CONNECTIONS", "5")
        .env("REDIS_URL", &app.state.config.redis.url)
        .env("REDIS_KEY_PREFIX", &app.state.config.redis.key_prefix)
        .env("STORAGE_DIR", app.storage_dir())
        .env("RATE_LIMIT_ENABLED", "false")
        .env("RUST_LOG", "warn")
        // Output nobody reads must not fill the pipe and block the process.
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

async fn terminate(child: &Child) {
    let pid = child.id().expect("pid").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());
}

#[tokio::test]
async fn the_worker_process_runs_jobs_and_its_usage_reaches_the_api() {
    let topology = Topology::start(&[("METERING_FLUSH_INTERVAL_MS", "200")]).await;
    let token = topology.onboard("acme").await;
    for n in 0..5 {
        let done = topology
            .run_job(
                &token,
                json!({"type": "echo", "payload": {"delay_ms": n * 10}}),
            )
            .await;
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    // The five echoes and the welcome email of onboarding, all run by the worker.
    topology
        .usage_reaches(&token, "jobs_executed", 6, Duration::from_secs(10))
        .await;
}

#[tokio::test]
async fn usage_report_files_written_by_the_worker_are_metered() {
    let topology = Topology::start(&[("METERING_FLUSH_INTERVAL_MS", "200")]).await;
    let token = topology.onboard("acme").await;
    let now = chrono::Utc::now();
    let report = topology
        .run_job(
            &token,
            json!({"type": "usage_report", "payload": {
                "from": (now - chrono::TimeDelta::hours(1)).to_rfc3339(),
                "to": now.to_rfc3339(),
            }}),
        )
        .await;
    assert_eq!(report["status"], "succeeded", "{report}");
    let file_id = report["result"]["file_id"].as_str().expect("file id");
    let file = topology
        .call("GET", &format!("/api/v1/files/{file_id}"), &token, None)
        .await;
    let size = file["size"].as_i64().expect("size");
    assert!(size > 0, "{file}");
    topology
        .usage_reaches(&token, "storage_bytes", size, Duration::from_secs(10))
        .await;
}

#[tokio::test]
async fn the_worker_process_runs_the_autoscaler() {
    let topology = Topology::start(&[("AUTOSCALER_INTERVAL_SECONDS", "1")]).await;
    let token = topology.onboard("acme").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = topology.call("GET", "/api/v1/scaling", &token, None).await;
        if status["last_evaluated_at"].is_string() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the autoscaler never evaluated the tenant: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn sigterm_of_the_worker_loses_no_usage() {
    // Nothing is flushed on the interval: only the shutdown can write the counts.
    let mut topology = Topology::start(&[("METERING_FLUSH_INTERVAL_MS", "3600000")]).await;
    let token = topology.onboard("acme").await;
    for n in 0..3 {
        let done = topology
            .run_job(
                &token,
                json!({"type": "echo", "payload": {"delay_ms": n * 10}}),
            )
            .await;
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    assert_eq!(topology.usage(&token, "jobs_executed").await, 0);
    let status = topology.stop_worker().await;
    assert!(status.success(), "exit status {status:?}");
    // Every job the worker ran: the three echoes and the welcome email, if it ran.
    let jobs = topology
        .call("GET", "/api/v1/jobs?limit=100", &token, None)
        .await;
    let ran = jobs["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|job| job["status"] == "succeeded")
        .count();
    assert!(ran >= 3, "{jobs}");
    assert_eq!(
        topology.usage(&token, "jobs_executed").await,
        i64::try_from(ran).expect("small")
    );
}
