//! Warnings about a lasting condition (a full buffer, an unreachable Redis), logged at
//! most once per interval however many requests meet it.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

/// Lets one caller through per `every` (the first at once); lock-free.
pub struct Throttle {
    epoch: Instant,
    every: Duration,
    /// Milliseconds since `epoch` (plus one) of the last pass; 0 = never.
    last_ms: AtomicU64,
}

impl Throttle {
    pub fn new(every: Duration) -> Self {
        Self {
            epoch: Instant::now(),
            every,
            last_ms: AtomicU64::new(0),
        }
    }

    /// True for the one caller whose warning is due now.
    pub fn ready(&self) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX) + 1;
        let last = self.last_ms.load(Ordering::Relaxed);
        let every = u64::try_from(self.every.as_millis()).unwrap_or(u64::MAX);
        (last == 0 || now.saturating_sub(last) >= every)
            && self
                .last_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Whether any caller has been let through.
    pub fn has_passed(&self) -> bool {
        self.last_ms.load(Ordering::Relaxed) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_caller_passes_per_interval() {
        let throttle = Throttle::new(Duration::from_secs(60));
        assert!(!throttle.has_passed());
        assert!(throttle.ready(), "the first warning goes out");
        assert!(!throttle.ready(), "the next waits for the interval");
        assert!(throttle.has_passed());
        let quick = Throttle::new(Duration::ZERO);
        assert!(quick.ready() && quick.ready());
    }
}
