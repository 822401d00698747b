//! The event catalog, and the one call that records an event: [`emit`], inside the
//! transaction of the change that causes it (a transactional outbox).

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::TenantTx;

/// The channel a committed event is announced on, so dispatchers wake at once.
pub const WAKE_CHANNEL: &str = "tenantry_webhooks";

macro_rules! events {
    ($($variant:ident => $name:literal, $description:literal, $schema:expr;)*) => {
        /// One event type of the catalog.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum EventType {
            $($variant,)*
        }

        impl EventType {
            /// Every event type, in catalog order.
            pub const ALL: &[EventType] = &[$(EventType::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)*
                }
            }

            pub fn description(self) -> &'static str {
                match self {
                    $(EventType::$variant => $description,)*
                }
            }

            /// The JSON schema of the event's `data`.
            pub fn schema(self) -> Value {
                match self {
                    $(EventType::$variant => $schema,)*
                }
            }
        }
    };
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn text() -> Value {
    json!({"type": "string"})
}

fn nullable_text() -> Value {
    json!({"type": ["string", "null"]})
}

fn strings() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

fn user() -> Value {
    object(
        &["id", "email", "is_active", "roles"],
        json!({"id": uuid(), "email": text(), "first_name": nullable_text(),
            "last_name": nullable_text(), "email_verified": {"type": "boolean"},
            "is_active": {"type": "boolean"}, "roles": strings(),
            "created_at": time(), "updated_at": time()}),
    )
}

fn deleted(kind: &str) -> Value {
    object(
        &["id"],
        json!({"id": {"type": "string", "format": "uuid", "description": kind}}),
    )
}

fn role() -> Value {
    object(
        &["id", "name", "permissions"],
        json!({"id": uuid(), "name": text(), "description": nullable_text(),
            "is_system": {"type": "boolean"}, "permissions": strings(),
            "created_at": time(), "updated_at": time()}),
    )
}

fn api_key() -> Value {
    object(
        &["id", "name", "prefix"],
        json!({"id": uuid(), "name": text(), "prefix": text(), "role": nullable_text(),
            "permissions": {"type": ["array", "null"], "items": {"type": "string"}},
            "created_at": time(), "expires_at": {"type": ["string", "null"], "format": "date-time"},
            "revoked_at": {"type": ["string", "null"], "format": "date-time"}}),
    )
}

fn job() -> Value {
    object(
        &["id", "type", "status", "attempts"],
        json!({"id": uuid(), "type": text(), "status": text(),
            "attempts": {"type": "integer"}, "error": nullable_text(),
            "result": {"description": "the job's result (succeeded jobs)"}}),
    )
}

fn file() -> Value {
    object(
        &["id", "name"],
        json!({"id": uuid(), "name": text(), "content_type": text(),
            "size": {"type": "integer"}, "checksum_sha256": nullable_text()}),
    )
}

fn tenant() -> Value {
    object(
        &["id", "name", "slug", "plan", "status"],
        json!({"id": uuid(), "name": text(), "slug": text(),
            "plan": {"enum": ["free", "standard", "premium"]},
            "status": {"enum": ["provisioning", "active", "suspended", "deleted"]},
            "updated_at": time()}),
    )
}

