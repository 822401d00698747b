//! Multi-factor authentication with TOTP (RFC 6238): enrolment, recovery codes, the
//! second step of a login, removal by the user and resets by an administrator.
//!
//! Secrets are sealed with `MFA_ENCRYPTION_KEY` (AES-256-GCM, bound to the tenant and
//! user), never stored in clear. A code is accepted once: the user's last accepted time
//! step is remembered and only a later one passes. Wrong codes are counted per user in
//! the database (`mfa_failures`) under the user's MFA row lock, so the 5-per-15-minutes
//! budget holds across replicas and parallel guesses, whether or not the rate limiter
//! (which may be switched off or degraded) runs.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    app::App,
    auth::{
        principal::{Actor, TenantPrincipal},
        secrets::sha256,
        totp,
    },
    client::ClientInfo,
    db::TenantTx,
    error::{AppError, AppResult, ErrorCode},
    rbac::policy,
    services::{
        audit::{self, AuditEntry},
        sessions::{self, Amr, TokenPair},
        tenants::{self, Tenant},
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
    #[schema(min_items = 10, max_items = 10, example = json!(["abcde-fghij-klmno-pqrst"]))]
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

fn open_secret(app: &App, tenant_id: Uuid, user_id: Uuid, sealed: &[u8]) -> AppResult<Vec<u8>> {
    app.config
        .mfa_key()
        .open(&context(tenant_id, user_id), sealed)
        .ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "a TOTP secret does not open: MFA_ENCRYPTION_KEY changed?"
            ))
        })
}

/// Starts (or restarts) enrolment: a new secret, pending until confirmed with a code.
/// A user whose MFA is on must remove it first (409).
pub async fn enroll(app: &App, principal: &TenantPrincipal) -> AppResult<Enrolment> {
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
    let sealed = app
        .config
        .mfa_key()
        .seal(&context(tenant_id, user_id), &secret);
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
    let user = users::get_in(&mut tx, user_id).await?;
    tx.commit().await?;
    let secret = totp::base32(&secret);
    let account = format!("{} ({})", user.email, principal.tenant.slug);
    Ok(Enrolment {
        otpauth_uri: totp::otpauth_uri(&app.config.jwt_issuer, &account, &secret),
        secret,
    })
}

