//! The owner model: may this actor do this to that target? Every such rule is here.
//!
//! Route permissions (`users:delete`, …) are checked by the access layer before a
//! handler runs; this module answers the questions about the *target*:
//!
//! 1. **Grant ⊆ held.** Nobody grants a role, creates a role, adds a permission to a
//!    role or creates an API key with a permission they do not hold (403).
//! 2. **Target ⊆ actor.** A principal acts on another user (update, deactivate, delete,
//!    set roles) or API key (rotate, revoke) only when every permission of the target is
//!    one it holds itself (403): a manager cannot demote, remove or take over an admin,
//!    nor rotate an admin's key to obtain it. The same holds for changing or deleting a
//!    role: its permissions must be within the actor's.
//! 3. **Not yourself.** Nobody deactivates or deletes themselves (409).
//! 4. **Last admin.** The last active admin of a tenant cannot be deleted, deactivated or
//!    lose the `admin` role (409).
//! 5. **Roles in use.** A role that live API keys use cannot be deleted (409); keys
//!    reference roles by id, so renaming a role never changes a key.
//! 6. System roles cannot be changed or deleted (403).
//!
//! Two proofs make a change. The route's permission is checked by the access layer,
//! which hands the handler a `Granted<P>` (`crate::auth::granted`): the service of the
//! use case takes that proof instead of the principal. Inside its transaction the
//! service gathers the facts ([`UserTarget`], [`KeyTarget`], [`RoleTarget`]), asks
//! here, and hands the returned [`Cleared`] proof to the write, which takes nothing
//! else: a change without a check does not compile. A cleared action on a target
//! carries the target's id; a cleared [`grant`] carries the grants it cleared (the
//! resolved roles of a new user, the access of a new key, the permissions of a role),
//! and a cleared [`set_user_roles`] the roles as well, so what is written is what was
//! checked.

use std::marker::PhantomData;

use uuid::Uuid;

use super::{Permission, PermissionSet};
use crate::error::{AppError, ErrorCode};

/// What is done to a user, an API key or a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    UpdateUser,
    DeactivateUser,
    DeleteUser,
    SetUserRoles,
    /// Turning off a user's MFA (a lost authenticator).
    ResetUserMfa,
    RotateKey,
    RevokeKey,
    UpdateRole,
    DeleteRole,
}

impl Action {
    /// The route permission the action needs (also checked by the access layer).
    pub fn permission(self) -> Permission {
        match self {
            Action::UpdateUser | Action::DeactivateUser | Action::ResetUserMfa => {
                Permission::UsersUpdate
            }
            Action::DeleteUser => Permission::UsersDelete,
            Action::SetUserRoles => Permission::RolesAssign,
            Action::RotateKey | Action::RevokeKey => Permission::ApiKeysManage,
            Action::UpdateRole | Action::DeleteRole => Permission::RolesManage,
        }
    }
}

/// Who acts: a user or an API key, with what it holds.
#[derive(Debug, Clone, Copy)]
pub struct ActorView<'a> {
    /// The acting user's id (`None` for an API key).
    pub user_id: Option<Uuid>,
    pub permissions: &'a PermissionSet,
}

/// A user as the policy needs to know it.
#[derive(Debug, Clone)]
pub struct UserTarget {
    pub id: Uuid,
    pub permissions: PermissionSet,
    /// Active and holding the system `admin` role.
    pub is_active_admin: bool,
    /// Active admins of the tenant, this one included.
    pub active_admins: i64,
}

/// An API key as the policy needs to know it.
#[derive(Debug, Clone)]
pub struct KeyTarget {
    pub id: Uuid,
    pub permissions: PermissionSet,
}

/// A role as the policy needs to know it.
#[derive(Debug, Clone)]
pub struct RoleTarget {
    pub id: Uuid,
    pub permissions: PermissionSet,
    pub is_system: bool,
    /// Live (not revoked) API keys bound to the role.
    pub live_keys: i64,
}

/// Proof that `A` may be done, carrying what was cleared: the target's id (`target()`),
/// and for [`act::Grant`] and [`act::SetUserRoles`] the grants themselves (`grants()`).
/// Only this module makes one.
#[derive(Debug)]
#[must_use]
pub struct Cleared<A, T = Uuid> {
    cleared: T,
    _action: PhantomData<A>,
}

