//! `/api/v1/files`: upload (streamed multipart, or presigned + complete), list, read,
//! download links and deletion; and `/files/{key}`, the signed links of the `fs` backend.

use axum::{
    Json,
    body::Body,
    extract::{Multipart, Path, Query, State, multipart::MultipartRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    AppState,
    auth::granted::Granted,
    client_address::ClientInfo,
    error::{AppError, AppResult, ErrorCode, Problem},
    http::{
        extract::{AppJson, AppPath, AppQuery},
        pagination::{PageParams, Paginated},
    },
    rbac::needs,
    services::files::{self, FileMeta, PendingUpload},
    storage::{
        Storage, content_disposition,
        fs::{LinkError, LinkParams},
    },
};

/// What a multipart body may carry besides the file itself (boundaries, part headers,
/// small extra fields).
pub const MULTIPART_OVERHEAD: u64 = 64 * 1024;
/// The upload route's body limit: the largest plan's file plus multipart overhead. Each
/// request is held to its own plan's limit while it streams.
pub const UPLOAD_BODY_LIMIT: usize = (files::MAX_FILE_BYTES + MULTIPART_OVERHEAD) as usize;

/// The multipart form of an upload.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file's contents. Its part's `filename` becomes the file's name and its
    /// `Content-Type` the file's type (default `application/octet-stream`).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Upload a file (`multipart/form-data`, field `file`; other parts are ignored), streamed
/// to storage.
#[utoipa::path(post, path = "/api/v1/files", tag = "files",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Stored", body = FileMeta),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: larger than the plan allows (free 10 MiB, standard 100 MiB, premium 1 GiB); `STORAGE_QUOTA_EXCEEDED`: past the tenant's storage quota (free 1 GiB, standard 100 GiB, premium 10 TiB)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not multipart/form-data", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No `file` field, or a bad file name or type", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "File storage is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn upload(
    State(app): State<AppState>,
    principal: Granted<needs::FilesUpload>,
    client: ClientInfo,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> AppResult<(StatusCode, Json<FileMeta>)> {
    let limit = files::size_limit(principal.tenant.plan);
    let declared: Option<u64> = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > limit + MULTIPART_OVERHEAD) {
        return Err(AppError::new(
            ErrorCode::PayloadTooLarge,
            format!("the file is larger than the plan's limit of {limit} bytes"),
        ));
    }
    let mut multipart = multipart.map_err(|_| {
        AppError::new(
            ErrorCode::UnsupportedMediaType,
            "send multipart/form-data with a field named file",
        )
    })?;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| AppError::malformed(format!("malformed multipart body: {}", e.body_text())))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("file").to_owned();
        let content_type = field
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_owned();
        let mut errors = Vec::new();
        errors.extend(files::check_name("file.filename", &name).err());
        errors.extend(files::check_content_type("file.content_type", &content_type).err());
        if !errors.is_empty() {
            return Err(AppError::validation(errors));
        }
        let file = files::upload(
            &app.storage,
            &app.meter,
            &principal,
            &client,
            &name,
            &content_type,
            Box::pin(field),
        )
        .await?;
        return Ok((StatusCode::CREATED, Json(file)));
    }
    Err(AppError::invalid_field(
        "file",
        "is required: a multipart field named file",
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUpload {
    /// The file's name: 1 to 255 characters, not all blank, no control characters
    /// (metadata only).
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u001F\u007F-\u009F \xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// A media type such as `text/csv`: printable ASCII, a `/` with text either side.
    #[schema(max_length = 255, pattern = "^[ -.0-~]+/[ -~]+$")]
    pub content_type: String,
    /// Bytes the client will upload; at most the plan's limit.
    #[schema(minimum = 0)]
    pub size: u64,
}

/// Start a presigned upload: `PUT` the contents to `upload_url` within 15 minutes, then
/// complete it.
#[utoipa::path(post, path = "/api/v1/files/uploads", tag = "files", request_body = CreateUpload,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "A pending file and its upload URL", body = PendingUpload),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: `size` is larger than the plan allows; `STORAGE_QUOTA_EXCEEDED`: `size` does not fit the tenant's storage quota (uploads in flight count with their declared size)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "File storage is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_upload(
    State(app): State<AppState>,
    principal: Granted<needs::FilesUpload>,
    AppJson(body): AppJson<CreateUpload>,
) -> AppResult<(StatusCode, Json<PendingUpload>)> {
    let mut errors = Vec::new();
    errors.extend(files::check_name("name", &body.name).err());
    errors.extend(files::check_content_type("content_type", &body.content_type).err());
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let pending = files::create_upload(
        &app.storage,
        &app.jobs,
        &principal,
        &body.name,
        &body.content_type,
        body.size,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(pending)))
}

