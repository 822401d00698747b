//! Files: the tenant's `files` rows and their objects in [`crate::storage`].
//!
//! Two ways in: a streamed upload through the service ([`upload`]), or a presigned
//! upload ([`create_upload`], the client `PUT`s to the URL, then [`complete`]). A file is
//! `pending` until its contents are verified, then `available`; only available files are
//! downloadable (409 before). Uploads left pending past their URL's expiry are removed by
//! the `files.cleanup` job ([`cleanup_expired`]).
//!
//! A presigned upload lands at its upload key ([`storage::upload_key`]); `complete` moves
//! it to the file's key and reads it there, so the size and checksum recorded are those
//! of the object served, and the upload link, replayed later, writes to nowhere that is
//! served (the cleanup sweeps such leftovers). Each tenant's files (stored, plus the
//! declared size of uploads in flight) fit a storage quota by plan ([`storage_quota`]).

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::Stream;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::{granted::Granted, principal::TenantPrincipal},
    client_address::ClientInfo,
    db::TenantScope,
    error::{AppError, AppResult, ErrorCode, FieldError},
    jobs::{JobMessage, JobType, Lane},
    rbac::needs,
    services::webhooks::{self, EventType},
    services::{
        audit::{self, AuditEntry},
        jobs::{self, NewJob},
        metering::{Meter, Metric},
    },
    storage::{self, Presentation, PutError, Storage, Stored},
};

mod presigned;
mod storage_quota;

pub use presigned::{PendingUpload, complete, create_upload};
use storage_quota::{quota_exceeded, quota_left, reserve};
pub use storage_quota::{size_limit, storage_quota};

/// How long a presigned upload URL works.
pub const UPLOAD_URL_TTL: Duration = Duration::from_secs(15 * 60);
/// A pending upload is removed this long after it was created: the URL's lifetime plus
/// a grace period for a `complete` sent just after a late `PUT`.
pub const PENDING_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Download links last this long unless `expires_in` says otherwise.
pub const DEFAULT_LINK_TTL: Duration = Duration::from_secs(300);
/// The longest download link.
pub const MAX_LINK_TTL_SECS: u64 = 3600;
/// The largest file of any plan (premium), for the upload route's body limit.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024 * 1024;

/// A stored file as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct FileMeta {
    pub id: Uuid,
    /// The user's file name (metadata only).
    pub name: String,
    pub content_type: String,
    /// Bytes: the size of the object stored (read from storage, never the client's
    /// figure); for a `pending` upload, the declared size.
    pub size: i64,
    /// Lowercase hex SHA-256 of the contents; null while `pending`.
    pub checksum_sha256: Option<String>,
    /// `pending` (presigned upload not completed) or `available`.
    pub status: String,
    pub uploaded_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "select id, name, content_type, size, checksum_sha256, status, uploaded_by,
    created_at from {schema}.files";

/// A file name: 1 to 255 characters, no control characters.
pub fn check_name(field: &str, name: &str) -> Result<(), FieldError> {
    if name.trim().is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must be 1 to 255 characters without control characters",
        ));
    }
    Ok(())
}

/// A media type such as `text/csv` (printable ASCII with a `/`, at most 255 bytes).
pub fn check_content_type(field: &str, value: &str) -> Result<(), FieldError> {
    let ok = value.len() <= 255
        && value
            .split_once('/')
            .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty())
        && value.bytes().all(|b| (0x20..0x7f).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            "must be a media type such as text/csv",
        ))
    }
}

fn too_large(limit: u64) -> AppError {
    AppError::new(
        ErrorCode::PayloadTooLarge,
        format!("the file is larger than the plan's limit of {limit} bytes"),
    )
}

fn storage_down(e: anyhow::Error) -> AppError {
    tracing::error!(error = %format!("{e:#}"), "file storage failed");
    AppError::unavailable("file storage is unavailable; try again later")
}

fn put_error(e: PutError) -> AppError {
    match e {
        PutError::TooLarge(limit) => too_large(limit),
        PutError::Body(detail) => {
            AppError::malformed(format!("the upload could not be read: {detail}"))
        }
        PutError::Exists => AppError::conflict(ErrorCode::Conflict, "the object exists already"),
        PutError::Storage(e) => storage_down(e),
    }
}

fn record_stored(meter: &Meter, tenant_id: Uuid, size: u64) {
    meter.record(tenant_id, Metric::FilesUploaded, 1);
    meter.record(
        tenant_id,
        Metric::StorageBytes,
        i64::try_from(size).unwrap_or(i64::MAX),
    );
}

