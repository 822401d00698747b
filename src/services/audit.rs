//! The audit log: who did what to which object, from where. Secrets never go in.

use serde_json::Value;
use uuid::Uuid;

use crate::{
    auth::principal::Actor,
    client_address::ClientInfo,
    db::{TenantScope, TenantTx},
};

/// One audit entry; `action` is `area.event` (`auth.login`, `api_key.revoked`, …).
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub actor_type: &'static str,
    pub actor_id: Option<Uuid>,
    pub action: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub metadata: Value,
}

impl AuditEntry {
    pub fn new(actor: Option<Actor>, action: &'static str, client: &ClientInfo) -> Self {
        Self {
            actor_type: actor.map_or("user", Actor::kind),
            actor_id: actor.map(Actor::id),
            action,
            target_type: None,
            target_id: None,
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
            metadata: Value::Object(Default::default()),
        }
    }

    pub fn target(mut self, kind: &'static str, id: impl ToString) -> Self {
        self.target_type = Some(kind);
        self.target_id = Some(id.to_string());
        self
    }

    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }
}

const INSERT: &str = "insert into {schema}.audit_logs
    (id, actor_type, actor_id, action, target_type, target_id, ip, user_agent, metadata)
    values ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

fn bind(
    sql: crate::db::TenantSql,
    e: AuditEntry,
) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(sql)
        .bind(Uuid::now_v7())
        .bind(e.actor_type)
        .bind(e.actor_id)
        .bind(e.action)
        .bind(e.target_type)
        .bind(e.target_id)
        .bind(e.ip)
        .bind(e.user_agent)
        .bind(e.metadata)
}

/// Records `entry` inside the caller's transaction (it commits with the change).
pub async fn record_in(tx: &mut TenantTx, entry: AuditEntry) -> sqlx::Result<()> {
    let sql = tx.sql(INSERT);
    bind(sql, entry).execute(tx.conn()).await?;
    Ok(())
}

/// Records `entry` about `tenant_id` in `platform.audit_logs`, inside the caller's
/// transaction: for events that must outlive the tenant's schema (`tenant.deleted`).
pub async fn record_platform(
    conn: &mut sqlx::PgConnection,
    tenant_id: Uuid,
    e: AuditEntry,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into platform.audit_logs
            (id, tenant_id, actor_type, actor_id, action, target_type, target_id, ip,
             user_agent, metadata)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(Uuid::now_v7())
    .bind(tenant_id)
    .bind(e.actor_type)
    .bind(e.actor_id)
    .bind(e.action)
    .bind(e.target_type)
    .bind(e.target_id)
    .bind(e.ip)
    .bind(e.user_agent)
    .bind(e.metadata)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records an event of the platform itself, about no tenant (an operator's login, failed
/// or not), in `platform.audit_logs` with no tenant id.
pub async fn record_operator_event(
    db: impl sqlx::PgExecutor<'_>,
    e: AuditEntry,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into platform.audit_logs
            (id, tenant_id, actor_type, actor_id, action, target_type, target_id, ip,
             user_agent, metadata)
         values ($1, null, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(Uuid::now_v7())
    .bind(e.actor_type)
    .bind(e.actor_id)
    .bind(e.action)
    .bind(e.target_type)
    .bind(e.target_id)
    .bind(e.ip)
    .bind(e.user_agent)
    .bind(e.metadata)
    .execute(db)
    .await?;
    Ok(())
}

/// Records `entry` on its own (events that change nothing else, such as a failed login).
pub async fn record(scope: &TenantScope, entry: AuditEntry) -> sqlx::Result<()> {
    bind(scope.sql(INSERT), entry).execute(scope.db()).await?;
    Ok(())
}

/// An audit entry as the API shows it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditLog {
    pub id: Uuid,
    /// `user`, `api_key` or `platform`.
    pub actor_type: String,
    pub actor_id: Option<Uuid>,
    /// `area.event`, e.g. `auth.login`, `api_key.revoked`.
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Filters of the audit log.
#[derive(Debug, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub actor_id: Option<Uuid>,
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
}

/// Newest first, keyset-paginated.
pub async fn list(
    scope: &TenantScope,
    filter: &AuditFilter,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<AuditLog>> {
    sqlx::query_as(scope.sql(
        "select id, actor_type, actor_id, action, target_type, target_id, ip, user_agent,
                metadata, created_at
         from {schema}.audit_logs
         where ($1::text is null or action = $1)
           and ($2::uuid is null or actor_id = $2)
           and ($3::timestamptz is null or created_at >= $3)
           and ($4::timestamptz is null or created_at < $4)
           and ($5::uuid is null or id < $5)
         order by id desc limit $6",
    ))
    .bind(&filter.action)
    .bind(filter.actor_id)
    .bind(filter.from)
    .bind(filter.to)
    .bind(before)
    .bind(limit)
    .fetch_all(scope.db())
    .await
}
