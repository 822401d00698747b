//! GCRA arithmetic, the same as `gcra.lua` runs in Redis, for the in-process limiter that
//! answers while Redis is unreachable.
//!
//! A bucket holds one number, its theoretical arrival time (TAT). A request fits when
//! the TAT, pushed one emission interval further, stays within `burst` intervals of now.
//! Memory per bucket is one integer, and nothing needs refilling on a timer.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// What one bucket looks like after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BucketState {
    /// Requests that still fit right now.
    pub remaining: u64,
    /// Until the bucket is full again.
    pub reset: Duration,
    /// Until one more request fits (zero unless it was refused).
    pub retry: Duration,
}

/// The parameters of one bucket: emission interval (µs) and burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub interval_us: u64,
    pub burst: u64,
}

/// Requests that fit in a bucket whose TAT is `tat` at `now`.
fn room(cell: Cell, tat: u64, now: u64) -> u64 {
    (now + cell.burst * cell.interval_us).saturating_sub(tat) / cell.interval_us
}

/// Grants up to `want` requests over all `cells` at once (all charged, or none), given
/// each bucket's current TAT; returns the grant, the new TATs and each bucket's state.
pub fn decide(
    cells: &[(Cell, Option<u64>)],
    want: u64,
    now: u64,
) -> (u64, Vec<u64>, Vec<BucketState>) {
    let tats: Vec<u64> = cells
        .iter()
        .map(|(_, tat)| tat.unwrap_or(now).max(now))
        .collect();
    let granted = cells
        .iter()
        .zip(&tats)
        .map(|((cell, _), &tat)| room(*cell, tat, now))
        .fold(want, u64::min);
    let mut states = Vec::with_capacity(cells.len());
    let mut new_tats = Vec::with_capacity(cells.len());
    for ((cell, _), &tat) in cells.iter().zip(&tats) {
        let tat = tat + granted * cell.interval_us;
        let retry = if granted == 0 {
            (tat + cell.interval_us).saturating_sub(cell.burst * cell.interval_us + now)
        } else {
            0
        };
        states.push(BucketState {
            remaining: room(*cell, tat, now),
            reset: Duration::from_micros(tat - now),
            retry: Duration::from_micros(retry),
        });
        new_tats.push(tat);
    }
    (granted, new_tats, states)
}

/// An in-process set of GCRA buckets with a bound on how many it holds.
pub struct LocalBuckets {
    epoch: Instant,
    max: usize,
    tats: Mutex<HashMap<String, u64>>,
}

impl LocalBuckets {
    pub fn new(max: usize) -> Self {
        Self {
            epoch: Instant::now(),
            max,
            tats: Mutex::new(HashMap::new()),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Like the Redis script: grants up to `want` requests over `buckets` at once.
    pub fn check(&self, buckets: &[(&str, Cell)], want: u64) -> (u64, Vec<BucketState>) {
        let now = self.now();
        let mut tats = self.tats.lock().unwrap_or_else(|e| e.into_inner());
        let cells: Vec<(Cell, Option<u64>)> = buckets
            .iter()
            .map(|(key, cell)| (*cell, tats.get(*key).copied()))
            .collect();
        let (granted, new_tats, states) = decide(&cells, want, now);
        if granted > 0 {
            if tats.len() + buckets.len() > self.max {
                // A bucket whose TAT has passed is full: forgetting it changes nothing.
                tats.retain(|_, tat| *tat > now);
                if tats.len() + buckets.len() > self.max {
                    metrics::counter!("tenantry_rate_limit_local_evictions_total").increment(1);
                    tats.clear();
                }
            }
            for ((key, _), tat) in buckets.iter().zip(new_tats) {
                match tats.get_mut(*key) {
                    Some(slot) => *slot = tat,
                    None => {
                        tats.insert((*key).to_owned(), tat);
                    }
                }
            }
        }
        (granted, states)
    }

    /// Gives back `count` requests to one bucket (a login that turned out to succeed).
    pub fn refund(&self, key: &str, cell: Cell, count: u64) {
        let mut tats = self.tats.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tat) = tats.get_mut(key) {
            *tat = tat.saturating_sub(count * cell.interval_us);
        }
    }

    /// Forgets every bucket (Redis is back and holds the shared state again).
    pub fn clear(&self) {
        self.tats.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.tats.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECOND: u64 = 1_000_000;

    fn per_minute(n: u64) -> Cell {
        Cell {
            interval_us: 60 * SECOND / n,
            burst: n,
        }
    }

    #[test]
    fn sixty_a_minute_admits_sixty_at_once_then_one_a_second() {
        let cell = per_minute(60);
        let mut tat = None;
        for i in 0..60 {
            let (granted, tats, states) = decide(&[(cell, tat)], 1, 0);
            assert_eq!(granted, 1, "request {i}");
            assert_eq!(states[0].remaining, 59 - i);
            tat = Some(tats[0]);
        }
        let (granted, _, states) = decide(&[(cell, tat)], 1, 0);
        assert_eq!(granted, 0);
        assert_eq!(states[0].retry, Duration::from_secs(1));
        assert_eq!(states[0].reset, Duration::from_secs(60));
        let (granted, _, _) = decide(&[(cell, tat)], 1, SECOND);
        assert_eq!(granted, 1, "one more fits a second later");
    }

    #[test]
    fn a_refusal_by_one_bucket_charges_none() {
        let roomy = per_minute(1000);
        let full = per_minute(1);
        let (granted, tats, _) = decide(&[(roomy, None), (full, None)], 1, 0);
        assert_eq!(granted, 1);
        let (granted, after, states) =
            decide(&[(roomy, Some(tats[0])), (full, Some(tats[1]))], 1, 0);
        assert_eq!(granted, 0);
        assert_eq!(after, tats, "nothing charged");
        assert_eq!(states[0].remaining, 999, "as before the refused request");
        assert!(states[1].retry > Duration::ZERO);
    }

    #[test]
    fn local_buckets_stay_bounded_and_keep_limiting() {
        let local = LocalBuckets::new(3);
        let cell = per_minute(2);
        for key in ["a", "b", "c", "d", "e"] {
            assert_eq!(local.check(&[(key, cell)], 1).0, 1);
        }
        assert!(local.len() <= 3);
        assert_eq!(local.check(&[("e", cell)], 1).0, 1);
        assert_eq!(
            local.check(&[("e", cell)], 1).0,
            0,
            "the third of two is refused"
        );
        local.refund("e", cell, 1);
        assert_eq!(local.check(&[("e", cell)], 1).0, 1, "a refund makes room");
    }

    proptest! {
        /// Over any sequence of arrivals, a bucket never admits more than its burst plus
        /// what the rate allows for the time that passed.
        #[test]
        fn never_admits_more_than_burst_plus_rate(
            per_min in 1u64..20_000,
            burst in 1u64..500,
            gaps in proptest::collection::vec(0u64..200_000, 1..400),
            wants in proptest::collection::vec(1u64..20, 1..400),
        ) {
            let cell = Cell { interval_us: 60 * SECOND / per_min, burst };
            let mut tat = None;
            let mut now = 0;
            let mut admitted = 0;
            for (gap, want) in gaps.iter().zip(wants.iter().cycle()) {
                now += gap;
                let (granted, tats, states) = decide(&[(cell, tat)], *want, now);
                prop_assert!(granted <= *want);
                prop_assert!(states[0].remaining <= burst);
                admitted += granted;
                tat = Some(tats[0]);
                prop_assert!(admitted <= burst + now / cell.interval_us);
            }
        }
    }
}
