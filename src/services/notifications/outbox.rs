//! The `log` backend's record: a bounded in-process outbox of the latest messages
//! (which tests read). It logs that a message was sent, never its content, since reset
//! links are secrets.

use std::{collections::VecDeque, sync::Mutex};

/// One message that would be delivered.
#[derive(Debug, Clone)]
pub struct Message {
    /// `email`, `sms` or `push`.
    pub channel: &'static str,
    pub to: String,
    /// The template's name; empty for a message sent with its own body.
    pub template: String,
    /// The subject of an email, the title of a push notification.
    pub subject: String,
    pub body: String,
}

const OUTBOX_MAX: usize = 1000;

/// The most recent messages, newest last.
#[derive(Default)]
pub struct Outbox {
    messages: Mutex<VecDeque<Message>>,
    /// Keys of [`Outbox::send_once`] deliveries, most recent last.
    sent_keys: Mutex<VecDeque<uuid::Uuid>>,
}

impl Outbox {
    pub fn send(&self, message: Message) {
        tracing::info!(
            channel = message.channel,
            template = message.template,
            to = %mask(&message.to),
            "notification recorded (log backend, not delivered)"
        );
        let mut messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        if messages.len() == OUTBOX_MAX {
            messages.pop_front();
        }
        messages.push_back(message);
    }

    /// Sends unless a message with the same `key` (a notification log id) was sent
    /// already, so a retried `notification.send` job does not deliver twice. `false`
    /// when skipped.
    pub fn send_once(&self, key: uuid::Uuid, message: Message) -> bool {
        {
            let mut sent = self.sent_keys.lock().unwrap_or_else(|e| e.into_inner());
            if sent.contains(&key) {
                return false;
            }
            if sent.len() == OUTBOX_MAX {
                sent.pop_front();
            }
            sent.push_back(key);
        }
        self.send(message);
        true
    }

    /// Messages sent to `to`, oldest first.
    pub fn sent_to(&self, to: &str) -> Vec<Message> {
        let messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        messages
            .iter()
            .filter(|m| m.to.eq_ignore_ascii_case(to))
            .cloned()
            .collect()
    }
}

/// `alice@example.com` → `a***@example.com`, `+15551234567` → `+1555***`, for logs.
pub fn mask(address: &str) -> String {
    match address.split_once('@') {
        Some((user, domain)) => {
            let first = user.chars().next().unwrap_or('*');
            format!("{first}***@{domain}")
        }
        None if address.starts_with('+') && address.len() > 5 => {
            format!("{}***", address.chars().take(5).collect::<String>())
        }
        None => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn addresses_are_masked_in_logs() {
        assert_eq!(mask("alice@example.com"), "a***@example.com");
        assert_eq!(mask("+15551234567"), "+1555***");
        assert_eq!(mask("nonsense"), "***");
    }
}
