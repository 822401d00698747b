//! PostgreSQL: where it is, how many connections, how tenants map onto them, and how many
//! tenants `tenantry migrate` migrates at once.

use super::{ConfigError, vars::Vars};
use crate::db::PoolSetting;

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`.
    pub url: String,
    /// `DATABASE_MAX_CONNECTIONS`.
    pub max_connections: u32,
    /// Tenant-affine pools (`DATABASE_TENANT_POOLS`): `auto` (the default) fits the number
    /// of pools to the number of tenants (`crate::db::pools`); a number fixes it: tenants
    /// are hashed onto that many pools of `DATABASE_MAX_CONNECTIONS / n` connections, so
    /// that each connection sees a fraction of the tenant schemas (statement and catalog
    /// caches stay warm). 1 = one pool for everything.
    pub tenant_pools: PoolSetting,
    /// Statements each connection keeps prepared (`DATABASE_STATEMENT_CACHE`), at least:
    /// the automatic layout gives a connection room for the schemas it serves. Every
    /// tenant schema has its own statement texts: a connection that sees more schemas than
    /// fit prepares the same statements over and over (see `docs/scaling.md`).
    pub statement_cache: usize,
    /// Parallel tenants in `tenantry migrate` (`MIGRATE_CONCURRENCY`).
    pub migrate_concurrency: usize,
    /// How often the automatic layout counts the tenants and fits the lanes to them
    /// ([`crate::db::pools::FIT_INTERVAL`]; no variable: tests shorten it).
    pub layout_interval: std::time::Duration,
}

impl DatabaseConfig {
    pub(super) fn from_vars(
        vars: &Vars<'_, impl Fn(&str) -> Option<String>>,
    ) -> Result<Self, ConfigError> {
        let database = Self {
            url: vars.string(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/tenantry",
            ),
            max_connections: vars.parse("DATABASE_MAX_CONNECTIONS", 20)?,
            tenant_pools: vars.parse("DATABASE_TENANT_POOLS", PoolSetting::Auto)?,
            statement_cache: vars.parse("DATABASE_STATEMENT_CACHE", 1024)?,
            migrate_concurrency: vars.parse("MIGRATE_CONCURRENCY", 4)?,
            layout_interval: crate::db::pools::FIT_INTERVAL,
        };
        database.validate()?;
        Ok(database)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.url.starts_with("postgres://") && !self.url.starts_with("postgresql://") {
            return Err(ConfigError::invalid(
                "DATABASE_URL",
                "must be a postgres:// URL",
            ));
        }
        if let PoolSetting::Fixed(n) = self.tenant_pools
            && n > self.max_connections
        {
            return Err(ConfigError::invalid(
                "DATABASE_TENANT_POOLS",
                "must be auto or between 1 and DATABASE_MAX_CONNECTIONS",
            ));
        }
        if self.statement_cache == 0 {
            // sqlx would prepare named statements and never close them.
            return Err(ConfigError::invalid(
                "DATABASE_STATEMENT_CACHE",
                "must be at least 1",
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::invalid(
                "DATABASE_MAX_CONNECTIONS",
                "must be at least 1",
            ));
        }
        if self.migrate_concurrency == 0 {
            return Err(ConfigError::invalid(
                "MIGRATE_CONCURRENCY",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
