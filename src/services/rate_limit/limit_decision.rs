//! The answer to one check, and the response headers that describe it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderName, HeaderValue};

use super::{BucketState, LimitKind, Rate};
use crate::error::AppError;

/// The answer to one check, describing the bucket the response headers report: the
/// caller's own limit when admitted, the limit that refused it otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub allowed: bool,
    pub kind: LimitKind,
    pub rate: Rate,
    pub state: BucketState,
}

impl Decision {
    /// Whole seconds until the bucket is full again.
    pub fn reset_secs(&self) -> u64 {
        ceil_secs(self.state.reset)
    }

    /// Whole seconds until one more request fits (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        ceil_secs(self.state.retry).max(1)
    }

    /// The 429 answer for a refused request, with `Retry-After` and the headers that
    /// describe the limit.
    pub fn rejection(&self, detail: &'static str) -> AppError {
        self.headers().into_iter().fold(
            AppError::rate_limited(detail, self.retry_after_secs()),
            |error, (name, value)| error.with_header(name, value),
        )
    }

    /// The IETF `RateLimit-Policy` and `RateLimit` fields (named by the limit's kind)
    /// and the legacy `X-RateLimit-Limit`, `-Remaining` and `-Reset` (epoch seconds).
    pub fn headers(&self) -> [(HeaderName, HeaderValue); 5] {
        let name = self.kind.as_str();
        let remaining = self.state.remaining;
        let reset = self.reset_secs();
        let text = |s: String| HeaderValue::try_from(s).unwrap_or(HeaderValue::from_static(""));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        [
            (
                RATELIMIT_POLICY.clone(),
                text(format!(
                    "\"{name}\";q={};w={}",
                    self.rate.limit, self.rate.window_secs
                )),
            ),
            (
                RATELIMIT.clone(),
                text(format!("\"{name}\";r={remaining};t={reset}")),
            ),
            (
                X_RATELIMIT_LIMIT.clone(),
                HeaderValue::from(self.rate.limit),
            ),
            (X_RATELIMIT_REMAINING.clone(), HeaderValue::from(remaining)),
            (X_RATELIMIT_RESET.clone(), HeaderValue::from(now + reset)),
        ]
    }
}

pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
static X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

fn ceil_secs(d: Duration) -> u64 {
    d.as_micros()
        .div_ceil(1_000_000)
        .try_into()
        .unwrap_or(u64::MAX)
}
