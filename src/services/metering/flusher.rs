//! The flusher of the usage buffer: a background subsystem of every process that meters.

use std::time::Duration;

use crate::{app::AppState, background::Background};

/// Starts the flusher on `background`: it writes the buffer every
/// `METERING_FLUSH_INTERVAL` (failures are logged and the counts kept for the next try)
/// and, once the work of the process has drained, the last counts.
pub fn start(app: &AppState, background: &Background) {
    start_every(app, background, app.config.metering.flush_interval);
}

/// [`start`] with another interval.
pub fn start_every(app: &AppState, background: &Background, every: Duration) {
    let app = app.clone();
    background.spawn_flusher(move |drained| async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = drained.cancelled() => break,
            }
            if let Err(e) = app.meter.flush(&app.db).await {
                tracing::warn!(error = %format!("{e:#}"), "usage flush failed; retrying next interval");
            }
        }
        // Shutdown: the last counts, with a few quick retries before giving up on them.
        for attempt in 1..=3 {
            match app.meter.flush(&app.db).await {
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
                        entries = app.meter.depth(),
                        "usage flush at shutdown failed; these counts are lost"
                    );
                }
            }
        }
    });
}
