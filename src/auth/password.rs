//! Passwords: argon2id hashing on a few dedicated threads, each reusing one argon2
//! memory area.
//!
//! Dedicated threads keep a burst of logins from stalling the async workers that serve
//! everyone else: the burst queues here. Reusing the memory bounds the process: argon2
//! needs 19 MiB per hash, and when every hash allocated its own (zeroed) area the
//! allocator kept the freed areas in per-thread arenas — the server's RSS passed 250 MiB
//! in an onboarding storm. Now it is one area per hashing thread, allocated once.

use std::{
    cell::RefCell,
    fmt,
    sync::{Arc, LazyLock, Mutex, mpsc},
};

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};

/// argon2id at OWASP's floor: 19 MiB, 2 iterations, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;
const SALT_LEN: usize = 16;
const OUTPUT_LEN: usize = 32;

type Work = Box<dyn FnOnce() + Send>;

/// The queue of the hashing threads: half the cores, at least one.
static HASHING: LazyLock<mpsc::Sender<Work>> = LazyLock::new(|| {
    let (sender, receiver) = mpsc::channel::<Work>();
    let receiver = Arc::new(Mutex::new(receiver));
    let threads = std::thread::available_parallelism().map_or(2, usize::from) / 2;
    for i in 0..threads.max(1) {
        let receiver = receiver.clone();
        std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                loop {
                    // The lock is held only while waiting for the next piece of work.
                    let work = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(work) = work else { return };
                    // A panic fails that one hash (its caller sees an error), not the thread.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
                }
            })
            .expect("spawn a hashing thread");
    }
    sender
});

thread_local! {
    /// This hashing thread's argon2 memory, allocated at its first hash.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs one argon2 computation on a hashing thread and waits for it without blocking.
async fn on_hashing_thread<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Work = Box::new(move || {
        let _ = done.send(work());
    });
    HASHING
        .send(job)
        .map_err(|_| anyhow::anyhow!("the hashing threads are gone"))?;
    result.await.context("password hashing task failed")?
}

fn current_params() -> Params {
    Params::new(MEMORY_KIB, ITERATIONS, LANES, Some(OUTPUT_LEN)).expect("valid argon2 params")
}

/// Computes `argon2` of `password` and `salt` into `out`, in this thread's memory area
/// (a hash with larger parameters than today's gets a temporary one).
fn compute(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> anyhow::Result<()> {
    let needed = argon2.params().block_count();
    let mut run = |blocks: &mut [Block]| {
        argon2
            .hash_password_into_with_memory(password, salt, out, blocks)
            .map_err(|e| anyhow::anyhow!("argon2 failed: {e}"))
    };
    if needed > current_params().block_count() {
        return run(&mut vec![Block::new(); needed]);
    }
    MEMORY.with_borrow_mut(|memory| {
        if memory.len() < needed {
            memory.resize(needed, Block::new());
        }
        run(&mut memory[..needed])
    })
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

/// Hashes `password` on a hashing thread; returns the PHC string.
pub async fn hash(password: Password) -> anyhow::Result<String> {
    on_hashing_thread(move || phc_hash(password.0.as_bytes())).await
}

/// The PHC string of argon2id with today's parameters and a fresh random salt.
fn phc_hash(password: &[u8]) -> anyhow::Result<String> {
    let params = current_params();
    let mut salt = [0u8; SALT_LEN];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| anyhow::anyhow!("the system RNG failed"))?;
    let mut out = [0u8; OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    compute(&argon2, password, &salt, &mut out)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(phc_error)?,
        salt: Some(Salt::new(&salt).map_err(phc_error)?),
        hash: Some(Output::new(&out).map_err(phc_error)?),
    };
    Ok(hash.to_string())
}

fn phc_error(e: impl fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("PHC encoding failed: {e}")
}

/// Whether `password` matches the parsed PHC hash (any argon2 variant and parameters).
fn matches(password: &[u8], parsed: &PasswordHash) -> bool {
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm.as_str()),
        Params::try_from(parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    if compute(&argon2, password, salt, &mut out).is_err() {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|computed| computed == *expected)
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
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| phc_hash(b"no such account, no such password").unwrap_or_default());

/// Checks `password` against `stored` (or against a dummy hash when there is no
/// account) on a hashing thread.
pub async fn verify(password: String, stored: Option<String>) -> anyhow::Result<Verified> {
    on_hashing_thread(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return Ok(Verified::No);
        };
        let ok = matches(password.as_bytes(), &parsed);
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
    use argon2::{PasswordHasher, PasswordVerifier};

    #[test]
    fn hashes_are_standard_phc_strings_both_ways() {
        let ours = phc_hash(b"correct horse").expect("hash");
        let parsed = PasswordHash::new(&ours).expect("PHC");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok(),
            "the argon2 crate verifies our hashes"
        );
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, current_params())
            .hash_password(b"correct horse")
            .expect("hash")
            .to_string();
        let parsed = PasswordHash::new(&theirs).expect("PHC");
        assert!(
            matches(b"correct horse", &parsed),
            "we verify the crate's hashes"
        );
        assert!(!matches(b"correct horsf", &parsed));
    }

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
