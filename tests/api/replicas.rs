//! Several processes of the real binary on one PostgreSQL and one Redis, over real sockets:
//! what one replica learns or decides, the others honour.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::{
    binary::{free_port, http_get, http_request, tenantry, wait_ready},
    helpers::{PASSWORD, TestApp, eventually},
};

/// A `tenantry` process of the test's deployment (its database and Redis prefix).
struct Process {
    child: Child,
    addr: String,
}

/// How long a change may take to reach another replica (pub/sub plus a cache refresh).
const PROPAGATION: Duration = Duration::from_secs(3);
/// How long background work (a lease expiring, jobs draining) may take under test load.
const BACKGROUND: Duration = Duration::from_secs(20);

fn command(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = tenantry();
    command
        .args(args)
        .env("DATABASE_URL", app.database_url())
        .env("DATABASE_MAX_CONNECTIONS", "4")
        .env("REDIS_URL", &app.state.config.redis.url)
        .env("REDIS_KEY_PREFIX", &app.state.config.redis.key_prefix)
        .env("RUST_LOG", "warn")
        .env("JOB_RECONCILE_MS", "200")
        .env("JOB_REQUEUE_AFTER_MS", "1000")
        .env("JOB_LEASE_MS", "1500")
        .env("JOB_HEARTBEAT_MS", "100");
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// Starts `tenantry serve` and waits until it is ready.
async fn serve(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> Process {
    let addr = format!("127.0.0.1:{}", free_port().await);
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    let child = command(app, &all, env)
        .env("BIND_ADDR", &addr)
        .spawn()
        .expect("spawn serve");
    wait_ready(&addr).await;
    Process { child, addr }
}

impl Process {
    async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (u16, Value) {
        let (status, body) = http_request(&self.addr, method, path, headers, body)
            .await
            .expect("the replica answers");
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// A counter or gauge of this replica's `/metrics` (0 when absent).
    async fn metric(&self, name: &str) -> f64 {
        let (_, text) = http_get(&self.addr, "/metrics").await.expect("metrics");
        text.lines()
            .filter(|line| line.split([' ', '{']).next() == Some(name))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// Onboards a tenant through `replica`; returns the admin's bearer header value.
async fn onboard(replica: &Process, slug: &str) -> String {
    let (status, body) = replica
        .call(
            "POST",
            "/api/v1/tenants",
            &[],
            Some(&json!({
                "name": slug, "slug": slug,
                "admin": {"email": format!("admin@{slug}.example.com"), "password": PASSWORD},
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    format!(
        "Bearer {}",
        body["tokens"]["access_token"].as_str().expect("token")
    )
}

#[tokio::test]
async fn the_tenant_rate_limit_is_one_budget_across_replicas() {
    let app = TestApp::new().await;
    let (a, b) = tokio::join!(
        serve(&app, &["--no-workers"], &[]),
        serve(&app, &["--no-workers"], &[])
    );
    let admin = onboard(&a, "shared-limit").await;
    let auth = [("Authorization", admin.as_str())];

    let started = Instant::now();
    let (mut allowed, mut limited_on) = (0, [false, false]);
    for i in 0..90 {
        let (replica, side) = if i % 2 == 0 { (&a, 0) } else { (&b, 1) };
        match replica
            .call("GET", "/api/v1/tenants/current", &auth, None)
            .await
        {
            (200, _) => allowed += 1,
            (429, body) => {
                assert_eq!(body["code"], "RATE_LIMITED");
                limited_on[side] = true;
            }
            (status, body) => panic!("unexpected {status}: {body}"),
        }
    }
    // Free plan: a burst of 60, then one a second. Per-replica limits would admit 90.
    let refill = started.elapsed().as_secs() as usize + 1;
    assert!(
        (60..=60 + refill).contains(&allowed),
        "{allowed} admitted by two replicas sharing one free-plan budget"
    );
    assert_eq!(
        limited_on,
        [true, true],
        "both replicas refuse once it is spent"
    );
}

#[tokio::test]
async fn a_revoked_api_key_and_a_narrowed_role_stop_working_on_the_other_replica() {
    let app = TestApp::new().await;
    let (a, b) = tokio::join!(
        serve(&app, &["--no-workers"], &[]),
        serve(&app, &["--no-workers"], &[])
    );
    let admin = onboard(&a, "revoke").await;
    let auth = [("Authorization", admin.as_str())];
    let (status, role) = a
        .call(
            "POST",
            "/api/v1/roles",
            &auth,
            Some(&json!({"name": "reader", "permissions": ["resources:read"]})),
        )
        .await;
    assert_eq!(status, 201, "{role}");
    let mut keys = Vec::new();
    for name in ["revoked", "narrowed"] {
        let (status, key) = a
            .call(
                "POST",
                "/api/v1/api-keys",
                &auth,
                Some(&json!({"name": name, "role": "reader"})),
            )
            .await;
        assert_eq!(status, 201, "{key}");
        keys.push(key);
    }
    let secret = |k: &Value| k["key"].as_str().expect("key").to_owned();
    let (revoked, narrowed) = (secret(&keys[0]), secret(&keys[1]));
    // Both keys are now in replica b's caches.
    for key in [&revoked, &narrowed] {
        let (status, body) = b
            .call("GET", "/api/v1/resources", &[("X-API-Key", key)], None)
            .await;
        assert_eq!(status, 200, "{body}");
    }

    let path = format!("/api/v1/api-keys/{}", keys[0]["id"].as_str().expect("id"));
    assert_eq!(a.call("DELETE", &path, &auth, None).await.0, 204);
    let refused = eventually(PROPAGATION, async || {
        let (status, _) = b
            .call("GET", "/api/v1/resources", &[("X-API-Key", &revoked)], None)
            .await;
        status == 401
    })
    .await;
    assert!(
        refused,
        "the other replica refuses a revoked key within {PROPAGATION:?}"
    );

    let path = format!(
        "/api/v1/roles/{}/permissions/resources:read",
        role["id"].as_str().expect("id")
    );
    let (status, body) = a.call("DELETE", &path, &auth, None).await;
    assert!(status == 200 || status == 204, "{status} {body}");
    let forbidden = eventually(PROPAGATION, async || {
        let (status, _) = b
            .call(
                "GET",
                "/api/v1/resources",
                &[("X-API-Key", &narrowed)],
                None,
            )
            .await;
        status == 403
    })
    .await;
    assert!(
        forbidden,
        "the other replica applies the narrowed role within {PROPAGATION:?}"
    );
}

#[tokio::test]
async fn one_replica_evaluates_autoscaling_and_another_takes_over_when_it_dies() {
    let app = TestApp::new().await;
    let env = [("AUTOSCALER_INTERVAL_SECONDS", "1")];
    let (mut a, mut b) = tokio::join!(serve(&app, &[], &env), serve(&app, &[], &env));
    onboard(&a, "scaled").await;

    // Lease TTL is three intervals: after that long someone surely holds it.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let on_a = a.metric("tenantry_autoscaler_leader").await;
    let on_b = b.metric("tenantry_autoscaler_leader").await;
    assert_eq!(on_a + on_b, 1.0, "exactly one replica holds the lease");
    let (leader, follower) = if on_a == 1.0 {
        (&mut a, &b)
    } else {
        (&mut b, &a)
    };
    assert!(leader.metric("tenantry_autoscaler_passes_total").await > 0.0);
    assert_eq!(
        follower.metric("tenantry_autoscaler_passes_total").await,
        0.0,
        "the follower runs no pass"
    );

    leader.child.kill().await.expect("kill the leader");
    let took_over = eventually(BACKGROUND, async || {
        follower.metric("tenantry_autoscaler_passes_total").await > 0.0
    })
    .await;
    assert!(
        took_over,
        "the survivor takes over once the dead leader's lease expires"
    );
}

#[tokio::test]
async fn jobs_submitted_to_two_replicas_run_once_each_across_three_workers() {
    let app = TestApp::new().await;
    // The test polls more often than a free plan's 60 requests a minute allow.
    let env = [("RATE_LIMIT_ENABLED", "false")];
    let (a, b) = tokio::join!(serve(&app, &[], &env), serve(&app, &[], &env));
    let _worker = command(&app, &["worker"], &env)
        .spawn()
        .expect("spawn worker");
    let admin = onboard(&a, "jobs").await;
    let auth = [("Authorization", admin.as_str())];

    let mut ids = Vec::new();
    for i in 0..40 {
        let replica = if i % 2 == 0 { &a } else { &b };
        let (status, job) = replica
            .call(
                "POST",
                "/api/v1/jobs",
                &auth,
                Some(&json!({"type": "echo", "payload": {"n": i}})),
            )
            .await;
        assert_eq!(status, 202, "{job}");
        ids.push(job["id"].as_str().expect("id").to_owned());
    }
    let done = eventually(BACKGROUND, async || {
        let (_, page) = a
            .call(
                "GET",
                "/api/v1/jobs?status=succeeded&type=echo&limit=100",
                &auth,
                None,
            )
            .await;
        page["items"].as_array().map_or(0, Vec::len) == ids.len()
    })
    .await;
    assert!(done, "every job succeeds");
    for id in &ids {
        let (status, job) = b
            .call("GET", &format!("/api/v1/jobs/{id}"), &auth, None)
            .await;
        assert_eq!(status, 200, "{job}");
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1, "run exactly once: {job}");
    }
}
