//! Retry delays: exponential from `JOB_RETRY_BASE_MS`, capped at a minute, with jitter.

use std::time::Duration;

/// The longest wait before a retry.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// The delay before attempt `attempt + 1`, after `attempt` (≥ 1) failed: `base · 2^(attempt-1)`
/// capped at [`MAX_DELAY`], then "equal jitter" (a uniform draw from the upper half), so
/// retries of jobs that failed together spread out but never come sooner than half the
/// nominal delay.
pub fn delay(base: Duration, attempt: i32, jitter: f64) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    let nominal = base.saturating_mul(1 << exponent).min(MAX_DELAY);
    let half = nominal / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// A jitter draw in `[0, 1)` without a random number crate: the sub-second clock
/// scrambled through a UUIDv4 (which is random).
pub fn jitter() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64;
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_a_minute_and_jitter_stays_in_the_upper_half() {
        let base = Duration::from_millis(1000);
        assert_eq!(delay(base, 1, 1.0), Duration::from_millis(1000));
        assert_eq!(delay(base, 2, 1.0), Duration::from_millis(2000));
        assert_eq!(delay(base, 3, 0.0), Duration::from_millis(2000));
        assert_eq!(delay(base, 30, 1.0), MAX_DELAY);
        for attempt in 1..40 {
            let d = delay(base, attempt, jitter());
            assert!(d <= MAX_DELAY, "{d:?}");
            assert!(d >= delay(base, attempt, 0.0));
        }
    }
}
