//! Passwords: argon2id hashing, always on the blocking thread pool so that a burst of
//! logins never stalls the async workers serving other requests.

use std::{fmt, sync::LazyLock};

use tokio::sync::Semaphore;

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};

/// argon2id at OWASP's floor: 19 MiB, 2 iterations, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

/// At most this many hashes run at once: half the cores (at least one). A login storm
/// then queues behind the permits instead of taking every core from the async workers
/// that serve everyone else.
static HASHING: LazyLock<Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    Semaphore::new((cores / 2).max(1))
});

/// Runs one argon2 computation on the blocking pool, within the hashing permits.
async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let _permit = HASHING
        .acquire()
        .await
        .context("the hashing semaphore is closed")?;
    tokio::task::spawn_blocking(work)
        .await
        .context("password hashing task failed")?
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None).expect("valid argon2 params");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A password that passed the rules (8 to 128 characters). Its `Debug` hides it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: String) -> Result<Self, &'static str> {
        match raw.chars().count() {
            0..=7 => Err("must be at least 8 characters"),
            8..=128 => Ok(Self(raw)),
            _ => Err("must be at most 128 characters"),
        }
    }
}

impl Password {
    /// The password itself, to verify it against a stored hash.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Hashes `password` on the blocking pool; returns the PHC string.
pub async fn hash(password: Password) -> anyhow::Result<String> {
    on_blocking_pool(move || {
        hasher()
            .hash_password(password.0.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
    })
    .await
}

/// The result of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but hashed with weaker parameters than today's: store a new hash.
    YesButRehash,
}

/// A hash of a password nobody has, checked when the account does not exist so that
/// unknown users take as long as wrong passwords.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hasher()
        .hash_password(b"no such account, no such password")
        .map(|h| h.to_string())
        .unwrap_or_default()
});

/// Checks `password` against `stored` (or against a dummy hash when there is no
/// account) on the blocking pool.
pub async fn verify(password: String, stored: Option<String>) -> anyhow::Result<Verified> {
    on_blocking_pool(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return Ok(Verified::No);
        };
        let ok = hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(match (known && ok, needs_rehash(&parsed)) {
            (false, _) => Verified::No,
            (true, false) => Verified::Yes,
            (true, true) => Verified::YesButRehash,
        })
    })
    .await
}

fn needs_rehash(parsed: &PasswordHash) -> bool {
    let weaker = match Params::try_from(parsed) {
        Ok(p) => p.m_cost() < MEMORY_KIB || p.t_cost() < ITERATIONS || p.p_cost() < LANES,
        Err(_) => true,
    };
    weaker || parsed.algorithm.as_str() != "argon2id"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_length_rules() {
        assert!(Password::parse("short".into()).is_err());
        assert!(Password::parse("12345678".into()).is_ok());
        assert!(Password::parse("x".repeat(128)).is_ok());
        assert!(Password::parse("x".repeat(129)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("secret-pass".into())),
            "Ok(Password(***))"
        );
    }

    #[tokio::test]
    async fn hashes_verify_and_weak_ones_ask_for_rehash() {
        let stored = hash(Password::parse("correct horse".into()).expect("valid"))
            .await
            .expect("hash");
        assert!(stored.starts_with("$argon2id$"));
        assert!(stored.contains("m=19456,t=2,p=1"));
        assert_eq!(
            verify("correct horse".into(), Some(stored.clone()))
                .await
                .expect("verify"),
            Verified::Yes
        );
        assert_eq!(
            verify("wrong horse".into(), Some(stored))
                .await
                .expect("verify"),
            Verified::No
        );
        assert_eq!(
            verify("anything".into(), None).await.expect("verify"),
            Verified::No
        );

        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).expect("params"),
        )
        .hash_password(b"old password")
        .expect("hash")
        .to_string();
        assert_eq!(
            verify("old password".into(), Some(weak))
                .await
                .expect("verify"),
            Verified::YesButRehash
        );
    }
}
