//! Cursor pagination: `?limit=` (1–100, default 20) and an opaque `?cursor=`.

use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{
    IntoParams, ToSchema,
    openapi::{Object, ObjectBuilder, Type},
};
use uuid::Uuid;

use crate::error::{AppError, FieldError};

/// The page a list request asks for.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1 to 100; default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(schema_with = cursor_schema)]
    pub cursor: Option<String>,
}

/// What a cursor is: a `next_cursor` (the URL-safe base64 of a 16-byte id, 22 characters)
/// or empty (the first page). For `#[param(schema_with = ...)]` on every list's `cursor`.
pub fn cursor_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^([A-Za-z0-9_-]{21}[AQgw])?$"))
        .build()
}

/// A string that is one of `values`: for `#[param(schema_with = ...)]` on query
/// parameters checked against a fixed list.
pub fn one_of(values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// A validated page request: fetch `limit + 1` rows older than `before`.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: i64,
    pub before: Option<Uuid>,
}

impl PageParams {
    pub fn page(&self) -> Result<Page, AppError> {
        let limit = self.limit.unwrap_or(20);
        let mut errors = Vec::new();
        if !(1..=100).contains(&limit) {
            errors.push(FieldError::new("limit", "must be between 1 and 100"));
        }
        let before = match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(cursor) => match decode(cursor) {
                Some(id) => Some(id),
                None => {
                    errors.push(FieldError::new("cursor", "is not a cursor from this API"));
                    None
                }
            },
        };
        if errors.is_empty() {
            Ok(Page { limit, before })
        } else {
            Err(AppError::validation(errors))
        }
    }
}

impl Page {
    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }
}

/// One page of a list, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paginated<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Paginated<T> {
    /// Builds the page from `limit + 1` fetched rows keyed by `id`.
    pub fn new(mut rows: Vec<T>, page: Page, id: impl Fn(&T) -> Uuid) -> Self {
        let more = rows.len() as i64 > page.limit;
        rows.truncate(page.limit as usize);
        let next_cursor = more.then(|| rows.last().map(|r| encode(id(r)))).flatten();
        Self {
            items: rows,
            next_cursor,
        }
    }
}

fn encode(id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn decode(cursor: &str) -> Option<Uuid> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    Uuid::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors_are_checked() {
        let params = |limit, cursor: Option<&str>| PageParams {
            limit,
            cursor: cursor.map(String::from),
        };
        assert_eq!(params(None, None).page().expect("default").limit, 20);
        assert!(params(Some(0), None).page().is_err());
        assert!(params(Some(101), None).page().is_err());
        assert!(params(Some(5), Some("garbage!")).page().is_err());
        let id = Uuid::now_v7();
        let page = params(Some(5), Some(&encode(id))).page().expect("valid");
        assert_eq!(page.before, Some(id));
    }

    #[test]
    fn the_cursor_pattern_says_which_cursors_decode() {
        // `^([A-Za-z0-9_-]{21}[AQgw])?$`: 22 URL-safe characters, the last one carrying
        // 2 bits of the id and 4 zero bits; anything else does not decode.
        assert_eq!(
            cursor_schema().pattern.as_deref(),
            Some("^([A-Za-z0-9_-]{21}[AQgw])?$")
        );
        for _ in 0..50 {
            let cursor = encode(Uuid::new_v4());
            assert_eq!(cursor.len(), 22);
            assert!(cursor.ends_with(['A', 'Q', 'g', 'w']), "{cursor}");
        }
        for bad in [
            "AAAAAAAAAAAAAAAAAAAAAB",
            "AAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(decode(bad).is_none(), "{bad}");
        }
        assert!(decode("__________________________w").is_none());
        assert!(decode("_____________________w").is_some());
    }
}
