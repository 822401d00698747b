//! Where messages go: the `log` backend (records, delivers nothing) or Amazon SNS.

use std::time::Duration;

use anyhow::Context;
use aws_config::SdkConfig;
use aws_sdk_sns::{
    config::timeout::TimeoutConfig, error::DisplayErrorContext, types::MessageAttributeValue,
};
use uuid::Uuid;

use super::{
    Channel,
    outbox::{Message, Outbox},
};
use crate::config::{Config, NotificationsBackend};

/// The topic created for email outside production when `SNS_EMAIL_TOPIC_ARN` is unset.
pub const DEVELOPMENT_EMAIL_TOPIC: &str = "tenantry-email";

/// The longest an SNS call may take, retries included.
const SNS_TIMEOUT: Duration = Duration::from_secs(10);

/// One message ready to go out.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub channel: Channel,
    /// An email address, an E.164 phone number or an SNS platform endpoint ARN.
    pub to: String,
    pub template: Option<String>,
    /// The subject of an email, the title of a push notification; may be empty.
    pub subject: String,
    pub body: String,
    /// Push only: extra data for the app.
    pub data: Option<serde_json::Value>,
}

/// The configured backend.
pub enum Notifier {
    Log(Outbox),
    Sns(Sns),
}

/// The SNS client and where email goes.
pub struct Sns {
    client: aws_sdk_sns::Client,
    email_topic_arn: String,
    from: String,
}

impl Notifier {
    /// The backend of `NOTIFICATIONS_BACKEND`. For `sns` without `SNS_EMAIL_TOPIC_ARN`
    /// (refused in production by the configuration) the email topic is created here.
    pub async fn from_config(config: &Config, aws: Option<&SdkConfig>) -> anyhow::Result<Self> {
        let (NotificationsBackend::Sns, Some(aws)) = (config.notifications.backend, aws) else {
            return Ok(Self::Log(Outbox::default()));
        };
        let client = aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(aws)
                .timeout_config(
                    TimeoutConfig::builder()
                        .operation_timeout(SNS_TIMEOUT)
                        .build(),
                )
                .build(),
        );
        let email_topic_arn = match &config.notifications.sns_email_topic_arn {
            Some(arn) => arn.clone(),
            None => client
                .create_topic()
                .name(DEVELOPMENT_EMAIL_TOPIC)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(e)))
                .context("failed to create the development email topic")?
                .topic_arn()
                .context("SNS created a topic without an ARN")?
                .to_owned(),
        };
        tracing::info!(topic = %email_topic_arn, "notifications go to SNS");
        Ok(Self::Sns(Sns {
            client,
            email_topic_arn,
            from: config.notifications.from_email.clone(),
        }))
    }

    /// `log` or `sns`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Log(_) => "log",
            Self::Sns(_) => "sns",
        }
    }

    /// The `log` backend's record of what was "sent".
    pub fn outbox(&self) -> Option<&Outbox> {
        match self {
            Self::Log(outbox) => Some(outbox),
            Self::Sns(_) => None,
        }
    }

    /// Delivers `message`; the provider's message id, or why it failed (no secret in it:
    /// SNS errors name the operation and the reason, never the message). `key` (the log
    /// row id) keeps the `log` backend from recording a retry twice.
    pub async fn send(&self, key: Uuid, message: &Outgoing) -> Result<String, String> {
        match self {
            Self::Log(outbox) => {
                outbox.send_once(
                    key,
                    Message {
                        channel: message.channel.as_str(),
                        to: message.to.clone(),
                        template: message.template.clone().unwrap_or_default(),
                        subject: message.subject.clone(),
                        body: message.body.clone(),
                    },
                );
                Ok(format!("log-{key}"))
            }
            Self::Sns(sns) => sns.publish(message).await,
        }
    }
}

fn attribute(value: &str) -> Result<MessageAttributeValue, String> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| format!("invalid message attribute: {e}"))
}

impl Sns {
    async fn publish(&self, message: &Outgoing) -> Result<String, String> {
        let publish = self.client.publish();
        let publish = match message.channel {
            Channel::Email => {
                let mut publish = publish
                    .topic_arn(&self.email_topic_arn)
                    .message(&message.body)
                    .message_attributes("recipient", attribute(&message.to)?)
                    .message_attributes("from", attribute(&self.from)?);
                // SNS refuses empty attribute values.
                if !message.subject.is_empty() {
                    publish = publish.message_attributes("subject", attribute(&message.subject)?);
                }
                publish
            }
            Channel::Sms => publish.phone_number(&message.to).message(&message.body),
            Channel::Push => {
                let mut content = serde_json::json!({ "body": message.body });
                if !message.subject.is_empty() {
                    content["title"] = message.subject.clone().into();
                }
                if let Some(data) = &message.data {
                    content["data"] = data.clone();
                }
                publish.target_arn(&message.to).message(content.to_string())
            }
        };
        let sent = publish
            .send()
            .await
            .map_err(|e| format!("SNS publish failed: {}", DisplayErrorContext(e)))?;
        sent.message_id()
            .map(str::to_owned)
            .ok_or_else(|| "SNS answered without a message id".to_owned())
    }
}
