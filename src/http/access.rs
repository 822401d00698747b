//! The access rule every route declares in the router, and the layer that enforces it:
//! authentication, then the tenant context, then the permission, then the limits, before
//! the handler; and the extractors that hand the handler the proof of the route's
//! permission ([`Granted`], [`GrantedOrPlatform`]).

use std::net::IpAddr;

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{StatusCode, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tracing::Span;

use crate::{
    app::AppState,
    auth::{
        authenticate::authenticate,
        granted::{Granted, GrantedOrPlatform},
        principal::{Principal, TenantPrincipal},
    },
    error::{AppError, ErrorCode},
    http::{extract::client_ip, idempotency, limits},
    rbac::{Need, Permission},
    services::rate_limit::Subject,
};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anybody; credentials are not looked at.
    Public,
    /// Anybody; a platform operator's token is recognised (onboarding by operators).
    PublicOrPlatform,
    /// Any authenticated principal: tenant users, API keys and platform operators.
    Authenticated,
    /// As [`Access::Authenticated`], and open to a user whose tenant requires a second
    /// factor the token has not passed (`settings.security.require_mfa`): who am I,
    /// logout and MFA enrolment. Every other route answers such a token 403
    /// `MFA_REQUIRED`.
    BeforeMfa,
    /// Any authenticated tenant principal (user or API key), no particular permission.
    AnyTenantPrincipal,
    /// A tenant principal holding this permission.
    Tenant(Permission),
    /// A platform operator.
    Platform,
    /// A platform operator, or a tenant principal holding this permission (on its own
    /// tenant: handlers answer 404 for another tenant's id).
    TenantOrPlatform(Permission),
}

impl Access {
    pub fn is_public(self) -> bool {
        matches!(self, Access::Public | Access::PublicOrPlatform)
    }

    /// The permission the route names, if any.
    pub fn permission(self) -> Option<Permission> {
        match self {
            Access::Tenant(p) | Access::TenantOrPlatform(p) => Some(p),
            _ => None,
        }
    }
}

/// The one layer of every API route: [`admit`] (authentication, tenant, permission),
/// then [`limits::rate_limit`] (which needs the principal `admit` found), then
/// [`limits::meter`] (so refused requests are not metered), then
/// [`idempotency::honour`] (a retried create answers the first answer), then the handler.
/// One layer rather than four: each `from_fn` layer boxes a future per request.
pub async fn guard(
    State((app, access)): State<(AppState, Access)>,
    req: Request,
    next: Next,
) -> Response {
    match admit(&app, access, req).await {
        Ok(req) => {
            limits::rate_limit(&app, req, |req| {
                limits::meter(&app, req, |req| {
                    idempotency::honour(&app, req, |req| next.run(req))
                })
            })
            .await
        }
        Err(e) => e.into_response(),
    }
}

/// Authenticates the request, checks `access`, and leaves the [`Principal`] and the
/// route's [`Access`] in the request extensions for the later layers and the handler's
/// extractors.
async fn admit(app: &AppState, access: Access, mut req: Request) -> Result<Request, AppError> {
    if access == Access::Public {
        return Ok(req);
    }
    let (headers, extensions) = (req.headers(), req.extensions());
    let client = || client_ip(headers, extensions, &app.config.http.trusted_proxies);
    let principal = match authenticate(&app.authenticator, headers, client).await {
        Ok(principal) => principal,
        Err(e) if e.code().status() == StatusCode::UNAUTHORIZED => {
            return Err(charge_failure(app, client()).await.unwrap_or(e));
        }
        Err(e) => return Err(e),
    };
    let Some(principal) = principal else {
        if access == Access::PublicOrPlatform {
            return Ok(req);
        }
        return Err(AppError::unauthenticated(
            "send 'Authorization: Bearer <token>' or 'X-API-Key: <key>'",
        ));
    };
    let span = Span::current();
    span.record("actor", tracing::field::display(principal.actor()));
    if let Some(tenant) = principal.tenant() {
        span.record("tenant_id", tracing::field::display(tenant.tenant_id()));
    }
    // Public routes that recognise a token (onboarding) stay public.
    if access != Access::BeforeMfa && !access.is_public() {
        second_factor_passed(&principal)?;
    }
    check(access, &principal)?;
    req.extensions_mut().insert(principal);
    req.extensions_mut().insert(access);
    Ok(req)
}

/// Charges a failed authentication (a bearer token or API key that is not valid) to the
/// client address's public bucket, the one of the public routes: invented credentials
/// then meet a 429 like any other flood, instead of an unbounded stream of lookups. The
/// 429 (with the bucket's headers) when the bucket is empty; `None` keeps the 401. A
/// refused client is remembered for a few seconds, and meanwhile its API keys that no
/// cache knows are refused before any lookup.
async fn charge_failure(app: &AppState, ip: Option<IpAddr>) -> Option<AppError> {
    let decision = app.limits.check(Subject::Client(ip)).await?;
    if decision.allowed {
        return None;
    }
    if let Some(ip) = ip {
        app.auth.refuse_client(ip);
    }
    Some(decision.rejection(
        "too many requests with credentials that are not valid from this address; retry after the time in Retry-After",
    ))
}

/// A user's token in a tenant that requires MFA must carry `otp` in its `amr`. API keys
/// (machines, no interactive login) and platform operators are not concerned.
fn second_factor_passed(principal: &Principal) -> Result<(), AppError> {
    let Principal::Tenant(p) = principal else {
        return Ok(());
    };
    match &p.token {
        Some(token) if !token.second_factor && p.tenant.requires_mfa() => Err(AppError::new(
            ErrorCode::MfaRequired,
            "this tenant requires multi-factor authentication: enrol (POST \
             /api/v1/auth/mfa/totp/enroll) and log in again with a code",
        )),
        _ => Ok(()),
    }
}

