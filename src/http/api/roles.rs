//! `/api/v1/permissions` and `/api/v1/roles`: the catalog and the tenant's roles.

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::{
    IntoParams, ToSchema,
    openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, Type},
};
use uuid::Uuid;
use validator::Validate;

use crate::{
    app::AppState,
    auth::granted::Granted,
    client_address::ClientInfo,
    error::{AppError, AppResult, FieldError, FieldErrors, Problem},
    http::{
        extract::{AppJson, AppPath, AppQuery},
        pagination::{PageParams, Paginated},
        validate,
    },
    rbac::{Grant, Permission, needs},
    services::roles::{self, Role, RoleName, manage},
};

/// One permission of the catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogEntry {
    /// `resource:action`.
    pub permission: &'static str,
    pub resource: &'static str,
    pub action: &'static str,
}

/// The permission catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct Catalog {
    pub items: Vec<CatalogEntry>,
    /// Besides these, grants may use `resource:*` (every action on a resource) and `*`.
    pub wildcards: Vec<&'static str>,
}

/// Every permission a role or API key can be granted.
#[utoipa::path(get, path = "/api/v1/permissions", tag = "roles",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The catalog", body = Catalog)))]
pub async fn catalog() -> Json<Catalog> {
    Json(Catalog {
        items: Permission::ALL
            .iter()
            .map(|p| CatalogEntry {
                permission: p.as_str(),
                resource: p.resource(),
                action: p.action(),
            })
            .collect(),
        wildcards: vec!["*", "resource:*"],
    })
}

/// The OpenAPI statement of one grant: the catalog's permissions, `resource:*` for each
/// of its resources, and `*` — exactly what [`Grant`]'s parser accepts.
pub(crate) fn grant_schema() -> Object {
    let mut values = vec!["*".to_owned()];
    for permission in Permission::ALL {
        let wildcard = format!("{}:*", permission.resource());
        if !values.contains(&wildcard) {
            values.push(wildcard);
        }
        values.push(permission.as_str().to_owned());
    }
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .max_length(Some(100))
        .build()
}

/// A list of at most `max_items` grants (see [`grant_schema`]).
pub(crate) fn grant_list(max_items: usize) -> Array {
    ArrayBuilder::new()
        .items(grant_schema())
        .max_items(Some(max_items))
        .build()
}

/// Parses grant strings (`resource:action`, `resource:*`, `*`); the error names the
/// unknown ones, each cut to 100 characters (the length rule speaks for longer ones, and
/// the answer should not echo a huge input).
pub(crate) fn parse_grants(field: &str, raw: &[String]) -> Result<Vec<Grant>, FieldError> {
    let mut grants = Vec::new();
    // A list over its bound is parsed too (every field error comes in one answer): the
    // message names a few, so a body of thousands of made-up names is not echoed back.
    let (mut unknown, mut more) = (Vec::new(), 0);
    for item in raw {
        match item.parse::<Grant>() {
            Ok(grant) => grants.push(grant),
            Err(_) if unknown.len() < NAMED_UNKNOWN => {
                unknown.push(item.chars().take(100).collect::<String>());
            }
            Err(_) => more += 1,
        }
    }
    if unknown.is_empty() {
        return Ok(grants);
    }
    let mut message = format!("unknown permissions: {}", unknown.join(", "));
    if more > 0 {
        message.push_str(&format!(" and {more} more"));
    }
    Err(FieldError::new(field, message))
}

/// Unknown grants a message names at most.
const NAMED_UNKNOWN: usize = 10;

/// One grant (see [`parse_grants`]).
fn parse_grant(field: &str, raw: String) -> Result<Grant, FieldError> {
    parse_grants(field, &[raw]).map(|mut grants| grants.remove(0))
}

/// The tenant's roles, newest first.
#[utoipa::path(get, path = "/api/v1/roles", tag = "roles", params(PageParams),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Roles", body = Paginated<Role>)))]
pub async fn list(
    principal: Granted<needs::RolesRead>,
    AppQuery(params): AppQuery<PageParams>,
) -> AppResult<Json<Paginated<Role>>> {
    let page = params.page()?;
    let rows = roles::list(&principal.scope, page.before, page.fetch()).await?;
    Ok(Json(Paginated::new(rows, page, |r| r.id)))
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct CreateRole {
    /// `^[a-z][a-z0-9_-]{1,49}$`, unique in the tenant.
    #[schema(pattern = "^[a-z][a-z0-9_-]{1,49}$", min_length = 2, max_length = 50)]
    pub name: String,
    /// At most 1,000 characters, no control characters.
    #[validate(length(max = 1000), custom(function = "validate::no_control"))]
    #[schema(max_length = 1000, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub description: Option<String>,
    /// At most 100 grants, each within the caller's own permissions.
    #[serde(default)]
    #[validate(length(max = 100), custom(function = "validate::each_at_most::<100>"))]
    #[schema(schema_with = role_grants)]
    pub permissions: Vec<String>,
}

/// A [`CreateRole`] parsed: its name and grants.
#[derive(Debug)]
pub struct NewRole {
    pub name: RoleName,
    pub description: Option<String>,
    pub grants: Vec<Grant>,
}

impl TryFrom<CreateRole> for NewRole {
    type Error = FieldErrors;

    fn try_from(body: CreateRole) -> Result<Self, FieldErrors> {
        let mut errors = validate::rules(&body);
        let name = errors.take(RoleName::parse(&body.name));
        let grants = errors.take(parse_grants("permissions", &body.permissions));
        errors.finish(|| {
            Some(NewRole {
                name: name?,
                description: body.description,
                grants: grants?,
            })
        })
    }
}

fn role_grants() -> Array {
    grant_list(100)
}

/// Create a custom role.
#[utoipa::path(post, path = "/api/v1/roles", tag = "roles", request_body = CreateRole,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = Role),
        (status = 403, description = "Permissions beyond the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Name taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name or unknown permissions", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(app): State<AppState>,
    principal: Granted<needs::RolesManage>,
    client: ClientInfo,
    AppJson(body): AppJson<CreateRole>,
) -> AppResult<(StatusCode, Json<Role>)> {
    let new = NewRole::try_from(body)?;
    let role = manage::create(
        &app.invalidations,
        &principal,
        &client,
        &new.name,
        new.description.as_deref(),
        &new.grants,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(role)))
}

