//! A role's name: the one place its pattern is written.

use crate::error::FieldError;

/// The pattern, as the OpenAPI document states it (`#[schema(pattern = ...)]` takes a
/// literal; a test compares the document with this).
pub const PATTERN: &str = "^[a-z][a-z0-9_-]{1,49}$";

/// A role's name, checked against [`PATTERN`] when it was parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleName(String);

impl RoleName {
    /// `raw` when it matches [`PATTERN`]; the error names the field `name`.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let ok = (2..=50).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new("name", format!("must match {PATTERN}")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for RoleName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}
