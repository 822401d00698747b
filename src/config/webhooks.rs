//! Webhook deliveries: which targets they may reach.

use super::{ConfigError, vars::Vars};

#[derive(Debug, Clone)]
pub struct WebhooksConfig {
    /// Webhook targets may be loopback or private addresses (development, tests)
    /// (`WEBHOOK_ALLOW_PRIVATE_TARGETS`).
    pub allow_private_targets: bool,
}

impl WebhooksConfig {
    pub(super) fn from_vars(
        vars: &Vars<'_, impl Fn(&str) -> Option<String>>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            allow_private_targets: vars.parse("WEBHOOK_ALLOW_PRIVATE_TARGETS", false)?,
        })
    }
}
