//! `Idempotency-Key` on every tenant `POST` that creates or sends (onboarding has its own,
//! in `services::onboarding`): a client retrying a request whose answer it never saw gets
//! the first answer, and nothing is created or sent twice.
//!
//! The record lives in Redis under the tenant, the principal, the route and the key, for
//! 24 h: while the first request runs it holds the request's fingerprint (SHA-256 of the
//! method, route and body); once it has answered 2xx, the fingerprint and the answer. A
//! retry with the same body answers that (with `Idempotent-Replayed: true`); another body
//! → 422 `IDEMPOTENCY_KEY_REUSED`; a retry while the first still runs → 409. A first
//! request that fails (4xx, 5xx) leaves no record: nothing was created, a retry runs anew.
//! Answers are stored without the credentials they may carry (an API key's `key`, a
//! webhook endpoint's `secret`, tokens, recovery codes): a replay never hands them out
//! again. Without Redis, a request that asks for idempotency is refused (503) rather than
//! risk running twice.

use std::time::Duration;

use axum::{
    body::{Body, to_bytes},
    extract::{MatchedPath, Request},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{
    app::AppState,
    auth::principal::Principal,
    error::{AppError, ErrorCode},
};

/// How long a key answers retries.
const TTL: Duration = Duration::from_secs(24 * 3600);

/// How long a first request may run before a retry may run in its place.
const IN_FLIGHT: Duration = Duration::from_secs(120);

/// The largest request body fingerprinted here (the API's JSON limit is lower).
const MAX_BODY: usize = 2 * 1024 * 1024;

/// Fields that hold a credential: never stored, so never replayed.
const SECRET_FIELDS: &[&str] = &[
    "key",
    "secret",
    "tokens",
    "access_token",
    "refresh_token",
    "recovery_codes",
    "password",
];

/// Runs `inner` under the request's `Idempotency-Key`, when it has one and is a tenant
/// principal's `POST` with a JSON (or empty) body.
pub async fn honour<F>(app: &AppState, req: Request, inner: impl FnOnce(Request) -> F) -> Response
where
    F: Future<Output = Response>,
{
    let Some(key) = req.headers().get("idempotency-key").cloned() else {
        return inner(req).await;
    };
    let Some(Principal::Tenant(principal)) = req.extensions().get::<Principal>() else {
        return inner(req).await;
    };
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/"));
    if req.method() != axum::http::Method::POST || multipart {
        return inner(req).await;
    }
    let Some(key) = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
    else {
        return AppError::invalid_field("Idempotency-Key", "must be 1 to 255 visible characters")
            .into_response();
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let record = app.redis_key(&format!(
        "idem:{}:{}:{}:{}",
        principal.tenant_id(),
        principal.actor,
        hex(&Sha256::digest(route.as_bytes())),
        hex(&Sha256::digest(key.as_bytes())),
    ));
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return AppError::new(
                ErrorCode::PayloadTooLarge,
                "the body is larger than the limit",
            )
            .into_response();
        }
    };
    let fingerprint = {
        let mut hash = Sha256::new();
        hash.update(route.as_bytes());
        hash.update([0]);
        hash.update(&bytes);
        hex(&hash.finalize())
    };
    let mut redis = app.redis.clone();
    let claimed: Result<Option<String>, _> = tokio::time::timeout(
        crate::redis::TIMEOUT,
        redis::cmd("SET")
            .arg(&record)
            .arg(format!("running:{fingerprint}"))
            .arg("NX")
            .arg("PX")
            .arg(IN_FLIGHT.as_millis() as u64)
            .query_async(&mut redis),
    )
    .await
    .unwrap_or_else(|_| Err(redis::RedisError::from(std::io::Error::other("timeout"))));
    match claimed {
        Ok(Some(_)) => {}
        Ok(None) => return replay(&mut redis, &record, &fingerprint).await,
        Err(e) => {
            tracing::warn!(error = %e, "idempotency record unavailable");
            return unavailable();
        }
    }
    let response = inner(Request::from_parts(parts, Body::from(bytes))).await;
    if !response.status().is_success() {
        let _: Result<(), _> = redis::cmd("DEL").arg(&record).query_async(&mut redis).await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let stored = serde_json::json!({
        "status": parts.status.as_u16(),
        "body": serde_json::from_slice::<Value>(&bytes).map(without_secrets).unwrap_or(Value::Null),
    });
    let saved: Result<(), _> = redis::cmd("SET")
        .arg(&record)
        .arg(format!("done:{fingerprint}:{stored}"))
        .arg("PX")
        .arg(TTL.as_millis() as u64)
        .query_async(&mut redis)
        .await;
    if let Err(e) = saved {
        tracing::warn!(error = %e, "could not store the idempotent answer; a retry runs anew");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The answer to a retry: the first answer, a conflict while it runs, or a 422 for another
/// request under the same key.
async fn replay(redis: &mut crate::redis::Redis, record: &str, fingerprint: &str) -> Response {
    let value: Option<String> = match redis::cmd("GET").arg(record).query_async(redis).await {
        Ok(value) => value,
        Err(_) => return unavailable(),
    };
    let Some(value) = value else {
        // Expired or given up between the two commands: the client retries.
        return in_flight();
    };
    let (state, rest) = value.split_once(':').unwrap_or(("", ""));
    let (stored_fingerprint, stored) = rest.split_once(':').unwrap_or((rest, ""));
    if stored_fingerprint != fingerprint {
        return AppError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used with a different request",
        )
        .into_response();
    }
    if state != "done" {
        return in_flight();
    }
    let stored: Value = serde_json::from_str(stored).unwrap_or(Value::Null);
    let status = stored["status"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(u16::try_from(s).ok()?).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = (status, axum::Json(stored["body"].clone())).into_response();
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

fn in_flight() -> Response {
    AppError::conflict(
        ErrorCode::Conflict,
        "a request with this Idempotency-Key is still running; retry it later",
    )
    .into_response()
}

fn unavailable() -> Response {
    AppError::new(
        ErrorCode::ServiceUnavailable,
        "idempotency records are unavailable; retry later",
    )
    .into_response()
}

/// The answer as stored: credentials removed, at any depth.
fn without_secrets(mut value: Value) -> Value {
    match &mut value {
        Value::Object(fields) => {
            fields.retain(|name, _| !SECRET_FIELDS.contains(&name.as_str()));
            for field in fields.values_mut() {
                *field = without_secrets(field.take());
            }
        }
        Value::Array(items) => {
            for item in items {
                *item = without_secrets(item.take());
            }
        }
        _ => {}
    }
    value
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_answers_keep_no_credential() {
        let answer = serde_json::json!({
            "id": "k1", "key": "tnt_live_x", "nested": {"tokens": {"access_token": "a"}, "name": "n"},
            "items": [{"secret": "whsec_x", "url": "u"}],
        });
        assert_eq!(
            without_secrets(answer),
            serde_json::json!({"id": "k1", "nested": {"name": "n"}, "items": [{"url": "u"}]})
        );
    }
}
