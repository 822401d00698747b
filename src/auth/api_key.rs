//! API key format: `tnt_<env>_<40 random base62><6 base62 checksum>`.
//!
//! The checksum lets a mistyped or made-up key be refused without any storage lookup;
//! only the SHA-256 of a key is stored.

use sha2::{Digest, Sha256};

use super::secrets::{base62, random_base62};

const RANDOM_LEN: usize = 40;
const CHECKSUM_LEN: usize = 6;
/// Characters of a key shown in listings to recognise it (`tnt_test_AbCd`).
const DISPLAY_PREFIX_LEN: usize = 13;

/// A newly minted key; the plaintext is shown once and never stored.
#[derive(Debug)]
pub struct NewKey {
    pub plaintext: String,
    pub prefix: String,
    pub hash: Vec<u8>,
}

/// Mints a key for the environment `env` (`live` in production, `test` elsewhere).
pub fn generate(env: &str) -> NewKey {
    let body = format!("tnt_{env}_{}", random_base62(RANDOM_LEN));
    let plaintext = format!("{body}{}", checksum(&body));
    NewKey {
        prefix: plaintext[..DISPLAY_PREFIX_LEN].to_owned(),
        hash: super::secrets::sha256(&plaintext),
        plaintext,
    }
}

/// Checks the format and checksum of a presented key; returns its stored hash.
pub fn parse(key: &str) -> Option<Vec<u8>> {
    let rest = key.strip_prefix("tnt_")?;
    let (env, tail) = rest.split_once('_')?;
    let env_ok = !env.is_empty()
        && env.len() <= 16
        && env
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !env_ok || tail.len() < 32 + CHECKSUM_LEN || !tail.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return None;
    }
    let (body, sum) = key.split_at(key.len() - CHECKSUM_LEN);
    (checksum(body) == sum).then(|| super::secrets::sha256(key))
}

fn checksum(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let value = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    base62(u64::from(value), CHECKSUM_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_parse_and_hash_to_their_stored_hash() {
        let key = generate("test");
        assert!(key.plaintext.starts_with("tnt_test_"));
        assert_eq!(
            key.plaintext.len(),
            "tnt_test_".len() + RANDOM_LEN + CHECKSUM_LEN
        );
        assert_eq!(parse(&key.plaintext), Some(key.hash.clone()));
        assert!(key.plaintext.starts_with(&key.prefix));
    }

    #[test]
    fn malformed_keys_are_refused() {
        let key = generate("live").plaintext;
        for bad in [
            "",
            "tnt_",
            "tnt_live_short",
            &key.replace("tnt_", "tmt_"),
            &format!("{key}x"),
            &key[..key.len() - 1],
            &key.replacen("live", "LIVE", 1),
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    proptest! {
        /// Changing any one character of a key breaks it.
        #[test]
        fn a_single_changed_character_is_caught(index in 9usize..(9 + RANDOM_LEN + CHECKSUM_LEN), c in "[0-9A-Za-z]") {
            let key = generate("test").plaintext;
            let mut chars: Vec<char> = key.chars().collect();
            let replacement = c.chars().next().expect("one char");
            prop_assume!(chars[index] != replacement);
            chars[index] = replacement;
            let tampered: String = chars.into_iter().collect();
            // A 32-bit checksum: a collision is possible in principle, vanishingly rare.
            prop_assert_eq!(parse(&tampered), None);
        }
    }
}
