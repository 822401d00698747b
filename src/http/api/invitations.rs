//! `/api/v1/invitations` and `/api/v1/auth/accept-invitation`: users join by invitation.

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
        validate,
    },
    rbac::needs,
    services::{
        invitations::{self, Acceptance, Invitation, InvitationAccepted},
        users::{self, Email},
    },
};

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct CreateInvitation {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// Role names (at most 20); default `["viewer"]`. Each must exist and be within the
    /// caller's permissions.
    #[validate(length(max = 20), custom(function = "validate::each_at_most::<100>"))]
    #[schema(schema_with = validate::role_names)]
    pub roles: Option<Vec<String>>,
}

/// A [`CreateInvitation`] parsed: whom, with which roles.
#[derive(Debug)]
pub struct Invitee {
    pub email: Email,
    /// Role names; each must exist and be within the caller's permissions.
    pub roles: Vec<String>,
}

impl TryFrom<CreateInvitation> for Invitee {
    type Error = FieldErrors;

    fn try_from(body: CreateInvitation) -> Result<Self, FieldErrors> {
        let mut errors = validate::rules(&body);
        let email = errors.take(Email::parse("email", &body.email));
        errors.finish(|| {
            Some(Invitee {
                email: email?,
                roles: body.roles.unwrap_or_else(|| vec!["viewer".to_owned()]),
            })
        })
    }
}

/// Invite someone: a single-use token (7 days) is mailed to the address.
#[utoipa::path(post, path = "/api/v1/invitations", tag = "invitations", request_body = CreateInvitation,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Invited; the mail is on its way", body = Invitation),
        (status = 403, description = "A role beyond the caller's permissions", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "EMAIL_TAKEN: the address is a user's already; CONFLICT: an invitation to it is pending", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields or unknown roles", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "5 invitation mails to this address in the last hour", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(app): State<AppState>,
    principal: Granted<needs::UsersCreate>,
    client: ClientInfo,
    AppJson(body): AppJson<CreateInvitation>,
) -> AppResult<(StatusCode, Json<Invitation>)> {
    let invitee = Invitee::try_from(body)?;
    let invitation = invitations::create(
        &app.mailer,
        &principal,
        invitee.email,
        &invitee.roles,
        &client,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(invitation)))
}

/// The tenant's invitations in every state (pending, accepted, revoked, expired),
/// newest first.
#[utoipa::path(get, path = "/api/v1/invitations", tag = "invitations", params(PageParams),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Invitations", body = Paginated<Invitation>),
        (status = 422, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    principal: Granted<needs::UsersRead>,
    AppQuery(params): AppQuery<PageParams>,
) -> AppResult<Json<Paginated<Invitation>>> {
    let page = params.page()?;
    let rows = invitations::list(&principal.scope, page.before, page.fetch()).await?;
    Ok(Json(Paginated::new(rows, page, |i| i.id)))
}

/// Revoke an invitation: its token stops working.
#[utoipa::path(delete, path = "/api/v1/invitations/{id}", tag = "invitations", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such invitation in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already accepted", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke(
    principal: Granted<needs::UsersCreate>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<StatusCode> {
    invitations::revoke(&principal, id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a pending or expired invitation again, with a new token valid 7 days (the
/// previous token stops working).
#[utoipa::path(post, path = "/api/v1/invitations/{id}/resend", tag = "invitations", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Sent again", body = Invitation),
        (status = 404, description = "No such invitation in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already accepted or revoked", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "5 invitation mails to this address in the last hour", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn resend(
    State(app): State<AppState>,
    principal: Granted<needs::UsersCreate>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<Json<Invitation>> {
    Ok(Json(
        invitations::resend(&app.mailer, &principal, id, &client).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct AcceptInvitation {
    /// The token of the invitation mail.
    #[validate(length(max = 512))]
    #[schema(max_length = 512)]
    pub token: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub first_name: Option<String>,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub last_name: Option<String>,
}

/// An [`AcceptInvitation`] parsed: the token (within its bound) and the new account.
#[derive(Debug)]
pub struct Accepting {
    pub token: String,
    pub acceptance: Acceptance,
}

impl TryFrom<AcceptInvitation> for Accepting {
    type Error = FieldErrors;

    fn try_from(body: AcceptInvitation) -> Result<Self, FieldErrors> {
        let mut errors = validate::rules(&body);
        let password = errors.take(users::password("password", body.password));
        errors.finish(|| {
            Some(Accepting {
                token: body.token,
                acceptance: Acceptance {
                    password: password?,
                    first_name: body.first_name,
                    last_name: body.last_name,
                },
            })
        })
    }
}

/// Accept an invitation: creates the user (the invited roles, a verified address) and
/// logs them in.
#[utoipa::path(post, path = "/api/v1/auth/accept-invitation", tag = "auth", request_body = AcceptInvitation,
    responses(
        (status = 201, description = "The new user and their tokens", body = InvitationAccepted),
        (status = 409, description = "EMAIL_TAKEN: a user with the address was created meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid, used, revoked or expired token, or a bad password", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn accept(
    State(app): State<AppState>,
    client: ClientInfo,
    AppJson(body): AppJson<AcceptInvitation>,
) -> AppResult<(StatusCode, Json<InvitationAccepted>)> {
    let accepting = Accepting::try_from(body)?;
    let accepted = invitations::accept(
        &app.tenant_db,
        &app.issuer,
        &accepting.token,
        accepting.acceptance,
        &client,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(accepted)))
}
