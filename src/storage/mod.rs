//! Where file contents live: one abstraction, two backends.
//!
//! [`Storage`] is an enum over the two (no trait objects: there are exactly two, and the
//! compiler checks that each answers every operation):
//! - [`s3::S3Storage`]: an S3 bucket (or an S3-compatible server at `AWS_ENDPOINT_URL`).
//!   Uploads stream as multipart uploads in [`PART_SIZE`] parts (one `PutObject` when the
//!   body is smaller); links are S3 presigned URLs.
//! - [`fs::FsStorage`]: files under `STORAGE_DIR`, written to a temporary file and renamed;
//!   links are HMAC-signed, expiring URLs that the service serves itself (`/files/…`).
//!
//! Keys are `tenants/<tenant id>/<file id>` ([`object_key`]): the user's file name is
//! metadata, never part of a key or a path.

pub mod fs;
pub mod s3;

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::{Config, StorageBackend};

/// Size of one part of a streamed S3 upload, and the most a streamed upload holds in
/// memory at once.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// The object key of a tenant's file.
pub fn object_key(tenant_id: Uuid, file_id: Uuid) -> String {
    format!("tenants/{tenant_id}/{file_id}")
}

/// Where a presigned upload's contents land until `complete` moves them to
/// [`object_key`]: the upload link then writes to a key that nothing serves.
pub fn upload_key(tenant_id: Uuid, file_id: Uuid) -> String {
    format!("tenants/{tenant_id}/uploads/{file_id}")
}

/// The prefix of a tenant's presigned uploads in flight.
pub fn uploads_prefix(tenant_id: Uuid) -> String {
    format!("tenants/{tenant_id}/uploads/")
}

/// The final key of the file whose upload key is `key`, when it is one.
pub fn final_key_of(key: &str) -> Option<String> {
    let rest = key.strip_prefix("tenants/")?;
    let (tenant, file) = rest.split_once("/uploads/")?;
    Some(format!("tenants/{tenant}/{file}"))
}

/// The prefix under which all of a tenant's objects live.
pub fn tenant_prefix(tenant_id: Uuid) -> String {
    format!("tenants/{tenant_id}/")
}

/// What a completed upload stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub size: u64,
    /// Lowercase hex SHA-256 of the contents.
    pub sha256: String,
}

/// Why an upload did not store anything.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// The body is larger than the limit; nothing was kept.
    #[error("the file is larger than {0} bytes")]
    TooLarge(u64),
    /// The client's body broke off or was malformed.
    #[error("the upload body could not be read: {0}")]
    Body(String),
    /// The key holds an object already (writes are once per key); nothing was kept.
    #[error("the object exists already")]
    Exists,
    /// The backend failed.
    #[error(transparent)]
    Storage(#[from] anyhow::Error),
}

/// How a download link presents the file.
#[derive(Debug, Clone)]
pub struct Presentation<'a> {
    /// The user's file name, for `Content-Disposition`.
    pub name: &'a str,
    pub content_type: &'a str,
}

/// The storage backend of this deployment.
pub enum Storage {
    S3(s3::S3Storage),
    Fs(fs::FsStorage),
}

