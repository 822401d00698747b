//! `{{ name }}` placeholders: checked when a template is saved, filled when it is sent.
//!
//! Values are inserted as plain text in one pass: a value that itself contains
//! `{{other}}` stays exactly that text, and nothing in a value is ever evaluated.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::error::FieldError;

/// A placeholder name: a letter or `_`, then letters, digits, `_`, `.` or `-`; at most 64.
fn is_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// One piece of a template.
enum Piece<'a> {
    Text(&'a str),
    /// The trimmed name, or the raw inside when it is not a name.
    Slot(&'a str),
}

/// Splits `text` at `{{ … }}`; an unclosed `{{` is text.
fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open + 2..].find("}}") else {
            break;
        };
        out.push(Piece::Text(&rest[..open]));
        out.push(Piece::Slot(rest[open + 2..open + 2 + close].trim()));
        rest = &rest[open + 2 + close + 2..];
    }
    out.push(Piece::Text(rest));
    out
}

/// Checks that every placeholder of `text` names a variable (`{{ first_name }}`), so a
/// typo such as `{{ first name }}` is refused when the template is saved.
pub fn check(field: &str, text: &str) -> Result<(), FieldError> {
    for piece in pieces(text) {
        if let Piece::Slot(inner) = piece
            && !is_name(inner)
        {
            let shown: String = inner.chars().take(64).collect();
            return Err(FieldError::new(
                field,
                format!(
                    "has a placeholder that is not a variable name: {{{{{shown}}}}} \
                     (names are letters, digits, _ . -, starting with a letter or _)"
                ),
            ));
        }
    }
    Ok(())
}

/// The text of a variable's value: strings as they are, numbers and booleans printed.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Checks `variables`: strings, numbers or booleans only (errors name `variables.<name>`).
pub fn check_variables(variables: &Map<String, Value>) -> Vec<FieldError> {
    variables
        .iter()
        .filter(|(_, v)| text_of(v).is_none())
        .map(|(k, _)| {
            FieldError::new(
                format!("variables.{k}"),
                "must be a string, a number or a boolean",
            )
        })
        .collect()
}

/// Fills the placeholders of every text in `texts` from `variables`. Every missing
/// variable is one error named `variables.<name>`.
pub fn render(
    texts: &[&str],
    variables: &Map<String, Value>,
) -> Result<Vec<String>, Vec<FieldError>> {
    let mut missing = BTreeSet::new();
    let rendered = texts
        .iter()
        .map(|text| {
            let mut out = String::with_capacity(text.len());
            for piece in pieces(text) {
                match piece {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Slot(name) if !is_name(name) => {
                        // Saved before names were checked: left as it was written.
                        out.push_str("{{");
                        out.push_str(name);
                        out.push_str("}}");
                    }
                    Piece::Slot(name) => match variables.get(name).and_then(text_of) {
                        Some(value) => out.push_str(&value),
                        None => {
                            missing.insert(name.to_owned());
                        }
                    },
                }
            }
            out
        })
        .collect();
    if missing.is_empty() {
        Ok(rendered)
    } else {
        Err(missing
            .into_iter()
            .map(|name| {
                FieldError::new(
                    format!("variables.{name}"),
                    "is used by the template but not given",
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vars(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn fills_placeholders_with_or_without_spaces() {
        let out = render(
            &["Hi {{name}}, you are {{ age }}{{done}}"],
            &vars(json!({"name": "Ann", "age": 30, "done": true})),
        )
        .expect("rendered");
        assert_eq!(out, ["Hi Ann, you are 30true"]);
    }

    #[test]
    fn values_are_inserted_literally_once() {
        let out = render(
            &["{{a}} and {{b}}"],
            &vars(json!({"a": "{{b}}", "b": "<script>"})),
        )
        .expect("rendered");
        assert_eq!(out, ["{{b}} and <script>"]);
    }

    #[test]
    fn every_missing_variable_is_named() {
        let errors = render(&["{{x}}", "{{ y }} {{x}}"], &vars(json!({}))).expect_err("missing");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["variables.x", "variables.y"]);
    }

    #[test]
    fn unclosed_braces_are_text_and_bad_names_are_refused_on_save() {
        assert_eq!(render(&["a {{ b"], &Map::new()).expect("text"), ["a {{ b"]);
        assert!(check("body", "Hi {{ first name }}").is_err());
        assert!(check("body", "Hi {{first_name}} {{ user.email }}").is_ok());
        assert!(check_variables(&vars(json!({"a": [1]})))[0].field == "variables.a");
    }
}