events! {
    UserCreated => "user.created", "A user was created (by an administrator or an accepted invitation)", user();
    UserUpdated => "user.updated", "A user's profile, state or roles changed", user();
    UserDeleted => "user.deleted", "A user was deleted", deleted("the user's id");
    RoleCreated => "role.created", "A custom role was created", role();
    RoleUpdated => "role.updated", "A role's name, description or permissions changed", role();
    RoleDeleted => "role.deleted", "A custom role was deleted", role();
    ApiKeyCreated => "api_key.created", "An API key was created", api_key();
    ApiKeyRotated => "api_key.rotated", "An API key's secret was replaced", api_key();
    ApiKeyRevoked => "api_key.revoked", "An API key was revoked", api_key();
    JobSucceeded => "job.succeeded", "A job ended successfully", job();
    JobFailed => "job.failed", "A job failed after its last attempt", job();
    JobCancelled => "job.cancelled", "A job was cancelled", job();
    FileUploaded => "file.uploaded", "A file was stored (upload or completed presigned upload)", file();
    FileDeleted => "file.deleted", "A file was deleted", file();
    NotificationFailed => "notification.failed", "A notification send failed after its last attempt",
        object(&["id", "channel", "recipient"], json!({"id": uuid(),
            "channel": {"enum": ["email", "sms", "push"]}, "recipient": text(),
            "template_name": nullable_text(), "error": nullable_text()}));
    TenantUpdated => "tenant.updated", "The tenant's name, settings or plan changed", tenant();
    TenantSuspended => "tenant.suspended", "A platform operator suspended the tenant", tenant();
    TenantActivated => "tenant.activated", "A platform operator reactivated the tenant", tenant();
    ScalingChanged => "scaling.changed", "The tenant's capacity changed (autoscaler decision or a new policy's bounds)",
        object(&["action", "from_capacity", "to_capacity"], json!({
            "action": {"enum": ["scale_up", "scale_down"]}, "from_capacity": {"type": "integer"},
            "to_capacity": {"type": "integer"}, "reason": text(), "at": time()}));
    WebhookEndpointDisabled => "webhook_endpoint.disabled",
        "An endpoint was disabled: it answered 410 Gone, or failed for 5 days",
        object(&["id", "url", "reason"], json!({"id": uuid(), "url": text(),
            "reason": {"enum": ["gone", "failing"]}}));
    WebhookTest => "webhook.test", "Sent by POST /api/v1/webhooks/endpoints/{id}/test",
        object(&["endpoint_id"], json!({"endpoint_id": uuid(), "message": text()}));
}

impl std::str::FromStr for EventType {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL
            .iter()
            .copied()
            .find(|e| e.as_str() == s)
            .ok_or(())
    }
}

/// One entry of `GET /api/v1/webhooks/event-types`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"name": "user.deleted", "description": "A user was deleted",
    "schema": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string", "format": "uuid"}}}}))]
pub struct EventTypeInfo {
    pub name: &'static str,
    pub description: &'static str,
    /// JSON schema of the event's `data`.
    #[schema(value_type = Object)]
    pub schema: Value,
}

pub fn catalog() -> Vec<EventTypeInfo> {
    EventType::ALL
        .iter()
        .map(|e| EventTypeInfo {
            name: e.as_str(),
            description: e.description(),
            schema: e.schema(),
        })
        .collect()
}

/// Records `event` with `data` in the caller's transaction: a message for the endpoints
/// subscribed to it (none subscribed: nothing is written), and their deliveries in the
/// platform queue. Nothing of it exists unless the transaction commits; once it has,
/// a dispatcher delivers it, whichever process committed it and whatever became of that
/// process. Returns the message id, if a message was written.
pub async fn emit(
    tx: &mut TenantTx,
    event: EventType,
    data: impl Serialize,
) -> sqlx::Result<Option<Uuid>> {
    let data = serde_json::to_value(data).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    emit_value(tx, event, data, None).await
}

/// [`emit`] to the endpoints subscribed to `event`, or only to `only` (the test event).
pub(super) async fn emit_value(
    tx: &mut TenantTx,
    event: EventType,
    data: Value,
    only: Option<Uuid>,
) -> sqlx::Result<Option<Uuid>> {
    let id = Uuid::now_v7();
    // One round trip: the subscribed endpoints, the message if any, its deliveries and
    // their place in the platform queue (`platform.webhook_emit`, which the autoscaler
    // also calls for many tenants in one statement).
    let endpoints: Vec<Uuid> =
        sqlx::query_scalar("select platform.webhook_emit($1, $2, $3, $4, $5, $6)")
            .bind(tx.tenant_id())
            .bind(id)
            .bind(event.as_str())
            .bind(&data)
            .bind(only)
            .bind(WAKE_CHANNEL)
            .fetch_one(tx.conn())
            .await?;
    Ok((!endpoints.is_empty()).then_some(id))
}

/// Puts deliveries of `message` to `endpoints` in the platform queue, due now, and
/// wakes the dispatchers when the transaction commits (a NOTIFY is sent at commit, and
/// not at all on rollback).
pub(super) async fn queue(
    tx: &mut TenantTx,
    message: Uuid,
    endpoints: &[Uuid],
    manual: bool,
) -> sqlx::Result<()> {
    sqlx::query("select platform.webhook_queue_deliveries($1, $2, $3, $4, $5)")
        .bind(tx.tenant_id())
        .bind(message)
        .bind(endpoints)
        .bind(manual)
        .bind(WAKE_CHANNEL)
        .execute(tx.conn())
        .await?;
    Ok(())
}
