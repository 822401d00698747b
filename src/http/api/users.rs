//! `/api/v1/users`: the tenant's accounts.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::{
    app::AppState,
    auth::invalidation::{Change, commit},
    auth::{password, principal::TenantPrincipal},
    client_address::ClientInfo,
    error::{AppError, AppResult, Problem},
    http::{
        extract::{AppPath, AppQuery},
        pagination::{PageParams, Paginated},
        validate::{self, ValidJson},
    },
    rbac::owner_model,
    services::webhooks::{self, EventType},
    services::{
        audit::{self, AuditEntry},
        identity,
        notifications::{self, PlatformMail},
        sessions,
        users::{self, Email, NewUser, User, UserChanges},
    },
};

/// The tenant's users, newest first.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(PageParams),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Users", body = Paginated<User>),
        (status = 422, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    principal: TenantPrincipal,
    AppQuery(params): AppQuery<PageParams>,
) -> AppResult<Json<Paginated<User>>> {
    let page = params.page()?;
    let rows = users::list(&principal.scope, page.before, page.fetch()).await?;
    Ok(Json(Paginated::new(rows, page, |u| u.id)))
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct CreateUser {
    #[validate(custom(function = "validate::email"))]
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 8 to 128 characters.
    #[validate(custom(function = "validate::new_password"))]
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// At most 200 characters, no control characters.
    #[validate(length(max = 200), custom(function = "validate::no_control"))]
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub first_name: Option<String>,
    /// At most 200 characters, no control characters.
    #[validate(length(max = 200), custom(function = "validate::no_control"))]
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub last_name: Option<String>,
    /// Role names (at most 20); default `["viewer"]`. Each must exist and be within the
    /// caller's permissions.
    #[validate(length(max = 20), custom(function = "validate::each_at_most::<100>"))]
    #[schema(schema_with = role_names)]
    pub roles: Option<Vec<String>>,
}

/// A list of at most 20 role names of at most 100 characters each.
fn role_names() -> utoipa::openapi::schema::Array {
    validate::string_list(20, 100)
}

/// Create a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = User),
        (status = 403, description = "A role beyond the caller's permissions", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "EMAIL_TAKEN", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields or unknown roles", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(app): State<AppState>,
    principal: TenantPrincipal,
    client: ClientInfo,
    ValidJson(body): ValidJson<CreateUser>,
) -> AppResult<(StatusCode, Json<User>)> {
    // Both passed validation; parsing gives the domain types.
    let email = Email::parse("email", &body.email).map_err(|e| AppError::validation(vec![e]))?;
    let new_password =
        users::password("password", body.password).map_err(|e| AppError::validation(vec![e]))?;
    let roles = body.roles.unwrap_or_else(|| vec!["viewer".to_owned()]);
    let password_hash = password::hash(new_password).await?;
    let mut tx = principal.scope.begin().await?;
    let resolved = users::resolve_roles(&mut tx, &roles).await?;
    let cleared = owner_model::grant(&principal.authority(), &resolved.grants)?;
    let id = users::create(
        &mut tx,
        NewUser {
            email,
            password_hash,
            first_name: body.first_name,
            last_name: body.last_name,
            self_registered: false,
        },
        &resolved,
        cleared,
    )
    .await?;
    let token =
        sessions::create_one_time(&mut tx, id, sessions::Purpose::EmailVerification).await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(principal.actor), "user.created", &client)
            .target("user", id)
            .metadata(json!({"roles": roles})),
    )
    .await?;
    let user = users::get_in(&mut tx, id).await?;
    webhooks::emit(&mut tx, EventType::UserCreated, &user).await?;
    // The platform's own mail (no creator): to the address as stored.
    let verification = notifications::queue_platform_in(
        &app.limits,
        &mut tx,
        principal.tenant.plan,
        PlatformMail::EmailVerification,
        &user.email,
        identity::verification_body(&token),
    )
    .await?;
    tx.commit().await?;
    if let Some(verification) = verification {
        notifications::dispatch(&app, principal.tenant_id(), &verification).await;
    }
    Ok((StatusCode::CREATED, Json(user)))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 404, description = "No such user in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(principal: TenantPrincipal, AppPath(id): AppPath<Uuid>) -> AppResult<Json<User>> {
    Ok(Json(users::get(&principal.scope, id).await?))
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct UpdateUser {
    /// At most 200 characters, no control characters.
    #[validate(length(max = 200), custom(function = "validate::no_control"))]
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub first_name: Option<String>,
    /// At most 200 characters, no control characters.
    #[validate(length(max = 200), custom(function = "validate::no_control"))]
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub last_name: Option<String>,
    /// `false` deactivates the account: its sessions end and its tokens stop working.
    pub is_active: Option<bool>,
}

