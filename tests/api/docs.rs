use axum::http::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test]
async fn docs_serves_the_swagger_page_and_its_assets() {
    let app = TestApp::new().await;
    for path in ["/docs", "/docs/"] {
        let res = app.get(path).await;
        assert_eq!(res.status, 200, "{path}");
        assert!(
            res.header("content-type")
                .is_some_and(|c| c.starts_with("text/html"))
        );
        assert!(res.text().contains("swagger-ui"), "{path}");
    }
    let init = app.get("/docs/swagger-initializer.js").await;
    assert_eq!(init.status, 200);
    assert!(init.text().contains("/openapi.json"));
    app.get("/docs/no-such-file.js")
        .await
        .assert_problem(404, "NOT_FOUND");
}

#[tokio::test]
async fn openapi_json_is_3_1_and_documents_routes_errors_and_security() {
    let app = TestApp::new().await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status, 200);
    let doc = res.json();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    for path in ["/", "/health", "/health/live", "/health/ready", "/metrics"] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} is documented"
        );
    }
    assert!(doc["paths"]["/health/ready"]["get"]["responses"]["503"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
}

/// The `$ref`'d schema's name.
fn ref_name(schema: &Value) -> &str {
    schema["$ref"]
        .as_str()
        .and_then(|r| r.rsplit('/').next())
        .expect("a $ref")
}

/// Whether `value` fits `schema`, for the keywords the request shapes use (`$ref`,
/// `oneOf`, `type`, `enum`, `required`, `properties`, `additionalProperties`, the length
/// and number bounds); `pattern` and `format` are left to the values chosen below.
fn fits(schemas: &Value, schema: &Value, value: &Value) -> bool {
    if schema.get("$ref").is_some() {
        return fits(schemas, &schemas[ref_name(schema)], value);
    }
    if let Some(branches) = schema["oneOf"].as_array() {
        let n = branches.iter().filter(|b| fits(schemas, b, value)).count();
        if n != 1 {
            return false;
        }
    }
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let typed = |t: &Value| t == kind || (t == "number" && kind == "integer");
    let type_ok = match &schema["type"] {
        Value::Null => true,
        Value::Array(types) => types.iter().any(typed),
        t => typed(t),
    };
    if !type_ok
        || schema["enum"]
            .as_array()
            .is_some_and(|e| !e.contains(value))
    {
        return false;
    }
    if let Value::String(s) = value {
        // The one pattern these shapes add: "not blank" (white space as `str::trim` sees
        // it; the unit tests of request_shapes check that the pattern lists the same).
        if schema["pattern"] == tenantry::http::request_shapes::NOT_BLANK && s.trim().is_empty() {
            return false;
        }
        let chars = s.chars().count() as u64;
        if schema["maxLength"].as_u64().is_some_and(|m| chars > m)
            || schema["minLength"].as_u64().is_some_and(|m| chars < m)
        {
            return false;
        }
    }
    if let Some(n) = value.as_f64()
        && (schema["maximum"].as_f64().is_some_and(|m| n > m)
            || schema["minimum"].as_f64().is_some_and(|m| n < m))
    {
        return false;
    }
    if let Value::Object(fields) = value {
        let required = schema["required"].as_array().into_iter().flatten();
        if required
            .into_iter()
            .any(|r| !fields.contains_key(r.as_str().unwrap_or_default()))
        {
            return false;
        }
        for (name, field) in fields {
            let declared = &schema["properties"][name];
            let rule = if declared.is_null() {
                &schema["additionalProperties"]
            } else {
                declared
            };
            if rule.is_object() && !fits(schemas, rule, field) {
                return false;
            }
        }
    }
    true
}

#[tokio::test]
async fn openapi_states_send_template_and_job_shapes_as_one_of() {
    let app = TestApp::new().await;
    let doc = app.get("/openapi.json").await.json();
    let schemas = &doc["components"]["schemas"];
    let branches = |name: &str| -> Vec<String> {
        schemas[name]["oneOf"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is a oneOf: {}", schemas[name]))
            .iter()
            .map(|b| ref_name(b).to_owned())
            .collect()
    };
    let required = |name: &str| schemas[name]["required"].clone();
    for (send, to, max) in [
        ("SendEmail", "to", 256 * 1024),
        ("SendSms", "to", 1600),
        ("SendPush", "target", 4096),
    ] {
        let (with_body, with_template) = (format!("{send}WithBody"), format!("{send}WithTemplate"));
        assert_eq!(branches(send), [with_body.clone(), with_template.clone()]);
        assert_eq!(required(&with_body), json!([to, "body"]), "{send}");
        assert_eq!(required(&with_template), json!([to, "template"]), "{send}");
        let body = &schemas[&with_body]["properties"];
        assert_eq!(body["body"]["maxLength"], max, "{send}");
        assert_eq!(
            body["body"]["pattern"],
            tenantry::http::request_shapes::NOT_BLANK
        );
        assert_eq!(body["template"]["type"], "null", "{send}");
        let template = &schemas[&with_template]["properties"];
        assert_eq!(template["body"]["type"], "null", "{send}");
        assert_eq!(
            template["variables"]["oneOf"][0]["$ref"],
            "#/components/schemas/TemplateVariables"
        );
    }
    assert_eq!(
        branches("TemplateRequest"),
        [
            "EmailTemplateRequest",
            "SmsTemplateRequest",
            "PushTemplateRequest"
        ]
    );
    assert_eq!(
        schemas["TemplateRequest"]["discriminator"]["propertyName"],
        "channel"
    );
    assert_eq!(
        schemas["SmsTemplateRequest"]["properties"]["subject"]["maxLength"],
        0
    );
    assert_eq!(
        schemas["EmailTemplateRequest"]["properties"]["subject"]["maxLength"],
        200
    );
    assert_eq!(
        branches("CreateJob"),
        ["CreateEchoJob", "CreateUsageReportJob"]
    );
    let jobs = &schemas["CreateJob"]["discriminator"];
    assert_eq!(jobs["propertyName"], "type");
    assert_eq!(
        jobs["mapping"]["usage_report"],
        "#/components/schemas/CreateUsageReportJob"
    );
    assert_eq!(required("CreateUsageReportJob"), json!(["type", "payload"]));
    assert_eq!(required("UsageReportPayload"), json!(["from", "to"]));
    assert_eq!(
        schemas["EchoPayload"]["properties"]["delay_ms"]["maximum"],
        10_000
    );
    let put = &doc["paths"]["/files/{key}"]["put"]["responses"];
    for status in ["200", "403", "404", "409", "413"] {
        assert!(
            put[status].is_object(),
            "PUT /files/{{key}} documents {status}"
        );
    }
}

/// Each request is judged by the document (does exactly one branch admit it?) and by the
/// server (does it accept it?): the two must agree. The values keep to the patterns and
/// formats (which the judge leaves out), and the templates named exist.
#[tokio::test]
async fn openapi_one_of_shapes_agree_with_the_server() {
    let app = TestApp::new().await;
    let doc = app.get("/openapi.json").await.json();
    let schemas = &doc["components"]["schemas"];
    let tenant = app.onboard("oneof").await;
    let auth = tenant.admin();
    let templates = "/api/v1/notifications/templates";
    let (sms, email, push) = (
        "/api/v1/notifications/sms",
        "/api/v1/notifications/email",
        "/api/v1/notifications/push",
    );
    let (phone, arn) = (
        "+15551234567",
        "arn:aws:sns:us-east-1:123456789012:endpoint/APNS/app/abc",
    );
    let from = "2026-01-01T00:00:00Z";
    let to = "2026-01-02T00:00:00Z";
    let cases = [
        (
            templates,
            "TemplateRequest",
            json!({"name": "greeting", "channel": "sms", "body": "Hi {{ name }}"}),
        ),
        (
            templates,
            "TemplateRequest",
            json!({"name": "welcome", "channel": "email", "subject": "Hi {{ name }}", "body": "Hello"}),
        ),
        (
            templates,
            "TemplateRequest",
            json!({"name": "nudge", "channel": "push", "subject": "Look", "body": "Hello"}),
        ),
        (
            templates,
            "TemplateRequest",
            json!({"name": "empty", "channel": "sms", "subject": "", "body": "Hello"}),
        ),
        (
            templates,
            "TemplateRequest",
            json!({"name": "titled", "channel": "sms", "subject": "No", "body": "Hello"}),
        ),
        (
            templates,
            "TemplateRequest",
            json!({"name": "blank", "channel": "email", "body": " "}),
        ),
        (sms, "SendSms", json!({"to": phone, "body": "Hi"})),
        (
            sms,
            "SendSms",
            json!({"to": phone, "body": "Hi", "template": null, "subject": "ignored"}),
        ),
        (
            sms,
            "SendSms",
            json!({"to": phone, "template": "greeting", "variables": {"name": "Ada"}}),
        ),
        (
            sms,
            "SendSms",
            json!({"to": phone, "body": null, "template": "greeting", "variables": {"name": 7}}),
        ),
        (
            sms,
            "SendSms",
            json!({"to": phone, "body": "Hi", "template": "greeting"}),
        ),
        (sms, "SendSms", json!({"to": phone})),
        (
            sms,
            "SendSms",
            json!({"to": phone, "body": null, "template": null}),
        ),
        (
            sms,
            "SendSms",
            json!({"to": phone, "body": "x".repeat(1601)}),
        ),
        (
            sms,
            "SendSms",
            json!({"to": phone, "body": "Hi", "variables": {"name": [1]}}),
        ),
        (
            email,
            "SendEmail",
            json!({"to": "ada@example.com", "subject": "S", "body": "Hi"}),
        ),
        (
            email,
            "SendEmail",
            json!({"to": "ada@example.com", "template": "welcome", "variables": {"name": "Ada"}}),
        ),
        (
            email,
            "SendEmail",
            json!({"to": "ada@example.com", "subject": "S"}),
        ),
        (
            push,
            "SendPush",
            json!({"target": arn, "title": "T", "body": "Hi", "data": {"k": 1}}),
        ),
        (
            push,
            "SendPush",
            json!({"target": arn, "template": "nudge"}),
        ),
        (
            push,
            "SendPush",
            json!({"target": arn, "body": "Hi", "template": "nudge"}),
        ),
        ("/api/v1/jobs", "CreateJob", json!({"type": "echo"})),
        (
            "/api/v1/jobs",
            "CreateJob",
            json!({"type": "echo", "payload": null}),
        ),
        (
            "/api/v1/jobs",
            "CreateJob",
            json!({"type": "echo", "payload": {"fail_times": 2, "any": [1]}}),
        ),
        (
            "/api/v1/jobs",
            "CreateJob",
            json!({"type": "echo", "payload": {"delay_ms": 10_001}}),
        ),
        (
            "/api/v1/jobs",
            "CreateJob",
            json!({"type": "echo", "payload": {"fail_times": 101}}),
        ),
        (
            "/api/v1/jobs",
            "CreateJob",
            json!({"type": "usage_report", "payload": {"from": from, "to": to}}),
        ),
        (
            "/api/v1/jobs",
            "CreateJob",
            json!({"type": "usage_report", "payload": {"from": from, "to": to, "metric": "api_calls"}}),
        ),
        (
            "/api/v1/jobs",
            "CreateJob",
            json!({"type": "usage_report", "payload": {"from": from, "to": to, "metric": ""}}),
        ),
        (
            "/api/v1/jobs",
            "CreateJob",
            json!({"type": "usage_report", "payload": {"from": from}}),
        ),
        ("/api/v1/jobs", "CreateJob", json!({"type": "usage_report"})),
        (
            "/api/v1/jobs",
            "CreateJob",
            json!({"type": "files.cleanup"}),
        ),
    ];
    for (path, schema, body) in cases {
        let admitted = fits(schemas, &schemas[schema], &body);
        let res = app
            .call(Method::POST, path, &auth, Some(body.clone()))
            .await;
        let accepted = res.status.is_success();
        assert_eq!(
            admitted,
            accepted,
            "POST {path} {body}: the document {} it, the server answered {} {}",
            if admitted { "admits" } else { "refuses" },
            res.status,
            res.text()
        );
        if !accepted {
            assert_eq!(res.status, 422, "POST {path} {body}: {}", res.text());
        }
    }
}
