//! Configuration from the environment (and a `.env` file in development), validated at
//! start: a bad value stops the program with a message naming the variable.

use std::{env, fmt::Display, net::SocketAddr, str::FromStr, time::Duration};

use crate::client_address::Cidr;

/// Where the service runs; `production` refuses development conveniences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Test,
    Production,
}

impl FromStr for AppEnv {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "development" => Ok(Self::Development),
            "test" => Ok(Self::Test),
            "production" => Ok(Self::Production),
            other => Err(format!(
                "expected development, test or production, got {other:?}"
            )),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            other => Err(format!("expected json or pretty, got {other:?}")),
        }
    }
}

/// Where file contents live (`STORAGE_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageBackend {
    /// An S3 bucket (`S3_BUCKET_NAME`), or an S3-compatible server at `AWS_ENDPOINT_URL`.
    S3,
    /// Files under `STORAGE_DIR`, downloaded through signed links the service serves.
    Fs,
}

impl FromStr for StorageBackend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "s3" => Ok(Self::S3),
            "fs" => Ok(Self::Fs),
            other => Err(format!("expected s3 or fs, got {other:?}")),
        }
    }
}

/// How notifications leave (`NOTIFICATIONS_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationsBackend {
    /// Records each send and delivers nothing.
    Log,
    /// Amazon SNS, or an SNS-compatible server at `AWS_ENDPOINT_URL`.
    Sns,
}

impl FromStr for NotificationsBackend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "log" => Ok(Self::Log),
            "sns" => Ok(Self::Sns),
            other => Err(format!("expected log or sns, got {other:?}")),
        }
    }
}

/// A configuration value that could not be used; names the variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

