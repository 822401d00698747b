//! Webhook endpoints of a tenant: where its events go, and the secret they are signed with.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    events::{self, EventType},
    signing,
    target::{self, TargetRules},
};
use crate::{
    auth::{granted::Granted, principal::TenantPrincipal},
    client_address::ClientInfo,
    db::{TenantScope, TenantTx},
    error::{AppError, AppResult},
    rbac::needs,
    services::audit::{self, AuditEntry},
};

/// How long the previous secret still signs after a rotation.
pub const ROTATION_GRACE: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// An endpoint as the API shows it (the secret only at creation and rotation).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[schema(example = json!({"id": "01939f6e-8a2b-7c3e-9f10-aabbccddeeff", "url": "https://hooks.example.com/tenantry",
    "description": "CRM sync", "event_types": ["user.created", "user.deleted"], "enabled": true,
    "disabled_reason": null, "created_at": "2026-01-05T10:00:00Z", "updated_at": "2026-01-05T10:00:00Z"}))]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub description: Option<String>,
    /// Event type names, or `["*"]` for every event.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why the endpoint was disabled by the platform: `gone` (it answered 410) or
    /// `failing` (5 days of failed attempts); null when enabled or disabled by hand.
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, url, description, event_types, enabled, disabled_reason, created_at, updated_at";

