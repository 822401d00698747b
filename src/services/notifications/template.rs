//! `{{ name }}` placeholders: checked when a template is saved, filled when it is sent.
//!
//! Values are inserted as plain text in one pass: a value that itself contains
//! `{{other}}` stays exactly that text, and nothing in a value is ever evaluated.
//!
//! The work of a send is bounded by declared limits, not by their product: a template
//! holds at most [`MAX_PLACEHOLDERS`] placeholders, a value at most
//! [`MAX_VARIABLE_BYTES`], and [`measure`] computes the size of the filled text from the
//! template and the sizes of the values — without building it — so a send whose text
//! would be past its channel's limit is refused before anything is rendered.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

use crate::error::FieldError;

/// The most placeholders one template may hold, subject and body together.
pub const MAX_PLACEHOLDERS: usize = 100;
/// The largest value of one variable, as inserted (bytes of its text).
pub const MAX_VARIABLE_BYTES: usize = 16 * 1024;

/// How the size of a text is counted: bytes (email, push) or characters (SMS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Chars,
}

impl Unit {
    fn of(self, text: &str) -> usize {
        match self {
            Self::Bytes => text.len(),
            Self::Chars => text.chars().count(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Bytes => "bytes",
            Self::Chars => "characters",
        }
    }
}

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

/// How many placeholders `text` holds (every `{{ … }}`, a name or not).
pub fn placeholders(text: &str) -> usize {
    pieces(text)
        .iter()
        .filter(|p| matches!(p, Piece::Slot(_)))
        .count()
}

/// Checks that the texts of one template hold at most [`MAX_PLACEHOLDERS`] placeholders
/// together (the error names `field`).
pub fn check_placeholders(field: &str, texts: &[&str]) -> Result<(), FieldError> {
    let count: usize = texts.iter().map(|t| placeholders(t)).sum();
    if count > MAX_PLACEHOLDERS {
        return Err(FieldError::new(
            field,
            format!(
                "has {count} placeholders; a template holds at most {MAX_PLACEHOLDERS} \
                 (subject and body together)"
            ),
        ));
    }
    Ok(())
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
fn text_of(value: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match value {
        Value::String(s) => Some(s.as_str().into()),
        Value::Number(n) => Some(n.to_string().into()),
        Value::Bool(b) => Some(b.to_string().into()),
        _ => None,
    }
}

/// Checks `variables`: strings, numbers or booleans only, each at most
/// [`MAX_VARIABLE_BYTES`] (errors name `variables.<name>`).
pub fn check_variables(variables: &Map<String, Value>) -> Vec<FieldError> {
    variables
        .iter()
        .filter_map(|(k, v)| {
            let message = match text_of(v) {
                None => "must be a string, a number or a boolean".to_owned(),
                Some(text) if text.len() > MAX_VARIABLE_BYTES => format!(
                    "is {} bytes; a value holds at most {MAX_VARIABLE_BYTES} bytes (16 KiB)",
                    text.len()
                ),
                Some(_) => return None,
            };
            Some(FieldError::new(format!("variables.{k}"), message))
        })
        .collect()
}

/// The size of each text of `texts` once filled from `variables`, counted in `unit`,
/// computed without rendering: the template's own text plus, per placeholder, the size
/// of its value (each value measured once, however often it is used). The work is
/// linear in the template and the variables. Every missing variable is one error named
/// `variables.<name>`.
pub fn measure(
    texts: &[&str],
    variables: &Map<String, Value>,
    unit: Unit,
) -> Result<Vec<usize>, Vec<FieldError>> {
    let mut sizes: HashMap<&str, Option<usize>> = HashMap::new();
    let mut missing = BTreeSet::new();
    let measured = texts
        .iter()
        .map(|text| {
            let mut total = 0usize;
            for piece in pieces(text) {
                let size = match piece {
                    Piece::Text(t) => unit.of(t),
                    Piece::Slot(name) if !is_name(name) => unit.of(name) + 4,
                    Piece::Slot(name) => {
                        let size = *sizes.entry(name).or_insert_with(|| {
                            variables
                                .get(name)
                                .and_then(text_of)
                                .map(|value| unit.of(&value))
                        });
                        size.unwrap_or_else(|| {
                            missing.insert(name.to_owned());
                            0
                        })
                    }
                };
                total = total.saturating_add(size);
            }
            total
        })
        .collect();
    if missing.is_empty() {
        Ok(measured)
    } else {
        Err(missing_errors(missing))
    }
}

fn missing_errors(missing: BTreeSet<String>) -> Vec<FieldError> {
    missing
        .into_iter()
        .map(|name| {
            FieldError::new(
                format!("variables.{name}"),
                "is used by the template but not given",
            )
        })
        .collect()
}

/// Fills the placeholders of every text in `texts` from `variables`. Every missing
/// variable is one error named `variables.<name>`. Callers [`measure`] first: this
/// allocates the whole output.
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
        Err(missing_errors(missing))
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

    #[test]
    fn the_measured_size_is_the_rendered_size() {
        let texts = ["Hi {{name}}, {{ name }} é {{n}}{{ bad name }}", "", "{{ x"];
        let variables = vars(json!({"name": "Zoë", "n": 12.5}));
        let rendered = render(&texts, &variables).expect("rendered");
        let bytes = measure(&texts, &variables, Unit::Bytes).expect("measured");
        let chars = measure(&texts, &variables, Unit::Chars).expect("measured");
        for (i, text) in rendered.iter().enumerate() {
            assert_eq!(bytes[i], text.len(), "{text}");
            assert_eq!(chars[i], text.chars().count(), "{text}");
        }
        let missing = measure(&["{{a}} {{b}}"], &vars(json!({"a": 1})), Unit::Bytes);
        assert_eq!(missing.expect_err("b")[0].field, "variables.b");
    }

    #[test]
    fn placeholders_and_values_are_capped() {
        let many = "{{a}}".repeat(MAX_PLACEHOLDERS);
        assert!(check_placeholders("body", &[&many, ""]).is_ok());
        assert!(check_placeholders("body", &[&many, "{{b}}"]).is_err());
        let big = "x".repeat(MAX_VARIABLE_BYTES + 1);
        let errors = check_variables(&vars(
            json!({"ok": "x".repeat(MAX_VARIABLE_BYTES), "big": big}),
        ));
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["variables.big"]);
    }
}
