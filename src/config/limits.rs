//! Rate limiting: per tenant, per client address on public routes, global, failed
//! logins; and how long a check waits for Redis.

use std::time::Duration;

use super::{ConfigError, vars::Vars};

#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Rate limiting on or off (`RATE_LIMIT_ENABLED`).
    pub enabled: bool,
    /// Requests per minute per client IP on public routes (`RATE_LIMIT_PUBLIC_PER_MINUTE`).
    pub public_per_minute: u32,
    /// Requests per minute across the cluster; 0 turns the global limit off
    /// (`RATE_LIMIT_GLOBAL_PER_MINUTE`).
    pub global_per_minute: u32,
    /// Busy tenants reserve small slices of their allowance per Redis call
    /// (`RATE_LIMIT_AMORTIZE`).
    pub amortize: bool,
    /// How long a rate-limit check waits for Redis before the in-process limiter answers
    /// (`RATE_LIMIT_REDIS_TIMEOUT_MS`).
    pub redis_timeout: Duration,
}

impl LimitsConfig {
    pub(super) fn from_vars(
        vars: &Vars<'_, impl Fn(&str) -> Option<String>>,
    ) -> Result<Self, ConfigError> {
        let limits = Self {
            enabled: vars.parse("RATE_LIMIT_ENABLED", true)?,
            public_per_minute: vars.parse("RATE_LIMIT_PUBLIC_PER_MINUTE", 300)?,
            global_per_minute: vars.parse("RATE_LIMIT_GLOBAL_PER_MINUTE", 3_000_000)?,
            amortize: vars.parse("RATE_LIMIT_AMORTIZE", true)?,
            redis_timeout: Duration::from_millis(vars.parse("RATE_LIMIT_REDIS_TIMEOUT_MS", 100)?),
        };
        limits.validate()?;
        Ok(limits)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=10_000_000).contains(&self.public_per_minute) {
            return Err(ConfigError::invalid(
                "RATE_LIMIT_PUBLIC_PER_MINUTE",
                "must be between 1 and 10000000",
            ));
        }
        if self.global_per_minute > 100_000_000 {
            return Err(ConfigError::invalid(
                "RATE_LIMIT_GLOBAL_PER_MINUTE",
                "must be between 0 (no global limit) and 100000000",
            ));
        }
        if !(Duration::from_millis(1)..=Duration::from_secs(5)).contains(&self.redis_timeout) {
            return Err(ConfigError::invalid(
                "RATE_LIMIT_REDIS_TIMEOUT_MS",
                "must be between 1 and 5000",
            ));
        }
        Ok(())
    }
}
