//! Logs and metrics: the tracing filter, the log format, where `/metrics` answers and
//! whether it asks for a token.

use std::{net::SocketAddr, str::FromStr};

use super::{ConfigError, vars::Vars};

/// Log line format (`LOG_FORMAT`).
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

#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// The tracing filter (`RUST_LOG`).
    pub rust_log: String,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// Where `/metrics` answers (`METRICS_BIND_ADDR`): a listener of its own, so that the
    /// load balancer routing `bind_addr` never exposes it. Unset: on the main listener.
    pub metrics_bind_addr: Option<SocketAddr>,
    /// When set (`METRICS_TOKEN`), `/metrics` requires `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
}

impl TelemetryConfig {
    pub(super) fn from_vars(
        vars: &Vars<'_, impl Fn(&str) -> Option<String>>,
    ) -> Result<Self, ConfigError> {
        let telemetry = Self {
            rust_log: vars.string("RUST_LOG", "info"),
            log_format: vars.parse("LOG_FORMAT", LogFormat::Json)?,
            metrics_bind_addr: vars.parse_optional("METRICS_BIND_ADDR")?,
            metrics_token: vars.get("METRICS_TOKEN"),
        };
        telemetry.validate()?;
        Ok(telemetry)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.rust_log) {
            return Err(ConfigError {
                name: "RUST_LOG",
                reason: e.to_string(),
            });
        }
        Ok(())
    }
}
