//! Login and the account flows around it: registration, logout, password reset, email
//! verification, and platform operators.

use serde_json::json;

use crate::{
    auth::{
        invalidation::{self, Invalidations},
        password::{self, Password, Verified},
        principal::{Actor, Principal, TenantPrincipal},
    },
    client_address::ClientInfo,
    db::TenantPools,
    error::{AppError, AppResult, ErrorCode},
    rbac::{owner_model, roles::VIEWER},
    services::{
        audit::{self, AuditEntry},
        mfa::{self, MfaChallenge},
        notifications::{self, Mailer, PlatformMail},
        sessions::{self, Amr, Issuer, Purpose, TokenPair},
        tenants::{self, Tenant},
        users::{self, Email, NewUser},
    },
};

mod operators;

pub use operators::{admin_login, set_platform_admin, upsert_platform_admin};

fn invalid_credentials() -> AppError {
    AppError::new(
        ErrorCode::InvalidCredentials,
        "the tenant, email or password is not right",
    )
}

/// What a login answers: the token pair, or for a user with MFA the first step only.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum LoginOutcome {
    Tokens(TokenPair),
    MfaRequired(MfaChallenge),
}

/// Logs a user in. An unknown tenant, an unknown user and a wrong password answer the
/// same 401 after the same argon2 work, so none of them can be told apart. A deleted
/// tenant (whose schema may already be purged) counts as unknown. A user with MFA gets
/// a challenge for `/auth/mfa/verify` instead of tokens.
pub async fn login(
    pools: &TenantPools,
    issuer: &Issuer,
    tenant_key: &str,
    email: &str,
    password: String,
    client: &ClientInfo,
) -> AppResult<LoginOutcome> {
    let tenant = tenants::find_by_key(pools.platform(), tenant_key)
        .await?
        .filter(|t| t.status != "deleted");
    let scope = tenant.as_ref().map(|t| pools.scope(t.id));
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
    // Hashed before the transaction, as onboarding does: a burst of logins makes the
    // hashing queue long, and an open transaction would hold its connection meanwhile.
    let rehashed = if verified == Verified::YesButRehash
        && let Ok(password) = Password::parse(password)
    {
        Some(password::hash(password).await?)
    } else {
        None
    };
    let mut tx = scope.begin().await?;
    if let Some(hash) = &rehashed {
        users::set_password(&mut tx, user_id, hash).await?;
    }
    let roles = sessions::active_user_roles(&mut tx, user_id)
        .await?
        .ok_or_else(invalid_credentials)?;
    if mfa::is_on_in(&mut tx, user_id).await? {
        let challenge = mfa::challenge_in(&mut tx, user_id).await?;
        tx.commit().await?;
        return Ok(LoginOutcome::MfaRequired(challenge));
    }
    let pair = sessions::issue_for(
        issuer,
        &mut tx,
        user_id,
        roles,
        None,
        Amr::Password,
        Some(client),
    )
    .await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(Actor::User(user_id)), "auth.login", client)
            .target("user", user_id)
            .metadata(json!({"amr": ["pwd"]})),
    )
    .await?;
    tx.commit().await?;
    Ok(LoginOutcome::Tokens(pair))
}

