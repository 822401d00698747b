//! One-time passwords: HOTP (RFC 4226) and TOTP (RFC 6238: HMAC-SHA-1, 30-second steps,
//! 6 digits), their base32 secrets and `otpauth://` URIs, and the sealing of secrets at
//! rest (AES-256-GCM with `MFA_ENCRYPTION_KEY`).

use aws_lc_rs::{aead, hmac};
use base64::Engine;

/// Seconds per TOTP time step.
pub const STEP_SECONDS: u64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Bytes of a new secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;

/// The HOTP value of `secret` at `counter`, truncated to `digits` digits.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    // Dynamic truncation (RFC 4226 §5.3).
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]) & 0x7fff_ffff;
    binary % 10u32.pow(digits)
}

/// The time step of a Unix time.
pub fn step_at(unix_seconds: u64) -> u64 {
    unix_seconds / STEP_SECONDS
}

/// The current time step.
pub fn current_step() -> u64 {
    step_at(u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0))
}

/// The TOTP code of `secret` at `unix_seconds`, as `digits` characters.
pub fn code_at(secret: &[u8], unix_seconds: u64, digits: u32) -> String {
    format_code(hotp(secret, step_at(unix_seconds), digits), digits)
}

fn format_code(value: u32, digits: u32) -> String {
    format!("{value:0width$}", width = digits as usize)
}

/// The step whose code `code` is, among the current one and one step either side, and
/// only if it is later than `last_used` (a code is accepted once). Codes compare in
/// constant time.
pub fn matching_step(secret: &[u8], code: &str, now: u64, last_used: Option<i64>) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut found = None;
    for step in [now.saturating_sub(1), now, now + 1] {
        let fresh = last_used.is_none_or(|last| i64::try_from(step).is_ok_and(|s| s > last));
        let expected = format_code(hotp(secret, step, DIGITS), DIGITS);
        let equal =
            aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), code.as_bytes())
                .is_ok();
        if equal && fresh && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// A fresh random secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    aws_lc_rs::rand::fill(&mut secret).expect("the system RNG works");
    secret
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, as authenticator apps take secrets.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes base32 (case-insensitive, padding and spaces ignored).
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|b| *b != b'=' && *b != b' ') {
        let value = BASE32.iter().position(|a| *a == c.to_ascii_uppercase())?;
        buffer = (buffer << 5) | u32::try_from(value).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// The `otpauth://totp/...` URI an authenticator app scans (Key Uri Format).
pub fn otpauth_uri(issuer: &str, account: &str, secret_base32: &str) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={secret_base32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        percent_encode(issuer),
        percent_encode(account),
        percent_encode(issuer),
    )
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The key that seals TOTP secrets at rest (`MFA_ENCRYPTION_KEY`, 32 bytes in base64).
#[derive(Clone, PartialEq, Eq)]
pub struct SealingKey([u8; 32]);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

impl std::str::FromStr for SealingKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|_| "must be base64".to_owned())?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "must be 32 bytes in base64 (openssl rand -base64 32)".to_owned())?;
        Ok(Self(key))
    }
}

/// Format version of a sealed secret: a version byte, the 12-byte nonce, the ciphertext
/// and its tag.
const SEALED_V1: u8 = 1;

