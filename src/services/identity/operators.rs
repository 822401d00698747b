//! Platform operators: their login (an access token with `scope: "platform"`), and
//! creating or resetting one.

use sqlx::PgPool;
use uuid::Uuid;

use super::*;
use crate::{auth::jwt::JwtKeys, services::rate_limit::RateLimiter};

/// Platform operator login → an access token with `scope: "platform"` and no tenant.
/// Failed attempts are limited as tenant logins are (10 per email per 15 minutes, then
/// 429), and every attempt, failed or not, is recorded in the platform audit log.
pub async fn admin_login(
    db: &PgPool,
    limits: &RateLimiter,
    jwt: &JwtKeys,
    email: &str,
    password: String,
    client: &ClientInfo,
) -> AppResult<(String, i64)> {
    let admin: Option<(Uuid, String, String, bool)> = sqlx::query_as(
        "select id, email, password_hash, is_active from platform.platform_admins
         where lower(email) = lower($1)",
    )
    .bind(email)
    .fetch_optional(db)
    .await?;
    // One budget per operator, whichever look-alike of the address was typed.
    let budget = admin.as_ref().map_or(email, |a| a.1.as_str());
    let attempt = match limits.operator_login_attempt(budget).await {
        Ok(attempt) => attempt,
        Err(e) => {
            let entry = operator_entry(
                admin.as_ref().map(|a| a.0),
                "auth.operator_login_failed",
                client,
            )
            .metadata(failure_metadata("rate_limited", email, admin.is_some()));
            audit::record_operator_event(db, entry).await?;
            return Err(e);
        }
    };
    let hash = admin.as_ref().filter(|a| a.3).map(|a| a.2.clone());
    let verified = password::verify(password, hash).await?;
    let admin_id = admin.as_ref().map(|a| a.0);
    let reason = match &admin {
        None => Some("unknown_operator"),
        Some((.., false)) => Some("inactive"),
        Some(_) if verified == Verified::No => Some("wrong_password"),
        Some(_) => None,
    };
    if let Some(reason) = reason {
        let entry = operator_entry(admin_id, "auth.operator_login_failed", client)
            .metadata(failure_metadata(reason, email, admin.is_some()));
        audit::record_operator_event(db, entry).await?;
        return Err(AppError::new(
            ErrorCode::InvalidCredentials,
            "the email or password is not right",
        ));
    }
    let admin_id = admin_id.ok_or_else(|| AppError::internal(anyhow::anyhow!("no operator")))?;
    attempt.succeeded(limits).await;
    audit::record_operator_event(
        db,
        operator_entry(Some(admin_id), "auth.operator_login", client),
    )
    .await?;
    let mut claims = jwt.claims(admin_id, None, Vec::new());
    claims.scope = Some("platform".to_owned());
    Ok((jwt.sign(&claims)?, jwt.access_ttl_seconds()))
}

/// A platform audit entry about an operator's login (`admin_id` when the address is an
/// operator's).
fn operator_entry(admin_id: Option<Uuid>, action: &'static str, client: &ClientInfo) -> AuditEntry {
    let mut entry = AuditEntry::new(admin_id.map(Actor::Platform), action, client);
    entry.actor_type = "platform";
    match admin_id {
        Some(id) => entry.target("platform_admin", id),
        None => entry,
    }
}

/// Why an operator login failed; for an address that is no operator's, the address as
/// typed (when it is one) so that probing shows in the log. Never the password.
fn failure_metadata(reason: &str, email: &str, known: bool) -> serde_json::Value {
    match (known, Email::parse("email", email)) {
        (false, Ok(typed)) => json!({"reason": reason, "email": typed.as_str()}),
        _ => json!({"reason": reason}),
    }
}

/// Creates or resets a platform operator and tells every replica (a changed password
/// ends the operator's tokens everywhere at once, not after the cache's 30 s).
pub async fn set_platform_admin(
    db: &PgPool,
    invalidations: &Invalidations,
    email: &Email,
    password: Password,
) -> anyhow::Result<Uuid> {
    let id = upsert_platform_admin(db, email, password).await?;
    invalidations
        .invalidate(invalidation::Change::Operator(id))
        .await;
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
