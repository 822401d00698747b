//! Where file contents live: an S3 bucket or a directory.

use std::str::FromStr;

use super::{ConfigError, vars::Vars};

/// Where file contents live (`STORAGE_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageBackend {
    /// An S3 bucket (`S3_BUCKET_NAME`), or an S3-compatible server at `AWS_ENDPOINT_URL`.
    S3,
    /// Files under `STORAGE_DIR`, downloaded through signed links the service serves.
    Fs,
}

impl FromStr for StorageBackend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "s3" => Ok(Self::S3),
            "fs" => Ok(Self::Fs),
            other => Err(format!("expected s3 or fs, got {other:?}")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// `STORAGE_BACKEND`: `s3` when `S3_BUCKET_NAME` is set, else `fs`.
    pub backend: StorageBackend,
    /// Root of the `fs` storage backend (`STORAGE_DIR`).
    pub dir: String,
    /// Bucket of the `s3` backend (`S3_BUCKET_NAME`).
    pub s3_bucket_name: Option<String>,
}

impl StorageConfig {
    pub(super) fn from_vars(
        vars: &Vars<'_, impl Fn(&str) -> Option<String>>,
    ) -> Result<Self, ConfigError> {
        let s3_bucket_name = vars.get("S3_BUCKET_NAME");
        let storage = Self {
            backend: vars.parse(
                "STORAGE_BACKEND",
                if s3_bucket_name.is_some() {
                    StorageBackend::S3
                } else {
                    StorageBackend::Fs
                },
            )?,
            dir: vars.string("STORAGE_DIR", "./data/files"),
            s3_bucket_name,
        };
        storage.validate()?;
        Ok(storage)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.backend == StorageBackend::S3 && self.s3_bucket_name.is_none() {
            return Err(ConfigError::invalid(
                "S3_BUCKET_NAME",
                "must be set when STORAGE_BACKEND is s3",
            ));
        }
        Ok(())
    }
}