/// Everything the service reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub app_env: AppEnv,
    pub bind_addr: SocketAddr,
    /// Where `/metrics` answers (`METRICS_BIND_ADDR`): a listener of its own, so that the
    /// load balancer routing `bind_addr` never exposes it. Unset: on the main listener.
    pub metrics_bind_addr: Option<SocketAddr>,
    /// When set (`METRICS_TOKEN`), `/metrics` requires `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    pub database_url: String,
    pub database_max_connections: u32,
    /// Tenant-affine pools (`DATABASE_TENANT_POOLS`): `auto` (the default) fits the number
    /// of pools to the number of tenants (`crate::db::pools`); a number fixes it: tenants
    /// are hashed onto that many pools of `DATABASE_MAX_CONNECTIONS / n` connections, so
    /// that each connection sees a fraction of the tenant schemas (statement and catalog
    /// caches stay warm). 1 = one pool for everything.
    pub database_tenant_pools: crate::db::PoolSetting,
    /// Statements each connection keeps prepared (`DATABASE_STATEMENT_CACHE`), at least:
    /// the automatic layout gives a connection room for the schemas it serves. Every
    /// tenant schema has its own statement texts: a connection that sees more schemas than
    /// fit prepares the same statements over and over (see `docs/scaling.md`).
    pub database_statement_cache: usize,
    pub redis_url: String,
    /// Prefix of every Redis key this process writes, so that deployments (and tests)
    /// can share one Redis.
    pub redis_key_prefix: String,
    pub rust_log: String,
    pub log_format: LogFormat,
    pub cors_allowed_origins: Vec<String>,
    pub request_timeout: Duration,
    /// Largest JSON request body accepted.
    pub body_limit_bytes: usize,
    pub workers_enabled: bool,
    /// Parallel tenants in `tenantry migrate`.
    pub migrate_concurrency: usize,
    /// PEM private key that signs access tokens (RSA → RS256, Ed25519 → EdDSA).
    pub jwt_private_key_file: Option<String>,
    /// Public keys (or, for compatibility, private keys of which only the public half is
    /// used) whose tokens still verify while keys rotate.
    pub jwt_previous_key_files: Vec<String>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl_seconds: i64,
    pub refresh_token_ttl_days: i64,
    /// Public tenant sign-up (`POST /api/v1/tenants` without a platform token).
    pub signup_enabled: bool,
    pub platform_admin_email: Option<String>,
    pub platform_admin_password: Option<String>,
    /// When set, login without `tenant` takes the tenant from the Host's subdomain.
    pub base_domain: Option<String>,
    /// Seals TOTP secrets at rest (`MFA_ENCRYPTION_KEY`); required in production.
    pub mfa_encryption_key: Option<crate::auth::totp::SealingKey>,
    /// Logged-out access tokens held in memory per replica; beyond it, lookups go to
    /// Redis (the deny-list never forgets a logout).
    pub deny_list_capacity: usize,
    /// Proxies whose `X-Forwarded-For` is believed when they are the socket peer.
    pub trusted_proxies: Vec<Cidr>,
    /// How often the autoscaler evaluates every tenant (`AUTOSCALER_INTERVAL_SECONDS`).
    pub autoscaler_interval: Duration,
    /// Tenants with their own `tenantry_tenant_capacity` series; the rest are summed
    /// under `tenant="other"` (`AUTOSCALER_GAUGE_TENANTS`).
    pub autoscaler_gauge_tenants: usize,
    /// Rate limiting (per tenant, per IP on public routes, global, failed logins).
    pub rate_limit_enabled: bool,
    /// Requests per minute per client IP on public routes.
    pub rate_limit_public_per_minute: u32,
    /// Requests per minute across the cluster; 0 turns the global limit off.
    pub rate_limit_global_per_minute: u32,
    /// Busy tenants reserve small slices of their allowance per Redis call.
    pub rate_limit_amortize: bool,
    /// How long a rate-limit check waits for Redis before the in-process limiter answers.
    pub rate_limit_redis_timeout: Duration,
    /// Usage metering of authenticated tenant requests.
    pub metering_enabled: bool,
    /// How often buffered usage is written to `platform.usage_rollups`.
    pub metering_flush_interval: Duration,
    /// First retry delay of a failed job; later ones double, up to a minute, with jitter.
    pub job_retry_base: Duration,
    /// How long a running job stays claimed without its worker renewing the claim; a
    /// dead worker's job is picked up again after it.
    pub job_lease: Duration,
    /// How often a running job renews its lease and looks for a cancellation request.
    pub job_heartbeat: Duration,
    /// Tenants' jobs one worker process runs at the same time.
    pub job_concurrency: usize,
    /// Platform jobs (identity mail, purges, clean-ups) one worker process runs at the
    /// same time, beside the tenants'.
    pub job_platform_concurrency: usize,
    /// How often the reconciler looks for queued jobs missing from Redis and expired leases.
    pub job_reconcile_interval: Duration,
    /// A queued job not picked up for this long is handed to Redis again.
    pub job_requeue_after: Duration,
    pub aws_region: String,
    /// An S3/SNS-compatible server (LocalStack, moto) instead of AWS; S3 is then
    /// addressed path-style.
    pub aws_endpoint_url: Option<String>,
    pub storage_backend: StorageBackend,
    /// Root of the `fs` storage backend.
    pub storage_dir: String,
    pub s3_bucket_name: Option<String>,
    pub notifications_backend: NotificationsBackend,
    /// Topic that email notifications are published to; created at start outside
    /// production when unset and the backend is `sns`.
    pub sns_email_topic_arn: Option<String>,
    pub from_email: String,
    /// Webhook targets may be loopback or private addresses (development, tests).
    pub webhook_allow_private_targets: bool,
}

