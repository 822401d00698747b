//! Redis: where it is, and the prefix of every key this process writes.

use super::{ConfigError, vars::Vars};

#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `REDIS_URL`.
    pub url: String,
    /// Prefix of every Redis key this process writes (`REDIS_KEY_PREFIX`), so that
    /// deployments (and tests) can share one Redis.
    pub key_prefix: String,
}

impl RedisConfig {
    pub(super) fn from_vars(
        vars: &Vars<'_, impl Fn(&str) -> Option<String>>,
    ) -> Result<Self, ConfigError> {
        let redis = Self {
            url: vars.string("REDIS_URL", "redis://127.0.0.1:6379/0"),
            key_prefix: vars.string("REDIS_KEY_PREFIX", "tenantry:"),
        };
        redis.validate()?;
        Ok(redis)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.url.starts_with("redis://") && !self.url.starts_with("rediss://") {
            return Err(ConfigError::invalid(
                "REDIS_URL",
                "must be a redis:// or rediss:// URL",
            ));
        }
        Ok(())
    }
}
