//! Onboarding: a tenant row, its schema and tables, the system roles, the admin user and
//! the scaling policy, in one transaction: all or nothing.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::{password, password::Password, principal::Actor},
    client_address::ClientInfo,
    db::{TenantPools, TenantTx, migrate},
    error::{AppError, AppResult, ErrorCode},
    rbac::{owner_model, roles::ADMIN},
    services::{
        audit::{self, AuditEntry},
        notifications::{self, Mailer, PlatformMail},
        roles,
        sessions::{self, Issuer, TokenPair},
        tenants::{self, Plan, Tenant, TenantSlug},
        users::{self, Email, NewUser, User},
    },
};

/// A validated onboarding request.
#[derive(Debug)]
pub struct NewTenant {
    pub name: String,
    pub slug: TenantSlug,
    pub plan: Plan,
    pub admin_email: Email,
    pub admin_password: Password,
    pub admin_first_name: Option<String>,
    pub admin_last_name: Option<String>,
    /// A keyed hash of the whole request (see [`fingerprint`]), to recognise a retry.
    pub fingerprint: Vec<u8>,
}

/// What onboarding answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Onboarded {
    pub tenant: Tenant,
    pub admin_user: User,
    /// The admin's first session. Absent when the answer replays an earlier request
    /// with the same `Idempotency-Key`: a replay never hands out credentials (log in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenPair>,
    /// Whether this answer replays an earlier request.
    #[serde(skip)]
    pub replayed: bool,
}

/// How long an idempotency record answers retries; older ones are ignored, replaced
/// and purged.
const IDEMPOTENCY_TTL: &str = "24 hours";

/// The purpose under which the idempotency secret is derived from the signing key.
pub const IDEMPOTENCY_SECRET_PURPOSE: &str = "onboarding idempotency v1";

/// The fingerprint of a request body for `Idempotency-Key`: HMAC-SHA256 of the whole
/// body, password included, under a server secret. A retry must repeat the request
/// exactly (whoever knows the key but not the password gets no replay), and the stored
/// value does not let a reader of the database test password guesses.
pub fn fingerprint(secret: &[u8], body: &[u8]) -> Vec<u8> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    aws_lc_rs::hmac::sign(&key, body).as_ref().to_vec()
}

/// Onboards a tenant. With an idempotency key, a retry of the same request (same caller,
/// same body) within 24 h answers the first tenant and admin — without tokens — instead
/// of creating a second tenant; the same key with another body is refused (422).
pub async fn onboard(
    pools: &TenantPools,
    issuer: &Issuer,
    mailer: &Mailer,
    input: NewTenant,
    actor: Option<Actor>,
    idempotency_key: Option<&str>,
    client: &ClientInfo,
) -> AppResult<Onboarded> {
    // Hash before the transaction: it is the slow part and holds no locks.
    let password_hash = password::hash(input.admin_password.clone()).await?;
    let tenant_id = Uuid::now_v7();
    let mut tx = pools.provisioning_scope(tenant_id).begin().await?;

    let idempotency_scope = match actor {
        Some(actor) => format!("tenants:{actor}"),
        None => "tenants:public".to_owned(),
    };
    if let Some(key) = idempotency_key {
        // A concurrent request with the same key waits here until the first commits.
        // An expired record is taken over as if it were not there.
        let claimed: Option<bool> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "insert into platform.idempotency_keys (scope, key, request_hash, tenant_id)
             values ($1, $2, $3, $4)
             on conflict (scope, key) do update
                set request_hash = excluded.request_hash, tenant_id = excluded.tenant_id,
                    response = null, created_at = now()
                where platform.idempotency_keys.created_at < now() - interval '{IDEMPOTENCY_TTL}'
             returning true"
        )))
        .bind(&idempotency_scope)
        .bind(key)
        .bind(&input.fingerprint)
        .bind(tenant_id)
        .fetch_optional(tx.conn())
        .await?;
        if claimed.is_none() {
            drop(tx);
            return replay(pools, &idempotency_scope, key, &input.fingerprint).await;
        }
    }

    sqlx::query(
        "insert into platform.tenants (id, name, slug, plan, status) values ($1, $2, $3, $4, 'active')",
    )
    .bind(tenant_id)
    .bind(&input.name)
    .bind(input.slug.as_str())
    .bind(input.plan.as_str())
    .execute(tx.conn())
    .await
    .map_err(crate::error::on_unique("tenants_slug_key", || {
        AppError::new(ErrorCode::TenantSlugTaken, "this slug is already taken")
    }))?;
    migrate::apply_tenant(tx.conn(), tenant_id).await?;
    roles::seed_system_roles(&mut tx).await?;
    let admin_roles = users::resolve_roles(&mut tx, &[ADMIN.name.to_owned()]).await?;
    let admin_id = users::create(
        &mut tx,
        NewUser {
            email: input.admin_email.clone(),
            password_hash,
            first_name: input.admin_first_name,
            last_name: input.admin_last_name,
            self_registered: false,
        },
        owner_model::system_grant(admin_roles),
    )
    .await?;
    insert_scaling_policy(&mut tx, input.plan).await?;
    audit::record_in(
        &mut tx,
        AuditEntry::new(
            actor.or(Some(Actor::User(admin_id))),
            "tenant.created",
            client,
        )
        .target("tenant", tenant_id)
        .metadata(json!({"slug": input.slug.as_str(), "plan": input.plan})),
    )
    .await?;
    let tokens = sessions::issue(issuer, &mut tx, admin_id, vec!["admin".to_owned()], None).await?;
    if let Some(key) = idempotency_key {
        sqlx::query(
            "update platform.idempotency_keys set response = $3 where scope = $1 and key = $2",
        )
        .bind(&idempotency_scope)
        .bind(key)
        .bind(json!({"tenant_id": tenant_id, "user_id": admin_id}))
        .execute(tx.conn())
        .await?;
    }
    let admin_user = users::get(&mut tx, admin_id).await?;
    let welcome = notifications::queue_platform_in(
        &mailer.limits,
        &mut tx,
        input.plan,
        PlatformMail::Welcome,
        &admin_user.email,
        format!("Your organisation {} is ready.", input.slug.as_str()),
    )
    .await?;
    tx.commit().await?;
    if let Some(welcome) = welcome {
        notifications::dispatch(&mailer.queue, tenant_id, &welcome).await;
    }
    if idempotency_key.is_some() {
        purge_expired_idempotency_records(pools.platform()).await;
    }

    let tenant = tenants::find(pools.platform(), tenant_id)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("onboarded tenant vanished")))?;
    tracing::info!(%tenant_id, slug = %tenant.slug, "tenant onboarded");
    Ok(Onboarded {
        tenant,
        admin_user,
        tokens: Some(tokens),
        replayed: false,
    })
}

