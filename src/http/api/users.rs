//! `/api/v1/users`: the tenant's accounts.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::{
    app::AppState,
    auth::granted::Granted,
    client_address::ClientInfo,
    error::{AppResult, FieldErrors, Problem},
    http::{
        extract::{AppJson, AppPath, AppQuery},
        pagination::{PageParams, Paginated},
        validate::{self, ValidJson},
    },
    rbac::needs,
    services::users::{
        self, Email, User,
        manage::{self, NewAccount},
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
    principal: Granted<needs::UsersRead>,
    AppQuery(params): AppQuery<PageParams>,
) -> AppResult<Json<Paginated<User>>> {
    let page = params.page()?;
    let rows = users::list(&principal.scope, page.before, page.fetch()).await?;
    Ok(Json(Paginated::new(rows, page, |u| u.id)))
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct CreateUser {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 8 to 128 characters.
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
    #[schema(schema_with = validate::role_names)]
    pub roles: Option<Vec<String>>,
}

/// The account asked for: its email and password parsed, the other fields within their
/// rules, every broken one named at once.
impl TryFrom<CreateUser> for NewAccount {
    type Error = FieldErrors;

    fn try_from(body: CreateUser) -> Result<Self, FieldErrors> {
        let mut errors = validate::rules(&body);
        let email = errors.take(Email::parse("email", &body.email));
        let password = errors.take(users::password("password", body.password));
        errors.finish(|| {
            Some(NewAccount {
                email: email?,
                password: password?,
                first_name: body.first_name,
                last_name: body.last_name,
                roles: body.roles.unwrap_or_else(|| vec!["viewer".to_owned()]),
            })
        })
    }
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
    principal: Granted<needs::UsersCreate>,
    client: ClientInfo,
    AppJson(body): AppJson<CreateUser>,
) -> AppResult<(StatusCode, Json<User>)> {
    let account = NewAccount::try_from(body)?;
    let user = manage::create(&app.mailer, &principal, &client, account).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 404, description = "No such user in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    principal: Granted<needs::UsersRead>,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<Json<User>> {
    Ok(Json(
        users::get(&mut principal.scope.acquire().await?, id).await?,
    ))
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
    principal: Granted<needs::UsersUpdate>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
    ValidJson(body): ValidJson<UpdateUser>,
) -> AppResult<Json<User>> {
    let user = manage::update(
        &app.invalidations,
        &principal,
        &client,
        id,
        body.first_name,
        body.last_name,
        body.is_active,
    )
    .await?;
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
    principal: Granted<needs::UsersDelete>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<StatusCode> {
    manage::delete(&app.invalidations, &principal, &client, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct SetRoles {
    /// Role names (at most 20); each must exist and be within the caller's permissions.
    #[validate(length(max = 20), custom(function = "validate::each_at_most::<100>"))]
    #[schema(schema_with = validate::role_names)]
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
    principal: Granted<needs::RolesAssign>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
    ValidJson(body): ValidJson<SetRoles>,
) -> AppResult<Json<User>> {
    let user = manage::set_roles(&app.invalidations, &principal, &client, id, body.roles).await?;
    Ok(Json(user))
}