impl<A, T> Cleared<A, T> {
    fn new(cleared: T) -> Self {
        Self {
            cleared,
            _action: PhantomData,
        }
    }
}

impl<A> Cleared<A> {
    pub fn target(&self) -> Uuid {
        self.cleared
    }
}

impl<G> Cleared<act::SetUserRoles, (Uuid, G)> {
    pub fn target(&self) -> Uuid {
        self.cleared.0
    }

    /// The roles cleared to be given to the target.
    pub fn grants(&self) -> &G {
        &self.cleared.1
    }
}

impl<G> Cleared<act::Grant, G> {
    /// What was cleared to be granted: what the service writes.
    pub fn grants(&self) -> &G {
        &self.cleared
    }

    pub fn into_grants(self) -> G {
        self.cleared
    }
}

/// Something to grant (roles resolved for a user, a new key's access, a role's
/// permissions), as the policy compares it with what the actor holds.
pub trait Grants {
    fn permissions(&self) -> &PermissionSet;
}

impl Grants for PermissionSet {
    fn permissions(&self) -> &PermissionSet {
        self
    }
}

/// Marker types for [`Cleared`], one per action.
pub mod act {
    #[derive(Debug)]
    pub struct UpdateUser;
    #[derive(Debug)]
    pub struct DeactivateUser;
    #[derive(Debug)]
    pub struct DeleteUser;
    #[derive(Debug)]
    pub struct SetUserRoles;
    #[derive(Debug)]
    pub struct ResetUserMfa;
    #[derive(Debug)]
    pub struct RotateKey;
    #[derive(Debug)]
    pub struct RevokeKey;
    #[derive(Debug)]
    pub struct UpdateRole;
    #[derive(Debug)]
    pub struct DeleteRole;
    #[derive(Debug)]
    pub struct Grant;
}

/// Why the policy said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The actor lacks the route permission.
    MissingPermission,
    /// Granting or creating beyond what the actor holds.
    GrantBeyondHeld,
    /// The target holds permissions the actor does not.
    TargetStronger,
    SystemRole,
    /// Deactivating or deleting oneself.
    OneSelf,
    LastAdmin,
    RoleInUse,
}

impl From<Denial> for AppError {
    fn from(denial: Denial) -> Self {
        let (code, detail) = match denial {
            Denial::MissingPermission => (
                ErrorCode::Forbidden,
                "you lack the permission for this action",
            ),
            Denial::GrantBeyondHeld => (
                ErrorCode::Forbidden,
                "you cannot grant permissions you do not hold",
            ),
            Denial::TargetStronger => (
                ErrorCode::Forbidden,
                "the target holds permissions you do not hold",
            ),
            Denial::SystemRole => (
                ErrorCode::Forbidden,
                "system roles cannot be changed or deleted",
            ),
            Denial::OneSelf => (
                ErrorCode::Conflict,
                "you cannot deactivate or delete yourself",
            ),
            Denial::LastAdmin => (
                ErrorCode::Conflict,
                "the last active admin of the tenant cannot be removed, demoted or deactivated",
            ),
            Denial::RoleInUse => (
                ErrorCode::Conflict,
                "API keys use this role: revoke them or give them another role first",
            ),
        };
        AppError::new(code, detail)
    }
}

fn require(actor: &ActorView<'_>, action: Action) -> Result<(), Denial> {
    if actor.permissions.allows(action.permission()) {
        Ok(())
    } else {
        Err(Denial::MissingPermission)
    }
}

fn covers(actor: &ActorView<'_>, target: &PermissionSet, denial: Denial) -> Result<(), Denial> {
    if actor.permissions.covers_all(target) {
        Ok(())
    } else {
        Err(denial)
    }
}

/// The decision for an action on a user. `new_roles` is what [`Action::SetUserRoles`]
/// would give: the permissions and whether they include `admin`.
pub fn decide_user(
    actor: &ActorView<'_>,
    action: Action,
    target: &UserTarget,
    new_roles: Option<(&PermissionSet, bool)>,
) -> Result<(), Denial> {
    require(actor, action)?;
    let is_self = actor.user_id == Some(target.id);
    if is_self && matches!(action, Action::DeactivateUser | Action::DeleteUser) {
        return Err(Denial::OneSelf);
    }
    covers(actor, &target.permissions, Denial::TargetStronger)?;
    if let Some((granted, _)) = new_roles {
        covers(actor, granted, Denial::GrantBeyondHeld)?;
    }
    let loses_admin = match action {
        Action::DeactivateUser | Action::DeleteUser => true,
        Action::SetUserRoles => !new_roles.is_some_and(|(_, keeps_admin)| keeps_admin),
        _ => false,
    };
    if loses_admin && target.is_active_admin && target.active_admins <= 1 {
        return Err(Denial::LastAdmin);
    }
    Ok(())
}