impl Config {
    /// Reads the process environment, after loading `.env` if there is one.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a broken one is reported by the variables it sets.
        let _ = dotenvy::dotenv();
        Self::from_lookup(|name| env::var(name).ok())
    }

    /// Builds the configuration from any variable lookup (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(&lookup);
        let config = Self {
            app_env: vars.parse("APP_ENV", AppEnv::Development)?,
            bind_addr: vars.parse("BIND_ADDR", SocketAddr::from(([0, 0, 0, 0], 8000)))?,
            metrics_bind_addr: vars.parse_optional("METRICS_BIND_ADDR")?,
            metrics_token: vars.get("METRICS_TOKEN"),
            database_url: vars.string(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/tenantry",
            ),
            database_max_connections: vars.parse("DATABASE_MAX_CONNECTIONS", 20)?,
            database_tenant_pools: vars
                .parse("DATABASE_TENANT_POOLS", crate::db::PoolSetting::Auto)?,
            database_statement_cache: vars.parse("DATABASE_STATEMENT_CACHE", 1024)?,
            redis_url: vars.string("REDIS_URL", "redis://127.0.0.1:6379/0"),
            redis_key_prefix: vars.string("REDIS_KEY_PREFIX", "tenantry:"),
            rust_log: vars.string("RUST_LOG", "info"),
            log_format: vars.parse("LOG_FORMAT", LogFormat::Json)?,
            cors_allowed_origins: vars.list("CORS_ALLOWED_ORIGINS"),
            request_timeout: Duration::from_secs(vars.parse("REQUEST_TIMEOUT_SECONDS", 30)?),
            body_limit_bytes: vars.parse("BODY_LIMIT_BYTES", 1024 * 1024)?,
            workers_enabled: vars.parse("WORKERS_ENABLED", true)?,
            migrate_concurrency: vars.parse("MIGRATE_CONCURRENCY", 4)?,
            jwt_private_key_file: vars.get("JWT_PRIVATE_KEY_FILE"),
            jwt_previous_key_files: vars.list("JWT_PREVIOUS_KEY_FILES"),
            jwt_issuer: vars.string("JWT_ISSUER", "tenantry"),
            jwt_audience: vars.string("JWT_AUDIENCE", "tenantry"),
            access_token_ttl_seconds: vars.parse("ACCESS_TOKEN_TTL_SECONDS", 900)?,
            refresh_token_ttl_days: vars.parse("REFRESH_TOKEN_TTL_DAYS", 30)?,
            signup_enabled: vars.parse("SIGNUP_ENABLED", true)?,
            platform_admin_email: vars.get("PLATFORM_ADMIN_EMAIL"),
            platform_admin_password: vars.get("PLATFORM_ADMIN_PASSWORD"),
            base_domain: vars.get("BASE_DOMAIN"),
            mfa_encryption_key: vars.optional("MFA_ENCRYPTION_KEY")?,
            deny_list_capacity: vars.parse("DENY_LIST_CAPACITY", 1_000_000)?,
            trusted_proxies: vars.parse_list("TRUSTED_PROXIES")?,
            autoscaler_interval: Duration::from_secs(
                vars.parse("AUTOSCALER_INTERVAL_SECONDS", 15)?,
            ),
            autoscaler_gauge_tenants: vars.parse("AUTOSCALER_GAUGE_TENANTS", 50)?,
            rate_limit_enabled: vars.parse("RATE_LIMIT_ENABLED", true)?,
            rate_limit_public_per_minute: vars.parse("RATE_LIMIT_PUBLIC_PER_MINUTE", 300)?,
            rate_limit_global_per_minute: vars.parse("RATE_LIMIT_GLOBAL_PER_MINUTE", 3_000_000)?,
            rate_limit_amortize: vars.parse("RATE_LIMIT_AMORTIZE", true)?,
            rate_limit_redis_timeout: Duration::from_millis(
                vars.parse("RATE_LIMIT_REDIS_TIMEOUT_MS", 100)?,
            ),
            metering_enabled: vars.parse("METERING_ENABLED", true)?,
            metering_flush_interval: Duration::from_millis(
                vars.parse("METERING_FLUSH_INTERVAL_MS", 2000)?,
            ),
            job_retry_base: Duration::from_millis(vars.parse("JOB_RETRY_BASE_MS", 1000)?),
            job_lease: Duration::from_millis(vars.parse("JOB_LEASE_MS", 30_000)?),
            job_heartbeat: Duration::from_millis(vars.parse("JOB_HEARTBEAT_MS", 1000)?),
            job_concurrency: vars.parse("JOB_CONCURRENCY", 32)?,
            job_platform_concurrency: vars.parse("JOB_PLATFORM_CONCURRENCY", 8)?,
            job_reconcile_interval: Duration::from_millis(vars.parse("JOB_RECONCILE_MS", 5000)?),
            job_requeue_after: Duration::from_millis(vars.parse("JOB_REQUEUE_AFTER_MS", 60_000)?),
            aws_region: vars.string("AWS_REGION", "us-east-1"),
            aws_endpoint_url: vars.get("AWS_ENDPOINT_URL"),
            storage_backend: vars.parse(
                "STORAGE_BACKEND",
                if vars.get("S3_BUCKET_NAME").is_some() {
                    StorageBackend::S3
                } else {
                    StorageBackend::Fs
                },
            )?,
            storage_dir: vars.string("STORAGE_DIR", "./data/files"),
            s3_bucket_name: vars.get("S3_BUCKET_NAME"),
            notifications_backend: vars
                .parse("NOTIFICATIONS_BACKEND", NotificationsBackend::Log)?,
            sns_email_topic_arn: vars.get("SNS_EMAIL_TOPIC_ARN"),
            from_email: vars.string("FROM_EMAIL", "noreply@example.com"),
            webhook_allow_private_targets: vars.parse("WEBHOOK_ALLOW_PRIVATE_TARGETS", false)?,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name, reason: &str| ConfigError {
            name,
            reason: reason.to_owned(),
        };
        if !self.database_url.starts_with("postgres://")
            && !self.database_url.starts_with("postgresql://")
        {
            return Err(invalid("DATABASE_URL", "must be a postgres:// URL"));
        }
        if !self.redis_url.starts_with("redis://") && !self.redis_url.starts_with("rediss://") {
            return Err(invalid("REDIS_URL", "must be a redis:// or rediss:// URL"));
        }
        if let crate::db::PoolSetting::Fixed(n) = self.database_tenant_pools
            && n > self.database_max_connections
        {
            return Err(invalid(
                "DATABASE_TENANT_POOLS",
                "must be auto or between 1 and DATABASE_MAX_CONNECTIONS",
            ));
        }
        if self.database_statement_cache == 0 {
            // sqlx would prepare named statements and never close them.
            return Err(invalid("DATABASE_STATEMENT_CACHE", "must be at least 1"));
        }
        if self.database_max_connections == 0 {
            return Err(invalid("DATABASE_MAX_CONNECTIONS", "must be at least 1"));
        }
        if self.migrate_concurrency == 0 {
            return Err(invalid("MIGRATE_CONCURRENCY", "must be at least 1"));
        }
        if !(60..=86_400).contains(&self.access_token_ttl_seconds) {
            return Err(invalid(
                "ACCESS_TOKEN_TTL_SECONDS",
                "must be between 60 and 86400",
            ));
        }
        if !(1..=365).contains(&self.refresh_token_ttl_days) {
            return Err(invalid(
                "REFRESH_TOKEN_TTL_DAYS",
                "must be between 1 and 365",
            ));
        }
        if self.platform_admin_email.is_some() != self.platform_admin_password.is_some() {
            return Err(invalid(
                "PLATFORM_ADMIN_PASSWORD",
                "PLATFORM_ADMIN_EMAIL and PLATFORM_ADMIN_PASSWORD go together",
            ));
        }
        if self.job_concurrency == 0 {
            return Err(invalid("JOB_CONCURRENCY", "must be at least 1"));
        }
        if self.job_platform_concurrency == 0 {
            return Err(invalid("JOB_PLATFORM_CONCURRENCY", "must be at least 1"));
        }
        if self.job_heartbeat.is_zero() || self.job_heartbeat >= self.job_lease {
            return Err(invalid(
                "JOB_HEARTBEAT_MS",
                "must be at least 1 and shorter than JOB_LEASE_MS",
            ));
        }
        if self.job_reconcile_interval.is_zero() {
            return Err(invalid("JOB_RECONCILE_MS", "must be at least 1"));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("REQUEST_TIMEOUT_SECONDS", "must be at least 1"));
        }
        if !(1..=3600).contains(&self.autoscaler_interval.as_secs()) {
            return Err(invalid(
                "AUTOSCALER_INTERVAL_SECONDS",
                "must be between 1 and 3600",
            ));
        }
        if self.autoscaler_gauge_tenants > 1000 {
            return Err(invalid("AUTOSCALER_GAUGE_TENANTS", "must be at most 1000"));
        }
        if !(1..=10_000_000).contains(&self.rate_limit_public_per_minute) {
            return Err(invalid(
                "RATE_LIMIT_PUBLIC_PER_MINUTE",
                "must be between 1 and 10000000",
            ));
        }
        if self.rate_limit_global_per_minute > 100_000_000 {
            return Err(invalid(
                "RATE_LIMIT_GLOBAL_PER_MINUTE",
                "must be between 0 (no global limit) and 100000000",
            ));
        }
        if !(Duration::from_millis(1)..=Duration::from_secs(5))
            .contains(&self.rate_limit_redis_timeout)
        {
            return Err(invalid(
                "RATE_LIMIT_REDIS_TIMEOUT_MS",
                "must be between 1 and 5000",
            ));
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(3600))
            .contains(&self.metering_flush_interval)
        {
            return Err(invalid(
                "METERING_FLUSH_INTERVAL_MS",
                "must be between 10 and 3600000",
            ));
        }
        if self.storage_backend == StorageBackend::S3 && self.s3_bucket_name.is_none() {
            return Err(invalid(
                "S3_BUCKET_NAME",
                "must be set when STORAGE_BACKEND is s3",
            ));
        }
        if self.is_production()
            && self.notifications_backend == NotificationsBackend::Sns
            && self.sns_email_topic_arn.is_none()
        {
            return Err(invalid(
                "SNS_EMAIL_TOPIC_ARN",
                "must be set in production when NOTIFICATIONS_BACKEND is sns",
            ));
        }
        if self.is_production() && self.mfa_encryption_key.is_none() {
            return Err(invalid(
                "MFA_ENCRYPTION_KEY",
                "must be set in production (32 bytes in base64)",
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.rust_log) {
            return Err(ConfigError {
                name: "RUST_LOG",
                reason: e.to_string(),
            });
        }
        Ok(())
    }

    pub fn is_production(&self) -> bool {
        self.app_env == AppEnv::Production
    }

    /// The key that seals TOTP secrets: `MFA_ENCRYPTION_KEY`, or outside production
    /// (where it may be unset) a fixed development key.
    pub fn mfa_key(&self) -> crate::auth::totp::SealingKey {
        self.mfa_encryption_key
            .clone()
            .unwrap_or_else(crate::auth::totp::SealingKey::development)
    }

    /// The `<env>` part of API keys: `live` in production, `test` elsewhere.
    pub fn api_key_env(&self) -> &'static str {
        if self.is_production() { "live" } else { "test" }
    }
}

