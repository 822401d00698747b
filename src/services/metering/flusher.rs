//! The flusher of the usage buffer: a background subsystem of every process that meters.

use std::{sync::Arc, time::Duration};

use sqlx::PgPool;

use super::Meter;
use crate::{background::Background, config::MeteringConfig};

/// Rows a flusher writes per second at most before it waits longer between flushes: each
/// is an upsert of a (tenant, metric, minute), and over thousands of busy tenants a 2 s
/// interval wrote more rows a second than the requests served (`docs/scaling.md`).
const ROWS_PER_SECOND: usize = 2_500;
/// How far the interval may stretch: five times the configured one.
const MAX_STRETCH: u32 = 5;

/// The wait before the next flush, after one that wrote `rows`: the configured interval,
/// stretched so that at most [`ROWS_PER_SECOND`] rows are written a second on average,
/// up to [`MAX_STRETCH`] times. Counts only wait longer when there are many of them (one
/// per busy tenant and metric); a few hundred tenants keep the configured interval. A
/// stretched wait ends early when the buffer is half full, so nothing is dropped for it.
fn next_wait(every: Duration, rows: usize) -> Duration {
    let spread = Duration::from_secs_f64(rows as f64 / ROWS_PER_SECOND as f64);
    spread.clamp(every, every * MAX_STRETCH)
}

/// Starts the flusher on `background`: it writes the buffer every
/// `METERING_FLUSH_INTERVAL` — longer when a flush wrote many rows ([`next_wait`]) —
/// (failures are logged and the counts kept for the next try) and, once the work of the
/// process has drained, the last counts.
pub fn start(meter: Arc<Meter>, db: PgPool, config: &MeteringConfig, background: &Background) {
    start_every(meter, db, background, config.flush_interval);
}

/// [`start`] with another interval.
pub fn start_every(meter: Arc<Meter>, db: PgPool, background: &Background, every: Duration) {
    background.spawn_flusher(move |drained| async move {
        let mut wait = every;
        loop {
            let until = tokio::time::Instant::now() + wait;
            let due = async {
                while tokio::time::Instant::now() < until && !meter.half_full() {
                    tokio::time::sleep_until(until.min(tokio::time::Instant::now() + every)).await;
                }
            };
            tokio::select! {
                () = due => {}
                () = drained.cancelled() => break,
            }
            wait = match meter.flush(&db).await {
                Ok(rows) => next_wait(every, rows),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "usage flush failed; retrying next interval");
                    every
                }
            };
        }
        // Shutdown: the last counts, with a few quick retries before giving up on them.
        for attempt in 1..=3 {
            match meter.flush_final(&db).await {
                Ok(rows) => {
                    tracing::info!(rows, "usage flushed at shutdown");
                    return;
                }
                Err(e) if attempt < 3 => {
                    tracing::warn!(error = %format!("{e:#}"), attempt, "usage flush at shutdown failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => {
                    tracing::error!(
                        error = %format!("{e:#}"),
                        entries = meter.depth(),
                        "usage flush at shutdown failed; these counts are lost"
                    );
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_stretches_only_for_many_rows_and_at_most_five_times() {
        let every = Duration::from_secs(2);
        assert_eq!(next_wait(every, 0), every);
        assert_eq!(next_wait(every, 4_000), every);
        assert_eq!(next_wait(every, 10_000), Duration::from_secs(4));
        assert_eq!(next_wait(every, 21_000), Duration::from_millis(8_400));
        assert_eq!(next_wait(every, 1_000_000), Duration::from_secs(10));
    }
}