/// The decision for an action on an API key.
pub fn decide_key(actor: &ActorView<'_>, action: Action, target: &KeyTarget) -> Result<(), Denial> {
    require(actor, action)?;
    covers(actor, &target.permissions, Denial::TargetStronger)
}

/// The decision for changing (`UpdateRole`) or deleting a role.
pub fn decide_role(
    actor: &ActorView<'_>,
    action: Action,
    target: &RoleTarget,
) -> Result<(), Denial> {
    require(actor, action)?;
    if target.is_system {
        return Err(Denial::SystemRole);
    }
    covers(actor, &target.permissions, Denial::TargetStronger)?;
    if action == Action::DeleteRole && target.live_keys > 0 {
        return Err(Denial::RoleInUse);
    }
    Ok(())
}

/// Grant ⊆ held: creating a user or key with, or adding to a role, `granted`.
pub fn decide_grant(actor: &ActorView<'_>, granted: &PermissionSet) -> Result<(), Denial> {
    covers(actor, granted, Denial::GrantBeyondHeld)
}

pub fn update_user(
    actor: &ActorView<'_>,
    target: &UserTarget,
) -> Result<Cleared<act::UpdateUser>, AppError> {
    decide_user(actor, Action::UpdateUser, target, None)?;
    Ok(Cleared::new(target.id))
}

pub fn deactivate_user(
    actor: &ActorView<'_>,
    target: &UserTarget,
) -> Result<Cleared<act::DeactivateUser>, AppError> {
    decide_user(actor, Action::DeactivateUser, target, None)?;
    Ok(Cleared::new(target.id))
}

pub fn delete_user(
    actor: &ActorView<'_>,
    target: &UserTarget,
) -> Result<Cleared<act::DeleteUser>, AppError> {
    decide_user(actor, Action::DeleteUser, target, None)?;
    Ok(Cleared::new(target.id))
}

/// Replacing a user's roles with `roles` (`keeps_admin`: `admin` among them). The proof
/// carries the user and the roles: what the service writes.
pub fn set_user_roles<G: Grants>(
    actor: &ActorView<'_>,
    target: &UserTarget,
    roles: G,
    keeps_admin: bool,
) -> Result<Cleared<act::SetUserRoles, (Uuid, G)>, AppError> {
    decide_user(
        actor,
        Action::SetUserRoles,
        target,
        Some((roles.permissions(), keeps_admin)),
    )?;
    Ok(Cleared::new((target.id, roles)))
}

/// Turning off a user's MFA: a manager cannot reset an admin's second factor (and so
/// take over the account with a password alone).
pub fn reset_user_mfa(
    actor: &ActorView<'_>,
    target: &UserTarget,
) -> Result<Cleared<act::ResetUserMfa>, AppError> {
    decide_user(actor, Action::ResetUserMfa, target, None)?;
    Ok(Cleared::new(target.id))
}

pub fn rotate_key(
    actor: &ActorView<'_>,
    target: &KeyTarget,
) -> Result<Cleared<act::RotateKey>, AppError> {
    decide_key(actor, Action::RotateKey, target)?;
    Ok(Cleared::new(target.id))
}

pub fn revoke_key(
    actor: &ActorView<'_>,
    target: &KeyTarget,
) -> Result<Cleared<act::RevokeKey>, AppError> {
    decide_key(actor, Action::RevokeKey, target)?;
    Ok(Cleared::new(target.id))
}

pub fn update_role(
    actor: &ActorView<'_>,
    target: &RoleTarget,
) -> Result<Cleared<act::UpdateRole>, AppError> {
    decide_role(actor, Action::UpdateRole, target)?;
    Ok(Cleared::new(target.id))
}

pub fn delete_role(
    actor: &ActorView<'_>,
    target: &RoleTarget,
) -> Result<Cleared<act::DeleteRole>, AppError> {
    decide_role(actor, Action::DeleteRole, target)?;
    Ok(Cleared::new(target.id))
}

