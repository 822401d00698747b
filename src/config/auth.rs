//! Who gets in and how: the keys that sign access tokens and their lifetimes, the
//! deny-list of logged-out tokens, the key that seals TOTP secrets, sign-up, the operator
//! created at start, and the domain whose subdomains name tenants at login.

use super::{ConfigError, vars::Vars};
use crate::auth::totp::SealingKey;

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// PEM private key that signs access tokens (RSA → RS256, Ed25519 → EdDSA)
    /// (`JWT_PRIVATE_KEY_FILE`).
    pub jwt_private_key_file: Option<String>,
    /// Public keys (or, for compatibility, private keys of which only the public half is
    /// used) whose tokens still verify while keys rotate (`JWT_PREVIOUS_KEY_FILES`).
    pub jwt_previous_key_files: Vec<String>,
    /// `JWT_ISSUER`.
    pub jwt_issuer: String,
    /// `JWT_AUDIENCE`.
    pub jwt_audience: String,
    /// `ACCESS_TOKEN_TTL_SECONDS`.
    pub access_token_ttl_seconds: i64,
    /// `REFRESH_TOKEN_TTL_DAYS`.
    pub refresh_token_ttl_days: i64,
    /// Logged-out access tokens held in memory per replica (`DENY_LIST_CAPACITY`); beyond
    /// it, lookups go to Redis (the deny-list never forgets a logout).
    pub deny_list_capacity: usize,
    /// Seals TOTP secrets at rest (`MFA_ENCRYPTION_KEY`); required in production.
    pub mfa_encryption_key: Option<SealingKey>,
    /// Public tenant sign-up (`POST /api/v1/tenants` without a platform token)
    /// (`SIGNUP_ENABLED`).
    pub signup_enabled: bool,
    /// `PLATFORM_ADMIN_EMAIL`: with the password, the operator created or updated at start.
    pub platform_admin_email: Option<String>,
    /// `PLATFORM_ADMIN_PASSWORD`.
    pub platform_admin_password: Option<String>,
    /// When set (`BASE_DOMAIN`), login without `tenant` takes the tenant from the Host's
    /// subdomain.
    pub base_domain: Option<String>,
}

impl AuthConfig {
    pub(super) fn from_vars(
        vars: &Vars<'_, impl Fn(&str) -> Option<String>>,
    ) -> Result<Self, ConfigError> {
        let auth = Self {
            jwt_private_key_file: vars.get("JWT_PRIVATE_KEY_FILE"),
            jwt_previous_key_files: vars.list("JWT_PREVIOUS_KEY_FILES"),
            jwt_issuer: vars.string("JWT_ISSUER", "tenantry"),
            jwt_audience: vars.string("JWT_AUDIENCE", "tenantry"),
            access_token_ttl_seconds: vars.parse("ACCESS_TOKEN_TTL_SECONDS", 900)?,
            refresh_token_ttl_days: vars.parse("REFRESH_TOKEN_TTL_DAYS", 30)?,
            deny_list_capacity: vars.parse("DENY_LIST_CAPACITY", 1_000_000)?,
            mfa_encryption_key: vars.optional("MFA_ENCRYPTION_KEY")?,
            signup_enabled: vars.parse("SIGNUP_ENABLED", true)?,
            platform_admin_email: vars.get("PLATFORM_ADMIN_EMAIL"),
            platform_admin_password: vars.get("PLATFORM_ADMIN_PASSWORD"),
            base_domain: vars.get("BASE_DOMAIN"),
        };
        auth.validate()?;
        Ok(auth)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(60..=86_400).contains(&self.access_token_ttl_seconds) {
            return Err(ConfigError::invalid(
                "ACCESS_TOKEN_TTL_SECONDS",
                "must be between 60 and 86400",
            ));
        }
        if !(1..=365).contains(&self.refresh_token_ttl_days) {
            return Err(ConfigError::invalid(
                "REFRESH_TOKEN_TTL_DAYS",
                "must be between 1 and 365",
            ));
        }
        if self.platform_admin_email.is_some() != self.platform_admin_password.is_some() {
            return Err(ConfigError::invalid(
                "PLATFORM_ADMIN_PASSWORD",
                "PLATFORM_ADMIN_EMAIL and PLATFORM_ADMIN_PASSWORD go together",
            ));
        }
        Ok(())
    }

    /// The key that seals TOTP secrets: `MFA_ENCRYPTION_KEY`, or outside production
    /// (where it may be unset) a fixed development key.
    pub fn mfa_key(&self) -> SealingKey {
        self.mfa_encryption_key
            .clone()
            .unwrap_or_else(SealingKey::development)
    }
}
