//! Sessions: access tokens with rotating refresh tokens, and single-use tokens for
//! password resets and email verification.
//!
//! Opaque tokens carry their tenant in clear (`rt_<tenant hex>_<secret>`) so the token
//! alone finds the tenant schema its hash is stored in.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::{
        invalidation::{self, Invalidations},
        jwt::JwtKeys,
        secrets::{random_base62, sha256},
    },
    client_address::ClientInfo,
    db::{TenantPools, TenantTx},
    error::{AppError, AppResult, ErrorCode},
};

/// What issues a session's tokens: the signing keys and the refresh tokens' lifetime.
/// `App` builds one.
pub struct Issuer {
    pub jwt: Arc<JwtKeys>,
    pub refresh_ttl: Duration,
}

/// What login, refresh and onboarding answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// A new opaque token for `tenant_id`: (plaintext, stored hash).
pub(crate) fn opaque(kind: &str, tenant_id: Uuid) -> (String, Vec<u8>) {
    let token = format!("{kind}_{}_{}", tenant_id.simple(), random_base62(43));
    let hash = sha256(&token);
    (token, hash)
}

/// The tenant and stored hash of an opaque token of `kind`, if it is well formed.
pub fn parse_opaque(kind: &str, token: &str) -> Option<(Uuid, Vec<u8>)> {
    let rest = token.strip_prefix(kind)?.strip_prefix('_')?;
    let (tenant, secret) = rest.split_once('_')?;
    if secret.len() != 43 || !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let tenant_id = Uuid::try_parse(tenant).ok()?;
    Some((tenant_id, sha256(token)))
}

/// Starts a session (or continues `family`) for a user: stores a refresh token and signs
/// an access token naming the family, inside the caller's transaction. A password
/// login without client details (onboarding); see [`issue_for`].
pub async fn issue(
    issuer: &Issuer,
    tx: &mut TenantTx,
    user_id: Uuid,
    roles: Vec<String>,
    family: Option<Uuid>,
) -> AppResult<TokenPair> {
    issue_for(issuer, tx, user_id, roles, family, Amr::Password, None).await
}

/// How a session's user authenticated: the `amr` claim of its access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amr {
    /// A password.
    Password,
    /// A password and a one-time code (TOTP or a recovery code).
    PasswordAndOtp,
}

impl Amr {
    fn methods(self) -> Vec<String> {
        match self {
            Amr::Password => vec!["pwd".to_owned()],
            Amr::PasswordAndOtp => vec!["pwd".to_owned(), "otp".to_owned()],
        }
    }
}

/// [`issue`], recording the session: a new family starts with `amr` and the client's
/// address and user agent; a continued one (a refresh) keeps the `amr` it started with
/// and records when and from where it was last used.
pub async fn issue_for(
    issuer: &Issuer,
    tx: &mut TenantTx,
    user_id: Uuid,
    roles: Vec<String>,
    family: Option<Uuid>,
    amr: Amr,
    client: Option<&ClientInfo>,
) -> AppResult<TokenPair> {
    let tenant_id = tx.tenant_id();
    let family = family.unwrap_or_else(Uuid::now_v7);
    let (refresh_token, hash) = opaque("rt", tenant_id);
    let expires_at = Utc::now() + issuer.refresh_ttl;
    let sql = tx.sql(
        "insert into {schema}.refresh_tokens (id, user_id, family_id, token_hash, expires_at)
         values ($1, $2, $3, $4, $5)",
    );
    sqlx::query(sql)
        .bind(Uuid::now_v7())
        .bind(user_id)
        .bind(family)
        .bind(hash)
        .bind(expires_at)
        .execute(tx.conn())
        .await?;
    // Families older than the sessions table get their row at their next refresh.
    let sql = tx.sql(
        "insert into {schema}.user_sessions (id, user_id, amr, ip, user_agent)
         values ($1, $2, $3, $4, $5)
         on conflict (id) do update set last_used_at = now(),
            ip = coalesce(excluded.ip, user_sessions.ip),
            user_agent = coalesce(excluded.user_agent, user_sessions.user_agent)
         returning amr",
    );
    let amr: Vec<String> = sqlx::query_scalar(sql)
        .bind(family)
        .bind(user_id)
        .bind(amr.methods())
        .bind(client.and_then(|c| c.ip.as_deref()))
        .bind(
            client
                .and_then(|c| c.user_agent.as_deref())
                .map(truncate_agent),
        )
        .fetch_one(tx.conn())
        .await?;
    let mut claims = issuer.jwt.claims(user_id, Some(tenant_id), roles);
    claims.sid = Some(family);
    claims.amr = amr;
    Ok(TokenPair {
        access_token: issuer.jwt.sign(&claims)?,
        refresh_token,
        token_type: "Bearer",
        expires_in: issuer.jwt.access_ttl_seconds(),
    })
}

