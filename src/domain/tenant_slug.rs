//! A tenant's slug, its name in URLs and logins.

use crate::error::FieldError;

/// The pattern, as the OpenAPI document states it (`#[schema(pattern = ...)]` takes a
/// literal; a test compares the document with this).
pub const PATTERN: &str = "^[a-z][a-z0-9-]{2,39}$";

/// A tenant slug: [`PATTERN`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSlug(String);

impl TenantSlug {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let ok = raw.len() >= 3
            && raw.len() <= 40
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(
                "slug",
                format!("must match {PATTERN} (3 to 40 lowercase letters, digits, dashes)"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
