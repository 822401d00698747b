//! Extractors whose rejections are answered as problem+json.

use axum::{
    body::Bytes,
    extract::{
        FromRequest, FromRequestParts, Request,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    app::AppState,
    client_address::{Cidr, ClientInfo},
    error::{AppError, ErrorCode, FieldError},
};

/// `Json<T>` whose rejections use the SPEC's error shape: 400 for broken JSON, 415 for a
/// missing or wrong content type, 413 for a body over the limit, 422 naming the field
/// for a missing or mistyped field.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<T, S> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(AppError::new(
                ErrorCode::UnsupportedMediaType,
                "expected a body with content type application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::new(
                    ErrorCode::PayloadTooLarge,
                    "the request body is larger than the limit",
                )
            } else {
                AppError::malformed("the request body could not be read")
            }
        })?;
        // PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
        if has_escaped_nul(&bytes) {
            return Err(AppError::invalid_field(
                "body",
                "text must not contain NUL (\\u0000) characters",
            ));
        }
        // What parsing builds is bounded by declared figures, not by what 1 MiB of `[0,0,…`
        // or `{"a":{"a":…` would make: values and nesting are counted on the bytes first.
        let (values, depth) = json_shape(&bytes);
        if values > MAX_JSON_VALUES || depth > MAX_JSON_DEPTH {
            return Err(AppError::invalid_field(
                "body",
                format!(
                    "holds {values} JSON values nested {depth} deep; a body holds at most \
                     {MAX_JSON_VALUES} values nested at most {MAX_JSON_DEPTH} deep"
                ),
            ));
        }
        // Every body of this API is a JSON object; serde would also build a struct from
        // an array of its fields in order, which no client means.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(AppError::invalid_field("body", "must be a JSON object"));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// `application/json` or any `application/*+json`.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The most JSON values (scalars and containers) one body may hold: the largest request
/// (a simulation of 10,000 samples) is about 30,000; 32,768 values parsed into a map
/// are about 7 MiB.
pub const MAX_JSON_VALUES: usize = 32_768;
/// The deepest nesting of arrays and objects one body may hold.
pub const MAX_JSON_DEPTH: usize = 64;

/// A JSON text's values (an upper bound: containers, plus one per element separator) and
/// its deepest nesting, counted outside strings in one pass over the bytes.
fn json_shape(json: &[u8]) -> (usize, usize) {
    let (mut values, mut depth, mut deepest) = (1usize, 0usize, 0usize);
    let mut in_string = false;
    let mut i = 0;
    while i < json.len() {
        let b = json[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    values += 1;
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                b',' => values += 1,
                _ => {}
            }
        }
        i += 1;
    }
    (values, deepest)
}

/// Whether a JSON text holds the escape `\u0000` (a raw NUL is not valid JSON anyway).
/// Escapes are walked in order, so an escaped backslash before `u0000` is not mistaken
/// for one.
fn has_escaped_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1) == Some(&b'u') && json.get(i + 2..i + 6) == Some(b"0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A parse failure of a body already known to be JSON-typed and within the limit.
fn json_rejection(rejection: JsonRejection) -> AppError {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            // serde's message names the field path and what was wrong with it.
            let message = std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_else(|| e.body_text());
            AppError::validation(vec![FieldError::new(field_of(&message), message)])
        }
        // Content type and size were checked before parsing; what is left is bad JSON.
        other => AppError::malformed(format!("the body is not valid JSON: {}", other.body_text())),
    }
}

/// The field a serde error message is about: `missing field `email`` → `email`,
/// `admin: missing field `email`` → `admin.email`, `admin.email: invalid type ...` →
/// `admin.email`; otherwise `body`.
fn field_of(message: &str) -> String {
    let (path, detail) = match message.split_once(": ") {
        Some((path, detail)) if !path.contains(' ') => (Some(path), detail),
        _ => (None, message),
    };
    let missing = detail
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (Some(path), Some(field)) => format!("{path}.{field}"),
        (None, Some(field)) => field.to_owned(),
        (Some(path), None) => path.to_owned(),
        (None, None) => "body".to_owned(),
    }
}

