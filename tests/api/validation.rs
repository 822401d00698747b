//! Bounded inputs: the rules declared on the request types answer 422 naming every broken
//! field, accept values at the bound, and are stated in the OpenAPI document.

use axum::http::Method;
use serde_json::{Value, json};

use crate::helpers::{Auth, PASSWORD, TestApp, TestResponse};

/// The `errors[].field` of a 422, in order.
fn fields(res: &TestResponse) -> Vec<String> {
    res.assert_problem(422, "VALIDATION_FAILED")["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect()
}

fn roles(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("role-{i}")).collect()
}

#[tokio::test]
async fn over_long_names_descriptions_and_lists_are_422_naming_the_field() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let admin = t.admin();
    let post = |path: &'static str, body: Value| app.call(Method::POST, path, &admin, Some(body));

    let res = post("/api/v1/resources", json!({"name": "x".repeat(201)})).await;
    assert_eq!(fields(&res), ["name"]);
    assert_eq!(
        res.json()["errors"][0]["message"],
        "must be at most 200 characters"
    );

    let res = post(
        "/api/v1/roles",
        json!({"name": "support", "description": "d".repeat(1001)}),
    )
    .await;
    assert_eq!(fields(&res), ["description"]);

    let many: Vec<&str> = ["users:read"; 101].to_vec();
    let res = post(
        "/api/v1/roles",
        json!({"name": "support", "permissions": many}),
    )
    .await;
    assert_eq!(fields(&res), ["permissions"]);
    assert_eq!(
        res.json()["errors"][0]["message"],
        "must have at most 100 items"
    );

    let res = post(
        "/api/v1/api-keys",
        json!({"name": "k".repeat(101), "permissions": many}),
    )
    .await;
    assert_eq!(fields(&res), ["name", "permissions"]);

    let res = post(
        "/api/v1/users",
        json!({"email": "u@acme.example.com", "password": PASSWORD, "roles": roles(21)}),
    )
    .await;
    assert_eq!(fields(&res), ["roles"]);
}

#[tokio::test]
async fn a_body_with_several_bad_fields_lists_every_one() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/users",
            &t.admin(),
            Some(json!({
                "email": "not an email",
                "password": "short",
                "first_name": "f".repeat(201),
                "last_name": "l".repeat(201),
                "roles": roles(21),
            })),
        )
        .await;
    assert_eq!(
        fields(&res),
        ["email", "first_name", "last_name", "password", "roles"]
    );
    let problem = res.json();
    let message = |field: &str| {
        problem["errors"]
            .as_array()
            .and_then(|errors| errors.iter().find(|e| e["field"] == field))
            .map(|e| e["message"].clone())
    };
    assert_eq!(message("email"), Some(json!("must be an email address")));
    assert_eq!(
        message("password"),
        Some(json!("must be at least 8 characters"))
    );
    assert_eq!(
        message("first_name"),
        Some(json!("must be at most 200 characters"))
    );

    let res = app
        .call(
            Method::POST,
            "/api/v1/resources",
            &t.admin(),
            Some(json!({"name": "   ", "data": [1]})),
        )
        .await;
    assert_eq!(fields(&res), ["data", "name"]);
}

async fn send(app: &TestApp, auth: &Auth, method: Method, path: &str, body: Value) -> TestResponse {
    app.call(method, path, auth, Some(body)).await
}

