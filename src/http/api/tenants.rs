//! `/api/v1/tenants`: onboarding, and each tenant's lifecycle.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    app::AppState,
    auth::invalidation::Change,
    auth::password::Password,
    auth::{
        granted::GrantedOrPlatform,
        principal::{MaybePrincipal, Principal},
    },
    client_address::ClientInfo,
    error::{AppError, AppResult, FieldError, FieldErrors, Problem},
    http::{
        extract::{AppJson, AppPath, AppQuery},
        pagination::{PageParams, Paginated},
    },
    rbac::needs,
    services::{
        onboarding::{self, NewTenant, Onboarded},
        tenants::{
            self, Lifecycle, Plan, SelfRegistration, Tenant, TenantChanges, TenantFilter,
            TenantSettings, TenantSlug,
        },
        users::{self, Email},
    },
};

/// Serialized back (password included) only to fingerprint the request for
/// `Idempotency-Key`; never logged or stored.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewAdmin {
    #[schema(format = Email)]
    pub email: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// At most 200 characters, no control characters.
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub first_name: Option<String>,
    /// At most 200 characters, no control characters.
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub last_name: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreateTenant {
    /// 1 to 200 characters, not blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// `^[a-z][a-z0-9-]{2,39}$`, unique.
    #[schema(pattern = "^[a-z][a-z0-9-]{2,39}$")]
    pub slug: String,
    /// `free` unless a platform operator asks for another.
    #[schema(value_type = Option<Plan>)]
    pub plan: Option<String>,
    pub admin: NewAdmin,
}

/// A [`CreateTenant`] parsed: the tenant's name, slug and plan, its admin's email and
/// password; every broken field named at once. Borrowed: the body as sent is also the
/// request's fingerprint.
#[derive(Debug)]
pub struct Signup {
    pub name: String,
    pub slug: TenantSlug,
    pub plan: Plan,
    pub admin_email: Email,
    pub admin_password: Password,
}

impl TryFrom<&CreateTenant> for Signup {
    type Error = FieldErrors;

    fn try_from(body: &CreateTenant) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let tenant_name = errors.take(name("name", &body.name));
        let slug = errors.take(TenantSlug::parse(&body.slug));
        let plan = errors.take(
            body.plan
                .as_deref()
                .map_or(Ok(Plan::Free), |raw| Plan::parse("plan", raw)),
        );
        let email = errors.take(Email::parse("admin.email", &body.admin.email));
        let password = errors.take(users::password(
            "admin.password",
            body.admin.password.clone(),
        ));
        errors.check(person_name(
            "admin.first_name",
            body.admin.first_name.as_ref(),
        ));
        errors.check(person_name(
            "admin.last_name",
            body.admin.last_name.as_ref(),
        ));
        errors.finish(|| {
            Some(Signup {
                name: tenant_name?,
                slug: slug?,
                plan: plan?,
                admin_email: email?,
                admin_password: password?,
            })
        })
    }
}

fn name(field: &str, raw: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(FieldError::new(field, "must be 1 to 200 characters"));
    }
    crate::text::no_control(field, name)?;
    Ok(name.to_owned())
}

/// An optional person's name: at most 200 characters.
fn person_name(field: &str, raw: Option<&String>) -> Result<(), FieldError> {
    match raw {
        Some(name) if name.chars().count() > 200 => {
            Err(FieldError::new(field, "must be at most 200 characters"))
        }
        Some(name) => crate::text::no_control(field, name),
        None => Ok(()),
    }
}