/// `Path<T>` answering a bad path parameter (say, an id that is not a UUID) with 422.
#[derive(Debug, Clone, Copy)]
pub struct AppPath<T>(pub T);

impl<T, S> FromRequestParts<S> for AppPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                Err(AppError::invalid_field("path", e.body_text()))
            }
            Err(other) => Err(AppError::internal(anyhow::anyhow!(other.body_text()))),
        }
    }
}

/// `Query<T>` answering a bad query string with 422.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // PostgreSQL text cannot hold NUL.
        if parts.uri.query().is_some_and(|q| q.contains("%00")) {
            return Err(AppError::invalid_field(
                "query",
                "parameters must not contain NUL (%00) characters",
            ));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                let message = std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| e.body_text());
                let field = match field_of(&message).as_str() {
                    "body" => "query".to_owned(),
                    field => field.to_owned(),
                };
                Err(AppError::invalid_field(field, message))
            }
            Err(other) => Err(AppError::malformed(other.body_text())),
        }
    }
}

/// The client of a request: the socket peer, or behind a trusted proxy the right-most
/// untrusted `X-Forwarded-For` hop (see [`crate::client`]).
impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(client_info(parts, &state.config.http.trusted_proxies))
    }
}

/// The client address of a request (see [`crate::client`]), without the rest of a
/// [`ClientInfo`]: for access control, which charges failed authentications to it.
pub fn client_ip(
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
    trusted: &[Cidr],
) -> Option<std::net::IpAddr> {
    let peer = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let values: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let forwarded = (!values.is_empty()).then(|| values.join(","));
    crate::client_address::client_ip(peer, forwarded.as_deref(), trusted)
}

/// The [`ClientInfo`] of a request, for layers that run before the extractors (per-IP
/// rate limits).
pub fn client_info(parts: &Parts, trusted: &[Cidr]) -> ClientInfo {
    let header = |name: &str| {
        let values: Vec<&str> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    };
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    ClientInfo::resolve(
        peer,
        header("x-forwarded-for").as_deref(),
        header("user-agent").as_deref(),
        trusted,
    )
}

#[cfg(test)]
mod tests {
    use super::{field_of, has_escaped_nul, json_shape};

    #[test]
    fn the_shape_counts_values_and_depth_outside_strings() {
        assert_eq!(
            json_shape(br#"{"a": [1, 2, {"b": "x,[{"}], "c": "\"]"}"#),
            (7, 3)
        );
        assert_eq!(json_shape(b"{}"), (2, 1));
        let deep = format!("{}{}", "[".repeat(70), "]".repeat(70));
        assert_eq!(json_shape(deep.as_bytes()).1, 70);
    }

    #[test]
    fn escaped_nul_is_found_and_escaped_backslashes_are_not_mistaken_for_it() {
        assert!(has_escaped_nul(br#"{"name": "a\u0000b"}"#));
        assert!(has_escaped_nul(br#"{"a\u0000": 1}"#));
        assert!(!has_escaped_nul(br#"{"name": "a\\u0000b"}"#));
        assert!(!has_escaped_nul(br#"{"name": "a\u0001b"}"#));
        assert!(!has_escaped_nul(br#"{"name": "plain"}"#));
    }

    #[test]
    fn field_names_come_from_serde_messages() {
        assert_eq!(
            field_of("missing field `email` at line 1 column 2"),
            "email"
        );
        assert_eq!(
            field_of("admin.email: invalid type: integer `1`, expected a string"),
            "admin.email"
        );
        assert_eq!(
            field_of("admin: missing field `email` at line 1 column 9"),
            "admin.email"
        );
        assert_eq!(
            field_of("invalid type: integer `1`, expected a map"),
            "body"
        );
    }
}
