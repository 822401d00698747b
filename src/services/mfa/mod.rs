//! Multi-factor authentication with TOTP (RFC 6238): enrolment, recovery codes, the
//! second step of a login, removal by the user and resets by an administrator.
//!
//! Secrets are sealed with `MFA_ENCRYPTION_KEY` (AES-256-GCM, bound to the tenant and
//! user), never stored in clear. A code is accepted once: the user's last accepted time
//! step is remembered and only a later one passes. Wrong codes are counted per user in
//! the database (`mfa_failures`) under the user's MFA row lock, so the 5-per-15-minutes
//! budget holds across replicas and parallel guesses, whether or not the rate limiter
//! (which may be switched off or degraded) runs.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::{
        granted::Granted,
        principal::{Actor, TenantPrincipal},
        totp,
    },
    client_address::ClientInfo,
    config::AuthConfig,
    db::TenantTx,
    error::{AppError, AppResult, ErrorCode},
    rbac::{needs, owner_model},
    services::{
        audit::{self, AuditEntry},
        users,
    },
};

/// How long the `mfa_token` of a login's first step is good for.
pub const CHALLENGE_TTL_SECONDS: i64 = 5 * 60;
/// Wrong codes allowed per user within [`FAILURE_WINDOW_MINUTES`].
pub const MAX_FAILURES: i64 = 5;
pub const FAILURE_WINDOW_MINUTES: i64 = 15;
/// Recovery codes handed out at confirmation.
pub const RECOVERY_CODES: usize = 10;

/// What enrolment answers: the secret for an authenticator app, as text and as a URI
/// (usually shown as a QR code).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Enrolment {
    /// The shared secret in base32 (RFC 4648, no padding).
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    pub secret: String,
    /// `otpauth://totp/...` (SHA-1, 6 digits, 30 s).
    pub otpauth_uri: String,
}

/// The recovery codes, shown once at confirmation; each works once instead of a code.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecoveryCodes {
    #[schema(min_items = 10, max_items = 10, example = json!([
        "abcde-fghij-klmno-pqrst", "bcdef-ghijk-lmnop-qrstu", "cdefg-hijkl-mnopq-rstuv", "defgh-ijklm-nopqr-stuvw", "efghi-jklmn-opqrs-tuvwx", "fghij-klmno-pqrst-uvwxy", "ghijk-lmnop-qrstu-vwxyz", "hijkl-mnopq-rstuv-wxyz2", "ijklm-nopqr-stuvw-xyz23", "jklmn-opqrs-tuvwx-yz234"
    ]))]
    pub recovery_codes: Vec<String>,
}

/// The first step of a login with MFA: no tokens yet, a token for `/auth/mfa/verify`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MfaChallenge {
    /// Always `true`.
    pub mfa_required: bool,
    /// Good for 5 minutes, only at `POST /api/v1/auth/mfa/verify`.
    pub mfa_token: String,
    /// Seconds until `mfa_token` expires.
    pub expires_in: i64,
}

/// What proves the second factor.
#[derive(Debug, Clone)]
pub enum Proof {
    /// A 6-digit TOTP code.
    Totp(String),
    /// One of the recovery codes (dashes and case do not matter).
    Recovery(String),
}

impl Proof {
    /// A 6-digit code is a TOTP code; anything else is taken as a recovery code.
    pub fn from_code(code: &str) -> Self {
        let code = code.trim();
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            Proof::Totp(code.to_owned())
        } else {
            Proof::Recovery(code.to_owned())
        }
    }

    fn method(&self) -> &'static str {
        match self {
            Proof::Totp(_) => "totp",
            Proof::Recovery(_) => "recovery_code",
        }
    }
}

fn wrong_code() -> AppError {
    AppError::new(ErrorCode::InvalidCredentials, "the code is not right")
}

fn user_of(principal: &TenantPrincipal) -> AppResult<Uuid> {
    match principal.actor {
        Actor::User(id) if principal.token.is_some() => Ok(id),
        _ => Err(AppError::forbidden(
            "only users (with a bearer token) have MFA",
        )),
    }
}

/// What the sealed secret is bound to: its tenant and user.
fn context(tenant_id: Uuid, user_id: Uuid) -> Vec<u8> {
    format!("tenantry totp {tenant_id} {user_id}").into_bytes()
}

fn open_secret(
    auth: &AuthConfig,
    tenant_id: Uuid,
    user_id: Uuid,
    sealed: &[u8],
) -> AppResult<Vec<u8>> {
    auth.mfa_key()
        .open(&context(tenant_id, user_id), sealed)
        .ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "a TOTP secret does not open: MFA_ENCRYPTION_KEY changed?"
            ))
        })
}

