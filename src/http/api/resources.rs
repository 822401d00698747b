//! `/api/v1/resources`: the tenant's own data, with versions, ETags and `If-Match`.

use axum::{
    Json,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::{
    auth::granted::Granted,
    error::{AppError, AppResult, ErrorCode, Problem},
    http::{
        extract::{AppPath, AppQuery},
        pagination::{PageParams, Paginated},
        validate::{self, ValidJson},
    },
    rbac::needs,
    services::resources::{self, MAX_DATA_BYTES, Resource},
};

/// A resource with its `ETag`.
fn tagged(status: StatusCode, resource: Resource) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", resource.version))
        .expect("a number is a valid header value");
    (status, [(header::ETAG, etag)], Json(resource)).into_response()
}

/// The version an `If-Match` header asks for: `None` without the header or with `*`;
/// a tag that is not one of ours can never match (412).
fn if_match(headers: &HeaderMap) -> AppResult<Option<i32>> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or_default().trim();
    if value == "*" {
        return Ok(None);
    }
    value
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| {
            AppError::new(
                ErrorCode::PreconditionFailed,
                "If-Match names no version of this resource",
            )
        })
}

/// The tenant's resources, newest first. A page holds at most `limit` resources and
/// 1 MiB of `data` (at least one resource): follow `next_cursor` for the rest.
#[utoipa::path(get, path = "/api/v1/resources", tag = "resources", params(PageParams),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Resources", body = Paginated<Resource>),
        (status = 422, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    principal: Granted<needs::ResourcesRead>,
    AppQuery(params): AppQuery<PageParams>,
) -> AppResult<Json<Paginated<Resource>>> {
    let page = params.page()?;
    let (rows, limit) = resources::list(&principal.scope, page.before, page.limit).await?;
    Ok(Json(Paginated::new(
        rows,
        crate::http::pagination::Page { limit, ..page },
        |r| r.id,
    )))
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct CreateResource {
    /// 1 to 200 characters, not blank.
    #[validate(length(max = 200), custom(function = "validate::not_blank"))]
    #[schema(min_length = 1, max_length = 200, pattern = r".*\S.*")]
    pub name: String,
    /// A JSON object of at most 64 KiB (serialised), its numbers between -1e300 and 1e300;
    /// default `{}`.
    #[validate(custom(function = "validate::json_object_within::<MAX_DATA_BYTES>"))]
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

/// Create a resource.
#[utoipa::path(post, path = "/api/v1/resources", tag = "resources", request_body = CreateResource,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created (ETag header)", body = Resource),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    principal: Granted<needs::ResourcesCreate>,
    ValidJson(body): ValidJson<CreateResource>,
) -> AppResult<Response> {
    let data = body.data.unwrap_or_else(|| serde_json::json!({}));
    let resource = resources::create(&principal, &body.name, &data).await?;
    Ok(tagged(StatusCode::CREATED, resource))
}

/// One resource, with its `ETag`.
#[utoipa::path(get, path = "/api/v1/resources/{id}", tag = "resources", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The resource (ETag header)", body = Resource),
        (status = 404, description = "No such resource in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    principal: Granted<needs::ResourcesRead>,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<Response> {
    Ok(tagged(
        StatusCode::OK,
        resources::get(&principal.scope, id).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct ReplaceResource {
    /// 1 to 200 characters, not blank.
    #[validate(length(max = 200), custom(function = "validate::not_blank"))]
    #[schema(min_length = 1, max_length = 200, pattern = r".*\S.*")]
    pub name: String,
    /// A JSON object of at most 64 KiB (serialised), its numbers between -1e300 and 1e300.
    #[validate(custom(function = "validate::json_object_within::<MAX_DATA_BYTES>"))]
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// Replace a resource (`If-Match: "<version>"` to refuse a lost update with 412).
#[utoipa::path(put, path = "/api/v1/resources/{id}", tag = "resources",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "\"<version>\" from the ETag, or `*`", pattern = r#"^(\*|(W/)?"[0-9]{1,9}")$"#)),
    request_body = ReplaceResource, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Replaced (new ETag)", body = Resource),
        (status = 404, description = "No such resource in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn replace(
    principal: Granted<needs::ResourcesUpdate>,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
    ValidJson(body): ValidJson<ReplaceResource>,
) -> AppResult<Response> {
    let expected = if_match(&headers)?;
    let resource =
        resources::update(&principal, id, Some(&body.name), Some(&body.data), expected).await?;
    Ok(tagged(StatusCode::OK, resource))
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct PatchResource {
    /// 1 to 200 characters, not blank.
    #[validate(length(max = 200), custom(function = "validate::not_blank"))]
    #[schema(min_length = 1, max_length = 200, pattern = r".*\S.*")]
    pub name: Option<String>,
    /// Replaces `data` when given: a JSON object of at most 64 KiB (serialised), its
    /// numbers between -1e300 and 1e300.
    #[validate(custom(function = "validate::json_object_within::<MAX_DATA_BYTES>"))]
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

/// Change some fields of a resource (`If-Match` as for PUT).
#[utoipa::path(patch, path = "/api/v1/resources/{id}", tag = "resources",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "\"<version>\" from the ETag, or `*`", pattern = r#"^(\*|(W/)?"[0-9]{1,9}")$"#)),
    request_body = PatchResource, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Updated (new ETag)", body = Resource),
        (status = 404, description = "No such resource in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch(
    principal: Granted<needs::ResourcesUpdate>,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
    ValidJson(body): ValidJson<PatchResource>,
) -> AppResult<Response> {
    let expected = if_match(&headers)?;
    let resource = resources::update(
        &principal,
        id,
        body.name.as_deref(),
        body.data.as_ref(),
        expected,
    )
    .await?;
    Ok(tagged(StatusCode::OK, resource))
}

/// Delete a resource (`If-Match` as for PUT).
#[utoipa::path(delete, path = "/api/v1/resources/{id}", tag = "resources",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "\"<version>\" from the ETag, or `*`", pattern = r#"^(\*|(W/)?"[0-9]{1,9}")$"#)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such resource in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    principal: Granted<needs::ResourcesDelete>,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<StatusCode> {
    let expected = if_match(&headers)?;
    resources::delete(&principal, id, expected).await?;
    Ok(StatusCode::NO_CONTENT)
}
