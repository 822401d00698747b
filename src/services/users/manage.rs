//! The use cases of `/api/v1/users`: each opens the transaction, locks the target, asks
//! the owner-model policy, writes, audits, emits the webhook and commits (publishing the
//! invalidation where access changes).

use serde_json::json;
use uuid::Uuid;

use crate::{
    auth::{
        granted::Granted,
        invalidation::{Change, Invalidations},
        password::{self, Password},
    },
    client_address::ClientInfo,
    error::AppResult,
    rbac::{needs, owner_model},
    services::{
        audit::{self, AuditEntry},
        identity,
        notifications::{self, Mailer, PlatformMail},
        sessions,
        users::{self, Email, NewUser, User, UserChanges},
        webhooks::{self, EventType},
    },
};

/// A new account as the caller asked for it, parsed.
#[derive(Debug)]
pub struct NewAccount {
    pub email: Email,
    pub password: Password,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Role names; each must exist and be within the caller's permissions.
    pub roles: Vec<String>,
}

/// Creates a user with `account.roles` and queues the verification mail to them.
pub async fn create(
    mailer: &Mailer,
    principal: &Granted<needs::UsersCreate>,
    client: &ClientInfo,
    account: NewAccount,
) -> AppResult<User> {
    let password_hash = password::hash(account.password).await?;
    let mut tx = principal.scope.begin().await?;
    let roles = owner_model::grant(
        &principal.authority(),
        users::resolve_roles(&mut tx, &account.roles).await?,
    )?;
    let id = users::create(
        &mut tx,
        NewUser {
            email: account.email,
            password_hash,
            first_name: account.first_name,
            last_name: account.last_name,
            self_registered: false,
        },
        roles,
    )
    .await?;
    let token =
        sessions::create_one_time(&mut tx, id, sessions::Purpose::EmailVerification).await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(principal.actor), "user.created", client)
            .target("user", id)
            .metadata(json!({"roles": account.roles})),
    )
    .await?;
    let user = users::get(&mut tx, id).await?;
    webhooks::emit(&mut tx, EventType::UserCreated, &user).await?;
    // The platform's own mail (no creator): to the address as stored.
    let verification = notifications::queue_platform_in(
        &mailer.limits,
        &mut tx,
        principal.tenant.plan,
        PlatformMail::EmailVerification,
        &user.email,
        identity::verification_body(&token),
    )
    .await?;
    tx.commit().await?;
    if let Some(verification) = verification {
        notifications::dispatch(&mailer.queue, principal.tenant_id(), &verification).await;
    }
    Ok(user)
}

/// Changes a user's names and activation; `is_active: Some(false)` deactivates (their
/// sessions end), `Some(true)` reactivates.
pub async fn update(
    invalidations: &Invalidations,
    principal: &Granted<needs::UsersUpdate>,
    client: &ClientInfo,
    id: Uuid,
    first_name: Option<String>,
    last_name: Option<String>,
    is_active: Option<bool>,
) -> AppResult<User> {
    let changes = UserChanges {
        first_name,
        last_name,
        reactivate: is_active == Some(true),
    };
    let mut tx = principal.scope.begin().await?;
    let target = users::target(&mut tx, id).await?;
    let authority = principal.authority();
    if is_active == Some(false) {
        users::deactivate(&mut tx, owner_model::deactivate_user(&authority, &target)?).await?;
    }
    users::update(
        &mut tx,
        owner_model::update_user(&authority, &target)?,
        &changes,
    )
    .await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(principal.actor), "user.updated", client)
            .target("user", id)
            .metadata(json!({"is_active": is_active})),
    )
    .await?;
    let user = users::get(&mut tx, id).await?;
    webhooks::emit(&mut tx, EventType::UserUpdated, &user).await?;
    invalidations
        .commit(tx, Change::Tenant(principal.tenant_id()))
        .await?;
    Ok(user)
}

/// Deletes a user; their sessions end with them.
pub async fn delete(
    invalidations: &Invalidations,
    principal: &Granted<needs::UsersDelete>,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<()> {
    let mut tx = principal.scope.begin().await?;
    let target = users::target(&mut tx, id).await?;
    users::delete(
        &mut tx,
        owner_model::delete_user(&principal.authority(), &target)?,
    )
    .await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(principal.actor), "user.deleted", client).target("user", id),
    )
    .await?;
    webhooks::emit(&mut tx, EventType::UserDeleted, json!({"id": id})).await?;
    invalidations
        .commit(tx, Change::Tenant(principal.tenant_id()))
        .await?;
    Ok(())
}

/// Replaces a user's roles with `roles` (names).
pub async fn set_roles(
    invalidations: &Invalidations,
    principal: &Granted<needs::RolesAssign>,
    client: &ClientInfo,
    id: Uuid,
    roles: Vec<String>,
) -> AppResult<User> {
    let mut tx = principal.scope.begin().await?;
    let target = users::target(&mut tx, id).await?;
    let resolved = users::resolve_roles(&mut tx, &roles).await?;
    let keeps_admin = resolved.has_admin;
    let cleared =
        owner_model::set_user_roles(&principal.authority(), &target, resolved, keeps_admin)?;
    users::set_roles(&mut tx, cleared).await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(principal.actor), "user.roles_assigned", client)
            .target("user", id)
            .metadata(json!({"roles": roles})),
    )
    .await?;
    let user = users::get(&mut tx, id).await?;
    webhooks::emit(&mut tx, EventType::UserUpdated, &user).await?;
    invalidations
        .commit(tx, Change::Tenant(principal.tenant_id()))
        .await?;
    Ok(user)
}