/// Onboard a tenant: its schema, system roles, admin user and tokens, all at once.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = CreateTenant,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, description = "Retries with the same key answer the first result")),
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Onboarded. A replay of an earlier request with the same `Idempotency-Key` (same caller, same body, within 24 h) answers the same tenant and admin without `tokens`, and `Idempotent-Replayed: true`", body = Onboarded,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replayed answer"))),
        (status = 401, description = "A credential was sent and is not valid (send none to sign up)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Sign-up disabled, or a paid plan without a platform token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TENANT_SLUG_TAKEN, or the tenant of a replayed request was deleted", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; IDEMPOTENCY_KEY_REUSED: the key was used with a different body", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(app): State<AppState>,
    MaybePrincipal(principal): MaybePrincipal,
    headers: HeaderMap,
    client: ClientInfo,
    AppJson(body): AppJson<CreateTenant>,
) -> AppResult<(StatusCode, [(HeaderName, HeaderValue); 1], Json<Onboarded>)> {
    let platform = principal.as_ref().filter(|p| p.is_platform());
    let signup = Signup::try_from(&body);
    // An unknown plan is answered 422 like any bad field; the public may not sign up
    // when sign-up is off, nor ask for a known paid plan (403, whatever else is wrong).
    let unknown_plan = signup.as_ref().is_err_and(|errors| errors.has("plan"));
    if platform.is_none() && !unknown_plan {
        if !app.config.auth.signup_enabled {
            return Err(AppError::forbidden("public sign-up is disabled"));
        }
        if body
            .plan
            .as_deref()
            .is_some_and(|p| p != Plan::Free.as_str())
        {
            return Err(AppError::forbidden(
                "only platform operators can choose a paid plan",
            ));
        }
    }
    let signup = signup?;
    // The whole body, password included: a replay needs the very same request.
    let fingerprint = onboarding::fingerprint(
        &app.jwt
            .derive_secret(onboarding::IDEMPOTENCY_SECRET_PURPOSE),
        &serde_json::to_vec(&body).map_err(anyhow::Error::from)?,
    );
    let first_name = body.admin.first_name;
    let last_name = body.admin.last_name;
    let idempotency_key = headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 255)
                .ok_or_else(|| {
                    AppError::invalid_field(
                        "Idempotency-Key",
                        "must be 1 to 255 visible characters",
                    )
                })
        })
        .transpose()?;
    let onboarded = onboarding::onboard(
        &app.tenant_db,
        &app.issuer,
        &app.mailer,
        NewTenant {
            name: signup.name,
            slug: signup.slug,
            plan: signup.plan,
            admin_email: signup.admin_email,
            admin_password: signup.admin_password,
            admin_first_name: first_name,
            admin_last_name: last_name,
            fingerprint,
        },
        platform.map(Principal::actor),
        idempotency_key,
        &client,
    )
    .await?;
    let replayed = [(
        HeaderName::from_static("idempotent-replayed"),
        HeaderValue::from_static(if onboarded.replayed { "true" } else { "false" }),
    )];
    Ok((StatusCode::CREATED, replayed, Json(onboarded)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantListParams {
    /// `provisioning`, `active`, `suspended` or `deleted`.
    pub status: Option<String>,
    /// `free`, `standard` or `premium`.
    pub plan: Option<Plan>,
    /// 1 to 100; default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(schema_with = crate::http::pagination::cursor_schema)]
    pub cursor: Option<String>,
}

/// Every tenant (platform operators).
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", params(TenantListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Tenants, newest first", body = Paginated<Tenant>),
        (status = 403, description = "Not a platform operator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(app): State<AppState>,
    AppQuery(params): AppQuery<TenantListParams>,
) -> AppResult<Json<Paginated<Tenant>>> {
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .page()?;
    if let Some(status) = &params.status
        && !["provisioning", "active", "suspended", "deleted"].contains(&status.as_str())
    {
        return Err(AppError::invalid_field("status", "unknown status"));
    }
    let filter = TenantFilter {
        status: params.status,
        plan: params.plan.map(|p| p.as_str().to_owned()),
    };
    let rows = tenants::list(&app.db, &filter, page.before, page.fetch()).await?;
    Ok(Json(Paginated::new(rows, page, |t| t.id)))
}

/// The caller's own tenant.
#[utoipa::path(get, path = "/api/v1/tenants/current", tag = "tenants",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The caller's tenant", body = Tenant)))]
pub async fn current(principal: crate::auth::principal::TenantPrincipal) -> Json<Tenant> {
    Json(Tenant::clone(&principal.tenant))
}

/// The tenant `id` as the caller may see it: platform operators see any, a tenant
/// principal only its own (another tenant's id is 404, like one that does not exist).
/// A tenant principal's own tenant was loaded when it authenticated: no second read.
pub(crate) async fn visible<P>(
    app: &AppState,
    caller: &GrantedOrPlatform<P>,
    id: Uuid,
) -> AppResult<Tenant> {
    match caller.tenant() {
        Some(p) if p.tenant_id() == id => Ok(Tenant::clone(&p.tenant)),
        Some(_) => Err(AppError::not_found()),
        None => tenants::find(&app.db, id)
            .await?
            .ok_or_else(AppError::not_found),
    }
}

/// One tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{id}", tag = "tenants", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The tenant", body = Tenant),
        (status = 404, description = "No such tenant (or another tenant's)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(app): State<AppState>,
    principal: GrantedOrPlatform<needs::TenantRead>,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<Json<Tenant>> {
    Ok(Json(visible(&app, &principal, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateTenant {
    /// 1 to 200 characters, not blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: Option<String>,
    /// Replaces the settings object: at most 16 KiB as JSON. `self_registration`, when
    /// present, is `{enabled, allowed_email_domains?}`; other keys are the tenant's own.
    #[schema(value_type = Option<SettingsDoc>)]
    pub settings: Option<serde_json::Value>,
    /// Platform operators only.
    pub plan: Option<Plan>,
}

/// A tenant's settings as a request states them (at most 16 KiB as JSON; other keys
/// than these are kept as given).
#[derive(ToSchema)]
#[schema(as = TenantSettings)]
#[expect(
    dead_code,
    reason = "documents the schema; the value is checked by TenantSettings"
)]
pub struct SettingsDoc {
    /// Off unless the tenant opts in.
    self_registration: Option<SelfRegistration>,
}

/// Change a tenant's name or settings (`tenant:update`), or its plan (platform).
#[utoipa::path(patch, path = "/api/v1/tenants/{id}", tag = "tenants", params(("id" = Uuid, Path)),
    request_body = UpdateTenant, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Updated", body = Tenant),
        (status = 403, description = "Plan changes are for platform operators", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update(
    State(app): State<AppState>,
    principal: GrantedOrPlatform<needs::TenantUpdate>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<UpdateTenant>,
) -> AppResult<Json<Tenant>> {
    visible(&app, &principal, id).await?;
    if body.plan.is_some() && !principal.is_platform() {
        return Err(AppError::forbidden("only platform operators change plans"));
    }
    let mut errors = Vec::new();
    let name = body
        .name
        .as_deref()
        .map(|n| name("name", n))
        .transpose()
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    let settings = body
        .settings
        .map(TenantSettings::parse)
        .transpose()
        .map_err(|e| errors.extend(e))
        .ok()
        .flatten();
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let changes = TenantChanges {
        name,
        settings,
        plan: body.plan,
    };
    let tenant = tenants::manage::update(&app.db, id, changes, &principal, &client).await?;
    app.invalidations.invalidate(Change::Tenant(id)).await;
    Ok(Json(tenant))
}

/// Delete a tenant: status `deleted` at once (its tokens and keys stop working), the
/// schema is purged in the background.
#[utoipa::path(delete, path = "/api/v1/tenants/{id}", tag = "tenants", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Deleted; purge under way", body = Tenant),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    State(app): State<AppState>,
    principal: GrantedOrPlatform<needs::TenantDelete>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<(StatusCode, Json<Tenant>)> {
    visible(&app, &principal, id).await?;
    // The tenant's own audit log goes with its schema: `tenant.deleted` is recorded in
    // platform.audit_logs, in the same transaction.
    let tenant = tenants::manage::mark_deleted(&app.db, id, &principal, &client).await?;
    app.invalidations.invalidate(Change::Tenant(id)).await;
    tracing::info!(tenant_id = %id, actor = %principal.actor(), "tenant deleted; purging");
    // The purge is a job: it survives a restart, and should this push fail the
    // reconciler enqueues it for any deleted tenant whose schema is still there.
    if let Err(e) = app
        .jobs
        .push(crate::jobs::JobMessage::tenant_purge(id), None, None)
        .await
    {
        tracing::warn!(tenant_id = %id, error = %format!("{e:#}"), "could not enqueue the purge; the reconciler will");
    }
    Ok((StatusCode::ACCEPTED, Json(tenant)))
}

async fn set_status(
    app: &AppState,
    principal: &Principal,
    client: &ClientInfo,
    id: Uuid,
    change: Lifecycle,
) -> AppResult<Json<Tenant>> {
    let tenant = tenants::set_status(&app.db, id, change, principal.actor(), client).await?;
    app.invalidations.invalidate(Change::Tenant(id)).await;
    Ok(Json(tenant))
}

/// Suspend a tenant (platform): its users and keys get 403 `TENANT_SUSPENDED`.
#[utoipa::path(post, path = "/api/v1/tenants/{id}/suspend", tag = "tenants", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Suspended", body = Tenant),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn suspend(
    State(app): State<AppState>,
    principal: Principal,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<Json<Tenant>> {
    set_status(&app, &principal, &client, id, Lifecycle::Suspend).await
}

/// Reactivate a suspended tenant (platform).
#[utoipa::path(post, path = "/api/v1/tenants/{id}/activate", tag = "tenants", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Active", body = Tenant),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn activate(
    State(app): State<AppState>,
    principal: Principal,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<Json<Tenant>> {
    set_status(&app, &principal, &client, id, Lifecycle::Activate).await
}
