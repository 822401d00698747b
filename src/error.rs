//! The one error type at the HTTP edge, answered as RFC 9457 problem+json.
//!
//! A handler returns [`AppError`]; its response carries the [`Problem`] in a response
//! extension and [`crate::http::middleware::problem`] writes the body, adding the request
//! id. Responses that did not come from an `AppError` (a 405 from the router, a timeout)
//! are given the same shape there, so every error a client sees looks alike.

use std::{borrow::Cow, sync::Arc};

use axum::{
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

/// The machine-readable error codes of the SPEC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    MalformedRequest,
    UnsupportedMediaType,
    ValidationFailed,
    Unauthenticated,
    InvalidCredentials,
    TokenExpired,
    Forbidden,
    TenantSuspended,
    EmailNotVerified,
    /// The tenant requires a second factor the caller's token has not passed.
    MfaRequired,
    NotFound,
    MethodNotAllowed,
    Conflict,
    TenantSlugTaken,
    EmailTaken,
    /// An `Idempotency-Key` sent again with a different request body.
    IdempotencyKeyReused,
    PreconditionFailed,
    PayloadTooLarge,
    /// 413: the tenant's storage quota (by plan) would be exceeded.
    StorageQuotaExceeded,
    RateLimited,
    ServiceUnavailable,
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            MalformedRequest => StatusCode::BAD_REQUEST,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Unauthenticated | InvalidCredentials | TokenExpired => StatusCode::UNAUTHORIZED,
            Forbidden | TenantSuspended | EmailNotVerified | MfaRequired => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Conflict | TenantSlugTaken | EmailTaken => StatusCode::CONFLICT,
            IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            PayloadTooLarge | StorageQuotaExceeded => StatusCode::PAYLOAD_TOO_LARGE,
            RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code for an error response that did not come from an [`AppError`].
    pub fn for_status(status: StatusCode) -> Self {
        use ErrorCode::*;
        match status.as_u16() {
            400 => MalformedRequest,
            401 => Unauthenticated,
            403 => Forbidden,
            404 => NotFound,
            405 => MethodNotAllowed,
            408 | 503 | 504 => ServiceUnavailable,
            409 => Conflict,
            412 => PreconditionFailed,
            413 => PayloadTooLarge,
            415 => UnsupportedMediaType,
            422 => ValidationFailed,
            429 => RateLimited,
            _ => Internal,
        }
    }

    fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            MalformedRequest => "MALFORMED_REQUEST",
            UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ValidationFailed => "VALIDATION_FAILED",
            Unauthenticated => "UNAUTHENTICATED",
            InvalidCredentials => "INVALID_CREDENTIALS",
            TokenExpired => "TOKEN_EXPIRED",
            Forbidden => "FORBIDDEN",
            TenantSuspended => "TENANT_SUSPENDED",
            EmailNotVerified => "EMAIL_NOT_VERIFIED",
            MfaRequired => "MFA_REQUIRED",
            NotFound => "NOT_FOUND",
            MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Conflict => "CONFLICT",
            TenantSlugTaken => "TENANT_SLUG_TAKEN",
            EmailTaken => "EMAIL_TAKEN",
            IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            PreconditionFailed => "PRECONDITION_FAILED",
            PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            StorageQuotaExceeded => "STORAGE_QUOTA_EXCEEDED",
            RateLimited => "RATE_LIMITED",
            ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Internal => "INTERNAL",
        }
    }

    /// A stable URI naming the problem type.
    fn type_uri(self) -> String {
        format!(
            "urn:tenantry:problem:{}",
            self.as_str().to_ascii_lowercase().replace('_', "-")
        )
    }
}