/// A new endpoint, or changes to one (`None` keeps the field).
#[derive(Debug, Default)]
pub struct EndpointFields {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// Checks the fields a caller gave, collecting every problem: the URL's form and, after
/// DNS, its addresses; the event types against the catalog; the description.
/// How long creating or changing an endpoint waits for its name to resolve (a resolver
/// that does not answer takes 5 s per query).
const RESOLVE_AT_CREATION: std::time::Duration = std::time::Duration::from_secs(2);

pub async fn check(fields: &EndpointFields, rules: TargetRules) -> AppResult<()> {
    let mut errors = Vec::new();
    if let Some(url) = &fields.url {
        match target::parse(url, rules) {
            Err(e) => errors.push(crate::error::FieldError::new("url", e.0)),
            Ok(t) => {
                // A name that does not resolve yet is accepted: every attempt checks again.
                // So is one whose resolver is slow: the request does not wait for it.
                let resolved = tokio::time::timeout(
                    RESOLVE_AT_CREATION,
                    target::resolve(&t.host, t.port, rules),
                )
                .await;
                if let Ok(Err(e)) = resolved
                    && !e.0.contains("does not resolve")
                {
                    errors.push(crate::error::FieldError::new("url", e.0));
                }
            }
        }
    }
    if let Some(types) = &fields.event_types {
        if types.is_empty() {
            errors.push(crate::error::FieldError::new(
                "event_types",
                "name at least one event type, or \"*\"",
            ));
        }
        for t in types {
            if t != "*" && t.parse::<EventType>().is_err() {
                errors.push(crate::error::FieldError::new(
                    "event_types",
                    format!("unknown event type {t:?} (see GET /api/v1/webhooks/event-types)"),
                ));
            }
        }
    }
    if let Some(Some(d)) = &fields.description
        && (d.chars().count() > 500 || d.chars().any(char::is_control))
    {
        errors.push(crate::error::FieldError::new(
            "description",
            "at most 500 characters, no control characters",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::validation(errors))
    }
}

fn audit_entry(
    p: &TenantPrincipal,
    client: &ClientInfo,
    action: &'static str,
    e: &Endpoint,
) -> AuditEntry {
    AuditEntry::new(Some(p.actor), action, client)
        .target("webhook_endpoint", e.id)
        .metadata(json!({"url": e.url, "event_types": e.event_types, "enabled": e.enabled}))
}

/// Creates an endpoint (fields already [`check`]ed); the secret is returned this once.
pub async fn create(
    p: &Granted<needs::WebhooksManage>,
    client: &ClientInfo,
    fields: EndpointFields,
) -> AppResult<(Endpoint, String)> {
    let secret = signing::new_secret();
    let mut tx = p.scope.begin().await?;
    let sql = tx.sql_parts(&[
        "insert into {schema}.webhook_endpoints (id, url, description, event_types, enabled, secret)
         values ($1, $2, $3, $4, $5, $6) returning ",
        COLUMNS,
    ]);
    let endpoint: Endpoint = sqlx::query_as(sql)
        .bind(Uuid::now_v7())
        .bind(fields.url)
        .bind(fields.description.flatten())
        .bind(fields.event_types.unwrap_or_else(|| vec!["*".into()]))
        .bind(fields.enabled.unwrap_or(true))
        .bind(&secret)
        .fetch_one(tx.conn())
        .await?;
    audit::record_in(
        &mut tx,
        audit_entry(p, client, "webhook_endpoint.created", &endpoint),
    )
    .await?;
    tx.commit().await?;
    Ok((endpoint, secret))
}

pub async fn list(
    scope: &TenantScope,
    before: Option<Uuid>,
    limit: i64,
) -> AppResult<Vec<Endpoint>> {
    let sql = scope.sql_parts(&[
        "select ",
        COLUMNS,
        " from {schema}.webhook_endpoints where ($1::uuid is null or id < $1)
          order by id desc limit $2",
    ]);
    Ok(sqlx::query_as(sql)
        .bind(before)
        .bind(limit)
        .fetch_all(scope.db())
        .await?)
}

pub async fn get(scope: &TenantScope, id: Uuid) -> AppResult<Endpoint> {
    let sql = scope.sql_parts(&[
        "select ",
        COLUMNS,
        " from {schema}.webhook_endpoints where id = $1",
    ]);
    sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(scope.db())
        .await?
        .ok_or_else(AppError::not_found)
}

/// Applies `fields`; enabling an endpoint clears why it was disabled and its failure run.
pub async fn update(
    p: &Granted<needs::WebhooksManage>,
    client: &ClientInfo,
    id: Uuid,
    fields: EndpointFields,
) -> AppResult<Endpoint> {
    let mut tx = p.scope.begin().await?;
    let sql = tx.sql_parts(&[
        "update {schema}.webhook_endpoints set
            url = coalesce($2, url),
            description = case when $3 then $4 else description end,
            event_types = coalesce($5, event_types),
            enabled = coalesce($6, enabled),
            disabled_reason = case when $6 then null else disabled_reason end,
            failing_since = case when $6 then null else failing_since end,
            updated_at = now()
         where id = $1 returning ",
        COLUMNS,
    ]);
    let endpoint: Endpoint = sqlx::query_as(sql)
        .bind(id)
        .bind(fields.url)
        .bind(fields.description.is_some())
        .bind(fields.description.flatten())
        .bind(fields.event_types)
        .bind(fields.enabled)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(AppError::not_found)?;
    audit::record_in(
        &mut tx,
        audit_entry(p, client, "webhook_endpoint.updated", &endpoint),
    )
    .await?;
    tx.commit().await?;
    Ok(endpoint)
}

/// Deletes an endpoint; its pending deliveries go with it (the history stays).
pub async fn delete(
    p: &Granted<needs::WebhooksManage>,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<()> {
    let mut tx = p.scope.begin().await?;
    // The queue rows first: a dispatcher recording an attempt locks its queue row before
    // the delivery and the endpoint, so taking them in the same order waits for it
    // instead of deadlocking with it (a 500 the API fuzzer met).
    sqlx::query("delete from platform.webhook_queue where tenant_id = $1 and endpoint_id = $2")
        .bind(tx.tenant_id())
        .bind(id)
        .execute(tx.conn())
        .await?;
    let sql = tx.sql_parts(&[
        "delete from {schema}.webhook_endpoints where id = $1 returning ",
        COLUMNS,
    ]);
    let endpoint: Endpoint = sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(AppError::not_found)?;
    let sql = tx.sql(
        "update {schema}.webhook_deliveries set status = 'failed', next_attempt_at = null,
            updated_at = now() where endpoint_id = $1 and status = 'pending'",
    );
    sqlx::query(sql).bind(id).execute(tx.conn()).await?;
    audit::record_in(
        &mut tx,
        audit_entry(p, client, "webhook_endpoint.deleted", &endpoint),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Replaces the secret; the previous one keeps signing (a second signature) for
/// [`ROTATION_GRACE`], so receivers can switch without losing a message.
pub async fn rotate_secret(
    p: &Granted<needs::WebhooksManage>,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<String> {
    let secret = signing::new_secret();
    let mut tx = p.scope.begin().await?;
    let sql = tx.sql_parts(&[
        "update {schema}.webhook_endpoints set previous_secret = secret, secret = $2,
            previous_secret_expires_at = now() + $3 * interval '1 second', updated_at = now()
         where id = $1 returning ",
        COLUMNS,
    ]);
    let endpoint: Endpoint = sqlx::query_as(sql)
        .bind(id)
        .bind(&secret)
        .bind(ROTATION_GRACE.num_seconds())
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(AppError::not_found)?;
    audit::record_in(
        &mut tx,
        audit_entry(p, client, "webhook_endpoint.secret_rotated", &endpoint),
    )
    .await?;
    tx.commit().await?;
    Ok(secret)
}

/// Sends a `webhook.test` event to this endpoint alone (even one not subscribed to it,
/// but not a disabled one: 409). Returns the message id.
pub async fn send_test(
    p: &Granted<needs::WebhooksManage>,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<Uuid> {
    let mut tx: TenantTx = p.scope.begin().await?;
    let sql = tx.sql("select enabled from {schema}.webhook_endpoints where id = $1");
    let enabled: bool = sqlx::query_scalar(sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(AppError::not_found)?;
    if !enabled {
        return Err(AppError::conflict(
            crate::error::ErrorCode::Conflict,
            "the endpoint is disabled; enable it first",
        ));
    }
    let data = json!({"endpoint_id": id, "message": "A test event from Tenantry"});
    let message = events::emit_value(&mut tx, EventType::WebhookTest, data, Some(id))
        .await?
        .ok_or_else(AppError::not_found)?;
    let entry = AuditEntry::new(Some(p.actor), "webhook_endpoint.tested", client)
        .target("webhook_endpoint", id)
        .metadata(json!({"message_id": message}));
    audit::record_in(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(message)
}
