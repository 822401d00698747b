//! Login and the account flows around it: registration, logout, password reset, email
//! verification, and platform operators.

use serde_json::json;
use uuid::Uuid;

use crate::{
    app::App,
    auth::{
        invalidation,
        password::{self, Password, Verified},
        principal::{Actor, Principal, TenantPrincipal},
    },
    client::ClientInfo,
    error::{AppError, AppResult, ErrorCode},
    rbac::{policy, roles::VIEWER},
    services::{
        audit::{self, AuditEntry},
        notifications::{self, Outgoing},
        sessions::{self, Purpose, TokenPair},
        tenants::{self, Tenant},
        users::{self, Email, NewUser},
    },
};

fn invalid_credentials() -> AppError {
    AppError::new(
        ErrorCode::InvalidCredentials,
        "the tenant, email or password is not right",
    )
}

/// Logs a user in. An unknown tenant, an unknown user and a wrong password answer the
/// same 401 after the same argon2 work, so none of them can be told apart. A deleted
/// tenant (whose schema may already be purged) counts as unknown.
pub async fn login(
    app: &App,
    tenant_key: &str,
    email: &str,
    password: String,
    client: &ClientInfo,
) -> AppResult<TokenPair> {
    let tenant = tenants::find_by_key(&app.db, tenant_key)
        .await?
        .filter(|t| t.status != "deleted");
    let scope = tenant.as_ref().map(|t| app.tenant_scope(t.id));
    let account = match &scope {
        Some(scope) => users::credentials(scope, email).await?,
        None => None,
    };
    let verified = password::verify(
        password.clone(),
        account.as_ref().map(|a| a.password_hash.clone()),
    )
    .await?;

    let (Some(tenant), Some(scope), Some(account)) = (tenant, scope, account) else {
        return Err(invalid_credentials());
    };
    let user_id = account.id;
    if verified == Verified::No || !account.is_active {
        let reason = if account.is_active {
            "wrong_password"
        } else {
            "inactive"
        };
        let entry = AuditEntry::new(Some(Actor::User(user_id)), "auth.login_failed", client)
            .target("user", user_id)
            .metadata(json!({"reason": reason}));
        audit::record(&scope, entry).await?;
        return Err(invalid_credentials());
    }
    if !tenant.is_active() {
        return Err(AppError::new(
            ErrorCode::TenantSuspended,
            format!("the tenant is {}", tenant.status),
        ));
    }
    if account.must_verify_email {
        return Err(AppError::new(
            ErrorCode::EmailNotVerified,
            "verify your email address before logging in",
        ));
    }
    let mut tx = scope.begin().await?;
    if verified == Verified::YesButRehash
        && let Ok(password) = Password::parse(password)
    {
        users::set_password(&mut tx, user_id, &password::hash(password).await?).await?;
    }
    let roles = sessions::active_user_roles(&mut tx, user_id)
        .await?
        .ok_or_else(invalid_credentials)?;
    let pair = sessions::issue(app, &mut tx, user_id, roles, None).await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(Actor::User(user_id)), "auth.login", client).target("user", user_id),
    )
    .await?;
    tx.commit().await?;
    Ok(pair)
}

/// What registration answers: the same whether the address was new or taken, so the
/// answer tells nobody which addresses have accounts.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Registered {
    pub email: String,
    /// The role the account has once verified: `viewer`.
    pub roles: Vec<String>,
    /// Always `false`: a verification token was sent to the address.
    pub email_verified: bool,
}

