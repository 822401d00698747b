//! Operational routes: the index, health checks and metrics.

pub mod health;
pub mod index;
pub mod metrics;
