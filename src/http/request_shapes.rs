//! Request rules that tie fields together, stated in the document as `oneOf` of named
//! object schemas, so that a generated client (a union of types) and a schema-driven
//! tester know them: a send carries `body` or `template` (not both, not neither); a
//! template's shape depends on its `channel` (an `sms` template has no subject); a job's
//! `payload` depends on its `type`. The rules themselves stay where they are enforced
//! (the handlers' validation and the services): this pass only says the same thing, from
//! the same constants. It runs on the derived schemas before the NUL pass
//! ([`no_nul`](super::no_nul)), which then constrains the new strings and objects too.

use serde_json::{Map, Value, json};

use crate::{
    http::api::notifications::{MAX_EMAIL_BODY, MAX_PUSH_BODY, MAX_SMS_BODY},
    jobs::types::{MAX_PAYLOAD_BYTES, echo, usage_report},
    services::{jobs::MAX_MAX_ATTEMPTS, notifications::template::MAX_VARIABLE_BYTES},
};

/// Text holding at least one character that is not white space (what `str::trim` removes:
/// Unicode `White_Space`), and no NUL: the "not blank" rule. Spelled out, because `\s`
/// means other sets in other regex engines.
pub const NOT_BLANK: &str = "^[^\\u0000]*[^\\u0000\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\u0000]*$";

/// Template names, as the handlers check them.
const TEMPLATE_NAME: &str = "^[a-z][a-z0-9_.-]{0,99}$";

