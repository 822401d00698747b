//! The filesystem backend: objects are files under `STORAGE_DIR` at their key's path,
//! and links are URLs on this service signed with HMAC-SHA256.
//!
//! A link is `/files/<key>?expires=<unix seconds>&…&signature=<hex>`; the signature covers
//! the method, the key, the expiry and every other parameter, so none can be changed.
//! The signing key is shared by every replica: generated once by the first one that needs
//! it and kept in `platform.secrets` (as the development JWT key is), because replicas
//! that share a `STORAGE_DIR` must accept each other's links.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use aws_lc_rs::hmac;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::OnceCell,
};

use super::{Presentation, PutError, Stored, Tally};

/// The name of the signing key's row in `platform.secrets`.
const KEY_NAME: &str = "files_link_signing_key";

pub struct FsStorage {
    root: PathBuf,
    db: PgPool,
    /// Boxed: an HMAC key is large, and most of the time this is never loaded.
    key: OnceCell<Box<hmac::Key>>,
}

/// The query string of a signed link.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LinkParams {
    /// Unix seconds after which the link is refused.
    pub expires: i64,
    /// Downloads: the file name for `Content-Disposition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Downloads: the `Content-Type` to answer with.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub content_type: Option<String>,
    /// Uploads: the most bytes accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default)]
    pub signature: String,
}

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    Expired,
    BadSignature,
}

impl FsStorage {
    pub fn new(root: PathBuf, db: PgPool) -> Self {
        Self {
            root,
            db,
            key: OnceCell::new(),
        }
    }

    /// The file of `key`. Keys are ours (`tenants/<uuid>/<uuid>`), but a link's path
    /// comes from a client: only plain segments are accepted, so no key leaves the root.
    fn path(&self, key: &str) -> anyhow::Result<PathBuf> {
        let valid = key.split('/').all(|s| {
            !s.is_empty()
                && !s.starts_with('.')
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        });
        anyhow::ensure!(valid && key.starts_with("tenants/"), "not an object key");
        Ok(self.root.join(key))
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        tokio::fs::create_dir_all(&self.root)
            .await
            .with_context(|| format!("cannot create {}", self.root.display()))?;
        let meta = tokio::fs::metadata(&self.root).await?;
        anyhow::ensure!(meta.is_dir(), "STORAGE_DIR is not a directory");
        Ok(())
    }

    pub async fn put_stream(
        &self,
        key: &str,
        mut body: impl Stream<Item = Result<Bytes, String>> + Send + Unpin,
        limit: u64,
    ) -> Result<Stored, PutError> {
        let path = self.path(key)?;
        let dir = path.parent().context("a key has a directory")?;
        tokio::fs::create_dir_all(dir)
            .await
            .context("failed to create the tenant's directory")?;
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .context("a key has a file name")?;
        let temp = dir.join(format!(
            ".{file_name}.{}.part",
            uuid::Uuid::new_v4().simple()
        ));
        let result = async {
            let mut file = tokio::io::BufWriter::new(
                tokio::fs::File::create(&temp)
                    .await
                    .context("failed to create the file")?,
            );
            let mut tally = Tally::new(limit);
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(PutError::Body)?;
                tally.add(&chunk)?;
                file.write_all(&chunk)
                    .await
                    .context("failed to write the file")?;
            }
            file.flush().await.context("failed to write the file")?;
            file.get_ref()
                .sync_all()
                .await
                .context("failed to write the file")?;
            // Write once, atomically: link(2) fails when the name exists, so of two
            // concurrent writes to one key exactly one wins (a rename would replace).
            match tokio::fs::hard_link(&temp, &path).await {
                Ok(()) => Ok(tally.finish()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(PutError::Exists),
                Err(e) => Err(anyhow::Error::new(e)
                    .context("failed to move the file in place")
                    .into()),
            }
        }
        .await;
        let _ = tokio::fs::remove_file(&temp).await;
        result
    }

