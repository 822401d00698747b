//! Declared input rules: request types derive [`Validate`] for their bounds (lengths, no
//! control characters, list sizes, JSON objects), next to the `#[schema(...)]` that
//! states them in the OpenAPI document.
//!
//! A body with no domain values is taken with [`ValidJson`], which answers every broken
//! rule at once in the problem's `errors` list. A body with domain values (an email, a
//! password, a role name, grants, a slug, a plan, a template name...) is taken with
//! [`AppJson`] and becomes those values by `TryFrom`, which starts from [`rules`] and adds
//! each field's parse error (the domain type's own parser: the rule is written once), so
//! one 422 names every field. What needs context (does the role exist) stays with the
//! service.

use std::borrow::Cow;

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::openapi::schema::{Array, ArrayBuilder, ObjectBuilder, Type};
use validator::{Validate, ValidationError, ValidationErrors, ValidationErrorsKind};

use crate::{
    domain::storable_json::{STORABLE_NUMBERS, storable_numbers},
    error::{AppError, AppResult, FieldError, FieldErrors},
    http::extract::AppJson,
};

/// [`AppJson<T>`] (same rejections) whose value has also passed `T::validate()`; a body
/// that breaks rules is answered 422 naming each broken field.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidJson<T>(pub T);

impl<T, S> FromRequest<S> for ValidJson<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let AppJson(value) = AppJson::<T>::from_request(req, state).await?;
        check(&value)?;
        Ok(Self(value))
    }
}

/// Runs `value`'s rules: for bodies not read through [`ValidJson`] (an optional body).
pub fn check<T: Validate>(value: &T) -> AppResult<()> {
    value
        .validate()
        .map_err(|errors| AppError::validation(field_errors(&errors)))
}

/// `value`'s broken rules, as the start of its conversion into domain values: a
/// `TryFrom<Request>` takes the body with [`AppJson`], begins with these and adds what
/// each field's parse finds, so one 422 names every field, in field order.
pub fn rules<T: Validate>(value: &T) -> FieldErrors {
    let mut found = FieldErrors::by_field();
    if let Err(errors) = value.validate() {
        found.extend(field_errors(&errors));
    }
    found
}

/// One [`FieldError`] per broken rule, with the field's path in the request:
/// `name`, `admin.email` (a nested struct), `roles[3]` (an item of a list), sorted by path
/// so the answer does not depend on hash order.
pub fn field_errors(errors: &ValidationErrors) -> Vec<FieldError> {
    let mut out = Vec::new();
    collect(errors, "", &mut out);
    out
}

fn collect(errors: &ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    let mut fields: Vec<_> = errors.errors().iter().collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    for (name, kind) in fields {
        let path = match (prefix, name.as_ref()) {
            // A struct-level rule: about the struct itself.
            ("", "__all__") => "body".to_owned(),
            (prefix, "__all__") => prefix.to_owned(),
            ("", name) => name.to_owned(),
            (prefix, name) => format!("{prefix}.{name}"),
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for error in list {
                    push(&path, error, out);
                }
            }
            ValidationErrorsKind::Struct(inner) => collect(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    collect(inner, &format!("{path}[{index}]"), out);
                }
            }
        }
    }
}

/// A field error, or one per list item when the rule named items (see [`each_at_most`]).
fn push(path: &str, error: &ValidationError, out: &mut Vec<FieldError>) {
    let message = message(error);
    match error.params.get(ITEMS).and_then(Value::as_array) {
        Some(indices) => out.extend(
            indices
                .iter()
                .filter_map(Value::as_u64)
                .map(|index| FieldError::new(format!("{path}[{index}]"), message.clone())),
        ),
        None => out.push(FieldError::new(path, message)),
    }
}

/// The rule's own message, or one made from its code and parameters.
fn message(error: &ValidationError) -> String {
    if let Some(message) = &error.message {
        return message.to_string();
    }
    let number = |key: &str| error.params.get(key).and_then(Value::as_u64);
    match error.code.as_ref() {
        "length" => {
            let is_list = error.params.get("value").is_some_and(Value::is_array);
            let (verb, unit) = if is_list {
                ("must have", "items")
            } else {
                ("must be", "characters")
            };
            match (number("min"), number("max"), number("equal")) {
                (_, _, Some(n)) => format!("{verb} exactly {n} {unit}"),
                (Some(min), Some(max), _) => format!("{verb} {min} to {max} {unit}"),
                (None, Some(max), _) => format!("{verb} at most {max} {unit}"),
                (Some(min), None, _) => format!("{verb} at least {min} {unit}"),
                (None, None, None) => "has a length out of bounds".to_owned(),
            }
        }
        "required" => "is required".to_owned(),
        code => format!("is invalid ({code})"),
    }
}

/// The parameter of an error that lists the offending item indices of a list.
const ITEMS: &str = "items";

fn invalid(code: &'static str, message: impl Into<Cow<'static, str>>) -> ValidationError {
    ValidationError::new(code).with_message(message.into())
}

/// Not empty once trimmed: a name of spaces is no name.
pub fn not_blank(value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(invalid("blank", "must not be blank"));
    }
    Ok(())
}

/// No control characters (U+0000–U+001F, U+007F–U+009F): the rule of names,
/// descriptions and subjects ([`crate::text`]); state it in the schema with
/// `pattern = crate::text::NO_CONTROL_PATTERN`.
pub fn no_control(value: &str) -> Result<(), ValidationError> {
    if crate::text::has_control(value) {
        return Err(invalid("control", crate::text::NO_CONTROL_MESSAGE));
    }
    Ok(())
}

