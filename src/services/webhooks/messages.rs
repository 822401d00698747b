//! Messages (events as delivered), their deliveries to each endpoint and every attempt;
//! manual retry.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::events;
use crate::{
    auth::granted::Granted,
    client_address::ClientInfo,
    db::TenantScope,
    error::{AppError, AppResult, ErrorCode},
    rbac::needs,
    services::audit::{self, AuditEntry},
};

/// A message: one event, delivered to every endpoint subscribed to its type when it
/// happened. `webhook-id` of its deliveries is its `id`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[schema(example = json!({"id": "01939f6e-9c4d-7e21-8a10-112233445566", "event_type": "user.created",
    "data": {"id": "01939f6e-9c4d-7e21-8a10-000000000001", "email": "ada@acme.example.com"},
    "status": "succeeded", "created_at": "2026-01-05T10:00:00Z"}))]
pub struct Message {
    pub id: Uuid,
    pub event_type: String,
    #[schema(value_type = Object)]
    pub data: Value,
    /// `pending` while a delivery waits for an attempt, else `failed` if one gave up,
    /// else `succeeded`.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// One POST of a message to an endpoint.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct Attempt {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// 1 for the first attempt to that endpoint.
    pub attempt: i32,
    /// `scheduled` or `manual`.
    pub trigger: String,
    /// The HTTP status answered; null when there was no answer (timeout, refused).
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    /// The first 4 KiB of the answer.
    pub response_body: Option<String>,
    /// Why there was no answer, or why it was not a success.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A message's state towards one endpoint.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct Delivery {
    pub endpoint_id: Uuid,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A message with its deliveries and every attempt, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageDetail {
    #[serde(flatten)]
    pub message: Message,
    pub deliveries: Vec<Delivery>,
    pub attempts: Vec<Attempt>,
}

const SELECT: &str = "select m.id, m.event_type, m.data, m.created_at,
    coalesce((select case when bool_or(d.status = 'pending') then 'pending'
                          when bool_or(d.status = 'failed') then 'failed'
                          else 'succeeded' end
              from {schema}.webhook_deliveries d where d.message_id = m.id), 'succeeded') as status
    from {schema}.webhook_messages m";

/// Filters of the message list.
#[derive(Debug, Default)]
pub struct MessageFilter {
    pub event_type: Option<String>,
    pub endpoint_id: Option<Uuid>,
    pub status: Option<String>,
}

pub async fn list(
    scope: &TenantScope,
    filter: &MessageFilter,
    before: Option<Uuid>,
    limit: i64,
) -> AppResult<Vec<Message>> {
    let sql = scope.sql_parts(&[
        SELECT,
        " where ($1::text is null or m.event_type = $1)
            and ($2::uuid is null or exists (select 1 from {schema}.webhook_deliveries d
                 where d.message_id = m.id and d.endpoint_id = $2))
            and ($3::text is null
                 or ($3 = 'succeeded' and not exists (select 1 from {schema}.webhook_deliveries d
                     where d.message_id = m.id and d.status <> 'succeeded'))
                 or ($3 = 'failed' and exists (select 1 from {schema}.webhook_deliveries d
                     where d.message_id = m.id and d.status = 'failed')
                     and not exists (select 1 from {schema}.webhook_deliveries d
                     where d.message_id = m.id and d.status = 'pending'))
                 or ($3 = 'pending' and exists (select 1 from {schema}.webhook_deliveries d
                     where d.message_id = m.id and d.status = 'pending')))
            and ($4::uuid is null or m.id < $4)
          order by m.id desc limit $5",
    ]);
    Ok(sqlx::query_as(sql)
        .bind(&filter.event_type)
        .bind(filter.endpoint_id)
        .bind(&filter.status)
        .bind(before)
        .bind(limit)
        .fetch_all(scope.db())
        .await?)
}

pub async fn get(scope: &TenantScope, id: Uuid) -> AppResult<MessageDetail> {
    let message: Message = sqlx::query_as(scope.sql_parts(&[SELECT, " where m.id = $1"]))
        .bind(id)
        .fetch_optional(scope.db())
        .await?
        .ok_or_else(AppError::not_found)?;
    let deliveries = sqlx::query_as(scope.sql(
        "select endpoint_id, status, attempts, next_attempt_at from {schema}.webhook_deliveries
         where message_id = $1 order by endpoint_id",
    ))
    .bind(id)
    .fetch_all(scope.db())
    .await?;
    let attempts = sqlx::query_as(scope.sql(
        "select id, endpoint_id, attempt, trigger, status_code, duration_ms, response_body,
            error, created_at
         from {schema}.webhook_attempts where message_id = $1 order by id",
    ))
    .bind(id)
    .fetch_all(scope.db())
    .await?;
    Ok(MessageDetail {
        message,
        deliveries,
        attempts,
    })
}

/// Sends a message again (same `webhook-id`, same body): to `endpoint` (any delivery of
/// it, to an enabled endpoint), or else to every endpoint whose delivery failed (409 when
/// none did). Returns the endpoints it was queued for.
pub async fn retry(
    p: &Granted<needs::WebhooksManage>,
    client: &ClientInfo,
    id: Uuid,
    endpoint: Option<Uuid>,
) -> AppResult<Vec<Uuid>> {
    let mut tx = p.scope.begin().await?;
    // An attempt in flight is recorded when it ends; a replay is asked for after that.
    let in_flight: Option<Uuid> = sqlx::query_scalar(
        "select endpoint_id from platform.webhook_queue
         where tenant_id = $1 and message_id = $2 and ($3::uuid is null or endpoint_id = $3)
           and lease is not null and next_attempt_at > now()
         limit 1",
    )
    .bind(tx.tenant_id())
    .bind(id)
    .bind(endpoint)
    .fetch_optional(tx.conn())
    .await?;
    if in_flight.is_some() {
        return Err(AppError::conflict(
            ErrorCode::Conflict,
            "an attempt to this endpoint is in progress; retry once it has ended",
        ));
    }
    let sql = tx.sql(
        "update {schema}.webhook_deliveries d set status = 'pending', next_attempt_at = now(),
            updated_at = now()
         from {schema}.webhook_endpoints e
         where d.message_id = $1 and e.id = d.endpoint_id and e.enabled
           and (case when $2::uuid is null then d.status = 'failed' else d.endpoint_id = $2 end)
         returning d.endpoint_id",
    );
    let endpoints: Vec<Uuid> = sqlx::query_scalar(sql)
        .bind(id)
        .bind(endpoint)
        .fetch_all(tx.conn())
        .await?;
    if endpoints.is_empty() {
        let sql = tx.sql("select count(*) from {schema}.webhook_messages where id = $1");
        let exists: i64 = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(tx.conn())
            .await?;
        return Err(if exists == 0 || endpoint.is_some() {
            AppError::not_found()
        } else {
            AppError::conflict(ErrorCode::Conflict, "no delivery of this message failed")
        });
    }
    events::queue(&mut tx, id, &endpoints, true).await?;
    let entry = AuditEntry::new(Some(p.actor), "webhook_message.retried", client)
        .target("webhook_message", id)
        .metadata(json!({"endpoints": endpoints}));
    audit::record_in(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(endpoints)
}