/// One role.
#[utoipa::path(get, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The role", body = Role),
        (status = 404, description = "No such role in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    principal: Granted<needs::RolesRead>,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<Json<Role>> {
    Ok(Json(
        roles::get(&mut principal.scope.acquire().await?, id).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct UpdateRole {
    /// `^[a-z][a-z0-9_-]{1,49}$`, unique in the tenant.
    #[schema(pattern = "^[a-z][a-z0-9_-]{1,49}$", min_length = 2, max_length = 50)]
    pub name: Option<String>,
    /// At most 1,000 characters, no control characters.
    #[validate(length(max = 1000), custom(function = "validate::no_control"))]
    #[schema(max_length = 1000, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub description: Option<String>,
}

/// An [`UpdateRole`] parsed: the new name, if any, and description.
#[derive(Debug)]
pub struct RoleChanges {
    pub name: Option<RoleName>,
    pub description: Option<String>,
}

impl TryFrom<UpdateRole> for RoleChanges {
    type Error = FieldErrors;

    fn try_from(body: UpdateRole) -> Result<Self, FieldErrors> {
        let mut errors = validate::rules(&body);
        let name = errors.take(body.name.as_deref().map(RoleName::parse).transpose());
        errors.finish(|| {
            Some(RoleChanges {
                name: name?,
                description: body.description,
            })
        })
    }
}

/// Rename or re-describe a custom role (system roles: 403).
#[utoipa::path(patch, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = Uuid, Path)),
    request_body = UpdateRole, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Updated", body = Role),
        (status = 403, description = "A system role, or a role with permissions the caller lacks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such role in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Name taken", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update(
    State(app): State<AppState>,
    principal: Granted<needs::RolesManage>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<UpdateRole>,
) -> AppResult<Json<Role>> {
    let changes = RoleChanges::try_from(body)?;
    let role = manage::update(
        &app.invalidations,
        &principal,
        &client,
        id,
        changes.name.as_deref(),
        changes.description.as_deref(),
    )
    .await?;
    Ok(Json(role))
}

/// Delete a custom role (system roles: 403); its users lose its permissions.
#[utoipa::path(delete, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "A system role, or a role with permissions the caller lacks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such role in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Live API keys use the role", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    State(app): State<AppState>,
    principal: Granted<needs::RolesManage>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<StatusCode> {
    manage::delete(&app.invalidations, &principal, &client, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct AddPermission {
    /// `resource:action`, `resource:*` or `*`.
    #[validate(length(max = 100))]
    #[schema(schema_with = grant_schema)]
    pub permission: String,
}

/// The grant an [`AddPermission`] names.
impl TryFrom<AddPermission> for Grant {
    type Error = FieldErrors;

    fn try_from(body: AddPermission) -> Result<Self, FieldErrors> {
        let mut errors = validate::rules(&body);
        let grant = errors.take(parse_grant("permission", body.permission));
        errors.finish(|| grant)
    }
}

/// Grant a permission to a custom role.
#[utoipa::path(post, path = "/api/v1/roles/{id}/permissions", tag = "roles", params(("id" = Uuid, Path)),
    request_body = AddPermission, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The role with the permission", body = Role),
        (status = 403, description = "A system role, or a permission the caller lacks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such role in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown permission", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn add_permission(
    State(app): State<AppState>,
    principal: Granted<needs::RolesManage>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<AddPermission>,
) -> AppResult<Json<Role>> {
    let grant = Grant::try_from(body)?;
    let role = manage::add_permission(&app.invalidations, &principal, &client, id, grant).await?;
    Ok(Json(role))
}

/// The path of `DELETE /roles/{id}/permissions/{permission}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RolePermissionPath {
    /// The role.
    pub id: Uuid,
    /// A grant of the catalog, e.g. `users:read`.
    #[param(schema_with = grant_schema)]
    pub permission: String,
}

/// Take a permission from a custom role.
#[utoipa::path(delete, path = "/api/v1/roles/{id}/permissions/{permission}", tag = "roles",
    params(RolePermissionPath),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The role without the permission", body = Role),
        (status = 403, description = "A system role, or a role with permissions the caller lacks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such role in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown permission", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove_permission(
    State(app): State<AppState>,
    principal: Granted<needs::RolesManage>,
    client: ClientInfo,
    AppPath(RolePermissionPath { id, permission }): AppPath<RolePermissionPath>,
) -> AppResult<Json<Role>> {
    let grant = parse_grant("permission", permission).map_err(|e| AppError::validation(vec![e]))?;
    let role =
        manage::remove_permission(&app.invalidations, &principal, &client, id, &grant).await?;
    Ok(Json(role))
}
