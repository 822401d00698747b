//! Fault drills on the real binary: Redis lost and back, SIGTERM under load, a worker
//! killed in the middle of a job. Each drill runs its own processes (and its own Redis
//! server where it stops one) so that the rest of the suite is not disturbed.

use std::{process::Stdio, time::Duration};

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::{
    binary::{free_port, http_get, http_request, tenantry, wait_ready},
    helpers::{PASSWORD, TestApp},
};

/// A private `redis-server` on a free port, stopped on drop.
struct PrivateRedis {
    child: Child,
    port: u16,
}

impl PrivateRedis {
    async fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self { child, port };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server did not come up on {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    async fn stop(mut self) -> u16 {
        self.child.kill().await.expect("stop redis");
        self.port
    }
}

fn command(app: &TestApp, redis_url: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = tenantry();
    command
        .args(args)
        .env("DATABASE_URL", app.database_url())
        .env("DATABASE_MAX_CONNECTIONS", "8")
        .env("REDIS_URL", redis_url)
        .env("REDIS_KEY_PREFIX", &app.state.config.redis.key_prefix)
        .env("RUST_LOG", "warn")
        .env("JOB_RETRY_BASE_MS", "20")
        .env("JOB_RECONCILE_MS", "200")
        .env("JOB_REQUEUE_AFTER_MS", "1000")
        .env("JOB_LEASE_MS", "1500")
        .env("JOB_HEARTBEAT_MS", "100");
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

async fn serve(
    app: &TestApp,
    redis_url: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, String) {
    let addr = format!("127.0.0.1:{}", free_port().await);
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    let child = command(app, redis_url, &all, env)
        .env("BIND_ADDR", &addr)
        .spawn()
        .expect("spawn serve");
    wait_ready(&addr).await;
    (child, addr)
}

async fn call(
    addr: &str,
    method: &str,
    path: &str,
    bearer: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let auth = format!("Bearer {bearer}");
    let (status, body) = http_request(addr, method, path, &[("Authorization", &auth)], body)
        .await
        .expect("the server answers");
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

async fn onboard(addr: &str, slug: &str) -> String {
    let body = json!({
        "name": slug, "slug": slug,
        "admin": {"email": format!("admin@{slug}.example.com"), "password": PASSWORD},
    });
    let (status, body) = http_request(addr, "POST", "/api/v1/tenants", &[], Some(&body))
        .await
        .expect("onboard");
    assert_eq!(status, 201, "{body}");
    let body: Value = serde_json::from_str(&body).expect("JSON");
    body["tokens"]["access_token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// Polls the job until it has `status` or `within` passes; the job as last seen.
async fn wait_for_job(addr: &str, token: &str, id: &str, status: &str, within: Duration) -> Value {
    let until = tokio::time::Instant::now() + within;
    loop {
        let (_, job) = call(addr, "GET", &format!("/api/v1/jobs/{id}"), token, None).await;
        if job["status"] == status || tokio::time::Instant::now() > until {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn without_redis_the_service_keeps_answering_and_jobs_resume_when_it_returns() {
    let app = TestApp::new().await;
    let redis = PrivateRedis::start(free_port().await).await;
    let redis_url = redis.url();
    // Limits on: the limiter must fall back to its in-process buckets.
    let (_server, addr) = serve(&app, &redis_url, &[], &[]).await;
    let token = onboard(&addr, "redis-down").await;
    assert_eq!(
        call(&addr, "GET", "/api/v1/tenants/current", &token, None)
            .await
            .0,
        200
    );

    let port = redis.stop().await;
    for _ in 0..20 {
        let (status, body) = call(&addr, "GET", "/api/v1/tenants/current", &token, None).await;
        assert_eq!(status, 200, "answers without Redis: {body}");
    }
    let (status, ready) = http_get(&addr, "/health/ready").await.expect("ready");
    let ready: Value = serde_json::from_str(&ready).expect("JSON");
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["checks"]["redis"]["status"], "unavailable", "{ready}");

    // Accepted while Redis is down: the row is the record, Redis only the signal.
    let (status, job) = call(
        &addr,
        "POST",
        "/api/v1/jobs",
        &token,
        Some(&json!({"type": "echo", "payload": {"kept": true}})),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();

    let _redis = PrivateRedis::start(port).await;
    let job = wait_for_job(&addr, &token, &id, "succeeded", Duration::from_secs(30)).await;
    assert_eq!(
        job["status"], "succeeded",
        "the job runs once Redis is back: {job}"
    );
    assert_eq!(job["result"], json!({"kept": true}), "{job}");
    let (status, ready) = http_get(&addr, "/health/ready").await.expect("ready");
    assert_eq!(status, 200);
    assert!(ready.contains("\"ok\""), "{ready}");
}

#[tokio::test]
async fn sigterm_under_load_finishes_what_it_accepted_and_flushes_metering() {
    let app = TestApp::new().await;
    let redis_url = app.state.config.redis.url.clone();
    // Metering is flushed only at shutdown here; limits off so that the load is all served.
    let env = [
        ("METERING_FLUSH_INTERVAL_MS", "3600000"),
        ("RATE_LIMIT_ENABLED", "false"),
    ];
    let (mut server, addr) = serve(&app, &redis_url, &["--no-workers"], &env).await;
    let token = onboard(&addr, "sigterm").await;

    // The signal goes out once the first create is answered, with the rest in flight: a
    // fixed delay raced the load on a busy machine and sometimes signalled first.
    let first_answer = std::sync::Arc::new(tokio::sync::Notify::new());
    let load: Vec<_> = (0..200)
        .map(|i| {
            let (addr, token) = (addr.clone(), token.clone());
            let first_answer = first_answer.clone();
            tokio::spawn(async move {
                let body = json!({"name": format!("item-{i}")});
                let auth = format!("Bearer {token}");
                let answer = http_request(
                    &addr,
                    "POST",
                    "/api/v1/resources",
                    &[("Authorization", &auth)],
                    Some(&body),
                )
                .await;
                first_answer.notify_one();
                answer
            })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(30), first_answer.notified())
        .await
        .expect("a create is answered before the signal");
    let pid = server.id().expect("pid").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());

    let mut created = 0;
    for request in load {
        match request.await.expect("join") {
            Ok((201, _)) => created += 1,
            Ok((status, body)) => panic!("a request that was answered failed: {status} {body}"),
            // Refused, or closed unanswered before its request was started: nothing
            // was promised.
            Err(_) => {}
        }
    }
    let status = tokio::time::timeout(Duration::from_secs(15), server.wait())
        .await
        .expect("exits promptly")
        .expect("wait");
    assert!(status.success(), "exit status {status:?}");
    assert!(created > 0, "a create was answered before the signal");

    let tenant: uuid::Uuid =
        sqlx::query_scalar("select id from platform.tenants where slug = 'sigterm'")
            .fetch_one(app.db())
            .await
            .expect("tenant");
    let stored: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from {}.resources",
        tenantry::db::TenantSchema::for_tenant(tenant).quoted()
    )))
    .fetch_one(app.db())
    .await
    .expect("count");
    assert_eq!(stored, created, "every answered create is stored");
    let metered: i64 = sqlx::query_scalar(
        "select coalesce(sum(value), 0)::bigint from platform.usage_rollups \
         where tenant_id = $1 and metric = 'api_requests'",
    )
    .bind(tenant)
    .fetch_one(app.db())
    .await
    .expect("usage");
    assert!(
        metered >= created,
        "metering flushed at shutdown: {metered} metered for {created} served"
    );
}

#[tokio::test]
async fn a_job_whose_worker_is_killed_mid_run_is_run_again() {
    let app = TestApp::new().await;
    let redis_url = app.state.config.redis.url.clone();
    let (_server, addr) = serve(
        &app,
        &redis_url,
        &["--no-workers"],
        &[("RATE_LIMIT_ENABLED", "false")],
    )
    .await;
    let token = onboard(&addr, "killed").await;
    let mut worker = command(&app, &redis_url, &["worker"], &[])
        .spawn()
        .expect("worker");

    let (status, job) = call(
        &addr,
        "POST",
        "/api/v1/jobs",
        &token,
        Some(&json!({"type": "echo", "payload": {"delay_ms": 4000}})),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    let job = wait_for_job(&addr, &token, &id, "running", Duration::from_secs(20)).await;
    assert_eq!(job["status"], "running", "{job}");

    worker.kill().await.expect("kill -9 the worker");
    let _replacement = command(&app, &redis_url, &["worker"], &[])
        .spawn()
        .expect("worker");
    let job = wait_for_job(&addr, &token, &id, "succeeded", Duration::from_secs(30)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 2, "the lost run is retried once: {job}");
}

/// A private PostgreSQL cluster on a free port (initdb in a temporary directory), so that
/// it can be stopped and started under a running service.
struct PrivatePostgres {
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    port: u16,
}

impl PrivatePostgres {
    async fn create() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .max()
            .expect("a PostgreSQL version");
        let dir =
            std::env::temp_dir().join(format!("tenantry-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let pg = Self {
            dir,
            bin,
            port: free_port().await,
        };
        if is_root() {
            let chown = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&pg.dir)
                .status()
                .await;
            assert!(chown.expect("chown").success());
        }
        let initdb = pg
            .as_owner(&pg.bin.join("initdb"))
            .arg("-D")
            .arg(pg.dir.join("data"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
            .stdout(Stdio::null())
            .status()
            .await
            .expect("initdb");
        assert!(initdb.success());
        pg.start().await;
        pg
    }

    /// A command run as the cluster's owner (`postgres` when the tests run as root).
    fn as_owner(&self, program: &std::path::Path) -> Command {
        Command::from(owner_command(program))
    }

    async fn pg_ctl(&self, args: &[&str]) {
        let status = self
            .as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(args)
            .stdout(Stdio::null())
            .status()
            .await
            .expect("pg_ctl");
        assert!(status.success(), "pg_ctl {args:?}");
    }

    async fn start(&self) {
        let options = format!(
            "-h 127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        self.pg_ctl(&["-w", "start", "-o", &options]).await;
    }

    async fn stop(&self) {
        self.pg_ctl(&["-w", "stop", "-m", "fast"]).await;
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/tenantry", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = owner_command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["stop", "-m", "immediate"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn owner_command(program: &std::path::Path) -> std::process::Command {
    if is_root() {
        let mut command = std::process::Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        std::process::Command::new(program)
    }
}

fn is_root() -> bool {
    std::env::var("USER").is_ok_and(|u| u == "root")
        || std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
}

#[tokio::test]
async fn a_restarted_database_is_reported_not_ready_and_then_served_again_without_a_restart() {
    let pg = PrivatePostgres::create().await;
    let addr = format!("127.0.0.1:{}", free_port().await);
    let app = TestApp::new().await;
    let _server = tenantry()
        .args(["serve", "--no-workers"])
        .env("BIND_ADDR", &addr)
        .env("DATABASE_URL", pg.url())
        .env("REDIS_URL", &app.state.config.redis.url)
        .env("REDIS_KEY_PREFIX", &app.state.config.redis.key_prefix)
        .env("RATE_LIMIT_ENABLED", "false")
        .spawn()
        .expect("spawn serve");
    wait_ready(&addr).await;
    let token = onboard(&addr, "restarted").await;
    let resource = json!({"name": "before"});
    assert_eq!(
        call(&addr, "POST", "/api/v1/resources", &token, Some(&resource))
            .await
            .0,
        201
    );

    pg.stop().await;
    let (status, ready) = http_get(&addr, "/health/ready").await.expect("ready");
    assert_eq!(status, 503, "not ready without the database: {ready}");
    let (status, body) = call(&addr, "GET", "/api/v1/resources", &token, None).await;
    assert_eq!(status, 503, "a clear answer, not a hang: {body}");
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE", "{body}");

    pg.start().await;
    wait_ready(&addr).await;
    let (status, page) = call(&addr, "GET", "/api/v1/resources", &token, None).await;
    assert_eq!(status, 200, "served again on the same process: {page}");
    assert_eq!(
        page["items"][0]["name"], "before",
        "nothing accepted was lost"
    );
}
