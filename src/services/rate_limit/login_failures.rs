//! Failed logins per tenant and email: 10 per 15 minutes, counting failures only.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use super::{Decision, LOGIN_FAILURES, LimitKind, Rate, RateLimiter};
use crate::error::AppError;

/// A login attempt charged against its account's failure budget.
#[must_use = "a successful login gives its charge back"]
pub struct LoginAttempt {
    key: Option<String>,
}

impl LoginAttempt {
    /// The login did not fail on its credentials: the charge is given back, so only
    /// failures count.
    pub async fn succeeded(self, limiter: &RateLimiter) {
        if let Some(key) = &self.key {
            limiter.refund(key, LOGIN_FAILURES).await;
        }
    }
}

/// Gives one request back to a GCRA bucket.
pub(super) const REFUND: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
tat = tat - tonumber(ARGV[1])
if tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.floor((tat - now) / 1000) + 1)
end
return 1
";

impl RateLimiter {
    /// Before a login: refuses (429) when this tenant and email already failed
    /// [`LOGIN_FAILURES`] times recently; otherwise charges one failure up front, which
    /// [`LoginAttempt::succeeded`] gives back. Charging first means parallel guesses
    /// cannot all slip through before the first failure is counted.
    ///
    /// `email` should be the address as stored when the account exists: the lookup
    /// matches look-alikes (`İ` for `i`) that would otherwise each get a budget of their own.
    pub async fn login_attempt(&self, tenant: &str, email: &str) -> Result<LoginAttempt, AppError> {
        let email = Sha256::digest(email.trim().to_lowercase().as_bytes());
        let key = format!(
            "{}login:{}:{}",
            self.prefix,
            tenant.trim().to_lowercase(),
            hex(&email[..16])
        );
        self.attempt(key).await
    }

    /// [`Self::login_attempt`] for a platform operator (`POST /api/v1/admin/login`): the
    /// same budget, 10 failures per email per 15 minutes, in a key space of its own (a
    /// tenant cannot spend an operator's budget).
    pub async fn operator_login_attempt(&self, email: &str) -> Result<LoginAttempt, AppError> {
        let email = Sha256::digest(email.trim().to_lowercase().as_bytes());
        let key = format!("{}login-operator:{}", self.prefix, hex(&email[..16]));
        self.attempt(key).await
    }

    async fn attempt(&self, key: String) -> Result<LoginAttempt, AppError> {
        if !self.enabled {
            return Ok(LoginAttempt { key: None });
        }
        let buckets = [(
            Cow::Borrowed(key.as_str()),
            LimitKind::Login,
            LOGIN_FAILURES,
        )];
        let (granted, states, _) = self.take(&buckets, 1, 0).await;
        self.count(LimitKind::Login, granted > 0);
        if granted == 0 {
            let decision = Decision {
                allowed: false,
                kind: LimitKind::Login,
                rate: LOGIN_FAILURES,
                state: states[0],
            };
            return Err(
                decision.rejection("too many failed logins for this account; try again later")
            );
        }
        Ok(LoginAttempt { key: Some(key) })
    }

    /// Gives one failure back (in Redis, or in the fallback while Redis is away).
    async fn refund(&self, key: &str, rate: Rate) {
        let cell = rate.cell();
        if !self.breaker.is_open() {
            let refund = async {
                let mut conn = self.redis.clone();
                self.refund_script
                    .key(key)
                    .arg(cell.interval_us)
                    .invoke_async::<i64>(&mut conn)
                    .await
            };
            if let Ok(Ok(_)) = tokio::time::timeout(self.timeout, refund).await {
                return;
            }
        }
        self.local.refund(key, cell, 1);
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