    /// Moves `from` to `to` (one rename on one file system); `false` when there is no
    /// `from`.
    pub async fn rename(&self, from: &str, to: &str) -> anyhow::Result<bool> {
        let (from, to) = (self.path(from)?, self.path(to)?);
        if let Some(dir) = to.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .context("failed to create the tenant's directory")?;
        }
        match tokio::fs::rename(&from, &to).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(anyhow::Error::new(e).context("failed to move the file")),
        }
    }

    /// Up to 1,000 keys of the files directly under `prefix` (`…/`).
    pub async fn list(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let dir = self.path(prefix.trim_end_matches('/'))?;
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(anyhow::Error::new(e).context("failed to list files")),
        };
        let mut keys = Vec::new();
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with('.') && entry.file_type().await.is_ok_and(|t| t.is_file()) {
                keys.push(format!("{prefix}{name}"));
                if keys.len() >= 1000 {
                    break;
                }
            }
        }
        Ok(keys)
    }

    pub async fn size(&self, key: &str) -> anyhow::Result<Option<u64>> {
        match tokio::fs::metadata(self.path(key)?).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context("failed to look up the file")),
        }
    }

    /// Opens the object for reading, with its size; `None` when there is none.
    pub async fn open(&self, key: &str) -> anyhow::Result<Option<(tokio::fs::File, u64)>> {
        match tokio::fs::File::open(self.path(key)?).await {
            Ok(file) => {
                let size = file.metadata().await?.len();
                Ok(Some((file, size)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context("failed to open the file")),
        }
    }

    pub async fn digest(&self, key: &str) -> anyhow::Result<Stored> {
        let (mut file, _) = self.open(key).await?.context("no such object")?;
        let mut tally = Tally::new(u64::MAX);
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let n = file.read(&mut buffer).await?;
            if n == 0 {
                return Ok(tally.finish());
            }
            tally
                .add(&buffer[..n])
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }

    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(anyhow::Error::new(e).context("failed to delete the file"))
            }
            _ => Ok(()),
        }
    }

    pub async fn delete_prefix(&self, prefix: &str) -> anyhow::Result<u64> {
        let dir = self.path(prefix.trim_end_matches('/'))?;
        let count = count_files(&dir).await;
        match tokio::fs::remove_dir_all(&dir).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(anyhow::Error::new(e).context("failed to delete the tenant's files"))
            }
            _ => Ok(count),
        }
    }

    async fn signing_key(&self) -> anyhow::Result<&hmac::Key> {
        self.key
            .get_or_try_init(|| async {
                let secret = load_or_create_secret(&self.db).await?;
                Ok(Box::new(hmac::Key::new(
                    hmac::HMAC_SHA256,
                    secret.as_bytes(),
                )))
            })
            .await
            .map(|key| &**key)
    }

    async fn sign(
        &self,
        method: &str,
        key: &str,
        mut params: LinkParams,
    ) -> anyhow::Result<String> {
        let tag = hmac::sign(
            self.signing_key().await?,
            message(method, key, &params).as_bytes(),
        );
        params.signature = super::hex(tag.as_ref());
        Ok(format!(
            "/files/{key}?{}",
            serde_urlencoded::to_string(&params)?
        ))
    }

    pub async fn sign_get(
        &self,
        key: &str,
        ttl: Duration,
        how: &Presentation<'_>,
    ) -> anyhow::Result<String> {
        let params = LinkParams {
            expires: expiry(ttl),
            name: Some(how.name.to_owned()),
            content_type: Some(how.content_type.to_owned()),
            ..Default::default()
        };
        self.sign("GET", key, params).await
    }

    pub async fn sign_put(
        &self,
        key: &str,
        ttl: Duration,
        max_size: u64,
    ) -> anyhow::Result<String> {
        let params = LinkParams {
            expires: expiry(ttl),
            size: Some(max_size),
            ..Default::default()
        };
        self.sign("PUT", key, params).await
    }

    /// Checks a link: the signature first (in constant time), then the expiry.
    pub async fn verify(
        &self,
        method: &str,
        key: &str,
        params: &LinkParams,
    ) -> anyhow::Result<Result<(), LinkError>> {
        let Some(signature) = unhex(&params.signature) else {
            return Ok(Err(LinkError::BadSignature));
        };
        let message = message(method, key, params);
        if hmac::verify(self.signing_key().await?, message.as_bytes(), &signature).is_err() {
            return Ok(Err(LinkError::BadSignature));
        }
        if params.expires < chrono::Utc::now().timestamp() {
            return Ok(Err(LinkError::Expired));
        }
        Ok(Ok(()))
    }
}

