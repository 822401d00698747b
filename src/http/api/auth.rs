//! `/api/v1/auth/*`, `/api/v1/admin/login` and `/.well-known/jwks.json`.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::{
    app::AppState,
    auth::{
        password::Password,
        principal::{Actor, Principal},
    },
    client_address::ClientInfo,
    error::{AppError, AppResult, ErrorCode, FieldErrors, Problem},
    http::{
        extract::AppJson,
        validate::{self, ValidJson},
    },
    services::{
        identity::{self, LoginOutcome, Registered},
        sessions::{self, TokenPair},
        tenants::Tenant,
        users::{self, Email, User},
    },
};

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct LoginRequest {
    /// The tenant's slug or id. When `BASE_DOMAIN` is set it may be left out and is then
    /// taken from the Host's subdomain (`acme.<BASE_DOMAIN>`).
    #[validate(length(max = 64))]
    #[schema(max_length = 64)]
    pub tenant: Option<String>,
    #[validate(length(max = 254))]
    #[schema(max_length = 254)]
    pub email: String,
    #[validate(length(max = 128))]
    #[schema(max_length = 128)]
    pub password: String,
}

/// Log in with email and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in: the token pair, or for a user with MFA `{mfa_required: true, mfa_token}` to finish at `/api/v1/auth/mfa/verify`", body = LoginOutcome),
        (status = 401, description = "Unknown tenant, unknown user or wrong password (indistinguishable)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Tenant suspended (TENANT_SUSPENDED), or a self-registered address not yet verified (EMAIL_NOT_VERIFIED)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "10 failed logins for this account in 15 minutes, or too many requests from this address", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    client: ClientInfo,
    ValidJson(body): ValidJson<LoginRequest>,
) -> AppResult<Json<LoginOutcome>> {
    let tenant = match body.tenant.filter(|t| !t.trim().is_empty()) {
        Some(tenant) => tenant,
        None => tenant_from_host(&app, &headers)
            .ok_or_else(|| AppError::invalid_field("tenant", "is required"))?,
    };
    let tenant = tenant.trim();
    let attempt = if app.limits.is_enabled() {
        // One budget per account, whether the tenant was named by slug or by id and
        // whichever look-alike of the address was typed.
        let (account, email) = identity::login_budget(&app.tenant_db, tenant, &body.email).await?;
        Some(app.limits.login_attempt(&account, &email).await?)
    } else {
        None
    };
    let result = identity::login(
        &app.tenant_db,
        &app.issuer,
        tenant,
        &body.email,
        body.password,
        &client,
    )
    .await;
    let failed = matches!(&result, Err(e) if e.code() == ErrorCode::InvalidCredentials);
    if let Some(attempt) = attempt
        && !failed
    {
        attempt.succeeded(&app.limits).await;
    }
    Ok(Json(result?))
}

