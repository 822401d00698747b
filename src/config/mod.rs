//! Configuration from the environment (and a `.env` file in development), validated at
//! start: a bad value stops the program with a message naming the variable.
//!
//! One section per concern, each in its own file that reads its own variables and checks
//! its own rules: `http`, `telemetry`, `database`, `redis`, `auth`, `limits` (rate
//! limits), `metering`, `autoscaler`, `jobs`, `aws`, `storage`, `notifications`,
//! `webhooks`. The rules that join sections (what production requires) are [`Config`]'s,
//! below; `vars` is the typed lookup they all read with.

use std::{env, str::FromStr};

mod auth;
mod autoscaler;
mod aws;
mod database;
mod http;
mod jobs;
mod limits;
mod metering;
mod notifications;
mod redis;
mod storage;
mod telemetry;
mod vars;
mod webhooks;

pub use auth::AuthConfig;
pub use autoscaler::AutoscalerConfig;
pub use aws::AwsConfig;
pub use database::DatabaseConfig;
pub use http::HttpConfig;
pub use jobs::JobsConfig;
pub use limits::LimitsConfig;
pub use metering::MeteringConfig;
pub use notifications::{NotificationsBackend, NotificationsConfig};
pub use redis::RedisConfig;
pub use storage::{StorageBackend, StorageConfig};
pub use telemetry::{LogFormat, TelemetryConfig};
pub use webhooks::WebhooksConfig;

use vars::Vars;

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

/// A configuration value that could not be used; names the variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

impl ConfigError {
    /// A value that parsed but breaks a rule.
    fn invalid(name: &'static str, reason: &str) -> Self {
        Self {
            name,
            reason: reason.to_owned(),
        }
    }
}

