//! Login and the account flows around it: registration, logout, password reset, email
//! verification, and platform operators.

use serde_json::json;
use uuid::Uuid;

use crate::{
    app::App,
    auth::{
        invalidation,
        password::{self, Password, Verified},
        principal::{Actor, TenantPrincipal},
    },
    client::ClientInfo,
    db::TenantScope,
    error::{AppError, AppResult, ErrorCode},
    services::{
        audit::{self, AuditEntry},
        notify::Message,
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
/// same 401 after the same argon2 work, so none of them can be told apart.
pub async fn login(
    app: &App,
    tenant_key: &str,
    email: &str,
    password: String,
    client: &ClientInfo,
) -> AppResult<TokenPair> {
    let tenant = tenants::find_by_key(&app.db, tenant_key).await?;
    let scope = tenant
        .as_ref()
        .map(|t| TenantScope::new(app.db.clone(), t.id));
    let account = match &scope {
        Some(scope) => users::credentials(scope, email).await?,
        None => None,
    };
    let verified =
        password::verify(password.clone(), account.as_ref().map(|a| a.1.clone())).await?;

    let (Some(tenant), Some(scope), Some((user_id, _, active))) = (tenant, scope, account) else {
        return Err(invalid_credentials());
    };
    if verified == Verified::No || !active {
        let entry = AuditEntry::new(Some(Actor::User(user_id)), "auth.login_failed", client)
            .target("user", user_id)
            .metadata(json!({"reason": if active { "wrong_password" } else { "inactive" }}));
        audit::record(&scope, entry).await?;
        return Err(invalid_credentials());
    }
    if !tenant.is_active() {
        return Err(AppError::new(
            ErrorCode::TenantSuspended,
            format!("the tenant is {}", tenant.status),
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

/// Self-registration into a tenant that allows it; the new user is a `viewer`.
pub async fn register(
    app: &App,
    tenant_slug: &str,
    email: Email,
    password: Password,
    first_name: Option<String>,
    last_name: Option<String>,
    client: &ClientInfo,
) -> AppResult<users::User> {
    let tenant = tenants::find_by_key(&app.db, tenant_slug)
        .await?
        .filter(Tenant::is_active)
        .ok_or_else(|| AppError::invalid_field("tenant", "no such tenant"))?;
    if !tenant.self_registration().enabled {
        return Err(AppError::forbidden(
            "this tenant does not allow self-registration",
        ));
    }
    let password_hash = password::hash(password).await?;
    let mut tx = TenantScope::new(app.db.clone(), tenant.id).begin().await?;
    let user_id = users::create(
        &mut tx,
        NewUser {
            email: email.clone(),
            password_hash,
            first_name,
            last_name,
            roles: vec!["viewer".to_owned()],
        },
        None,
    )
    .await?;
    let token = sessions::create_one_time(&mut tx, user_id, Purpose::EmailVerification).await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(Actor::User(user_id)), "user.registered", client)
            .target("user", user_id),
    )
    .await?;
    let user = users::get_in(&mut tx, user_id).await?;
    tx.commit().await?;
    send_verification(app, &user.email, &token);
    Ok(user)
}

pub fn send_verification(app: &App, to: &str, token: &str) {
    app.outbox.send(Message {
        to: to.to_owned(),
        template: "email_verification",
        subject: "Confirm your email address".to_owned(),
        body: format!("Your verification token: {token}"),
    });
}

/// Ends the caller's session: its refresh family (the one named in the token, and the
/// one of `refresh_token` if given) and, until it expires, the access token itself.
pub async fn logout(
    app: &App,
    principal: &TenantPrincipal,
    refresh_token: Option<&str>,
    client: &ClientInfo,
) -> AppResult<()> {
    let Actor::User(user_id) = principal.actor else {
        return Err(AppError::forbidden("API keys have no session to log out"));
    };
    let token = principal.token.clone();
    let mut tx = principal.scope.begin().await?;
    if let Some(family) = token.as_ref().and_then(|t| t.session) {
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

    if let Some(token) = token {
        invalidation::deny_token(app, token.jti, token.exp).await;
    }
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
            let scope = TenantScope::new(app.db.clone(), tenant.id);
            let Some((user_id, _, true)) = users::credentials(&scope, &email).await? else {
                return Ok(());
            };
            let mut tx = scope.begin().await?;
            let token = sessions::create_one_time(&mut tx, user_id, Purpose::PasswordReset).await?;
            tx.commit().await?;
            app.outbox.send(Message {
                to: email.to_lowercase(),
                template: "password_reset",
                subject: "Reset your password".to_owned(),
                body: format!("Your password reset token (valid 1 hour): {token}"),
            });
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
    sessions::revoke_user_in(&mut tx, user_id).await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(Actor::User(user_id)), "auth.password_reset", client)
            .target("user", user_id),
    )
    .await?;
    tx.commit().await?;
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
        "select id, password_hash from platform.platform_admins where lower(email) = lower($1)",
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

/// Creates a platform operator, or sets the password of an existing one.
pub async fn upsert_platform_admin(
    db: &sqlx::PgPool,
    email: &Email,
    password: Password,
) -> anyhow::Result<Uuid> {
    let hash = password::hash(password).await?;
    let id: Uuid = sqlx::query_scalar(
        "insert into platform.platform_admins (id, email, password_hash) values ($1, $2, $3)
         on conflict (lower(email)) do update set password_hash = excluded.password_hash
         returning id",
    )
    .bind(Uuid::now_v7())
    .bind(email.as_str())
    .bind(hash)
    .fetch_one(db)
    .await?;
    Ok(id)
}
