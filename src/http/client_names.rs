//! Gives the OpenAPI document the names a generated client needs.
//!
//! utoipa inlines the item type of a generic (`Paginated<Resource>`) and every free-form
//! JSON object, so client generators invent names such as `PaginatedResourceItemsItem`
//! or `CreateResourceDataType0`, and the same grant enum becomes four classes. After the
//! document is built, this pass:
//! - points every free-form object (`serde_json::Value` fields) at one `JsonObject`
//!   schema, and every grant at `Grant`;
//! - replaces each inline copy of a named schema with a `$ref` to it (list items become
//!   `Resource`, `User`, ...);
//! - marks path parameters required and unwraps optional request bodies (`oneOf` with
//!   `null`) into the named schema with `required: false`.
//!
//! `scripts/client-smoke.sh` generates a Python client from the result and uses it.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use utoipa::openapi::OpenApi;

use crate::http::api::roles::grant_schema;

const REF: &str = "#/components/schemas/";
const JSON_OBJECT: &str = "JsonObject";
const GRANT: &str = "Grant";

/// Rewrites `doc` in place (see the module documentation).
pub fn apply(doc: &mut OpenApi) {
    let mut value = serde_json::to_value(&*doc).expect("the OpenAPI document serializes");
    rewrite(&mut value);
    *doc = serde_json::from_value(value).expect("the rewritten document is still OpenAPI");
}

fn rewrite(doc: &mut Value) {
    let grant = serde_json::to_value(grant_schema()).expect("serializes");
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for schema in schemas.values_mut() {
        walk_below(schema, &named_free_form);
    }
    schemas.insert(
        JSON_OBJECT.into(),
        json!({"type": "object", "description": "Any JSON object.", "additionalProperties": true}),
    );
    schemas.insert(GRANT.into(), grant);

    // Shapes of the named schemas that a client would otherwise duplicate.
    let mut by_shape: HashMap<String, Vec<String>> = HashMap::new();
    for (name, schema) in schemas.iter() {
        let named = ["properties", "enum", "oneOf"]
            .iter()
            .any(|k| schema.get(k).is_some());
        if named {
            by_shape
                .entry(shape(schema))
                .or_default()
                .push(name.clone());
        }
    }
    let descriptions: HashMap<String, Option<Value>> = schemas
        .iter()
        .map(|(name, s)| (name.clone(), s.get("description").cloned()))
        .collect();
    let to_ref = |node: &Map<String, Value>| -> Option<Value> {
        if node.contains_key("$ref") {
            return None;
        }
        let [name] = by_shape.get(&shape_of(node))?.as_slice() else {
            return None; // two schemas of one shape: leave it to the author
        };
        let mut out = Map::new();
        out.insert("$ref".into(), Value::String(format!("{REF}{name}")));
        if let Some(d) = node.get("description")
            && descriptions.get(name).and_then(Option::as_ref) != Some(d)
        {
            out.insert("description".into(), d.clone());
        }
        Some(Value::Object(out))
    };
    for schema in schemas.values_mut() {
        walk_below(schema, &to_ref);
    }
    if let Some(paths) = doc.get_mut("paths") {
        walk_below(paths, &named_free_form);
        walk_below(paths, &to_ref);
    }
    for operation in super::openapi_operations::operations_mut(doc) {
        fix_operation(operation);
    }
}

/// A free-form object (`{"type": "object"}`, maybe nullable) as a reference to
/// `JsonObject`, keeping its description.
fn named_free_form(node: &Map<String, Value>) -> Option<Value> {
    let nullable = match node.get("type")? {
        Value::String(t) if t == "object" => false,
        Value::Array(types) if types.len() == 2 && types.contains(&json!("object")) => {
            types.contains(&json!("null"))
        }
        _ => return None,
    };
    // Only a bare object: anything more (required keys, property rules) is its own shape.
    let bare = node
        .keys()
        .all(|k| matches!(k.as_str(), "type" | "description" | "additionalProperties"));
    let open = node
        .get("additionalProperties")
        .is_none_or(|a| a == &Value::Bool(true));
    if !bare || !open {
        return None;
    }
    let reference = json!({"$ref": format!("{REF}{JSON_OBJECT}")});
    let mut out = Map::new();
    if let Some(d) = node.get("description") {
        out.insert("description".into(), d.clone());
    }
    if nullable {
        out.insert("oneOf".into(), json!([reference, {"type": "null"}]));
    } else {
        out.extend(reference.as_object().cloned().unwrap_or_default());
    }
    Some(Value::Object(out))
}