#[tokio::test]
async fn values_at_the_bound_are_accepted_and_one_past_it_refused() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let admin = t.admin();

    let at = send(
        &app,
        &admin,
        Method::POST,
        "/api/v1/resources",
        json!({"name": "é".repeat(200)}),
    )
    .await;
    assert_eq!(at.status, 201, "{}", at.text());
    let path = format!(
        "/api/v1/resources/{}",
        at.json()["id"].as_str().expect("id")
    );
    let past = send(
        &app,
        &admin,
        Method::PATCH,
        &path,
        json!({"name": "é".repeat(201)}),
    )
    .await;
    assert_eq!(fields(&past), ["name"]);
    let past = send(
        &app,
        &admin,
        Method::PUT,
        &path,
        json!({"name": "ok", "data": {"blob": "x".repeat(64 * 1024)}}),
    )
    .await;
    assert_eq!(fields(&past), ["data"]);

    let user = |first_name: String| json!({"email": format!("{}@acme.example.com", first_name.len()), "password": "p".repeat(128), "first_name": first_name});
    let at = send(
        &app,
        &admin,
        Method::POST,
        "/api/v1/users",
        user("f".repeat(200)),
    )
    .await;
    assert_eq!(at.status, 201, "{}", at.text());
    let past = send(
        &app,
        &admin,
        Method::POST,
        "/api/v1/users",
        user("f".repeat(201)),
    )
    .await;
    assert_eq!(fields(&past), ["first_name"]);

    let at = send(
        &app,
        &admin,
        Method::POST,
        "/api/v1/roles",
        json!({"name": "a".repeat(50), "description": "d".repeat(1000), "permissions": (vec!["users:read"; 100])}),
    )
    .await;
    assert_eq!(at.status, 201, "{}", at.text());

    let at = send(
        &app,
        &admin,
        Method::POST,
        "/api/v1/api-keys",
        json!({"name": "k".repeat(100), "role": "viewer"}),
    )
    .await;
    assert_eq!(at.status, 201, "{}", at.text());
    let past = send(
        &app,
        &admin,
        Method::POST,
        "/api/v1/api-keys",
        json!({"name": "k".repeat(101), "role": "viewer"}),
    )
    .await;
    assert_eq!(fields(&past), ["name"]);

    let at = send(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/users/{}/roles", t.admin_id),
        json!({"roles": (vec!["admin"; 20])}),
    )
    .await;
    assert_eq!(at.status, 200, "{}", at.text());
}

#[tokio::test]
async fn list_items_are_named_by_their_index() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let res = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{}/roles", t.admin_id),
            &t.admin(),
            Some(json!({"roles": ["admin", "r".repeat(101), "viewer", "r".repeat(500)]})),
        )
        .await;
    assert_eq!(fields(&res), ["roles[1]", "roles[3]"]);
    assert_eq!(
        res.json()["errors"][0]["message"],
        "must be at most 100 characters"
    );

    let res = app
        .call(
            Method::POST,
            "/api/v1/api-keys",
            &t.admin(),
            Some(json!({"name": "k", "permissions": ["users:read", "x".repeat(101)]})),
        )
        .await;
    let fields = fields(&res);
    assert!(fields.contains(&"permissions[1]".to_owned()), "{fields:?}");
    // The unknown-permission message does not echo the long item whole.
    assert!(res.text().len() < 1000, "{}", res.text());
}

#[tokio::test]
async fn credentials_and_tokens_are_bounded_before_any_lookup() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let res = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"tenant": "t".repeat(65), "email": format!("{}@x.example", "e".repeat(250)), "password": "p".repeat(129)}),
        )
        .await;
    assert_eq!(fields(&res), ["email", "password", "tenant"]);
    let res = app
        .post_json(
            "/api/v1/admin/login",
            &json!({"email": "a@b.example", "password": "p".repeat(129)}),
        )
        .await;
    assert_eq!(fields(&res), ["password"]);
    for (path, field) in [
        ("/api/v1/auth/refresh", "refresh_token"),
        ("/api/v1/auth/verify-email", "token"),
    ] {
        let res = app
            .post_json(path, &json!({ field: "t".repeat(513) }))
            .await;
        assert_eq!(fields(&res), [field], "{path}");
    }
    let res = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            &t.admin(),
            Some(json!({"refresh_token": "t".repeat(513)})),
        )
        .await;
    assert_eq!(fields(&res), ["refresh_token"]);
    // At the bound, a login is judged on its merits.
    let res = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"tenant": "acme", "email": t.admin_email, "password": "p".repeat(128)}),
        )
        .await;
    res.assert_problem(401, "INVALID_CREDENTIALS");
    assert!(matches!(t.admin(), Auth::Bearer(_)));
}

/// The schema of `name` in the document's components.
fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let schema = &doc["components"]["schemas"][name];
    assert!(schema.is_object(), "{name} is in the document");
    schema
}

/// `schema`, or the named schema it refers to.
fn deref<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    }
}

