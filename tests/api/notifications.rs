//! Notifications: sends through the `log` and SNS (moto) backends, retries, templates,
//! validation, the send quota, tenant isolation and permissions.

use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Auth, Onboarded, TestApp, TestResponse, moto_sns_data, sns_client};

async fn post(app: &TestApp, auth: &Auth, path: &str, body: Value) -> TestResponse {
    app.call(
        Method::POST,
        &format!("/api/v1/notifications/{path}"),
        auth,
        Some(body),
    )
    .await
}

/// Sends and checks the 202 answer; returns the log id.
async fn send(app: &TestApp, auth: &Auth, path: &str, body: Value) -> Uuid {
    let res = post(app, auth, path, body).await;
    assert_eq!(res.status, 202, "{}", res.text());
    let body = res.json();
    assert_eq!(body["status"], "queued");
    assert!(body["job_id"].is_string(), "{body}");
    body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id")
}

async fn history(app: &TestApp, auth: &Auth, query: &str) -> Vec<Value> {
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/notifications/history{query}"),
            auth,
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["items"].as_array().cloned().expect("items")
}

/// The history entry of `id` once it is no longer `queued` (up to 15 s).
async fn settled(app: &TestApp, auth: &Auth, id: Uuid) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        if let Some(entry) = history(app, auth, "?limit=100")
            .await
            .into_iter()
            .find(|e| e["id"] == id.to_string())
        {
            if entry["status"] != "queued" {
                return entry;
            }
            last = entry;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the send never settled: {last}");
}

async fn create_template(app: &TestApp, auth: &Auth, body: Value) -> TestResponse {
    app.call(
        Method::POST,
        "/api/v1/notifications/templates",
        auth,
        Some(body),
    )
    .await
}

fn field_errors(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn email_sms_and_push_are_queued_then_sent_and_shown_in_the_history() {
    let app = TestApp::new().await;
    let _worker = app.start_worker();
    let t = app.onboard("acme").await;
    let email = send(
        &app,
        &t.admin(),
        "email",
        json!({"to": "Bob@Example.com", "subject": "Hi", "body": "Hello Bob"}),
    )
    .await;
    let sms = send(
        &app,
        &t.admin(),
        "sms",
        json!({"to": "+15551234567", "body": "Your code is 1234"}),
    )
    .await;
    let target = "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/0b1c";
    let push = send(
        &app,
        &t.admin(),
        "push",
        json!({"target": target, "title": "Ping", "body": "You have mail", "data": {"n": 1}}),
    )
    .await;

    for (id, channel, recipient) in [
        (email, "email", "bob@example.com"),
        (sms, "sms", "+15551234567"),
        (push, "push", target),
    ] {
        let entry = settled(&app, &t.admin(), id).await;
        assert_eq!(entry["status"], "sent", "{entry}");
        assert_eq!(entry["channel"], channel);
        assert_eq!(entry["recipient"], recipient);
        assert_eq!(entry["provider_message_id"], format!("log-{id}"));
        assert_eq!(entry["created_by"], t.admin_id.to_string());
        assert!(entry["sent_at"].is_string(), "{entry}");
        assert!(entry.get("body").is_none(), "no content in the history");
    }
    // Each delivery is metered: the welcome email of onboarding and these three.
    let welcome = history(&app, &t.admin(), "?channel=email&limit=100")
        .await
        .into_iter()
        .find(|e| e["template_name"] == "welcome")
        .and_then(|e| e["id"].as_str().and_then(|s| s.parse().ok()))
        .expect("the welcome email");
    assert_eq!(settled(&app, &t.admin(), welcome).await["status"], "sent");
    app.flush_usage().await;
    let usage = app
        .call(
            Method::GET,
            "/api/v1/usage?metric=notifications_sent&granularity=day",
            &t.admin(),
            None,
        )
        .await;
    assert_eq!(
        usage.json()["totals"]["notifications_sent"],
        4,
        "{}",
        usage.text()
    );
    let outbox = app.state.notifier.outbox().expect("log backend");
    let delivered = &outbox.sent_to("bob@example.com")[0];
    assert_eq!(
        (delivered.subject.as_str(), delivered.body.as_str()),
        ("Hi", "Hello Bob")
    );

    // Filters: the welcome email of onboarding is there too.
    let sms_only = history(&app, &t.admin(), "?channel=sms").await;
    assert_eq!(sms_only.len(), 1);
    let emails = history(&app, &t.admin(), "?channel=email&status=sent").await;
    assert_eq!(emails.len(), 2, "{emails:?}");
    assert!(emails.iter().any(|e| e["template_name"] == "welcome"));
    assert!(history(&app, &t.admin(), "?status=failed").await.is_empty());
    let page = history(&app, &t.admin(), "?limit=2").await;
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["id"], push.to_string(), "newest first");
    let res = app
        .call(
            Method::GET,
            "/api/v1/notifications/history?channel=fax&status=lost",
            &t.admin(),
            None,
        )
        .await;
    let problem = res.assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(field_errors(&problem), ["channel", "status"]);
}