impl Storage {
    /// The backend `config` names. S3 needs the shared AWS configuration; fs keeps its
    /// link-signing key in the database (`platform.secrets`), loaded on first use.
    pub fn new(
        config: &Config,
        aws: Option<&aws_config::SdkConfig>,
        db: sqlx::PgPool,
    ) -> anyhow::Result<Self> {
        match config.storage.backend {
            StorageBackend::S3 => {
                let aws =
                    aws.ok_or_else(|| anyhow::anyhow!("S3 storage needs AWS configuration"))?;
                let bucket = config
                    .storage
                    .s3_bucket_name
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("S3 storage needs S3_BUCKET_NAME"))?;
                Ok(Self::S3(s3::S3Storage::new(
                    aws,
                    bucket,
                    config.aws.endpoint_url.is_some(),
                )))
            }
            StorageBackend::Fs => Ok(Self::Fs(fs::FsStorage::new(
                config.storage.dir.clone().into(),
                db,
            ))),
        }
    }

    /// `s3` or `fs`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::S3(_) => "s3",
            Self::Fs(_) => "fs",
        }
    }

    /// Development convenience at start: creates the bucket (S3) or the directory (fs).
    /// A failure is logged, not fatal: readiness reports storage as down meanwhile.
    pub async fn prepare(&self) {
        let result = match self {
            Self::S3(s) => s.create_bucket().await,
            Self::Fs(s) => s.ping().await,
        };
        if let Err(e) = result {
            tracing::warn!(backend = self.kind(), error = %format!("{e:#}"), "could not prepare file storage");
        }
    }

    /// Whether the backend answers (readiness).
    pub async fn ping(&self) -> anyhow::Result<()> {
        match self {
            Self::S3(s) => s.ping().await,
            Self::Fs(s) => s.ping().await,
        }
    }

    /// Streams `body` into the object `key`, computing its size and SHA-256 on the way.
    /// More than `limit` bytes is [`PutError::TooLarge`], and nothing is kept; on any
    /// error nothing is kept either (S3 multipart uploads are aborted, temporary files
    /// removed).
    pub async fn put_stream<S, E>(
        &self,
        key: &str,
        content_type: &str,
        body: S,
        limit: u64,
    ) -> Result<Stored, PutError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let body = body.map(|chunk| chunk.map_err(|e| e.to_string()));
        match self {
            Self::S3(s) => s.put_stream(key, content_type, body, limit).await,
            Self::Fs(s) => s.put_stream(key, body, limit).await,
        }
    }

    /// Stores `bytes` whole (small objects such as reports).
    pub async fn put_bytes(
        &self,
        key: &str,
        content_type: &str,
        bytes: Bytes,
    ) -> Result<Stored, PutError> {
        let body = futures::stream::iter([Ok::<_, std::convert::Infallible>(bytes)]);
        self.put_stream(key, content_type, body, u64::MAX).await
    }

    /// The object's size, or `None` when there is no such object.
    pub async fn size(&self, key: &str) -> anyhow::Result<Option<u64>> {
        match self {
            Self::S3(s) => s.size(key).await,
            Self::Fs(s) => s.size(key).await,
        }
    }

    /// Reads the object through once: its size and SHA-256.
    pub async fn digest(&self, key: &str) -> anyhow::Result<Stored> {
        match self {
            Self::S3(s) => s.digest(key).await,
            Self::Fs(s) => s.digest(key).await,
        }
    }

    /// Moves the object `from` to `to`; `false` when there is no `from`.
    pub async fn rename(&self, from: &str, to: &str) -> anyhow::Result<bool> {
        match self {
            Self::S3(s) => s.rename(from, to).await,
            Self::Fs(s) => s.rename(from, to).await,
        }
    }

    /// Up to 1,000 keys under `prefix` (a tenant's uploads in flight).
    pub async fn list(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        anyhow::ensure!(
            prefix.starts_with("tenants/") && prefix.ends_with('/'),
            "refusing to list outside a tenant's prefix"
        );
        match self {
            Self::S3(s) => s.list(prefix).await,
            Self::Fs(s) => s.list(prefix).await,
        }
    }

    /// Deletes the object; a missing one is not an error.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self {
            Self::S3(s) => s.delete(key).await,
            Self::Fs(s) => s.delete(key).await,
        }
    }

    /// Deletes every object under `prefix` (`tenants/<id>/`); returns how many.
    pub async fn delete_prefix(&self, prefix: &str) -> anyhow::Result<u64> {
        anyhow::ensure!(
            prefix.starts_with("tenants/") && prefix.ends_with('/'),
            "refusing to delete outside a tenant's prefix"
        );
        match self {
            Self::S3(s) => s.delete_prefix(prefix).await,
            Self::Fs(s) => s.delete_prefix(prefix).await,
        }
    }

    /// A URL that downloads the object for `ttl`, presented as `how`. S3 gives an
    /// absolute presigned URL; fs a path on this service (`/files/…`).
    pub async fn download_url(
        &self,
        key: &str,
        ttl: Duration,
        how: &Presentation<'_>,
    ) -> anyhow::Result<String> {
        match self {
            Self::S3(s) => s.presign_get(key, ttl, how).await,
            Self::Fs(s) => s.sign_get(key, ttl, how).await,
        }
    }

    /// A URL that takes one `PUT` of the object's contents for `ttl`. The fs backend
    /// refuses bodies over `max_size`; S3 does not check, so completing the upload does.
    pub async fn upload_url(
        &self,
        key: &str,
        ttl: Duration,
        max_size: u64,
    ) -> anyhow::Result<String> {
        match self {
            Self::S3(s) => s.presign_put(key, ttl).await,
            Self::Fs(s) => s.sign_put(key, ttl, max_size).await,
        }
    }
}

/// Counts and hashes an upload as it streams, refusing more than `limit` bytes.
pub(crate) struct Tally {
    hasher: Sha256,
    size: u64,
    limit: u64,
}

impl Tally {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            hasher: Sha256::new(),
            size: 0,
            limit,
        }
    }

    pub(crate) fn add(&mut self, chunk: &[u8]) -> Result<(), PutError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(PutError::TooLarge(self.limit));
        }
        self.hasher.update(chunk);
        Ok(())
    }

    pub(crate) fn finish(self) -> Stored {
        Stored {
            size: self.size,
            sha256: hex(&self.hasher.finalize()),
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `Content-Disposition: attachment` for a user's file name: an ASCII fallback in a
/// quoted string (quotes, backslashes and control characters replaced) and the exact
/// name in RFC 5987 `filename*`.
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_quote_the_name_safely() {
        assert_eq!(
            content_disposition("report.csv"),
            "attachment; filename=\"report.csv\"; filename*=UTF-8''report.csv"
        );
        let d = content_disposition("a\"b\\c\r\nd é.txt");
        assert_eq!(
            d,
            "attachment; filename=\"a_b_c__d _.txt\"; filename*=UTF-8''a%22b%5Cc%0D%0Ad%20%C3%A9.txt"
        );
    }

    #[test]
    fn upload_keys_map_to_their_final_key() {
        let (t, f) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(final_key_of(&upload_key(t, f)), Some(object_key(t, f)));
        assert_eq!(final_key_of(&object_key(t, f)), None);
        assert!(upload_key(t, f).starts_with(&tenant_prefix(t)));
    }

    #[test]
    fn the_tally_refuses_past_the_limit() {
        let mut t = Tally::new(4);
        assert!(t.add(b"abcd").is_ok());
        assert!(matches!(t.add(b"e"), Err(PutError::TooLarge(4))));
        let mut t = Tally::new(10);
        t.add(b"abc").expect("within");
        assert_eq!(
            t.finish().sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
