//! How notifications leave: the backend, the SNS topic email goes to, the sender.

use std::str::FromStr;

use super::{ConfigError, vars::Vars};

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

#[derive(Debug, Clone)]
pub struct NotificationsConfig {
    /// `NOTIFICATIONS_BACKEND`.
    pub backend: NotificationsBackend,
    /// Topic that email notifications are published to (`SNS_EMAIL_TOPIC_ARN`); created
    /// at start outside production when unset and the backend is `sns` (required in
    /// production: a rule of [`super::Config`]).
    pub sns_email_topic_arn: Option<String>,
    /// Sender address, sent as the `from` message attribute (`FROM_EMAIL`).
    pub from_email: String,
}

impl NotificationsConfig {
    pub(super) fn from_vars(
        vars: &Vars<'_, impl Fn(&str) -> Option<String>>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            backend: vars.parse("NOTIFICATIONS_BACKEND", NotificationsBackend::Log)?,
            sns_email_topic_arn: vars.get("SNS_EMAIL_TOPIC_ARN"),
            from_email: vars.string("FROM_EMAIL", "noreply@example.com"),
        })
    }
}
