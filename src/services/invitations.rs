//! Invitations: users join a tenant by accepting a mailed, single-use token instead of an
//! administrator choosing their password.
//!
//! The token (`iv_<tenant>_<secret>`, 7 days) is stored hashed; resending replaces it, so
//! only the latest mail works. The roles are checked against the inviter's (grant ⊆ held)
//! when inviting and stored by id; accepting creates the user with the roles that still
//! exist, a verified address and a session.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::{
        granted::Granted,
        password::{self, Password},
        principal::{Actor, TenantPrincipal},
    },
    client_address::ClientInfo,
    db::{TenantPools, TenantScope, TenantTx},
    error::{AppError, AppResult, ErrorCode},
    rbac::{PermissionSet, needs, owner_model, roles::ADMIN},
    services::{
        audit::{self, AuditEntry},
        notifications::{self, Mailer, PlatformMail, Queued},
        roles,
        sessions::{self, Amr, Issuer, TokenPair},
        tenants::{self, Tenant},
        users::{self, Email, NewUser, ResolvedRoles, User},
    },
};

/// How long an invitation token is good for.
pub const LIFETIME_DAYS: i64 = 7;
/// Invitation mails per recipient and hour (mail the platform sends by itself).
pub const MAILS_PER_HOUR: i64 = 5;
/// The template name of invitation mails in the notification history.
const TEMPLATE: &str = "invitation";

/// An invitation as the API shows it (never its token).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct Invitation {
    pub id: Uuid,
    pub email: String,
    /// Role names the user will have.
    pub roles: Vec<String>,
    /// `pending`, `accepted`, `revoked` or `expired`.
    #[schema(example = "pending")]
    pub state: String,
    /// The user or API key that invited.
    pub invited_by: Option<Uuid>,
    /// The user the invitation created, once accepted.
    pub user_id: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str = "select i.id, i.email,
        array(select r.name from {schema}.roles r where r.id = any(i.role_ids) order by r.name)
            as roles,
        case when i.accepted_at is not null then 'accepted'
             when i.revoked_at is not null then 'revoked'
             when i.expires_at <= now() then 'expired'
             else 'pending' end as state,
        i.invited_by, i.accepted_user_id as user_id, i.expires_at, i.accepted_at,
        i.revoked_at, i.created_at, i.updated_at
    from {schema}.invitations i";

/// Invites `email` with `role_names` (the caller must hold what they grant). An address
/// that is already a user's → 409 `EMAIL_TAKEN`; one with a pending invitation → 409
/// (resend that one).
pub async fn create(
    mailer: &Mailer,
    principal: &Granted<needs::UsersCreate>,
    email: Email,
    role_names: &[String],
    client: &ClientInfo,
) -> AppResult<Invitation> {
    let mut tx = principal.scope.begin().await?;
    // One invitation at a time per address in a tenant.
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("{}:invite:{}", tx.tenant_id(), email.as_str()))
        .execute(tx.conn())
        .await?;
    let sql = tx.sql("select exists (select 1 from {schema}.users where lower(email) = $1)");
    let taken: bool = sqlx::query_scalar(sql)
        .bind(email.as_str())
        .fetch_one(tx.conn())
        .await?;
    if taken {
        return Err(AppError::conflict(
            ErrorCode::EmailTaken,
            "a user with this email already exists",
        ));
    }
    let sql = tx.sql(
        "select exists (select 1 from {schema}.invitations where lower(email) = $1
            and accepted_at is null and revoked_at is null and expires_at > now())",
    );
    let pending: bool = sqlx::query_scalar(sql)
        .bind(email.as_str())
        .fetch_one(tx.conn())
        .await?;
    if pending {
        return Err(AppError::conflict(
            ErrorCode::Conflict,
            "this address already has a pending invitation: resend it instead",
        ));
    }
    let roles = owner_model::grant(
        &principal.authority(),
        users::resolve_roles(&mut tx, role_names).await?,
    )?;
    check_mail_budget(&mut tx, email.as_str()).await?;
    let id = Uuid::now_v7();
    let (token, hash) = sessions::opaque("iv", tx.tenant_id());
    let sql = tx.sql(
        "insert into {schema}.invitations (id, email, role_ids, token_hash, invited_by, expires_at)
         values ($1, $2, $3, $4, $5, $6)",
    );
    sqlx::query(sql)
        .bind(id)
        .bind(email.as_str())
        .bind(&roles.grants().ids)
        .bind(hash)
        .bind(principal.actor.id())
        .bind(Utc::now() + Duration::days(LIFETIME_DAYS))
        .execute(tx.conn())
        .await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(principal.actor), "invitation.created", client)
            .target("invitation", id)
            .metadata(json!({"email": email.as_str(), "roles": role_names})),
    )
    .await?;
    let queued = queue_mail(mailer, &mut tx, principal, email.as_str(), &token).await?;
    let invitation = get_in(&mut tx, id).await?;
    tx.commit().await?;
    notifications::dispatch(&mailer.queue, principal.tenant_id(), &queued).await;
    Ok(invitation)
}

