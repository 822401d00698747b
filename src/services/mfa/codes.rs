//! Codes: recovery codes, and checking a code under the user's lock and failure budget.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{FAILURE_WINDOW_MINUTES, MAX_FAILURES, Proof, RECOVERY_CODES, open_secret, wrong_code};
use crate::{
    auth::{principal::Actor, secrets::sha256, totp},
    client_address::ClientInfo,
    config::AuthConfig,
    db::TenantTx,
    error::{AppError, AppResult},
    services::audit::{self, AuditEntry},
};

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

pub(super) async fn replace_recovery_codes(
    tx: &mut TenantTx,
    user_id: Uuid,
) -> sqlx::Result<Vec<String>> {
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

/// The outcome of checking a code.
pub(super) enum Checked {
    Passed,
    Failed,
    /// The user has no MFA (never enrolled, removed or reset meanwhile).
    NotOn,
}

/// Checks `proof` for `user_id` inside `tx`, holding the user's MFA row lock: refuses
/// (429) once [`MAX_FAILURES`] wrong codes were given within the window, spends the
/// code (its time step, or the recovery code) when it passes, records a failure when it
/// does not. The caller commits either way.
pub(super) async fn check(
    auth: &AuthConfig,
    tx: &mut TenantTx,
    user_id: Uuid,
    proof: &Proof,
) -> AppResult<Checked> {
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
            let secret = open_secret(auth, tx.tenant_id(), user_id, &sealed)?;
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
pub(super) async fn failed(
    mut tx: TenantTx,
    user_id: Uuid,
    proof: &Proof,
    client: &ClientInfo,
) -> AppError {
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