/// Self-registration into a tenant that opted in (`settings.self_registration`); the
/// new user is a `viewer` and cannot log in before verifying the address. An address
/// that already has an account gets a notice instead, and the answer is the same.
pub async fn register(
    app: &App,
    tenant_key: &str,
    email: Email,
    password: Password,
    first_name: Option<String>,
    last_name: Option<String>,
    client: &ClientInfo,
) -> AppResult<Registered> {
    let refused =
        || AppError::forbidden("this tenant does not allow self-registration for this address");
    let tenant = tenants::find_by_key(&app.db, tenant_key)
        .await?
        .filter(Tenant::is_active)
        .ok_or_else(refused)?;
    if !tenant.self_registration().admits(email.as_str()) {
        return Err(refused());
    }
    // Hashed either way, so a taken address takes as long as a new one.
    let password_hash = password::hash(password).await?;
    let answer = Registered {
        email: email.as_str().to_owned(),
        roles: vec![VIEWER.name.to_owned()],
        email_verified: false,
    };
    let scope = app.tenant_scope(tenant.id);
    if users::credentials(&scope, email.as_str()).await?.is_some() {
        let notice = notifications::system_email(
            email.as_str(),
            "registration_existing_account",
            format!("Someone tried to register at {}", tenant.name),
            "An account with this address already exists. If this was you, log in or \
             reset your password; otherwise you can ignore this message."
                .to_owned(),
        );
        // The answer must not differ from a new registration's, even if this fails.
        if let Err(e) = notifications::send_system(app, &scope, &notice).await {
            tracing::error!(error = %e, "could not queue the existing-account notice");
        }
        return Ok(answer);
    }
    let mut tx = scope.begin().await?;
    let roles = users::resolve_roles(&mut tx, &[VIEWER.name.to_owned()]).await?;
    let created = users::create(
        &mut tx,
        NewUser {
            email: email.clone(),
            password_hash,
            first_name,
            last_name,
            self_registered: true,
        },
        &roles,
        policy::system_grant(),
    )
    .await;
    let user_id = match created {
        Ok(id) => id,
        // Registered by a concurrent request a moment ago: same answer.
        Err(e) if e.code() == ErrorCode::EmailTaken => return Ok(answer),
        Err(e) => return Err(e),
    };
    let token = sessions::create_one_time(&mut tx, user_id, Purpose::EmailVerification).await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(Actor::User(user_id)), "user.registered", client)
            .target("user", user_id),
    )
    .await?;
    let user = crate::services::users::get_in(&mut tx, user_id).await?;
    crate::services::webhooks::emit(
        &mut tx,
        crate::services::webhooks::EventType::UserCreated,
        &user,
    )
    .await?;
    let verification =
        notifications::queue_in(&mut tx, &verification_email(email.as_str(), &token), None).await?;
    tx.commit().await?;
    notifications::dispatch(app, tenant.id, &verification).await;
    Ok(answer)
}

/// The email that carries an email verification token.
pub fn verification_email(to: &str, token: &str) -> Outgoing {
    notifications::system_email(
        to,
        "email_verification",
        "Confirm your email address".to_owned(),
        format!("Your verification token: {token}"),
    )
}

/// Ends the caller's session. A user's refresh family (the one named in the token, and
/// the one of `refresh_token` if given) is revoked; the access token itself — a user's
/// or a platform operator's — is refused everywhere until it expires.
pub async fn logout(
    app: &App,
    principal: &Principal,
    refresh_token: Option<&str>,
    client: &ClientInfo,
) -> AppResult<()> {
    let token = match principal {
        Principal::Platform { admin_id, token } => {
            tracing::info!(action = "auth.logout", actor = %Actor::Platform(*admin_id), "operator logged out");
            token.clone()
        }
        Principal::Tenant(principal) => {
            logout_user(principal, refresh_token, client).await?;
            principal
                .token
                .clone()
                .ok_or_else(|| AppError::forbidden("API keys have no session to log out"))?
        }
    };
    invalidation::deny_token(app, token.jti, token.exp).await;
    Ok(())
}

async fn logout_user(
    principal: &TenantPrincipal,
    refresh_token: Option<&str>,
    client: &ClientInfo,
) -> AppResult<()> {
    let Actor::User(user_id) = principal.actor else {
        return Err(AppError::forbidden("API keys have no session to log out"));
    };
    let mut tx = principal.scope.begin().await?;
    if let Some(family) = principal.token.as_ref().and_then(|t| t.session) {
        sessions::revoke_family_in(&mut tx, family).await?;
    }
    // A refresh token of the caller's own tenant ends its family too.
    if let Some((tenant_id, hash)) = refresh_token.and_then(|t| sessions::parse_opaque("rt", t))
        && tenant_id == principal.tenant_id()
    {
        let sql = tx.sql(
            "update {schema}.refresh_tokens set revoked_at = now()
             where family_id = (select family_id from {schema}.refresh_tokens
                                where token_hash = $1 and user_id = $2)
               and revoked_at is null",
        );
        sqlx::query(sql)
            .bind(hash)
            .bind(user_id)
            .execute(tx.conn())
            .await?;
    }
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(principal.actor), "auth.logout", client).target("user", user_id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Sends a reset token when the account exists. Runs in the background so the answer
/// (always 202) takes the same time either way.
pub fn request_password_reset(app: crate::AppState, tenant_key: String, email: String) {
    tokio::spawn(async move {
        let result = async {
            let Some(tenant) = tenants::find_by_key(&app.db, &tenant_key)
                .await?
                .filter(Tenant::is_active)
            else {
                return anyhow::Ok(());
            };
            let scope = app.tenant_scope(tenant.id);
            let Some(account) = users::credentials(&scope, &email)
                .await?
                .filter(|a| a.is_active)
            else {
                return Ok(());
            };
            let user_id = account.id;
            let mut tx = scope.begin().await?;
            let token = sessions::create_one_time(&mut tx, user_id, Purpose::PasswordReset).await?;
            let message = notifications::system_email(
                &email.to_lowercase(),
                "password_reset",
                "Reset your password".to_owned(),
                format!("Your password reset token (valid 1 hour): {token}"),
            );
            let queued = notifications::queue_in(&mut tx, &message, None).await?;
            tx.commit().await?;
            notifications::dispatch(&app, tenant.id, &queued).await;
            Ok(())
        };
        if let Err(e) = result.await {
            tracing::error!(error = %format!("{e:#}"), "password reset request failed");
        }
    });
}

/// Sets a new password with a reset token, and ends every session of the user.
pub async fn reset_password(
    app: &App,
    token: &str,
    new_password: Password,
    client: &ClientInfo,
) -> AppResult<()> {
    let password_hash = password::hash(new_password).await?;
    let (mut tx, user_id) = sessions::consume_one_time(app, token, Purpose::PasswordReset).await?;
    users::set_password(&mut tx, user_id, &password_hash).await?;
    sessions::end_all_in(&mut tx, user_id).await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(Actor::User(user_id)), "auth.password_reset", client)
            .target("user", user_id),
    )
    .await?;
    let tenant_id = tx.tenant_id();
    invalidation::commit(app, tx, invalidation::Change::Tenant(tenant_id)).await?;
    Ok(())
}