/// At most [`MAILS_PER_HOUR`] platform mails of this kind to one recipient an hour (429).
async fn check_mail_budget(tx: &mut TenantTx, email: &str) -> AppResult<()> {
    let sql = tx.sql(
        "select count(*) from {schema}.notification_logs
         where recipient = $1 and template_name = $2 and created_at > now() - interval '1 hour'",
    );
    let sent: i64 = sqlx::query_scalar(sql)
        .bind(email)
        .bind(TEMPLATE)
        .fetch_one(tx.conn())
        .await?;
    if sent >= MAILS_PER_HOUR {
        return Err(AppError::rate_limited(
            "this address was sent 5 invitation mails in the last hour; try again later",
            3600,
        ));
    }
    Ok(())
}

/// The invitation mail, through the platform's mail (its limits, its lane, a fixed
/// subject), to the stored address only. Held back by the limits → 429, and the
/// transaction (the invitation) is rolled back.
async fn queue_mail(
    mailer: &Mailer,
    tx: &mut TenantTx,
    principal: &TenantPrincipal,
    email: &str,
    token: &str,
) -> AppResult<Queued> {
    let body = format!(
        "You are invited to join {} ({}). Accept within {LIFETIME_DAYS} days with \
         POST /api/v1/auth/accept-invitation and this token: {token}",
        principal.tenant.name, principal.tenant.slug
    );
    notifications::queue_platform_in(
        &mailer.limits,
        tx,
        principal.tenant.plan,
        PlatformMail::Invitation,
        email,
        body,
    )
    .await?
    .ok_or_else(|| {
        AppError::rate_limited(
            "the invitation mail cannot go out now (this address's hourly limit or the \
             tenant's daily send quota); try again later",
            3600,
        )
    })
}

async fn get_in(tx: &mut TenantTx, id: Uuid) -> AppResult<Invitation> {
    let sql = tx.sql_parts(&[SELECT, " where i.id = $1"]);
    sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(AppError::not_found)
}

/// Newest first, keyset-paginated; every state.
pub async fn list(
    scope: &TenantScope,
    before: Option<Uuid>,
    limit: i64,
) -> AppResult<Vec<Invitation>> {
    let sql = scope.sql_parts(&[
        SELECT,
        " where ($1::uuid is null or i.id < $1) order by i.id desc limit $2",
    ]);
    Ok(sqlx::query_as(sql)
        .bind(before)
        .bind(limit)
        .fetch_all(scope.db())
        .await?)
}

/// Locks an invitation: its state as the list shows it. 404 when there is none.
async fn lock(tx: &mut TenantTx, id: Uuid) -> AppResult<Invitation> {
    let sql = tx.sql("select 1 from {schema}.invitations where id = $1 for update");
    sqlx::query_scalar::<_, i32>(sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(AppError::not_found)?;
    get_in(tx, id).await
}

/// Revokes a pending (or expired) invitation: its token stops working.
pub async fn revoke(
    principal: &Granted<needs::UsersCreate>,
    id: Uuid,
    client: &ClientInfo,
) -> AppResult<()> {
    let mut tx = principal.scope.begin().await?;
    let invitation = lock(&mut tx, id).await?;
    match invitation.state.as_str() {
        "accepted" => {
            return Err(AppError::conflict(
                ErrorCode::Conflict,
                "the invitation was accepted; manage the user instead",
            ));
        }
        "revoked" => return Ok(()),
        _ => {}
    }
    let sql = tx.sql(
        "update {schema}.invitations set revoked_at = now(), updated_at = now() where id = $1",
    );
    sqlx::query(sql).bind(id).execute(tx.conn()).await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(principal.actor), "invitation.revoked", client)
            .target("invitation", id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Sends a pending or expired invitation again with a new token (the old one stops
/// working) valid 7 days from now.
pub async fn resend(
    mailer: &Mailer,
    principal: &Granted<needs::UsersCreate>,
    id: Uuid,
    client: &ClientInfo,
) -> AppResult<Invitation> {
    let mut tx = principal.scope.begin().await?;
    let invitation = lock(&mut tx, id).await?;
    if matches!(invitation.state.as_str(), "accepted" | "revoked") {
        return Err(AppError::conflict(
            ErrorCode::Conflict,
            format!("the invitation is {}", invitation.state),
        ));
    }
    check_mail_budget(&mut tx, &invitation.email).await?;
    let (token, hash) = sessions::opaque("iv", tx.tenant_id());
    let sql = tx.sql(
        "update {schema}.invitations set token_hash = $2, expires_at = $3, updated_at = now()
         where id = $1",
    );
    sqlx::query(sql)
        .bind(id)
        .bind(hash)
        .bind(Utc::now() + Duration::days(LIFETIME_DAYS))
        .execute(tx.conn())
        .await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(principal.actor), "invitation.resent", client)
            .target("invitation", id),
    )
    .await?;
    let queued = queue_mail(mailer, &mut tx, principal, &invitation.email, &token).await?;
    let invitation = get_in(&mut tx, id).await?;
    tx.commit().await?;
    notifications::dispatch(&mailer.queue, principal.tenant_id(), &queued).await;
    Ok(invitation)
}

/// What accepting answers: the new user and their first session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvitationAccepted {
    pub user: User,
    pub tokens: TokenPair,
}