/// User agents are stored up to 512 characters.
fn truncate_agent(agent: &str) -> &str {
    match agent.char_indices().nth(512) {
        Some((at, _)) => &agent[..at],
        None => agent,
    }
}

fn invalid_refresh() -> AppError {
    AppError::unauthenticated("the refresh token is not valid")
}

/// Exchanges a refresh token for a new pair. A token that was already used revokes its
/// whole family: somebody holds a stolen copy.
pub async fn refresh(
    pools: &TenantPools,
    issuer: &Issuer,
    invalidations: &Invalidations,
    token: &str,
    client: &ClientInfo,
) -> AppResult<TokenPair> {
    let (tenant_id, hash) = parse_opaque("rt", token).ok_or_else(invalid_refresh)?;
    let tenant = crate::services::tenants::find(pools.platform(), tenant_id)
        .await?
        .ok_or_else(invalid_refresh)?;
    if !tenant.is_active() {
        return Err(AppError::new(
            ErrorCode::TenantSuspended,
            format!("the tenant is {}", tenant.status),
        ));
    }
    let scope = pools.scope(tenant_id);
    let mut tx = scope.begin().await?;
    type Row = (
        Uuid,
        Uuid,
        Uuid,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    );
    let sql = tx.sql(
        "select id, user_id, family_id, expires_at, rotated_at, revoked_at
         from {schema}.refresh_tokens where token_hash = $1 for update",
    );
    let row: Option<Row> = sqlx::query_as(sql)
        .bind(&hash)
        .fetch_optional(tx.conn())
        .await?;
    let (id, user_id, family, expires_at, rotated_at, revoked_at) =
        row.ok_or_else(invalid_refresh)?;
    if revoked_at.is_some() {
        return Err(invalid_refresh());
    }
    if rotated_at.is_some() {
        // Somebody holds a stolen copy: end the family and every access token issued
        // to the user so far.
        revoke_family_in(&mut tx, family).await?;
        end_access_tokens_in(&mut tx, user_id).await?;
        invalidations
            .commit(tx, invalidation::Change::Tenant(tenant_id))
            .await?;
        tracing::warn!(%tenant_id, %user_id, %family, "refresh token reused: session ended");
        return Err(invalid_refresh());
    }
    if expires_at <= Utc::now() {
        return Err(AppError::new(
            ErrorCode::TokenExpired,
            "the refresh token has expired",
        ));
    }
    let roles = active_user_roles(&mut tx, user_id)
        .await?
        .ok_or_else(invalid_refresh)?;
    let sql = tx.sql("update {schema}.refresh_tokens set rotated_at = now() where id = $1");
    sqlx::query(sql).bind(id).execute(tx.conn()).await?;
    // The family keeps the `amr` it started with.
    let pair = issue_for(
        issuer,
        &mut tx,
        user_id,
        roles,
        Some(family),
        Amr::Password,
        Some(client),
    )
    .await?;
    tx.commit().await?;
    Ok(pair)
}

/// The role names of an active user; `None` when the user is gone or disabled.
pub async fn active_user_roles(
    tx: &mut TenantTx,
    user_id: Uuid,
) -> sqlx::Result<Option<Vec<String>>> {
    let sql = tx.sql(
        "select u.is_active, array(select r.name from {schema}.user_roles ur
             join {schema}.roles r on r.id = ur.role_id where ur.user_id = u.id order by r.name)
         from {schema}.users u where u.id = $1",
    );
    let row: Option<(bool, Vec<String>)> = sqlx::query_as(sql)
        .bind(user_id)
        .fetch_optional(tx.conn())
        .await?;
    Ok(row.filter(|(active, _)| *active).map(|(_, roles)| roles))
}

pub async fn revoke_family_in(tx: &mut TenantTx, family: Uuid) -> sqlx::Result<()> {
    let sql = tx.sql(
        "update {schema}.refresh_tokens set revoked_at = now()
         where family_id = $1 and revoked_at is null",
    );
    sqlx::query(sql).bind(family).execute(tx.conn()).await?;
    Ok(())
}

