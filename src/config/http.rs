//! The HTTP listener and what it accepts: address, CORS, timeout, body size, the proxies
//! whose `X-Forwarded-For` is believed.

use std::{net::SocketAddr, time::Duration};

use super::{ConfigError, vars::Vars};
use crate::client_address::Cidr;

#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `BIND_ADDR`.
    pub bind_addr: SocketAddr,
    /// `CORS_ALLOWED_ORIGINS`.
    pub cors_allowed_origins: Vec<String>,
    /// `REQUEST_TIMEOUT_SECONDS`.
    pub request_timeout: Duration,
    /// Largest JSON request body accepted (`BODY_LIMIT_BYTES`).
    pub body_limit_bytes: usize,
    /// Proxies whose `X-Forwarded-For` is believed when they are the socket peer
    /// (`TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<Cidr>,
}

impl HttpConfig {
    pub(super) fn from_vars(
        vars: &Vars<'_, impl Fn(&str) -> Option<String>>,
    ) -> Result<Self, ConfigError> {
        let http = Self {
            bind_addr: vars.parse("BIND_ADDR", SocketAddr::from(([0, 0, 0, 0], 8000)))?,
            cors_allowed_origins: vars.list("CORS_ALLOWED_ORIGINS"),
            request_timeout: Duration::from_secs(vars.parse("REQUEST_TIMEOUT_SECONDS", 30)?),
            body_limit_bytes: vars.parse("BODY_LIMIT_BYTES", 1024 * 1024)?,
            trusted_proxies: vars.parse_list("TRUSTED_PROXIES")?,
        };
        http.validate()?;
        Ok(http)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.request_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "REQUEST_TIMEOUT_SECONDS",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