/// Every string and array a request schema takes is bounded in the document.
fn assert_bounded(doc: &Value, name: &str, schema: &Value) {
    let properties = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{name} has properties: {schema}"));
    for (field, property) in properties {
        let property = deref(doc, property);
        let types = match &property["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if types.contains(&"string") && property["format"] != "date-time" {
            assert!(
                property["maxLength"].is_u64() || property["enum"].is_array(),
                "{name}.{field} states a maxLength: {property}"
            );
        }
        if types.contains(&"array") {
            assert!(
                property["maxItems"].is_u64(),
                "{name}.{field} states maxItems: {property}"
            );
            let items = deref(doc, &property["items"]);
            assert!(
                items["maxLength"].is_u64() || items["enum"].is_array(),
                "{name}.{field} bounds its items: {property}"
            );
        }
    }
}

#[tokio::test]
async fn the_openapi_document_states_every_bound() {
    let app = TestApp::new().await;
    let doc = app.get("/openapi.json").await.json();
    for name in [
        "CreateUser",
        "UpdateUser",
        "SetRoles",
        "CreateRole",
        "UpdateRole",
        "AddPermission",
        "CreateResource",
        "ReplaceResource",
        "PatchResource",
        "LoginRequest",
        "RegisterRequest",
        "RefreshRequest",
        "LogoutRequest",
        "PasswordResetRequest",
        "PasswordReset",
        "VerifyEmail",
        "AdminLoginRequest",
    ] {
        let schema = schema(&doc, name);
        if name == "AddPermission" {
            assert!(deref(&doc, &schema["properties"]["permission"])["enum"].is_array());
        } else {
            assert_bounded(&doc, name, schema);
        }
    }

    let user = &schema(&doc, "CreateUser")["properties"];
    assert_eq!(user["first_name"]["maxLength"], 200);
    assert_eq!(user["email"]["maxLength"], 254);
    assert_eq!(user["password"]["minLength"], 8);
    assert_eq!(user["password"]["maxLength"], 128);
    assert_eq!(user["roles"]["maxItems"], 20);
    assert_eq!(user["roles"]["items"]["maxLength"], 100);
    let role = &schema(&doc, "CreateRole")["properties"];
    assert_eq!(role["description"]["maxLength"], 1000);
    assert_eq!(role["name"]["pattern"], "^[a-z][a-z0-9_-]{1,49}$");
    assert_eq!(role["permissions"]["maxItems"], 100);
    let grants = deref(&doc, &role["permissions"]["items"])["enum"]
        .as_array()
        .expect("grants are enumerated");
    for grant in ["*", "users:*", "users:read"] {
        assert!(grants.contains(&json!(grant)), "{grant}");
    }
    let resource = &schema(&doc, "CreateResource")["properties"];
    assert_eq!(resource["name"]["maxLength"], 200);
    assert_eq!(
        schema(&doc, "RefreshRequest")["properties"]["refresh_token"]["maxLength"],
        512
    );
    assert_eq!(
        schema(&doc, "LoginRequest")["properties"]["tenant"]["maxLength"],
        64
    );

    // API keys: the object's bounds, and exactly one of role and permissions.
    let key = schema(&doc, "CreateApiKey");
    let parts = key["allOf"].as_array().expect("allOf");
    assert_bounded(&doc, "CreateApiKey", &parts[0]);
    assert_eq!(parts[0]["properties"]["name"]["maxLength"], 100);
    // At least one (`anyOf`) and not both (`not`).
    assert_eq!(
        parts[1]["anyOf"],
        json!([{"required": ["role"]}, {"required": ["permissions"]}])
    );
    assert_eq!(parts[2]["not"]["required"], json!(["role", "permissions"]));
}

