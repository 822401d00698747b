//! The OpenAPI document as API tooling reads it: every operation has a unique, stable
//! `operationId` (`<resource>_<action>`: the method names of a generated SDK), a
//! `description` saying who may call it (from the route table), `security: []` when it is
//! public; the document names its `servers` and a `contact`. One pass over the JSON, so
//! that a new route gets all of it without an annotation of its own.

use serde_json::{Value, json};

use super::{access::Access, router};

/// Operations whose path does not make a good name by the general rule.
const NAMES: &[(&str, &str, &str)] = &[
    ("get", "/", "index_get"),
    ("get", "/.well-known/jwks.json", "jwks_get"),
    // The fs storage backend's signed links, beside the API's `/api/v1/files/{id}`.
    ("get", "/files/{key}", "file_links_get"),
    ("put", "/files/{key}", "file_links_put"),
    ("post", "/api/v1/files/uploads", "files_uploads_create"),
];

/// Applies the pass to the whole document.
pub fn apply(doc: &mut Value) {
    let table = router::table();
    let paths: Vec<String> = doc["paths"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let components = doc["components"]["schemas"].clone();
    if let Some(items) = doc["paths"].as_object_mut() {
        for (path, item) in items.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                let access = table
                    .iter()
                    .find(|r| r.path == path && r.method.eq_ignore_ascii_case(method))
                    .map(|r| r.access);
                let lists = returns_items(operation, &components);
                let id = operation_id(method, path, &paths, lists);
                let Some(operation) = operation.as_object_mut() else {
                    continue;
                };
                operation.insert("operationId".into(), id.into());
                if access.is_none_or(Access::is_public) && !operation.contains_key("security") {
                    operation.insert("security".into(), json!([]));
                }
                let summary = operation
                    .get("summary")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let said = operation
                    .get("description")
                    .and_then(Value::as_str)
                    .filter(|d| !d.trim().is_empty())
                    .unwrap_or(summary)
                    .trim_end_matches('.')
                    .to_owned();
                let who = who_may_call(path, access);
                let description = if said.is_empty() {
                    who
                } else {
                    format!("{said}.\n\n{who}")
                };
                operation.insert("description".into(), description.into());
            }
        }
    }
    doc["servers"] = json!([{
        "url": "{scheme}://{host}",
        "description": "Your deployment; the defaults are a local run (scripts/run.sh or docker compose)",
        "variables": {
            "scheme": {"default": "http", "enum": ["http", "https"]},
            "host": {"default": "localhost:8000", "description": "Host and port of the API"},
        },
    }]);
    doc["info"]["contact"] = json!({"name": "Tenantry maintainers"});
}

/// States that a request schema takes exactly one of two optional fields, each given when
/// it is a string (null is not given): at least one (`anyOf`) and not both (`not`),
/// branches that linters need not prove exclusive.
pub fn exactly_one(doc: &mut Value, schema: &str, a: &str, b: &str) {
    let Some(target) = doc.pointer_mut(&format!("/components/schemas/{schema}")) else {
        return;
    };
    let given = |field: &str| {
        json!({
            "required": [field],
            "properties": {field: {"type": "string"}},
        })
    };
    let derived = target.take();
    *target = json!({
        "allOf": [
            derived,
            {"anyOf": [given(a), given(b)]},
            {"not": {"allOf": [given(a), given(b)]}},
        ],
        "description": format!("Give exactly one of `{a}` and `{b}`."),
    });
}

