//! A role's name: the one place its pattern is written.

use crate::error::FieldError;

/// The pattern, as the OpenAPI document states it (`#[schema(pattern = ...)]` takes a
/// literal; a test compares the document with this).
pub const PATTERN: &str = "^[a-z][a-z0-9_-]{1,49}$";

/// A role name: [`PATTERN`].
pub fn parse(raw: &str) -> Result<String, FieldError> {
    let ok = (2..=50).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_lowercase())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(FieldError::new("name", format!("must match {PATTERN}")))
    }
}