/// `acme` from `Host: acme.<BASE_DOMAIN>`.
fn tenant_from_host(app: &AppState, headers: &HeaderMap) -> Option<String> {
    let base = app.config.auth.base_domain.as_deref()?;
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let host = host.split(':').next()?;
    let sub = host.strip_suffix(base)?.strip_suffix('.')?;
    (!sub.is_empty() && !sub.contains('.')).then(|| sub.to_owned())
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct RegisterRequest {
    /// The tenant's slug.
    #[validate(length(max = 64))]
    #[schema(max_length = 64)]
    pub tenant: String,
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
}

/// A [`RegisterRequest`] parsed: its email and password as domain values.
#[derive(Debug)]
pub struct Registration {
    pub tenant: String,
    pub email: Email,
    pub password: Password,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

impl TryFrom<RegisterRequest> for Registration {
    type Error = FieldErrors;

    fn try_from(body: RegisterRequest) -> Result<Self, FieldErrors> {
        let mut errors = validate::rules(&body);
        let email = errors.take(Email::parse("email", &body.email));
        let password = errors.take(users::password("password", body.password));
        errors.finish(|| {
            Some(Registration {
                tenant: body.tenant,
                email: email?,
                password: password?,
                first_name: body.first_name,
                last_name: body.last_name,
            })
        })
    }
}

/// Register a new user (role `viewer`) in a tenant that opted in to self-registration
/// (`settings.self_registration`). The address must be verified before the user can log
/// in. The answer is the same whether or not the address already has an account (that
/// address is sent a notice instead of a verification token).
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered; a verification token is sent", body = Registered),
        (status = 403, description = "The tenant does not allow self-registration, or not for this email domain", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn register(
    State(app): State<AppState>,
    client: ClientInfo,
    AppJson(body): AppJson<RegisterRequest>,
) -> AppResult<(StatusCode, Json<Registered>)> {
    let r = Registration::try_from(body)?;
    let user = identity::register(
        &app.tenant_db,
        &app.mailer,
        &r.tenant,
        r.email,
        r.password,
        r.first_name,
        r.last_name,
        &client,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct RefreshRequest {
    #[validate(length(max = 512))]
    #[schema(max_length = 512)]
    pub refresh_token: String,
}

/// Exchange a refresh token for a new pair (the old one is spent; reusing it revokes
/// the whole session).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenPair),
        (status = 401, description = "Invalid, spent, revoked or expired refresh token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refresh(
    State(app): State<AppState>,
    client: ClientInfo,
    ValidJson(body): ValidJson<RefreshRequest>,
) -> AppResult<Json<TokenPair>> {
    Ok(Json(
        sessions::refresh(
            &app.tenant_db,
            &app.issuer,
            &app.invalidations,
            &body.refresh_token,
            &client,
        )
        .await?,
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema, Validate)]
pub struct LogoutRequest {
    #[validate(length(max = 512))]
    #[schema(max_length = 512)]
    pub refresh_token: Option<String>,
}

/// End the session: the refresh family is revoked and the access token stops working
/// (platform operators: the token stops working).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body(content = Option<LogoutRequest>, description = "Optional: `{\"refresh_token\": ...}` ends that session too"),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn logout(
    State(app): State<AppState>,
    principal: Principal,
    client: ClientInfo,
    body: axum::body::Bytes,
) -> AppResult<StatusCode> {
    // The body is optional: empty, or `{"refresh_token": ...}`.
    let body: LogoutRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LogoutRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|_| AppError::malformed("the body is not valid JSON"))?
    };
    validate::check(&body)?;
    let refresh_token = body.refresh_token;
    identity::logout(
        &app.invalidations,
        &principal,
        refresh_token.as_deref(),
        &client,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct PasswordResetRequest {
    /// The tenant's slug or id.
    #[validate(length(max = 64))]
    #[schema(max_length = 64)]
    pub tenant: String,
    #[validate(length(max = 254))]
    #[schema(max_length = 254)]
    pub email: String,
}

/// Ask for a password reset token (valid 1 hour). Always 202, whether the account
/// exists or not.
#[utoipa::path(post, path = "/api/v1/auth/password-reset-request", tag = "auth", request_body = PasswordResetRequest,
    responses((status = 202, description = "If the account exists, a token is on its way")))]
pub async fn password_reset_request(
    State(app): State<AppState>,
    ValidJson(body): ValidJson<PasswordResetRequest>,
) -> StatusCode {
    identity::request_password_reset(
        app.tenant_db.clone(),
        app.mailer.clone(),
        body.tenant,
        body.email,
    );
    StatusCode::ACCEPTED
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct PasswordReset {
    #[validate(length(max = 512))]
    #[schema(max_length = 512)]
    pub token: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// A [`PasswordReset`] parsed: the token (within its bound) and the new password.
#[derive(Debug)]
pub struct Reset {
    pub token: String,
    pub password: Password,
}

impl TryFrom<PasswordReset> for Reset {
    type Error = FieldErrors;

    fn try_from(body: PasswordReset) -> Result<Self, FieldErrors> {
        let mut errors = validate::rules(&body);
        let password = errors.take(users::password("new_password", body.new_password));
        errors.finish(|| {
            Some(Reset {
                token: body.token,
                password: password?,
            })
        })
    }
}

/// Set a new password with a reset token; every session of the user ends.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", request_body = PasswordReset,
    responses(
        (status = 204, description = "Password changed"),
        (status = 422, description = "Invalid, used or expired token, or a bad password", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn password_reset(
    State(app): State<AppState>,
    client: ClientInfo,
    AppJson(body): AppJson<PasswordReset>,
) -> AppResult<StatusCode> {
    let reset = Reset::try_from(body)?;
    identity::reset_password(
        &app.tenant_db,
        &app.invalidations,
        &reset.token,
        reset.password,
        &client,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct VerifyEmail {
    #[validate(length(max = 512))]
    #[schema(max_length = 512)]
    pub token: String,
}

/// Confirm an email address with the token sent to it.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", request_body = VerifyEmail,
    responses(
        (status = 204, description = "Verified"),
        (status = 422, description = "Invalid, used or expired token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn verify_email(
    State(app): State<AppState>,
    ValidJson(body): ValidJson<VerifyEmail>,
) -> AppResult<StatusCode> {
    identity::verify_email(&app.tenant_db, &body.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller: a user or an API key, its tenant, roles and permissions.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKeyIdentity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_admin: Option<PlatformAdminIdentity>,
    pub tenant: Option<Tenant>,
    pub roles: Vec<String>,
    /// Every catalog permission the caller holds.
    pub permissions: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyIdentity {
    pub id: uuid::Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlatformAdminIdentity {
    pub id: uuid::Uuid,
}

/// Who am I?
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn me(principal: Principal) -> AppResult<Json<Me>> {
    let p = match principal {
        Principal::Tenant(p) => p,
        Principal::Platform { admin_id, .. } => {
            return Ok(Json(Me {
                user: None,
                api_key: None,
                platform_admin: Some(PlatformAdminIdentity { id: admin_id }),
                tenant: None,
                roles: Vec::new(),
                permissions: Vec::new(),
            }));
        }
    };
    let (user, api_key) = match p.actor {
        Actor::User(id) => (
            Some(users::get(&mut p.scope.acquire().await?, id).await?),
            None,
        ),
        Actor::ApiKey(id) => (None, Some(ApiKeyIdentity { id })),
        Actor::Platform(_) => (None, None),
    };
    Ok(Json(Me {
        user,
        api_key,
        platform_admin: None,
        permissions: p
            .permissions
            .expanded()
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
        roles: p.roles.to_vec(),
        tenant: Some(Tenant::clone(&p.tenant)),
    }))
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct AdminLoginRequest {
    #[validate(length(max = 254))]
    #[schema(max_length = 254)]
    pub email: String,
    #[validate(length(max = 128))]
    #[schema(max_length = 128)]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlatformToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    /// Always `platform`.
    pub scope: &'static str,
}

/// Platform operator login.
#[utoipa::path(post, path = "/api/v1/admin/login", tag = "platform", request_body = AdminLoginRequest,
    responses(
        (status = 200, description = "A platform token", body = PlatformToken),
        (status = 401, description = "Wrong email or password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "10 failed logins for this operator in 15 minutes, or too many requests from this address (Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn admin_login(
    State(app): State<AppState>,
    client: ClientInfo,
    ValidJson(body): ValidJson<AdminLoginRequest>,
) -> AppResult<Json<PlatformToken>> {
    let (access_token, expires_in) = identity::admin_login(
        &app.db,
        &app.limits,
        &app.jwt,
        &body.email,
        body.password,
        &client,
    )
    .await?;
    Ok(Json(PlatformToken {
        access_token,
        token_type: "Bearer",
        expires_in,
        scope: "platform",
    }))
}

/// The public keys that verify access tokens (several while keys rotate).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JSON Web Key Set", body = Object)))]
pub async fn jwks(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(app.jwt.jwks().clone()),
    )
}
