//! Outbound webhooks: endpoints, the transactional outbox, delivery, signatures checked
//! by the Standard Webhooks reference verifier, retries, disabling, SSRF, isolation.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode},
    routing::post,
};
use serde_json::{Value, json};
use tenantry::{
    background::Background,
    services::webhooks::{self, EventType, http_client::WebhookClient, target::TargetRules},
    subsystem::Subsystem,
};
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::helpers::{Onboarded, TestApp, eventually};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

#[derive(Default)]
struct ReceiverState {
    got: Mutex<Vec<Received>>,
    /// Statuses to answer, in order; 200 once they run out.
    answers: Mutex<VecDeque<u16>>,
    hang: bool,
}

/// A webhook receiver on 127.0.0.1: records what arrives and answers as told.
pub struct Receiver {
    pub url: String,
    state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::with(Vec::new(), false).await
    }

    /// Answers `statuses` in order, then 200.
    pub async fn answering(statuses: &[u16]) -> Self {
        Self::with(statuses.to_vec(), false).await
    }

    /// Never answers (the dispatcher's 15 s timeout ends each attempt).
    pub async fn hanging() -> Self {
        Self::with(Vec::new(), true).await
    }

    async fn with(answers: Vec<u16>, hang: bool) -> Self {
        let state = Arc::new(ReceiverState {
            got: Mutex::default(),
            answers: Mutex::new(answers.into()),
            hang,
        });
        let router = Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            url: format!("http://{addr}/hook"),
            state,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.got.lock().expect("lock").clone()
    }

    /// Waits (up to `within`) for `n` requests and returns them.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let arrived = eventually(within, async || self.received().len() >= n).await;
        let got = self.received();
        assert!(
            arrived,
            "expected {n} deliveries, got {}: {got:?}",
            got.len()
        );
        got
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    state.got.lock().expect("lock").push(Received {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    });
    if state.hang {
        tokio::time::sleep(Duration::from_secs(120)).await;
    }
    let status = state
        .answers
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(200);
    (StatusCode::from_u16(status).expect("a status"), "thanks")
}

/// A test app whose webhook targets may be on loopback, with the dispatcher running.
pub async fn app_with_dispatcher() -> (TestApp, Background) {
    let app = TestApp::with_private_webhook_targets().await;
    let dispatcher = Background::start(&app.state, &[Subsystem::Webhooks]);
    (app, dispatcher)
}

