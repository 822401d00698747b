//! A tenant's `settings`: a bounded JSON object, and the self-registration setting in it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

/// A tenant's self-registration setting: `{enabled, allowed_email_domains?}`. Off by
/// default; with `allowed_email_domains`, only addresses in those domains may register.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelfRegistration {
    pub enabled: bool,
    /// Domains (lowercase) whose addresses may register; absent: any domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 100, value_type = Option<Vec<EmailDomain>>)]
    pub allowed_email_domains: Option<Vec<String>>,
}

impl SelfRegistration {
    /// The setting in a tenant's stored `settings`; off when absent (or, for settings
    /// stored before they were validated, malformed).
    pub fn of(settings: &serde_json::Value) -> Self {
        settings
            .get("self_registration")
            .and_then(|v| Self::deserialize(v).ok())
            .map(Self::normalized)
            .unwrap_or_default()
    }

    /// Whether `email` (normalised to lowercase) may register: the setting is on and,
    /// when domains are listed, the address's domain is one of them exactly.
    pub fn admits(&self, email: &str) -> bool {
        let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
        self.enabled
            && self
                .allowed_email_domains
                .as_ref()
                .is_none_or(|allowed| allowed.iter().any(|a| a == domain))
    }

    /// Domains compare case-insensitively: they are kept lowercase.
    pub fn normalized(mut self) -> Self {
        if let Some(domains) = &mut self.allowed_email_domains {
            for domain in domains.iter_mut() {
                domain.make_ascii_lowercase();
            }
        }
        self
    }
}

/// A tenant's security setting: `{require_mfa}`. With `require_mfa`, a user's token that
/// has not passed a second factor is refused (403 `MFA_REQUIRED`) everywhere but
/// `/auth/me`, `/auth/logout` and MFA enrolment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Security {
    #[serde(default)]
    pub require_mfa: bool,
}

impl Security {
    /// The setting in a tenant's stored `settings`; nothing required when absent.
    pub fn of(settings: &serde_json::Value) -> Self {
        settings
            .get("security")
            .and_then(|v| Self::deserialize(v).ok())
            .unwrap_or_default()
    }
}

/// An email domain such as `example.com`: labels of letters, digits and inner hyphens.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$", max_length = 253, example = "example.com")]
#[expect(
    dead_code,
    reason = "documents the schema; the value is checked as a String"
)]
pub struct EmailDomain(String);

/// The largest settings object a tenant may store, serialized.
pub const SETTINGS_MAX_BYTES: usize = 16 * 1024;
/// The most email domains self-registration may list.
pub const SELF_REGISTRATION_MAX_DOMAINS: usize = 100;

/// A tenant's validated `settings`: a JSON object of at most 16 KiB whose
/// `self_registration`, when present, is a well-formed [`SelfRegistration`]. Other keys
/// are the tenant's own and kept as given.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSettings(serde_json::Value);

impl TenantSettings {
    pub fn parse(value: serde_json::Value) -> Result<Self, Vec<FieldError>> {
        if !value.is_object() {
            return Err(vec![FieldError::new("settings", "must be an object")]);
        }
        let size = serde_json::to_vec(&value).map_or(usize::MAX, |v| v.len());
        if size > SETTINGS_MAX_BYTES {
            return Err(vec![FieldError::new(
                "settings",
                format!("must be at most {SETTINGS_MAX_BYTES} bytes as JSON (is {size})"),
            )]);
        }
        if let Some(raw) = value.get("security").filter(|v| !v.is_null()) {
            Security::deserialize(raw).map_err(|e| {
                vec![FieldError::new(
                    "settings.security",
                    format!("must be {{require_mfa: bool}}: {e}"),
                )]
            })?;
        }
        // `null` is the same as absent: self-registration off.
        if let Some(raw) = value.get("self_registration").filter(|v| !v.is_null()) {
            let field = "settings.self_registration";
            let parsed = SelfRegistration::deserialize(raw).map_err(|e| {
                vec![FieldError::new(
                    field,
                    format!("must be {{enabled: bool, allowed_email_domains?: [domain]}}: {e}"),
                )]
            })?;
            if let Some(domains) = &parsed.allowed_email_domains {
                let field = "settings.self_registration.allowed_email_domains";
                if domains.len() > SELF_REGISTRATION_MAX_DOMAINS {
                    return Err(vec![FieldError::new(
                        field,
                        format!("at most {SELF_REGISTRATION_MAX_DOMAINS} domains"),
                    )]);
                }
                let errors: Vec<FieldError> = domains
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| !is_domain(d))
                    .map(|(i, _)| {
                        FieldError::new(
                            format!("{field}[{i}]"),
                            "must be a domain name such as example.com",
                        )
                    })
                    .collect();
                if !errors.is_empty() {
                    return Err(errors);
                }
            }
        }
        Ok(Self(value))
    }

    pub fn into_value(self) -> serde_json::Value {
        self.0
    }
}

