//! The request-path layer that is ours ([`edge`]): request id, span, log line, problem
//! rendering and request metrics; and the fallback and panic answers.

use std::time::{Duration, Instant};

use axum::{
    body::Body,
    extract::{MatchedPath, Request},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tracing::{Instrument, Span, field::Empty};
use uuid::{NoContext, Timestamp, Uuid};

use crate::error::{AppError, ErrorCause, ErrorCode, Problem};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request: the caller's `X-Request-Id` when it is sane, otherwise a
/// new UUIDv7.
#[derive(Debug, Clone)]
pub struct RequestId(HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        // Only ASCII ids are accepted or generated.
        self.0.to_str().unwrap_or_default()
    }

    fn from_header(value: &HeaderValue) -> Option<Self> {
        let bytes = value.as_bytes();
        let sane = !bytes.is_empty()
            && bytes.len() <= 128
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b));
        sane.then(|| Self(value.clone()))
    }

    fn generate() -> Self {
        // Time-ordered, without `now_v7`'s process-wide lock (which keeps ids of one
        // millisecond in order: a request id need not be); random bits from a
        // thread-local generator. Formatted on the stack: the header value is the only
        // allocation.
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let id = Uuid::new_v7(Timestamp::now(NoContext))
            .hyphenated()
            .encode_lower(&mut buf);
        Self(HeaderValue::from_str(id).expect("a UUID is a valid header value"))
    }
}

/// The per-request work at the edge, in one layer (each `from_fn` layer boxes a future
/// per request): gives the request an id (the caller's or a new one) and echoes it, runs
/// it inside its span ([`request_span`]), writes the one log line ([`log_response`]),
/// renders error bodies as problem+json ([`with_problem_body`]) and counts the request
/// and its latency by method, route template and status.
pub async fn edge(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(RequestId::from_header)
        .unwrap_or_else(RequestId::generate);
    req.extensions_mut().insert(id.clone());
    let method = req.method().clone();
    // The router's own `Arc<str>`: no copy of the text.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let span = request_span(&method, route, &id);
    let response = next.run(req).instrument(span.clone()).await;
    let latency = started.elapsed();
    span.in_scope(|| log_response(&response, latency));
    let mut response = with_problem_body(response, &id);
    crate::telemetry::record_request(&method, route, response.status(), latency);
    response.headers_mut().insert(X_REQUEST_ID.clone(), id.0);
    response
}

/// Writes the problem+json body of every error response: those of an [`AppError`] (which
/// left a [`Problem`] in the response extensions) and bare ones from the router or a
/// tower layer (405, timeouts), so the client always sees one shape with the request id.
fn with_problem_body(mut response: Response, request_id: &RequestId) -> Response {
    let problem = match response.extensions_mut().remove::<Problem>() {
        Some(problem) => problem,
        None if is_bare_error(&response) => bare_problem(response.status()),
        None => return response,
    };
    render(
        response,
        Problem {
            request_id: Some(request_id.as_str().to_owned()),
            ..problem
        },
    )
}

/// An error response with no body of ours: no JSON content type (a 405 from the router,
/// a timeout from a tower layer). JSON error bodies, such as the readiness report, stay.
fn is_bare_error(response: &Response) -> bool {
    let headers = response.headers();
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.to_str().unwrap_or_default().contains("json"));
    (response.status().is_client_error() || response.status().is_server_error())
        && !is_json
        && !headers.contains_key(header::CONTENT_ENCODING)
}

fn bare_problem(status: StatusCode) -> Problem {
    let code = ErrorCode::for_status(status);
    let detail = match code {
        ErrorCode::MethodNotAllowed => "the route does not accept this method",
        ErrorCode::ServiceUnavailable => "the request could not be completed in time",
        ErrorCode::PayloadTooLarge => "the request body is larger than the limit",
        _ => status.canonical_reason().unwrap_or("error"),
    };
    let mut problem = Problem::new(code, detail);
    // Keep the status we are describing, even when the code's own status differs (408).
    problem.status = status.as_u16();
    problem
}

fn render(response: Response, problem: Problem) -> Response {
    let (mut parts, _) = response.into_parts();
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Fallback for unknown routes.
pub async fn not_found() -> AppError {
    AppError::new(ErrorCode::NotFound, "no route matches this path")
}

/// What the panic catcher answers; the panic message may hold anything, so it only goes
/// to the log.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    AppError::internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}

/// The span of one request, named by its route template (`/api/v1/resources/{id}`,
/// never the raw path, so log fields stay bounded); access control fills in `tenant_id`
/// and `actor` with `Span::current().record(..)`, so every line logged inside the
/// request carries them.
fn request_span(method: &Method, route: &str, id: &RequestId) -> Span {
    tracing::info_span!(
        "request",
        method = %method,
        route,
        request_id = id.as_str(),
        tenant_id = Empty,
        actor = Empty,
    )
}

/// The one log line per request.
fn log_response(response: &Response, latency: Duration) {
    let status = response.status().as_u16();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    match response.extensions().get::<ErrorCause>() {
        Some(ErrorCause(cause)) => {
            tracing::error!(status, latency_ms, error = %cause, "request failed");
        }
        None if response.status().is_server_error() => {
            tracing::error!(status, latency_ms, "request failed");
        }
        None => tracing::info!(status, latency_ms, "request completed"),
    }
}
