//! Autoscaling decision engine: each tenant's capacity (abstract units) decided from its
//! metered request rate under its policy.
//!
//! - [`decision`]: the pure decision function, shared by the evaluator and `simulate`;
//! - [`policy`]: the policy and its validation against the plan;
//! - [`evaluator`]: the periodic pass over every active tenant, on one replica at a time
//!   ([`lease`]), publishing [`gauge`];
//! - this module: the policy rows, events and the views the API shows.

pub mod decision;
pub mod evaluator;
pub mod gauge;
pub mod policy;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgExecutor, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

pub use decision::{Action, Decision, History};
pub use policy::{Policy, PolicyInput};

use crate::{
    auth::granted::Granted,
    client_address::ClientInfo,
    error::{AppError, AppResult},
    rbac::needs,
    services::{
        audit::{self, AuditEntry},
        tenants::Plan,
    },
};

/// The autoscaler of a replica: what its [`evaluator`] works with (the platform pool,
/// Redis for the lease, its settings) and the capacity gauge it publishes. Built once by
/// [`crate::App`]; clones share the gauge.
#[derive(Clone)]
pub struct Autoscaler {
    pub db: PgPool,
    pub redis: crate::redis::Redis,
    pub config: crate::config::AutoscalerConfig,
    /// The Redis key of the evaluator's lease (in the deployment's key namespace).
    pub lease_key: String,
    /// `tenantry_tenant_capacity`, exported by the replica that evaluates.
    pub gauge: std::sync::Arc<gauge::CapacityGauge>,
}

impl Autoscaler {
    pub fn new(
        db: PgPool,
        redis: crate::redis::Redis,
        config: crate::config::AutoscalerConfig,
        lease_key: String,
    ) -> Self {
        Self {
            db,
            redis,
            config,
            lease_key,
            gauge: Default::default(),
        }
    }
}

/// The capacity range a plan allows.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Bounds {
    pub min: i32,
    pub max: i32,
}

/// A tenant's scaling state, as `GET /api/v1/scaling` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScalingStatus {
    /// Capacity after the last decision (units).
    pub current_capacity: i32,
    /// What the last measured load asks for within the policy bounds, before the cooldown
    /// and the stabilization window; it differs from `current_capacity` while one of them
    /// holds a change back. Equal to `current_capacity` before the first evaluation.
    pub desired_capacity: i32,
    pub policy: Policy,
    /// The bounds the tenant's plan allows for `min_capacity` and `max_capacity`.
    pub plan_bounds: Bounds,
    pub last_evaluated_at: Option<DateTime<Utc>>,
    /// The measurement behind the last decision: `rps` (requests/s over the last 60 s),
    /// `window_seconds`, `requests_previous_minute`, `requests_current_minute`,
    /// `recommendation`.
    #[schema(value_type = Option<Object>)]
    pub last_metrics: Option<Value>,
}

#[derive(sqlx::FromRow)]
struct PolicyRow {
    #[sqlx(flatten)]
    policy: Policy,
    current_capacity: i32,
    desired_capacity: Option<i32>,
    last_evaluated_at: Option<DateTime<Utc>>,
    last_metrics: Option<Value>,
}

impl PolicyRow {
    fn status(self, plan: Plan) -> ScalingStatus {
        let (min, max) = plan.capacity_bounds();
        ScalingStatus {
            current_capacity: self.current_capacity,
            desired_capacity: self.desired_capacity.unwrap_or(self.current_capacity),
            policy: self.policy,
            plan_bounds: Bounds { min, max },
            last_evaluated_at: self.last_evaluated_at,
            last_metrics: self.last_metrics,
        }
    }
}

const SELECT_POLICY: &str = "select min_capacity, max_capacity, target_rps_per_unit, tolerance,
        scale_up_cooldown_s, scale_down_stabilization_s, current_capacity, desired_capacity,
        last_evaluated_at, last_metrics
    from platform.scaling_policies where tenant_id = $1";

async fn find(db: impl PgExecutor<'_>, tenant_id: Uuid) -> sqlx::Result<Option<PolicyRow>> {
    sqlx::query_as(SELECT_POLICY)
        .bind(tenant_id)
        .fetch_optional(db)
        .await
}

/// The tenant's scaling state; 404 when it has no policy (onboarding always makes one).
pub async fn status(db: &PgPool, tenant_id: Uuid, plan: Plan) -> AppResult<ScalingStatus> {
    let row = find(db, tenant_id).await?.ok_or_else(AppError::not_found)?;
    Ok(row.status(plan))
}

/// The tenant's own policy, or the plan's default when it has none yet.
pub async fn policy_of(db: &PgPool, tenant_id: Uuid, plan: Plan) -> AppResult<(Policy, i32)> {
    Ok(match find(db, tenant_id).await? {
        Some(row) => (row.policy.within_plan(plan), row.current_capacity),
        None => {
            let policy = Policy::for_plan(plan);
            (policy, policy.min_capacity)
        }
    })
}

/// The caller's replacement of their tenant's policy (already validated against the
/// plan): [`set_policy`], then the audit entry.
pub async fn update_policy(
    db: &PgPool,
    principal: &Granted<needs::ScalingManage>,
    client: &ClientInfo,
    policy: Policy,
) -> AppResult<ScalingStatus> {
    let status = set_policy(db, principal.tenant_id(), principal.tenant.plan, policy).await?;
    let entry = AuditEntry::new(Some(principal.actor), "scaling.policy_updated", client)
        .target("tenant", principal.tenant_id())
        .metadata(json!({"policy": policy}));
    audit::record(&principal.scope, entry).await?;
    Ok(status)
}

