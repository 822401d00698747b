//! The per-route steps after access control: rate limiting, then metering.
//!
//! Both read the [`Principal`] that access control left in the request extensions, so
//! [`super::access::guard`] runs them after it; `inner` is the rest of the route.

use std::{future::Future, time::Instant};

use axum::{
    body::HttpBody,
    extract::Request,
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};

use crate::{
    app::AppState,
    auth::principal::Principal,
    http::extract::client_info,
    services::rate_limit::{Decision, RATELIMIT_POLICY, Subject},
};

/// Checks the request against its limits (tenant or client IP, and global), answers 429
/// when one refuses it, and puts the `RateLimit` headers on every answer.
pub async fn rate_limit<F>(
    app: &AppState,
    req: Request,
    inner: impl FnOnce(Request) -> F,
) -> Response
where
    F: Future<Output = Response>,
{
    if !app.limits.is_enabled() {
        return inner(req).await;
    }
    let tenant = match req.extensions().get::<Principal>() {
        Some(Principal::Tenant(p)) => Some(Some((p.tenant.id, p.tenant.plan))),
        Some(Principal::Platform { .. }) => Some(None),
        None => None,
    };
    let (req, subject) = match tenant {
        Some(Some((id, plan))) => (req, Subject::Tenant { id, plan }),
        Some(None) => (req, Subject::Platform),
        None => {
            let (parts, body) = req.into_parts();
            let client = client_info(&parts, &app.config.http.trusted_proxies);
            let ip = client.ip.and_then(|ip| ip.parse().ok());
            (Request::from_parts(parts, body), Subject::Client(ip))
        }
    };
    let Some(decision) = app.limits.check(subject).await else {
        return inner(req).await;
    };
    let mut response = if decision.allowed {
        inner(req).await
    } else {
        decision
            .rejection("rate limit exceeded; retry after the time in Retry-After")
            .into_response()
    };
    write_headers(response.headers_mut(), &decision);
    response
}

/// Puts the limit's headers on an answer, unless a handler answered with its own (the
/// failed-login limit's 429).
fn write_headers(headers: &mut HeaderMap, decision: &Decision) {
    if headers.contains_key(&RATELIMIT_POLICY) {
        return;
    }
    for (name, value) in decision.headers() {
        headers.insert(name, value);
    }
}

/// Records the usage of every request of an authenticated tenant principal: one
/// request, its handler time and body sizes (as declared: `Content-Length` in, the
/// response body's known length out; streamed bodies count what is known up front).
/// Recording is an in-memory addition; nothing here waits on the database.
pub async fn meter<F>(app: &AppState, req: Request, inner: impl FnOnce(Request) -> F) -> Response
where
    F: Future<Output = Response>,
{
    let tenant = match req.extensions().get::<Principal>() {
        Some(Principal::Tenant(p)) if app.meter.is_enabled() => p.tenant.id,
        _ => return inner(req).await,
    };
    let bytes_in = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| req.body().size_hint().lower());
    let started = Instant::now();
    let response = inner(req).await;
    let hint = response.body().size_hint();
    let bytes_out = hint.exact().unwrap_or(hint.lower());
    app.meter
        .record_request(tenant, started.elapsed(), bytes_in, bytes_out);
    response
}