/// Everything the service reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `APP_ENV`.
    pub app_env: AppEnv,
    /// Run the job workers, promoter, reconciler and autoscaling evaluator inside `serve`
    /// (`WORKERS_ENABLED`).
    pub workers_enabled: bool,
    pub http: HttpConfig,
    pub telemetry: TelemetryConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub metering: MeteringConfig,
    pub autoscaler: AutoscalerConfig,
    pub jobs: JobsConfig,
    pub aws: AwsConfig,
    pub storage: StorageConfig,
    pub notifications: NotificationsConfig,
    pub webhooks: WebhooksConfig,
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
        // Each section parses and checks its own variables (the first bad value stops);
        // the rules that join sections come last.
        let config = Self {
            app_env: vars.parse("APP_ENV", AppEnv::Development)?,
            workers_enabled: vars.parse("WORKERS_ENABLED", true)?,
            database: DatabaseConfig::from_vars(&vars)?,
            redis: RedisConfig::from_vars(&vars)?,
            auth: AuthConfig::from_vars(&vars)?,
            jobs: JobsConfig::from_vars(&vars)?,
            http: HttpConfig::from_vars(&vars)?,
            autoscaler: AutoscalerConfig::from_vars(&vars)?,
            limits: LimitsConfig::from_vars(&vars)?,
            metering: MeteringConfig::from_vars(&vars)?,
            aws: AwsConfig::from_vars(&vars)?,
            storage: StorageConfig::from_vars(&vars)?,
            notifications: NotificationsConfig::from_vars(&vars)?,
            webhooks: WebhooksConfig::from_vars(&vars)?,
            telemetry: TelemetryConfig::from_vars(&vars)?,
        };
        config.validate()?;
        Ok(config)
    }

    /// The rules that join sections: what production requires of them.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.is_production()
            && self.notifications.backend == NotificationsBackend::Sns
            && self.notifications.sns_email_topic_arn.is_none()
        {
            return Err(ConfigError::invalid(
                "SNS_EMAIL_TOPIC_ARN",
                "must be set in production when NOTIFICATIONS_BACKEND is sns",
            ));
        }
        if self.is_production() && self.auth.mfa_encryption_key.is_none() {
            return Err(ConfigError::invalid(
                "MFA_ENCRYPTION_KEY",
                "must be set in production (32 bytes in base64)",
            ));
        }
        Ok(())
    }

    pub fn is_production(&self) -> bool {
        self.app_env == AppEnv::Production
    }

    /// The `<env>` part of API keys: `live` in production, `test` elsewhere.
    pub fn api_key_env(&self) -> &'static str {
        if self.is_production() { "live" } else { "test" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{collections::HashMap, time::Duration};

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
        assert_eq!(c.auth.mfa_key(), key.parse().expect("a key"));
        assert_ne!(
            c.auth.mfa_key(),
            crate::auth::totp::SealingKey::development()
        );
        let default = config(&[]).expect("valid");
        assert_eq!(
            default.auth.mfa_key(),
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
    fn production_wants_the_email_topic_of_the_sns_backend() {
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        let production = [
            ("APP_ENV", "production"),
            ("MFA_ENCRYPTION_KEY", key.as_str()),
        ];
        config(&production).expect("the log backend needs no topic");
        let sns = [
            production[0],
            production[1],
            ("NOTIFICATIONS_BACKEND", "sns"),
        ];
        let err = config(&sns).expect_err("no topic");
        assert_eq!(err.name, "SNS_EMAIL_TOPIC_ARN");
        let topic = (
            "SNS_EMAIL_TOPIC_ARN",
            "arn:aws:sns:us-east-1:000000000000:email",
        );
        let c = config(&[sns[0], sns[1], sns[2], topic]).expect("valid");
        assert_eq!(
            c.notifications.sns_email_topic_arn.as_deref(),
            Some(topic.1)
        );
        let c = config(&[("NOTIFICATIONS_BACKEND", "sns")]).expect("created at start");
        assert_eq!(c.notifications.backend, NotificationsBackend::Sns);
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = config(&[]).expect("defaults are valid");
        assert_eq!(c.app_env, AppEnv::Development);
        assert_eq!(c.http.bind_addr.to_string(), "0.0.0.0:8000");
        assert_eq!(c.database.max_connections, 20);
        assert_eq!(c.redis.url, "redis://127.0.0.1:6379/0");
        assert_eq!(c.telemetry.log_format, LogFormat::Json);
        assert!(c.workers_enabled);
        assert_eq!(c.autoscaler.interval, Duration::from_secs(15));
        assert!(c.limits.enabled);
        assert_eq!(c.limits.public_per_minute, 300);
        assert!(c.metering.enabled);
        assert_eq!(c.metering.flush_interval, Duration::from_millis(2000));
        assert_eq!(c.aws.region, "us-east-1");
        assert_eq!(c.storage.backend, StorageBackend::Fs);
        assert_eq!(c.storage.dir, "./data/files");
        assert_eq!(c.notifications.backend, NotificationsBackend::Log);
        assert_eq!(c.notifications.from_email, "noreply@example.com");
    }

    #[test]
    fn a_bucket_name_selects_s3_storage() {
        let c = config(&[("S3_BUCKET_NAME", "files")]).expect("valid");
        assert_eq!(c.storage.backend, StorageBackend::S3);
        let c = config(&[("S3_BUCKET_NAME", "files"), ("STORAGE_BACKEND", "fs")]).expect("valid");
        assert_eq!(c.storage.backend, StorageBackend::Fs);
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
        assert_eq!(c.autoscaler.interval, Duration::from_secs(5));
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
        assert_eq!(c.limits.global_per_minute, 0);
        assert!(!c.limits.enabled);
        assert_eq!(c.metering.flush_interval, Duration::from_millis(250));
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
        assert_eq!(c.http.trusted_proxies.len(), 3);
        assert!(config(&[]).expect("valid").http.trusted_proxies.is_empty());
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
            c.http.cors_allowed_origins,
            ["https://a.example", "https://b.example"]
        );
    }
}