/// Creates an endpoint as the tenant's admin; returns its id and secret.
pub async fn endpoint(app: &TestApp, t: &Onboarded, url: &str, types: Value) -> (Uuid, String) {
    let res = app
        .call(
            Method::POST,
            "/api/v1/webhooks/endpoints",
            &t.admin(),
            Some(json!({"url": url, "event_types": types, "description": "test receiver"})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let body = res.json();
    (
        body["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("id"),
        body["secret"].as_str().expect("secret").to_owned(),
    )
}

/// Creates a user (a `user.created` event); returns its id.
async fn create_user(app: &TestApp, t: &Onboarded, name: &str) -> Uuid {
    let res = app
        .call(
            Method::POST,
            "/api/v1/users",
            &t.admin(),
            Some(json!({"email": format!("{name}@{}.example.com", t.slug), "password": "a long password"})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id")
}

/// The Python virtual environment with the `standardwebhooks` reference library,
/// installed once per machine. No network for pip fails the test: it never skips.
fn verifier_python() -> PathBuf {
    static READY: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut ready = READY.lock().expect("lock");
    if let Some(python) = ready.as_ref() {
        return python.clone();
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/tmp".into());
    let dir = PathBuf::from(home).join(".cache/tenantry-tools/standardwebhooks-venv");
    let python = dir.join("bin/python");
    let installed = std::process::Command::new(&python)
        .args(["-c", "import standardwebhooks"])
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        let venv = std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .status()
            .expect("python3 runs");
        assert!(venv.success(), "python3 -m venv {dir:?} failed");
        let pip = std::process::Command::new(dir.join("bin/pip"))
            .args(["install", "--quiet", "standardwebhooks==1.3.0"])
            .status()
            .expect("pip runs");
        assert!(
            pip.success(),
            "pip could not install standardwebhooks (the reference verifier these tests need)"
        );
    }
    *ready = Some(python.clone());
    python
}

/// Runs the reference verifier on each (secret, request); panics with its error if any
/// signature is refused.
fn verify_with_reference(cases: &[(&str, &Received)]) {
    let input: Vec<Value> = cases
        .iter()
        .map(|(secret, r)| json!({"secret": secret, "headers": r.headers, "body": r.body}))
        .collect();
    let script = "import json, sys\n\
        from standardwebhooks import Webhook\n\
        cases = json.load(sys.stdin)\n\
        for c in cases:\n\
        \x20   Webhook(c['secret']).verify(c['body'], c['headers'])\n\
        print('verified', len(cases))\n";
    let mut child = std::process::Command::new(verifier_python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the verifier");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(Value::Array(input).to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("verifier output");
    assert!(
        out.status.success(),
        "the Standard Webhooks verifier refused a delivery: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn deliveries_pass_the_standard_webhooks_reference_verifier_also_during_a_rotation() {
    let (app, _dispatcher) = app_with_dispatcher().await;
    let t = app.onboard("acme").await;
    let receiver = Receiver::start().await;
    let (id, secret) = endpoint(&app, &t, &receiver.url, json!(["user.created"])).await;
    assert!(secret.starts_with("whsec_"), "{secret}");

    let user = create_user(&app, &t, "ada").await;
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    let first = &got[0];
    let body = first.json();
    assert_eq!(body["type"], "user.created");
    assert_eq!(body["data"]["id"], user.to_string());
    assert!(body["timestamp"].is_string());
    assert!(first.header("webhook-signature").starts_with("v1,"));
    verify_with_reference(&[(secret.as_str(), first)]);
    // A wrong secret is refused by the same verifier (the check is real).
    let wrong = std::panic::catch_unwind(|| {
        verify_with_reference(&[("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", first)])
    });
    assert!(wrong.is_err(), "a wrong secret must not verify");

    // After a rotation both secrets sign for 24 h: two signatures, each verifies.
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/endpoints/{id}/rotate-secret"),
            &t.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let new_secret = res.json()["secret"].as_str().expect("secret").to_owned();
    assert_ne!(new_secret, secret);
    create_user(&app, &t, "grace").await;
    let got = receiver.wait_for(2, Duration::from_secs(5)).await;
    let second = &got[1];
    assert_eq!(second.header("webhook-signature").matches("v1,").count(), 2);
    verify_with_reference(&[(new_secret.as_str(), second), (secret.as_str(), second)]);

    // The secret is shown at creation and rotation only.
    let shown = app
        .call(
            Method::GET,
            &format!("/api/v1/webhooks/endpoints/{id}"),
            &t.admin(),
            None,
        )
        .await;
    assert_eq!(shown.status, 200);
    assert!(shown.json().get("secret").is_none());
}

#[tokio::test]
async fn the_first_attempt_leaves_within_a_second_of_the_commit() {
    let (app, _dispatcher) = app_with_dispatcher().await;
    let t = app.onboard("acme").await;
    let receiver = Receiver::start().await;
    endpoint(&app, &t, &receiver.url, json!(["*"])).await;
    for i in 0..5 {
        let committed = Instant::now();
        create_user(&app, &t, &format!("u{i}")).await;
        let got = receiver.wait_for(i + 1, Duration::from_secs(5)).await;
        let waited = got[i].at.duration_since(committed);
        assert!(waited < Duration::from_secs(1), "{waited:?}");
    }
}

#[tokio::test]
async fn a_failed_attempt_is_retried_on_schedule_and_then_succeeds() {
    let (app, _dispatcher) = app_with_dispatcher().await;
    let t = app.onboard("acme").await;
    let receiver = Receiver::answering(&[500]).await;
    let (endpoint_id, _) = endpoint(&app, &t, &receiver.url, json!(["user.created"])).await;
    create_user(&app, &t, "ada").await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    let gap = got[1].at.duration_since(got[0].at);
    assert!(
        gap >= Duration::from_millis(4400) && gap <= Duration::from_millis(6600),
        "the second attempt follows after 5 s ± jitter, not {gap:?}"
    );
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));

    let message = got[0].header("webhook-id").to_owned();
    let ok = eventually(Duration::from_secs(3), async || {
        let res = app
            .call(
                Method::GET,
                &format!("/api/v1/webhooks/messages/{message}"),
                &t.admin(),
                None,
            )
            .await;
        res.json()["status"] == "succeeded"
    })
    .await;
    assert!(ok, "the message ends succeeded");
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/webhooks/messages/{message}"),
            &t.admin(),
            None,
        )
        .await;
    let detail = res.json();
    let attempts = detail["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2, "{detail}");
    assert_eq!(attempts[0]["status_code"], 500);
    assert_eq!(attempts[0]["attempt"], 1);
    assert_eq!(attempts[0]["response_body"], "thanks");
    assert_eq!(attempts[1]["status_code"], 200);
    assert_eq!(attempts[1]["endpoint_id"], endpoint_id.to_string());
    assert!(attempts[1]["duration_ms"].is_number());

    // Filters of the message list.
    let list = |q: &'static str| {
        let app = &app;
        let auth = t.admin();
        async move {
            app.call(
                Method::GET,
                &format!("/api/v1/webhooks/messages?{q}"),
                &auth,
                None,
            )
            .await
            .json()["items"]
                .as_array()
                .expect("items")
                .len()
        }
    };
    assert_eq!(list("status=succeeded").await, 1);
    assert_eq!(list("status=failed").await, 0);
    assert_eq!(list("event_type=user.created").await, 1);
    assert_eq!(list("event_type=user.deleted").await, 0);
    let res = app
        .call(
            Method::GET,
            "/api/v1/webhooks/messages?status=lost",
            &t.admin(),
            None,
        )
        .await;
    res.assert_problem(422, "VALIDATION_FAILED");
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_emits_webhook_endpoint_disabled() {
    let (app, _dispatcher) = app_with_dispatcher().await;
    let t = app.onboard("acme").await;
    let gone = Receiver::answering(&[410]).await;
    let watcher = Receiver::start().await;
    let (gone_id, _) = endpoint(&app, &t, &gone.url, json!(["user.created"])).await;
    endpoint(&app, &t, &watcher.url, json!(["webhook_endpoint.disabled"])).await;
    create_user(&app, &t, "ada").await;

    let got = watcher.wait_for(1, Duration::from_secs(5)).await;
    let event = got[0].json();
    assert_eq!(event["type"], "webhook_endpoint.disabled");
    assert_eq!(event["data"]["id"], gone_id.to_string());
    assert_eq!(event["data"]["reason"], "gone");
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/webhooks/endpoints/{gone_id}"),
            &t.admin(),
            None,
        )
        .await;
    assert_eq!(res.json()["enabled"], false);
    assert_eq!(res.json()["disabled_reason"], "gone");

    // No retry after 410, and nothing more goes to a disabled endpoint.
    create_user(&app, &t, "grace").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(gone.received().len(), 1);
}

#[tokio::test]
async fn a_rolled_back_change_emits_nothing() {
    let (app, _dispatcher) = app_with_dispatcher().await;
    let t = app.onboard("acme").await;
    let receiver = Receiver::start().await;
    endpoint(&app, &t, &receiver.url, json!(["*"])).await;

    // An event written in a transaction that rolls back leaves no message and no delivery.
    let mut tx = app.scope(t.id).begin().await.expect("begin");
    let written = webhooks::emit(
        &mut tx,
        EventType::UserDeleted,
        json!({"id": Uuid::now_v7()}),
    )
    .await
    .expect("emit");
    assert!(written.is_some(), "the endpoint is subscribed");
    drop(tx);
    // A change refused half-way (the email is taken) emits nothing either.
    create_user(&app, &t, "ada").await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/users",
            &t.admin(),
            Some(json!({"email": "ada@acme.example.com", "password": "a long password"})),
        )
        .await;
    assert_eq!(res.status, 409);

    receiver.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = receiver.received();
    assert_eq!(got.len(), 1, "only the committed change: {got:?}");
    assert_eq!(got[0].json()["type"], "user.created");
    let queued: i64 = sqlx::query_scalar("select count(*) from platform.webhook_queue")
        .fetch_one(app.db())
        .await
        .expect("count");
    assert_eq!(queued, 0);
    let res = app
        .call(Method::GET, "/api/v1/webhooks/messages", &t.admin(), None)
        .await;
    assert_eq!(res.json()["items"].as_array().expect("items").len(), 1);
}

#[tokio::test]
async fn private_and_metadata_targets_are_refused_at_creation_and_at_each_attempt() {
    // Without WEBHOOK_ALLOW_PRIVATE_TARGETS.
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://10.0.0.7/hook",
        "http://[::ffff:192.168.1.1]/",
        "ftp://hooks.example.com/",
    ] {
        let res = app
            .call(
                Method::POST,
                "/api/v1/webhooks/endpoints",
                &t.admin(),
                Some(json!({"url": url, "event_types": ["*"]})),
            )
            .await;
        let problem = res.assert_problem(422, "VALIDATION_FAILED");
        assert_eq!(problem["errors"][0]["field"], "url", "{url}: {problem}");
    }

    // At an attempt, the resolved address is checked again: a name that resolves to
    // loopback is refused before any connection.
    let receiver = Receiver::start().await;
    let strict = WebhookClient::new(TargetRules {
        require_https: false,
        allow_private: false,
    });
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    for url in [by_name.as_str(), receiver.url.as_str()] {
        let err = strict
            .post(url, &[], Bytes::from_static(b"{}"))
            .await
            .expect_err("refused");
        assert!(err.contains("127.0.0.1") || err.contains("::1"), "{err}");
    }
    assert!(receiver.received().is_empty());
    // https is required in production.
    let production = TargetRules {
        require_https: true,
        allow_private: true,
    };
    assert!(
        WebhookClient::new(production)
            .post(&receiver.url, &[], Bytes::from_static(b"{}"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_endpoint_that_hangs_does_not_delay_another_tenants_delivery() {
    let (app, _dispatcher) = app_with_dispatcher().await;
    let slow = app.onboard("slow").await;
    let fast = app.onboard("fast").await;
    let hanging = Receiver::hanging().await;
    let receiver = Receiver::start().await;
    endpoint(&app, &slow, &hanging.url, json!(["*"])).await;
    endpoint(&app, &fast, &receiver.url, json!(["*"])).await;
    // More than the per-endpoint bound of attempts, all hanging.
    for i in 0..20 {
        create_user(&app, &slow, &format!("u{i}")).await;
    }
    hanging.wait_for(8, Duration::from_secs(5)).await;
    let committed = Instant::now();
    create_user(&app, &fast, "ada").await;
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    let waited = got[0].at.duration_since(committed);
    assert!(waited < Duration::from_secs(1), "{waited:?}");
    // The hanging endpoint holds at most its own bound of attempts.
    assert!(
        hanging.received().len() <= 8,
        "{}",
        hanging.received().len()
    );
}

#[tokio::test]
async fn a_manual_retry_replays_with_the_same_webhook_id_and_body() {
    let (app, _dispatcher) = app_with_dispatcher().await;
    let t = app.onboard("acme").await;
    let receiver = Receiver::start().await;
    let (endpoint_id, _) = endpoint(&app, &t, &receiver.url, json!(["*"])).await;
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/endpoints/{endpoint_id}/test"),
            &t.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    let message = res.json()["message_id"].as_str().expect("id").to_owned();
    let first = receiver.wait_for(1, Duration::from_secs(5)).await.remove(0);
    assert_eq!(first.json()["type"], "webhook.test");
    assert_eq!(first.header("webhook-id"), message);

    // Once the attempt is recorded: nothing failed, "retry all failed" has nothing to do.
    let recorded = eventually(Duration::from_secs(3), async || {
        app.call(
            Method::GET,
            &format!("/api/v1/webhooks/messages/{message}"),
            &t.admin(),
            None,
        )
        .await
        .json()["status"]
            == "succeeded"
    })
    .await;
    assert!(recorded);
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/messages/{message}/retry"),
            &t.admin(),
            None,
        )
        .await;
    res.assert_problem(409, "CONFLICT");
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/messages/{message}/retry"),
            &t.admin(),
            Some(json!({"endpoint_id": endpoint_id})),
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    let again = receiver.wait_for(2, Duration::from_secs(5)).await.remove(1);
    assert_eq!(again.header("webhook-id"), first.header("webhook-id"));
    assert_eq!(again.body, first.body);

    let detail = app
        .call(
            Method::GET,
            &format!("/api/v1/webhooks/messages/{message}"),
            &t.admin(),
            None,
        )
        .await
        .json();
    let ok = eventually(Duration::from_secs(3), async || {
        app.call(
            Method::GET,
            &format!("/api/v1/webhooks/messages/{message}"),
            &t.admin(),
            None,
        )
        .await
        .json()["attempts"]
            .as_array()
            .is_some_and(|a| a.len() == 2)
    })
    .await;
    assert!(ok, "{detail}");
    let detail = app
        .call(
            Method::GET,
            &format!("/api/v1/webhooks/messages/{message}"),
            &t.admin(),
            None,
        )
        .await
        .json();
    assert_eq!(detail["attempts"][1]["trigger"], "manual");
}

#[tokio::test]
async fn another_tenants_endpoints_and_messages_answer_404() {
    let (app, _dispatcher) = app_with_dispatcher().await;
    let a = app.onboard("alpha").await;
    let b = app.onboard("bravo").await;
    let receiver = Receiver::start().await;
    let (endpoint_id, _) = endpoint(&app, &a, &receiver.url, json!(["*"])).await;
    create_user(&app, &a, "ada").await;
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    let message = got[0].header("webhook-id").to_owned();

    let stranger = b.admin();
    for (method, path, body) in [
        (
            Method::GET,
            format!("/api/v1/webhooks/endpoints/{endpoint_id}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/webhooks/endpoints/{endpoint_id}"),
            Some(json!({"enabled": false})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/webhooks/endpoints/{endpoint_id}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/webhooks/endpoints/{endpoint_id}/rotate-secret"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/webhooks/endpoints/{endpoint_id}/test"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/webhooks/messages/{message}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/webhooks/messages/{message}/retry"),
            None,
        ),
    ] {
        let res = app.call(method.clone(), &path, &stranger, body).await;
        res.assert_problem(404, "NOT_FOUND");
    }
    for path in ["/api/v1/webhooks/endpoints", "/api/v1/webhooks/messages"] {
        let res = app.call(Method::GET, path, &stranger, None).await;
        assert_eq!(res.json()["items"], json!([]), "{path}");
    }
    // The owner still has it all.
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/webhooks/endpoints/{endpoint_id}"),
            &a.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 200);
}

#[tokio::test]
async fn viewers_read_webhooks_but_only_managers_change_them() {
    let app = TestApp::with_private_webhook_targets().await;
    let t = app.onboard("acme").await;
    let (_, viewer) = app
        .user_with_roles(&t, "viewer@acme.example.com", &["viewer"])
        .await;
    let (_, manager) = app
        .user_with_roles(&t, "manager@acme.example.com", &["manager"])
        .await;
    let body = json!({"url": "http://127.0.0.1:9/hook", "event_types": ["user.created"]});
    let res = app
        .call(
            Method::POST,
            "/api/v1/webhooks/endpoints",
            &viewer,
            Some(body.clone()),
        )
        .await;
    res.assert_problem(403, "FORBIDDEN");
    let res = app
        .call(Method::GET, "/api/v1/webhooks/endpoints", &viewer, None)
        .await;
    assert_eq!(res.status, 200);
    let res = app
        .call(
            Method::POST,
            "/api/v1/webhooks/endpoints",
            &manager,
            Some(body),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    // Unknown event types are refused; the catalog lists each with a schema.
    let res = app
        .call(
            Method::POST,
            "/api/v1/webhooks/endpoints",
            &manager,
            Some(json!({"url": "http://127.0.0.1:9/hook", "event_types": ["user.exploded"]})),
        )
        .await;
    res.assert_problem(422, "VALIDATION_FAILED");
    let catalog = app
        .call(Method::GET, "/api/v1/webhooks/event-types", &viewer, None)
        .await
        .json();
    let items = catalog["items"].as_array().expect("items");
    assert!(items.len() >= 20);
    for item in items {
        assert_eq!(item["schema"]["type"], "object", "{item}");
    }
    // Created and deleted endpoints are in the audit log.
    let audit = app
        .call(
            Method::GET,
            "/api/v1/audit-logs?action=webhook_endpoint.created",
            &t.admin(),
            None,
        )
        .await
        .json();
    assert_eq!(audit["items"].as_array().expect("items").len(), 1);
}

#[tokio::test]
async fn deliveries_are_metered_as_webhooks_delivered() {
    let (app, dispatcher) = app_with_dispatcher().await;
    let t = app.onboard("acme").await;
    let receiver = Receiver::start().await;
    endpoint(&app, &t, &receiver.url, json!(["user.created"])).await;
    create_user(&app, &t, "ada").await;
    create_user(&app, &t, "grace").await;
    receiver.wait_for(2, Duration::from_secs(5)).await;
    // The deliveries are recorded once their attempt is: let it finish, then flush.
    tokio::time::sleep(Duration::from_millis(300)).await;
    dispatcher.shutdown().await;
    app.flush_usage().await;
    let usage = app
        .call(
            Method::GET,
            "/api/v1/usage?metric=webhooks_delivered",
            &t.admin(),
            None,
        )
        .await
        .json();
    assert_eq!(usage["totals"]["webhooks_delivered"], 2, "{usage}");
}

#[tokio::test]
async fn jobs_files_roles_keys_and_tenant_changes_emit_their_events() {
    let (app, _dispatcher) = app_with_dispatcher().await;
    let t = app.onboard("acme").await;
    let receiver = Receiver::start().await;
    endpoint(&app, &t, &receiver.url, json!(["*"])).await;
    let _worker = app.start_worker();
    let admin = t.admin();
    let role = app
        .call(
            Method::POST,
            "/api/v1/roles",
            &admin,
            Some(json!({"name": "auditor", "permissions": ["audit:read"]})),
        )
        .await;
    assert_eq!(role.status, 201, "{}", role.text());
    let key = app
        .call(
            Method::POST,
            "/api/v1/api-keys",
            &admin,
            Some(json!({"name": "ci", "role": "viewer"})),
        )
        .await;
    let key_id = key.json()["id"].as_str().expect("id").to_owned();
    app.call(
        Method::DELETE,
        &format!("/api/v1/api-keys/{key_id}"),
        &admin,
        None,
    )
    .await;
    let job = app
        .call(
            Method::POST,
            "/api/v1/jobs",
            &admin,
            Some(json!({"type": "echo", "payload": {"x": 1}})),
        )
        .await;
    assert_eq!(job.status, 202, "{}", job.text());
    app.call(
        Method::PATCH,
        &format!("/api/v1/tenants/{}", t.id),
        &admin,
        Some(json!({"name": "Acme Corp"})),
    )
    .await;
    let expected = [
        "role.created",
        "api_key.created",
        "api_key.revoked",
        "job.succeeded",
        "tenant.updated",
    ];
    let all = eventually(Duration::from_secs(10), async || {
        let types: Vec<String> = receiver
            .received()
            .iter()
            .map(|r| r.json()["type"].as_str().unwrap_or("").to_owned())
            .collect();
        expected.iter().all(|e| types.iter().any(|t| t == e))
    })
    .await;
    let types: Vec<Value> = receiver
        .received()
        .iter()
        .map(|r| r.json()["type"].clone())
        .collect();
    assert!(all, "{types:?}");
}

/// The `tenantry` binary with this test's database, Redis namespace and loopback targets.
fn process(app: &TestApp) -> tokio::process::Command {
    let mut command = crate::binary::tenantry();
    command
        .env("DATABASE_URL", app.database_url())
        .env("DATABASE_MAX_CONNECTIONS", "5")
        .env("REDIS_URL", &app.state.config.redis.url)
        .env("REDIS_KEY_PREFIX", &app.state.config.redis.key_prefix)
        .env("STORAGE_DIR", app.storage_dir())
        .env("RATE_LIMIT_ENABLED", "false")
        .env("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
}

#[tokio::test]
async fn an_event_committed_by_a_process_killed_at_once_is_delivered_by_another() {
    let app = TestApp::with_private_webhook_targets().await;
    let t = app.onboard("acme").await;
    let receiver = Receiver::start().await;
    endpoint(&app, &t, &receiver.url, json!(["user.created"])).await;

    // The API process commits the change, and dies by SIGKILL before anything else.
    let addr = format!("127.0.0.1:{}", crate::binary::free_port().await);
    let mut api = process(&app)
        .args(["serve", "--no-workers"])
        .env("BIND_ADDR", &addr)
        .spawn()
        .expect("spawn the api");
    crate::binary::wait_ready(&addr).await;
    let login = json!({"tenant": "acme", "email": t.admin_email, "password": t.admin_password});
    let (status, body) =
        crate::binary::http_request(&addr, "POST", "/api/v1/auth/login", &[], Some(&login))
            .await
            .expect("login");
    assert_eq!(status, 200, "{body}");
    let token: Value = serde_json::from_str(&body).expect("json");
    let bearer = format!("Bearer {}", token["access_token"].as_str().expect("token"));
    let user = json!({"email": "ada@acme.example.com", "password": "a long password"});
    let (status, body) = crate::binary::http_request(
        &addr,
        "POST",
        "/api/v1/users",
        &[("Authorization", &bearer)],
        Some(&user),
    )
    .await
    .expect("create a user");
    assert_eq!(status, 201, "{body}");
    api.start_kill().expect("SIGKILL");
    api.wait().await.expect("reaped");
    let created: Value = serde_json::from_str(&body).expect("json");

    // Another process, started afterwards, delivers it.
    let _worker = process(&app)
        .arg("worker")
        .spawn()
        .expect("spawn the worker");
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    let event = got[0].json();
    assert_eq!(event["type"], "user.created");
    assert_eq!(event["data"]["id"], created["id"]);
}

#[tokio::test]
async fn scaling_and_lifecycle_changes_emit_their_events() {
    let (app, _dispatcher) = app_with_dispatcher().await;
    let t = app.onboard("acme").await;
    let receiver = Receiver::start().await;
    endpoint(
        &app,
        &t,
        &receiver.url,
        json!(["scaling.changed", "tenant.suspended", "tenant.activated"]),
    )
    .await;
    // Free plan bounds are 1 to 2: a minimum of 2 moves the capacity from 1 to 2.
    let res = app
        .call(
            Method::PUT,
            "/api/v1/scaling/policy",
            &t.admin(),
            Some(json!({"min_capacity": 2, "max_capacity": 2, "target_rps_per_unit": 50})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    let event = got[0].json();
    assert_eq!(event["type"], "scaling.changed");
    assert_eq!(event["data"]["action"], "scale_up");
    assert_eq!(event["data"]["to_capacity"], 2);

    let platform = app.platform_token().await;
    for action in ["suspend", "activate"] {
        let res = app
            .call(
                Method::POST,
                &format!("/api/v1/tenants/{}/{action}", t.id),
                &platform,
                None,
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.text());
    }
    let got = receiver.wait_for(3, Duration::from_secs(5)).await;
    // Deliveries run concurrently: their order is not the events' order.
    let mut types: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap_or("").to_owned())
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["scaling.changed", "tenant.activated", "tenant.suspended"]
    );
}

#[tokio::test]
async fn a_send_that_fails_for_good_emits_notification_failed() {
    let app = TestApp::builder()
        .with_sns()
        .with_config(|c| {
            c.notifications.sns_email_topic_arn =
                Some("arn:aws:sns:us-east-1:123456789012:no-such-topic".to_owned());
            c.webhooks.allow_private_targets = true;
        })
        .build()
        .await;
    let _dispatcher = Background::start(&app.state, &[Subsystem::Webhooks]);
    let _worker = app.start_worker();
    let t = app.onboard("acme").await;
    let receiver = Receiver::start().await;
    endpoint(&app, &t, &receiver.url, json!(["notification.failed"])).await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/notifications/email",
            &t.admin(),
            Some(json!({"to": "dan@example.com", "subject": "S", "body": "B"})),
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    // The welcome mail of the onboarding fails too (same topic): find this send's event.
    let id = res.json()["id"].clone();
    let arrived = eventually(Duration::from_secs(20), async || {
        receiver
            .received()
            .iter()
            .any(|r| r.json()["data"]["id"] == id)
    })
    .await;
    assert!(arrived, "{:?}", receiver.received());
    let event = receiver
        .received()
        .into_iter()
        .find(|r| r.json()["data"]["id"] == id)
        .expect("the event")
        .json();
    assert_eq!(event["type"], "notification.failed");
    assert_eq!(event["data"]["channel"], "email");
}

#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled() {
    let (app, _dispatcher) = app_with_dispatcher().await;
    let t = app.onboard("acme").await;
    let failing = Receiver::answering(&[503]).await;
    let watcher = Receiver::start().await;
    let (failing_id, _) = endpoint(&app, &t, &failing.url, json!(["user.created"])).await;
    endpoint(&app, &t, &watcher.url, json!(["webhook_endpoint.disabled"])).await;
    // Its attempts have failed since six days ago.
    let schema = tenantry::db::TenantSchema::for_tenant(t.id);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "update {}.webhook_endpoints set failing_since = now() - interval '6 days' where id = $1",
        schema.quoted()
    )))
    .bind(failing_id)
    .execute(app.db())
    .await
    .expect("backdate");
    create_user(&app, &t, "ada").await;
    let got = watcher.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].json()["data"]["reason"], "failing");
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/webhooks/endpoints/{failing_id}"),
            &t.admin(),
            None,
        )
        .await;
    assert_eq!(res.json()["enabled"], false);
    assert_eq!(res.json()["disabled_reason"], "failing");
}

