//! Every route of the service and who may call it, on one screen.
//!
//! Each API route names its [`Access`] here; [`access::guard`] checks it (authentication,
//! tenant, permission) before the handler runs, and the handler's `Granted<P>` extractor
//! answers 500 unless `P` is the permission named here. `tests/api/routes.rs` fails when
//! a route is not public by intent and names neither a permission nor a principal kind;
//! `tests/api/proof.rs` when a handler asks for another permission than its route's.

use axum::{
    Router,
    extract::DefaultBodyLimit,
    handler::Handler,
    http::Method,
    middleware::from_fn_with_state,
    routing::{MethodFilter, get, on},
};

use super::{
    access::{self, Access},
    api, ops,
};
use crate::{app::AppState, rbac::Permission as P};

/// One route: method, path template and access rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

/// Collects API routes with their access rules (the table alone without a state).
struct Api {
    state: Option<AppState>,
    router: Router<AppState>,
    table: Vec<RouteInfo>,
}

impl Api {
    /// Adds a route behind [`access::guard`]: access control, then the rate limit, then
    /// metering, then the handler.
    fn at<H, T>(mut self, method: Method, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        if let Some(state) = &self.state {
            let filter = MethodFilter::try_from(method.clone()).expect("a routable method");
            let guarded = on(filter, handler)
                .route_layer(from_fn_with_state((state.clone(), access), access::guard));
            self.router = self.router.route(path, guarded);
        }
        self.table.push(RouteInfo {
            method: method_name(&method),
            path,
            access,
        });
        self
    }
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

/// The API routes and their table.
pub fn api(state: &AppState) -> (Router<AppState>, Vec<RouteInfo>) {
    let api = declare(Api {
        state: Some(state.clone()),
        router: Router::new(),
        table: Vec::new(),
    });
    (api.router, api.table)
}

/// The API routes' table alone (for the OpenAPI document).
pub fn table() -> Vec<RouteInfo> {
    declare(Api {
        state: None,
        router: Router::new(),
        table: Vec::new(),
    })
    .table
}

/// Every API route with its access rule, one line each.
#[rustfmt::skip]
fn declare(api: Api) -> Api {
    use Access::*;
    use Method as M;
    api
        // Authentication
        .at(M::GET,    "/.well-known/jwks.json",                 Public,                 api::auth::jwks)
        .at(M::POST,   "/api/v1/auth/register",                  Public,                 api::auth::register)
        .at(M::POST,   "/api/v1/auth/login",                     Public,                 api::auth::login)
        .at(M::POST,   "/api/v1/auth/refresh",                   Public,                 api::auth::refresh)
        .at(M::POST,   "/api/v1/auth/logout",                    BeforeMfa,              api::auth::logout)
        .at(M::POST,   "/api/v1/auth/password-reset-request",    Public,                 api::auth::password_reset_request)
        .at(M::POST,   "/api/v1/auth/password-reset",            Public,                 api::auth::password_reset)
        .at(M::POST,   "/api/v1/auth/verify-email",              Public,                 api::auth::verify_email)
        .at(M::GET,    "/api/v1/auth/me",                        BeforeMfa,              api::auth::me)
        .at(M::POST,   "/api/v1/admin/login",                    Public,                 api::auth::admin_login)
        // Invitations, MFA, sessions
        .at(M::POST,   "/api/v1/auth/accept-invitation",         Public,                 api::invitations::accept)
        .at(M::POST,   "/api/v1/auth/mfa/totp/enroll",           BeforeMfa,              api::mfa::enroll)
        .at(M::POST,   "/api/v1/auth/mfa/totp/confirm",          BeforeMfa,              api::mfa::confirm)
        .at(M::DELETE, "/api/v1/auth/mfa",                       AnyTenantPrincipal,     api::mfa::remove)
        .at(M::POST,   "/api/v1/auth/mfa/verify",                Public,                 api::mfa::verify)
        .at(M::GET,    "/api/v1/auth/sessions",                  AnyTenantPrincipal,     api::auth_sessions::list)
        .at(M::DELETE, "/api/v1/auth/sessions/{id}",             AnyTenantPrincipal,     api::auth_sessions::end)
        .at(M::GET,    "/api/v1/invitations",                    Tenant(P::UsersRead),   api::invitations::list)
        .at(M::POST,   "/api/v1/invitations",                    Tenant(P::UsersCreate), api::invitations::create)
        .at(M::DELETE, "/api/v1/invitations/{id}",               Tenant(P::UsersCreate), api::invitations::revoke)
        .at(M::POST,   "/api/v1/invitations/{id}/resend",        Tenant(P::UsersCreate), api::invitations::resend)
        // Tenants
        .at(M::POST,   "/api/v1/tenants",                        PublicOrPlatform,       api::tenants::create)
        .at(M::GET,    "/api/v1/tenants",                        Platform,               api::tenants::list)
        .at(M::GET,    "/api/v1/tenants/current",                AnyTenantPrincipal,     api::tenants::current)
        .at(M::GET,    "/api/v1/tenants/{id}",                   TenantOrPlatform(P::TenantRead),   api::tenants::get)
        .at(M::PATCH,  "/api/v1/tenants/{id}",                   TenantOrPlatform(P::TenantUpdate), api::tenants::update)
        .at(M::DELETE, "/api/v1/tenants/{id}",                   TenantOrPlatform(P::TenantDelete), api::tenants::delete)
        .at(M::POST,   "/api/v1/tenants/{id}/suspend",           Platform,               api::tenants::suspend)
        .at(M::POST,   "/api/v1/tenants/{id}/activate",          Platform,               api::tenants::activate)
        .at(M::GET,    "/api/v1/tenants/{id}/usage",             TenantOrPlatform(P::UsageRead),    api::usage::tenant_usage)
        .at(M::PUT,    "/api/v1/tenants/{id}/rate-limit",        Platform,               api::rate_limits::set)
        .at(M::DELETE, "/api/v1/tenants/{id}/rate-limit",        Platform,               api::rate_limits::remove)
        // Users
        .at(M::GET,    "/api/v1/users",                          Tenant(P::UsersRead),   api::users::list)
        .at(M::POST,   "/api/v1/users",                          Tenant(P::UsersCreate), api::users::create)
        .at(M::GET,    "/api/v1/users/{id}",                     Tenant(P::UsersRead),   api::users::get)
        .at(M::PATCH,  "/api/v1/users/{id}",                     Tenant(P::UsersUpdate), api::users::update)
        .at(M::DELETE, "/api/v1/users/{id}",                     Tenant(P::UsersDelete), api::users::delete)
        .at(M::PUT,    "/api/v1/users/{id}/roles",               Tenant(P::RolesAssign), api::users::set_roles)
        .at(M::DELETE, "/api/v1/users/{id}/mfa",                 Tenant(P::UsersUpdate), api::mfa::reset_user)
        // Roles and permissions
        .at(M::GET,    "/api/v1/permissions",                    AnyTenantPrincipal,     api::roles::catalog)
        .at(M::GET,    "/api/v1/roles",                          Tenant(P::RolesRead),   api::roles::list)
        .at(M::POST,   "/api/v1/roles",                          Tenant(P::RolesManage), api::roles::create)
        .at(M::GET,    "/api/v1/roles/{id}",                     Tenant(P::RolesRead),   api::roles::get)
        .at(M::PATCH,  "/api/v1/roles/{id}",                     Tenant(P::RolesManage), api::roles::update)
        .at(M::DELETE, "/api/v1/roles/{id}",                     Tenant(P::RolesManage), api::roles::delete)
        .at(M::POST,   "/api/v1/roles/{id}/permissions",         Tenant(P::RolesManage), api::roles::add_permission)
        .at(M::DELETE, "/api/v1/roles/{id}/permissions/{permission}", Tenant(P::RolesManage), api::roles::remove_permission)
        // API keys
        .at(M::GET,    "/api/v1/api-keys",                       Tenant(P::ApiKeysRead),   api::api_keys::list)
        .at(M::POST,   "/api/v1/api-keys",                       Tenant(P::ApiKeysManage), api::api_keys::create)
        .at(M::DELETE, "/api/v1/api-keys/{id}",                  Tenant(P::ApiKeysManage), api::api_keys::revoke)
        .at(M::POST,   "/api/v1/api-keys/{id}/rotate",           Tenant(P::ApiKeysManage), api::api_keys::rotate)
        // Resources
        .at(M::GET,    "/api/v1/resources",                      Tenant(P::ResourcesRead),   api::resources::list)
        .at(M::POST,   "/api/v1/resources",                      Tenant(P::ResourcesCreate), api::resources::create)
        .at(M::GET,    "/api/v1/resources/{id}",                 Tenant(P::ResourcesRead),   api::resources::get)
        .at(M::PUT,    "/api/v1/resources/{id}",                 Tenant(P::ResourcesUpdate), api::resources::replace)
        .at(M::PATCH,  "/api/v1/resources/{id}",                 Tenant(P::ResourcesUpdate), api::resources::patch)
        .at(M::DELETE, "/api/v1/resources/{id}",                 Tenant(P::ResourcesDelete), api::resources::delete)
        // Background jobs
        .at(M::GET,    "/api/v1/jobs",                           Tenant(P::JobsRead),    api::jobs::list)
        .at(M::POST,   "/api/v1/jobs",                           Tenant(P::JobsCreate),  api::jobs::create)
        .at(M::GET,    "/api/v1/jobs/{id}",                      Tenant(P::JobsRead),    api::jobs::get)
        .at(M::POST,   "/api/v1/jobs/{id}/cancel",               Tenant(P::JobsCancel),  api::jobs::cancel)
        // Notifications
        .at(M::POST,   "/api/v1/notifications/email",            Tenant(P::NotificationsSend), api::notifications::email)
        .at(M::POST,   "/api/v1/notifications/sms",              Tenant(P::NotificationsSend), api::notifications::sms)
        .at(M::POST,   "/api/v1/notifications/push",             Tenant(P::NotificationsSend), api::notifications::push)
        .at(M::GET,    "/api/v1/notifications/templates",        Tenant(P::NotificationsRead), api::notification_templates::list_templates)
        .at(M::POST,   "/api/v1/notifications/templates",        Tenant(P::NotificationsManageTemplates), api::notification_templates::create_template)
        .at(M::GET,    "/api/v1/notifications/templates/{id}",   Tenant(P::NotificationsRead), api::notification_templates::get_template)
        .at(M::PUT,    "/api/v1/notifications/templates/{id}",   Tenant(P::NotificationsManageTemplates), api::notification_templates::replace_template)
        .at(M::DELETE, "/api/v1/notifications/templates/{id}",   Tenant(P::NotificationsManageTemplates), api::notification_templates::delete_template)
        .at(M::GET,    "/api/v1/notifications/history",          Tenant(P::NotificationsRead), api::notifications::history)
        // Files (the upload route takes bodies up to the largest plan's file size)
        .at(M::GET,    "/api/v1/files",                          Tenant(P::FilesRead),   api::files::list)
        .at(M::POST,   "/api/v1/files",                          Tenant(P::FilesUpload), api::files::upload.layer(DefaultBodyLimit::max(api::files::UPLOAD_BODY_LIMIT)))
        .at(M::POST,   "/api/v1/files/uploads",                  Tenant(P::FilesUpload), api::files::create_upload)
        .at(M::GET,    "/api/v1/files/{id}",                     Tenant(P::FilesRead),   api::files::get)
        .at(M::DELETE, "/api/v1/files/{id}",                     Tenant(P::FilesDelete), api::files::delete)
        .at(M::POST,   "/api/v1/files/{id}/complete",            Tenant(P::FilesUpload), api::files::complete)
        .at(M::GET,    "/api/v1/files/{id}/download",            Tenant(P::FilesRead),   api::files::download)
        // Audit
        .at(M::GET,    "/api/v1/audit-logs",                     Tenant(P::AuditRead),   api::audit::list)
        // Autoscaling
        .at(M::GET,    "/api/v1/scaling",                        Tenant(P::ScalingRead),   api::scaling::status)
        .at(M::PUT,    "/api/v1/scaling/policy",                 Tenant(P::ScalingManage), api::scaling::set_policy)
        .at(M::GET,    "/api/v1/scaling/events",                 Tenant(P::ScalingRead),   api::scaling::events)
        .at(M::POST,   "/api/v1/scaling/simulate",               Tenant(P::ScalingRead),   api::scaling::simulate)
        .at(M::GET,    "/api/v1/admin/scaling",                  Platform,                 api::scaling::admin_list)
        // Usage
        .at(M::GET,    "/api/v1/usage",                          Tenant(P::UsageRead),   api::usage::usage)
        // Webhooks
        .at(M::GET,    "/api/v1/webhooks/event-types",           AnyTenantPrincipal,     api::webhooks::event_types)
        .at(M::GET,    "/api/v1/webhooks/endpoints",             Tenant(P::WebhooksRead),   api::webhooks::list_endpoints)
        .at(M::POST,   "/api/v1/webhooks/endpoints",             Tenant(P::WebhooksManage), api::webhooks::create_endpoint)
        .at(M::GET,    "/api/v1/webhooks/endpoints/{id}",        Tenant(P::WebhooksRead),   api::webhooks::get_endpoint)
        .at(M::PATCH,  "/api/v1/webhooks/endpoints/{id}",        Tenant(P::WebhooksManage), api::webhooks::update_endpoint)
        .at(M::DELETE, "/api/v1/webhooks/endpoints/{id}",        Tenant(P::WebhooksManage), api::webhooks::delete_endpoint)
        .at(M::POST,   "/api/v1/webhooks/endpoints/{id}/rotate-secret", Tenant(P::WebhooksManage), api::webhooks::rotate_secret)
        .at(M::POST,   "/api/v1/webhooks/endpoints/{id}/test",   Tenant(P::WebhooksManage), api::webhooks::test_endpoint)
        .at(M::GET,    "/api/v1/webhooks/messages",              Tenant(P::WebhooksRead),   api::webhooks::list_messages)
        .at(M::GET,    "/api/v1/webhooks/messages/{id}",         Tenant(P::WebhooksRead),   api::webhooks::get_message)
        .at(M::POST,   "/api/v1/webhooks/messages/{id}/retry",   Tenant(P::WebhooksManage), api::webhooks::retry_message)
}

/// Every route: operational ones (public) and the API. The document's (`/openapi.json`,
/// `/docs`) are added by [`super::app`]: the document is built from this table.
pub fn routes(state: &AppState) -> Router<AppState> {
    let router = Router::new()
        .route("/", get(ops::index::index))
        .route("/health", get(ops::health::health))
        .route("/health/live", get(ops::health::live))
        .route("/health/ready", get(ops::health::ready));
    // With a listener of its own (`METRICS_BIND_ADDR`), not here.
    let router = if state.config.telemetry.metrics_bind_addr.is_none() {
        router.route("/metrics", get(ops::metrics::metrics))
    } else {
        router
    };
    router
        // Signed links of the fs storage backend: the signature is the credential.
        .route(
            "/files/{*key}",
            get(api::files::link_get).put(api::files::link_put),
        )
        .merge(api(state).0)
}
