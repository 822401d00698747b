//! The OpenAPI document and Swagger UI (served from files compiled into the binary, so
//! no network access is needed at build or run time).

use std::sync::{Arc, LazyLock};

use axum::{
    Router,
    body::Body,
    extract::Path,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_swagger_ui::Config;

use crate::{
    app::AppState,
    error::{AppError, ErrorCode, FieldError, Problem},
    http::{api, api::api_keys::ExactlyOneKeyAccess, ops},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tenantry",
        description = "Multi-tenant SaaS backend platform. Errors are RFC 9457 \
            `application/problem+json` documents (schema `Problem`). No text may hold NUL \
            (`\\u0000`): a JSON body holding it anywhere, even in a field the operation \
            ignores, is refused with 422 (field `body`), a query parameter with `%00` too.",
    ),
    paths(
        ops::index::index,
        ops::health::health,
        ops::health::live,
        ops::health::ready,
        ops::metrics::metrics,
        api::auth::jwks,
        api::auth::register,
        api::auth::login,
        api::auth::refresh,
        api::auth::logout,
        api::auth::password_reset_request,
        api::auth::password_reset,
        api::auth::verify_email,
        api::auth::me,
        api::auth::admin_login,
        api::invitations::accept,
        api::mfa::enroll,
        api::mfa::confirm,
        api::mfa::remove,
        api::mfa::verify,
        api::auth_sessions::list,
        api::auth_sessions::end,
        api::invitations::list,
        api::invitations::create,
        api::invitations::revoke,
        api::invitations::resend,
        api::mfa::reset_user,
        api::tenants::create,
        api::tenants::list,
        api::tenants::current,
        api::tenants::get,
        api::tenants::update,
        api::tenants::delete,
        api::tenants::suspend,
        api::tenants::activate,
        api::usage::tenant_usage,
        api::rate_limits::set,
        api::rate_limits::remove,
        api::users::list,
        api::users::create,
        api::users::get,
        api::users::update,
        api::users::delete,
        api::users::set_roles,
        api::api_keys::list,
        api::api_keys::create,
        api::api_keys::revoke,
        api::api_keys::rotate,
        api::roles::catalog,
        api::roles::list,
        api::roles::create,
        api::roles::get,
        api::roles::update,
        api::roles::delete,
        api::roles::add_permission,
        api::roles::remove_permission,
        api::resources::list,
        api::resources::create,
        api::resources::get,
        api::resources::replace,
        api::resources::patch,
        api::resources::delete,
        api::jobs::create,
        api::jobs::list,
        api::jobs::get,
        api::jobs::cancel,
        api::notifications::email,
        api::notifications::sms,
        api::notifications::push,
        api::notification_templates::list_templates,
        api::notification_templates::create_template,
        api::notification_templates::get_template,
        api::notification_templates::replace_template,
        api::notification_templates::delete_template,
        api::notifications::history,
        api::files::upload,
        api::files::create_upload,
        api::files::complete,
        api::files::list,
        api::files::get,
        api::files::download,
        api::files::delete,
        api::files::link_get,
        api::files::link_put,
        api::audit::list,
        api::scaling::status,
        api::scaling::set_policy,
        api::scaling::events,
        api::scaling::simulate,
        api::scaling::admin_list,
        api::usage::usage,
    ),
    components(schemas(Problem, FieldError, ErrorCode)),
    modifiers(&SecuritySchemes, &CommonErrors),
    tags(
        (name = "operations", description = "Health, metrics and documentation"),
        (name = "auth", description = "Login, tokens and account flows"),
        (name = "platform", description = "Platform operators"),
        (name = "tenants", description = "Onboarding and tenant lifecycle"),
        (name = "users", description = "The tenant's users"),
        (name = "invitations", description = "Inviting users: a mailed single-use token, accepted at /api/v1/auth/accept-invitation"),
        (name = "api-keys", description = "The tenant's API keys"),
        (name = "roles", description = "Permissions catalog and the tenant's roles"),
        (name = "resources", description = "The tenant's own data (example business object)"),
        (name = "audit", description = "The tenant's audit log"),
        (name = "scaling", description = "The tenant's autoscaling: capacity, policy, events, simulation"),
        (name = "usage", description = "Metered usage per tenant"),
        (name = "jobs", description = "Background jobs"),
        (name = "notifications", description = "Email, SMS and push sends (SNS), templates and the send history"),
        (name = "files", description = "The tenant's stored files (S3 or the filesystem) and signed links"),
    )
)]
struct ApiDoc;

/// Declares both ways to authenticate: a bearer JWT and an `X-API-Key`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("Access token from /api/v1/auth/login"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "Tenant API key (`tnt_<env>_...`); the key alone identifies its tenant",
            ))),
        );
    }
}

/// Documents the errors every operation can answer besides its own: 500 everywhere; 401
/// and 403 where credentials are required; 400, 413, 415 and 422 where a body or
/// parameters are parsed. All are `application/problem+json` documents.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            // Every API route runs the rate limiter (operational ones do not).
            let limited = path.starts_with("/api/") || path.starts_with("/.well-known/");
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                add_common_errors(operation, limited);
            }
        }
    }
}

