//! A message template's name: the one place its pattern is written.

use crate::error::FieldError;

/// The pattern, as the OpenAPI document states it (`#[schema(pattern = ...)]` takes a
/// literal; a test compares the document with this).
pub const PATTERN: &str = "^[a-z][a-z0-9_.-]{0,99}$";

/// A template name: [`PATTERN`], 1 to 100 lowercase letters, digits, `_ . -`.
pub fn parse(field: &str, raw: &str) -> Result<String, FieldError> {
    let ok = (1..=100).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_lowercase())
        && raw.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(FieldError::new(field, format!("must match {PATTERN}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_pattern() {
        for good in ["welcome", "a", "order.shipped_v2-b", &"a".repeat(100)] {
            assert!(parse("name", good).is_ok(), "{good}");
        }
        for bad in ["", "Welcome", "1st", "_x", "a b", &"a".repeat(101)] {
            assert!(parse("name", bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse("template", "X").map_err(|e| (e.field, e.message)),
            Err((
                "template".to_owned(),
                "must match ^[a-z][a-z0-9_.-]{0,99}$".to_owned()
            ))
        );
    }
}
