//! Who is calling: the authenticated principal, and the extractors handlers use to get it.

use std::sync::Arc;

use axum::{extract::FromRequestParts, http::request::Parts};
use uuid::Uuid;

pub use crate::domain::Actor;
use crate::{
    db::TenantScope,
    error::AppError,
    rbac::{Permission, PermissionSet},
    services::tenants::Tenant,
};

/// The access token a request came with, so logout can retire it.
#[derive(Debug, Clone)]
pub struct PresentedToken {
    pub jti: Uuid,
    pub exp: i64,
    pub session: Option<Uuid>,
    /// The token was issued after a second factor (`amr` holds `otp`).
    pub second_factor: bool,
}

impl PresentedToken {
    pub fn of(claims: &crate::auth::jwt::Claims) -> Self {
        Self {
            jti: claims.jti,
            exp: claims.exp,
            session: claims.sid,
            second_factor: claims.amr.iter().any(|m| m == "otp"),
        }
    }
}

/// A user or API key acting inside its tenant, with the scope that reaches only that
/// tenant's tables.
#[derive(Debug, Clone)]
pub struct TenantPrincipal {
    /// Shared with the per-replica tenant cache: no copy per request.
    pub tenant: Arc<Tenant>,
    pub actor: Actor,
    pub roles: Arc<[String]>,
    pub permissions: Arc<PermissionSet>,
    pub scope: TenantScope,
    pub token: Option<PresentedToken>,
}

impl TenantPrincipal {
    pub fn tenant_id(&self) -> Uuid {
        self.tenant.id
    }

    /// The principal as the owner-model policy sees it.
    pub fn authority(&self) -> crate::rbac::owner_model::ActorView<'_> {
        crate::rbac::owner_model::ActorView {
            user_id: match self.actor {
                Actor::User(id) => Some(id),
                _ => None,
            },
            permissions: &self.permissions,
        }
    }

    /// `Ok` when the principal holds `permission`, else 403.
    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        if self.permissions.allows(permission) {
            Ok(())
        } else {
            Err(AppError::forbidden(format!(
                "this action needs the {permission} permission"
            )))
        }
    }
}

/// Any authenticated caller.
#[derive(Debug, Clone)]
pub enum Principal {
    Tenant(Box<TenantPrincipal>),
    /// A platform operator (token with `scope: "platform"`).
    Platform {
        admin_id: Uuid,
        token: PresentedToken,
    },
}

impl Principal {
    pub fn actor(&self) -> Actor {
        match self {
            Principal::Tenant(p) => p.actor,
            Principal::Platform { admin_id, .. } => Actor::Platform(*admin_id),
        }
    }

    pub fn tenant(&self) -> Option<&TenantPrincipal> {
        match self {
            Principal::Tenant(p) => Some(p),
            Principal::Platform { .. } => None,
        }
    }

    pub fn is_platform(&self) -> bool {
        matches!(self, Principal::Platform { .. })
    }
}

// The extractors clone the principal: its tenant, roles and permissions are shared
// (`Arc`), so a clone is a few reference counts and the scope's pool handle.

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| AppError::unauthenticated("authentication is required"))
    }
}

/// The principal when there is one (routes open to the public and to operators).
#[derive(Debug, Clone)]
pub struct MaybePrincipal(pub Option<Principal>);

impl<S: Send + Sync> FromRequestParts<S> for MaybePrincipal {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<Principal>().cloned()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TenantPrincipal {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Principal>() {
            Some(Principal::Tenant(p)) => Ok((**p).clone()),
            Some(Principal::Platform { .. }) => Err(AppError::forbidden(
                "this route acts inside a tenant; platform tokens cannot use it",
            )),
            None => Err(AppError::unauthenticated("authentication is required")),
        }
    }
}
