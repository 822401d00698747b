//! Rate limits: per tenant by plan, overrides, shared across replicas, per client IP on
//! public routes, failed logins, the global limit, the Redis fallback and the send quota.

use std::{
    net::SocketAddr,
    process::Stdio,
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::ConnectInfo,
    http::{Method, Request},
};
use serde_json::json;
use tenantry::{error::ErrorCode, services::tenants::Plan};
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::helpers::{Auth, TestApp, TestResponse};

const CURRENT: &str = "/api/v1/tenants/current";

/// Requests to `uri` until the first refusal (at most `max`); returns how many passed,
/// the refusal and how long it took.
async fn until_refused(app: &TestApp, auth: &Auth, max: usize) -> (u64, TestResponse, Duration) {
    let started = Instant::now();
    for passed in 0..max {
        let res = app.call(Method::GET, CURRENT, auth, None).await;
        if res.status != 200 {
            return (passed as u64, res, started.elapsed());
        }
    }
    panic!("no refusal in {max} requests");
}

/// A GCRA bucket of `limit` a minute admits its burst at once, then one more for every
/// `60 / limit` seconds that passed: with debug builds on a busy machine a loop of
/// requests may take a while, so the exact count allows for that refill.
fn assert_admitted(passed: u64, limit: u64, elapsed: Duration) {
    let refill = (elapsed.as_secs_f64() * limit as f64 / 60.0).floor() as u64;
    assert!(
        passed >= limit && passed <= limit + refill,
        "{passed} passed for a limit of {limit} in {elapsed:?}"
    );
}

fn header_u64(res: &TestResponse, name: &str) -> u64 {
    res.header(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing or not a number: {:?}", res.headers))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test]
async fn the_61st_request_of_a_free_tenant_in_a_minute_is_429_with_every_header() {
    let app = TestApp::builder().with_rate_limits().build().await;
    let acme = app.onboard("acme").await;

    let first = app.call(Method::GET, CURRENT, &acme.admin(), None).await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("ratelimit-policy"),
        Some("\"tenant\";q=60;w=60")
    );
    assert_eq!(first.header("ratelimit"), Some("\"tenant\";r=59;t=1"));
    assert_eq!(header_u64(&first, "x-ratelimit-limit"), 60);
    assert_eq!(header_u64(&first, "x-ratelimit-remaining"), 59);
    let reset = header_u64(&first, "x-ratelimit-reset");
    assert!((now_secs()..=now_secs() + 2).contains(&reset), "{reset}");
    assert!(first.header("retry-after").is_none());

    let (passed, refused, elapsed) = until_refused(&app, &acme.admin(), 200).await;
    assert_admitted(passed + 1, 60, elapsed);
    refused.assert_problem(429, "RATE_LIMITED");
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some("\"tenant\";q=60;w=60")
    );
    let ratelimit = refused.header("ratelimit").expect("RateLimit");
    assert!(ratelimit.starts_with("\"tenant\";r=0;t="), "{ratelimit}");
    assert_eq!(header_u64(&refused, "x-ratelimit-remaining"), 0);
    assert_eq!(header_u64(&refused, "x-ratelimit-limit"), 60);
    let retry_after = header_u64(&refused, "retry-after");
    assert!(
        (1..=2).contains(&retry_after),
        "one more fits in a second: {retry_after}"
    );
    let reset = header_u64(&refused, "x-ratelimit-reset");
    // Full again in about a minute, less the time the loop took.
    assert!(
        reset >= now_secs() + 30 && reset <= now_secs() + 61,
        "{reset}"
    );

    let metrics = app.get("/metrics").await.text();
    for line in [
        "tenantry_rate_limit_decisions_total{kind=\"tenant\",outcome=\"allowed\"}",
        "tenantry_rate_limit_decisions_total{kind=\"tenant\",outcome=\"limited\"}",
    ] {
        assert!(metrics.contains(line), "{line} missing");
    }
}

