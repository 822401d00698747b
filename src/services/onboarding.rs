//! Onboarding: a tenant row, its schema and tables, the system roles, the admin user and
//! the scaling policy, in one transaction: all or nothing.

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    app::App,
    auth::{password, password::Password, principal::Actor},
    client::ClientInfo,
    db::{TenantScope, TenantTx, migrate},
    error::{AppError, AppResult, ErrorCode},
    services::{
        audit::{self, AuditEntry},
        notify::Message,
        roles,
        sessions::{self, TokenPair},
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
    /// A hash of the request without its password, to recognise a retry.
    pub fingerprint: Vec<u8>,
}

/// What onboarding answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Onboarded {
    pub tenant: Tenant,
    pub admin_user: User,
    pub tokens: TokenPair,
}

/// The fingerprint of a request body for `Idempotency-Key`, without secrets.
pub fn fingerprint(parts: &[&str]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize().to_vec()
}

/// Onboards a tenant. With an idempotency key, a retry of the same request answers the
/// first result (with fresh tokens) instead of creating a second tenant.
pub async fn onboard(
    app: &App,
    input: NewTenant,
    actor: Option<Actor>,
    idempotency_key: Option<&str>,
    client: &ClientInfo,
) -> AppResult<Onboarded> {
    // Hash before the transaction: it is the slow part and holds no locks.
    let password_hash = password::hash(input.admin_password.clone()).await?;
    let tenant_id = Uuid::now_v7();
    let mut tx = TenantScope::new(app.db.clone(), tenant_id).begin().await?;

    let idempotency_scope = match actor {
        Some(actor) => format!("tenants:{actor}"),
        None => "tenants:public".to_owned(),
    };
    if let Some(key) = idempotency_key {
        // A concurrent request with the same key waits here until the first commits.
        let claimed: Option<bool> = sqlx::query_scalar(
            "insert into platform.idempotency_keys (scope, key, request_hash)
             values ($1, $2, $3) on conflict do nothing returning true",
        )
        .bind(&idempotency_scope)
        .bind(key)
        .bind(&input.fingerprint)
        .fetch_optional(tx.conn())
        .await?;
        if claimed.is_none() {
            drop(tx);
            return replay(app, &idempotency_scope, key, &input.fingerprint).await;
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
    let admin_id = users::create(
        &mut tx,
        NewUser {
            email: input.admin_email.clone(),
            password_hash,
            first_name: input.admin_first_name,
            last_name: input.admin_last_name,
            roles: vec!["admin".to_owned()],
        },
        None,
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
    let tokens = sessions::issue(app, &mut tx, admin_id, vec!["admin".to_owned()], None).await?;
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
    let admin_user = users::get_in(&mut tx, admin_id).await?;
    tx.commit().await?;

    let tenant = tenants::find(&app.db, tenant_id)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("onboarded tenant vanished")))?;
    app.outbox.send(Message {
        to: admin_user.email.clone(),
        template: "welcome",
        subject: format!("Welcome to {}", tenant.name),
        body: format!("Your organisation {} is ready.", tenant.slug),
    });
    tracing::info!(%tenant_id, slug = %tenant.slug, "tenant onboarded");
    Ok(Onboarded {
        tenant,
        admin_user,
        tokens,
    })
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

/// Answers a retried onboarding with the tenant and admin it created the first time.
async fn replay(app: &App, scope: &str, key: &str, fingerprint: &[u8]) -> AppResult<Onboarded> {
    let (request_hash, response): (Vec<u8>, Option<serde_json::Value>) = sqlx::query_as(
        "select request_hash, response from platform.idempotency_keys where scope = $1 and key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_one(&app.db)
    .await?;
    let reused = || {
        AppError::new(
            ErrorCode::Conflict,
            "this Idempotency-Key was used with a different request",
        )
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
    let tenant = tenants::find(&app.db, tenant_id)
        .await?
        .ok_or_else(AppError::not_found)?;
    let mut tx = TenantScope::new(app.db.clone(), tenant_id).begin().await?;
    let admin_user = users::get_in(&mut tx, user_id).await?;
    let tokens = sessions::issue(app, &mut tx, user_id, admin_user.roles.clone(), None).await?;
    tx.commit().await?;
    Ok(Onboarded {
        tenant,
        admin_user,
        tokens,
    })
}