/// Complete a presigned upload: the object is checked (present, no larger than declared)
/// and its SHA-256 computed; the file becomes available.
#[utoipa::path(post, path = "/api/v1/files/{id}/complete", tag = "files", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Available", body = FileMeta),
        (status = 404, description = "No such file in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already complete, or nothing uploaded yet", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: the uploaded object (its real size, read from storage) is larger than declared or allowed; `STORAGE_QUOTA_EXCEEDED`: it does not fit the storage quota. Either way it is removed and the upload stays pending", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "File storage is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn complete(
    State(app): State<AppState>,
    principal: Granted<needs::FilesUpload>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<Json<FileMeta>> {
    Ok(Json(
        files::complete(&app.storage, &app.meter, &principal, &client, id).await?,
    ))
}

/// The tenant's files, newest first (`pending` uploads included).
#[utoipa::path(get, path = "/api/v1/files", tag = "files", params(PageParams),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Files", body = Paginated<FileMeta>),
        (status = 422, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    principal: Granted<needs::FilesRead>,
    AppQuery(params): AppQuery<PageParams>,
) -> AppResult<Json<Paginated<FileMeta>>> {
    let page = params.page()?;
    let rows = files::list(&principal.scope, page.before, page.fetch()).await?;
    Ok(Json(Paginated::new(rows, page, |f| f.id)))
}

/// One file's metadata.
#[utoipa::path(get, path = "/api/v1/files/{id}", tag = "files", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The file", body = FileMeta),
        (status = 404, description = "No such file in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    principal: Granted<needs::FilesRead>,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<Json<FileMeta>> {
    Ok(Json(files::get(&principal.scope, id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadParams {
    /// Seconds the link works: 1 to 3600; default 300.
    #[param(minimum = 1, maximum = 3600)]
    pub expires_in: Option<i64>,
    /// `false`: answer 200 with the link instead of redirecting to it (for a client that
    /// cannot follow a redirect with its credentials, such as a browser's `fetch`).
    pub redirect: Option<bool>,
}

/// A download link (`redirect=false`).
#[derive(Debug, Serialize, ToSchema)]
pub struct DownloadLink {
    /// Works without credentials until `expires_at`.
    pub url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Download a file: a redirect to a link that works for `expires_in` seconds (S3: a
/// presigned URL; fs: a signed link on this service), or the link itself with
/// `redirect=false`.
#[utoipa::path(get, path = "/api/v1/files/{id}/download", tag = "files",
    params(("id" = Uuid, Path), DownloadParams),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The download link (`redirect=false`)", body = DownloadLink),
        (status = 302, description = "Redirect to the download link (Location header)"),
        (status = 404, description = "No such file in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The upload is not complete", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`expires_in` is not 1 to 3600", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn download(
    State(app): State<AppState>,
    principal: Granted<needs::FilesRead>,
    AppPath(id): AppPath<Uuid>,
    AppQuery(params): AppQuery<DownloadParams>,
) -> AppResult<Response> {
    let ttl = match params.expires_in {
        None => files::DEFAULT_LINK_TTL,
        Some(s) if (1..=files::MAX_LINK_TTL_SECS as i64).contains(&s) => {
            std::time::Duration::from_secs(s.unsigned_abs())
        }
        Some(_) => {
            return Err(AppError::invalid_field(
                "expires_in",
                "must be between 1 and 3600 seconds",
            ));
        }
    };
    let url = files::download_url(&app.storage, &principal.scope, id, ttl).await?;
    if params.redirect == Some(false) {
        let expires_at = chrono::Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
        return Ok(Json(DownloadLink { url, expires_at }).into_response());
    }
    let location = HeaderValue::from_str(&url).map_err(AppError::internal)?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

/// Delete a file: its contents and its metadata.
#[utoipa::path(delete, path = "/api/v1/files/{id}", tag = "files", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such file in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "File storage is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    State(app): State<AppState>,
    principal: Granted<needs::FilesDelete>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<StatusCode> {
    files::delete(&app.storage, &app.meter, &principal, &client, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The `fs` backend's link check: 403 for a tampered, malformed or expired link.
async fn check_link(
    app: &AppState,
    method: &str,
    key: &str,
    params: Result<Query<LinkParams>, axum::extract::rejection::QueryRejection>,
) -> AppResult<LinkParams> {
    let Storage::Fs(fs) = &*app.storage else {
        return Err(AppError::not_found());
    };
    let Ok(Query(params)) = params else {
        return Err(AppError::forbidden("the link is not valid"));
    };
    match fs
        .verify(method, key, &params)
        .await
        .map_err(AppError::internal)?
    {
        Ok(()) => Ok(params),
        Err(LinkError::Expired) => Err(AppError::forbidden("the link has expired")),
        Err(LinkError::BadSignature) => {
            Err(AppError::forbidden("the link's signature is not valid"))
        }
    }
}

/// Download through a signed link (`fs` backend).
#[utoipa::path(get, path = "/files/{key}", tag = "files",
    params(("key" = String, Path, description = "The object key (`tenants/<tenant id>/<file id>`)"),
        ("expires" = i64, Query), ("name" = String, Query), ("type" = String, Query), ("signature" = String, Query)),
    responses(
        (status = 200, description = "The contents, with Content-Disposition", content_type = "application/octet-stream"),
        (status = 403, description = "Expired or tampered link", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object, or the storage backend is not the filesystem (these links exist only with it)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn link_get(
    State(app): State<AppState>,
    Path(key): Path<String>,
    params: Result<Query<LinkParams>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Response> {
    let params = check_link(&app, "GET", &key, params).await?;
    let Storage::Fs(fs) = &*app.storage else {
        return Err(AppError::not_found());
    };
    let (file, size) = fs
        .open(&key)
        .await
        .map_err(AppError::internal)?
        .ok_or_else(AppError::not_found)?;
    let content_type = params
        .content_type
        .as_deref()
        .and_then(|t| HeaderValue::from_str(t).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let disposition = HeaderValue::from_str(&content_disposition(
        params.name.as_deref().unwrap_or("file"),
    ))
    .map_err(AppError::internal)?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_LENGTH, HeaderValue::from(size)),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
        body,
    )
        .into_response())
}

/// Upload through a signed link (`fs` backend): the body is the file's contents, at most
/// the size declared when the link was made.
#[utoipa::path(put, path = "/files/{key}", tag = "files",
    params(("key" = String, Path, description = "The object key (`tenants/<tenant id>/<file id>`)"),
        ("expires" = i64, Query), ("size" = u64, Query), ("signature" = String, Query)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Stored; now complete the upload"),
        (status = 403, description = "Expired or tampered link", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not served: signed links of this form exist only with the filesystem storage backend (`STORAGE_BACKEND=fs`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The link was used already (uploads are write-once)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than declared", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn link_put(
    State(app): State<AppState>,
    Path(key): Path<String>,
    params: Result<Query<LinkParams>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> AppResult<StatusCode> {
    let params = check_link(&app, "PUT", &key, params).await?;
    let limit = params
        .size
        .ok_or_else(|| AppError::forbidden("the link is not valid"))?;
    // Write once: replaying the link after the upload (or after `complete` moved the
    // contents to the file's key) must not swap or add contents. This look is the cheap
    // early answer; the write itself is atomic (of two concurrent PUTs one gets 409).
    let storage = &app.storage;
    let used = async |key: &str| {
        storage
            .size(key)
            .await
            .map(|size| size.is_some())
            .map_err(AppError::internal)
    };
    let completed = match crate::storage::final_key_of(&key) {
        Some(done) => used(&done).await?,
        None => false,
    };
    if completed || used(&key).await? {
        return Err(AppError::new(
            ErrorCode::Conflict,
            "this link was used already; ask for a new upload",
        ));
    }
    app.storage
        .put_stream(
            &key,
            "application/octet-stream",
            body.into_data_stream(),
            limit,
        )
        .await
        .map_err(|e| match e {
            crate::storage::PutError::TooLarge(limit) => AppError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body is larger than the {limit} bytes declared"),
            ),
            crate::storage::PutError::Body(detail) => {
                AppError::malformed(format!("the upload could not be read: {detail}"))
            }
            crate::storage::PutError::Exists => AppError::new(
                ErrorCode::Conflict,
                "this link was used already; ask for a new upload",
            ),
            crate::storage::PutError::Storage(e) => AppError::internal(e),
        })?;
    Ok(StatusCode::OK)
}