/// Inserts an available file row (and its audit entry, when a client asked for it); with
/// `quota_of`, only if it fits that principal's storage quota.
#[expect(clippy::too_many_arguments, reason = "one row's fields")]
async fn insert_available(
    scope: &TenantScope,
    id: Uuid,
    name: &str,
    content_type: &str,
    stored: &Stored,
    uploaded_by: Option<Uuid>,
    audit: Option<AuditEntry>,
    quota_of: Option<&TenantPrincipal>,
) -> AppResult<FileMeta> {
    let mut tx = scope.begin().await?;
    if let Some(p) = quota_of {
        reserve(&mut tx, p, None, stored.size).await?;
    }
    let sql = tx.sql(
        "insert into {schema}.files
            (id, object_key, name, content_type, size, checksum_sha256, uploaded_by, status)
         values ($1, $2, $3, $4, $5, $6, $7, 'available')
         returning id, name, content_type, size, checksum_sha256, status, uploaded_by, created_at",
    );
    let file: FileMeta = sqlx::query_as(sql)
        .bind(id)
        .bind(storage::object_key(scope.tenant_id(), id))
        .bind(name)
        .bind(content_type)
        .bind(i64::try_from(stored.size).unwrap_or(i64::MAX))
        .bind(&stored.sha256)
        .bind(uploaded_by)
        .fetch_one(tx.conn())
        .await?;
    if let Some(entry) = audit {
        audit::record_in(&mut tx, entry).await?;
    }
    webhooks::emit(&mut tx, EventType::FileUploaded, &file).await?;
    tx.commit().await?;
    Ok(file)
}

fn uploaded_entry(
    p: &TenantPrincipal,
    client: &ClientInfo,
    file: Uuid,
    stored: &Stored,
) -> AuditEntry {
    AuditEntry::new(Some(p.actor), "file.uploaded", client)
        .target("file", file)
        .metadata(serde_json::json!({"size": stored.size, "checksum_sha256": stored.sha256}))
}

/// Streams `body` to storage as a new file. Over the plan's limit is 413
/// `PAYLOAD_TOO_LARGE`, past the storage quota 413 `STORAGE_QUOTA_EXCEEDED` (checked
/// while streaming and again, under the tenant's lock, when the row is written); either
/// way nothing is kept.
pub async fn upload<S, E>(
    storage: &Storage,
    meter: &Meter,
    p: &Granted<needs::FilesUpload>,
    client: &ClientInfo,
    name: &str,
    content_type: &str,
    body: S,
) -> AppResult<FileMeta>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    let id = Uuid::now_v7();
    let key = storage::object_key(p.tenant_id(), id);
    let plan_limit = size_limit(p.tenant.plan);
    let left = quota_left(p).await?;
    let limit = plan_limit.min(left);
    let stored = storage
        .put_stream(&key, content_type, body, limit)
        .await
        .map_err(|e| match e {
            PutError::TooLarge(_) if left < plan_limit => {
                let quota = storage_quota(p.tenant.plan);
                quota_exceeded(quota, quota - left)
            }
            e => put_error(e),
        })?;
    let entry = uploaded_entry(p, client, id, &stored);
    let inserted = insert_available(
        &p.scope,
        id,
        name,
        content_type,
        &stored,
        Some(p.actor.id()),
        Some(entry),
        Some(p),
    )
    .await;
    match inserted {
        Ok(file) => {
            record_stored(meter, p.tenant_id(), stored.size);
            Ok(file)
        }
        Err(e) => {
            // No row, no object.
            let _ = storage.delete(&key).await;
            Err(e)
        }
    }
}

/// Stores contents a job produced (a usage report) as an available file.
pub async fn store_generated(
    storage: &Storage,
    meter: &Meter,
    scope: &TenantScope,
    name: &str,
    content_type: &str,
    contents: Bytes,
    created_by: Option<Uuid>,
) -> anyhow::Result<FileMeta> {
    let id = Uuid::now_v7();
    let key = storage::object_key(scope.tenant_id(), id);
    let stored = storage
        .put_bytes(&key, content_type, contents)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let inserted = insert_available(
        scope,
        id,
        name,
        content_type,
        &stored,
        created_by,
        None,
        None,
    )
    .await;
    match inserted {
        Ok(file) => {
            record_stored(meter, scope.tenant_id(), stored.size);
            Ok(file)
        }
        Err(e) => {
            let _ = storage.delete(&key).await;
            Err(anyhow::anyhow!("{e}"))
        }
    }
}

async fn object_key(scope: &TenantScope, id: Uuid) -> AppResult<(String, FileMeta)> {
    let row: Option<(String,)> =
        sqlx::query_as(scope.sql("select object_key from {schema}.files where id = $1"))
            .bind(id)
            .fetch_optional(scope.db())
            .await?;
    let (key,) = row.ok_or_else(AppError::not_found)?;
    Ok((key, get(scope, id).await?))
}

