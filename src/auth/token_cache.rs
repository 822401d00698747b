//! A per-replica cache of verified access tokens, keyed by the whole token string.
//!
//! Verifying an RS256 signature is the largest single CPU cost of an authenticated request
//! (`docs/benchmarks.md`); a client sends the same token for its whole lifetime, so the
//! answer of the first verify is kept (PostgREST's `jwt-cache-max-lifetime` and Envoy's
//! `jwt_cache_config` do the same). Only *successful* verifications are cached, and only
//! what the signature proves: revocation (the deny-list, a disabled user, a suspended
//! tenant) is checked by the caller after the cache on every request, so no revocation
//! decision is ever cached here.
//!
//! An entry lives until the earlier of the token's `exp` and a
//! [jittered](crate::cache::jittered) [`MAX_AGE`] (so tokens first seen together are not
//! verified again all in the same second); the cache holds at most [`MAX_ENTRIES`]
//! tokens, so memory stays bounded (~1 KiB an entry). Past that, a few are dropped to make
//! room ([`crate::cache::make_room`]): more clients than the bound cost a verify now and
//! then, not all of them at once.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use super::jwt::{Claims, JwtKeys, TokenError};

/// How long a verified token is trusted without verifying its signature again.
pub const MAX_AGE: Duration = Duration::from_secs(60);
/// Tokens held at most per replica (a token and its claims are about 1 KiB).
pub const MAX_ENTRIES: usize = 10_000;

/// Verified tokens and their claims, each until its deadline.
pub struct TokenCache {
    max_age: Duration,
    max: usize,
    entries: RwLock<HashMap<Box<str>, Entry>>,
}

struct Entry {
    /// The earlier of `exp` and the time of the verify plus `max_age`.
    until: Instant,
    claims: Arc<Claims>,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new(MAX_AGE, MAX_ENTRIES)
    }
}

impl TokenCache {
    pub fn new(max_age: Duration, max: usize) -> Self {
        Self {
            max_age,
            max,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The claims of `token`: from the cache when it was verified recently and has not
    /// expired, otherwise from [`JwtKeys::verify`] (whose answer is then cached when it
    /// is a success).
    pub fn verify_cached(&self, jwt: &JwtKeys, token: &str) -> Result<Arc<Claims>, TokenError> {
        let now = Instant::now();
        if let Some(claims) = self.lookup(token, now) {
            return Ok(claims);
        }
        let claims = Arc::new(jwt.verify(token)?);
        self.insert(token, claims.clone(), now, unix_now());
        Ok(claims)
    }

    fn lookup(&self, token: &str, now: Instant) -> Option<Arc<Claims>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(token)
            .filter(|entry| now < entry.until)
            .map(|entry| entry.claims.clone())
    }

    fn insert(&self, token: &str, claims: Arc<Claims>, now: Instant, now_unix: i64) {
        let Some(left) = claims
            .exp
            .checked_sub(now_unix)
            .and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0)
        else {
            return; // expires within the second: nothing worth keeping
        };
        let until = now + crate::cache::jittered(self.max_age).min(Duration::from_secs(left));
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        crate::cache::make_room(&mut entries, self.max, |entry| now < entry.until);
        entries.insert(token.into(), Entry { until, claims });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::auth::jwt::generate_rsa_pem;

    fn keys() -> JwtKeys {
        JwtKeys::from_pems(&generate_rsa_pem(), &[], "tenantry", "tenantry", 900).expect("keys")
    }

    fn claims_expiring_in(keys: &JwtKeys, seconds: i64) -> Arc<Claims> {
        let mut claims = keys.claims(Uuid::now_v7(), Some(Uuid::now_v7()), vec![]);
        claims.exp = unix_now() + seconds;
        Arc::new(claims)
    }

    #[test]
    fn a_verified_token_is_served_from_the_cache_and_a_bad_one_never_is() {
        let keys = keys();
        let cache = TokenCache::default();
        let token = keys
            .sign(&keys.claims(Uuid::now_v7(), None, vec![]))
            .expect("sign");
        let first = cache.verify_cached(&keys, &token).expect("verifies");
        let second = cache.verify_cached(&keys, &token).expect("cached");
        assert!(
            Arc::ptr_eq(&first, &second),
            "the second answer is the cached one"
        );

        let mut forged = token.clone();
        forged.push('A');
        assert_eq!(
            cache.verify_cached(&keys, &forged).err(),
            Some(TokenError::Invalid)
        );
        assert_eq!(cache.len(), 1, "failures are not cached");
    }

    #[test]
    fn an_entry_ends_at_the_earlier_of_exp_and_the_max_age() {
        let keys = keys();
        let cache = TokenCache::new(Duration::from_secs(60), 100);
        let now = Instant::now();
        let unix = unix_now();

        // Lives 10 s: exp comes first.
        cache.insert("short", claims_expiring_in(&keys, 10), now, unix);
        assert!(
            cache
                .lookup("short", now + Duration::from_secs(9))
                .is_some()
        );
        assert!(
            cache
                .lookup("short", now + Duration::from_secs(10))
                .is_none()
        );

        // Expires in 900 s: the (jittered: 30–60 s) max age comes first.
        cache.insert("long", claims_expiring_in(&keys, 900), now, unix);
        assert!(
            cache
                .lookup("long", now + Duration::from_secs(29))
                .is_some()
        );
        assert!(
            cache
                .lookup("long", now + Duration::from_secs(60))
                .is_none()
        );

        // Already expired: not kept at all.
        cache.insert("expired", claims_expiring_in(&keys, -1), now, unix);
        assert!(cache.lookup("expired", now).is_none());
    }

    #[test]
    fn the_size_stays_bounded() {
        let keys = keys();
        let cache = TokenCache::new(Duration::from_secs(60), 3);
        let now = Instant::now();
        for i in 0..10 {
            cache.insert(
                &format!("token-{i}"),
                claims_expiring_in(&keys, 900),
                now,
                unix_now(),
            );
            assert!(cache.len() <= 3);
        }
        assert!(cache.lookup("token-9", now).is_some(), "the newest is kept");
    }
}