/// Applies every shape to the document.
pub fn apply(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    schemas.insert("TemplateVariables".into(), template_variables());
    send(
        schemas,
        "SendEmail",
        "email",
        MAX_EMAIL_BODY,
        "bytes in UTF-8",
    );
    send(schemas, "SendSms", "sms", MAX_SMS_BODY, "characters");
    send(schemas, "SendPush", "push", MAX_PUSH_BODY, "bytes in UTF-8");
    templates(schemas);
    jobs(schemas);
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn or_null(name: &str, description: &str) -> Value {
    json!({"oneOf": [reference(name), {"type": "null"}], "description": description})
}

fn properties(schema: &mut Value) -> &mut Map<String, Value> {
    if !schema["properties"].is_object() {
        schema["properties"] = json!({});
    }
    schema["properties"]
        .as_object_mut()
        .expect("an object was just put there")
}

fn require(schema: &mut Value, field: &str) {
    if !schema["required"].is_array() {
        schema["required"] = json!([]);
    }
    if let Some(required) = schema["required"].as_array_mut()
        && !required.iter().any(|r| r == field)
    {
        required.push(field.into());
    }
}

/// The values a template's placeholders take.
fn template_variables() -> Value {
    json!({
        "type": "object",
        "description": format!(
            "Values for a template's `{{{{ name }}}}` placeholders: strings, numbers or \
             booleans, inserted as text, each at most {} KiB in UTF-8 (checked with or \
             without a template).",
            MAX_VARIABLE_BYTES / 1024
        ),
        "propertyNames": {"pattern": super::no_nul::NO_NUL},
        "additionalProperties": {"oneOf": [
            {"type": "string", "maxLength": MAX_VARIABLE_BYTES},
            {"type": "number"},
            {"type": "boolean"},
        ]},
    })
}

/// `<name>` becomes `oneOf` `<name>WithBody` | `<name>WithTemplate`. Each branch states
/// the other's field as absent or null, so the branches exclude each other on their own
/// (the server refuses both, even when one of them is malformed).
fn send(schemas: &mut Map<String, Value>, name: &str, channel: &str, max: usize, unit: &str) {
    let Some(derived) = schemas.get(name).cloned() else {
        return;
    };
    let variables = "Values for the template's placeholders (see `TemplateVariables`).";
    let mut with_body = derived.clone();
    let props = properties(&mut with_body);
    props.insert(
        "body".into(),
        json!({
            "type": "string",
            "maxLength": max,
            "pattern": NOT_BLANK,
            "description": format!("The message: not blank, at most {max} {unit}."),
        }),
    );
    props.insert(
        "template".into(),
        json!({"type": "null", "description": "Not with `body`."}),
    );
    props.insert("variables".into(), or_null("TemplateVariables", variables));
    require(&mut with_body, "body");
    with_body["description"] = format!("A send by {channel} with its own text.").into();

    let mut with_template = derived;
    let props = properties(&mut with_template);
    props.insert(
        "template".into(),
        json!({
            "type": "string",
            "pattern": TEMPLATE_NAME,
            "description": format!(
                "The name of a `{channel}` template of the tenant; its body, filled in, \
                 must fit {max} {unit}."
            ),
        }),
    );
    props.insert(
        "body".into(),
        json!({"type": "null", "description": "Not with `template`: the template's body is sent."}),
    );
    props.insert("variables".into(), or_null("TemplateVariables", variables));
    require(&mut with_template, "template");
    with_template["description"] = format!("A send by {channel} filled from a template.").into();

    let (a, b) = (format!("{name}WithBody"), format!("{name}WithTemplate"));
    schemas.insert(a.clone(), with_body);
    schemas.insert(b.clone(), with_template);
    schemas.insert(
        name.into(),
        json!({
            "oneOf": [reference(&a), reference(&b)],
            "description": "Exactly one of `body` (the text) and `template` (with `variables`).",
        }),
    );
}

/// `TemplateRequest` becomes one shape per channel, told apart by `channel`.
fn templates(schemas: &mut Map<String, Value>) {
    let Some(derived) = schemas.get("TemplateRequest").cloned() else {
        return;
    };
    let mut one_of = Vec::new();
    let mut mapping = Map::new();
    for (channel, branch, subject) in [
        ("email", "EmailTemplateRequest", Some("The email's subject")),
        ("sms", "SmsTemplateRequest", None),
        (
            "push",
            "PushTemplateRequest",
            Some("The push notification's title"),
        ),
    ] {
        let mut schema = derived.clone();
        let props = properties(&mut schema);
        props.insert(
            "channel".into(),
            json!({"type": "string", "enum": [channel]}),
        );
        if let Some(body) = props.get_mut("body") {
            body["pattern"] = NOT_BLANK.into();
        }
        match subject {
            Some(what) => {
                if let Some(s) = props.get_mut("subject") {
                    s["description"] = format!(
                        "{what}: at most 200 characters, no control characters, may hold \
                         placeholders."
                    )
                    .into();
                }
            }
            None => {
                props.insert(
                    "subject".into(),
                    json!({
                        "type": ["string", "null"],
                        "maxLength": 0,
                        "description": "An sms template has no subject (absent, null or empty).",
                    }),
                );
            }
        }
        schema["description"] = format!("A template of the `{channel}` channel.").into();
        one_of.push(reference(branch));
        mapping.insert(
            channel.into(),
            format!("#/components/schemas/{branch}").into(),
        );
        schemas.insert(branch.into(), schema);
    }
    schemas.insert(
        "TemplateRequest".into(),
        json!({
            "oneOf": one_of,
            "discriminator": {"propertyName": "channel", "mapping": mapping},
            "description": "A template; its shape depends on `channel`.",
        }),
    );
}

/// `CreateJob` becomes one shape per public job type, told apart by `type`, each with
/// its payload's fields.
fn jobs(schemas: &mut Map<String, Value>) {
    let Some(derived) = schemas.get("CreateJob").cloned() else {
        return;
    };
    let free = format!(
        "at most {} KiB serialised, its numbers between -1e300 and 1e300",
        MAX_PAYLOAD_BYTES / 1024
    );
    schemas.insert(
        "EchoPayload".into(),
        json!({
            "type": "object",
            "additionalProperties": true,
            "description": format!("Returned as the job's result; any fields besides these ({free})."),
            "properties": {
                "delay_ms": {
                    "type": ["integer", "null"], "minimum": 0, "maximum": echo::MAX_DELAY_MS,
                    "description": "Milliseconds to wait before answering.",
                },
                "fail_times": {
                    "type": ["integer", "null"], "minimum": 0, "maximum": echo::MAX_FAIL_TIMES,
                    "description": "How many attempts fail before one succeeds.",
                },
            },
        }),
    );
    schemas.insert(
        "UsageReportPayload".into(),
        json!({
            "type": "object",
            "description": format!(
                "The period of the report: `from` before `to`, at most {} days apart ({free}).",
                usage_report::MAX_PERIOD_DAYS
            ),
            "required": ["from", "to"],
            "additionalProperties": true,
            "properties": {
                "from": {"type": "string", "format": "date-time", "description": "RFC 3339, included."},
                "to": {"type": "string", "format": "date-time", "description": "RFC 3339, excluded."},
                "metric": {
                    "type": ["string", "null"], "minLength": 1,
                    "maxLength": usage_report::MAX_METRIC_BYTES,
                    "description": format!(
                        "Only this metric (at most {} bytes in UTF-8); all when absent.",
                        usage_report::MAX_METRIC_BYTES
                    ),
                },
            },
        }),
    );
    let mut one_of = Vec::new();
    let mut mapping = Map::new();
    for (job_type, branch, payload, required) in [
        ("echo", "CreateEchoJob", "EchoPayload", false),
        (
            "usage_report",
            "CreateUsageReportJob",
            "UsageReportPayload",
            true,
        ),
    ] {
        let mut schema = derived.clone();
        let props = properties(&mut schema);
        props.insert("type".into(), json!({"type": "string", "enum": [job_type]}));
        if required {
            let mut payload = reference(payload);
            payload["description"] = "What to report.".into();
            props.insert("payload".into(), payload);
        } else {
            props.insert(
                "payload".into(),
                or_null(payload, "What to echo; absent or null is `{}`."),
            );
        }
        if let Some(attempts) = props.get_mut("max_attempts") {
            attempts["maximum"] = MAX_MAX_ATTEMPTS.into();
        }
        if required {
            require(&mut schema, "payload");
        }
        schema["description"] = format!("A `{job_type}` job.").into();
        one_of.push(reference(branch));
        mapping.insert(
            job_type.into(),
            format!("#/components/schemas/{branch}").into(),
        );
        schemas.insert(branch.into(), schema);
    }
    schemas.insert(
        "CreateJob".into(),
        json!({
            "oneOf": one_of,
            "discriminator": {"propertyName": "type", "mapping": mapping},
            "description": "A job to run; its `payload` depends on `type`.",
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The characters a class of [`NOT_BLANK`] names (`\uXXXX` and `\t`-style escapes,
    /// literal characters, ranges).
    fn class(text: &str) -> Vec<char> {
        let mut chars = Vec::new();
        let mut rest = text;
        let mut range_from = None;
        while let Some(c) = rest.chars().next() {
            let (c, len) = match c {
                '\\' => match rest[1..].chars().next() {
                    Some('u') => (
                        u32::from_str_radix(&rest[2..6], 16)
                            .ok()
                            .and_then(char::from_u32)
                            .expect("a \\u escape"),
                        6,
                    ),
                    Some(e) => (
                        match e {
                            't' => '\t',
                            'n' => '\n',
                            'f' => '\u{c}',
                            'r' => '\r',
                            other => panic!("unknown escape {other}"),
                        },
                        2,
                    ),
                    None => panic!("a trailing backslash"),
                },
                '-' if !chars.is_empty() => {
                    range_from = chars.pop();
                    rest = &rest[1..];
                    continue;
                }
                c => (c, c.len_utf8()),
            };
            match range_from.take() {
                Some(from) => chars.extend(from..=c),
                None => chars.push(c),
            }
            rest = &rest[len..];
        }
        chars
    }

    #[test]
    fn not_blank_names_the_white_space_that_trim_removes() {
        let inner = NOT_BLANK
            .strip_prefix("^[^\\u0000]*[^\\u0000")
            .and_then(|r| r.strip_suffix("][^\\u0000]*$"))
            .expect("the pattern's shape");
        let mut listed = class(inner);
        listed.sort_unstable();
        let white: Vec<char> = ('\0'..=char::MAX).filter(|c| c.is_whitespace()).collect();
        assert_eq!(listed, white);
    }

    #[test]
    fn the_shapes_are_named_components() {
        let doc = crate::http::docs::openapi();
        let schemas = &doc["components"]["schemas"];
        for name in [
            "SendEmailWithBody",
            "SendSmsWithTemplate",
            "SmsTemplateRequest",
            "CreateEchoJob",
            "UsageReportPayload",
            "TemplateVariables",
        ] {
            assert!(schemas[name].is_object(), "{name}");
        }
        // The NUL pass reached the new shapes too.
        assert_eq!(
            schemas["SendSmsWithBody"]["propertyNames"]["pattern"],
            super::super::no_nul::NO_NUL
        );
        assert_eq!(
            schemas["UsageReportPayload"]["properties"]["metric"]["pattern"],
            super::super::no_nul::NO_NUL
        );
    }
}