pub async fn verify_email(app: &App, token: &str) -> AppResult<()> {
    let (mut tx, user_id) =
        sessions::consume_one_time(app, token, Purpose::EmailVerification).await?;
    let sql =
        tx.sql("update {schema}.users set email_verified = true, updated_at = now() where id = $1");
    sqlx::query(sql).bind(user_id).execute(tx.conn()).await?;
    tx.commit().await?;
    Ok(())
}

/// Platform operator login → an access token with `scope: "platform"` and no tenant.
pub async fn admin_login(app: &App, email: &str, password: String) -> AppResult<(String, i64)> {
    let admin: Option<(Uuid, String)> = sqlx::query_as(
        "select id, password_hash from platform.platform_admins
         where lower(email) = lower($1) and is_active",
    )
    .bind(email)
    .fetch_optional(&app.db)
    .await?;
    let verified = password::verify(password, admin.as_ref().map(|a| a.1.clone())).await?;
    let Some((admin_id, _)) = admin.filter(|_| verified != Verified::No) else {
        return Err(AppError::new(
            ErrorCode::InvalidCredentials,
            "the email or password is not right",
        ));
    };
    let mut claims = app.jwt.claims(admin_id, None, Vec::new());
    claims.scope = Some("platform".to_owned());
    Ok((app.jwt.sign(&claims)?, app.jwt.access_ttl_seconds()))
}

/// Creates or resets a platform operator and tells every replica (a changed password
/// ends the operator's tokens everywhere at once, not after the cache's 30 s).
pub async fn set_platform_admin(
    app: &App,
    email: &Email,
    password: Password,
) -> anyhow::Result<Uuid> {
    let id = upsert_platform_admin(&app.db, email, password).await?;
    invalidation::invalidate(app, invalidation::Change::Operator(id)).await;
    Ok(id)
}

/// Creates a platform operator, or sets the password of an existing one. A changed
/// password ends the operator's existing tokens; the same password (a replica starting
/// with `PLATFORM_ADMIN_PASSWORD`) changes nothing.
pub async fn upsert_platform_admin(
    app_db: &sqlx::PgPool,
    email: &Email,
    password: Password,
) -> anyhow::Result<Uuid> {
    let existing: Option<(Uuid, String)> = sqlx::query_as(
        "select id, password_hash from platform.platform_admins where lower(email) = lower($1)",
    )
    .bind(email.as_str())
    .fetch_optional(app_db)
    .await?;
    if let Some((id, hash)) = &existing
        && password::verify(password.expose().to_owned(), Some(hash.clone())).await? != Verified::No
    {
        return Ok(*id);
    }
    let hash = password::hash(password).await?;
    let id: Uuid = sqlx::query_scalar(
        "insert into platform.platform_admins (id, email, password_hash) values ($1, $2, $3)
         on conflict (lower(email)) do update
            set password_hash = excluded.password_hash, is_active = true,
                tokens_valid_after = now()
         returning id",
    )
    .bind(Uuid::now_v7())
    .bind(email.as_str())
    .bind(hash)
    .fetch_one(app_db)
    .await?;
    Ok(id)
}