/// Confirms enrolment with a code from the authenticator: MFA is on from now, and the
/// recovery codes are returned (once; stored hashed).
pub async fn confirm(
    app: &App,
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
    let secret = open_secret(app, principal.tenant_id(), user_id, &sealed)?;
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

/// A recovery code: 20 base32 letters and digits (100 bits) in groups of five.
fn new_recovery_code() -> String {
    let mut bytes = [0u8; 13];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system RNG works");
    let letters = totp::base32(&bytes).to_lowercase();
    letters
        .as_bytes()
        .chunks(5)
        .take(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// The stored form of a recovery code, as typed or as issued.
fn recovery_hash(code: &str) -> Vec<u8> {
    let normalized: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    sha256(&normalized)
}

async fn replace_recovery_codes(tx: &mut TenantTx, user_id: Uuid) -> sqlx::Result<Vec<String>> {
    let sql = tx.sql("delete from {schema}.mfa_recovery_codes where user_id = $1");
    sqlx::query(sql).bind(user_id).execute(tx.conn()).await?;
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let ids: Vec<Uuid> = codes.iter().map(|_| Uuid::now_v7()).collect();
    let hashes: Vec<Vec<u8>> = codes.iter().map(|c| recovery_hash(c)).collect();
    let sql = tx.sql(
        "insert into {schema}.mfa_recovery_codes (id, user_id, code_hash)
         select unnest($1::uuid[]), $2, unnest($3::bytea[])",
    );
    sqlx::query(sql)
        .bind(ids)
        .bind(user_id)
        .bind(hashes)
        .execute(tx.conn())
        .await?;
    Ok(codes)
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

/// The outcome of checking a code.
enum Checked {
    Passed,
    Failed,
    /// The user has no MFA (never enrolled, removed or reset meanwhile).
    NotOn,
}

/// Checks `proof` for `user_id` inside `tx`, holding the user's MFA row lock: refuses
/// (429) once [`MAX_FAILURES`] wrong codes were given within the window, spends the
/// code (its time step, or the recovery code) when it passes, records a failure when it
/// does not. The caller commits either way.
async fn check(app: &App, tx: &mut TenantTx, user_id: Uuid, proof: &Proof) -> AppResult<Checked> {
    let sql = tx.sql(
        "select secret_sealed, last_used_step from {schema}.user_mfa
         where user_id = $1 and confirmed_at is not null for update",
    );
    let row: Option<(Vec<u8>, Option<i64>)> = sqlx::query_as(sql)
        .bind(user_id)
        .fetch_optional(tx.conn())
        .await?;
    let Some((sealed, last_used)) = row else {
        return Ok(Checked::NotOn);
    };
    let sql = tx.sql(
        "select count(*), min(at) from {schema}.mfa_failures
         where user_id = $1 and at > now() - make_interval(mins => $2)",
    );
    let (failures, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(sql)
        .bind(user_id)
        .bind(i32::try_from(FAILURE_WINDOW_MINUTES).unwrap_or(15))
        .fetch_one(tx.conn())
        .await?;
    if failures >= MAX_FAILURES {
        let retry = oldest.map_or(FAILURE_WINDOW_MINUTES * 60, |at| {
            (at + Duration::minutes(FAILURE_WINDOW_MINUTES) - Utc::now()).num_seconds()
        });
        return Err(AppError::rate_limited(
            "too many wrong codes for this account; try again later",
            u64::try_from(retry.max(1)).unwrap_or(1),
        ));
    }
    let passed = match proof {
        Proof::Totp(code) => {
            let secret = open_secret(app, tx.tenant_id(), user_id, &sealed)?;
            match totp::matching_step(&secret, code, totp::current_step(), last_used) {
                Some(step) => {
                    let sql = tx
                        .sql("update {schema}.user_mfa set last_used_step = $2 where user_id = $1");
                    sqlx::query(sql)
                        .bind(user_id)
                        .bind(i64::try_from(step).unwrap_or(i64::MAX))
                        .execute(tx.conn())
                        .await?;
                    true
                }
                None => false,
            }
        }
        Proof::Recovery(code) => {
            let sql = tx.sql(
                "update {schema}.mfa_recovery_codes set used_at = now()
                 where id = (select id from {schema}.mfa_recovery_codes
                             where user_id = $1 and code_hash = $2 and used_at is null
                             limit 1)
                 returning id",
            );
            let used: Option<Uuid> = sqlx::query_scalar(sql)
                .bind(user_id)
                .bind(recovery_hash(code))
                .fetch_optional(tx.conn())
                .await?;
            used.is_some()
        }
    };
    if passed {
        return Ok(Checked::Passed);
    }
    let sql = tx.sql(
        "with old as (delete from {schema}.mfa_failures
                      where user_id = $1 and at <= now() - make_interval(mins => $2))
         insert into {schema}.mfa_failures (user_id) values ($1)",
    );
    sqlx::query(sql)
        .bind(user_id)
        .bind(i32::try_from(FAILURE_WINDOW_MINUTES).unwrap_or(15))
        .execute(tx.conn())
        .await?;
    Ok(Checked::Failed)
}

/// Records a wrong code and commits, then answers 401.
async fn failed(mut tx: TenantTx, user_id: Uuid, proof: &Proof, client: &ClientInfo) -> AppError {
    let entry = AuditEntry::new(Some(Actor::User(user_id)), "auth.mfa_failed", client)
        .target("user", user_id)
        .metadata(json!({"method": proof.method()}));
    let recorded = async {
        audit::record_in(&mut tx, entry).await?;
        tx.commit().await
    };
    match recorded.await {
        Ok(()) => wrong_code(),
        Err(e) => e.into(),
    }
}

/// The first step of a login for a user with MFA: a challenge token, stored hashed,
/// inside the login's transaction.
pub async fn challenge_in(tx: &mut TenantTx, user_id: Uuid) -> sqlx::Result<MfaChallenge> {
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
    app: &App,
    mfa_token: &str,
    proof: Proof,
    client: &ClientInfo,
) -> AppResult<TokenPair> {
    let invalid =
        || AppError::unauthenticated("the MFA token is not valid or has expired; log in again");
    let (tenant_id, hash) = sessions::parse_opaque("mt", mfa_token).ok_or_else(invalid)?;
    let tenant = tenants::find(&app.db, tenant_id)
        .await?
        .filter(Tenant::is_active)
        .ok_or_else(invalid)?;
    let mut tx = app.tenant_scope(tenant.id).begin().await?;
    let sql = tx.sql(
        "select id, user_id from {schema}.mfa_challenges
         where token_hash = $1 and used_at is null and expires_at > now() for update",
    );
    let (challenge, user_id): (Uuid, Uuid) = sqlx::query_as(sql)
        .bind(hash)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(invalid)?;
    match check(app, &mut tx, user_id, &proof).await? {
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
        app,
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

/// Turns MFA off for the caller, who proves it with a code or a recovery code.
pub async fn remove(
    app: &App,
    principal: &TenantPrincipal,
    proof: Proof,
    client: &ClientInfo,
) -> AppResult<()> {
    let user_id = user_of(principal)?;
    let mut tx = principal.scope.begin().await?;
    match check(app, &mut tx, user_id, &proof).await? {
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
    principal: &TenantPrincipal,
    target_id: Uuid,
    client: &ClientInfo,
) -> AppResult<()> {
    let mut tx = principal.scope.begin().await?;
    let target = users::target(&mut tx, target_id).await?;
    let cleared = policy::reset_user_mfa(&principal.authority(), &target)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_100_bits_in_groups_and_match_however_typed() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 23, "{code}");
        assert_eq!(code.split('-').count(), 4);
        assert_eq!(
            recovery_hash(&code),
            recovery_hash(&code.to_uppercase().replace('-', " "))
        );
        assert_ne!(recovery_hash(&code), recovery_hash(&new_recovery_code()));
    }

    #[test]
    fn six_digits_are_a_totp_code_anything_else_a_recovery_code() {
        assert!(matches!(Proof::from_code(" 123456 "), Proof::Totp(c) if c == "123456"));
        assert!(matches!(Proof::from_code("12345"), Proof::Recovery(_)));
        assert!(matches!(
            Proof::from_code("abcde-fghij"),
            Proof::Recovery(_)
        ));
    }
}
