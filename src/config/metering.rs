//! Usage metering of authenticated tenant requests, and how often it is written.

use std::time::Duration;

use super::{ConfigError, vars::Vars};

#[derive(Debug, Clone)]
pub struct MeteringConfig {
    /// Usage metering on or off (`METERING_ENABLED`).
    pub enabled: bool,
    /// How often buffered usage is written to `platform.usage_rollups`
    /// (`METERING_FLUSH_INTERVAL_MS`).
    pub flush_interval: Duration,
}

impl MeteringConfig {
    pub(super) fn from_vars(
        vars: &Vars<'_, impl Fn(&str) -> Option<String>>,
    ) -> Result<Self, ConfigError> {
        let metering = Self {
            enabled: vars.parse("METERING_ENABLED", true)?,
            flush_interval: Duration::from_millis(vars.parse("METERING_FLUSH_INTERVAL_MS", 2000)?),
        };
        metering.validate()?;
        Ok(metering)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(Duration::from_millis(10)..=Duration::from_secs(3600)).contains(&self.flush_interval) {
            return Err(ConfigError::invalid(
                "METERING_FLUSH_INTERVAL_MS",
                "must be between 10 and 3600000",
            ));
        }
        Ok(())
    }
}
