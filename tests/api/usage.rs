//! Usage metering and `/api/v1/usage`: counts, flushing, shutdown, isolation, parameters.

use std::time::{Duration, Instant};

use axum::http::Method;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tenantry::{
    background::Background,
    services::metering::{self, Metric},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use uuid::Uuid;

use crate::{
    binary::{free_port, tenantry},
    helpers::{Auth, TestApp},
};

async fn api_requests(app: &TestApp, tenant: Uuid) -> i64 {
    sqlx::query_scalar(
        "select coalesce(sum(value), 0)::bigint from platform.usage_rollups
         where tenant_id = $1 and metric = 'api_requests'",
    )
    .bind(tenant)
    .fetch_one(app.db())
    .await
    .expect("sum")
}

fn total(usage: &Value, metric: &str) -> i64 {
    usage["totals"][metric]
        .as_i64()
        .unwrap_or_else(|| panic!("no total for {metric}: {usage}"))
}

#[tokio::test]
async fn n_requests_show_as_exactly_n_api_requests_after_a_flush() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let globex = app.onboard("globex").await;
    const N: i64 = 7;
    for _ in 0..N {
        let res = app
            .call(Method::GET, "/api/v1/tenants/current", &acme.admin(), None)
            .await;
        assert_eq!(res.status, 200);
    }
    app.call(
        Method::GET,
        "/api/v1/tenants/current",
        &globex.admin(),
        None,
    )
    .await;
    assert!(app.state.meter.depth() >= 2, "buffered, not written");
    assert_eq!(
        api_requests(&app, acme.id).await,
        0,
        "nothing written per request"
    );
    app.flush_usage().await;

    let res = app
        .call(
            Method::GET,
            "/api/v1/usage?granularity=minute",
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let usage = res.json();
    assert_eq!(usage["tenant_id"], acme.id.to_string());
    assert_eq!(usage["granularity"], "minute");
    assert_eq!(total(&usage, "api_requests"), N);
    assert!(total(&usage, "bytes_out") > 0);
    assert_eq!(total(&usage, "bytes_in"), 0, "GETs have no body");
    assert!(total(&usage, "compute_ms") >= 0);
    let series = usage["series"].as_array().expect("series");
    assert_eq!(series.len(), Metric::ALL.len(), "one series per metric");
    let requests = series
        .iter()
        .find(|s| s["metric"] == "api_requests")
        .expect("api_requests series");
    let points = requests["points"].as_array().expect("points");
    assert_eq!(
        points
            .iter()
            .map(|p| p["value"].as_i64().expect("value"))
            .sum::<i64>(),
        N
    );
    assert!(points[0]["ts"].as_str().expect("ts").ends_with(":00Z"));

    // The usage request itself is metered too, and shows after the next flush.
    app.flush_usage().await;
    let res = app
        .call(
            Method::GET,
            "/api/v1/usage?metric=api_requests",
            &acme.admin(),
            None,
        )
        .await;
    let usage = res.json();
    assert_eq!(total(&usage, "api_requests"), N + 1);
    assert_eq!(usage["series"].as_array().expect("series").len(), 1);
    assert_eq!(
        api_requests(&app, globex.id).await,
        1,
        "tenants are metered apart"
    );
}

#[tokio::test]
async fn other_services_record_through_the_same_meter_and_bodies_count() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let body = json!({"name": "Widget", "data": {"colour": "red"}});
    let res = app
        .call(
            Method::POST,
            "/api/v1/resources",
            &acme.admin(),
            Some(body.clone()),
        )
        .await;
    assert_eq!(res.status, 201);
    app.state.meter.record(acme.id, Metric::JobsExecuted, 2);
    app.state.meter.record(acme.id, Metric::StorageBytes, 4096);
    app.state.meter.record(acme.id, Metric::ComputeMs, 15);
    app.flush_usage().await;
    let usage = app
        .call(Method::GET, "/api/v1/usage", &acme.admin(), None)
        .await
        .json();
    assert_eq!(total(&usage, "jobs_executed"), 2);
    assert_eq!(total(&usage, "storage_bytes"), 4096);
    assert!(total(&usage, "compute_ms") >= 15);
    assert_eq!(total(&usage, "bytes_in"), body.to_string().len() as i64);
    assert_eq!(total(&usage, "bytes_out"), res.body.len() as i64);
}