/// What parsing a body builds is bounded by declared figures: 1 MiB of `[0,0,…]` would be
/// half a million values (16 MiB and more once parsed), a deep nesting a deep recursion.
#[tokio::test]
async fn a_body_of_too_many_json_values_or_too_deep_is_422_before_parsing() {
    let app = TestApp::new().await;
    let t = app.onboard("acme").await;
    let admin = t.admin();
    let many = vec![0; 70_000];
    let res = send(
        &app,
        &admin,
        Method::POST,
        "/api/v1/resources",
        json!({"name": "n", "data": {"a": many}}),
    )
    .await;
    let problem = res.assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(fields(&res), ["body"], "{problem}");
    assert!(problem.to_string().contains("32768"), "{problem}");
    let mut deep = json!(1);
    for _ in 0..70 {
        deep = json!([deep]);
    }
    let res = send(
        &app,
        &admin,
        Method::POST,
        "/api/v1/resources",
        json!({"name": "n", "data": {"a": deep}}),
    )
    .await;
    res.assert_problem(422, "VALIDATION_FAILED");
    assert_eq!(fields(&res), ["body"]);
    // A large but ordinary body is fine.
    let res = send(
        &app,
        &admin,
        Method::POST,
        "/api/v1/resources",
        json!({"name": "n", "data": {"a": vec![0; 1000]}}),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());
}

/// The `errors[].message` of `field` in a 422.
fn message_of(res: &TestResponse, field: &str) -> Option<Value> {
    res.json()["errors"]
        .as_array()
        .and_then(|errors| errors.iter().find(|e| e["field"] == field))
        .map(|e| e["message"].clone())
}