fn add_common_errors(operation: &mut utoipa::openapi::path::Operation, limited: bool) {
    let authenticated = operation.security.as_ref().is_some_and(|requirements| {
        requirements.iter().all(|r| {
            serde_json::to_value(r).is_ok_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
        })
    });
    let has_body = operation.request_body.is_some();
    let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let mut errors = vec![("500", "Unexpected error (no internal detail is shown)")];
    if authenticated {
        errors.push(("401", "Missing, invalid, expired or revoked credentials"));
        errors.push(("403", "Not permitted, or the tenant is suspended"));
    }
    if has_body {
        errors.push(("400", "The body is not valid JSON"));
        errors.push(("413", "The body is larger than the limit"));
        errors.push(("415", "The body is not application/json"));
    }
    if has_body || has_parameters {
        errors.push(("422", "Invalid fields or parameters (named in `errors`)"));
    }
    if limited {
        errors.push((
            "429",
            "RATE_LIMITED: over the tenant's, the client address's or the global limit. \
             `Retry-After` says when to retry; every answer of the route carries \
             `RateLimit-Policy`, `RateLimit` and `X-RateLimit-Limit/-Remaining/-Reset`",
        ));
    }
    let problem = utoipa::openapi::ContentBuilder::new()
        .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
        .build();
    for (status, description) in errors {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| {
                utoipa::openapi::ResponseBuilder::new()
                    .description(description)
                    .content("application/problem+json", problem.clone())
                    .build()
                    .into()
            });
    }
}

/// The OpenAPI document (3.1) of every route, with the schema names a generated client
/// needs (see [`client_names`](crate::http::client_names)) and the NUL rule stated (see
/// [`no_nul`](crate::http::no_nul); utoipa's types cannot hold all of it, hence JSON).
pub fn openapi() -> serde_json::Value {
    let mut webhooks = api::webhooks::WebhooksApi::openapi();
    CommonErrors.modify(&mut webhooks);
    let mut doc = ApiDoc::openapi().merge_from(webhooks);
    crate::http::client_names::apply(&mut doc);
    let mut doc = serde_json::to_value(doc).expect("the OpenAPI document serializes");
    crate::http::request_shapes::apply(&mut doc);
    crate::http::no_nul::apply(&mut doc);
    ExactlyOneKeyAccess::apply(&mut doc);
    crate::http::contract::exactly_one(&mut doc, "VerifyMfa", "code", "recovery_code");
    api::webhooks::state_event_types(&mut doc);
    crate::http::contract::apply(&mut doc);
    doc
}

static OPENAPI_JSON: LazyLock<String> = LazyLock::new(|| {
    serde_json::to_string_pretty(&openapi()).expect("the OpenAPI document serializes")
});

static SWAGGER_CONFIG: LazyLock<Arc<Config<'static>>> =
    LazyLock::new(|| Arc::new(Config::new(["/openapi.json"])));

/// `/openapi.json` and Swagger UI under `/docs`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(swagger_index))
        .route("/docs/", get(swagger_index))
        .route("/docs/{*file}", get(swagger_file))
}

/// The served document's text (built once).
pub fn openapi_text() -> &'static str {
    &OPENAPI_JSON
}

async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_text())
}

/// The Swagger page itself, at `/docs` as well as `/docs/`: a `<base>` makes its
/// relative asset links resolve under `/docs/` either way.
async fn swagger_index() -> Result<Response, AppError> {
    let page = swagger_asset("index.html")?;
    let html = String::from_utf8_lossy(&page.bytes).replacen(
        "<head>",
        "<head>\n    <base href=\"/docs/\">",
        1,
    );
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

async fn swagger_file(Path(file): Path<String>) -> Result<Response, AppError> {
    if file.is_empty() || file == "index.html" {
        return swagger_index().await;
    }
    let asset = swagger_asset(&file)?;
    let mut response = Response::new(Body::from(asset.bytes.into_owned()));
    let headers = response.headers_mut();
    if let Ok(content_type) = HeaderValue::from_str(&asset.content_type) {
        headers.insert(header::CONTENT_TYPE, content_type);
    }
    if asset.gzpipped {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(response)
}

fn swagger_asset(file: &str) -> Result<utoipa_swagger_ui::SwaggerFile<'static>, AppError> {
    match utoipa_swagger_ui::serve(file, SWAGGER_CONFIG.clone()) {
        Ok(Some(asset)) => Ok(asset),
        Ok(None) => Err(AppError::new(
            ErrorCode::NotFound,
            "no such documentation file",
        )),
        Err(e) => Err(AppError::internal(anyhow::anyhow!(
            "failed to serve swagger asset: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_is_openapi_3_1_with_both_security_schemes() {
        let doc: serde_json::Value =
            serde_json::from_str(&OPENAPI_JSON).expect("the document is JSON");
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1"))
        );
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["api_key"]["name"], "X-API-Key");
        assert_eq!(schemes["api_key"]["in"], "header");
    }
}