#[tokio::test]
async fn granularity_groups_minutes_into_hours_and_days() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let at = |s: &str| s.parse::<DateTime<Utc>>().expect("time");
    for (minute, value) in [
        ("2026-03-01T10:05:00Z", 3),
        ("2026-03-01T10:59:00Z", 4),
        ("2026-03-01T11:00:00Z", 5),
        ("2026-03-02T00:00:00Z", 100),
    ] {
        sqlx::query(
            "insert into platform.usage_rollups (tenant_id, metric, bucket_start, value)
             values ($1, 'api_requests', $2, $3)",
        )
        .bind(acme.id)
        .bind(at(minute))
        .bind(value as i64)
        .execute(app.db())
        .await
        .expect("rollup");
    }
    let get = |query: &'static str| {
        let auth = acme.admin();
        let app = &app;
        async move {
            let res = app
                .call(
                    Method::GET,
                    &format!("/api/v1/usage?metric=api_requests&{query}"),
                    &auth,
                    None,
                )
                .await;
            assert_eq!(res.status, 200, "{}", res.text());
            res.json()
        }
    };
    let hourly = get("from=2026-03-01T10:00:00Z&to=2026-03-01T12:00:00Z&granularity=hour").await;
    assert_eq!(
        hourly["series"][0]["points"],
        json!([
            {"ts": "2026-03-01T10:00:00Z", "value": 7},
            {"ts": "2026-03-01T11:00:00Z", "value": 5},
        ])
    );
    assert_eq!(total(&hourly, "api_requests"), 12);
    let daily = get("from=2026-03-01T00:00:00Z&to=2026-03-03T00:00:00Z&granularity=day").await;
    assert_eq!(
        daily["series"][0]["points"],
        json!([
            {"ts": "2026-03-01T00:00:00Z", "value": 12},
            {"ts": "2026-03-02T00:00:00Z", "value": 100},
        ])
    );
    // `to` is exclusive: the minute starting at 11:00 is not in [10:00, 11:00).
    let edge = get("from=2026-03-01T10:00:00Z&to=2026-03-01T11:00:00Z&granularity=minute").await;
    assert_eq!(total(&edge, "api_requests"), 7);
    assert_eq!(
        edge["series"][0]["points"]
            .as_array()
            .expect("points")
            .len(),
        2
    );
}

#[tokio::test]
async fn usage_parameters_are_checked() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    for (query, field) in [
        ("from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", "from"),
        ("granularity=week", "granularity"),
        ("metric=requests", "metric"),
        ("metric=api_requests,nope", "metric"),
        (
            "from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z&granularity=minute",
            "from",
        ),
        ("from=yesterday", "from"),
    ] {
        let res = app
            .call(
                Method::GET,
                &format!("/api/v1/usage?{query}"),
                &acme.admin(),
                None,
            )
            .await;
        let problem = res.assert_problem(422, "VALIDATION_FAILED");
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
        let res = app
            .call(
                Method::GET,
                &format!("/api/v1/tenants/{}/usage?{query}", acme.id),
                &acme.admin(),
                None,
            )
            .await;
        res.assert_problem(422, "VALIDATION_FAILED");
    }
}

