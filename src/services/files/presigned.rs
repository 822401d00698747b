//! Presigned uploads: a pending file and a URL to `PUT` it to, then `complete`, which
//! moves the object to the file's key and verifies it there.

use super::*;
use crate::jobs::JobQueue;

/// A presigned upload: the pending file, where to `PUT` its contents, and until when.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingUpload {
    pub file: FileMeta,
    /// `PUT` the contents here (S3: an absolute presigned URL; fs: a path on this
    /// service), then `POST /api/v1/files/{id}/complete`.
    pub upload_url: String,
    pub method: &'static str,
    pub expires_at: DateTime<Utc>,
}

/// Creates a pending file and a URL to upload it to (at its upload key). A declared size
/// over the plan's limit is 413 `PAYLOAD_TOO_LARGE`; past the storage quota (the declared
/// size is reserved until `complete` or the cleanup) 413 `STORAGE_QUOTA_EXCEEDED`. A
/// `files.cleanup` job, due when the URL has expired, removes the
/// upload if it is never completed.
pub async fn create_upload(
    storage: &Storage,
    queue: &JobQueue,
    p: &Granted<needs::FilesUpload>,
    name: &str,
    content_type: &str,
    size: u64,
) -> AppResult<PendingUpload> {
    let limit = size_limit(p.tenant.plan);
    if size > limit {
        return Err(too_large(limit));
    }
    let id = Uuid::now_v7();
    let key = storage::object_key(p.tenant_id(), id);
    let upload_url = storage
        .upload_url(
            &storage::upload_key(p.tenant_id(), id),
            UPLOAD_URL_TTL,
            size,
        )
        .await
        .map_err(storage_down)?;
    let mut tx = p.scope.begin().await?;
    reserve(&mut tx, p, None, size).await?;
    let sql = tx.sql(
        "insert into {schema}.files (id, object_key, name, content_type, size, uploaded_by, status)
         values ($1, $2, $3, $4, $5, $6, 'pending')
         returning id, name, content_type, size, checksum_sha256, status, uploaded_by, created_at",
    );
    let file: FileMeta = sqlx::query_as(sql)
        .bind(id)
        .bind(&key)
        .bind(name)
        .bind(content_type)
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .bind(p.actor.id())
        .fetch_one(tx.conn())
        .await?;
    let cleanup = NewJob {
        job_type: JobType::FilesCleanup,
        payload: serde_json::json!({}),
        max_attempts: jobs::DEFAULT_MAX_ATTEMPTS,
    };
    let delay = PENDING_LIFETIME + Duration::from_secs(60);
    let job = jobs::insert_delayed(&mut tx, &cleanup, None, delay).await?;
    tx.commit().await?;
    let cleanup = JobMessage::row(p.tenant_id(), job.id, Lane::Platform);
    jobs::enqueue_after(queue, cleanup, delay).await;
    Ok(PendingUpload {
        expires_at: file.created_at
            + chrono::Duration::from_std(UPLOAD_URL_TTL).unwrap_or_default(),
        file,
        upload_url,
        method: "PUT",
    })
}

/// Verifies a presigned upload and makes the file available: its contents move from the
/// upload key to the file's key (the upload link then changes nothing served), and are
/// read there — the size and SHA-256 recorded and metered are those of the object
/// served. Larger than declared or than the plan allows is 413 `PAYLOAD_TOO_LARGE`, past
/// the storage quota 413 `STORAGE_QUOTA_EXCEEDED`; refused contents are deleted and the
/// upload stays pending. Completing twice is 409.
pub async fn complete(
    storage: &Storage,
    meter: &Meter,
    p: &Granted<needs::FilesUpload>,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<FileMeta> {
    let (key, file) = object_key(&p.scope, id).await?;
    if file.status != "pending" {
        return Err(AppError::conflict(
            ErrorCode::Conflict,
            "the upload is already complete",
        ));
    }
    let upload = storage::upload_key(p.tenant_id(), id);
    let moved = storage.rename(&upload, &key).await.map_err(storage_down)?;
    // Not moved: nothing uploaded, or moved by an earlier `complete` that did not finish
    // (or an upload made before upload keys existed): then the object is at its key.
    if !moved && storage.size(&key).await.map_err(storage_down)?.is_none() {
        return Err(AppError::conflict(
            ErrorCode::Conflict,
            "nothing has been uploaded to the upload URL yet",
        ));
    }
    let stored = storage.digest(&key).await.map_err(storage_down)?;
    let declared = u64::try_from(file.size).unwrap_or_default();
    let limit = size_limit(p.tenant.plan).min(declared);
    let refuse = |e: AppError| async {
        // Refused contents do not stay; the URL may be used again while it lasts.
        storage.delete(&key).await.map_err(storage_down)?;
        Err(e)
    };
    if stored.size > limit {
        let size = stored.size;
        return refuse(AppError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the uploaded object has {size} bytes, more than the {limit} declared or allowed"
            ),
        ))
        .await;
    }
    let mut tx = p.scope.begin().await?;
    if let Err(e) = reserve(&mut tx, p, Some(id), stored.size).await {
        drop(tx);
        return refuse(e).await;
    }
    let sql = tx.sql(
        "update {schema}.files set status = 'available', size = $2, checksum_sha256 = $3
         where id = $1 and status = 'pending'
         returning id, name, content_type, size, checksum_sha256, status, uploaded_by, created_at",
    );
    let done: Option<FileMeta> = sqlx::query_as(sql)
        .bind(id)
        .bind(i64::try_from(stored.size).unwrap_or(i64::MAX))
        .bind(&stored.sha256)
        .fetch_optional(tx.conn())
        .await?;
    let Some(done) = done else {
        // Completed (or removed) meanwhile by a concurrent request.
        drop(tx);
        get(&p.scope, id).await?;
        return Err(AppError::conflict(
            ErrorCode::Conflict,
            "the upload is already complete",
        ));
    };
    audit::record_in(&mut tx, uploaded_entry(p, client, id, &stored)).await?;
    webhooks::emit(&mut tx, EventType::FileUploaded, &done).await?;
    tx.commit().await?;
    record_stored(meter, p.tenant_id(), stored.size);
    Ok(done)
}