/// What a link's signature covers: everything in it but the signature. Newlines cannot
/// appear in a key, and parameters are escaped, so no two links share a message.
fn message(method: &str, key: &str, p: &LinkParams) -> String {
    let escape = |s: &Option<String>| {
        s.as_deref().map_or_else(String::new, |s| {
            s.replace('\\', "\\\\").replace('\n', "\\n")
        })
    };
    format!(
        "{method}\n{key}\n{}\n{}\n{}\n{}",
        p.expires,
        escape(&p.name),
        escape(&p.content_type),
        p.size.map_or_else(String::new, |s| s.to_string())
    )
}

fn expiry(ttl: Duration) -> i64 {
    chrono::Utc::now().timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

async fn count_files(dir: &Path) -> u64 {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return 0;
    };
    let mut count = 0;
    while let Ok(Some(entry)) = entries.next_entry().await {
        if entry.file_type().await.is_ok_and(|t| t.is_file()) {
            count += 1;
        }
    }
    count
}

/// The shared link-signing secret: the first replica to need it generates 32 random
/// bytes; the insert keeps only the first of concurrent ones.
async fn load_or_create_secret(db: &PgPool) -> anyhow::Result<String> {
    let stored = || async {
        sqlx::query_scalar::<_, String>("select value from platform.secrets where name = $1")
            .bind(KEY_NAME)
            .fetch_optional(db)
            .await
            .context("failed to read the link-signing key")
    };
    if let Some(secret) = stored().await? {
        return Ok(secret);
    }
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness"))?;
    sqlx::query(
        "insert into platform.secrets (name, value) values ($1, $2) on conflict do nothing",
    )
    .bind(KEY_NAME)
    .bind(super::hex(&bytes))
    .execute(db)
    .await
    .context("failed to store the link-signing key")?;
    stored()
        .await?
        .context("the link-signing key vanished after it was stored")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("é0"), None);
    }

    #[test]
    fn messages_differ_in_every_field() {
        let p = LinkParams {
            expires: 10,
            name: Some("a".into()),
            ..Default::default()
        };
        let base = message("GET", "tenants/a/b", &p);
        assert_ne!(base, message("PUT", "tenants/a/b", &p));
        assert_ne!(base, message("GET", "tenants/a/c", &p));
        let later = LinkParams {
            expires: 11,
            ..p.clone()
        };
        assert_ne!(base, message("GET", "tenants/a/b", &later));
        let renamed = LinkParams {
            name: Some("a\n".into()),
            ..p.clone()
        };
        assert_ne!(base, message("GET", "tenants/a/b", &renamed));
    }

    #[tokio::test]
    async fn paths_stay_under_the_root() {
        let pool = sqlx::PgPool::connect_lazy("postgres://localhost/x").expect("lazy pool");
        let fs = FsStorage::new("/data".into(), pool);
        assert!(fs.path("tenants/a/b").is_ok());
        assert!(fs.path("tenants/../etc/passwd").is_err());
        assert!(fs.path("tenants/a//b").is_err());
        assert!(fs.path("/etc/passwd").is_err());
        assert!(fs.path("other/a").is_err());
    }
}