/// Replaces the tenant's policy. A capacity outside the new bounds moves into them at
/// once (with an event), so the answer never shows a capacity the policy forbids.
pub async fn set_policy(
    db: &PgPool,
    tenant_id: Uuid,
    plan: Plan,
    policy: Policy,
) -> AppResult<ScalingStatus> {
    let mut tx = crate::db::TenantScope::new(db.clone(), tenant_id)
        .begin()
        .await?;
    let old: Option<i32> = sqlx::query_scalar(
        "select current_capacity from platform.scaling_policies where tenant_id = $1 for update",
    )
    .bind(tenant_id)
    .fetch_optional(tx.conn())
    .await?;
    let from = old.unwrap_or(policy.min_capacity);
    let to = from.clamp(policy.min_capacity, policy.max_capacity);
    // `updated_at` moves, so an evaluator pass that read the old policy skips this tenant
    // (its write is conditional on it) and the next pass uses the new one.
    sqlx::query(
        "insert into platform.scaling_policies
            (tenant_id, min_capacity, max_capacity, target_rps_per_unit, tolerance,
             scale_up_cooldown_s, scale_down_stabilization_s, current_capacity, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, now())
         on conflict (tenant_id) do update set
            min_capacity = excluded.min_capacity,
            max_capacity = excluded.max_capacity,
            target_rps_per_unit = excluded.target_rps_per_unit,
            tolerance = excluded.tolerance,
            scale_up_cooldown_s = excluded.scale_up_cooldown_s,
            scale_down_stabilization_s = excluded.scale_down_stabilization_s,
            current_capacity = excluded.current_capacity,
            updated_at = now()",
    )
    .bind(tenant_id)
    .bind(policy.min_capacity)
    .bind(policy.max_capacity)
    .bind(policy.target_rps_per_unit)
    .bind(policy.tolerance)
    .bind(policy.scale_up_cooldown_s)
    .bind(policy.scale_down_stabilization_s)
    .bind(to)
    .execute(tx.conn())
    .await?;
    if from != to {
        let action = if to > from {
            Action::ScaleUp
        } else {
            Action::ScaleDown
        };
        sqlx::query(
            "insert into platform.scaling_events
                (id, tenant_id, action, from_capacity, to_capacity, reason, metrics)
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(Uuid::now_v7())
        .bind(tenant_id)
        .bind(action.as_str())
        .bind(from)
        .bind(to)
        .bind(format!(
            "policy changed: capacity {from} is outside the new bounds [{}, {}]",
            policy.min_capacity, policy.max_capacity
        ))
        .bind(json!({"cause": "policy"}))
        .execute(tx.conn())
        .await?;
        let data = json!({"action": action.as_str(), "from_capacity": from, "to_capacity": to,
            "reason": "policy changed", "at": chrono::Utc::now()});
        crate::services::webhooks::emit(
            &mut tx,
            crate::services::webhooks::EventType::ScalingChanged,
            data,
        )
        .await?;
    }
    let row = find(tx.conn(), tenant_id)
        .await?
        .ok_or_else(AppError::not_found)?;
    tx.commit().await?;
    Ok(row.status(plan))
}

/// A capacity change.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct ScalingEvent {
    pub id: Uuid,
    /// `scale_up` or `scale_down`.
    pub action: String,
    pub from_capacity: i32,
    pub to_capacity: i32,
    /// Which rule decided, in words.
    pub reason: String,
    /// The measurement behind the decision (see `last_metrics` of `GET /api/v1/scaling`),
    /// or `{"cause": "policy"}` for a change forced by new policy bounds.
    #[schema(value_type = Object)]
    pub metrics: Value,
    pub created_at: DateTime<Utc>,
}

/// The tenant's capacity changes, newest first, keyset-paginated.
pub async fn events(
    db: &PgPool,
    tenant_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<ScalingEvent>> {
    sqlx::query_as(
        "select id, action, from_capacity, to_capacity, reason, metrics, created_at
         from platform.scaling_events
         where tenant_id = $1 and ($2::uuid is null or id < $2)
         order by id desc limit $3",
    )
    .bind(tenant_id)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// One tenant's capacity, for platform operators.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct TenantCapacity {
    pub tenant_id: Uuid,
    pub slug: String,
    pub plan: String,
    pub status: String,
    pub current_capacity: i32,
    pub desired_capacity: Option<i32>,
    pub min_capacity: i32,
    pub max_capacity: i32,
    /// Requests/s at the last evaluation.
    pub rps: Option<f64>,
    pub last_evaluated_at: Option<DateTime<Utc>>,
}

/// Every tenant's capacity, newest tenant first, keyset-paginated by tenant id.
pub async fn capacities(
    db: &PgPool,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<TenantCapacity>> {
    sqlx::query_as(
        "select t.id as tenant_id, t.slug, t.plan, t.status, p.current_capacity,
                p.desired_capacity, p.min_capacity, p.max_capacity,
                (p.last_metrics ->> 'rps')::float8 as rps, p.last_evaluated_at
         from platform.scaling_policies p
         join platform.tenants t on t.id = p.tenant_id
         where ($1::uuid is null or t.id < $1)
         order by t.id desc limit $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// One load sample of a simulation: `rps` at `t` seconds.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub t: f64,
    pub rps: f64,
}

/// Applies [`decision::decide`] to each sample in order, from `current` and a fresh
/// history (no earlier scale-up, an empty stabilization window) — exactly what the
/// evaluator would decide if it measured these loads at these times.
pub fn simulate(policy: &Policy, current: i32, samples: &[Sample]) -> Vec<Decision> {
    let mut history = History::default();
    let mut capacity = current;
    samples
        .iter()
        .map(|sample| {
            let (decision, next) = decision::decide(
                policy,
                capacity,
                std::mem::take(&mut history),
                sample.t,
                sample.rps,
            );
            history = next;
            capacity = decision.desired;
            decision
        })
        .collect()
}