/// Each string of a list is at most `N` characters; the error names the items
/// (`roles[3]`), not only the list.
pub fn each_at_most<const N: usize>(items: &[String]) -> Result<(), ValidationError> {
    let long: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, item)| item.chars().count() > N)
        .map(|(index, _)| index)
        .collect();
    if long.is_empty() {
        return Ok(());
    }
    let mut error = invalid("item_length", format!("must be at most {N} characters"));
    error.add_param(ITEMS.into(), &long);
    Err(error)
}

/// A JSON object of at most `BYTES` bytes once serialised (the size it takes stored),
/// whose numbers read back as they were sent (see [`storable_numbers`]).
pub fn json_object_within<const BYTES: usize>(value: &Value) -> Result<(), ValidationError> {
    if !value.is_object() {
        return Err(invalid("object", "must be a JSON object"));
    }
    if !storable_numbers(value) {
        return Err(invalid("number", STORABLE_NUMBERS));
    }
    if serde_json::to_vec(value).map_or(0, |bytes| bytes.len()) > BYTES {
        return Err(invalid(
            "size",
            format!("must be at most {} KiB", BYTES / 1024),
        ));
    }
    Ok(())
}

/// For an optional field that may be left out but not sent as `null` (the document says
/// it is not nullable): `#[serde(default, deserialize_with = "validate::present")]`.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A request's list of role names: at most 20, of at most 100 characters each (checked
/// with `length(max = 20)` and `each_at_most::<100>`).
pub fn role_names() -> Array {
    string_list(20, 100)
}

/// The OpenAPI statement of a list checked with `length(max = max_items)` and
/// [`each_at_most::<max_chars>`](each_at_most): for `#[schema(schema_with = ...)]`, since
/// field attributes cannot bound the items of a list.
pub fn string_list(max_items: usize, max_chars: usize) -> Array {
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(max_chars)),
        )
        .max_items(Some(max_items))
        .build()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use validator::Validate;

    use super::*;

    #[derive(Debug, Validate)]
    struct Admin {
        #[validate(length(max = 10))]
        email: String,
    }

    #[derive(Debug, Validate)]
    struct Body {
        #[validate(length(max = 5), custom(function = "not_blank"))]
        name: String,
        #[validate(length(max = 2), custom(function = "each_at_most::<3>"))]
        roles: Vec<String>,
        #[validate(nested)]
        admin: Admin,
        #[validate(custom(function = "json_object_within::<16>"))]
        data: Option<Value>,
    }

    fn errors(body: &Body) -> Vec<(String, String)> {
        body.validate()
            .err()
            .map(|e| field_errors(&e))
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect()
    }

    fn valid() -> Body {
        Body {
            name: "ok".into(),
            roles: vec!["abc".into()],
            admin: Admin {
                email: "a@b.ex".into(),
            },
            data: Some(json!({"a": 1})),
        }
    }

    #[test]
    fn a_valid_body_has_no_errors() {
        assert_eq!(errors(&valid()), vec![]);
    }

    #[test]
    fn every_broken_rule_is_named_by_its_path() {
        let body = Body {
            name: "      ".into(),
            roles: vec!["ok".into(), "long".into(), "x".into(), "longer".into()],
            admin: Admin {
                email: "nope, too long".into(),
            },
            data: Some(json!([1])),
        };
        let errors = errors(&body);
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "admin.email",
                "data",
                "name",
                "name",
                "roles",
                "roles[1]",
                "roles[3]"
            ],
            "{errors:?}"
        );
        let message = |field: &str| {
            errors
                .iter()
                .filter(|(f, _)| f == field)
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(message("admin.email"), ["must be at most 10 characters"]);
        assert_eq!(message("data"), ["must be a JSON object"]);
        assert!(message("name").contains(&"must not be blank"));
        assert!(message("name").contains(&"must be at most 5 characters"));
        assert_eq!(message("roles"), ["must have at most 2 items"]);
        assert_eq!(message("roles[3]"), ["must be at most 3 characters"]);
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let body = Body {
            name: "ééééé".into(),
            ..valid()
        };
        assert_eq!(errors(&body), vec![]);
    }

    #[test]
    fn json_objects_are_bounded_in_bytes() {
        // `{"a":"12345678"}` is 16 bytes.
        assert!(json_object_within::<16>(&json!({"a": "12345678"})).is_ok());
        assert!(json_object_within::<16>(&json!({"a": "123456789"})).is_err());
        assert!(json_object_within::<1024>(&json!("text")).is_err());
        assert!(json_object_within::<1024>(&json!(null)).is_err());
    }

    #[test]
    fn a_conversion_adds_its_parse_errors_among_the_rules_in_field_order() {
        let body = Body {
            name: "far too long".into(),
            roles: vec!["long".into()],
            ..valid()
        };
        let mut errors = rules(&body);
        let parsed: Option<u8> = errors.take(Err(FieldError::new("admin.email", "bad")));
        assert!(parsed.is_none());
        errors.check(Err(FieldError::new("data", "bad")));
        errors.push(FieldError::new("roles", "unknown roles: long"));
        let fields: Vec<String> = errors.into_vec().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["admin.email", "data", "name", "roles[0]", "roles"],
            "sorted by top-level field, each field's own in the order found"
        );
    }
}
