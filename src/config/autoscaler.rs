//! The autoscaler: how often it evaluates every tenant, and how many tenants get a
//! capacity series of their own.

use std::time::Duration;

use super::{ConfigError, vars::Vars};

#[derive(Debug, Clone)]
pub struct AutoscalerConfig {
    /// How often the autoscaler evaluates every tenant (`AUTOSCALER_INTERVAL_SECONDS`).
    pub interval: Duration,
    /// Tenants with their own `tenantry_tenant_capacity` series; the rest are summed
    /// under `tenant="other"` (`AUTOSCALER_GAUGE_TENANTS`).
    pub gauge_tenants: usize,
}

impl AutoscalerConfig {
    pub(super) fn from_vars(
        vars: &Vars<'_, impl Fn(&str) -> Option<String>>,
    ) -> Result<Self, ConfigError> {
        let autoscaler = Self {
            interval: Duration::from_secs(vars.parse("AUTOSCALER_INTERVAL_SECONDS", 15)?),
            gauge_tenants: vars.parse("AUTOSCALER_GAUGE_TENANTS", 50)?,
        };
        autoscaler.validate()?;
        Ok(autoscaler)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=3600).contains(&self.interval.as_secs()) {
            return Err(ConfigError::invalid(
                "AUTOSCALER_INTERVAL_SECONDS",
                "must be between 1 and 3600",
            ));
        }
        if self.gauge_tenants > 1000 {
            return Err(ConfigError::invalid(
                "AUTOSCALER_GAUGE_TENANTS",
                "must be at most 1000",
            ));
        }
        Ok(())
    }
}
