//! Bounded inputs of the tenant routes: names, settings size and shape, the
//! self-registration setting; and tenant changes recorded in the same transaction.

use axum::http::Method;
use serde_json::{Value, json};

use crate::helpers::{Onboarded, TestApp, TestResponse};

async fn patch(app: &TestApp, acme: &Onboarded, body: Value) -> TestResponse {
    app.call(
        Method::PATCH,
        &format!("/api/v1/tenants/{}", acme.id),
        &acme.admin(),
        Some(body),
    )
    .await
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn tenant_names_and_settings_are_bounded() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;

    let res = patch(&app, &acme, json!({"name": "n".repeat(201)})).await;
    assert_eq!(
        fields(&res.assert_problem(422, "VALIDATION_FAILED")),
        ["name"]
    );
    let res = patch(&app, &acme, json!({"name": "é".repeat(200)})).await;
    assert_eq!(res.status, 200, "200 characters are fine: {}", res.text());

    for settings in [json!([]), json!("dark"), json!(1)] {
        let res = patch(&app, &acme, json!({"settings": settings})).await;
        assert_eq!(
            fields(&res.assert_problem(422, "VALIDATION_FAILED")),
            ["settings"]
        );
    }
    let big = json!({"notes": "x".repeat(16 * 1024)});
    let res = patch(&app, &acme, json!({"settings": big})).await;
    assert_eq!(
        fields(&res.assert_problem(422, "VALIDATION_FAILED")),
        ["settings"]
    );

    let res = patch(
        &app,
        &acme,
        json!({"name": "", "settings": {"self_registration": true}}),
    )
    .await;
    assert_eq!(
        fields(&res.assert_problem(422, "VALIDATION_FAILED")),
        ["name", "settings.self_registration"],
        "every invalid field is named"
    );

    let tenant = app
        .call(Method::GET, "/api/v1/tenants/current", &acme.admin(), None)
        .await
        .json();
    assert_eq!(
        tenant["settings"],
        json!({}),
        "refused changes change nothing"
    );
}

#[tokio::test]
async fn self_registration_must_be_enabled_and_domains() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let field = "settings.self_registration";
    let domains = |n: usize| {
        (0..n)
            .map(|i| format!("d{i}.example.com"))
            .collect::<Vec<_>>()
    };
    for (bad, expected) in [
        (json!(true), field.to_owned()),
        (json!({}), field.to_owned()),
        (json!({"enabled": "yes"}), field.to_owned()),
        (json!({"enabled": true, "extra": 1}), field.to_owned()),
        (
            json!({"enabled": true, "allowed_email_domains": "example.com"}),
            field.to_owned(),
        ),
        (
            json!({"enabled": true, "allowed_email_domains": domains(101)}),
            format!("{field}.allowed_email_domains"),
        ),
        (
            json!({"enabled": true, "allowed_email_domains": ["example.com", "not a domain"]}),
            format!("{field}.allowed_email_domains[1]"),
        ),
        (
            json!({"enabled": true, "allowed_email_domains": ["localhost"]}),
            format!("{field}.allowed_email_domains[0]"),
        ),
    ] {
        let res = patch(&app, &acme, json!({"settings": {"self_registration": bad}})).await;
        let problem = res.assert_problem(422, "VALIDATION_FAILED");
        assert_eq!(fields(&problem), [expected], "{bad}");
    }

    let settings = json!({
        "self_registration": {"enabled": true, "allowed_email_domains": domains(100)},
        "theme": "dark",
    });
    let res = patch(&app, &acme, json!({"settings": settings})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["settings"], settings, "stored as given");
    let res = patch(
        &app,
        &acme,
        json!({"settings": {"self_registration": null}}),
    )
    .await;
    assert_eq!(
        res.status,
        200,
        "null is the same as absent: {}",
        res.text()
    );
}

#[tokio::test]
async fn onboarding_bounds_the_admins_names() {
    let app = TestApp::new().await;
    let res = app
        .post_json(
            "/api/v1/tenants",
            &json!({"name": "Acme", "slug": "acme", "admin": {
                "email": "a@acme.example.com", "password": crate::helpers::PASSWORD,
                "first_name": "f".repeat(201), "last_name": "l".repeat(201)}}),
        )
        .await;
    let problem = res.assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(fields(&problem), ["admin.first_name", "admin.last_name"]);
}

#[tokio::test]
async fn a_tenant_change_is_not_applied_when_its_audit_entry_cannot_be_written() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let platform = app.platform_token().await;
    // Break the tenant's audit log: the change and its record commit together or not at all.
    sqlx::query(
        app.scope(acme.id).sql(
            "alter table {schema}.audit_logs add constraint no_writes check (false) not valid",
        ),
    )
    .execute(app.db())
    .await
    .expect("sabotage");

    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/tenants/{}/suspend", acme.id),
            &platform,
            None,
        )
        .await;
    assert_eq!(res.status, 500, "{}", res.text());
    let res = patch(&app, &acme, json!({"name": "Renamed"})).await;
    assert_eq!(res.status, 500, "{}", res.text());

    let (status, name): (String, String) =
        sqlx::query_as("select status, name from platform.tenants where id = $1")
            .bind(acme.id)
            .fetch_one(app.db())
            .await
            .expect("tenant");
    assert_eq!((status.as_str(), name.as_str()), ("active", "Tenant acme"));
}

#[tokio::test]
async fn suspend_and_activate_are_audited_in_the_tenants_log() {
    let app = TestApp::new().await;
    let acme = app.onboard("acme").await;
    let platform = app.platform_token().await;
    for action in ["suspend", "activate"] {
        let res = app
            .call(
                Method::POST,
                &format!("/api/v1/tenants/{}/{action}", acme.id),
                &platform,
                None,
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.text());
    }
    let logs = app
        .call(Method::GET, "/api/v1/audit-logs", &acme.admin(), None)
        .await
        .json();
    let actions: Vec<&str> = logs["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("tenant.") && *a != "tenant.created")
        .collect();
    assert_eq!(actions, ["tenant.activated", "tenant.suspended"]);
}