pub async fn get(scope: &TenantScope, id: Uuid) -> AppResult<FileMeta> {
    sqlx::query_as(scope.sql_parts(&[COLUMNS, " where id = $1"]))
        .bind(id)
        .fetch_optional(scope.db())
        .await?
        .ok_or_else(AppError::not_found)
}

/// Newest first, keyset-paginated.
pub async fn list(
    scope: &TenantScope,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<FileMeta>> {
    sqlx::query_as(scope.sql_parts(&[
        COLUMNS,
        " where ($1::uuid is null or id < $1) order by id desc limit $2",
    ]))
    .bind(before)
    .bind(limit)
    .fetch_all(scope.db())
    .await
}

/// A link that downloads the file for `ttl`. A pending upload is 409.
pub async fn download_url(
    storage: &Storage,
    scope: &TenantScope,
    id: Uuid,
    ttl: Duration,
) -> AppResult<String> {
    let (key, file) = object_key(scope, id).await?;
    if file.status != "available" {
        return Err(AppError::conflict(
            ErrorCode::Conflict,
            "the upload is not complete yet",
        ));
    }
    let how = Presentation {
        name: &file.name,
        content_type: &file.content_type,
    };
    storage
        .download_url(&key, ttl, &how)
        .await
        .map_err(storage_down)
}

/// Deletes the object, then the row (with its audit entry). `storage_bytes` is metered
/// as a change: a deletion records the negative size.
pub async fn delete(
    storage: &Storage,
    meter: &Meter,
    p: &Granted<needs::FilesDelete>,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<()> {
    let (key, file) = object_key(&p.scope, id).await?;
    storage.delete(&key).await.map_err(storage_down)?;
    if file.status == "pending" {
        let upload = storage::upload_key(p.tenant_id(), id);
        storage.delete(&upload).await.map_err(storage_down)?;
    }
    let mut tx = p.scope.begin().await?;
    let sql = tx.sql("delete from {schema}.files where id = $1 returning status, size");
    let deleted: Option<(String, i64)> = sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    let Some((status, size)) = deleted else {
        return Err(AppError::not_found());
    };
    let entry = AuditEntry::new(Some(p.actor), "file.deleted", client)
        .target("file", id)
        .metadata(serde_json::json!({"name": file.name, "size": size}));
    audit::record_in(&mut tx, entry).await?;
    let data = serde_json::json!({"id": id, "name": file.name, "content_type": file.content_type,
        "size": size, "checksum_sha256": file.checksum_sha256});
    webhooks::emit(&mut tx, EventType::FileDeleted, data).await?;
    tx.commit().await?;
    if status == "available" {
        meter.record(p.tenant_id(), Metric::StorageBytes, -size);
    }
    Ok(())
}

/// Removes this tenant's uploads left `pending` past [`PENDING_LIFETIME`]: the row
/// first (so a concurrent `complete` finds nothing), then the object if one was put;
/// then sweeps the upload keys whose link has expired (a link replayed after `complete`
/// leaves its contents there, served by nothing: the file id, a UUIDv7, dates them).
pub async fn cleanup_expired(storage: &Storage, scope: &TenantScope) -> anyhow::Result<u64> {
    let expired: Vec<(Uuid, String)> = sqlx::query_as(scope.sql(
        "delete from {schema}.files
         where id in (select id from {schema}.files
                      where status = 'pending' and created_at < now() - $1 * interval '1 second'
                      order by created_at limit 1000)
           and status = 'pending'
         returning id, object_key",
    ))
    .bind(i64::try_from(PENDING_LIFETIME.as_secs()).unwrap_or(i64::MAX))
    .fetch_all(scope.db())
    .await?;
    for (id, key) in &expired {
        let upload = storage::upload_key(scope.tenant_id(), *id);
        for key in [key, &upload] {
            if let Err(e) = storage.delete(key).await {
                tracing::warn!(file_id = %id, error = %format!("{e:#}"), "could not delete an expired upload's object");
            }
        }
    }
    let cutoff = Utc::now() - chrono::Duration::from_std(PENDING_LIFETIME).unwrap_or_default();
    for key in storage
        .list(&storage::uploads_prefix(scope.tenant_id()))
        .await?
    {
        let created = key
            .rsplit('/')
            .next()
            .and_then(|id| id.parse::<Uuid>().ok())
            .and_then(|id| id.get_timestamp())
            .and_then(|ts| {
                let (secs, nanos) = ts.to_unix();
                DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)
            });
        if created.is_none_or(|created| created < cutoff) {
            storage.delete(&key).await?;
        }
    }
    Ok(expired.len() as u64)
}
