//! `/api/v1/auth/mfa/*` and `/api/v1/users/{id}/mfa`: TOTP enrolment, the second step of
//! a login, removal and an administrator's reset.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::{
    app::AppState,
    auth::{granted::Granted, principal::TenantPrincipal},
    client_address::ClientInfo,
    error::{AppError, AppResult, Problem},
    http::{extract::AppPath, validate::ValidJson},
    rbac::needs,
    services::{
        mfa::{self, Enrolment, Proof, RecoveryCodes},
        sessions::TokenPair,
    },
};

/// Start TOTP enrolment: a new secret for an authenticator app, pending until confirmed.
/// Open to users whose tenant requires MFA they have not passed yet.
#[utoipa::path(post, path = "/api/v1/auth/mfa/totp/enroll", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The secret (base32) and its otpauth:// URI", body = Enrolment),
        (status = 403, description = "Not a user's bearer token (API keys and operators have no MFA)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "MFA is already on: remove it first", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn enroll(
    State(app): State<AppState>,
    principal: TenantPrincipal,
) -> AppResult<Json<Enrolment>> {
    Ok(Json(mfa::enroll(&app.config.auth, &principal).await?))
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct ConfirmTotp {
    /// The current 6-digit code of the authenticator.
    #[validate(length(max = 16))]
    #[schema(max_length = 16, example = "123456")]
    pub code: String,
}

/// Confirm enrolment with a code: MFA is on, and the 10 recovery codes are shown (once).
/// Log in again to get tokens that carry the second factor.
#[utoipa::path(post, path = "/api/v1/auth/mfa/totp/confirm", tag = "auth", request_body = ConfirmTotp,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "MFA is on; the recovery codes (each works once)", body = RecoveryCodes),
        (status = 403, description = "Not a user's bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No enrolment is pending", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The code is not right (field `code`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn confirm(
    State(app): State<AppState>,
    principal: TenantPrincipal,
    client: ClientInfo,
    ValidJson(body): ValidJson<ConfirmTotp>,
) -> AppResult<Json<RecoveryCodes>> {
    Ok(Json(
        mfa::confirm(&app.config.auth, &principal, &body.code, &client).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct RemoveMfa {
    /// A current TOTP code (6 digits) or an unused recovery code.
    #[validate(length(max = 64))]
    #[schema(max_length = 64)]
    pub code: String,
}

/// Turn MFA off, proving it with a code or a recovery code.
#[utoipa::path(delete, path = "/api/v1/auth/mfa", tag = "auth", request_body = RemoveMfa,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "MFA is off"),
        (status = 401, description = "INVALID_CREDENTIALS: a wrong or already-used code", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a user's bearer token, or MFA_REQUIRED", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "MFA is not on", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "5 wrong codes for this user in 15 minutes", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove(
    State(app): State<AppState>,
    principal: TenantPrincipal,
    client: ClientInfo,
    ValidJson(body): ValidJson<RemoveMfa>,
) -> AppResult<StatusCode> {
    mfa::remove(
        &app.config.auth,
        &principal,
        Proof::from_code(&body.code),
        &client,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct VerifyMfa {
    /// The `mfa_token` of the login's answer (valid 5 minutes).
    #[validate(length(max = 512))]
    #[schema(max_length = 512)]
    pub mfa_token: String,
    /// A 6-digit TOTP code; give this or `recovery_code`.
    #[validate(length(max = 16))]
    #[schema(max_length = 16, example = "123456")]
    pub code: Option<String>,
    /// An unused recovery code (spent by this use).
    #[validate(length(max = 64))]
    #[schema(max_length = 64)]
    pub recovery_code: Option<String>,
}

/// The second step of a login with MFA: the `mfa_token` and a code → the token pair
/// (`amr: ["pwd", "otp"]`). A wrong code leaves the `mfa_token` usable until it expires.
#[utoipa::path(post, path = "/api/v1/auth/mfa/verify", tag = "auth", request_body = VerifyMfa,
    responses(
        (status = 200, description = "Logged in", body = TokenPair),
        (status = 401, description = "INVALID_CREDENTIALS: a wrong or already-used code; UNAUTHENTICATED: an invalid, used or expired mfa_token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Neither or both of `code` and `recovery_code`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "5 wrong codes for this user in 15 minutes, or too many requests from this address", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn verify(
    State(app): State<AppState>,
    client: ClientInfo,
    ValidJson(body): ValidJson<VerifyMfa>,
) -> AppResult<Json<TokenPair>> {
    let proof = match (body.code, body.recovery_code) {
        (Some(code), None) => Proof::Totp(code),
        (None, Some(code)) => Proof::Recovery(code),
        _ => {
            return Err(AppError::invalid_field(
                "code",
                "give exactly one of code and recovery_code",
            ));
        }
    };
    Ok(Json(
        mfa::verify(
            &app.tenant_db,
            &app.issuer,
            &app.config.auth,
            &body.mfa_token,
            proof,
            &client,
        )
        .await?,
    ))
}

/// Reset a user's MFA (a lost authenticator): the user logs in with the password alone
/// and may enrol again. Owner model: the user's permissions must be within the caller's.
#[utoipa::path(delete, path = "/api/v1/users/{id}/mfa", tag = "users", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "The user's MFA is off"),
        (status = 403, description = "The user holds permissions the caller lacks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reset_user(
    principal: Granted<needs::UsersUpdate>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<StatusCode> {
    mfa::reset(&principal, id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}