/// A DNS name of at least two labels: letters, digits and inner hyphens, each label 1–63
/// characters, 253 at most in all.
fn is_domain(name: &str) -> bool {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    name.len() <= 253 && name.split('.').count() >= 2 && name.split('.').all(label_ok)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn errors(value: serde_json::Value) -> Vec<String> {
        TenantSettings::parse(value)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn settings_are_an_object_of_at_most_16_kib() {
        assert!(TenantSettings::parse(json!({"theme": "dark"})).is_ok());
        assert_eq!(errors(json!([])), ["settings"]);
        assert_eq!(errors(json!(null)), ["settings"]);
        // {"a":"…"} is 8 bytes around the string.
        assert!(TenantSettings::parse(json!({"a": "x".repeat(SETTINGS_MAX_BYTES - 8)})).is_ok());
        assert_eq!(
            errors(json!({"a": "x".repeat(SETTINGS_MAX_BYTES - 7)})),
            ["settings"]
        );
    }

    #[test]
    fn self_registration_has_a_fixed_shape() {
        let ok = |v| TenantSettings::parse(json!({"self_registration": v})).is_ok();
        assert!(ok(json!({"enabled": false})));
        assert!(ok(
            json!({"enabled": true, "allowed_email_domains": ["example.com", "a-b.co.uk"]})
        ));
        assert!(ok(json!({"enabled": true, "allowed_email_domains": null})));
        assert!(ok(json!(null)));
        assert!(!ok(json!(true)));
        assert!(!ok(json!({"enabled": true, "domains": []})));
        assert!(!ok(json!({"allowed_email_domains": []})));
        assert_eq!(
            errors(
                json!({"self_registration": {"enabled": true, "allowed_email_domains": ["ok.com", "-bad.com", "x..com", "nodot"]}})
            ),
            [
                "settings.self_registration.allowed_email_domains[1]",
                "settings.self_registration.allowed_email_domains[2]",
                "settings.self_registration.allowed_email_domains[3]",
            ]
        );
    }

    #[test]
    fn security_requires_mfa_only_when_asked() {
        assert!(!Security::of(&json!({})).require_mfa);
        assert!(Security::of(&json!({"security": {"require_mfa": true}})).require_mfa);
        assert!(TenantSettings::parse(json!({"security": {"require_mfa": true}})).is_ok());
        assert!(TenantSettings::parse(json!({"security": null})).is_ok());
        assert_eq!(
            errors(json!({"security": {"require_mfa": "yes"}})),
            ["settings.security"]
        );
        assert_eq!(
            errors(json!({"security": {"other": 1}})),
            ["settings.security"]
        );
    }

    #[test]
    fn self_registration_is_off_unless_the_tenant_opted_in() {
        assert_eq!(
            SelfRegistration::of(&json!({})),
            SelfRegistration::default()
        );
        assert!(!SelfRegistration::of(&json!({})).enabled);
        assert!(!SelfRegistration::of(&json!({"self_registration": true})).enabled);
        assert_eq!(
            SelfRegistration::of(&json!({"self_registration": {
                "enabled": true, "allowed_email_domains": ["Example.COM"]}})),
            SelfRegistration {
                enabled: true,
                allowed_email_domains: Some(vec!["example.com".to_owned()]),
            }
        );
    }

    #[test]
    fn domains_follow_dns_label_rules() {
        for ok in [
            "example.com",
            "a.b.c.d",
            "xn--bcher-kva.example",
            &format!("{}.com", "a".repeat(63)),
        ] {
            assert!(is_domain(ok), "{ok}");
        }
        for bad in [
            "",
            "com",
            ".com",
            "a.",
            "a..b",
            "-a.com",
            "a-.com",
            "a b.com",
            "a_b.com",
            &format!("{}.com", "a".repeat(64)),
        ] {
            assert!(!is_domain(bad), "{bad}");
        }
    }
}
