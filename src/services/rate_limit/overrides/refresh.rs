//! The reload loop of the overrides: a background subsystem of every serving process.

use super::REFRESH;
use crate::{app::AppState, background::Background};

/// Keeps this replica's overrides current until shutdown: a reload now, on every change
/// heard, and every 20 s.
pub fn start(app: &AppState, background: &Background) {
    let app = app.clone();
    background.spawn("rate-limit overrides", move |stop| async move {
        let overrides = &app.limits.overrides;
        loop {
            if let Err(e) = overrides.reload(&app.db).await {
                tracing::warn!(error = %format!("{e:#}"), "could not load rate-limit overrides");
            }
            tokio::select! {
                () = tokio::time::sleep(REFRESH) => {}
                () = overrides.changed.notified() => {}
                () = stop.cancelled() => return,
            }
        }
    });
}