/// One invalid input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's path in the request (`admin.email`, `limit`), or `body`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The field errors found while a request becomes domain values, answered together as
/// one 422 `VALIDATION_FAILED`: a conversion parses each field with [`take`], remembering
/// its error, and ends with [`finish`], which builds the value only when every field
/// parsed (zero2prod's `TryFrom<FormData> for NewSubscriber`, every error kept).
///
/// ```ignore
/// let mut errors = FieldErrors::new();
/// let email = errors.take(Email::parse("email", &body.email));
/// let slug = errors.take(TenantSlug::parse(&body.slug));
/// errors.finish(|| Some(Signup { email: email?, slug: slug? }))
/// ```
///
/// [`take`]: FieldErrors::take
/// [`finish`]: FieldErrors::finish
#[derive(Debug, Default)]
pub struct FieldErrors {
    errors: Vec<FieldError>,
    /// Answer sorted by top-level field, as the declared rules of a request type are
    /// (`crate::http::validate::rules`); otherwise in the order found.
    by_field: bool,
}

impl FieldErrors {
    /// No errors yet; they are answered in the order found.
    pub fn new() -> Self {
        Self::default()
    }

    /// No errors yet; they are answered sorted by top-level field, as the declared rules
    /// of a request type are, each field's own in the order found.
    pub fn by_field() -> Self {
        Self {
            errors: Vec::new(),
            by_field: true,
        }
    }

    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    pub fn extend(&mut self, errors: impl IntoIterator<Item = FieldError>) {
        self.errors.extend(errors);
    }

    /// The value of one field's parse, or `None` with its error remembered.
    pub fn take<T>(&mut self, parsed: Result<T, FieldError>) -> Option<T> {
        parsed.map_err(|error| self.push(error)).ok()
    }

    /// Remembers the error of a rule that gives no value.
    pub fn check(&mut self, checked: Result<(), FieldError>) {
        self.take(checked);
    }

    /// Whether `field` (a top-level field and what is under it) has an error already.
    pub fn has(&self, field: &str) -> bool {
        self.errors.iter().any(|e| top_level(&e.field) == field)
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The value `build` makes of the parsed fields (`email?` for each taken one) when
    /// no field failed; otherwise every error at once.
    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, Self> {
        if !self.is_empty() {
            return Err(self);
        }
        // Every `take` that gave `None` remembered an error, so `build` has its values.
        build().ok_or_else(|| {
            let mut errors = self;
            errors.push(FieldError::new("body", "is invalid"));
            errors
        })
    }

    /// The errors in the order they are answered.
    pub fn into_vec(mut self) -> Vec<FieldError> {
        if self.by_field {
            // Stable: a field's own errors keep their order (`roles`, then `roles[3]`).
            self.errors
                .sort_by(|a, b| top_level(&a.field).cmp(top_level(&b.field)));
        }
        self.errors
    }
}

/// `admin` of `admin.email`, `roles` of `roles[3]`.
fn top_level(path: &str) -> &str {
    path.split(['.', '[']).next().unwrap_or(path)
}

impl From<FieldErrors> for AppError {
    fn from(errors: FieldErrors) -> Self {
        Self::validation(errors.into_vec())
    }
}

/// An RFC 9457 problem document, as every error response carries it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: ErrorCode,
    /// The `X-Request-Id` of the request, to quote when reporting a problem.
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl Problem {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        let status = code.status();
        Self {
            type_uri: code.type_uri(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code,
            request_id: None,
            errors: None,
        }
    }
}

/// The internal cause of an error response, kept for the request's log line and never
/// shown to the client.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub Arc<str>);

/// An error answered to the client.
#[derive(Debug)]
pub struct AppError {
    code: ErrorCode,
    detail: Cow<'static, str>,
    errors: Vec<FieldError>,
    cause: Option<anyhow::Error>,
    /// Headers the answer carries besides the problem (`Retry-After` on a 429).
    headers: Vec<(HeaderName, HeaderValue)>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            detail: detail.into(),
            errors: Vec::new(),
            cause: None,
            headers: Vec::new(),
        }
    }

    /// 429 `RATE_LIMITED`, with `Retry-After` (whole seconds, at least 1).
    pub fn rate_limited(detail: impl Into<Cow<'static, str>>, retry_after_secs: u64) -> Self {
        Self::new(ErrorCode::RateLimited, detail).with_header(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs.max(1)),
        )
    }

    /// Adds a header to the answer.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn malformed(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::MalformedRequest, detail)
    }

    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "the resource does not exist")
    }

    pub fn forbidden(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Forbidden, detail)
    }

    pub fn unauthenticated(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Unauthenticated, detail)
    }

    pub fn conflict(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(code, detail)
    }

    /// 422 with one entry per invalid field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self {
            errors,
            ..Self::new(
                ErrorCode::ValidationFailed,
                "the request has invalid fields",
            )
        }
    }

    /// 422 for one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    pub fn unavailable(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::ServiceUnavailable, detail)
    }

    /// 500: the client sees a fixed text; `cause` goes to the log.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new(ErrorCode::Internal, "an unexpected error occurred")
        }
    }

    fn problem(&self) -> Problem {
        let mut problem = Problem::new(self.code, self.detail.clone());
        if !self.errors.is_empty() {
            problem.errors = Some(self.errors.clone());
        }
        problem
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)?;
        if let Some(cause) = &self.cause {
            write!(f, " ({cause:#})")?;
        }
        Ok(())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = self.code.status().into_response();
        response.extensions_mut().insert(self.problem());
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        if let Some(cause) = &self.cause {
            response
                .extensions_mut()
                .insert(ErrorCause(format!("{cause:#}").into()));
        }
        response
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        Self::internal(e)
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            // A row that is not there, or belongs to another tenant, is simply not found.
            sqlx::Error::RowNotFound => Self::not_found(),
            sqlx::Error::PoolTimedOut => Self {
                cause: Some(e.into()),
                ..Self::unavailable("the database is busy, try again")
            },
            e => Self::internal(e),
        }
    }
}

