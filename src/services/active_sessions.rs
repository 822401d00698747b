//! A user's own sessions: list them, end one.
//!
//! A session is a refresh-token family (`user_sessions` holds one row per family). Ending
//! one revokes its refresh tokens and retires the family id on the deny-list, which every
//! access token of the session names in its `sid` claim: the tokens stop working here at
//! once and on the other replicas as a logout does (the invalidation channel, Redis).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::{
        invalidation::Invalidations,
        jwt::JwtKeys,
        principal::{Actor, TenantPrincipal},
    },
    client_address::ClientInfo,
    db::TenantScope,
    error::{AppError, AppResult},
    services::{
        audit::{self, AuditEntry},
        sessions,
    },
};

/// One of the caller's sessions.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct Session {
    /// The session (refresh-token family) id; access tokens name it in `sid`.
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    /// The last login or refresh of the session.
    pub last_used_at: DateTime<Utc>,
    /// The client address of the last login or refresh, when known.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The session the calling token belongs to.
    #[sqlx(skip)]
    pub current: bool,
}

/// The user behind a tenant principal: API keys have no sessions.
fn user_of(principal: &TenantPrincipal) -> AppResult<Uuid> {
    match principal.actor {
        Actor::User(id) => Ok(id),
        _ => Err(AppError::forbidden("API keys have no sessions")),
    }
}

/// The caller's live sessions (a refresh token neither spent, revoked nor expired),
/// newest first, keyset-paginated.
pub async fn list(
    principal: &TenantPrincipal,
    before: Option<Uuid>,
    limit: i64,
) -> AppResult<Vec<Session>> {
    let user_id = user_of(principal)?;
    let current = principal.token.as_ref().and_then(|t| t.session);
    let mut rows: Vec<Session> = sqlx::query_as(live_sessions(&principal.scope))
        .bind(user_id)
        .bind(before)
        .bind(limit)
        .fetch_all(principal.scope.db())
        .await?;
    for row in &mut rows {
        row.current = Some(row.id) == current;
    }
    Ok(rows)
}

fn live_sessions(scope: &TenantScope) -> crate::db::TenantSql {
    scope.sql(
        "select s.id, s.created_at, s.last_used_at, s.ip, s.user_agent
         from {schema}.user_sessions s
         where s.user_id = $1 and ($2::uuid is null or s.id < $2)
           and exists (select 1 from {schema}.refresh_tokens r
                       where r.family_id = s.id and r.revoked_at is null
                         and r.rotated_at is null and r.expires_at > now())
         order by s.id desc limit $3",
    )
}

/// Ends one of the caller's sessions: its refresh tokens are revoked and its access
/// tokens refused on every replica. Another user's (or tenant's) session is 404.
pub async fn end(
    invalidations: &Invalidations,
    jwt: &JwtKeys,
    principal: &TenantPrincipal,
    id: Uuid,
    client: &ClientInfo,
) -> AppResult<()> {
    // An API key has no sessions: none of them is its own.
    let Actor::User(user_id) = principal.actor else {
        return Err(AppError::not_found());
    };
    let mut tx = principal.scope.begin().await?;
    let sql = tx.sql("select id from {schema}.user_sessions where id = $1 and user_id = $2");
    let found: Option<Uuid> = sqlx::query_scalar(sql)
        .bind(id)
        .bind(user_id)
        .fetch_optional(tx.conn())
        .await?;
    found.ok_or_else(AppError::not_found)?;
    sessions::revoke_family_in(&mut tx, id).await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(principal.actor), "auth.session_ended", client).target("session", id),
    )
    .await?;
    tx.commit().await?;
    // Its access tokens live at most the access-token lifetime from now.
    let until = Utc::now() + Duration::seconds(jwt.access_ttl_seconds());
    invalidations.deny_token(id, until.timestamp()).await;
    Ok(())
}