/// A request becomes domain values once, by `TryFrom`: each field is parsed (email,
/// password, plan, slug, role name, grants, template name, number, ARN, job type) and
/// every broken one is named in ONE 422, with the declared rules' errors among them.
#[tokio::test]
async fn every_domain_field_error_comes_in_one_answer() {
    let app = TestApp::new().await;
    // Onboarding: an unknown plan is one field error among the others.
    let res = app
        .post_json(
            "/api/v1/tenants",
            &json!({"name": "Acme", "slug": "acme", "plan": "gold",
                    "admin": {"email": "not an email", "password": "short"}}),
        )
        .await;
    assert_eq!(fields(&res), ["plan", "admin.email", "admin.password"]);
    assert_eq!(
        message_of(&res, "plan"),
        Some(json!(
            "unknown variant `gold`, expected one of `free`, `standard`, `premium`"
        ))
    );
    assert_eq!(
        message_of(&res, "admin.email"),
        Some(json!("must be an email address"))
    );
    // A known paid plan without an operator is still refused before the fields are named.
    app.post_json(
        "/api/v1/tenants",
        &json!({"name": "Acme", "slug": "acme", "plan": "premium",
                "admin": {"email": "not an email", "password": "short"}}),
    )
    .await
    .assert_problem(403, "FORBIDDEN");

    let t = app.onboard("acme").await;
    let admin = t.admin();
    let post = |path: &'static str, body: Value| app.call(Method::POST, path, &admin, Some(body));

    let res = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"tenant": "acme", "email": "nope", "password": "short", "first_name": "\u{7}"}),
        )
        .await;
    assert_eq!(fields(&res), ["email", "first_name", "password"]);

    let res = app
        .post_json(
            "/api/v1/auth/password-reset",
            &json!({"token": "t".repeat(513), "new_password": "short"}),
        )
        .await;
    assert_eq!(fields(&res), ["new_password", "token"]);

    let res = post(
        "/api/v1/invitations",
        json!({"email": "nope", "roles": roles(21)}),
    )
    .await;
    assert_eq!(fields(&res), ["email", "roles"]);

    let res = post(
        "/api/v1/roles",
        json!({"name": "Bad Name", "description": "d".repeat(1001), "permissions": ["users:read", "users:fly"]}),
    )
    .await;
    assert_eq!(fields(&res), ["description", "name", "permissions"]);
    assert_eq!(
        message_of(&res, "name"),
        Some(json!("must match ^[a-z][a-z0-9_-]{1,49}$"))
    );
    assert_eq!(
        message_of(&res, "permissions"),
        Some(json!("unknown permissions: users:fly"))
    );

    // Thousands of made-up grants, far over the bound of 100: one answer that names a
    // few and counts the rest, not an echo of the whole body.
    let made_up: Vec<String> = (0..5000).map(|i| format!("made:up{i}")).collect();
    let res = post(
        "/api/v1/roles",
        json!({"name": "many", "permissions": made_up}),
    )
    .await;
    assert_eq!(fields(&res), ["permissions", "permissions"]);
    let named = res.json()["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["message"].as_str())
        .find(|m| m.starts_with("unknown permissions"))
        .expect("the unknown names")
        .to_owned();
    assert!(named.ends_with(" and 4990 more"), "{named}");
    assert!(named.len() < 300, "{named}");

    let res = post(
        "/api/v1/api-keys",
        json!({"name": " ", "expires_at": "2000-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(fields(&res), ["expires_at", "name", "role"]);

    let res = post(
        "/api/v1/notifications/push",
        json!({"target": "device-token", "template": "Bad", "data": [1]}),
    )
    .await;
    assert_eq!(fields(&res), ["data", "target", "template"]);
    let res = post(
        "/api/v1/notifications/sms",
        json!({"to": "5551234567", "template": "Bad"}),
    )
    .await;
    assert_eq!(fields(&res), ["template", "to"]);
    let res = post(
        "/api/v1/notifications/email",
        json!({"to": "nope", "subject": "s".repeat(201), "template": "Bad"}),
    )
    .await;
    assert_eq!(fields(&res), ["subject", "template", "to"]);

    let res = post(
        "/api/v1/notifications/templates",
        json!({"name": "Bad", "channel": "email", "subject": "s".repeat(201), "body": " "}),
    )
    .await;
    assert_eq!(fields(&res), ["body", "name", "subject"]);
    // The text's own checks (placeholders, no subject for sms) follow once those hold.
    let res = post(
        "/api/v1/notifications/templates",
        json!({"name": "ok", "channel": "sms", "subject": "hi", "body": "{{ 1x }}"}),
    )
    .await;
    assert_eq!(fields(&res), ["body", "subject"]);

    let res = post("/api/v1/jobs", json!({"type": "nope", "max_attempts": 0})).await;
    assert_eq!(fields(&res), ["type", "max_attempts"]);
}

/// A pattern is written once, in the domain type that parses it; the schema attribute
/// that states it (utoipa takes a literal) must say the same.
#[tokio::test]
async fn the_document_states_the_domain_patterns() {
    use tenantry::domain::{channel, role_name, template_name, tenant_slug};
    let app = TestApp::new().await;
    let doc = app.get("/openapi.json").await.json();
    let pattern = |name: &str, field: &str| {
        let schema = schema(&doc, name);
        schema["properties"][field]["pattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}.{field} states a pattern: {schema}"))
            .to_owned()
    };
    // Sends and templates are stated as one schema per shape (`oneOf`).
    for (name, field, expected) in [
        ("CreateRole", "name", role_name::PATTERN),
        ("UpdateRole", "name", role_name::PATTERN),
        ("CreateTenant", "slug", tenant_slug::PATTERN),
        ("EmailTemplateRequest", "name", template_name::PATTERN),
        ("SmsTemplateRequest", "name", template_name::PATTERN),
        ("PushTemplateRequest", "name", template_name::PATTERN),
        ("SendEmailWithTemplate", "template", template_name::PATTERN),
        ("SendSmsWithTemplate", "template", template_name::PATTERN),
        ("SendSmsWithBody", "to", channel::E164_PATTERN),
        ("SendSmsWithTemplate", "to", channel::E164_PATTERN),
        ("SendPushWithTemplate", "template", template_name::PATTERN),
        ("SendPushWithBody", "target", channel::ENDPOINT_ARN_PATTERN),
    ] {
        assert_eq!(pattern(name, field), expected, "{name}.{field}");
    }
}

/// As when `plan` was read as a `Plan`: an unknown plan is a 422 before sign-up is asked
/// about (the body is not a request at all).
#[tokio::test]
async fn an_unknown_plan_is_422_even_when_sign_up_is_off() {
    let app = TestApp::builder()
        .with_config(|c| c.auth.signup_enabled = false)
        .build()
        .await;
    let res = app
        .post_json(
            "/api/v1/tenants",
            &json!({"name": "Acme", "slug": "acme", "plan": "gold",
                    "admin": {"email": "a@acme.example.com", "password": PASSWORD}}),
        )
        .await;
    assert_eq!(fields(&res), ["plan"]);
}
