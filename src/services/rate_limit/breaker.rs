//! Whether Redis is worth asking, so that an outage costs requests no waiting.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use crate::telemetry::Throttle;

/// While Redis is unreachable, how often one request tries it again.
const REDIS_RETRY: Duration = Duration::from_secs(1);
/// At most one warning per this interval while the fallback answers.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Whether Redis is worth asking: closed while it answers; open for [`REDIS_RETRY`] after
/// a failure, then one caller at a time probes it.
pub(super) struct Breaker {
    epoch: Instant,
    /// Milliseconds since `epoch` (plus one) when Redis may be tried again; 0 = closed.
    retry_at: AtomicU64,
    warning: Throttle,
}

impl Breaker {
    pub(super) fn new() -> Self {
        Self {
            epoch: Instant::now(),
            retry_at: AtomicU64::new(0),
            warning: Throttle::new(WARN_EVERY),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
    }

    pub(super) fn is_open(&self) -> bool {
        self.retry_at.load(Ordering::Relaxed) != 0
    }

    /// Closed: yes. Open: only when the retry time has come, and then only for the one
    /// caller that moves it on.
    pub(super) fn should_try(&self) -> bool {
        let retry_at = self.retry_at.load(Ordering::Relaxed);
        if retry_at == 0 {
            return true;
        }
        let now = self.now_ms();
        now >= retry_at
            && self
                .retry_at
                .compare_exchange(
                    retry_at,
                    now + ms(REDIS_RETRY),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// Redis failed: fall back, count the switch, warn at most once per [`WARN_EVERY`].
    pub(super) fn open(&self, reason: &str) {
        let now = self.now_ms();
        let was = self.retry_at.swap(now + ms(REDIS_RETRY), Ordering::Relaxed);
        if was == 0 {
            metrics::counter!("tenantry_rate_limit_fallback_total").increment(1);
            metrics::gauge!("tenantry_rate_limit_degraded").set(1.0);
        }
        if self.warning.ready() {
            tracing::warn!(
                reason,
                "Redis is unreachable: rate limits fall back to this replica's own counters"
            );
        }
    }

    /// Redis answered; true when that ends a fallback.
    pub(super) fn close(&self) -> bool {
        if self.retry_at.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let was_open = self.retry_at.swap(0, Ordering::Relaxed) != 0;
        if was_open {
            metrics::gauge!("tenantry_rate_limit_degraded").set(0.0);
        }
        was_open
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_lets_one_probe_through_after_the_retry_time() {
        let breaker = Breaker::new();
        assert!(breaker.should_try());
        breaker.open("test");
        assert!(breaker.is_open());
        assert!(!breaker.should_try());
        breaker
            .retry_at
            .store(breaker.now_ms().saturating_sub(1).max(1), Ordering::Relaxed);
        assert!(breaker.should_try(), "the first caller probes");
        assert!(!breaker.should_try(), "the others keep to the fallback");
        assert!(breaker.close());
        assert!(!breaker.close());
        assert!(breaker.should_try());
    }
}