/// Deletes a batch of expired idempotency records. Opportunistic: run after onboardings
/// that used a key, so the table stays small without a scheduled job; a failure only
/// leaves rows that the claim ignores anyway.
async fn purge_expired_idempotency_records(db: &sqlx::PgPool) {
    let result = sqlx::query(sqlx::AssertSqlSafe(format!(
        "delete from platform.idempotency_keys where ctid in (
            select ctid from platform.idempotency_keys
            where created_at < now() - interval '{IDEMPOTENCY_TTL}' limit 1000)"
    )))
    .execute(db)
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not purge expired idempotency records");
    }
}

async fn insert_scaling_policy(tx: &mut TenantTx, plan: Plan) -> sqlx::Result<()> {
    let (min, max) = plan.capacity_bounds();
    sqlx::query(
        "insert into platform.scaling_policies
            (tenant_id, min_capacity, max_capacity, target_rps_per_unit, current_capacity)
         values ($1, $2, $3, 50, $2)",
    )
    .bind(tx.tenant_id())
    .bind(min)
    .bind(max)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Answers a retried onboarding with the tenant and admin it created the first time —
/// never with credentials: whoever retries logs in.
async fn replay(
    pools: &TenantPools,
    scope: &str,
    key: &str,
    fingerprint: &[u8],
) -> AppResult<Onboarded> {
    let record: Option<(Vec<u8>, Option<serde_json::Value>)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select request_hash, response from platform.idempotency_keys
             where scope = $1 and key = $2
               and created_at >= now() - interval '{IDEMPOTENCY_TTL}'"
        )))
        .bind(scope)
        .bind(key)
        .fetch_optional(pools.platform())
        .await?;
    let reused = || {
        AppError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used with a different request",
        )
    };
    let Some((request_hash, response)) = record else {
        // Expired between the claim and this read: the client may simply retry.
        return Err(AppError::conflict(
            ErrorCode::Conflict,
            "this Idempotency-Key is being reused; retry the request",
        ));
    };
    if request_hash != fingerprint {
        return Err(reused());
    }
    let ids = response.ok_or_else(reused)?;
    let id = |field: &str| {
        ids.get(field)
            .and_then(|v| v.as_str())
            .and_then(|v| Uuid::parse_str(v).ok())
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("bad idempotency record")))
    };
    let (tenant_id, user_id) = (id("tenant_id")?, id("user_id")?);
    let tenant = tenants::find(pools.platform(), tenant_id)
        .await?
        .ok_or_else(AppError::not_found)?;
    if tenant.status == "deleted" {
        // Its schema may already be gone; the record goes with the purge.
        return Err(AppError::conflict(
            ErrorCode::Conflict,
            "the tenant created with this Idempotency-Key has been deleted",
        ));
    }
    let mut tx = pools.scope(tenant_id).begin().await?;
    let admin_user = users::get(&mut tx, user_id).await?;
    tx.commit().await?;
    Ok(Onboarded {
        tenant,
        admin_user,
        tokens: None,
        replayed: true,
    })
}
