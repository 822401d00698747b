//! The second step of a login with MFA.

use chrono::{Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{CHALLENGE_TTL_SECONDS, Checked, MfaChallenge, Proof, check, failed};
use crate::{
    auth::principal::Actor,
    client_address::ClientInfo,
    config::AuthConfig,
    db::{TenantPools, TenantTx},
    error::{AppError, AppResult},
    services::{
        audit::{self, AuditEntry},
        sessions::{self, Amr, Issuer, TokenPair},
        tenants::{self, Tenant},
    },
};

/// The first step of a login for a user with MFA: a challenge token, stored hashed,
/// inside the login's transaction.
pub async fn challenge_in(tx: &mut TenantTx, user_id: Uuid) -> sqlx::Result<MfaChallenge> {
    // The user's spent and expired challenges go as a new one comes.
    let sql = tx.sql(
        "delete from {schema}.mfa_challenges
         where user_id = $1 and (used_at is not null or expires_at <= now())",
    );
    sqlx::query(sql).bind(user_id).execute(tx.conn()).await?;
    let (token, hash) = sessions::opaque("mt", tx.tenant_id());
    let sql = tx.sql(
        "insert into {schema}.mfa_challenges (id, user_id, token_hash, expires_at)
         values ($1, $2, $3, $4)",
    );
    sqlx::query(sql)
        .bind(Uuid::now_v7())
        .bind(user_id)
        .bind(hash)
        .bind(Utc::now() + Duration::seconds(CHALLENGE_TTL_SECONDS))
        .execute(tx.conn())
        .await?;
    Ok(MfaChallenge {
        mfa_required: true,
        mfa_token: token,
        expires_in: CHALLENGE_TTL_SECONDS,
    })
}

/// The second step of a login: the challenge token and a code → the token pair (with
/// `amr: ["pwd", "otp"]`). A wrong code leaves the challenge usable until it expires.
pub async fn verify(
    pools: &TenantPools,
    issuer: &Issuer,
    auth: &AuthConfig,
    mfa_token: &str,
    proof: Proof,
    client: &ClientInfo,
) -> AppResult<TokenPair> {
    let invalid =
        || AppError::unauthenticated("the MFA token is not valid or has expired; log in again");
    let (tenant_id, hash) = sessions::parse_opaque("mt", mfa_token).ok_or_else(invalid)?;
    let tenant = tenants::find(pools.platform(), tenant_id)
        .await?
        .filter(Tenant::is_active)
        .ok_or_else(invalid)?;
    let mut tx = pools.scope(tenant.id).begin().await?;
    let sql = tx.sql(
        "select id, user_id from {schema}.mfa_challenges
         where token_hash = $1 and used_at is null and expires_at > now() for update",
    );
    let (challenge, user_id): (Uuid, Uuid) = sqlx::query_as(sql)
        .bind(hash)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(invalid)?;
    match check(auth, &mut tx, user_id, &proof).await? {
        Checked::Passed => {}
        Checked::Failed => return Err(failed(tx, user_id, &proof, client).await),
        Checked::NotOn => return Err(invalid()),
    }
    let sql = tx.sql("update {schema}.mfa_challenges set used_at = now() where id = $1");
    sqlx::query(sql).bind(challenge).execute(tx.conn()).await?;
    let roles = sessions::active_user_roles(&mut tx, user_id)
        .await?
        .ok_or_else(invalid)?;
    let pair = sessions::issue_for(
        issuer,
        &mut tx,
        user_id,
        roles,
        None,
        Amr::PasswordAndOtp,
        Some(client),
    )
    .await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(Actor::User(user_id)), "auth.login", client)
            .target("user", user_id)
            .metadata(json!({"amr": ["pwd", "otp"], "method": proof.method()})),
    )
    .await?;
    tx.commit().await?;
    Ok(pair)
}