#[tokio::test]
async fn tenants_do_not_share_buckets() {
    let app = TestApp::builder().with_rate_limits().build().await;
    let acme = app.onboard("acme").await;
    let globex = app.onboard("globex").await;
    until_refused(&app, &acme.admin(), 200).await;

    let other = app.call(Method::GET, CURRENT, &globex.admin(), None).await;
    assert_eq!(other.status, 200);
    assert_eq!(header_u64(&other, "x-ratelimit-remaining"), 59);
    let again = app.call(Method::GET, CURRENT, &acme.admin(), None).await;
    assert_eq!(again.status, 429, "acme is still over its limit");
}

#[tokio::test]
async fn an_override_raises_the_limit_and_is_audited() {
    let app = TestApp::builder().with_rate_limits().build().await;
    let acme = app.onboard("acme").await;
    let ops = app.platform_token().await;
    let uri = format!("/api/v1/tenants/{}/rate-limit", acme.id);

    let res = app
        .call(
            Method::PUT,
            &uri,
            &ops,
            Some(json!({"requests_per_minute": 100, "burst": 100})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["requests_per_minute"], 100);
    assert_eq!(res.json()["tenant_id"], acme.id.to_string());

    let first = app.call(Method::GET, CURRENT, &acme.admin(), None).await;
    assert_eq!(
        first.header("ratelimit-policy"),
        Some("\"tenant\";q=100;w=60")
    );
    let (passed, refused, elapsed) = until_refused(&app, &acme.admin(), 300).await;
    assert_admitted(passed + 1, 100, elapsed);
    assert_eq!(refused.status, 429);

    let (actor_type, metadata): (String, serde_json::Value) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select actor_type, metadata from {}.audit_logs where action = 'tenant.rate_limit_overridden'",
        tenantry::db::TenantSchema::for_tenant(acme.id).quoted()
    )))
    .fetch_one(app.db())
    .await
    .expect("audit entry");
    assert_eq!(actor_type, "platform");
    assert_eq!(metadata["requests_per_minute"], 100);

    // Removing it brings the plan's rate back.
    let res = app.call(Method::DELETE, &uri, &ops, None).await;
    assert_eq!(res.status, 204, "{}", res.text());
    assert!(app.state.limits.overrides.get(acme.id).is_none());
    let res = app.call(Method::DELETE, &uri, &ops, None).await;
    res.assert_problem(404, "NOT_FOUND");
}

#[tokio::test]
async fn overrides_are_checked_and_for_operators_only() {
    let app = TestApp::builder().with_rate_limits().build().await;
    let acme = app.onboard("acme").await;
    let ops = app.platform_token().await;
    let uri = format!("/api/v1/tenants/{}/rate-limit", acme.id);
    for body in [
        json!({"requests_per_minute": 0, "burst": 10}),
        json!({"requests_per_minute": 100, "burst": 0}),
        json!({"requests_per_minute": 100_000_000}),
        json!({"burst": 10}),
    ] {
        let res = app.call(Method::PUT, &uri, &ops, Some(body.clone())).await;
        res.assert_problem(422, "VALIDATION_FAILED");
    }
    let res = app
        .call(
            Method::PUT,
            &uri,
            &acme.admin(),
            Some(json!({"requests_per_minute": 5000})),
        )
        .await;
    res.assert_problem(403, "FORBIDDEN");
    let res = app
        .call(
            Method::PUT,
            &format!("/api/v1/tenants/{}/rate-limit", Uuid::now_v7()),
            &ops,
            Some(json!({"requests_per_minute": 5000})),
        )
        .await;
    res.assert_problem(404, "NOT_FOUND");
    // Without `burst`, the whole minute may come at once.
    let res = app
        .call(
            Method::PUT,
            &uri,
            &ops,
            Some(json!({"requests_per_minute": 5000})),
        )
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["burst"], 5000);
}

#[tokio::test]
async fn two_replicas_on_one_redis_share_the_limit() {
    let app = TestApp::builder().with_rate_limits().build().await;
    let acme = app.onboard("acme").await;
    let replica = app.replica().await;
    let started = Instant::now();
    let mut passed = 0;
    for i in 0..90 {
        let res = if i % 2 == 0 {
            app.call(Method::GET, CURRENT, &acme.admin(), None).await
        } else {
            replica.call(Method::GET, CURRENT, &acme.admin()).await
        };
        match res.status.as_u16() {
            200 => passed += 1,
            429 => {}
            other => panic!("unexpected {other}: {}", res.text()),
        }
    }
    assert_admitted(passed, 60, started.elapsed());
}