/// Starts (or restarts) enrolment: a new secret, pending until confirmed with a code.
/// A user whose MFA is on must remove it first (409).
pub async fn enroll(auth: &AuthConfig, principal: &TenantPrincipal) -> AppResult<Enrolment> {
    let user_id = user_of(principal)?;
    let tenant_id = principal.tenant_id();
    let mut tx = principal.scope.begin().await?;
    let sql = tx.sql(
        "select confirmed_at is not null from {schema}.user_mfa where user_id = $1 for update",
    );
    let confirmed: Option<bool> = sqlx::query_scalar(sql)
        .bind(user_id)
        .fetch_optional(tx.conn())
        .await?;
    if confirmed == Some(true) {
        return Err(AppError::conflict(
            ErrorCode::Conflict,
            "MFA is already on: remove it (DELETE /api/v1/auth/mfa) before enrolling again",
        ));
    }
    let secret = totp::new_secret();
    let sealed = auth.mfa_key().seal(&context(tenant_id, user_id), &secret);
    let sql = tx.sql(
        "insert into {schema}.user_mfa (user_id, secret_sealed) values ($1, $2)
         on conflict (user_id) do update set secret_sealed = excluded.secret_sealed,
            confirmed_at = null, last_used_step = null, created_at = now()",
    );
    sqlx::query(sql)
        .bind(user_id)
        .bind(sealed)
        .execute(tx.conn())
        .await?;
    let user = users::get(&mut tx, user_id).await?;
    tx.commit().await?;
    let secret = totp::base32(&secret);
    let account = format!("{} ({})", user.email, principal.tenant.slug);
    Ok(Enrolment {
        otpauth_uri: totp::otpauth_uri(&auth.jwt_issuer, &account, &secret),
        secret,
    })
}

/// Confirms enrolment with a code from the authenticator: MFA is on from now, and the
/// recovery codes are returned (once; stored hashed).
pub async fn confirm(
    auth: &AuthConfig,
    principal: &TenantPrincipal,
    code: &str,
    client: &ClientInfo,
) -> AppResult<RecoveryCodes> {
    let user_id = user_of(principal)?;
    let mut tx = principal.scope.begin().await?;
    let sql = tx.sql(
        "select secret_sealed from {schema}.user_mfa
         where user_id = $1 and confirmed_at is null for update",
    );
    let sealed: Vec<u8> = sqlx::query_scalar(sql)
        .bind(user_id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(|| {
            AppError::conflict(
                ErrorCode::Conflict,
                "no enrolment is pending: enrol first (POST /api/v1/auth/mfa/totp/enroll)",
            )
        })?;
    let secret = open_secret(auth, principal.tenant_id(), user_id, &sealed)?;
    let step = totp::matching_step(&secret, code, totp::current_step(), None)
        .ok_or_else(|| AppError::invalid_field("code", "the code is not right"))?;
    let sql = tx.sql(
        "update {schema}.user_mfa set confirmed_at = now(), last_used_step = $2
         where user_id = $1",
    );
    sqlx::query(sql)
        .bind(user_id)
        .bind(i64::try_from(step).unwrap_or(i64::MAX))
        .execute(tx.conn())
        .await?;
    let recovery_codes = replace_recovery_codes(&mut tx, user_id).await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(principal.actor), "mfa.enrolled", client).target("user", user_id),
    )
    .await?;
    tx.commit().await?;
    Ok(RecoveryCodes { recovery_codes })
}

/// Whether the user has MFA on (enrolment confirmed).
pub async fn is_on_in(tx: &mut TenantTx, user_id: Uuid) -> sqlx::Result<bool> {
    let sql = tx.sql(
        "select exists (select 1 from {schema}.user_mfa
                        where user_id = $1 and confirmed_at is not null)",
    );
    sqlx::query_scalar(sql)
        .bind(user_id)
        .fetch_one(tx.conn())
        .await
}

/// Turns MFA off for the caller, who proves it with a code or a recovery code.
pub async fn remove(
    auth: &AuthConfig,
    principal: &TenantPrincipal,
    proof: Proof,
    client: &ClientInfo,
) -> AppResult<()> {
    let user_id = user_of(principal)?;
    let mut tx = principal.scope.begin().await?;
    match check(auth, &mut tx, user_id, &proof).await? {
        Checked::Passed => {}
        Checked::Failed => return Err(failed(tx, user_id, &proof, client).await),
        Checked::NotOn => {
            return Err(AppError::conflict(ErrorCode::Conflict, "MFA is not on"));
        }
    }
    delete_in(&mut tx, user_id).await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(principal.actor), "mfa.removed", client).target("user", user_id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// An administrator's reset of a user's MFA (a lost authenticator), under the owner
/// model: the target's permissions must be within the actor's.
pub async fn reset(
    principal: &Granted<needs::UsersUpdate>,
    target_id: Uuid,
    client: &ClientInfo,
) -> AppResult<()> {
    let mut tx = principal.scope.begin().await?;
    let target = users::target(&mut tx, target_id).await?;
    let cleared = owner_model::reset_user_mfa(&principal.authority(), &target)?;
    delete_in(&mut tx, cleared.target()).await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(Some(principal.actor), "mfa.reset", client).target("user", target_id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn delete_in(tx: &mut TenantTx, user_id: Uuid) -> sqlx::Result<()> {
    for sql in [
        tx.sql("delete from {schema}.user_mfa where user_id = $1"),
        tx.sql("delete from {schema}.mfa_recovery_codes where user_id = $1"),
        tx.sql("delete from {schema}.mfa_challenges where user_id = $1"),
    ] {
        sqlx::query(sql).bind(user_id).execute(tx.conn()).await?;
    }
    Ok(())
}

mod codes;
mod login;

use codes::{Checked, check, failed, replace_recovery_codes};
pub use login::{challenge_in, verify};