/// Whose failed-login budget a login spends: the tenant's id (or the key as typed when
/// there is no such tenant) and the account's stored address (or the typed one when
/// there is no such account). PostgreSQL's `lower()` matches look-alikes (`İ` for `i`)
/// that Rust's lowercasing keeps apart; keyed by the typed address, each look-alike would
/// get ten more guesses.
pub async fn login_budget(
    pools: &TenantPools,
    tenant_key: &str,
    email: &str,
) -> AppResult<(String, String)> {
    let tenant = tenants::find_by_key(pools.platform(), tenant_key)
        .await?
        .filter(|t| t.status != "deleted");
    let Some(tenant) = tenant else {
        return Ok((tenant_key.to_owned(), email.to_owned()));
    };
    let stored = users::credentials(&pools.scope(tenant.id), email)
        .await?
        .map_or_else(|| email.to_owned(), |account| account.email);
    Ok((tenant.id.to_string(), stored))
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
#[expect(
    clippy::too_many_arguments,
    reason = "the registration's fields and the two handles it uses"
)]
pub async fn register(
    pools: &TenantPools,
    mailer: &Mailer,
    tenant_key: &str,
    email: Email,
    password: Password,
    first_name: Option<String>,
    last_name: Option<String>,
    client: &ClientInfo,
) -> AppResult<Registered> {
    let refused =
        || AppError::forbidden("this tenant does not allow self-registration for this address");
    let tenant = tenants::find_by_key(pools.platform(), tenant_key)
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
    let scope = pools.scope(tenant.id);
    if let Some(existing) = users::credentials(&scope, email.as_str()).await? {
        let body = "An account with this address already exists. If this was you, log in or \
                    reset your password; otherwise you can ignore this message."
            .to_owned();
        // To the stored address, not the typed one (see `Credentials::email`). The answer
        // must not differ from a new registration's, even if this fails.
        let sent = notifications::send_platform(
            mailer,
            &scope,
            tenant.plan,
            PlatformMail::RegistrationExistingAccount,
            &existing.email,
            body,
        )
        .await;
        if let Err(e) = sent {
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
        owner_model::system_grant(roles),
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
    let user = crate::services::users::get(&mut tx, user_id).await?;
    crate::services::webhooks::emit(
        &mut tx,
        crate::services::webhooks::EventType::UserCreated,
        &user,
    )
    .await?;
    // `email` is the address just stored for the new account.
    let verification = notifications::queue_platform_in(
        &mailer.limits,
        &mut tx,
        tenant.plan,
        PlatformMail::EmailVerification,
        email.as_str(),
        verification_body(&token),
    )
    .await?;
    tx.commit().await?;
    if let Some(verification) = verification {
        notifications::dispatch(&mailer.queue, tenant.id, &verification).await;
    }
    Ok(answer)
}

/// The body of the mail that carries an email verification token.
pub fn verification_body(token: &str) -> String {
    format!("Your verification token: {token}")
}

/// Ends the caller's session. A user's refresh family (the one named in the token, and
/// the one of `refresh_token` if given) is revoked; the access token itself — a user's
/// or a platform operator's — is refused everywhere until it expires.
pub async fn logout(
    invalidations: &Invalidations,
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
    invalidations.deny_token(token.jti, token.exp).await;
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
pub fn request_password_reset(
    pools: TenantPools,
    mailer: Mailer,
    tenant_key: String,
    email: String,
) {
    tokio::spawn(async move {
        let result = async {
            let Some(tenant) = tenants::find_by_key(pools.platform(), &tenant_key)
                .await?
                .filter(Tenant::is_active)
            else {
                return anyhow::Ok(());
            };
            let scope = pools.scope(tenant.id);
            let Some(account) = users::credentials(&scope, &email)
                .await?
                .filter(|a| a.is_active)
            else {
                return Ok(());
            };
            let user_id = account.id;
            let mut tx = scope.begin().await?;
            let token = sessions::create_one_time(&mut tx, user_id, Purpose::PasswordReset).await?;
            // To the stored address, never the typed one (see `Credentials::email`).
            let queued = notifications::queue_platform_in(
                &mailer.limits,
                &mut tx,
                tenant.plan,
                PlatformMail::PasswordReset,
                &account.email,
                format!("Your password reset token (valid 1 hour): {token}"),
            )
            .await?;
            // Not sent (limits): the token is not kept either (the transaction rolls back).
            let Some(queued) = queued else {
                return Ok(());
            };
            tx.commit().await?;
            notifications::dispatch(&mailer.queue, tenant.id, &queued).await;
            Ok(())
        };
        if let Err(e) = result.await {
            tracing::error!(error = %format!("{e:#}"), "password reset request failed");
        }
    });
}

/// Sets a new password with a reset token, and ends every session of the user.
pub async fn reset_password(
    pools: &TenantPools,
    invalidations: &Invalidations,
    token: &str,
    new_password: Password,
    client: &ClientInfo,
) -> AppResult<()> {
    let password_hash = password::hash(new_password).await?;
    let (mut tx, user_id) =
        sessions::consume_one_time(pools, token, Purpose::PasswordReset).await?;
    users::set_password(&mut tx, user_id, &password_hash).await?;
    sessions::spend_all_one_time(&mut tx, user_id, Purpose::PasswordReset).await?;
    sessions::end_all_in(&mut tx, user_id).await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(Actor::User(user_id)), "auth.password_reset", client)
            .target("user", user_id),
    )
    .await?;
    let tenant_id = tx.tenant_id();
    invalidations
        .commit(tx, invalidation::Change::Tenant(tenant_id))
        .await?;
    Ok(())
}

pub async fn verify_email(pools: &TenantPools, token: &str) -> AppResult<()> {
    let (mut tx, user_id) =
        sessions::consume_one_time(pools, token, Purpose::EmailVerification).await?;
    let sql =
        tx.sql("update {schema}.users set email_verified = true, updated_at = now() where id = $1");
    sqlx::query(sql).bind(user_id).execute(tx.conn()).await?;
    tx.commit().await?;
    Ok(())
}