#[tokio::test]
async fn a_retried_job_does_not_deliver_again_and_the_content_leaves_the_job() {
    let app = TestApp::new().await;
    let _worker = app.start_worker();
    let t = app.onboard("acme").await;
    let res = post(
        &app,
        &t.admin(),
        "email",
        json!({"to": "once@example.com", "subject": "S", "body": "secret content"}),
    )
    .await;
    assert_eq!(res.status, 202, "{}", res.text());
    let (id, job_id): (Uuid, Uuid) = (
        res.json()["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("id"),
        res.json()["job_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("job id"),
    );
    assert_eq!(settled(&app, &t.admin(), id).await["status"], "sent");
    let scope = app.scope(t.id);
    let payload: Value =
        sqlx::query_scalar(scope.sql("select payload from {schema}.jobs where id = $1"))
            .bind(job_id)
            .fetch_one(app.db())
            .await
            .expect("payload");
    assert!(
        !payload.to_string().contains("secret content"),
        "the body is removed once sent: {payload}"
    );

    // As if the worker had died after the delivery: the job runs again.
    sqlx::query(scope.sql(
        "update {schema}.jobs set status = 'queued', finished_at = null, max_attempts = 5
         where id = $1",
    ))
    .bind(job_id)
    .execute(app.db())
    .await
    .expect("requeue");
    let message = tenantry::jobs::JobMessage::row(t.id, job_id, tenantry::jobs::Lane::Platform);
    tenantry::services::jobs::enqueue(&app.state.jobs, message).await;
    let mut finished = false;
    for _ in 0..200 {
        let status: String =
            sqlx::query_scalar(scope.sql("select status from {schema}.jobs where id = $1"))
                .bind(job_id)
                .fetch_one(app.db())
                .await
                .expect("status");
        if status == "succeeded" {
            finished = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(finished, "the job ran again");
    let outbox = app.state.notifier.outbox().expect("log backend");
    assert_eq!(
        outbox.sent_to("once@example.com").len(),
        1,
        "delivered once"
    );
}

#[tokio::test]
async fn the_sns_backend_publishes_email_sms_and_push_to_sns() {
    let app = TestApp::builder().with_sns().build().await;
    let _worker = app.start_worker();
    let t = app.onboard("acme").await;
    let sns = sns_client().await;
    let application = sns
        .create_platform_application()
        .name(format!("app-{}", Uuid::new_v4().simple()))
        .platform("GCM")
        .attributes("PlatformCredential", "test")
        .send()
        .await
        .expect("platform application");
    let endpoint = sns
        .create_platform_endpoint()
        .platform_application_arn(application.platform_application_arn().expect("arn"))
        .token(format!("device-{}", Uuid::new_v4().simple()))
        .send()
        .await
        .expect("endpoint")
        .endpoint_arn()
        .expect("arn")
        .to_owned();
    let phone = format!("+1555{:07}", Uuid::new_v4().as_u128() % 10_000_000);

    let email = send(
        &app,
        &t.admin(),
        "email",
        json!({"to": "carol@example.com", "subject": "Report", "body": "It is ready"}),
    )
    .await;
    let sms = send(
        &app,
        &t.admin(),
        "sms",
        json!({"to": phone, "body": "code 9876"}),
    )
    .await;
    let push = send(
        &app,
        &t.admin(),
        "push",
        json!({"target": endpoint, "title": "New", "body": "A message", "data": {"k": "v"}}),
    )
    .await;
    let mut ids = Vec::new();
    for id in [email, sms, push] {
        let entry = settled(&app, &t.admin(), id).await;
        assert_eq!(entry["status"], "sent", "{entry}");
        ids.push(
            entry["provider_message_id"]
                .as_str()
                .expect("message id")
                .to_owned(),
        );
    }

    let data = moto_sns_data().await;
    let topic_arn = app
        .state
        .config
        .notifications
        .sns_email_topic_arn
        .clone()
        .expect("topic");
    let topic = data["Topic"]
        .as_array()
        .and_then(|topics| topics.iter().find(|t| t["arn"] == topic_arn.as_str()))
        .expect("the test's topic");
    // [message id, message, subject, attributes, group id]
    let sent = topic["sent_notifications"]
        .as_array()
        .and_then(|sent| sent.iter().find(|n| n[0] == ids[0].as_str()))
        .expect("the email was published to the topic");
    assert_eq!(sent[1], "It is ready");
    assert_eq!(sent[3]["recipient"]["Value"], "carol@example.com");
    assert_eq!(sent[3]["subject"]["Value"], "Report");
    assert_eq!(
        sent[3]["from"]["Value"],
        app.state.config.notifications.from_email.as_str()
    );
    let welcome = topic["sent_notifications"]
        .as_array()
        .expect("sent")
        .iter()
        .any(|n| n[3]["recipient"]["Value"] == "admin@acme.example.com");
    assert!(welcome, "identity emails go through SNS too");

    let text = data["SMS"]
        .as_array()
        .and_then(|sms| sms.iter().find(|s| s["message_id"] == ids[1].as_str()))
        .expect("the SMS was published");
    assert_eq!(text["phone_number"], phone.as_str());
    assert_eq!(text["message"], "code 9876");

    let device = data["PlatformEndpoint"]
        .as_array()
        .and_then(|eps| eps.iter().find(|e| e["arn"] == endpoint.as_str()))
        .expect("the endpoint");
    let message: Value = serde_json::from_str(
        device["messages"][ids[2].as_str()]
            .as_str()
            .expect("the push was published"),
    )
    .expect("a JSON message");
    assert_eq!(
        message,
        json!({"title": "New", "body": "A message", "data": {"k": "v"}})
    );
}

#[tokio::test]
async fn a_failing_sns_call_is_retried_and_finally_logged_failed() {
    let app = TestApp::builder()
        .with_sns()
        .with_config(|c| {
            c.notifications.sns_email_topic_arn =
                Some("arn:aws:sns:us-east-1:123456789012:no-such-topic".to_owned())
        })
        .build()
        .await;
    let _worker = app.start_worker();
    let t = app.onboard("acme").await;
    let res = post(
        &app,
        &t.admin(),
        "email",
        json!({"to": "dan@example.com", "subject": "S", "body": "B"}),
    )
    .await;
    assert_eq!(res.status, 202, "{}", res.text());
    let id: Uuid = res.json()["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    let job_id = res.json()["job_id"].as_str().expect("job").to_owned();
    let entry = settled(&app, &t.admin(), id).await;
    assert_eq!(entry["status"], "failed", "{entry}");
    assert!(entry["provider_message_id"].is_null());
    assert!(entry["sent_at"].is_null());
    let error = entry["error"].as_str().expect("error");
    assert!(
        error.contains("NotFound") || error.contains("not exist"),
        "{error}"
    );
    // The log row is written by the job's last attempt; the job's own row a moment after.
    let mut job = Value::Null;
    for _ in 0..200 {
        job = app
            .call(
                Method::GET,
                &format!("/api/v1/jobs/{job_id}"),
                &t.admin(),
                None,
            )
            .await
            .json();
        if job["status"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["attempts"], 3, "retried until the last attempt");
}

#[tokio::test]
async fn templates_are_managed_and_filled_with_literal_values() {
    let app = TestApp::new().await;
    let _worker = app.start_worker();
    let t = app.onboard("acme").await;
    let res = create_template(
        &app,
        &t.admin(),
        json!({"name": "order.shipped", "channel": "email",
               "subject": "Order {{order}} shipped", "body": "Hello {{ name }}, order {{order}} is on its way."}),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let template = res.json();
    let id = template["id"].as_str().expect("id").to_owned();
    assert_eq!(template["channel"], "email");
    create_template(
        &app,
        &t.admin(),
        json!({"name": "order.shipped", "channel": "sms", "body": "x"}),
    )
    .await
    .assert_problem(409, "CONFLICT");
    let res = create_template(
        &app,
        &t.admin(),
        json!({"name": "code", "channel": "sms", "body": "Code {{code}}"}),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let problem = create_template(
        &app,
        &t.admin(),
        json!({"name": "Bad Name", "channel": "email", "body": "Hi {{ first name }}"}),
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(field_errors(&problem), ["name"]);
    let problem = create_template(
        &app,
        &t.admin(),
        json!({"name": "typo", "channel": "sms", "subject": "no", "body": "Hi {{ first name }}"}),
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(field_errors(&problem), ["body", "subject"]);

    // A value holding a placeholder is inserted as it is, not expanded.
    let sent = send(
        &app,
        &t.admin(),
        "email",
        json!({"to": "eve@example.com", "template": "order.shipped",
               "variables": {"name": "{{order}}", "order": 42}}),
    )
    .await;
    assert_eq!(
        settled(&app, &t.admin(), sent).await["template_name"],
        "order.shipped"
    );
    let message = app
        .wait_for_message("eve@example.com", "order.shipped")
        .await;
    assert_eq!(message.subject, "Order 42 shipped");
    assert_eq!(message.body, "Hello {{order}}, order 42 is on its way.");

    let problem = post(
        &app,
        &t.admin(),
        "email",
        json!({"to": "eve@example.com", "template": "order.shipped", "variables": {"name": "x"}}),
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(field_errors(&problem), ["variables.order"]);
    let problem = post(
        &app,
        &t.admin(),
        "email",
        json!({"to": "eve@example.com", "template": "code", "variables": {"code": 1}}),
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(
        field_errors(&problem),
        ["template"],
        "an sms template on the email route"
    );
    let problem = post(
        &app,
        &t.admin(),
        "sms",
        json!({"to": "+15551234567", "template": "nope"}),
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(field_errors(&problem), ["template"]);
    let sms = send(
        &app,
        &t.admin(),
        "sms",
        json!({"to": "+15557654321", "template": "code", "variables": {"code": "<b>7</b>"}}),
    )
    .await;
    assert_eq!(settled(&app, &t.admin(), sms).await["status"], "sent");
    assert_eq!(
        app.wait_for_message("+15557654321", "code").await.body,
        "Code <b>7</b>"
    );

    // Read, list, replace, delete.
    let uri = format!("/api/v1/notifications/templates/{id}");
    let got = app.call(Method::GET, &uri, &t.admin(), None).await;
    assert_eq!(got.json()["name"], "order.shipped");
    let list = app
        .call(
            Method::GET,
            "/api/v1/notifications/templates?limit=1",
            &t.admin(),
            None,
        )
        .await
        .json();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert!(list["next_cursor"].is_string(), "{list}");
    let sms_only = app
        .call(
            Method::GET,
            "/api/v1/notifications/templates?channel=sms",
            &t.admin(),
            None,
        )
        .await
        .json();
    assert_eq!(sms_only["items"][0]["name"], "code");
    let replaced = app
        .call(
            Method::PUT,
            &uri,
            &t.admin(),
            Some(json!({"name": "order.sent", "channel": "email", "body": "Sent {{order}}"})),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text());
    assert_eq!(replaced.json()["name"], "order.sent");
    assert!(replaced.json()["subject"].is_null());
    app.call(
        Method::PUT,
        &uri,
        &t.admin(),
        Some(json!({"name": "code", "channel": "email", "body": "x"})),
    )
    .await
    .assert_problem(409, "CONFLICT");
    let deleted = app.call(Method::DELETE, &uri, &t.admin(), None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    app.call(Method::GET, &uri, &t.admin(), None)
        .await
        .assert_problem(404, "NOT_FOUND");

    let audit = app
        .call(
            Method::GET,
            "/api/v1/audit-logs?limit=100",
            &t.admin(),
            None,
        )
        .await
        .text();
    for action in [
        "notification_template.created",
        "notification_template.updated",
        "notification_template.deleted",
    ] {
        assert!(audit.contains(action), "{action} is audited");
    }
}

#[tokio::test]
async fn bad_recipients_and_missing_content_are_422() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let admin = t.admin();
    let cases = [
        ("email", json!({"to": "not-an-address", "body": "x"}), "to"),
        ("email", json!({"to": "a@b.example.com"}), "body"),
        (
            "email",
            json!({"to": "a@b.example.com", "body": "x", "template": "t"}),
            "template",
        ),
        (
            "email",
            json!({"to": "a@b.example.com", "body": "  "}),
            "body",
        ),
        ("sms", json!({"to": "5551234567", "body": "x"}), "to"),
        ("sms", json!({"to": "+05551234567", "body": "x"}), "to"),
        ("sms", json!({"to": "+1234567890123456", "body": "x"}), "to"),
        (
            "sms",
            json!({"to": "+15551234567", "body": "x".repeat(1601)}),
            "body",
        ),
        (
            "push",
            json!({"target": "arn:aws:sns:us-east-1:123456789012:my-topic", "body": "x"}),
            "target",
        ),
        (
            "push",
            json!({"target": "device-token", "body": "x"}),
            "target",
        ),
        (
            "push",
            json!({"target": "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/1", "body": "x", "data": [1]}),
            "data",
        ),
        (
            "email",
            json!({"to": "a@b.example.com", "template": "welcome", "variables": {"x": {"y": 1}}}),
            "variables.x",
        ),
    ];
    for (path, body, field) in cases {
        let problem = post(&app, &admin, path, body.clone())
            .await
            .assert_problem(422, "VALIDATION_FAILED");
        assert!(
            field_errors(&problem).contains(&field.to_owned()),
            "{path} {body}: {problem}"
        );
    }
    assert!(
        history(&app, &admin, "?channel=sms").await.is_empty(),
        "nothing was queued"
    );
}

#[tokio::test]
async fn a_used_up_daily_quota_is_429() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    // The free plan's 100 sends of today, used up.
    let key = format!(
        "{}rl:quota:send:{}:{}",
        app.state.config.redis.key_prefix,
        t.id.simple(),
        chrono::Utc::now().format("%Y%m%d")
    );
    let mut redis = app.state.redis.clone();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(100)
        .query_async(&mut redis)
        .await
        .expect("set the counter");
    let res = post(
        &app,
        &t.admin(),
        "sms",
        json!({"to": "+15551234567", "body": "x"}),
    )
    .await;
    res.assert_problem(429, "RATE_LIMITED");
    assert!(res.header("retry-after").is_some());
    assert!(history(&app, &t.admin(), "?channel=sms").await.is_empty());
    // Another tenant's quota is its own.
    let other = app.onboard("other").await;
    send(
        &app,
        &other.admin(),
        "sms",
        json!({"to": "+15551234567", "body": "x"}),
    )
    .await;
}

async fn template_of(app: &TestApp, t: &Onboarded) -> String {
    let res = create_template(
        app,
        &t.admin(),
        json!({"name": "mine", "channel": "sms", "body": "hi"}),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn another_tenants_templates_and_sends_are_out_of_reach() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let globex = app.onboard("globex").await;
    let acme_template = template_of(&app, &acme).await;
    let sent = send(
        &app,
        &acme.admin(),
        "sms",
        json!({"to": "+15551112222", "template": "mine"}),
    )
    .await;
    let (_, globex_key) = app
        .api_key(
            &globex,
            json!({"name": "ci", "permissions": ["notifications:*"]}),
        )
        .await;
    let uri = format!("/api/v1/notifications/templates/{acme_template}");
    for auth in [globex.admin(), globex_key] {
        app.call(Method::GET, &uri, &auth, None)
            .await
            .assert_problem(404, "NOT_FOUND");
        app.call(
            Method::PUT,
            &uri,
            &auth,
            Some(json!({"name": "stolen", "channel": "sms", "body": "x"})),
        )
        .await
        .assert_problem(404, "NOT_FOUND");
        app.call(Method::DELETE, &uri, &auth, None)
            .await
            .assert_problem(404, "NOT_FOUND");
        let listed = app
            .call(Method::GET, "/api/v1/notifications/templates", &auth, None)
            .await;
        assert!(!listed.text().contains(&acme_template), "{}", listed.text());
        let seen = history(&app, &auth, "?limit=100").await;
        assert!(
            seen.iter().all(|e| e["id"] != sent.to_string()),
            "acme's send is not in globex's history"
        );
        // Acme's template name means nothing in globex.
        let problem = post(
            &app,
            &auth,
            "sms",
            json!({"to": "+15551112222", "template": "mine"}),
        )
        .await
        .assert_problem(422, "VALIDATION_FAILED");
        assert_eq!(field_errors(&problem), ["template"]);
    }
    // Acme's template is untouched.
    let got = app.call(Method::GET, &uri, &acme.admin(), None).await;
    assert_eq!(got.json()["name"], "mine");
}

#[tokio::test]
async fn sending_and_managing_templates_need_their_permissions() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let template = template_of(&app, &t).await;
    let (_, viewer) = app
        .user_with_roles(&t, "viewer@acme.example.com", &["viewer"])
        .await;
    let (_, reader_key) = app
        .api_key(
            &t,
            json!({"name": "reader", "permissions": ["notifications:read"]}),
        )
        .await;
    for auth in [viewer, reader_key] {
        for (path, body) in [
            ("email", json!({"to": "a@b.example.com", "body": "x"})),
            ("sms", json!({"to": "+15551234567", "body": "x"})),
            (
                "push",
                json!({"target": "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/1", "body": "x"}),
            ),
        ] {
            post(&app, &auth, path, body)
                .await
                .assert_problem(403, "FORBIDDEN");
        }
        create_template(
            &app,
            &auth,
            json!({"name": "x", "channel": "sms", "body": "x"}),
        )
        .await
        .assert_problem(403, "FORBIDDEN");
        let uri = format!("/api/v1/notifications/templates/{template}");
        app.call(
            Method::PUT,
            &uri,
            &auth,
            Some(json!({"name": "x", "channel": "sms", "body": "x"})),
        )
        .await
        .assert_problem(403, "FORBIDDEN");
        app.call(Method::DELETE, &uri, &auth, None)
            .await
            .assert_problem(403, "FORBIDDEN");
        // Reading is allowed.
        assert_eq!(app.call(Method::GET, &uri, &auth, None).await.status, 200);
        history(&app, &auth, "").await;
    }
    let (_, no_read) = app
        .api_key(
            &t,
            json!({"name": "other", "permissions": ["resources:read"]}),
        )
        .await;
    app.call(Method::GET, "/api/v1/notifications/history", &no_read, None)
        .await
        .assert_problem(403, "FORBIDDEN");
}

/// The peak resident memory of this test process (nextest runs each test in its own).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn a_template_that_multiplies_its_variables_is_refused_before_rendering() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let admin = t.admin();
    // 13,000 placeholders: refused when the template is saved.
    let problem = create_template(
        &app,
        &admin,
        json!({"name": "bomb", "channel": "email", "subject": "s", "body": "{{a}}".repeat(13_000)}),
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(field_errors(&problem), ["body"], "{problem}");
    assert!(problem.to_string().contains("at most 100"), "{problem}");
    // 100 in the subject and body together is the limit.
    let res = create_template(
        &app,
        &admin,
        json!({"name": "hundred", "channel": "email", "subject": "{{a}}", "body": "{{a}}".repeat(99)}),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());
    create_template(
        &app,
        &admin,
        json!({"name": "more", "channel": "email", "subject": "{{a}}{{a}}", "body": "{{a}}".repeat(99)}),
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");

    // A value over 16 KiB is refused, whatever the template.
    let problem = post(
        &app,
        &admin,
        "email",
        json!({"to": "eve@example.com", "template": "hundred", "variables": {"a": "x".repeat(40_000)}}),
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(field_errors(&problem), ["variables.a"], "{problem}");

    // 100 × 16 KiB would be 1.6 MB, past the 256 KiB of an email body.
    let problem = post(
        &app,
        &admin,
        "email",
        json!({"to": "eve@example.com", "template": "hundred", "variables": {"a": "x".repeat(16 * 1024)}}),
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
    assert!(
        field_errors(&problem).contains(&"body".to_owned()),
        "{problem}"
    );
    assert!(problem.to_string().contains("262144 bytes"), "{problem}");

    // A template stored before the placeholder limit (13,000 `{{a}}`) sent with the
    // largest value: rendered, it would be 213 MB; it is measured and refused instead.
    let scope = app.scope(t.id);
    sqlx::query(scope.sql(
        "insert into {schema}.notification_templates (id, name, channel, subject, body)
         values ($1, 'legacy', 'email', $2, $3)",
    ))
    .bind(Uuid::now_v7())
    .bind("{{a}}".repeat(40))
    .bind("{{a}}".repeat(13_000))
    .execute(app.db())
    .await
    .expect("a legacy template");
    let before = peak_rss_kib();
    let started = std::time::Instant::now();
    let problem = post(
        &app,
        &admin,
        "email",
        json!({"to": "eve@example.com", "template": "legacy", "variables": {"a": "x".repeat(16 * 1024)}}),
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
    let elapsed = started.elapsed();
    let grown_kib = peak_rss_kib().saturating_sub(before);
    assert_eq!(field_errors(&problem), ["subject", "body"], "{problem}");
    assert!(elapsed < Duration::from_millis(500), "took {elapsed:?}");
    assert!(grown_kib < 16 * 1024, "the peak grew by {grown_kib} KiB");

    // SMS counts characters, push bytes.
    let res = create_template(
        &app,
        &admin,
        json!({"name": "sms.many", "channel": "sms", "body": "{{a}}{{a}}"}),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let problem = post(
        &app,
        &admin,
        "sms",
        json!({"to": "+15551234567", "template": "sms.many", "variables": {"a": "é".repeat(801)}}),
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
    assert!(problem.to_string().contains("1602 characters"), "{problem}");
    send(
        &app,
        &admin,
        "sms",
        json!({"to": "+15551234567", "template": "sms.many", "variables": {"a": "é".repeat(800)}}),
    )
    .await;
    let target = "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/1";
    post(
        &app,
        &admin,
        "push",
        json!({"target": target, "body": "x".repeat(4097)}),
    )
    .await
    .assert_problem(422, "VALIDATION_FAILED");
    send(
        &app,
        &admin,
        "push",
        json!({"target": target, "body": "x".repeat(4096)}),
    )
    .await;
    let emails = history(&app, &admin, "?channel=email").await;
    assert!(
        !emails
            .iter()
            .any(|e| e["template_name"] == "hundred" || e["template_name"] == "legacy"),
        "no refused email was queued: {emails:?}"
    );
}
