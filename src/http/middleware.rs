//! The request-path layers that are ours: request id and metrics, problem rendering, and
//! the per-request log line.

use std::time::{Duration, Instant};

use axum::{
    body::Body,
    extract::{MatchedPath, Request},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tracing::{Span, field::Empty};
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

/// Outermost layer: gives every request an id and echoes it on the response, and counts
/// the request and its latency by method, route template and status. One layer for both:
/// each `from_fn` layer boxes a future per request.
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
    let mut response = next.run(req).await;
    crate::telemetry::record_request(
        &method,
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        response.status(),
        started.elapsed(),
    );
    response.headers_mut().insert(X_REQUEST_ID.clone(), id.0);
    response
}

/// Writes the problem+json body of every error response: those of an [`AppError`] (which
/// left a [`Problem`] in the response extensions) and bare ones from the router or a
/// tower layer (405, timeouts), so the client always sees one shape with the request id.
pub async fn problem(req: Request, next: Next) -> Response {
    // A cheap handle (the header's bytes are shared); text only for an error body.
    let request_id = req.extensions().get::<RequestId>().cloned();
    let mut response = next.run(req).await;
    let problem = match response.extensions_mut().remove::<Problem>() {
        Some(problem) => problem,
        None if is_bare_error(&response) => bare_problem(response.status()),
        None => return response,
    };
    render(
        response,
        Problem {
            request_id: request_id.map(|id| id.as_str().to_owned()),
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

/// The route template of a request (`/api/v1/resources/{id}`), never the raw path, so
/// metric labels and log fields stay bounded.
fn route_of(req: &Request) -> &str {
    req.extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
}

/// The span of one request; later layers fill in `tenant_id` and `actor` with
/// `Span::current().record(..)`, so the request's log line carries them.
pub fn request_span(req: &Request) -> Span {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(RequestId::as_str)
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %req.method(),
        route = route_of(req),
        request_id,
        tenant_id = Empty,
        actor = Empty,
    )
}

/// The one log line per request.
pub fn log_response(response: &Response, latency: Duration, _span: &Span) {
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
