//! The handle the services that send take.

use std::sync::Arc;

use crate::{jobs::JobQueue, services::rate_limit::RateLimiter};

/// What a send spends and where its job goes: the rate limiter (the daily send quota,
/// the platform mail's limits) and the job queue ([`super::dispatch`]). `App` builds one.
#[derive(Clone)]
pub struct Mailer {
    pub limits: Arc<RateLimiter>,
    pub queue: JobQueue,
}