/// Typed access to the variables, each error naming its variable.
struct Vars<'a, F>(&'a F);

impl<F: Fn(&str) -> Option<String>> Vars<'_, F> {
    /// The variable's value; an empty value counts as unset.
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    /// A comma-separated list; empty items are dropped.
    fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A comma-separated list of values that each parse.
    fn parse_list<T>(&self, name: &'static str) -> Result<Vec<T>, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.list(name)
            .iter()
            .map(|raw| {
                raw.parse().map_err(|e: T::Err| ConfigError {
                    name,
                    reason: format!("cannot use {raw:?}: {e}"),
                })
            })
            .collect()
    }

    /// A value that parses, or `None` when unset.
    fn parse_optional<T>(&self, name: &'static str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.get(name)
            .map(|raw| {
                raw.trim().parse().map_err(|e: T::Err| ConfigError {
                    name,
                    reason: format!("cannot use {raw:?}: {e}"),
                })
            })
            .transpose()
    }

    fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    /// A value that parses, or `None` when unset.
    fn optional<T>(&self, name: &'static str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.get(name)
            .map(|raw| {
                raw.trim().parse().map_err(|e: T::Err| ConfigError {
                    name,
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    fn parse<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|e: T::Err| ConfigError {
                name,
                reason: format!("cannot use {raw:?}: {e}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn the_mfa_key_is_32_bytes_of_base64_and_required_in_production() {
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        let c = config(&[("MFA_ENCRYPTION_KEY", key.as_str())]).expect("valid");
        assert_eq!(c.mfa_key(), key.parse().expect("a key"));
        assert_ne!(c.mfa_key(), crate::auth::totp::SealingKey::development());
        let default = config(&[]).expect("valid");
        assert_eq!(
            default.mfa_key(),
            crate::auth::totp::SealingKey::development()
        );
        for bad in ["c2hvcnQ=", "not base64!"] {
            let err = config(&[("MFA_ENCRYPTION_KEY", bad)]).expect_err("refused");
            assert_eq!(err.name, "MFA_ENCRYPTION_KEY");
        }
        let err = config(&[
            ("APP_ENV", "production"),
            ("JWT_PRIVATE_KEY_FILE", "/dev/null"),
        ])
        .expect_err("production needs a key");
        assert_eq!(err.name, "MFA_ENCRYPTION_KEY");
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = config(&[]).expect("defaults are valid");
        assert_eq!(c.app_env, AppEnv::Development);
        assert_eq!(c.bind_addr.to_string(), "0.0.0.0:8000");
        assert_eq!(c.database_max_connections, 20);
        assert_eq!(c.redis_url, "redis://127.0.0.1:6379/0");
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(c.workers_enabled);
        assert_eq!(c.autoscaler_interval, Duration::from_secs(15));
        assert!(c.rate_limit_enabled);
        assert_eq!(c.rate_limit_public_per_minute, 300);
        assert!(c.metering_enabled);
        assert_eq!(c.metering_flush_interval, Duration::from_millis(2000));
        assert_eq!(c.aws_region, "us-east-1");
        assert_eq!(c.storage_backend, StorageBackend::Fs);
        assert_eq!(c.storage_dir, "./data/files");
        assert_eq!(c.notifications_backend, NotificationsBackend::Log);
        assert_eq!(c.from_email, "noreply@example.com");
    }

    #[test]
    fn a_bucket_name_selects_s3_storage() {
        let c = config(&[("S3_BUCKET_NAME", "files")]).expect("valid");
        assert_eq!(c.storage_backend, StorageBackend::S3);
        let c = config(&[("S3_BUCKET_NAME", "files"), ("STORAGE_BACKEND", "fs")]).expect("valid");
        assert_eq!(c.storage_backend, StorageBackend::Fs);
        let err = config(&[("STORAGE_BACKEND", "s3")]).expect_err("no bucket");
        assert_eq!(err.name, "S3_BUCKET_NAME");
        let err = config(&[("NOTIFICATIONS_BACKEND", "pigeon")]).expect_err("unknown");
        assert_eq!(err.name, "NOTIFICATIONS_BACKEND");
    }

    #[test]
    fn the_autoscaler_interval_is_checked() {
        for bad in ["0", "3601", "soon"] {
            let err = config(&[("AUTOSCALER_INTERVAL_SECONDS", bad)]).expect_err("invalid");
            assert_eq!(err.name, "AUTOSCALER_INTERVAL_SECONDS");
        }
        let c = config(&[("AUTOSCALER_INTERVAL_SECONDS", "5")]).expect("valid");
        assert_eq!(c.autoscaler_interval, Duration::from_secs(5));
    }

    #[test]
    fn limit_and_metering_settings_are_checked() {
        for (name, value) in [
            ("RATE_LIMIT_PUBLIC_PER_MINUTE", "0"),
            ("RATE_LIMIT_PUBLIC_PER_MINUTE", "many"),
            ("RATE_LIMIT_GLOBAL_PER_MINUTE", "-1"),
            ("RATE_LIMIT_REDIS_TIMEOUT_MS", "0"),
            ("RATE_LIMIT_ENABLED", "maybe"),
            ("METERING_FLUSH_INTERVAL_MS", "5"),
            ("METERING_ENABLED", "yes please"),
        ] {
            assert_eq!(config(&[(name, value)]).expect_err(value).name, name);
        }
        let c = config(&[
            ("RATE_LIMIT_GLOBAL_PER_MINUTE", "0"),
            ("RATE_LIMIT_ENABLED", "false"),
            ("METERING_FLUSH_INTERVAL_MS", "250"),
        ])
        .expect("valid");
        assert_eq!(c.rate_limit_global_per_minute, 0);
        assert!(!c.rate_limit_enabled);
        assert_eq!(c.metering_flush_interval, Duration::from_millis(250));
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = config(&[("DATABASE_MAX_CONNECTIONS", "lots")]).expect_err("invalid");
        assert_eq!(err.name, "DATABASE_MAX_CONNECTIONS");
        assert!(err.to_string().contains("DATABASE_MAX_CONNECTIONS"));

        assert_eq!(
            config(&[("BIND_ADDR", "nowhere")])
                .expect_err("invalid")
                .name,
            "BIND_ADDR"
        );
        assert_eq!(
            config(&[("APP_ENV", "prod")]).expect_err("invalid").name,
            "APP_ENV"
        );
        assert_eq!(
            config(&[("LOG_FORMAT", "xml")]).expect_err("invalid").name,
            "LOG_FORMAT"
        );
        assert_eq!(
            config(&[("DATABASE_URL", "mysql://x")])
                .expect_err("invalid")
                .name,
            "DATABASE_URL"
        );
    }

    #[test]
    fn trusted_proxies_are_cidrs_and_a_bad_one_names_the_variable() {
        let c =
            config(&[("TRUSTED_PROXIES", "10.0.0.0/8, 2001:db8::/32,192.0.2.1")]).expect("valid");
        assert_eq!(c.trusted_proxies.len(), 3);
        assert!(config(&[]).expect("valid").trusted_proxies.is_empty());
        let err = config(&[("TRUSTED_PROXIES", "10.0.0.0/8,10.0.0.0/40")]).expect_err("invalid");
        assert_eq!(err.name, "TRUSTED_PROXIES");
        assert!(err.to_string().contains("10.0.0.0/40"), "{err}");
    }

    #[test]
    fn cors_origins_are_split_on_commas() {
        let c = config(&[(
            "CORS_ALLOWED_ORIGINS",
            "https://a.example, https://b.example,",
        )])
        .expect("valid");
        assert_eq!(
            c.cors_allowed_origins,
            ["https://a.example", "https://b.example"]
        );
    }
}
