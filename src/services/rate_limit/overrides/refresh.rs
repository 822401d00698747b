//! The reload loop of the overrides: a background subsystem of every serving process.

use std::sync::Arc;

use sqlx::PgPool;

use super::{Overrides, REFRESH};
use crate::background::Background;

/// Keeps this replica's overrides current until shutdown: a reload now, on every change
/// heard, and every 20 s.
pub fn start(overrides: Arc<Overrides>, db: PgPool, background: &Background) {
    background.spawn("rate-limit overrides", move |stop| async move {
        loop {
            if let Err(e) = overrides.reload(&db).await {
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
