//! The channels a message travels by, and the forms of their addresses.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Push,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Push => "push",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Email, Self::Sms, Self::Push]
            .into_iter()
            .find(|c| c.as_str() == raw)
    }
}

/// [`is_e164`] as the OpenAPI document states it (a test compares the two).
pub const E164_PATTERN: &str = r"^\+[1-9][0-9]{1,14}$";

/// [`is_endpoint_arn`] as the OpenAPI document states it (a test compares the two).
pub const ENDPOINT_ARN_PATTERN: &str = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:endpoint/.+/.+$";

/// A phone number in E.164 form ([`is_e164`]), or the field error saying so.
pub fn phone_number(field: &str, raw: &str) -> Result<String, FieldError> {
    if is_e164(raw) {
        Ok(raw.to_owned())
    } else {
        Err(FieldError::new(
            field,
            "must be a phone number in E.164 form (+ then 2 to 15 digits, e.g. +15551234567)",
        ))
    }
}

/// An SNS platform endpoint ARN ([`is_endpoint_arn`]), or the field error saying so.
pub fn endpoint_arn(field: &str, raw: &str) -> Result<String, FieldError> {
    if is_endpoint_arn(raw) {
        Ok(raw.to_owned())
    } else {
        Err(FieldError::new(
            field,
            "must be an SNS platform endpoint ARN (arn:aws:sns:<region>:<account>:endpoint/...)",
        ))
    }
}

/// A phone number in E.164 form: `+`, a non-zero digit, then 1 to 14 digits.
pub fn is_e164(raw: &str) -> bool {
    raw.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len())
            && !digits.starts_with('0')
            && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// An SNS platform endpoint ARN: `arn:aws:sns:<region>:<12-digit account>:endpoint/...`
/// (other AWS partitions, such as `aws-cn`, included).
pub fn is_endpoint_arn(raw: &str) -> bool {
    let parts: Vec<&str> = raw.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts[..] else {
        return false;
    };
    arn == "arn"
        && partition.starts_with("aws")
        && service == "sns"
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && resource.strip_prefix("endpoint/").is_some_and(|rest| {
            rest.len() > 2 && rest.contains('/') && !rest.contains(char::is_whitespace)
        })
        && raw.len() <= 1024
}
