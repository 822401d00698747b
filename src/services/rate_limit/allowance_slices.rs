//! Amortized round trips for busy tenants: a replica reserves a small slice of a
//! tenant's allowance per Redis call and admits the next requests from it locally.
//!
//! The slice is charged in Redis (the tenant's and the global bucket alike) when it is
//! reserved, so the cluster never admits more than the limit; what a slice leaves unused
//! when it expires is given back with the tenant's next reservation. The slice
//! adapts to this replica's demand: it starts at one request (an exact check), doubles
//! each time a slice is used up while fresh, halves when one expires with requests left,
//! and never exceeds 1% of the tenant's burst (so idle or quiet tenants, and every
//! free-plan tenant, are checked one request at a time). The headers stay truthful:
//! `remaining` is what Redis had left after the reservation plus what the slice still
//! holds.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use uuid::Uuid;

use super::{BucketState, Rate};

/// How long a reserved slice may be used.
pub const LEASE_TTL: Duration = Duration::from_millis(100);
/// The largest slice, whatever the tenant's burst.
const MAX_SLICE: u64 = 64;
/// Tenants tracked; past this, expired entries are dropped first, then all.
const MAX_TENANTS: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct Lease {
    rate: Rate,
    granted_at: Instant,
    /// Requests reserved and not yet admitted.
    left: u64,
    /// Size of the current slice and of the next reservation.
    slice: u64,
    next: u64,
    /// What Redis reported after the reservation.
    state: BucketState,
}

/// The leases of this replica, by tenant.
#[derive(Default)]
pub struct Leases {
    leases: Mutex<HashMap<Uuid, Lease>>,
}

/// The largest slice a rate allows: 1% of its burst, at most [`MAX_SLICE`].
pub fn max_slice(rate: Rate) -> u64 {
    (u64::from(rate.burst) / 100).clamp(1, MAX_SLICE)
}

impl Leases {
    /// Admits one request from a fresh slice of `tenant` reserved under `rate`, if any:
    /// returns the bucket state the headers report.
    pub fn take(&self, tenant: Uuid, rate: Rate) -> Option<BucketState> {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        let lease = leases.get_mut(&tenant)?;
        let age = lease.granted_at.elapsed();
        if lease.left == 0 || lease.rate != rate || age >= LEASE_TTL {
            return None;
        }
        lease.left -= 1;
        if lease.left == 0 {
            lease.next = (lease.slice * 2).min(max_slice(rate));
        }
        Some(BucketState {
            remaining: lease.state.remaining + lease.left,
            reset: lease.state.reset.saturating_sub(age),
            retry: Duration::ZERO,
        })
    }

    /// How many requests to reserve for `tenant` now, and how many of an expired slice
    /// to give back in the same call (they were charged and never used).
    pub fn want(&self, tenant: Uuid, rate: Rate) -> (u64, u64) {
        let max = max_slice(rate);
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        match leases.get_mut(&tenant) {
            None => (1, 0),
            // Under another rate the slice is worth another amount: let it go.
            Some(lease) if lease.rate != rate => (1, 0),
            Some(lease) => {
                let give_back = std::mem::take(&mut lease.left);
                if give_back > 0 {
                    // Expired with requests left: demand is lower than the slice.
                    lease.next = (lease.slice / 2).max(1);
                }
                (lease.next.clamp(1, max), give_back)
            }
        }
    }

    /// Records a reservation of `granted` requests, one of which is admitted now;
    /// returns the state the headers report. Requests still held from a reservation that
    /// crossed this one are kept (they are charged in Redis already).
    pub fn granted(
        &self,
        tenant: Uuid,
        rate: Rate,
        granted: u64,
        state: BucketState,
    ) -> BucketState {
        let max = max_slice(rate);
        let mut left = granted.saturating_sub(1);
        if max > 1 && granted > 0 {
            let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(old) = leases.get(&tenant)
                && old.rate == rate
                && old.granted_at.elapsed() < LEASE_TTL
            {
                left += old.left;
            }
            if leases.len() >= MAX_TENANTS && !leases.contains_key(&tenant) {
                leases.retain(|_, l| l.granted_at.elapsed() < LEASE_TTL);
                if leases.len() >= MAX_TENANTS {
                    leases.clear();
                }
            }
            let slice = granted;
            leases.insert(
                tenant,
                Lease {
                    rate,
                    granted_at: Instant::now(),
                    left,
                    slice,
                    // Used up at once (a single request had to reserve): demand is there.
                    next: if left == 0 {
                        (slice * 2).min(max)
                    } else {
                        slice
                    },
                    state,
                },
            );
        }
        BucketState {
            remaining: state.remaining + left,
            ..state
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(remaining: u64) -> BucketState {
        BucketState {
            remaining,
            reset: Duration::from_secs(1),
            retry: Duration::ZERO,
        }
    }

    #[test]
    fn small_bursts_are_never_sliced() {
        let leases = Leases::default();
        let free = Rate::per_minute(60);
        let t = Uuid::now_v7();
        assert_eq!(max_slice(free), 1);
        leases.granted(t, free, 1, state(59));
        assert_eq!(leases.take(t, free), None);
        assert_eq!(leases.want(t, free), (1, 0));
    }

    #[test]
    fn slices_grow_with_demand_and_headers_count_what_is_held() {
        let leases = Leases::default();
        let premium = Rate::per_minute(10_000);
        let t = Uuid::now_v7();
        assert_eq!(leases.want(t, premium), (1, 0), "the first check is exact");
        leases.granted(t, premium, 1, state(9_999));
        assert_eq!(leases.want(t, premium), (2, 0));
        let first = leases.granted(t, premium, 2, state(9_997));
        assert_eq!(
            first.remaining, 9_998,
            "Redis's remaining plus the one held here"
        );
        assert_eq!(leases.take(t, premium).map(|s| s.remaining), Some(9_997));
        assert_eq!(leases.take(t, premium), None, "used up");
        assert_eq!(
            leases.want(t, premium),
            (4, 0),
            "used up while fresh: double"
        );
        assert_eq!(max_slice(premium), 64);
        // An override changes the rate: the old slice is not used under the new one.
        leases.granted(t, premium, 4, state(9_990));
        assert_eq!(leases.take(t, Rate::per_minute(20_000)), None);
    }

    #[test]
    fn an_expired_slice_halves_the_next() {
        let leases = Leases::default();
        let premium = Rate::per_minute(10_000);
        let t = Uuid::now_v7();
        leases.granted(t, premium, 8, state(9_000));
        std::thread::sleep(LEASE_TTL + Duration::from_millis(10));
        assert_eq!(leases.take(t, premium), None, "expired");
        assert_eq!(
            leases.want(t, premium),
            (4, 7),
            "half the slice; the 7 unused go back"
        );
        assert_eq!(leases.want(t, premium), (4, 0), "given back once");
    }
}
