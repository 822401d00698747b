//! Says in the OpenAPI document that no text may hold NUL (`\u0000`).
//!
//! PostgreSQL text cannot store NUL, so [`AppJson`](crate::http::extract::AppJson)
//! refuses any body holding the escape `\u0000` anywhere, even in a field the operation
//! ignores (422, field `body`). After the document is built, this pass states that rule:
//! - every free-text string (no `format`, `enum`, `const` or `pattern` of its own) gets
//!   the pattern [`NO_NUL`];
//! - every object open to unknown fields (but a fragment naming only required keys) gets
//!   `propertyNames` without NUL, free-form objects (`JsonObject`) too — except the
//!   forms of `multipart/form-data` bodies, whose parts other than the declared ones are
//!   ignored and never stored, so their names may be anything.
//!
//! The values of unknown fields and of free-form objects are any JSON: saying "with no NUL
//! in any string at any depth" takes a recursive schema, which client generators reject
//! (openapi-python-client: "Invalid property in union"). The description of the document
//! states the rule for them, and `scripts/schemathesis.toml` keeps the fuzzer from
//! generating NUL (`generation.allow-x00 = false`).

use serde_json::{Map, Value, json};

/// A string without NUL.
pub const NO_NUL: &str = "^[^\\u0000]*$";

/// Rewrites the document `doc` in place (see the module documentation).
pub fn apply(doc: &mut Value) {
    // The component schemas that describe `multipart/form-data` request bodies.
    let mut forms = Vec::new();
    for operation in super::openapi_operations::operations_mut(doc) {
        let form = operation
            .pointer("/requestBody/content/multipart~1form-data/schema/$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/schemas/"));
        forms.extend(form.map(str::to_owned));
        for param in operation
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(schema) = param.get_mut("schema") {
                walk(schema);
            }
        }
        if let Some(body) = operation.get_mut("requestBody") {
            walk(body);
        }
    }
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (name, schema) in schemas.iter_mut() {
        walk(schema);
        if forms.contains(name)
            && let Some(form) = schema.as_object_mut()
        {
            form.remove("propertyNames");
        }
    }
}

/// Applies the rules to every schema object in `node`.
fn walk(node: &mut Value) {
    match node {
        Value::Object(map) => {
            constrain(map);
            for (key, child) in map.iter_mut() {
                // `propertyNames` and `additionalProperties` were set here; examples are data.
                if !matches!(
                    key.as_str(),
                    "propertyNames" | "example" | "examples" | "default"
                ) {
                    walk(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(walk),
        _ => {}
    }
}

fn has_type(map: &Map<String, Value>, name: &str) -> bool {
    match map.get("type") {
        Some(Value::String(t)) => t == name,
        Some(Value::Array(types)) => types.iter().any(|t| t == name),
        _ => false,
    }
}

fn constrain(map: &mut Map<String, Value>) {
    let own_rule = ["format", "enum", "const", "pattern"]
        .iter()
        .any(|k| map.contains_key(*k));
    if has_type(map, "string") && !own_rule {
        map.insert("pattern".into(), json!(NO_NUL));
    }
    let open = map
        .get("additionalProperties")
        .is_none_or(|a| a == &Value::Bool(true));
    // Not a fragment that only names required keys (`{"required": ["role"]}` in a `oneOf`):
    // the object it belongs to states the rule.
    let fragment = !map.contains_key("properties") && map.contains_key("required");
    if has_type(map, "object") && open && !fragment {
        map.insert("propertyNames".into(), json!({"pattern": NO_NUL}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_and_unknown_fields_are_declared_without_nul() {
        let doc = crate::http::docs::openapi();
        let schemas = &doc["components"]["schemas"];
        let login = &schemas["LoginRequest"];
        assert_eq!(login["properties"]["tenant"]["pattern"], NO_NUL, "{login}");
        assert_eq!(login["propertyNames"]["pattern"], NO_NUL);
        assert_eq!(schemas["JsonObject"]["propertyNames"]["pattern"], NO_NUL);
        // The upload ignores every part but `file`: their names are not limited.
        assert!(
            schemas["UploadForm"].get("propertyNames").is_none(),
            "{}",
            schemas["UploadForm"]
        );
        // A string with a rule of its own keeps it.
        let users = &doc["paths"]["/api/v1/users"]["get"]["parameters"];
        let cursor = users
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == "cursor"))
            .expect("a cursor parameter");
        assert_eq!(
            cursor["schema"]["pattern"],
            crate::http::pagination::cursor_schema()
                .pattern
                .expect("pattern")
        );
    }
}