#[tokio::test]
async fn tenant_usage_is_for_the_tenant_itself_or_operators() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let globex = app.onboard("globex").await;
    let ops = app.platform_token().await;
    let uri = |id: Uuid| format!("/api/v1/tenants/{id}/usage");

    let own = app
        .call(Method::GET, &uri(acme.id), &acme.admin(), None)
        .await;
    assert_eq!(own.status, 200, "{}", own.text());
    assert_eq!(own.json()["tenant_id"], acme.id.to_string());
    let other = app
        .call(Method::GET, &uri(globex.id), &acme.admin(), None)
        .await;
    other.assert_problem(404, "NOT_FOUND");
    let (_, key) = app
        .api_key(&acme, json!({"name": "ci", "role": "viewer"}))
        .await;
    let other = app.call(Method::GET, &uri(globex.id), &key, None).await;
    other.assert_problem(404, "NOT_FOUND");

    let operator = app.call(Method::GET, &uri(globex.id), &ops, None).await;
    assert_eq!(operator.status, 200);
    assert_eq!(operator.json()["tenant_id"], globex.id.to_string());
    let missing = app
        .call(Method::GET, &uri(Uuid::now_v7()), &ops, None)
        .await;
    missing.assert_problem(404, "NOT_FOUND");
    let res = app.call(Method::GET, "/api/v1/usage", &ops, None).await;
    res.assert_problem(403, "FORBIDDEN");
    let res = app
        .call(Method::GET, "/api/v1/usage", &Auth::None, None)
        .await;
    res.assert_problem(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn the_flusher_writes_every_interval_and_keeps_what_a_failed_flush_took() {
    // The app's own flusher waits; this test starts one of its own.
    let app = TestApp::builder()
        .with_config(|c| c.metering.flush_interval = Duration::from_secs(3600))
        .build()
        .await;
    let acme = app.onboard("acme").await;
    for _ in 0..3 {
        app.call(Method::GET, "/api/v1/tenants/current", &acme.admin(), None)
            .await;
    }
    // A flush that cannot reach the database puts its counts back.
    let port = free_port().await;
    let unreachable = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy(&format!("postgres://postgres@127.0.0.1:{port}/nowhere"))
        .expect("lazy pool");
    assert!(app.state.meter.flush(&unreachable).await.is_err());
    assert_eq!(app.state.meter.depth(), 1, "kept for the next flush");

    let flusher = Background::new();
    metering::flusher::start_every(
        app.state.meter.clone(),
        app.state.db.clone(),
        &flusher,
        Duration::from_millis(100),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while api_requests(&app, acme.id).await != 3 {
        assert!(Instant::now() < deadline, "the flusher never wrote");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.call(Method::GET, "/api/v1/tenants/current", &acme.admin(), None)
        .await;
    flusher.shutdown().await;
    assert_eq!(api_requests(&app, acme.id).await, 4, "flushed at shutdown");
    assert_eq!(app.state.meter.depth(), 0);
    let metrics = app.get("/metrics").await.text();
    for name in [
        "tenantry_metering_buffer_depth",
        "tenantry_metering_flush_duration_seconds_count",
        "tenantry_metering_flush_failures_total",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
}

/// A GET with extra headers over a fresh connection; returns the status.
async fn get_status(addr: &str, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    raw.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn sigterm_writes_every_buffered_event_before_exiting_zero() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (_, key) = app
        .api_key(&acme, json!({"name": "ci", "role": "viewer"}))
        .await;
    let Auth::ApiKey(key) = key else {
        unreachable!("api_key returns a key")
    };
    let addr = format!("127.0.0.1:{}", free_port().await);
    let mut child = tenantry()
        .arg("serve")
        .env("BIND_ADDR", &addr)
        .env("DATABASE_URL", app.database_url())
        .env("REDIS_URL", &app.state.config.redis.url)
        .env("REDIS_KEY_PREFIX", &app.state.config.redis.key_prefix)
        // Nothing is written on the interval during this test: only at shutdown.
        .env("METERING_FLUSH_INTERVAL_MS", "3600000")
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(&addr).await.is_err() {
        assert!(Instant::now() < deadline, "the server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    const N: i64 = 9;
    for _ in 0..N {
        let status = get_status(&addr, "/api/v1/tenants/current", &[("x-api-key", &key)]).await;
        assert_eq!(status, 200);
    }
    assert_eq!(api_requests(&app, acme.id).await, 0, "still buffered");

    let pid = child.id().expect("pid").to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits promptly")
        .expect("wait");
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(
        api_requests(&app, acme.id).await,
        N,
        "every request was written"
    );
}

/// Periods × metrics is bounded, not each alone: a week of minutes of every metric is
/// 90,720 points and refused; repeating a metric does not multiply series.
#[tokio::test]
async fn a_usage_query_whose_points_multiply_is_422() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let week = "from=2026-03-01T00:00:00Z&to=2026-03-08T00:00:00Z&granularity=minute";
    let problem = app
        .call(
            Method::GET,
            &format!("/api/v1/usage?{week}"),
            &acme.admin(),
            None,
        )
        .await
        .assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(problem["errors"][0]["field"], "metric", "{problem}");
    assert!(problem.to_string().contains("20160"), "{problem}");
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/usage?{week}&metric=api_requests,bytes_out"),
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let repeated = vec!["api_requests"; 2000].join(",");
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/usage?{week}&metric={repeated}"),
            &acme.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["series"].as_array().map(Vec::len), Some(1));
}

/// A tenant whose requests each take a fraction of a millisecond still has its compute
/// counted: a flush during the minute writes whole milliseconds and keeps the rest for
/// the next (rounding each flush on its own wrote 0 for ever at 0.3 ms a flush).
#[tokio::test]
async fn sub_millisecond_compute_adds_up_across_flushes() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let compute = async || -> i64 {
        sqlx::query_scalar(
            "select coalesce(sum(value), 0)::bigint from platform.usage_rollups
             where tenant_id = $1 and metric = 'compute_ms'",
        )
        .bind(acme.id)
        .fetch_one(app.db())
        .await
        .expect("sum")
    };
    app.flush_usage().await;
    let before = compute().await;
    // Ten flushes of 0.3 ms each: 3 ms in all. Each minute is rounded once when it ends
    // (at most half a millisecond either way; the flushes may straddle two minutes).
    for _ in 0..10 {
        app.state
            .meter
            .record_request(acme.id, Duration::from_micros(300), 0, 0);
        app.state.meter.flush(app.db()).await.expect("flush");
    }
    app.state
        .meter
        .flush_final(app.db())
        .await
        .expect("final flush");
    let counted = compute().await - before;
    assert!((2..=4).contains(&counted), "3 ms counted as {counted} ms");
}