/// Ends every session of a user (password reset, deactivation): their refresh tokens
/// are revoked and access tokens issued until now are refused (`tokens_valid_after`).
/// The caller commits with [`Invalidations::commit`].
pub async fn end_all_in(tx: &mut TenantTx, user_id: Uuid) -> sqlx::Result<()> {
    let sql = tx.sql(
        "update {schema}.refresh_tokens set revoked_at = now()
         where user_id = $1 and revoked_at is null",
    );
    sqlx::query(sql).bind(user_id).execute(tx.conn()).await?;
    end_access_tokens_in(tx, user_id).await
}

/// Refuses the user's access tokens issued until now.
async fn end_access_tokens_in(tx: &mut TenantTx, user_id: Uuid) -> sqlx::Result<()> {
    let sql = tx.sql("update {schema}.users set tokens_valid_after = now() where id = $1");
    sqlx::query(sql).bind(user_id).execute(tx.conn()).await?;
    Ok(())
}

/// Why a single-use token is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    PasswordReset,
    EmailVerification,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::PasswordReset => "password_reset",
            Purpose::EmailVerification => "email_verification",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Purpose::PasswordReset => "pr",
            Purpose::EmailVerification => "ev",
        }
    }

    fn lifetime(self) -> Duration {
        match self {
            Purpose::PasswordReset => Duration::hours(1),
            Purpose::EmailVerification => Duration::days(7),
        }
    }
}

/// Creates a single-use token for `user_id`; returns its plaintext (to be sent).
pub async fn create_one_time(
    tx: &mut TenantTx,
    user_id: Uuid,
    purpose: Purpose,
) -> sqlx::Result<String> {
    let (token, hash) = opaque(purpose.kind(), tx.tenant_id());
    let sql = tx.sql(
        "insert into {schema}.one_time_tokens (id, user_id, purpose, token_hash, expires_at)
         values ($1, $2, $3, $4, $5)",
    );
    sqlx::query(sql)
        .bind(Uuid::now_v7())
        .bind(user_id)
        .bind(purpose.as_str())
        .bind(hash)
        .bind(Utc::now() + purpose.lifetime())
        .execute(tx.conn())
        .await?;
    Ok(token)
}

/// Uses up a single-use token: returns its tenant scope, an open transaction and the
/// user, or a 422 naming the token when it is unknown, used or expired.
pub async fn consume_one_time(
    pools: &TenantPools,
    token: &str,
    purpose: Purpose,
) -> AppResult<(TenantTx, Uuid)> {
    let invalid = || AppError::invalid_field("token", "the token is invalid, used or expired");
    let (tenant_id, hash) = parse_opaque(purpose.kind(), token).ok_or_else(invalid)?;
    let tenant = crate::services::tenants::find(pools.platform(), tenant_id)
        .await?
        .filter(|t| t.is_active())
        .ok_or_else(invalid)?;
    let mut tx = pools.scope(tenant.id).begin().await?;
    let sql = tx.sql(
        "update {schema}.one_time_tokens set used_at = now()
         where token_hash = $1 and purpose = $2 and used_at is null and expires_at > now()
         returning user_id",
    );
    let user_id: Uuid = sqlx::query_scalar(sql)
        .bind(hash)
        .bind(purpose.as_str())
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(invalid)?;
    Ok((tx, user_id))
}

/// Spends every outstanding token of `purpose` of the user, inside `tx`: once a password
/// is reset, no other reset mail still open (in an inbox, or one a look-alike address
/// got) may set it again.
pub async fn spend_all_one_time(
    tx: &mut TenantTx,
    user_id: Uuid,
    purpose: Purpose,
) -> sqlx::Result<()> {
    let sql = tx.sql(
        "update {schema}.one_time_tokens set used_at = now()
         where user_id = $1 and purpose = $2 and used_at is null",
    );
    sqlx::query(sql)
        .bind(user_id)
        .bind(purpose.as_str())
        .execute(tx.conn())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_tokens_name_their_tenant_and_parse_back() {
        let tenant = Uuid::now_v7();
        let (token, hash) = opaque("rt", tenant);
        assert_eq!(parse_opaque("rt", &token), Some((tenant, hash)));
        assert_eq!(parse_opaque("pr", &token), None, "kinds do not mix");
        assert_eq!(parse_opaque("rt", &token[..token.len() - 1]), None);
        assert_eq!(parse_opaque("rt", "rt_nope_nope"), None);
    }
}
