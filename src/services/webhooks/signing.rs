//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` under
//! a `whsec_<base64>` secret.

use aws_lc_rs::hmac;
use base64::{Engine, engine::general_purpose::STANDARD};

/// Bytes of key behind a new secret (Standard Webhooks allows 24 to 64).
const SECRET_BYTES: usize = 32;

/// A new endpoint secret, `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; SECRET_BYTES];
    aws_lc_rs::rand::fill(&mut key).expect("the system random source works");
    format!("whsec_{}", STANDARD.encode(key))
}

/// `v1,<signature>` of one message under `secret` (`whsec_<base64>`).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let raw = secret.strip_prefix("whsec_").unwrap_or(secret);
    // Our secrets always decode; a stored value that did not would sign with its bytes.
    let key_bytes = STANDARD
        .decode(raw)
        .unwrap_or_else(|_| raw.as_bytes().to_vec());
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key_bytes);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
}

/// The `webhook-signature` header: one signature per secret, space-separated (the
/// current secret, then during a rotation's grace period the previous one).
pub fn header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| sign(s, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn matches_the_reference_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn new_secrets_are_whsec_and_32_bytes() {
        let s = new_secret();
        let raw = s.strip_prefix("whsec_").expect("prefix");
        assert_eq!(STANDARD.decode(raw).expect("base64").len(), 32);
        assert_ne!(new_secret(), s);
    }
}
