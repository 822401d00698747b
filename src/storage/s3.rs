//! The S3 backend (aws-sdk-s3).

use std::time::Duration;

use anyhow::Context;
use aws_sdk_s3::{
    Client,
    presigning::PresigningConfig,
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier},
};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

use super::{PART_SIZE, Presentation, PutError, Stored, Tally};

pub struct S3Storage {
    client: Client,
    bucket: String,
}

impl S3Storage {
    /// A client for `bucket`. With a custom endpoint (LocalStack, moto) addressing is
    /// path-style: such servers do not resolve `<bucket>.<host>` names.
    pub fn new(aws: &aws_config::SdkConfig, bucket: String, custom_endpoint: bool) -> Self {
        let config = aws_sdk_s3::config::Builder::from(aws)
            .force_path_style(custom_endpoint)
            .build();
        Self {
            client: Client::from_conf(config),
            bucket,
        }
    }

    pub async fn create_bucket(&self) -> anyhow::Result<()> {
        if self.ping().await.is_ok() {
            return Ok(());
        }
        self.client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .context("failed to create the bucket")?;
        tracing::info!(bucket = %self.bucket, "created the file bucket");
        Ok(())
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .context("the bucket does not answer")?;
        Ok(())
    }

    pub async fn put_stream(
        &self,
        key: &str,
        content_type: &str,
        mut body: impl Stream<Item = Result<Bytes, String>> + Send + Unpin,
        limit: u64,
    ) -> Result<Stored, PutError> {
        let mut tally = Tally::new(limit);
        let mut buffer = BytesMut::with_capacity(PART_SIZE);
        // Fill the first part: a body that ends before it is one PutObject.
        while buffer.len() < PART_SIZE {
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(PutError::Body)?;
                    tally.add(&chunk)?;
                    buffer.extend_from_slice(&chunk);
                }
                None => {
                    self.client
                        .put_object()
                        .bucket(&self.bucket)
                        .key(key)
                        .content_type(content_type)
                        .body(ByteStream::from(buffer.freeze()))
                        .send()
                        .await
                        .context("failed to store the object")?;
                    return Ok(tally.finish());
                }
            }
        }
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .context("failed to start a multipart upload")?;
        let upload_id = upload
            .upload_id()
            .context("S3 returned no upload id")?
            .to_owned();
        let result = self
            .upload_parts(key, &upload_id, buffer, &mut body, tally)
            .await;
        if result.is_err() {
            // Nothing half-uploaded stays behind (or keeps costing storage).
            if let Err(e) = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await
            {
                tracing::warn!(key, error = %e, "could not abort a multipart upload");
            }
        }
        result
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        mut buffer: BytesMut,
        body: &mut (impl Stream<Item = Result<Bytes, String>> + Send + Unpin),
        mut tally: Tally,
    ) -> Result<Stored, PutError> {
        let mut parts = Vec::new();
        loop {
            let last = loop {
                if buffer.len() >= PART_SIZE {
                    break false;
                }
                match body.next().await {
                    Some(chunk) => {
                        let chunk = chunk.map_err(PutError::Body)?;
                        tally.add(&chunk)?;
                        buffer.extend_from_slice(&chunk);
                    }
                    None => break true,
                }
            };
            if !buffer.is_empty() || parts.is_empty() {
                let number = i32::try_from(parts.len() + 1).context("too many parts")?;
                let part = buffer.split().freeze();
                let uploaded = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .body(ByteStream::from(part))
                    .send()
                    .await
                    .context("failed to upload a part")?;
                parts.push(
                    CompletedPart::builder()
                        .set_e_tag(uploaded.e_tag().map(str::to_owned))
                        .part_number(number)
                        .build(),
                );
            }
            if last {
                break;
            }
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .context("failed to complete the multipart upload")?;
        Ok(tally.finish())
    }

    pub async fn size(&self, key: &str) -> anyhow::Result<Option<u64>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => Ok(Some(head.content_length().unwrap_or_default().max(0) as u64)),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context("failed to look up the object")),
        }
    }

    pub async fn digest(&self, key: &str) -> anyhow::Result<Stored> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .context("failed to read the object")?;
        let mut body = object.body;
        let mut tally = Tally::new(u64::MAX);
        while let Some(chunk) = body.try_next().await.context("failed to read the object")? {
            tally.add(&chunk).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(tally.finish())
    }

    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .context("failed to delete the object")?;
        Ok(())
    }

    /// Copies `from` to `to`, then deletes `from`; `false` when there is no `from`.
    pub async fn rename(&self, from: &str, to: &str) -> anyhow::Result<bool> {
        let copied = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .copy_source(format!("{}/{from}", self.bucket))
            .key(to)
            .send()
            .await;
        match copied {
            Ok(_) => {}
            Err(e) if self.size(from).await?.is_none() => {
                tracing::debug!(error = %e, "nothing to move");
                return Ok(false);
            }
            Err(e) => return Err(anyhow::Error::new(e).context("failed to copy the object")),
        }
        self.delete(from).await?;
        Ok(true)
    }

    /// Up to 1,000 keys under `prefix`.
    pub async fn list(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .send()
            .await
            .context("failed to list objects")?;
        Ok(page
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect())
    }

    pub async fn delete_prefix(&self, prefix: &str) -> anyhow::Result<u64> {
        let mut deleted = 0;
        loop {
            // Deleting what a page listed, then listing again from the start, needs no
            // continuation token and ends when nothing is left.
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .send()
                .await
                .context("failed to list the tenant's objects")?;
            let objects = page
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()?;
            if objects.is_empty() {
                return Ok(deleted);
            }
            deleted += objects.len() as u64;
            self.client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(Delete::builder().set_objects(Some(objects)).build()?)
                .send()
                .await
                .context("failed to delete the tenant's objects")?;
        }
    }

    pub async fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
        how: &Presentation<'_>,
    ) -> anyhow::Result<String> {
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(super::content_disposition(how.name))
            .response_content_type(how.content_type)
            .presigned(PresigningConfig::expires_in(ttl)?)
            .await?;
        Ok(request.uri().to_owned())
    }

    pub async fn presign_put(&self, key: &str, ttl: Duration) -> anyhow::Result<String> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(PresigningConfig::expires_in(ttl)?)
            .await?;
        Ok(request.uri().to_owned())
    }
}