/// Path parameters are required; an optional body is its schema, not a `oneOf` with null.
fn fix_operation(operation: &mut Value) {
    if let Some(params) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    {
        for param in params {
            if param.get("in") == Some(&json!("path")) {
                param["required"] = json!(true);
            }
        }
    }
    let Some(body) = operation.get_mut("requestBody") else {
        return;
    };
    let mut optional = false;
    if let Some(content) = body.get_mut("content").and_then(Value::as_object_mut) {
        for media in content.values_mut() {
            let Some(one_of) = media.pointer("/schema/oneOf").and_then(Value::as_array) else {
                continue;
            };
            let null = json!({"type": "null"});
            if let [a, b] = one_of.as_slice()
                && (a == &null || b == &null)
            {
                let inner = if a == &null { b.clone() } else { a.clone() };
                media["schema"] = inner;
                optional = true;
            }
        }
    }
    if optional {
        body["required"] = json!(false);
    }
}

/// Applies `f` to every schema-like object below `node` (not `node` itself), outermost
/// first: where `f` answers, its answer replaces the object and the walk does not descend.
fn walk_below(node: &mut Value, f: &dyn Fn(&Map<String, Value>) -> Option<Value>) {
    match node {
        Value::Object(map) => {
            for child in map.values_mut() {
                if let Some(replacement) = child.as_object().and_then(f) {
                    *child = replacement;
                } else {
                    walk_below(child, f);
                }
            }
        }
        Value::Array(items) => {
            for child in items {
                if let Some(replacement) = child.as_object().and_then(f) {
                    *child = replacement;
                } else {
                    walk_below(child, f);
                }
            }
        }
        _ => {}
    }
}

/// A schema's structure without its documentation, to compare copies.
fn shape(schema: &Value) -> String {
    schema.as_object().map(shape_of).unwrap_or_default()
}

fn shape_of(schema: &Map<String, Value>) -> String {
    let mut bare = schema.clone();
    bare.remove("description");
    bare.remove("title");
    // serde_json's map keeps keys sorted, so equal shapes print alike.
    Value::Object(bare).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        let mut doc = crate::http::docs::openapi();
        // Idempotent: the served document already went through the pass once.
        rewrite(&mut doc);
        doc
    }

    /// Every schema object in `node`, with its JSON pointer.
    fn schemas_in(node: &Value, at: String, out: &mut Vec<(String, Value)>) {
        match node {
            Value::Object(map) => {
                out.push((at.clone(), node.clone()));
                for (k, v) in map {
                    schemas_in(v, format!("{at}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    schemas_in(v, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn list_items_are_references_to_their_named_schemas() {
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        for (page, item) in [
            ("Paginated_Resource", "Resource"),
            ("Paginated_User", "User"),
            ("Paginated_Tenant", "Tenant"),
            ("Paginated_Job", "Job"),
            ("Paginated_ApiKey", "ApiKey"),
        ] {
            assert_eq!(
                schemas[page]["properties"]["items"]["items"]["$ref"],
                format!("{REF}{item}"),
                "{page}"
            );
        }
    }

    #[test]
    fn no_anonymous_object_or_grant_is_left() {
        let doc = doc();
        let mut found = Vec::new();
        schemas_in(&doc["paths"], "/paths".into(), &mut found);
        for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
            for (at, node) in schema.as_object().expect("object") {
                schemas_in(node, format!("/components/schemas/{name}/{at}"), &mut found);
            }
        }
        for (at, node) in found {
            let map = node.as_object().expect("object");
            assert!(named_free_form(map).is_none(), "free-form object at {at}");
            let is_grant = map
                .get("enum")
                .and_then(|e| e.as_array())
                .is_some_and(|e| e.contains(&json!("tenant:read")));
            assert!(!is_grant, "inline grant enum at {at}");
        }
    }

    #[test]
    fn objects_with_rules_keep_them() {
        let rule = json!({"type": "object", "required": ["role"]});
        assert!(named_free_form(rule.as_object().expect("object")).is_none());
        let bare = json!({"type": ["object", "null"], "description": "Free."});
        assert_eq!(
            named_free_form(bare.as_object().expect("object")),
            Some(
                json!({"description": "Free.", "oneOf": [{"$ref": format!("{REF}{JSON_OBJECT}")}, {"type": "null"}]})
            )
        );
    }

    #[test]
    fn path_parameters_are_required_and_optional_bodies_are_named() {
        let doc = doc();
        let op = &doc["paths"]["/api/v1/roles/{id}/permissions/{permission}"]["delete"];
        for param in op["parameters"].as_array().expect("parameters") {
            assert_eq!(param["required"], true, "{param}");
        }
        let logout = &doc["paths"]["/api/v1/auth/logout"]["post"]["requestBody"];
        assert_eq!(logout["required"], false);
        assert_eq!(
            logout["content"]["application/json"]["schema"]["$ref"],
            format!("{REF}LogoutRequest")
        );
    }
}