#[tokio::test]
async fn an_override_reaches_the_other_replicas() {
    let app = TestApp::builder().with_rate_limits().build().await;
    let acme = app.onboard("acme").await;
    let replica = app.replica().await;
    assert_eq!(
        replica.state.limits.tenant_rate(acme.id, Plan::Free).limit,
        60
    );
    let res = app
        .call(
            Method::PUT,
            &format!("/api/v1/tenants/{}/rate-limit", acme.id),
            &app.platform_token().await,
            Some(json!({"requests_per_minute": 5000, "burst": 50})),
        )
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(
        app.state.limits.tenant_rate(acme.id, Plan::Free).limit,
        5000,
        "at once here"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while replica.state.limits.tenant_rate(acme.id, Plan::Free).limit != 5000 {
        assert!(
            Instant::now() < deadline,
            "the replica never heard of the override"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        replica.state.limits.tenant_rate(acme.id, Plan::Free).burst,
        50
    );
}

#[tokio::test]
async fn slices_reserved_by_busy_replicas_never_exceed_the_limit() {
    let app = TestApp::builder().with_rate_limits().build().await;
    let acme = app.onboard("acme").await;
    let res = app
        .call(
            Method::PUT,
            &format!("/api/v1/tenants/{}/rate-limit", acme.id),
            &app.platform_token().await,
            Some(json!({"requests_per_minute": 300, "burst": 300})),
        )
        .await;
    assert_eq!(res.status, 200);
    let replica = app.replica().await;
    let started = Instant::now();
    let auth = acme.admin();
    let mut remaining_seen = Vec::new();
    let mut passed = 0;
    // 16 requests at a time, spread over both replicas.
    for _ in 0..30 {
        let batch = (0..16).map(|i| {
            let (app, replica, auth) = (&app, &replica, &auth);
            async move {
                if i % 2 == 0 {
                    app.call(Method::GET, CURRENT, auth, None).await
                } else {
                    replica.call(Method::GET, CURRENT, auth).await
                }
            }
        });
        for res in futures::future::join_all(batch).await {
            match res.status.as_u16() {
                200 => {
                    passed += 1;
                    remaining_seen.push(header_u64(&res, "x-ratelimit-remaining"));
                }
                429 => assert_eq!(header_u64(&res, "x-ratelimit-remaining"), 0),
                other => panic!("unexpected {other}"),
            }
        }
    }
    let elapsed = started.elapsed();
    let refill = (elapsed.as_secs_f64() * 300.0 / 60.0).floor() as u64;
    assert!(passed <= 300 + refill, "{passed} passed in {elapsed:?}");
    // Slices left unused when the run stops are lost, never more than a few.
    assert!(passed >= 290, "{passed} passed");
    assert!(remaining_seen.iter().all(|r| *r < 300));
}

/// A request from `ip`, as a socket peer.
async fn from_ip(
    app: &TestApp,
    ip: [u8; 4],
    method: Method,
    uri: &str,
    body: Option<serde_json::Value>,
) -> TestResponse {
    let mut builder = Request::builder().method(method).uri(uri);
    let body = match body {
        Some(json) => {
            builder = builder.header("content-type", "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let mut request = builder.body(body).expect("request");
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
    app.request(request).await
}

#[tokio::test]
async fn public_routes_are_limited_per_client_address() {
    let app = TestApp::builder()
        .with_rate_limits()
        .with_config(|c| c.limits.public_per_minute = 5)
        .build()
        .await;
    let jwks = "/.well-known/jwks.json";
    for _ in 0..5 {
        let res = from_ip(&app, [192, 0, 2, 1], Method::GET, jwks, None).await;
        assert_eq!(res.status, 200);
        assert_eq!(res.header("ratelimit-policy"), Some("\"ip\";q=5;w=60"));
    }
    let res = from_ip(&app, [192, 0, 2, 1], Method::GET, jwks, None).await;
    res.assert_problem(429, "RATE_LIMITED");
    assert!(res.header("retry-after").is_some());
    let login = json!({"tenant": "acme", "email": "a@acme.example.com", "password": "whatever1"});
    let res = from_ip(
        &app,
        [192, 0, 2, 1],
        Method::POST,
        "/api/v1/auth/login",
        Some(login.clone()),
    )
    .await;
    assert_eq!(
        res.status, 429,
        "every public route shares the address's budget"
    );

    let res = from_ip(&app, [192, 0, 2, 2], Method::GET, jwks, None).await;
    assert_eq!(res.status, 200, "another address has its own");
    assert_eq!(header_u64(&res, "x-ratelimit-remaining"), 4);
}

#[tokio::test]
async fn ten_failed_logins_then_429_for_that_email_only() {
    let app = TestApp::builder().with_rate_limits().build().await;
    let acme = app.onboard("acme").await;
    app.user_with_roles(&acme, "bob@acme.example.com", &["viewer"])
        .await;
    let login = |email: &str, password: &str, tenant: String| json!({"tenant": tenant, "email": email, "password": password});
    // Successes do not count against the budget.
    for _ in 0..3 {
        app.login(&acme.slug, &acme.admin_email, &acme.admin_password)
            .await;
    }
    for i in 0..10 {
        // By slug and by id alike: one budget per account.
        let tenant = if i % 2 == 0 {
            acme.slug.clone()
        } else {
            acme.id.to_string()
        };
        let res = app
            .post_json(
                "/api/v1/auth/login",
                &login(&acme.admin_email, "wrong password", tenant),
            )
            .await;
        res.assert_problem(401, "INVALID_CREDENTIALS");
    }
    let res = app
        .post_json(
            "/api/v1/auth/login",
            &login(&acme.admin_email, "wrong password", acme.slug.clone()),
        )
        .await;
    res.assert_problem(429, "RATE_LIMITED");
    let retry_after = header_u64(&res, "retry-after");
    assert!((60..=90).contains(&retry_after), "{retry_after}");
    assert_eq!(res.header("ratelimit-policy"), Some("\"login\";q=10;w=900"));
    // Locked even with the right password, and the email's case changes nothing.
    let res = app
        .post_json(
            "/api/v1/auth/login",
            &login(
                &acme.admin_email.to_uppercase(),
                &acme.admin_password,
                acme.slug.clone(),
            ),
        )
        .await;
    assert_eq!(res.status, 429);

    // Another account of the same tenant is not affected.
    let res = app
        .post_json(
            "/api/v1/auth/login",
            &login("bob@acme.example.com", "wrong password", acme.slug.clone()),
        )
        .await;
    res.assert_problem(401, "INVALID_CREDENTIALS");
    app.login(&acme.slug, "bob@acme.example.com", crate::helpers::PASSWORD)
        .await;
}

#[tokio::test]
async fn a_request_refused_by_one_limit_is_not_charged_to_the_others() {
    let app = TestApp::builder()
        .with_rate_limits()
        .with_config(|c| c.limits.global_per_minute = 1000)
        .build()
        .await;
    let acme = app.onboard("acme").await;
    let ops = app.platform_token().await;
    let global_remaining = |res: &TestResponse| {
        assert_eq!(
            res.header("ratelimit-policy"),
            Some("\"global\";q=1000;w=60")
        );
        header_u64(res, "x-ratelimit-remaining")
    };
    let before = global_remaining(&app.call(Method::GET, "/api/v1/tenants", &ops, None).await);
    let (passed, _, _) = until_refused(&app, &acme.admin(), 200).await;
    for _ in 0..30 {
        let res = app.call(Method::GET, CURRENT, &acme.admin(), None).await;
        assert_eq!(res.status, 429);
    }
    let after = global_remaining(&app.call(Method::GET, "/api/v1/tenants", &ops, None).await);
    // The operator's request and the tenant's admitted ones were charged; the refused
    // ones (31 of them) were not. Time refills a little, never 31 in this test.
    let charged = before.saturating_sub(after);
    assert!(
        charged <= passed + 1,
        "charged {charged} for {passed} admitted requests"
    );
}

/// A throwaway Redis on its own port, so the machine's Redis is never touched.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    async fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server (Debian package redis-server) runs");
        let redis = Self {
            port,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        redis
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("stop redis-server");
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    async fn keys(&self, pattern: &str) -> Vec<String> {
        let client = redis::Client::open(self.url()).expect("url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        redis::cmd("KEYS")
            .arg(pattern)
            .query_async(&mut conn)
            .await
            .expect("KEYS")
    }
}

#[tokio::test]
async fn requests_are_served_while_redis_is_down_and_the_shared_limit_resumes() {
    let port = crate::binary::free_port().await;
    let mut redis = OwnRedis::start(port).await;
    let url = redis.url();
    let app = TestApp::builder()
        .with_rate_limits()
        .with_config(move |c| c.redis.url = url)
        .build()
        .await;
    let acme = app.onboard("acme").await;
    let res = app.call(Method::GET, CURRENT, &acme.admin(), None).await;
    assert_eq!(res.status, 200);
    assert!(
        !redis.keys("*rl:t:*").await.is_empty(),
        "the bucket is in Redis"
    );

    redis.stop().await;
    let res = app.call(Method::GET, CURRENT, &acme.admin(), None).await;
    assert_eq!(res.status, 200, "served without Redis: {}", res.text());
    assert!(
        res.header("ratelimit").is_some(),
        "with headers from the fallback"
    );
    assert!(app.state.limits.is_degraded());
    // The fallback limits too (it started counting with the request above).
    let (passed, refused, elapsed) = until_refused(&app, &acme.admin(), 200).await;
    assert_admitted(passed + 1, 60, elapsed);
    refused.assert_problem(429, "RATE_LIMITED");

    let redis = OwnRedis::start(port).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.state.limits.is_degraded() {
        assert!(
            Instant::now() < deadline,
            "the shared limiter never came back"
        );
        app.call(Method::GET, CURRENT, &acme.admin(), None).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !redis.keys("*rl:t:*").await.is_empty(),
        "the bucket is in Redis again"
    );
    // The new Redis started empty; the limit holds there again.
    let (passed, refused, elapsed) = until_refused(&app, &acme.admin(), 200).await;
    assert!(passed <= 60 + (elapsed.as_secs() + 1), "{passed}");
    refused.assert_problem(429, "RATE_LIMITED");
}

#[tokio::test]
async fn the_send_quota_allows_the_plans_daily_sends_then_429() {
    let app = TestApp::new().await;
    let tenant = Uuid::now_v7();
    for _ in 0..100 {
        app.state
            .limits
            .consume_send_quota(tenant, Plan::Free)
            .await
            .expect("within the free plan's 100");
    }
    let refused = app
        .state
        .limits
        .consume_send_quota(tenant, Plan::Free)
        .await
        .expect_err("the 101st");
    assert_eq!(refused.code(), ErrorCode::RateLimited);
    let response = axum::response::IntoResponse::into_response(refused);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(
        (1..=86_400).contains(&retry_after),
        "until midnight UTC: {retry_after}"
    );
    // A refused send is not counted; a bigger plan has room; other tenants are apart.
    app.state
        .limits
        .consume_send_quota(tenant, Plan::Standard)
        .await
        .expect("standard allows 10,000");
    app.state
        .limits
        .consume_send_quota(Uuid::now_v7(), Plan::Free)
        .await
        .expect("another tenant");
}

#[tokio::test]
async fn without_redis_the_send_quota_answers_503_and_requests_are_still_served() {
    let port = crate::binary::free_port().await;
    let app = TestApp::builder()
        .with_rate_limits()
        .with_config(move |c| c.redis.url = format!("redis://127.0.0.1:{port}/0"))
        .build()
        .await;
    let err = app
        .state
        .limits
        .consume_send_quota(Uuid::now_v7(), Plan::Premium)
        .await
        .expect_err("no Redis");
    assert_eq!(err.code(), ErrorCode::ServiceUnavailable);
    let acme = app.onboard("acme").await;
    let started = Instant::now();
    for _ in 0..20 {
        let res = app.call(Method::GET, CURRENT, &acme.admin(), None).await;
        assert_eq!(res.status, 200);
        assert!(res.header("ratelimit").is_some());
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the fallback answers without waiting on Redis each time: {:?}",
        started.elapsed()
    );
}