/// Deleting an endpoint while a dispatcher records an attempt to it waits for the
/// dispatcher instead of deadlocking with it: both take the queue row first. (The API
/// fuzzer met a 500 here: the delete took the endpoint and its deliveries, then waited
/// for the queue row the dispatcher held, while the dispatcher waited for a delivery.)
#[tokio::test]
async fn deleting_an_endpoint_during_an_attempt_waits_instead_of_deadlocking() {
    // No dispatcher: the test plays its part, holding the queue row as it does.
    let app = TestApp::with_private_webhook_targets().await;
    let t = app.onboard("acme").await;
    let (id, _) = endpoint(&app, &t, "http://127.0.0.1:9/hook", json!(["*"])).await;
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/endpoints/{id}/test"),
            &t.admin(),
            None,
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());

    // An attempt being recorded: the queue row is locked first (the fence).
    let mut attempt = app.db().begin().await.expect("begin");
    let fenced = sqlx::query(
        "update platform.webhook_queue set attempts = attempts
         where tenant_id = $1 and endpoint_id = $2",
    )
    .bind(t.id)
    .bind(id)
    .execute(&mut *attempt)
    .await
    .expect("fence");
    assert_eq!(fenced.rows_affected(), 1);
    let record = app
        .scope(t.id)
        .sql("update {schema}.webhook_deliveries set updated_at = now() where endpoint_id = $1");
    let db = app.db().clone();
    let dispatcher = async move {
        // Go on only once the delete waits for a lock (the queue row this attempt
        // holds): a fixed pause could let the attempt finish before the delete started,
        // and then no order of locks would deadlock.
        let blocked = async {
            loop {
                let waiting: i64 = sqlx::query_scalar(
                    "select count(*) from pg_stat_activity
                     where datname = current_database() and wait_event_type = 'Lock'",
                )
                .fetch_one(&db)
                .await
                .expect("pg_stat_activity");
                if waiting > 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), blocked)
            .await
            .expect("the delete waits for the queue row the attempt holds");
        let recorded = sqlx::query(record)
            .bind(id)
            .execute(&mut *attempt)
            .await
            .map(|done| done.rows_affected());
        (recorded, attempt.commit().await)
    };
    let path = format!("/api/v1/webhooks/endpoints/{id}");
    let admin = t.admin();
    let delete = app.call(Method::DELETE, &path, &admin, None);
    let (deleted, (recorded, committed)) = tokio::join!(delete, dispatcher);
    assert_eq!(recorded.expect("the attempt is recorded"), 1);
    committed.expect("the attempt commits");
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    app.call(Method::GET, &path, &admin, None)
        .await
        .assert_problem(404, "NOT_FOUND");
}