fn check(access: Access, principal: &Principal) -> Result<(), AppError> {
    match (access, principal) {
        (
            Access::Public | Access::PublicOrPlatform | Access::Authenticated | Access::BeforeMfa,
            _,
        ) => Ok(()),
        (Access::Platform | Access::TenantOrPlatform(_), Principal::Platform { .. }) => Ok(()),
        (Access::Platform, Principal::Tenant(_)) => {
            Err(AppError::forbidden("this route is for platform operators"))
        }
        (Access::AnyTenantPrincipal, Principal::Tenant(_)) => Ok(()),
        (Access::Tenant(p) | Access::TenantOrPlatform(p), Principal::Tenant(t)) => t.require(p),
        (Access::AnyTenantPrincipal | Access::Tenant(_), Principal::Platform { .. }) => Err(
            AppError::forbidden("this route acts inside a tenant; platform tokens cannot use it"),
        ),
    }
}

/// 500 unless the route declares `P`: a handler that asks for the proof of another
/// permission than its route's is a programming error, not the caller's.
fn declared<P: Need>(parts: &Parts) -> Result<(), AppError> {
    let declared = parts
        .extensions
        .get::<Access>()
        .and_then(|a| a.permission());
    if declared == Some(P::PERMISSION) {
        return Ok(());
    }
    Err(AppError::internal(anyhow::anyhow!(
        "the handler of {} {} asks for the proof of {} but its route declares {}",
        parts.method,
        parts.uri.path(),
        P::PERMISSION,
        declared.map_or_else(|| "no permission".to_owned(), |p| p.to_string()),
    )))
}

/// The proof that the tenant principal holds the route's permission `P`: 403 for a
/// principal without it (the guard already said so), 500 when the route declares
/// another permission.
impl<P: Need, S: Send + Sync> FromRequestParts<S> for Granted<P> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        declared::<P>(parts)?;
        TenantPrincipal::from_request_parts(parts, state)
            .await?
            .grant()
    }
}

/// As [`Granted`], for `TenantOrPlatform(P)` routes: a platform operator passes.
impl<P: Need, S: Send + Sync> FromRequestParts<S> for GrantedOrPlatform<P> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        declared::<P>(parts)?;
        GrantedOrPlatform::check(Principal::from_request_parts(parts, state).await?)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Request;
    use uuid::Uuid;

    use super::*;
    use crate::{auth::principal::PresentedToken, rbac::needs};

    fn parts(access: Option<Access>, principal: Option<Principal>) -> Parts {
        let mut req = Request::post("/api/v1/users").body(()).expect("request");
        if let Some(access) = access {
            req.extensions_mut().insert(access);
        }
        if let Some(principal) = principal {
            req.extensions_mut().insert(principal);
        }
        req.into_parts().0
    }

    fn operator() -> Principal {
        Principal::Platform {
            admin_id: Uuid::now_v7(),
            token: PresentedToken {
                jti: Uuid::now_v7(),
                exp: 0,
                session: None,
                second_factor: true,
            },
        }
    }

    /// A handler asking for the proof of another permission than its route declares (or
    /// on a route that declares none) is answered 500, the log naming both, before the
    /// caller is looked at. (A tenant principal's proof is exercised through the API:
    /// `tests/api/proof.rs`.)
    #[tokio::test]
    async fn a_proof_of_another_permission_than_the_routes_is_a_500() {
        let mut p = parts(Some(Access::Tenant(Permission::UsersRead)), None);
        let e = Granted::<needs::UsersCreate>::from_request_parts(&mut p, &())
            .await
            .expect_err("another permission");
        assert_eq!(e.code(), ErrorCode::Internal);
        let logged = e.to_string();
        assert!(
            logged.contains("users:create") && logged.contains("declares users:read"),
            "{logged}"
        );
        let mut p = parts(
            Some(Access::TenantOrPlatform(Permission::TenantUpdate)),
            Some(operator()),
        );
        let e = GrantedOrPlatform::<needs::TenantDelete>::from_request_parts(&mut p, &())
            .await
            .expect_err("another permission");
        assert_eq!(e.code(), ErrorCode::Internal);
        for access in [Some(Access::AnyTenantPrincipal), None] {
            let mut p = parts(access, Some(operator()));
            let e = Granted::<needs::UsersRead>::from_request_parts(&mut p, &())
                .await
                .expect_err("no permission declared");
            assert_eq!(e.code(), ErrorCode::Internal, "{access:?}");
        }
    }

    /// The route's own permission hands over to the caller: no principal is 401; an
    /// operator passes a `TenantOrPlatform` route and has no tenant proof (403).
    #[tokio::test]
    async fn the_routes_permission_hands_over_to_the_caller() {
        let mut p = parts(Some(Access::Tenant(Permission::UsersCreate)), None);
        let e = Granted::<needs::UsersCreate>::from_request_parts(&mut p, &())
            .await
            .expect_err("nobody");
        assert_eq!(e.code(), ErrorCode::Unauthenticated);

        let declared = Some(Access::TenantOrPlatform(Permission::TenantUpdate));
        let mut p = parts(declared, Some(operator()));
        let caller = GrantedOrPlatform::<needs::TenantUpdate>::from_request_parts(&mut p, &())
            .await
            .expect("an operator");
        assert!(caller.is_platform() && caller.tenant().is_none());
        let mut p = parts(declared, Some(operator()));
        let e = Granted::<needs::TenantUpdate>::from_request_parts(&mut p, &())
            .await
            .expect_err("an operator has no tenant proof");
        assert_eq!(e.code(), ErrorCode::Forbidden);
    }
}
