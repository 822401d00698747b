//! Autoscaling: the policy, the simulate endpoint (one rule at a time), the live
//! evaluator, its lease across replicas, the capacity gauge and tenant isolation.

use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::{Value, json};
use tenantry::{App, services::scaling::evaluator};
use uuid::Uuid;

use crate::helpers::{Auth, Onboarded, TestApp};

/// A tenant on the standard plan (capacity 1–10) with the policy 1–10 at 50 rps/unit.
async fn standard_tenant(app: &TestApp, slug: &str) -> Onboarded {
    let tenant = app.onboard(slug).await;
    let platform = app.platform_token().await;
    let res = app
        .call(
            Method::PATCH,
            &format!("/api/v1/tenants/{}", tenant.id),
            &platform,
            Some(json!({"plan": "standard"})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let res = app
        .call(
            Method::PUT,
            "/api/v1/scaling/policy",
            &tenant.admin(),
            Some(json!({"min_capacity": 1, "max_capacity": 10, "target_rps_per_unit": 50})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    tenant
}

async fn simulate(app: &TestApp, auth: &Auth, body: Value) -> Value {
    let res = app
        .call(Method::POST, "/api/v1/scaling/simulate", auth, Some(body))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

fn desired(result: &Value) -> Vec<i64> {
    result["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|d| d["desired"].as_i64().expect("desired"))
        .collect()
}

fn samples(points: &[(f64, f64)]) -> Value {
    points
        .iter()
        .map(|(t, rps)| json!({"t": t, "rps": rps}))
        .collect()
}

const POLICY: fn() -> Value = || {
    json!({"min_capacity": 1, "max_capacity": 10, "target_rps_per_unit": 50,
           "tolerance": 0.1, "scale_up_cooldown_s": 60, "scale_down_stabilization_s": 300})
};

#[tokio::test]
async fn simulate_scales_up_to_the_load_over_the_target() {
    let app = TestApp::new().await;
    let tenant = standard_tenant(&app, "acme").await;
    let result = simulate(
        &app,
        &tenant.admin(),
        json!({"policy": POLICY(), "current_capacity": 1, "samples": samples(&[(0.0, 210.0)])}),
    )
    .await;
    let decision = &result["decisions"][0];
    assert_eq!(decision["desired"], 5);
    assert_eq!(decision["action"], "scale_up");
    assert_eq!(decision["t"], 0.0);
    let reason = decision["reason"].as_str().expect("reason");
    assert!(reason.contains("scaling up from 1 to 5"), "{reason}");
}

#[tokio::test]
async fn simulate_holds_inside_the_tolerance_band() {
    let app = TestApp::new().await;
    let tenant = standard_tenant(&app, "acme").await;
    // Two units serve 100 rps: 108 and 92 are within 10%, 115 is not.
    let result = simulate(
        &app,
        &tenant.admin(),
        json!({"policy": POLICY(), "current_capacity": 2,
               "samples": samples(&[(0.0, 108.0), (10.0, 92.0), (20.0, 115.0)])}),
    )
    .await;
    assert_eq!(desired(&result), [2, 2, 3]);
    assert_eq!(result["decisions"][0]["action"], "none");
    assert!(
        result["decisions"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("tolerance"))
    );
}

#[tokio::test]
async fn simulate_waits_for_the_cooldown_between_scale_ups() {
    let app = TestApp::new().await;
    let tenant = standard_tenant(&app, "acme").await;
    let result = simulate(
        &app,
        &tenant.admin(),
        json!({"policy": POLICY(), "current_capacity": 1,
               "samples": samples(&[(0.0, 100.0), (30.0, 400.0), (59.0, 400.0), (60.0, 400.0)])}),
    )
    .await;
    assert_eq!(desired(&result), [2, 2, 2, 8]);
    let held = &result["decisions"][1];
    assert_eq!(held["action"], "none");
    assert!(
        held["reason"]
            .as_str()
            .is_some_and(|r| r.contains("cooldown")),
        "{held}"
    );
}

#[tokio::test]
async fn simulate_scales_down_only_to_the_highest_recommendation_of_the_window() {
    let app = TestApp::new().await;
    let tenant = standard_tenant(&app, "acme").await;
    let result = simulate(
        &app,
        &tenant.admin(),
        json!({"policy": POLICY(), "current_capacity": 1,
               "samples": samples(&[(0.0, 400.0), (100.0, 200.0), (200.0, 100.0), (299.0, 100.0), (300.0, 100.0), (400.0, 100.0)])}),
    )
    .await;
    // 8 stays while it is in the 300 s window; then the highest left (4), then 2.
    assert_eq!(desired(&result), [8, 8, 8, 8, 4, 2]);
    assert_eq!(result["decisions"][4]["action"], "scale_down");
}

#[tokio::test]
async fn simulate_stays_within_the_bounds_of_the_tenants_own_policy() {
    let app = TestApp::new().await;
    // A free tenant: its own policy is 1–2.
    let tenant = app.onboard("acme").await;
    let result = simulate(
        &app,
        &tenant.admin(),
        json!({"current_capacity": 1, "samples": samples(&[(0.0, 10_000.0), (400.0, 0.0)])}),
    )
    .await;
    assert_eq!(desired(&result), [2, 1]);
    assert_eq!(result["policy"]["max_capacity"], 2);

    // A policy beyond the plan is refused, here and on PUT, naming the field.
    let res = app
        .call(
            Method::POST,
            "/api/v1/scaling/simulate",
            &tenant.admin(),
            Some(json!({"policy": POLICY(), "current_capacity": 1, "samples": samples(&[(0.0, 1.0)])})),
        )
        .await;
    let problem = res.assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(problem["errors"][0]["field"], "policy.max_capacity");
    let res = app
        .call(
            Method::PUT,
            "/api/v1/scaling/policy",
            &tenant.admin(),
            Some(POLICY()),
        )
        .await;
    let problem = res.assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(problem["errors"][0]["field"], "max_capacity");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("between 1 and 2"))
    );
}

#[tokio::test]
async fn simulate_refuses_bad_samples() {
    let app = TestApp::new().await;
    let tenant = app.onboard("acme").await;
    let send = |body: Value| {
        let auth = tenant.admin();
        let app = &app;
        async move {
            app.call(Method::POST, "/api/v1/scaling/simulate", &auth, Some(body))
                .await
        }
    };
    let res = send(json!({"current_capacity": 1, "samples": []})).await;
    assert_eq!(
        res.assert_problem(422, "VALIDATION_FAILED")["errors"][0]["field"],
        "samples"
    );
    let too_many: Vec<(f64, f64)> = (0..10_001).map(|i| (f64::from(i), 1.0)).collect();
    let res = send(json!({"current_capacity": 1, "samples": samples(&too_many)})).await;
    res.assert_problem(422, "VALIDATION_FAILED");
    let res =
        send(json!({"current_capacity": 1, "samples": samples(&[(5.0, 1.0), (4.0, 1.0)])})).await;
    assert_eq!(
        res.assert_problem(422, "VALIDATION_FAILED")["errors"][0]["field"],
        "samples[1].t"
    );
    let res = send(json!({"current_capacity": -1, "samples": samples(&[(0.0, -3.0)])})).await;
    let fields: Vec<_> = res.assert_problem(422, "VALIDATION_FAILED")["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(fields, ["current_capacity", "samples[0].rps"]);
    let res = send(json!({"samples": samples(&[(0.0, 1.0)])})).await;
    res.assert_problem(422, "VALIDATION_FAILED");
    // 10,000 samples are fine.
    let most: Vec<(f64, f64)> = (0..10_000)
        .map(|i| (f64::from(i), f64::from(i % 700)))
        .collect();
    let res = send(json!({"current_capacity": 1, "samples": samples(&most)})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.json()["decisions"].as_array().map(Vec::len),
        Some(10_000)
    );
}

#[tokio::test]
async fn a_new_tenant_starts_at_its_plans_minimum_and_a_policy_change_moves_it_into_bounds() {
    let app = TestApp::new().await;
    let tenant = standard_tenant(&app, "acme").await;
    let res = app
        .call(Method::GET, "/api/v1/scaling", &tenant.admin(), None)
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let status = res.json();
    assert_eq!(status["current_capacity"], 1);
    assert_eq!(status["desired_capacity"], 1);
    assert_eq!(status["policy"]["target_rps_per_unit"], 50.0);
    assert_eq!(status["policy"]["scale_down_stabilization_s"], 300);
    assert_eq!(status["plan_bounds"], json!({"min": 1, "max": 10}));
    assert_eq!(status["last_evaluated_at"], Value::Null);

    let res = app
        .call(
            Method::PUT,
            "/api/v1/scaling/policy",
            &tenant.admin(),
            Some(json!({"min_capacity": 3, "max_capacity": 6, "target_rps_per_unit": 20, "tolerance": 0.2})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["current_capacity"], 3);
    assert_eq!(res.json()["policy"]["tolerance"], 0.2);
    let events = app
        .call(Method::GET, "/api/v1/scaling/events", &tenant.admin(), None)
        .await
        .json();
    assert_eq!(events["items"][0]["action"], "scale_up");
    assert_eq!(events["items"][0]["from_capacity"], 1);
    assert_eq!(events["items"][0]["to_capacity"], 3);

    // Bad fields are named.
    let res = app
        .call(
            Method::PUT,
            "/api/v1/scaling/policy",
            &tenant.admin(),
            Some(json!({"min_capacity": 5, "max_capacity": 4, "target_rps_per_unit": 0, "tolerance": 1.5})),
        )
        .await;
    let fields: Vec<_> = res.assert_problem(422, "VALIDATION_FAILED")["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(fields, ["max_capacity", "target_rps_per_unit", "tolerance"]);

    // Reading is not managing.
    let (_, viewer) = app
        .user_with_roles(&tenant, "viewer@acme.example.com", &["viewer"])
        .await;
    let res = app
        .call(Method::GET, "/api/v1/scaling", &viewer, None)
        .await;
    assert_eq!(res.status, 200);
    let res = app
        .call(
            Method::PUT,
            "/api/v1/scaling/policy",
            &viewer,
            Some(POLICY()),
        )
        .await;
    res.assert_problem(403, "FORBIDDEN");
}

/// Adds `requests` to the tenant's `api_requests` rollups of this minute and the last,
/// as metering writes them.
async fn record_load(app: &TestApp, tenant: Uuid, requests: i64) {
    sqlx::query(
        "insert into platform.usage_rollups (tenant_id, metric, bucket_start, value)
         select $1, 'api_requests', m, $2
         from unnest(array[date_trunc('minute', now()), date_trunc('minute', now()) - interval '1 minute']) m
         on conflict (tenant_id, metric, bucket_start)
         do update set value = platform.usage_rollups.value + excluded.value",
    )
    .bind(tenant)
    .bind(requests)
    .execute(app.db())
    .await
    .expect("insert rollups");
}

#[tokio::test]
async fn load_on_a_tenant_raises_its_capacity_within_two_intervals() {
    let interval = Duration::from_secs(1);
    let app = TestApp::builder()
        .with_config(move |c| c.autoscaler.interval = interval)
        .build()
        .await;
    let busy = standard_tenant(&app, "busy").await;
    let quiet = standard_tenant(&app, "quiet").await;
    let running = evaluator::spawn(app.state.autoscaler.clone());
    let deadline = Instant::now() + Duration::from_secs(5);
    while running.passes() == 0 {
        assert!(Instant::now() < deadline, "the evaluator never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 12,000 requests a minute: 200 rps, 4 units at 50 rps/unit.
    record_load(&app, busy.id, 12_000).await;
    let loaded = Instant::now();
    let status = loop {
        let status = app
            .call(Method::GET, "/api/v1/scaling", &busy.admin(), None)
            .await
            .json();
        if status["current_capacity"].as_i64() >= Some(4) {
            assert!(loaded.elapsed() <= interval * 2, "too late: {status}");
            break status;
        }
        assert!(
            loaded.elapsed() <= interval * 2,
            "capacity did not rise within two intervals: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        status["last_metrics"]["rps"].as_f64() >= Some(190.0),
        "{status}"
    );
    assert!(status["last_evaluated_at"].is_string());
    let events = app
        .call(Method::GET, "/api/v1/scaling/events", &busy.admin(), None)
        .await
        .json();
    let event = &events["items"][0];
    assert_eq!(event["action"], "scale_up");
    assert_eq!(event["from_capacity"], 1);
    assert!(event["to_capacity"].as_i64() >= Some(4));
    assert!(
        event["reason"]
            .as_str()
            .is_some_and(|r| r.contains("scaling up from 1")),
        "{event}"
    );
    assert!(event["metrics"]["rps"].as_f64() >= Some(190.0));

    // The quiet tenant stayed where it was, and the gauge shows the busy one.
    let quiet_status = app
        .call(Method::GET, "/api/v1/scaling", &quiet.admin(), None)
        .await
        .json();
    assert_eq!(quiet_status["current_capacity"], 1);
    assert!(quiet_status["last_evaluated_at"].is_string());
    let metrics = app.get("/metrics").await.text();
    assert!(
        metrics.contains(&format!(
            "tenantry_tenant_capacity{{tenant=\"{}\"}}",
            busy.id
        )),
        "{metrics}"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn only_one_replica_evaluates_and_another_takes_over_when_it_dies() {
    let interval = Duration::from_millis(200);
    let app = TestApp::builder()
        .with_config(move |c| c.autoscaler.interval = interval)
        .build()
        .await;
    app.onboard("acme").await;
    let replica = async || {
        App::new(app.state.config.clone())
            .await
            .expect("replica")
            .autoscaler
    };
    let first = evaluator::spawn(replica().await);
    let second = evaluator::spawn(replica().await);
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert!(
            !(first.is_leader() && second.is_leader()),
            "both replicas hold the lease"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (leader, follower) = if first.passes() > 0 {
        (first, second)
    } else {
        (second, first)
    };
    assert!(leader.passes() >= 3, "the leader evaluates every interval");
    assert_eq!(follower.passes(), 0, "the other replica never evaluated");

    // The leader dies without releasing the lease: the follower takes over once it lapses.
    leader.kill();
    let died = Instant::now();
    while follower.passes() == 0 {
        assert!(
            died.elapsed() < evaluator::lease_ttl(interval) + interval * 3,
            "nobody took over"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(follower.is_leader());
    follower.shutdown().await;
}

#[tokio::test]
async fn a_replica_that_shuts_down_hands_the_lease_over_at_once() {
    let interval = Duration::from_millis(300);
    let app = TestApp::builder()
        .with_config(move |c| c.autoscaler.interval = interval)
        .build()
        .await;
    let first = evaluator::spawn(app.state.autoscaler.clone());
    while first.passes() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = evaluator::spawn(
        App::new(app.state.config.clone())
            .await
            .expect("replica")
            .autoscaler,
    );
    first.shutdown().await;
    let stopped = Instant::now();
    while second.passes() == 0 {
        // Released, not expired: the next tick takes it (well before three intervals).
        assert!(
            stopped.elapsed() < interval * 2,
            "the lease was not released"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    second.shutdown().await;
}

#[tokio::test]
async fn the_capacity_gauge_shows_the_busiest_tenants_and_sums_the_rest() {
    let app = TestApp::builder()
        .with_config(|c| c.autoscaler.gauge_tenants = 1)
        .build()
        .await;
    let busy = standard_tenant(&app, "busy").await;
    let quiet = app.onboard("quiet").await;
    let idle = app.onboard("idle").await;
    record_load(&app, busy.id, 30_000).await;
    record_load(&app, quiet.id, 60).await;
    let report = evaluator::run_pass(&app.state.autoscaler, chrono::Utc::now())
        .await
        .expect("pass");
    assert_eq!(report.tenants, 3);
    assert_eq!(report.changes, 1);

    let metrics = app.get("/metrics").await.text();
    let series: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("tenantry_tenant_capacity{"))
        .collect();
    assert_eq!(series.len(), 2, "{series:?}");
    assert!(series[0].starts_with(&format!(
        "tenantry_tenant_capacity{{tenant=\"{}\"}} ",
        busy.id
    )));
    assert_eq!(series[1], "tenantry_tenant_capacity{tenant=\"other\"} 2");
    assert!(!metrics.contains(&quiet.id.to_string()));
    assert!(!metrics.contains(&idle.id.to_string()));
    assert!(metrics.contains("# TYPE tenantry_tenant_capacity gauge"));
}

#[tokio::test]
async fn a_suspended_tenant_is_not_evaluated() {
    let app = TestApp::new().await;
    let tenant = app.onboard("acme").await;
    record_load(&app, tenant.id, 30_000).await;
    sqlx::query("update platform.tenants set status = 'suspended' where id = $1")
        .bind(tenant.id)
        .execute(app.db())
        .await
        .expect("suspend");
    let report = evaluator::run_pass(&app.state.autoscaler, chrono::Utc::now())
        .await
        .expect("pass");
    assert_eq!((report.tenants, report.changes), (0, 0));
}

#[tokio::test]
async fn another_tenant_never_sees_this_tenants_scaling() {
    let app = TestApp::new().await;
    let acme = standard_tenant(&app, "acme").await;
    let other = app.onboard("other").await;
    record_load(&app, acme.id, 30_000).await;
    evaluator::run_pass(&app.state.autoscaler, chrono::Utc::now())
        .await
        .expect("pass");
    let acme_events = app
        .call(Method::GET, "/api/v1/scaling/events", &acme.admin(), None)
        .await
        .json();
    assert_eq!(acme_events["items"].as_array().map(Vec::len), Some(1));

    // The other tenant's credentials show its own state and none of acme's events.
    let (_, other_key) = app
        .api_key(&other, json!({"name": "ci", "role": "admin"}))
        .await;
    for auth in [other.admin(), other_key] {
        let status = app
            .call(Method::GET, "/api/v1/scaling", &auth, None)
            .await
            .json();
        assert_eq!(status["current_capacity"], 1, "{status}");
        assert_eq!(status["plan_bounds"]["max"], 2);
        let events = app
            .call(Method::GET, "/api/v1/scaling/events", &auth, None)
            .await
            .json();
        assert_eq!(events["items"], json!([]), "{events}");
        // Nor the platform-wide list.
        app.call(Method::GET, "/api/v1/admin/scaling", &auth, None)
            .await
            .assert_problem(403, "FORBIDDEN");
    }

    // Platform operators see every tenant's capacity, paginated.
    let platform = app.platform_token().await;
    let page = app
        .call(
            Method::GET,
            "/api/v1/admin/scaling?limit=1",
            &platform,
            None,
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    let page = page.json();
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    let cursor = page["next_cursor"].as_str().expect("a second page");
    let next = app
        .call(
            Method::GET,
            &format!("/api/v1/admin/scaling?limit=1&cursor={cursor}"),
            &platform,
            None,
        )
        .await
        .json();
    let slugs: Vec<_> = [&page, &next]
        .iter()
        .map(|p| {
            p["items"][0]["slug"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(slugs, ["other", "acme"]);
    assert!(next["items"][0]["current_capacity"].as_i64() >= Some(2));
    assert_eq!(next["next_cursor"], Value::Null);
}

/// A `tenantry serve` process evaluating every second, with its log lines collected.
struct Server {
    child: tokio::process::Child,
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    async fn start(app: &TestApp) -> Self {
        use tokio::io::AsyncBufReadExt;
        let addr = format!("127.0.0.1:{}", crate::binary::free_port().await);
        let mut child = crate::binary::tenantry()
            .arg("serve")
            .env("BIND_ADDR", &addr)
            .env("DATABASE_URL", app.database_url())
            .env("REDIS_URL", &app.state.config.redis.url)
            .env("REDIS_KEY_PREFIX", &app.state.config.redis.key_prefix)
            .env("AUTOSCALER_INTERVAL_SECONDS", "1")
            .env("RUST_LOG", "info")
            .spawn()
            .expect("spawn");
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let sink = logs.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().expect("logs").push(line);
            }
        });
        for _ in 0..200 {
            if crate::binary::http_get(&addr, "/health/live").await.is_ok() {
                return Self { child, logs };
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut err) = child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = err.read_to_string(&mut stderr).await;
                }
                let logs = logs.lock().expect("logs").join("\n");
                panic!("the server exited ({status}): {stderr}\n{logs}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not come up");
    }

    fn logged(&self, text: &str) -> usize {
        self.logs
            .lock()
            .expect("logs")
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }

    async fn terminate(mut self) {
        let pid = self.child.id().expect("pid").to_string();
        let killed = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill");
        assert!(killed.success());
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("exits promptly")
            .expect("wait");
        assert!(status.success(), "{status:?}");
    }
}

#[tokio::test]
async fn two_server_processes_never_both_evaluate() {
    let app = TestApp::new().await;
    let one = Server::start(&app).await;
    let two = Server::start(&app).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let took = "autoscaler evaluator took the lease";
    assert_eq!(
        one.logged(took) + two.logged(took),
        1,
        "exactly one server evaluates"
    );
    let (leader, follower) = if one.logged(took) == 1 {
        (one, two)
    } else {
        (two, one)
    };
    // The leader stops and hands over; the other server takes over within an interval.
    leader.terminate().await;
    let stopped = Instant::now();
    while follower.logged(took) == 0 {
        assert!(
            stopped.elapsed() < Duration::from_secs(3),
            "nobody took over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    follower.terminate().await;
}

/// One pass records the `scaling.changed` webhook of every tenant whose capacity
/// changed, each in its own schema, in the pass's one write statement; a tenant with no
/// endpoint subscribed gets no message, and no tenant sees another's.
#[tokio::test]
async fn one_pass_records_each_changed_tenants_webhook_in_its_own_schema() {
    // No dispatcher: the deliveries stay queued, to be counted.
    let app = TestApp::with_private_webhook_targets().await;
    let a = standard_tenant(&app, "alpha").await;
    let b = standard_tenant(&app, "beta").await;
    let quiet = standard_tenant(&app, "quiet").await;
    for (tenant, requests) in [(&a, 30_000), (&b, 12_000)] {
        crate::webhooks::endpoint(
            &app,
            tenant,
            "http://127.0.0.1:9/hook",
            json!(["scaling.changed"]),
        )
        .await;
        record_load(&app, tenant.id, requests).await;
    }
    record_load(&app, quiet.id, 30_000).await;
    let report = evaluator::run_pass(&app.state.autoscaler, chrono::Utc::now())
        .await
        .expect("pass");
    assert_eq!(report.changes, 3, "{report:?}");

    let messages = |t: &Onboarded| {
        let auth = t.admin();
        let app = &app;
        async move {
            app.call(Method::GET, "/api/v1/webhooks/messages", &auth, None)
                .await
                .json()["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        }
    };
    let mut to = Vec::new();
    for t in [&a, &b] {
        let items = messages(t).await;
        assert_eq!(items.len(), 1, "{items:?}");
        assert_eq!(items[0]["event_type"], "scaling.changed", "{items:?}");
        let event = app
            .call(Method::GET, "/api/v1/scaling/events", &t.admin(), None)
            .await
            .json();
        let data = &items[0]["data"];
        assert_eq!(data["action"], "scale_up", "{data}");
        assert_eq!(data["from_capacity"], 1, "{data}");
        assert_eq!(
            data["to_capacity"], event["items"][0]["to_capacity"],
            "{data}"
        );
        to.push(data["to_capacity"].clone());
        let queued: i64 =
            sqlx::query_scalar("select count(*) from platform.webhook_queue where tenant_id = $1")
                .bind(t.id)
                .fetch_one(app.db())
                .await
                .expect("count");
        assert_eq!(queued, 1, "one delivery queued for the tenant's endpoint");
    }
    // Each tenant's own load: 30,000 and 12,000 requests a minute need different capacities.
    assert_ne!(to[0], to[1], "{to:?}");
    assert_eq!(messages(&quiet).await, Vec::<Value>::new());
}