/// Maps a unique-constraint violation to a conflict, at the call site
/// (`.map_err(on_unique("tenants_slug_key", ...))`).
pub fn on_unique(
    constraint: &'static str,
    conflict: impl FnOnce() -> AppError,
) -> impl FnOnce(sqlx::Error) -> AppError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some(constraint) => conflict(),
        _ => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_even(field: &str, n: u32) -> Result<u32, FieldError> {
        if n.is_multiple_of(2) {
            Ok(n)
        } else {
            Err(FieldError::new(field, "must be even"))
        }
    }

    #[test]
    fn finish_builds_the_value_when_every_field_parsed() {
        let mut errors = FieldErrors::new();
        let a = errors.take(parse_even("a", 2));
        let b = errors.take(parse_even("b", 4));
        assert_eq!(errors.finish(|| Some((a?, b?))).ok(), Some((2, 4)));
    }

    #[test]
    fn every_field_error_is_kept_in_the_order_found() {
        let mut errors = FieldErrors::new();
        let b = errors.take(parse_even("b", 1));
        let a = errors.take(parse_even("a", 3));
        errors.check(Ok(()));
        assert!(errors.has("a") && errors.has("b") && !errors.has("c"));
        let errors = errors.finish(|| Some((a?, b?))).expect_err("two errors");
        let fields: Vec<String> = errors.into_vec().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["b", "a"]);
    }

    #[test]
    fn by_field_sorts_by_the_top_level_field_and_keeps_each_fields_order() {
        let mut errors = FieldErrors::by_field();
        errors.push(FieldError::new("roles", "too many"));
        errors.push(FieldError::new("roles[2]", "too long"));
        errors.push(FieldError::new("admin.password", "short"));
        errors.push(FieldError::new("admin.email", "bad"));
        errors.push(FieldError::new("name", "blank"));
        assert!(errors.has("admin"));
        let fields: Vec<String> = errors.into_vec().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["admin.password", "admin.email", "name", "roles", "roles[2]"]
        );
    }

    #[test]
    fn the_answer_is_one_validation_problem_with_every_field() {
        let mut errors = FieldErrors::new();
        errors.push(FieldError::new("email", "must be an email address"));
        errors.push(FieldError::new("plan", "unknown"));
        let problem = AppError::from(errors).problem();
        assert_eq!(problem.status, 422);
        assert_eq!(problem.code, ErrorCode::ValidationFailed);
        assert_eq!(problem.detail, "the request has invalid fields");
        assert_eq!(problem.errors.map(|e| e.len()), Some(2));
    }
}
