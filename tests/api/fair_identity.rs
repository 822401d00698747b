//! Fair sharing, identity side: the platform's own mail (to the stored address only,
//! limited per recipient, in the daily quota, fixed subjects), control characters in
//! names and subjects, platform jobs, reset tokens, operator logins and floods of bad
//! credentials.

use std::{net::SocketAddr, time::Duration};

use axum::{
    body::Body,
    extract::ConnectInfo,
    http::{Method, Request, header},
};
use serde_json::{Value, json};
use tenantry::services::tenants::Plan;
use uuid::Uuid;

use crate::helpers::{Auth, Onboarded, PASSWORD, TestApp, TestResponse, eventually};

/// The messages the `log` backend recorded for `to` with `template`.
fn delivered(app: &TestApp, to: &str, template: &str) -> Vec<String> {
    app.state
        .notifier
        .outbox()
        .expect("log backend")
        .sent_to(to)
        .into_iter()
        .filter(|m| m.template == template)
        .map(|m| m.body)
        .collect()
}

async fn request_reset(app: &TestApp, tenant: &str, email: &str) {
    let res = app
        .post_json(
            "/api/v1/auth/password-reset-request",
            &json!({"tenant": tenant, "email": email}),
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
}

/// The tenant's `notification_logs` rows of `template` (written whether or not a worker
/// runs).
async fn logged(app: &TestApp, tenant: &Onboarded, template: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from {}.notification_logs where template_name = $1",
        tenantry::db::TenantSchema::for_tenant(tenant.id).quoted()
    )))
    .bind(template)
    .fetch_one(app.db())
    .await
    .expect("count log rows")
}

#[tokio::test]
async fn a_reset_for_a_look_alike_address_goes_to_the_stored_address_only() {
    let app = TestApp::new().await;
    let _worker = app.start_worker();
    let acme = app.onboard("acme").await;
    app.user_with_roles(&acme, "victim@gmail.com", &["viewer"])
        .await;
    // U+0130: PostgreSQL's lower() makes it `i`, Rust's makes it `i̇` (another domain).
    let typed = "victim@gma\u{130}l.com";
    request_reset(&app, "acme", typed).await;

    let message = app
        .wait_for_message("victim@gmail.com", "password_reset")
        .await;
    assert!(message.body.contains("token"), "{message:?}");
    assert_eq!(message.to, "victim@gmail.com");
    for look_alike in [typed.to_owned(), typed.to_lowercase()] {
        let outbox = app.state.notifier.outbox().expect("log backend");
        assert!(
            outbox.sent_to(&look_alike).is_empty(),
            "nothing may go to {look_alike}"
        );
    }
}