/// Update a user (names, activation).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    request_body = UpdateUser, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Updated", body = User),
        (status = 403, description = "The user holds permissions the caller lacks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Deactivating yourself or the last active admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update(
    State(app): State<AppState>,
    principal: TenantPrincipal,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
    ValidJson(body): ValidJson<UpdateUser>,
) -> AppResult<Json<User>> {
    let changes = UserChanges {
        first_name: body.first_name,
        last_name: body.last_name,
        reactivate: body.is_active == Some(true),
    };
    let mut tx = principal.scope.begin().await?;
    let target = users::target(&mut tx, id).await?;
    let authority = principal.authority();
    if body.is_active == Some(false) {
        users::deactivate(&mut tx, owner_model::deactivate_user(&authority, &target)?).await?;
    }
    users::update(
        &mut tx,
        owner_model::update_user(&authority, &target)?,
        &changes,
    )
    .await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(principal.actor), "user.updated", &client)
            .target("user", id)
            .metadata(json!({"is_active": body.is_active})),
    )
    .await?;
    let user = users::get_in(&mut tx, id).await?;
    webhooks::emit(&mut tx, EventType::UserUpdated, &user).await?;
    commit(&app, tx, Change::Tenant(principal.tenant_id())).await?;
    Ok(Json(user))
}

/// Delete a user; their sessions end with them.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The user holds permissions the caller lacks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Deleting yourself or the last active admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    State(app): State<AppState>,
    principal: TenantPrincipal,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<StatusCode> {
    let mut tx = principal.scope.begin().await?;
    let target = users::target(&mut tx, id).await?;
    users::delete(
        &mut tx,
        owner_model::delete_user(&principal.authority(), &target)?,
    )
    .await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(principal.actor), "user.deleted", &client).target("user", id),
    )
    .await?;
    webhooks::emit(&mut tx, EventType::UserDeleted, json!({"id": id})).await?;
    commit(&app, tx, Change::Tenant(principal.tenant_id())).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct SetRoles {
    /// Role names (at most 20); each must exist and be within the caller's permissions.
    #[validate(length(max = 20), custom(function = "validate::each_at_most::<100>"))]
    #[schema(schema_with = role_names)]
    pub roles: Vec<String>,
}

/// Replace a user's roles.
#[utoipa::path(put, path = "/api/v1/users/{id}/roles", tag = "users", params(("id" = Uuid, Path)),
    request_body = SetRoles, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The user with its new roles", body = User),
        (status = 403, description = "A role beyond the caller's permissions, or a user holding permissions the caller lacks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Demoting the last active admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown roles", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_roles(
    State(app): State<AppState>,
    principal: TenantPrincipal,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
    ValidJson(body): ValidJson<SetRoles>,
) -> AppResult<Json<User>> {
    let mut tx = principal.scope.begin().await?;
    let target = users::target(&mut tx, id).await?;
    let roles = users::resolve_roles(&mut tx, &body.roles).await?;
    let cleared = owner_model::set_user_roles(
        &principal.authority(),
        &target,
        &roles.grants,
        roles.has_admin,
    )?;
    users::set_roles(&mut tx, cleared, &roles).await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(principal.actor), "user.roles_assigned", &client)
            .target("user", id)
            .metadata(json!({"roles": body.roles})),
    )
    .await?;
    let user = users::get_in(&mut tx, id).await?;
    webhooks::emit(&mut tx, EventType::UserUpdated, &user).await?;
    commit(&app, tx, Change::Tenant(principal.tenant_id())).await?;
    Ok(Json(user))
}
