//! Mail the platform sends by itself (welcome, verification, registration notice,
//! password reset): at most [`PLATFORM_MAIL_PER_HOUR`] per recipient per hour, so that
//! nobody can make the platform mail one address over and over.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::RateLimiter;

/// Platform mails one recipient of one tenant may get per hour.
pub const PLATFORM_MAIL_PER_HOUR: i64 = 5;

/// Why a platform mail may not go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailRefusal {
    /// The recipient had [`PLATFORM_MAIL_PER_HOUR`] this hour.
    RecipientLimit,
    /// Redis did not answer: the count cannot be checked.
    Unavailable,
}

impl RateLimiter {
    /// Takes one platform mail from the recipient's hourly allowance. The counter lives
    /// in Redis under the app's key prefix, keyed by a hash of the tenant and the address
    /// (no address in Redis). It fails closed: the allowance is what stops a tenant
    /// from turning the platform's mail into a spam cannon, so an outage must not lift
    /// it — and the daily send quota, which platform mail also takes from, fails closed
    /// too. Whoever wanted the mail asks again once Redis is back.
    pub async fn consume_platform_mail(
        &self,
        tenant: Uuid,
        recipient: &str,
    ) -> Result<(), MailRefusal> {
        let mut hasher = Sha256::new();
        hasher.update(tenant.as_bytes());
        hasher.update(recipient.to_lowercase().as_bytes());
        let digest = hasher.finalize();
        let key = format!(
            "{}pmail:{}",
            self.prefix,
            super::login_failures::hex(&digest[..16])
        );
        let mut conn = self.redis.clone();
        let mut invocation = self.quota_script.prepare_invoke();
        invocation
            .key(&key)
            .arg(1)
            .arg(PLATFORM_MAIL_PER_HOUR)
            .arg(3600);
        let call = invocation.invoke_async::<i64>(&mut conn);
        match tokio::time::timeout(crate::redis::TIMEOUT, call).await {
            Ok(Ok(used)) if used >= 0 => Ok(()),
            Ok(Ok(_)) => Err(MailRefusal::RecipientLimit),
            Ok(Err(e)) => {
                metrics::counter!("tenantry_redis_errors_total", "op" => "platform_mail")
                    .increment(1);
                tracing::warn!(error = %format!("{e:#}"), "could not count platform mail in Redis");
                Err(MailRefusal::Unavailable)
            }
            Err(_) => {
                metrics::counter!("tenantry_redis_errors_total", "op" => "platform_mail")
                    .increment(1);
                tracing::warn!("could not count platform mail in Redis: no answer in time");
                Err(MailRefusal::Unavailable)
            }
        }
    }
}