/// The new account's details, from the accepting request.
#[derive(Debug)]
pub struct Acceptance {
    pub password: Password,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// Accepts an invitation: creates the user (verified address, the invited roles) and
/// logs them in. An unknown, used, revoked or expired token → 422.
pub async fn accept(
    pools: &TenantPools,
    issuer: &Issuer,
    token: &str,
    acceptance: Acceptance,
    client: &ClientInfo,
) -> AppResult<InvitationAccepted> {
    let invalid = || {
        AppError::invalid_field(
            "token",
            "the invitation is invalid, used, revoked or expired",
        )
    };
    let (tenant_id, hash) = sessions::parse_opaque("iv", token).ok_or_else(invalid)?;
    let tenant = tenants::find(pools.platform(), tenant_id)
        .await?
        .filter(Tenant::is_active)
        .ok_or_else(invalid)?;
    let password_hash = password::hash(acceptance.password).await?;
    let mut tx = pools.scope(tenant.id).begin().await?;
    let sql = tx.sql(
        "update {schema}.invitations set accepted_at = now(), updated_at = now()
         where token_hash = $1 and accepted_at is null and revoked_at is null
           and expires_at > now()
         returning id, email, role_ids, invited_by",
    );
    let (id, email, role_ids, invited_by): (Uuid, String, Vec<Uuid>, Option<Uuid>) =
        sqlx::query_as(sql)
            .bind(hash)
            .fetch_optional(tx.conn())
            .await?
            .ok_or_else(invalid)?;
    let email = Email::parse("email", &email).map_err(|e| AppError::validation(vec![e]))?;
    let roles = existing_roles(&mut tx, role_ids).await?;
    // The inviter's grant was checked when inviting (grant ⊆ held).
    let user_id = users::create(
        &mut tx,
        NewUser {
            email,
            password_hash,
            first_name: acceptance.first_name,
            last_name: acceptance.last_name,
            self_registered: false,
        },
        owner_model::system_grant(roles),
    )
    .await?;
    let sql =
        tx.sql("update {schema}.users set email_verified = true, updated_at = now() where id = $1");
    sqlx::query(sql).bind(user_id).execute(tx.conn()).await?;
    let sql = tx.sql("update {schema}.invitations set accepted_user_id = $2 where id = $1");
    sqlx::query(sql)
        .bind(id)
        .bind(user_id)
        .execute(tx.conn())
        .await?;
    let user = users::get(&mut tx, user_id).await?;
    let tokens = sessions::issue_for(
        issuer,
        &mut tx,
        user_id,
        user.roles.clone(),
        None,
        Amr::Password,
        Some(client),
    )
    .await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(Actor::User(user_id)), "invitation.accepted", client)
            .target("invitation", id)
            .metadata(json!({"user_id": user_id, "invited_by": invited_by})),
    )
    .await?;
    tx.commit().await?;
    Ok(InvitationAccepted { user, tokens })
}

/// The invited roles that still exist (a role deleted since the invitation is left out).
async fn existing_roles(tx: &mut TenantTx, ids: Vec<Uuid>) -> AppResult<ResolvedRoles> {
    let sql = tx.sql("select id, name from {schema}.roles where id = any($1)");
    let rows: Vec<(Uuid, String)> = sqlx::query_as(sql).bind(&ids).fetch_all(tx.conn()).await?;
    let ids: Vec<Uuid> = rows.iter().map(|(id, _)| *id).collect();
    let grants = PermissionSet::from_stored(roles::grants_of_all(tx, &ids).await?);
    Ok(ResolvedRoles {
        ids,
        grants,
        has_admin: rows.iter().any(|(_, name)| name == ADMIN.name),
    })
}
