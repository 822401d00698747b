//! Logged-out access tokens, held in memory on every replica so that checking a token
//! costs no round trip — and never forgotten while they could still verify.
//!
//! The set is bounded. When it is full (after dropping expired entries), a new logout is
//! not stored here; instead the set remembers until when it may be missing entries, and
//! until then a token it does not hold is looked up in Redis (where every logout is
//! stored, expiring with its token). If Redis cannot answer either, the token is refused:
//! the deny-list fails closed, never open.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

use uuid::Uuid;

/// What the in-memory set knows about a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Denied,
    /// Not denied, for certain.
    Allowed,
    /// The set overflowed recently and may miss this token: ask Redis.
    Unknown,
}

pub struct DenyList {
    /// How long an entry must be kept: the longest an access token can still verify.
    keep: Duration,
    max: usize,
    inner: RwLock<Inner>,
}

struct Inner {
    entries: HashMap<Uuid, Instant>,
    /// Until then, tokens that are not in `entries` may still have been logged out.
    incomplete_until: Option<Instant>,
}

impl DenyList {
    pub fn new(keep: Duration, max: usize) -> Self {
        Self {
            keep,
            max: max.max(1),
            inner: RwLock::new(Inner {
                entries: HashMap::new(),
                incomplete_until: None,
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a logout; when the set is full, marks it incomplete instead.
    pub fn insert(&self, jti: Uuid) {
        let now = Instant::now();
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if inner.entries.len() >= self.max && !inner.entries.contains_key(&jti) {
            inner.entries.retain(|_, until| *until > now);
            if inner.entries.len() >= self.max {
                inner.incomplete_until = Some(now + self.keep);
                metrics::counter!("tenantry_deny_list_overflow_total").increment(1);
                return;
            }
        }
        inner.entries.insert(jti, now + self.keep);
    }

    pub fn lookup(&self, jti: &Uuid) -> Lookup {
        let now = Instant::now();
        // Every bearer request asks: readers do not wait for each other.
        let inner = self.read();
        match inner.entries.get(jti) {
            Some(until) if *until > now => Lookup::Denied,
            _ if inner.incomplete_until.is_some_and(|until| until > now) => Lookup::Unknown,
            _ => Lookup::Allowed,
        }
    }

    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_set_sends_unknown_tokens_to_the_fallback_instead_of_forgetting() {
        let list = DenyList::new(Duration::from_secs(60), 2);
        let [a, b, c, d] = [(); 4].map(|_| Uuid::now_v7());
        assert_eq!(list.lookup(&a), Lookup::Allowed);
        list.insert(a);
        list.insert(b);
        list.insert(c); // over capacity: not stored, but not forgotten either
        assert_eq!(list.lookup(&a), Lookup::Denied);
        assert_eq!(list.lookup(&b), Lookup::Denied);
        assert_eq!(list.lookup(&c), Lookup::Unknown);
        assert_eq!(list.lookup(&d), Lookup::Unknown);
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn expired_entries_make_room() {
        let list = DenyList::new(Duration::from_millis(20), 1);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        list.insert(a);
        std::thread::sleep(Duration::from_millis(30));
        list.insert(b);
        assert_eq!(list.lookup(&b), Lookup::Denied);
        assert_eq!(list.lookup(&a), Lookup::Allowed);
    }
}
