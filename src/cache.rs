//! A small in-process cache with a time to live and a size bound.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::RwLock,
    time::{Duration, Instant},
};

/// Entries expire after a [`jittered`] share of `ttl`; when `max` entries are held, room is
/// made with [`make_room`], so memory stays bounded.
///
/// Every removal bumps a generation counter. A value loaded from storage is stored with
/// [`TtlCache::insert_loaded`], naming the generation read *before* the load: if an
/// invalidation happened meanwhile, the value may predate it and is not stored. So the
/// cache never keeps a value older than an invalidation it was told about.
pub struct TtlCache<K, V> {
    ttl: Duration,
    max: usize,
    inner: RwLock<Inner<K, V>>,
}

struct Inner<K, V> {
    generation: u64,
    /// Each value with the instant it expires.
    entries: HashMap<K, (Instant, V)>,
}

/// The share of a lifetime taken off at random, at most.
const JITTER: f64 = 0.5;

/// A lifetime between `ttl × (1 − JITTER)` and `ttl`, drawn afresh for every entry.
///
/// Entries loaded together — every tenant a replica serves, after it starts — would
/// otherwise all expire in the same second, be reloaded together by the next requests and
/// so stay in step for good: a burst of reloads (statements a connection has not planned
/// yet, signatures to verify) every lifetime, which is what the p99 of the many-tenant
/// benchmark showed (`docs/scaling.md`). Drawn lifetimes spread the reloads evenly; none
/// lasts longer than `ttl`.
pub fn jittered(ttl: Duration) -> Duration {
    ttl.mul_f64(1.0 - JITTER * fastrand::f64())
}

/// Makes room for one more entry in a map of at most `max`: expired entries go first, and
/// if every entry is `live`, an arbitrary eighth of them (in the map's iteration order,
/// which has nothing to do with use). A working set a little larger than `max` so costs a
/// few reloads per round, where starting afresh would reload all of it at once.
pub fn make_room<K, V>(entries: &mut HashMap<K, V>, max: usize, live: impl Fn(&V) -> bool) {
    if entries.len() < max {
        return;
    }
    entries.retain(|_, v| live(v));
    let mut evict = (entries.len() + 1).saturating_sub(max);
    if evict > 0 {
        evict = evict.max(max / 8);
        entries.retain(|_, _| {
            if evict == 0 {
                return true;
            }
            evict -= 1;
            false
        });
    }
}

/// The generation of a cache at some instant; see [`TtlCache::insert_loaded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(u64);

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            ttl,
            max,
            inner: RwLock::new(Inner {
                generation: 0,
                entries: HashMap::new(),
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner<K, V>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner<K, V>> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.read()
            .entries
            .get(key)
            .filter(|(until, _)| Instant::now() < *until)
            .map(|(_, v)| v.clone())
    }

    /// Take this before loading a value from storage; pass it to [`Self::insert_loaded`].
    pub fn generation(&self) -> Generation {
        Generation(self.read().generation)
    }

    /// Stores a value loaded after `seen` was taken, unless something was invalidated
    /// since (then the value may be stale and the next lookup loads again).
    pub fn insert_loaded(&self, seen: Generation, key: K, value: V) {
        let mut inner = self.write();
        if inner.generation == seen.0 {
            self.insert_locked(&mut inner, key, value);
        }
    }

    /// Stores a value that cannot be stale (it was just written by this process).
    pub fn insert(&self, key: K, value: V) {
        let mut inner = self.write();
        self.insert_locked(&mut inner, key, value);
    }

    fn insert_locked(&self, inner: &mut Inner<K, V>, key: K, value: V) {
        let now = Instant::now();
        make_room(&mut inner.entries, self.max, |(until, _)| now < *until);
        inner.entries.insert(key, (now + jittered(self.ttl), value));
    }

    pub fn remove(&self, key: &K) {
        let mut inner = self.write();
        inner.generation += 1;
        inner.entries.remove(key);
    }

    /// Drops every entry for which `stale` is true.
    pub fn remove_where(&self, stale: impl Fn(&K, &V) -> bool) {
        let mut inner = self.write();
        inner.generation += 1;
        inner.entries.retain(|k, (_, v)| !stale(k, v));
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
    fn entries_expire_and_the_size_stays_bounded() {
        let cache = TtlCache::new(Duration::from_millis(30), 3);
        cache.insert(1, "a");
        assert_eq!(cache.get(&1), Some("a"));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(&1), None);
        for i in 0..10 {
            cache.insert(i, "x");
        }
        assert!(cache.len() <= 3);
        cache.remove_where(|k, _| *k == 9);
        assert_eq!(cache.get(&9), None);
    }

    #[test]
    fn a_full_cache_of_live_entries_drops_an_eighth_not_everything() {
        let cache = TtlCache::new(Duration::from_secs(60), 80);
        for i in 0..80 {
            cache.insert(i, "x");
        }
        cache.insert(80, "x");
        assert_eq!(cache.len(), 71, "ten dropped, the new one stored");
        assert_eq!(cache.get(&80), Some("x"));
    }

    #[test]
    fn lifetimes_are_spread_over_the_last_half_of_the_ttl() {
        let ttl = Duration::from_secs(30);
        let lifetimes: Vec<Duration> = (0..1000).map(|_| jittered(ttl)).collect();
        assert!(lifetimes.iter().all(|l| *l >= ttl / 2 && *l <= ttl));
        // Spread, not all alike: some near either end of the range.
        assert!(lifetimes.iter().any(|l| *l < ttl * 5 / 8));
        assert!(lifetimes.iter().any(|l| *l > ttl * 7 / 8));
    }

    #[test]
    fn a_value_loaded_before_an_invalidation_is_not_stored() {
        let cache = TtlCache::new(Duration::from_secs(60), 10);
        let seen = cache.generation();
        // Another task invalidates while this one was loading.
        cache.remove(&1);
        cache.insert_loaded(seen, 1, "stale");
        assert_eq!(cache.get(&1), None);

        let seen = cache.generation();
        cache.insert_loaded(seen, 1, "fresh");
        assert_eq!(cache.get(&1), Some("fresh"));
    }
}