impl SealingKey {
    /// The key used outside production when `MFA_ENCRYPTION_KEY` is unset: fixed and
    /// public, so every replica of a development deployment agrees — and worthless as
    /// protection, which is why production requires the variable.
    pub fn development() -> Self {
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            b"tenantry development MFA encryption key",
        );
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        Self(key)
    }

    fn key(&self) -> aead::LessSafeKey {
        aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::AES_256_GCM, &self.0).expect("a 32-byte AES key"),
        )
    }

    /// Encrypts `secret`, bound to `context` (the tenant and user it belongs to): a sealed
    /// secret copied to another row does not open.
    pub fn seal(&self, context: &[u8], secret: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; aead::NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("the system RNG works");
        let mut data = secret.to_vec();
        self.key()
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(context),
                &mut data,
            )
            .expect("AES-GCM seals");
        let mut out = Vec::with_capacity(1 + nonce.len() + data.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&data);
        out
    }

    /// Decrypts what [`Self::seal`] made with the same key and context.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (&version, rest) = sealed.split_first()?;
        if version != SEALED_V1 || rest.len() < aead::NONCE_LEN {
            return None;
        }
        let (nonce, data) = rest.split_at(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = data.to_vec();
        let plain = self
            .key()
            .open_in_place(nonce, aead::Aad::from(context), &mut data)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn hotp_matches_rfc_4226_appendix_d() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, value) in expected.iter().enumerate() {
            assert_eq!(
                hotp(RFC_SECRET, counter as u64, 6),
                *value,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn totp_matches_rfc_6238_appendix_b_sha1() {
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(RFC_SECRET, time, 8), code, "T = {time}");
        }
        // Six digits are the low six of the eight.
        assert_eq!(code_at(RFC_SECRET, 59, 6), "287082");
    }

    #[test]
    fn codes_match_one_step_either_side_and_only_after_the_last_used() {
        let now = step_at(1_234_567_890);
        let at = |step: u64| format_code(hotp(RFC_SECRET, step, 6), 6);
        assert_eq!(matching_step(RFC_SECRET, &at(now), now, None), Some(now));
        assert_eq!(
            matching_step(RFC_SECRET, &at(now - 1), now, None),
            Some(now - 1)
        );
        assert_eq!(
            matching_step(RFC_SECRET, &at(now + 1), now, None),
            Some(now + 1)
        );
        assert_eq!(matching_step(RFC_SECRET, &at(now - 2), now, None), None);
        assert_eq!(matching_step(RFC_SECRET, &at(now + 2), now, None), None);
        let used = i64::try_from(now).expect("fits");
        assert_eq!(matching_step(RFC_SECRET, &at(now), now, Some(used)), None);
        assert_eq!(
            matching_step(RFC_SECRET, &at(now - 1), now, Some(used)),
            None
        );
        assert_eq!(
            matching_step(RFC_SECRET, &at(now + 1), now, Some(used)),
            Some(now + 1)
        );
        for bad in ["", "12345", "1234567", "abcdef"] {
            assert_eq!(matching_step(RFC_SECRET, bad, now, None), None, "{bad}");
        }
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(RFC_SECRET), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(base32_decode("mzxw6ytboi").as_deref(), Some(&b"foobar"[..]));
        let secret = new_secret();
        assert_eq!(base32_decode(&base32(&secret)), Some(secret));
        assert_eq!(base32_decode("not base32!"), None);
    }

    #[test]
    fn otpauth_uris_name_issuer_account_and_parameters() {
        assert_eq!(
            otpauth_uri("tenantry", "alice@example.com (acme)", "MZXW6YTBOI"),
            "otpauth://totp/tenantry:alice@example.com%20%28acme%29?secret=MZXW6YTBOI\
             &issuer=tenantry&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let key = SealingKey::development();
        let sealed = key.seal(b"tenant/user", b"secret");
        assert_ne!(&sealed[13..], b"secret");
        assert_eq!(
            key.open(b"tenant/user", &sealed).as_deref(),
            Some(&b"secret"[..])
        );
        assert_eq!(key.open(b"tenant/other", &sealed), None);
        let other: SealingKey = base64::engine::general_purpose::STANDARD
            .encode([7u8; 32])
            .parse()
            .expect("a key");
        assert_eq!(other.open(b"tenant/user", &sealed), None);
        assert!("c2hvcnQ=".parse::<SealingKey>().is_err());
        assert!("%%%".parse::<SealingKey>().is_err());
        assert_eq!(format!("{other:?}"), "SealingKey(..)");
    }
}
