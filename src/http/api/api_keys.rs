//! `/api/v1/api-keys`: machine credentials of the tenant.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::{
    app::AppState,
    auth::granted::Granted,
    client_address::ClientInfo,
    error::{AppResult, FieldError, FieldErrors, Problem},
    http::{
        extract::{AppJson, AppPath, AppQuery},
        pagination::{PageParams, Paginated},
        validate,
    },
    rbac::needs,
    services::api_keys::{self, ApiKey, KeyAccess, manage},
};

/// The tenant's keys (never the keys themselves), newest first.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", params(PageParams),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "API keys", body = Paginated<ApiKey>)))]
pub async fn list(
    State(app): State<AppState>,
    principal: Granted<needs::ApiKeysRead>,
    AppQuery(params): AppQuery<PageParams>,
) -> AppResult<Json<Paginated<ApiKey>>> {
    let page = params.page()?;
    let rows = api_keys::list(&app.db, principal.tenant_id(), page.before, page.fetch()).await?;
    Ok(Json(Paginated::new(rows, page, |k| k.id)))
}

/// Exactly one of `role` and `permissions` must be given (the schema says so with
/// `oneOf`).
#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct CreateApiKey {
    /// 1 to 100 characters, not blank, no control characters.
    #[validate(
        length(min = 1, max = 100),
        custom(function = "validate::not_blank"),
        custom(function = "validate::no_control")
    )]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// A role whose permissions the key gets (give this or `permissions`, not both).
    #[validate(length(max = 100))]
    #[schema(max_length = 100, nullable = false)]
    #[serde(default, deserialize_with = "validate::present")]
    pub role: Option<String>,
    /// An explicit list of at most 100 permissions (`resource:action`, `resource:*`,
    /// `*`; see `GET /api/v1/permissions`), instead of `role`.
    #[validate(length(max = 100), custom(function = "validate::each_at_most::<100>"))]
    #[schema(schema_with = key_grants)]
    pub permissions: Option<Vec<String>>,
    /// When the key stops working; must be in the future.
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "validate::present")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A [`CreateApiKey`] parsed: its name, its access (a role or grants) and its end.
#[derive(Debug)]
pub struct NewKey {
    pub name: String,
    pub access: KeyAccess,
    pub expires_at: Option<DateTime<Utc>>,
}

impl TryFrom<CreateApiKey> for NewKey {
    type Error = FieldErrors;

    fn try_from(body: CreateApiKey) -> Result<Self, FieldErrors> {
        let mut errors = validate::rules(&body);
        let grants = body
            .permissions
            .as_deref()
            .map(|raw| errors.take(super::roles::parse_grants("permissions", raw)));
        let access = match (body.role, grants) {
            (Some(role), None) => Some(KeyAccess::Role(role)),
            (None, Some(grants)) => grants.map(KeyAccess::Permissions),
            _ => {
                errors.push(FieldError::new(
                    "role",
                    "give exactly one of role and permissions",
                ));
                None
            }
        };
        if body.expires_at.is_some_and(|at| at <= Utc::now()) {
            errors.push(FieldError::new("expires_at", "must be in the future"));
        }
        errors.finish(|| {
            Some(NewKey {
                name: body.name.trim().to_owned(),
                access: access?,
                expires_at: body.expires_at,
            })
        })
    }
}

fn key_grants() -> utoipa::openapi::schema::Array {
    super::roles::grant_list(100)
}

/// States in the OpenAPI document what the field attributes cannot: `CreateApiKey` takes
/// exactly one of `role` and `permissions` (`allOf` the derived object, an `anyOf` of the
/// two `required` lists and a `not` of both).
pub struct ExactlyOneKeyAccess;

impl ExactlyOneKeyAccess {
    /// Rewrites `CreateApiKey` in the document: the derived object, an `anyOf` of the two
    /// `required` lists (at least one) and a `not` of both (not both), so that linters need
    /// not prove `oneOf` branches exclusive.
    pub fn apply(doc: &mut serde_json::Value) {
        let Some(schema) = doc.pointer_mut("/components/schemas/CreateApiKey") else {
            return;
        };
        let derived = schema.take();
        *schema = serde_json::json!({
            "allOf": [
                derived,
                {"anyOf": [{"required": ["role"]}, {"required": ["permissions"]}]},
                {"not": {
                    "properties": {"role": {}, "permissions": {}},
                    "required": ["role", "permissions"],
                }},
            ],
            "description": "Give exactly one of `role` and `permissions`.",
        });
    }
}

/// A key as created or rotated: the only time its plaintext is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The key; store it now, it is not shown again.
    pub key: String,
}

/// Create a key; its permissions cannot exceed the caller's.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateApiKey,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created (the key is shown once)", body = CreatedApiKey),
        (status = 403, description = "Permissions beyond the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields or unknown permissions", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(app): State<AppState>,
    principal: Granted<needs::ApiKeysManage>,
    client: ClientInfo,
    AppJson(body): AppJson<CreateApiKey>,
) -> AppResult<(StatusCode, Json<CreatedApiKey>)> {
    let new = NewKey::try_from(body)?;
    let (api_key, key) = manage::create(
        app.config.api_key_env(),
        &principal,
        &client,
        &new.name,
        new.access,
        new.expires_at,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(CreatedApiKey { api_key, key })))
}

/// Revoke a key: it stops working at once on this replica, within 30 s everywhere.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "The key holds permissions the caller lacks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke(
    State(app): State<AppState>,
    principal: Granted<needs::ApiKeysManage>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<StatusCode> {
    manage::revoke(&app.invalidations, &principal, &client, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace a key's secret: the old key stops working, the new one is shown once.
#[utoipa::path(post, path = "/api/v1/api-keys/{id}/rotate", tag = "api-keys", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Rotated (the new key is shown once)", body = CreatedApiKey),
        (status = 403, description = "The key holds permissions the caller lacks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such live key in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rotate(
    State(app): State<AppState>,
    principal: Granted<needs::ApiKeysManage>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<Json<CreatedApiKey>> {
    let (api_key, key) = manage::rotate(
        &app.invalidations,
        app.config.api_key_env(),
        &principal,
        &client,
        id,
    )
    .await?;
    Ok(Json(CreatedApiKey { api_key, key }))
}