/// Giving `granted` to something new (a user being created, a key) or to a role. The
/// proof carries `granted`: the thing does not exist yet, and what the service writes
/// is what was checked.
pub fn grant<G: Grants>(
    actor: &ActorView<'_>,
    granted: G,
) -> Result<Cleared<act::Grant, G>, AppError> {
    decide_grant(actor, granted.permissions())?;
    Ok(Cleared::new(granted))
}

/// A grant made by the platform itself, with no actor to compare: the admin role of a
/// tenant being onboarded, the `viewer` role of a self-registered user, the roles an
/// accepted invitation gives (checked against the inviter when inviting).
pub fn system_grant<G: Grants>(granted: G) -> Cleared<act::Grant, G> {
    Cleared::new(granted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::roles::{ADMIN, DEVELOPER, MANAGER, SYSTEM_ROLES, SystemRole, VIEWER};

    fn held(role: SystemRole) -> PermissionSet {
        PermissionSet::new(role.grants())
    }

    /// Position in the chain admin ⊃ manager ⊃ developer ⊃ viewer.
    fn rank(role: SystemRole) -> usize {
        SYSTEM_ROLES.len()
            - SYSTEM_ROLES
                .iter()
                .position(|r| *r == role)
                .expect("system role")
    }

    fn user(role: SystemRole, active_admins: i64) -> UserTarget {
        UserTarget {
            id: Uuid::now_v7(),
            permissions: held(role),
            is_active_admin: role == ADMIN,
            active_admins,
        }
    }

    /// Actor role × target role × action, over every system role, with two admins in
    /// the tenant (so the last-admin rule is not in play): exactly these cells pass.
    #[test]
    fn owner_model_table() {
        use Action::*;
        for actor_role in SYSTEM_ROLES {
            let permissions = held(actor_role);
            let actor = ActorView {
                user_id: Some(Uuid::now_v7()),
                permissions: &permissions,
            };
            for target_role in SYSTEM_ROLES {
                let stronger = !held(actor_role).covers_all(&held(target_role));
                assert_eq!(stronger, rank(target_role) > rank(actor_role));
                let target = user(target_role, 2);
                let key = KeyTarget {
                    id: Uuid::now_v7(),
                    permissions: held(target_role),
                };
                let cells = [
                    (UpdateUser, decide_user(&actor, UpdateUser, &target, None)),
                    (
                        DeactivateUser,
                        decide_user(&actor, DeactivateUser, &target, None),
                    ),
                    (DeleteUser, decide_user(&actor, DeleteUser, &target, None)),
                    (
                        ResetUserMfa,
                        decide_user(&actor, ResetUserMfa, &target, None),
                    ),
                    (
                        SetUserRoles,
                        decide_user(&actor, SetUserRoles, &target, Some((&held(VIEWER), false))),
                    ),
                    (RotateKey, decide_key(&actor, RotateKey, &key)),
                    (RevokeKey, decide_key(&actor, RevokeKey, &key)),
                ];
                for (action, decision) in cells {
                    let expected = if !permissions.allows(action.permission()) {
                        Err(Denial::MissingPermission)
                    } else if stronger {
                        Err(Denial::TargetStronger)
                    } else {
                        Ok(())
                    };
                    assert_eq!(
                        decision, expected,
                        "{} → {} : {action:?}",
                        actor_role.name, target_role.name
                    );
                }
                // Granting a role: allowed exactly when it is within the actor's own.
                assert_eq!(
                    decide_grant(&actor, &held(target_role)),
                    if stronger {
                        Err(Denial::GrantBeyondHeld)
                    } else {
                        Ok(())
                    },
                    "{} grants {}",
                    actor_role.name,
                    target_role.name
                );
            }
        }
    }

    /// The allowed cells spelled out, so the table above cannot drift unnoticed: who may
    /// delete whom.
    #[test]
    fn who_may_delete_whom() {
        let allowed: Vec<(&str, &str)> = SYSTEM_ROLES
            .iter()
            .flat_map(|a| SYSTEM_ROLES.iter().map(move |t| (*a, *t)))
            .filter(|(a, t)| {
                let permissions = held(*a);
                let actor = ActorView {
                    user_id: None,
                    permissions: &permissions,
                };
                decide_user(&actor, Action::DeleteUser, &user(*t, 2), None).is_ok()
            })
            .map(|(a, t)| (a.name, t.name))
            .collect();
        assert_eq!(
            allowed,
            [
                ("admin", "admin"),
                ("admin", "manager"),
                ("admin", "developer"),
                ("admin", "viewer"),
                ("manager", "manager"),
                ("manager", "developer"),
                ("manager", "viewer"),
            ]
        );
    }

    /// A cleared grant is what the policy compared: the service writes `grants()`.
    #[test]
    fn a_cleared_grant_carries_what_it_cleared() {
        let permissions = held(MANAGER);
        let actor = ActorView {
            user_id: None,
            permissions: &permissions,
        };
        let cleared = grant(&actor, held(DEVELOPER)).expect("within the manager's");
        assert_eq!(cleared.grants(), &held(DEVELOPER));
        assert_eq!(
            grant(&actor, held(ADMIN))
                .map(|c| c.into_grants())
                .err()
                .map(|e| e.code()),
            Some(ErrorCode::Forbidden)
        );
        assert_eq!(system_grant(held(ADMIN)).into_grants(), held(ADMIN));
    }

    #[test]
    fn the_last_active_admin_stays() {
        let permissions = held(ADMIN);
        let actor = ActorView {
            user_id: Some(Uuid::now_v7()),
            permissions: &permissions,
        };
        let last = user(ADMIN, 1);
        for action in [Action::DeleteUser, Action::DeactivateUser] {
            assert_eq!(
                decide_user(&actor, action, &last, None),
                Err(Denial::LastAdmin)
            );
        }
        assert_eq!(
            decide_user(
                &actor,
                Action::SetUserRoles,
                &last,
                Some((&held(MANAGER), false))
            ),
            Err(Denial::LastAdmin)
        );
        assert_eq!(
            decide_user(
                &actor,
                Action::SetUserRoles,
                &last,
                Some((&held(ADMIN), true))
            ),
            Ok(())
        );
        assert_eq!(decide_user(&actor, Action::UpdateUser, &last, None), Ok(()));
        // A second admin makes the first removable.
        assert_eq!(
            decide_user(&actor, Action::DeleteUser, &user(ADMIN, 2), None),
            Ok(())
        );
    }

    #[test]
    fn nobody_deactivates_or_deletes_themselves() {
        let permissions = held(ADMIN);
        let me = user(ADMIN, 3);
        let actor = ActorView {
            user_id: Some(me.id),
            permissions: &permissions,
        };
        assert_eq!(
            decide_user(&actor, Action::DeleteUser, &me, None),
            Err(Denial::OneSelf)
        );
        assert_eq!(
            decide_user(&actor, Action::DeactivateUser, &me, None),
            Err(Denial::OneSelf)
        );
        assert_eq!(decide_user(&actor, Action::UpdateUser, &me, None), Ok(()));
    }

    #[test]
    fn roles_are_changed_only_within_held_permissions_and_not_while_keys_use_them() {
        let permissions = held(ADMIN);
        let admin = ActorView {
            user_id: None,
            permissions: &permissions,
        };
        let custom = RoleTarget {
            id: Uuid::now_v7(),
            permissions: held(DEVELOPER),
            is_system: false,
            live_keys: 1,
        };
        assert_eq!(decide_role(&admin, Action::UpdateRole, &custom), Ok(()));
        assert_eq!(
            decide_role(&admin, Action::DeleteRole, &custom),
            Err(Denial::RoleInUse)
        );
        let unused = RoleTarget {
            live_keys: 0,
            ..custom.clone()
        };
        assert_eq!(decide_role(&admin, Action::DeleteRole, &unused), Ok(()));
        let system = RoleTarget {
            is_system: true,
            ..unused.clone()
        };
        assert_eq!(
            decide_role(&admin, Action::UpdateRole, &system),
            Err(Denial::SystemRole)
        );

        // A custom role manager that holds less than the role it would change.
        let narrow = PermissionSet::from_stored(["roles:manage", "resources:read"]);
        let actor = ActorView {
            user_id: None,
            permissions: &narrow,
        };
        assert_eq!(
            decide_role(&actor, Action::DeleteRole, &unused),
            Err(Denial::TargetStronger)
        );
    }
}