#[tokio::test]
async fn a_registration_notice_goes_to_the_stored_address_under_a_fixed_subject() {
    let app = TestApp::new().await;
    let _worker = app.start_worker();
    let acme = app.onboard("acme").await;
    let res = app
        .call(
            Method::PATCH,
            &format!("/api/v1/tenants/{}", acme.id),
            &acme.admin(),
            Some(json!({"name": "Free gift cards at evil.example",
                        "settings": {"self_registration": {"enabled": true}}})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    app.user_with_roles(&acme, "victim@gmail.com", &["viewer"])
        .await;
    let res = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"tenant": "acme", "email": "Victim@GMAIL.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let notice = app
        .wait_for_message("victim@gmail.com", "registration_existing_account")
        .await;
    assert_eq!(notice.to, "victim@gmail.com");
    assert_eq!(
        notice.subject, "Someone tried to register with your address",
        "no tenant text in a subject"
    );
}

#[tokio::test]
async fn platform_mail_is_at_most_five_per_recipient_per_hour_and_still_202() {
    let app = TestApp::new().await;
    let _worker = app.start_worker();
    let acme = app.onboard("acme").await;
    // The welcome mail was the first of the admin's five.
    for _ in 0..7 {
        request_reset(&app, "acme", &acme.admin_email).await;
    }
    let four = eventually(Duration::from_secs(10), async || {
        delivered(&app, &acme.admin_email, "password_reset").len() == 4
    })
    .await;
    assert!(four, "four resets after the welcome mail");
    // The requests past the limit leave no row and no mail behind.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(logged(&app, &acme, "password_reset").await, 4);
    assert_eq!(
        delivered(&app, &acme.admin_email, "password_reset").len(),
        4
    );

    // Another recipient has an allowance of its own.
    app.user_with_roles(&acme, "bob@acme.example.com", &["viewer"])
        .await;
    request_reset(&app, "acme", "bob@acme.example.com").await;
    app.wait_for_message("bob@acme.example.com", "password_reset")
        .await;
}

#[tokio::test]
async fn platform_mail_counts_in_the_daily_send_quota() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    // The welcome mail took one of the free plan's 100 sends of the day.
    for _ in 0..99 {
        app.state
            .limits
            .consume_send_quota(acme.id, Plan::Free)
            .await
            .expect("within the quota");
    }
    let send = json!({"to": "someone@example.com", "subject": "Hi", "body": "Hello"});
    app.call(
        Method::POST,
        "/api/v1/notifications/email",
        &acme.admin(),
        Some(send),
    )
    .await
    .assert_problem(429, "RATE_LIMITED");

    // With the quota used up, a reset is accepted (202) and not sent.
    request_reset(&app, "acme", &acme.admin_email).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(logged(&app, &acme, "password_reset").await, 0);
}

#[tokio::test]
async fn platform_mail_subjects_carry_no_tenant_text() {
    let app = TestApp::new().await;
    let _worker = app.start_worker();
    let res = app
        .post_json(
            "/api/v1/tenants",
            &json!({
                "name": "Win a prize at evil.example",
                "slug": "prize",
                "admin": {"email": "admin@prize.example.com", "password": PASSWORD,
                          "first_name": "Click evil.example"},
            }),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let welcome = app
        .wait_for_message("admin@prize.example.com", "welcome")
        .await;
    assert_eq!(welcome.subject, "Welcome to Tenantry");
    assert!(!welcome.body.contains("evil.example"), "{welcome:?}");
}

#[tokio::test]
async fn control_characters_are_refused_in_names_descriptions_and_subjects() {
    let app = TestApp::new().await;
    let res = app
        .post_json(
            "/api/v1/tenants",
            &json!({
                "name": "Acme\r\nBcc: x@example.com",
                "slug": "acme",
                "admin": {"email": "admin@acme.example.com", "password": PASSWORD},
            }),
        )
        .await;
    let problem = res.assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(problem["errors"][0]["field"], "name", "{problem}");
    let res = app
        .post_json(
            "/api/v1/tenants",
            &json!({
                "name": "Acme",
                "slug": "acme",
                "admin": {"email": "admin@acme.example.com", "password": PASSWORD,
                          "last_name": "Smith\u{85}"},
            }),
        )
        .await;
    let problem = res.assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(
        problem["errors"][0]["field"], "admin.last_name",
        "{problem}"
    );

    let acme = app.onboard("acme").await;
    let admin = acme.admin();
    let refused: [(Method, String, Value, &str); 7] = [
        (
            Method::PATCH,
            format!("/api/v1/tenants/{}", acme.id),
            json!({"name": "Acme\u{7f}"}),
            "name",
        ),
        (
            Method::POST,
            "/api/v1/users".to_owned(),
            json!({"email": "bob@acme.example.com", "password": PASSWORD, "first_name": "Bob\u{1b}[31m"}),
            "first_name",
        ),
        (
            Method::POST,
            "/api/v1/roles".to_owned(),
            json!({"name": "support", "description": "line one\nline two", "permissions": []}),
            "description",
        ),
        (
            Method::POST,
            "/api/v1/api-keys".to_owned(),
            json!({"name": "ci\u{0}", "permissions": ["jobs:read"]}),
            "name",
        ),
        (
            Method::POST,
            "/api/v1/notifications/email".to_owned(),
            json!({"to": "x@example.com", "subject": "Hi\r\nBcc: y@example.com", "body": "Hello"}),
            "subject",
        ),
        (
            Method::POST,
            "/api/v1/notifications/templates".to_owned(),
            json!({"name": "t", "channel": "email", "subject": "Hi\r\n", "body": "Hello"}),
            "subject",
        ),
        (
            Method::POST,
            "/api/v1/notifications/push".to_owned(),
            json!({"target": "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/1", "title": "a\tb", "body": "Hello"}),
            "title",
        ),
    ];
    for (method, uri, body, field) in refused {
        let res = app.call(method, &uri, &admin, Some(body.clone())).await;
        // A NUL escape is refused before the rules run, naming the body.
        let problem = res.assert_problem(422, "VALIDATION_FAILED");
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(
            fields.contains(&field) || fields.contains(&"body"),
            "{uri} {body}: {problem}"
        );
    }

    // A template's subject filled in with a variable holding CR/LF.
    let res = app
        .call(
            Method::POST,
            "/api/v1/notifications/templates",
            &admin,
            Some(json!({"name": "hello", "channel": "email", "subject": "Hi {{name}}", "body": "Hello"})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let res = app
        .call(
            Method::POST,
            "/api/v1/notifications/email",
            &admin,
            Some(json!({"to": "x@example.com", "template": "hello",
                        "variables": {"name": "you\r\nBcc: y@example.com"}})),
        )
        .await;
    let problem = res.assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(problem["errors"][0]["field"], "subject", "{problem}");

    // Printable text, accents and all, is fine.
    let res = app
        .call(
            Method::PATCH,
            &format!("/api/v1/tenants/{}", acme.id),
            &admin,
            Some(json!({"name": "Zoë & Co — İstanbul"})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
}

async fn jobs_of_type(app: &TestApp, auth: &Auth, job_type: &str) -> Vec<Value> {
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/jobs?type={job_type}"),
            auth,
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn tenants_cannot_cancel_platform_jobs_whatever_their_state() {
    // No worker: the platform's mail stays queued.
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let (_, developer) = app
        .user_with_roles(&acme, "dev@acme.example.com", &["developer"])
        .await;
    // The welcome mail and the developer's verification mail.
    let platform_jobs = jobs_of_type(&app, &developer, "notification.send").await;
    assert_eq!(platform_jobs.len(), 2, "{platform_jobs:?}");
    for job in &platform_jobs {
        assert_eq!(job["status"], "queued");
        assert_eq!(job["payload"], json!({}), "no token in the listing: {job}");
        assert!(job["result"].is_null());
        for auth in [&developer, &acme.admin()] {
            let res = app
                .call(
                    Method::POST,
                    &format!("/api/v1/jobs/{}/cancel", job["id"].as_str().expect("id")),
                    auth,
                    None,
                )
                .await;
            res.assert_problem(403, "FORBIDDEN");
        }
    }
    // Still queued; a finished one is as much the platform's.
    let id: Uuid = platform_jobs[0]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "update {}.jobs set status = 'succeeded', finished_at = now() where id = $1",
        tenantry::db::TenantSchema::for_tenant(acme.id).quoted()
    )))
    .bind(id)
    .execute(app.db())
    .await
    .expect("finish the job");
    app.call(
        Method::POST,
        &format!("/api/v1/jobs/{id}/cancel"),
        &developer,
        None,
    )
    .await
    .assert_problem(403, "FORBIDDEN");

    // The tenant's own sends stay the tenant's to cancel.
    let res = app
        .call(
            Method::POST,
            "/api/v1/notifications/email",
            &acme.admin(),
            Some(json!({"to": "x@example.com", "subject": "Hi", "body": "Hello"})),
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    let own = res.json()["job_id"].as_str().expect("job id").to_owned();
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/jobs/{own}/cancel"),
            &developer,
            None,
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
}

#[tokio::test]
async fn a_successful_reset_spends_the_users_other_reset_tokens() {
    let app = TestApp::new().await;
    let _worker = app.start_worker();
    let acme = app.onboard("acme").await;
    request_reset(&app, "acme", &acme.admin_email).await;
    request_reset(&app, "acme", &acme.admin_email).await;
    let two = eventually(Duration::from_secs(10), async || {
        delivered(&app, &acme.admin_email, "password_reset").len() == 2
    })
    .await;
    assert!(two, "two reset mails");
    let tokens: Vec<String> = delivered(&app, &acme.admin_email, "password_reset")
        .iter()
        .map(|body| body.split_whitespace().last().expect("token").to_owned())
        .collect();
    let res = app
        .post_json(
            "/api/v1/auth/password-reset",
            &json!({"token": tokens[0], "new_password": "a brand new password"}),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    let problem = app
        .post_json(
            "/api/v1/auth/password-reset",
            &json!({"token": tokens[1], "new_password": "the attacker's password"}),
        )
        .await
        .assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(problem["errors"][0]["field"], "token", "{problem}");
}

async fn admin_login(app: &TestApp, email: &str, password: &str) -> TestResponse {
    app.post_json(
        "/api/v1/admin/login",
        &json!({"email": email, "password": password}),
    )
    .await
}

async fn operator_audit(app: &TestApp, action: &str) -> Vec<(Option<Uuid>, Option<Uuid>, Value)> {
    sqlx::query_as(
        "select tenant_id, actor_id, metadata from platform.audit_logs
         where action = $1 order by id",
    )
    .bind(action)
    .fetch_all(app.db())
    .await
    .expect("platform audit")
}

#[tokio::test]
async fn ten_failed_operator_logins_then_429_each_audited() {
    let app = TestApp::builder().with_rate_limits().build().await;
    app.platform_token().await;
    let email = "ops@platform.example.com";
    for _ in 0..10 {
        admin_login(&app, email, "wrong password")
            .await
            .assert_problem(401, "INVALID_CREDENTIALS");
    }
    let res = admin_login(&app, email, "wrong password").await;
    res.assert_problem(429, "RATE_LIMITED");
    assert_eq!(res.header("ratelimit-policy"), Some("\"login\";q=10;w=900"));
    let retry_after: u64 = res
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((60..=90).contains(&retry_after), "{retry_after}");
    // Locked even with the right password, whatever the case of the address.
    admin_login(&app, "OPS@platform.example.com", PASSWORD)
        .await
        .assert_problem(429, "RATE_LIMITED");

    let failed = operator_audit(&app, "auth.operator_login_failed").await;
    assert_eq!(failed.len(), 12, "{failed:?}");
    assert!(
        failed
            .iter()
            .all(|(tenant, actor, _)| tenant.is_none() && actor.is_some())
    );
    assert_eq!(failed[0].2["reason"], "wrong_password");
    assert_eq!(failed[11].2["reason"], "rate_limited");
    // The first login (platform_token) succeeded and is recorded too.
    assert_eq!(operator_audit(&app, "auth.operator_login").await.len(), 1);
}

#[tokio::test]
async fn every_operator_login_is_in_the_platform_audit_log() {
    let app = TestApp::new().await;
    app.platform_token().await;
    admin_login(&app, "nobody@platform.example.com", "whatever password")
        .await
        .assert_problem(401, "INVALID_CREDENTIALS");
    let ok = operator_audit(&app, "auth.operator_login").await;
    assert_eq!(ok.len(), 1);
    assert!(ok[0].0.is_none() && ok[0].1.is_some(), "{ok:?}");
    let failed = operator_audit(&app, "auth.operator_login_failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].1, None);
    assert_eq!(failed[0].2["reason"], "unknown_operator");
    assert_eq!(failed[0].2["email"], "nobody@platform.example.com");
    let (ip, user_agent): (Option<String>, Option<String>) = sqlx::query_as(
        "select ip, user_agent from platform.audit_logs where action = 'auth.operator_login'",
    )
    .fetch_one(app.db())
    .await
    .expect("entry");
    assert!(
        ip.is_none() && user_agent.is_none(),
        "in-process requests have neither"
    );
}

/// A request from `ip` with `auth`.
async fn from_ip(app: &TestApp, ip: [u8; 4], auth: &Auth) -> TestResponse {
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri("/api/v1/tenants/current");
    builder = match auth {
        Auth::None => builder,
        Auth::Bearer(token) => builder.header(header::AUTHORIZATION, format!("Bearer {token}")),
        Auth::ApiKey(key) => builder.header("x-api-key", key),
    };
    let mut request = builder.body(Body::empty()).expect("request");
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
    app.request(request).await
}

#[tokio::test]
async fn invented_api_keys_from_one_address_meet_429_and_known_keys_keep_working() {
    const PUBLIC: u32 = 20;
    let app = TestApp::builder()
        .with_rate_limits()
        .with_config(|c| c.limits.public_per_minute = PUBLIC)
        .build()
        .await;
    let acme = app.onboard("acme").await;
    let (_, known) = app
        .api_key(&acme, json!({"name": "ci", "permissions": ["tenant:read"]}))
        .await;
    let attacker = [198, 51, 100, 7];
    let mut first_429 = None;
    for i in 0..(PUBLIC + 10) {
        // Well formed, right checksum: each would cost a lookup.
        let invented = Auth::ApiKey(tenantry::auth::api_key::generate("test").plaintext);
        let res = from_ip(&app, attacker, &invented).await;
        match res.status.as_u16() {
            401 => assert!(first_429.is_none(), "401 after a 429 at {i}"),
            429 => {
                res.assert_problem(429, "RATE_LIMITED");
                assert!(res.header("retry-after").is_some());
                first_429.get_or_insert(i);
            }
            other => panic!("unexpected {other}: {}", res.text()),
        }
    }
    let first_429 = first_429.expect("a 429");
    assert!(
        (PUBLIC..=PUBLIC + 1).contains(&first_429),
        "the public bucket's {PUBLIC}, then 429: {first_429}"
    );
    // Bad bearer tokens are charged to the same bucket.
    from_ip(&app, attacker, &Auth::Bearer("not.a.token".into()))
        .await
        .assert_problem(429, "RATE_LIMITED");

    // A known key works from another address, and — once known to this replica — from
    // the refused one as well (an office behind one NAT).
    let res = from_ip(&app, [198, 51, 100, 8], &known).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let res = from_ip(&app, attacker, &known).await;
    assert_eq!(res.status, 200, "{}", res.text());
}
