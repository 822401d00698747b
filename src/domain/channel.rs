//! The channels a message travels by, and the forms of their addresses.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