/// `<resource>_<action>`: the path's literal segments, then what the method does to them.
fn operation_id(method: &str, path: &str, paths: &[String], lists: bool) -> String {
    if let Some((_, _, name)) = NAMES.iter().find(|(m, p, _)| *m == method && *p == path) {
        return (*name).to_owned();
    }
    let rest = path.strip_prefix("/api/v1/").unwrap_or(path);
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let on_item = segments.last().is_some_and(|s| s.starts_with('{'));
    let collection = paths.iter().any(|p| p.starts_with(&format!("{path}/{{")));
    let action = match method {
        "get" if !on_item && (collection || lists) => Some("list"),
        "get" => Some("get"),
        "post" if collection => Some("create"),
        // The path names the action: `/auth/login`, `/tenants/{id}/suspend`.
        "post" => None,
        "put" if on_item => Some("replace"),
        "put" => Some("set"),
        "patch" => Some("update"),
        "delete" => Some("delete"),
        other => Some(other),
    };
    segments
        .iter()
        .filter(|s| !s.starts_with('{'))
        .map(|s| s.replace(['-', '.'], "_"))
        .chain(action.map(str::to_owned))
        .collect::<Vec<_>>()
        .join("_")
}

/// Whether the operation's 200 answer is a page of `items`.
fn returns_items(operation: &Value, schemas: &Value) -> bool {
    let schema = &operation["responses"]["200"]["content"]["application/json"]["schema"];
    let schema = match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap_or_default();
            &schemas[name]
        }
        None => schema,
    };
    schema["properties"].get("items").is_some()
}

/// Who may call the route, in one sentence.
fn who_may_call(path: &str, access: Option<Access>) -> String {
    match access {
        Some(Access::Public) => "Public: no credentials.".into(),
        Some(Access::PublicOrPlatform) => {
            "Public; a platform operator's token, when sent, is recognised.".into()
        }
        Some(Access::Authenticated) => {
            "Any authenticated principal: a tenant user, an API key or a platform operator.".into()
        }
        Some(Access::BeforeMfa) => {
            "Any authenticated principal, also a user of a tenant that requires a second \
             factor who has not passed it yet."
                .into()
        }
        Some(Access::AnyTenantPrincipal) => {
            "Any authenticated principal of the tenant (a user or an API key).".into()
        }
        Some(Access::Tenant(p)) => {
            format!("Requires the `{p}` permission in the caller's tenant.")
        }
        Some(Access::Platform) => "Platform operators only.".into(),
        Some(Access::TenantOrPlatform(p)) => format!(
            "A platform operator, or a principal of that tenant holding the `{p}` permission."
        ),
        None if path.starts_with("/files/") => {
            "The signature in the query is the credential (links of the filesystem storage backend).".into()
        }
        None => "Operational: no credentials.".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_operation_has_a_unique_snake_case_id_a_description_and_security() {
        let doc = crate::http::docs::openapi();
        let mut seen = HashSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("item") {
                let id = operation["operationId"].as_str().expect("operationId");
                assert!(
                    id.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                        && !id.starts_with('_'),
                    "{method} {path}: {id}"
                );
                assert!(seen.insert(id.to_owned()), "{id} twice ({method} {path})");
                assert!(
                    operation["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{method} {path}"
                );
                assert!(operation["security"].is_array(), "{method} {path}");
            }
        }
    }

    #[test]
    fn names_follow_the_resource_and_the_action() {
        let paths: Vec<String> = ["/api/v1/users", "/api/v1/users/{id}"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            operation_id("get", "/api/v1/users", &paths, false),
            "users_list"
        );
        assert_eq!(
            operation_id("post", "/api/v1/users", &paths, false),
            "users_create"
        );
        assert_eq!(
            operation_id("get", "/api/v1/users/{id}", &paths, false),
            "users_get"
        );
        assert_eq!(
            operation_id("put", "/api/v1/users/{id}/roles", &paths, false),
            "users_roles_set"
        );
        assert_eq!(
            operation_id("post", "/api/v1/tenants/{id}/suspend", &paths, false),
            "tenants_suspend"
        );
        assert_eq!(
            operation_id("get", "/api/v1/audit", &paths, true),
            "audit_list"
        );
        assert_eq!(
            operation_id("post", "/api/v1/auth/password-reset", &paths, false),
            "auth_password_reset"
        );
    }
}
