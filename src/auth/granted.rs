//! The proof that the caller holds a permission: what a writing use case takes.
//!
//! A checked permission returns the handle (lldap): [`TenantPrincipal::grant`] checks
//! `P` and answers a [`Granted<P>`], the principal wrapped in a type that names the
//! permission it was checked for. Every service that changes something (creates,
//! updates, deletes, sends, uploads) takes `&Granted<needs::ItsPermission>` rather
//! than the principal, so calling it without the check, or with the check of another
//! permission, does not compile. Handlers get the proof from their extractor
//! (`crate::http::access`), which also refuses, with a 500, a proof of another
//! permission than the one the route declares in the router.

use std::{fmt, marker::PhantomData, ops::Deref};

use uuid::Uuid;

use super::principal::{Actor, Principal, TenantPrincipal};
use crate::{error::AppError, rbac::Need};

/// A tenant principal that holds the permission `P` (a marker of [`crate::rbac::needs`]);
/// only [`TenantPrincipal::grant`] makes one. Derefs to the principal.
pub struct Granted<P> {
    principal: TenantPrincipal,
    // `fn() -> P`: the proof is `Send`/`Sync` whatever the marker.
    _need: PhantomData<fn() -> P>,
}

impl TenantPrincipal {
    /// The proof that this principal holds `P`, else 403.
    pub fn grant<P: Need>(self) -> Result<Granted<P>, AppError> {
        self.require(P::PERMISSION)?;
        Ok(Granted {
            principal: self,
            _need: PhantomData,
        })
    }
}

impl<P> Deref for Granted<P> {
    type Target = TenantPrincipal;

    fn deref(&self) -> &TenantPrincipal {
        &self.principal
    }
}

impl<P> fmt::Debug for Granted<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Granted")
            .field("permission", &std::any::type_name::<P>())
            .field("actor", &self.principal.actor)
            .field("tenant_id", &self.principal.tenant_id())
            .finish()
    }
}

/// The caller of a route open to platform operators and to tenant principals holding
/// `P` (`Access::TenantOrPlatform`): an operator passes without tenant permissions, a
/// tenant principal only with the proof of `P`.
#[derive(Debug)]
pub struct GrantedOrPlatform<P>(Caller<P>);

#[derive(Debug)]
enum Caller<P> {
    Platform { admin_id: Uuid },
    Tenant(Granted<P>),
}

impl<P: Need> GrantedOrPlatform<P> {
    /// An operator as they are; a tenant principal with the proof of `P`, else 403.
    pub fn check(principal: Principal) -> Result<Self, AppError> {
        Ok(Self(match principal {
            Principal::Platform { admin_id, .. } => Caller::Platform { admin_id },
            Principal::Tenant(p) => Caller::Tenant((*p).grant()?),
        }))
    }
}

impl<P> GrantedOrPlatform<P> {
    pub fn actor(&self) -> Actor {
        match &self.0 {
            Caller::Platform { admin_id } => Actor::Platform(*admin_id),
            Caller::Tenant(granted) => granted.actor,
        }
    }

    /// The tenant principal, when the caller is not an operator.
    pub fn tenant(&self) -> Option<&Granted<P>> {
        match &self.0 {
            Caller::Platform { .. } => None,
            Caller::Tenant(granted) => Some(granted),
        }
    }

    pub fn is_platform(&self) -> bool {
        matches!(self.0, Caller::Platform { .. })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        db::TenantScope,
        error::ErrorCode,
        rbac::{Permission, PermissionSet, needs},
        services::tenants::{Plan, Tenant},
    };

    fn key(grants: &[&str]) -> TenantPrincipal {
        let id = Uuid::now_v7();
        let pool = sqlx::PgPool::connect_lazy("postgres://localhost/x").expect("lazy pool");
        TenantPrincipal {
            tenant: Arc::new(Tenant {
                id,
                name: "Acme".into(),
                slug: "acme".into(),
                plan: Plan::Free,
                status: "active".into(),
                settings: serde_json::json!({}),
                created_at: chrono::Utc::now(),
                updated_at: chrono::Utc::now(),
                deleted_at: None,
            }),
            actor: Actor::ApiKey(Uuid::now_v7()),
            roles: Arc::new([]),
            permissions: Arc::new(PermissionSet::from_stored(grants)),
            scope: TenantScope::new(pool, id),
            token: None,
        }
    }

    #[tokio::test]
    async fn the_proof_is_made_only_for_a_held_permission() {
        let granted = key(&["users:*"])
            .grant::<needs::UsersCreate>()
            .expect("held through users:*");
        assert!(granted.permissions.allows(Permission::UsersCreate));
        let refused = key(&["users:read"])
            .grant::<needs::UsersCreate>()
            .expect_err("not held");
        assert_eq!(refused.code(), ErrorCode::Forbidden);
        let caller =
            GrantedOrPlatform::<needs::TenantUpdate>::check(Principal::Tenant(Box::new(key(&[
                "tenant:update",
            ]))))
            .expect("held");
        assert!(!caller.is_platform() && caller.tenant().is_some());
        assert!(matches!(caller.actor(), Actor::ApiKey(_)));
    }
}
