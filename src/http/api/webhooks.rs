//! `/api/v1/webhooks`: the event catalog, endpoints, messages and their attempts.

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    app::AppState,
    auth::{granted::Granted, principal::TenantPrincipal},
    client_address::ClientInfo,
    error::{AppError, AppResult, Problem},
    http::{
        extract::{AppJson, AppPath, AppQuery},
        pagination::{PageParams, Paginated},
    },
    rbac::needs,
    services::webhooks::{
        endpoints::{self, Endpoint, EndpointFields},
        events::{self, EventTypeInfo},
        messages::{self, Message, MessageDetail, MessageFilter},
        target::TargetRules,
    },
};

/// The operations of this module, merged into the service's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(event_types, list_endpoints, create_endpoint, get_endpoint, update_endpoint,
        delete_endpoint, rotate_secret, test_endpoint, list_messages, get_message, retry_message),
    tags((name = "webhooks", description = "Outbound webhooks: endpoints, the event catalog, messages and delivery attempts (Standard Webhooks signatures)")),
)]
pub struct WebhooksApi;

fn rules(app: &AppState) -> TargetRules {
    TargetRules {
        require_https: app.config.is_production(),
        allow_private: app.config.webhooks.allow_private_targets,
    }
}

/// Every event type, with the JSON schema of its `data`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeList {
    pub items: Vec<EventTypeInfo>,
}

/// The event catalog.
#[utoipa::path(get, path = "/api/v1/webhooks/event-types", tag = "webhooks", operation_id = "webhooks_event_types_list",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Every event type", body = EventTypeList)))]
pub async fn event_types(_principal: TenantPrincipal) -> Json<EventTypeList> {
    Json(EventTypeList {
        items: events::catalog(),
    })
}

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"url": "https://hooks.example.com/tenantry", "description": "CRM sync",
    "event_types": ["user.created", "user.deleted"]}))]
pub struct CreateEndpoint {
    /// `https` (in production); must not resolve to a loopback, private, link-local or
    /// metadata address.
    #[schema(max_length = 2000, format = "uri")]
    pub url: String,
    /// At most 500 characters, no control characters.
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Event type names (see `GET /api/v1/webhooks/event-types`), or `["*"]`; default `["*"]`.
    #[schema(min_items = 1, max_items = 50)]
    pub event_types: Option<Vec<String>>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// Changes to an endpoint; absent fields stay as they are. Enabling a disabled endpoint
/// clears `disabled_reason`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"enabled": true}))]
pub struct UpdateEndpoint {
    #[schema(max_length = 2000, format = "uri")]
    pub url: Option<String>,
    /// null removes the description.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(max_length = 500, nullable)]
    pub description: Option<Option<String>>,
    #[schema(min_items = 1, max_items = 50)]
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn too_many(types: &Option<Vec<String>>) -> AppResult<()> {
    if types.as_ref().is_some_and(|t| t.len() > 50) {
        return Err(AppError::invalid_field("event_types", "at most 50 entries"));
    }
    Ok(())
}

/// An endpoint as created: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// `whsec_<base64>`: the signing secret; store it now, it is not shown again.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

/// A new secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    /// `whsec_<base64>`; the previous secret also signs for 24 hours.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

/// The tenant's endpoints, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints", tag = "webhooks", operation_id = "webhooks_endpoints_list",
    params(PageParams), security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Endpoints (never their secrets)", body = Paginated<Endpoint>)))]
pub async fn list_endpoints(
    principal: Granted<needs::WebhooksRead>,
    AppQuery(params): AppQuery<PageParams>,
) -> AppResult<Json<Paginated<Endpoint>>> {
    let page = params.page()?;
    let rows = endpoints::list(&principal.scope, page.before, page.fetch()).await?;
    Ok(Json(Paginated::new(rows, page, |e| e.id)))
}

/// Create an endpoint; its signing secret is in the answer, and only there.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints", tag = "webhooks", operation_id = "webhooks_endpoints_create",
    request_body = CreateEndpoint, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created (the secret is shown once)", body = CreatedEndpoint),
        (status = 422, description = "Invalid URL (not https in production, or resolving to a forbidden address), unknown event types", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_endpoint(
    State(app): State<AppState>,
    principal: Granted<needs::WebhooksManage>,
    client: ClientInfo,
    AppJson(body): AppJson<CreateEndpoint>,
) -> AppResult<(StatusCode, Json<CreatedEndpoint>)> {
    too_many(&body.event_types)?;
    let fields = EndpointFields {
        url: Some(body.url),
        description: Some(body.description),
        event_types: Some(body.event_types.unwrap_or_else(|| vec!["*".into()])),
        enabled: body.enabled,
    };
    endpoints::check(&fields, rules(&app)).await?;
    let (endpoint, secret) = endpoints::create(&principal, &client, fields).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEndpoint { endpoint, secret }),
    ))
}

/// One endpoint.
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", operation_id = "webhooks_endpoints_get",
    params(("id" = Uuid, Path)), security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The endpoint", body = Endpoint),
        (status = 404, description = "No such endpoint in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_endpoint(
    principal: Granted<needs::WebhooksRead>,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<Json<Endpoint>> {
    Ok(Json(endpoints::get(&principal.scope, id).await?))
}

/// Change an endpoint (URL, description, event types, enabled).
#[utoipa::path(patch, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", operation_id = "webhooks_endpoints_update",
    params(("id" = Uuid, Path)), request_body = UpdateEndpoint, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The endpoint", body = Endpoint),
        (status = 404, description = "No such endpoint in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_endpoint(
    State(app): State<AppState>,
    principal: Granted<needs::WebhooksManage>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<UpdateEndpoint>,
) -> AppResult<Json<Endpoint>> {
    too_many(&body.event_types)?;
    let fields = EndpointFields {
        url: body.url,
        description: body.description,
        event_types: body.event_types,
        enabled: body.enabled,
    };
    endpoints::check(&fields, rules(&app)).await?;
    Ok(Json(
        endpoints::update(&principal, &client, id, fields).await?,
    ))
}

/// Delete an endpoint; what was still to be sent to it is not.
#[utoipa::path(delete, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", operation_id = "webhooks_endpoints_delete",
    params(("id" = Uuid, Path)), security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such endpoint in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_endpoint(
    principal: Granted<needs::WebhooksManage>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<StatusCode> {
    endpoints::delete(&principal, &client, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the signing secret; the previous one keeps signing (a second `v1,` signature)
/// for 24 hours.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints/{id}/rotate-secret", tag = "webhooks", operation_id = "webhooks_endpoints_rotate_secret",
    params(("id" = Uuid, Path)), security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The new secret (shown once)", body = RotatedSecret),
        (status = 404, description = "No such endpoint in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rotate_secret(
    principal: Granted<needs::WebhooksManage>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<Json<RotatedSecret>> {
    let secret = endpoints::rotate_secret(&principal, &client, id).await?;
    Ok(Json(RotatedSecret { secret }))
}

/// A queued message.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestQueued {
    /// The message (its `webhook-id`).
    pub message_id: Uuid,
}

/// Send a `webhook.test` event to this endpoint.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints/{id}/test", tag = "webhooks", operation_id = "webhooks_endpoints_test",
    params(("id" = Uuid, Path)), security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Queued", body = TestQueued),
        (status = 404, description = "No such endpoint in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint is disabled", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn test_endpoint(
    principal: Granted<needs::WebhooksManage>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<(StatusCode, Json<TestQueued>)> {
    let message_id = endpoints::send_test(&principal, &client, id).await?;
    Ok((StatusCode::ACCEPTED, Json(TestQueued { message_id })))
}

/// Filters of the message list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageParams {
    /// Only messages of this event type.
    pub event_type: Option<String>,
    /// Only messages sent (or to be sent) to this endpoint.
    pub endpoint_id: Option<Uuid>,
    /// `pending`, `succeeded` or `failed`.
    #[param(schema_with = message_status)]
    pub status: Option<String>,
}

fn message_status() -> utoipa::openapi::Object {
    crate::http::pagination::one_of(&["pending", "succeeded", "failed"])
}

/// The tenant's messages, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/messages", tag = "webhooks", operation_id = "webhooks_messages_list",
    params(MessageParams, PageParams), security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Messages", body = Paginated<Message>),
        (status = 422, description = "Unknown status or event type", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_messages(
    principal: Granted<needs::WebhooksRead>,
    AppQuery(params): AppQuery<MessageParams>,
    AppQuery(paging): AppQuery<PageParams>,
) -> AppResult<Json<Paginated<Message>>> {
    let page = paging.page()?;
    if params
        .status
        .as_deref()
        .is_some_and(|s| !matches!(s, "pending" | "succeeded" | "failed"))
    {
        return Err(AppError::invalid_field(
            "status",
            "must be pending, succeeded or failed",
        ));
    }
    if params
        .event_type
        .as_deref()
        .is_some_and(|t| t.parse::<events::EventType>().is_err())
    {
        return Err(AppError::invalid_field("event_type", "unknown event type"));
    }
    let filter = MessageFilter {
        event_type: params.event_type,
        endpoint_id: params.endpoint_id,
        status: params.status,
    };
    let rows = messages::list(&principal.scope, &filter, page.before, page.fetch()).await?;
    Ok(Json(Paginated::new(rows, page, |m| m.id)))
}

/// One message, with its deliveries and every attempt (every endpoint's), oldest first.
#[utoipa::path(get, path = "/api/v1/webhooks/messages/{id}", tag = "webhooks", operation_id = "webhooks_messages_get",
    params(("id" = Uuid, Path)), security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The message", body = MessageDetail),
        (status = 404, description = "No such message in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_message(
    principal: Granted<needs::WebhooksRead>,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<Json<MessageDetail>> {
    Ok(Json(messages::get(&principal.scope, id).await?))
}

/// Which deliveries to retry.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"endpoint_id": "01939f6e-8a2b-7c3e-9f10-aabbccddeeff"}))]
pub struct RetryMessage {
    /// One endpoint (whatever its delivery's state); absent: every endpoint whose
    /// delivery failed.
    pub endpoint_id: Option<Uuid>,
}

/// The endpoints a retry was queued for.
#[derive(Debug, Serialize, ToSchema)]
pub struct Retried {
    pub endpoint_ids: Vec<Uuid>,
}

/// Send a message again, with the same `webhook-id` and body.
#[utoipa::path(post, path = "/api/v1/webhooks/messages/{id}/retry", tag = "webhooks", operation_id = "webhooks_messages_retry",
    params(("id" = Uuid, Path)), request_body(content = Option<RetryMessage>, description = "Optional"),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Queued", body = Retried),
        (status = 404, description = "No such message, or no delivery to that enabled endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No delivery failed, or an attempt to that endpoint is in progress", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn retry_message(
    principal: Granted<needs::WebhooksManage>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
    body: axum::body::Bytes,
) -> AppResult<(StatusCode, Json<Retried>)> {
    // The body is optional: none retries every failed delivery.
    let endpoint = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<RetryMessage>(&body)
            .map_err(|e| AppError::new(crate::error::ErrorCode::MalformedRequest, e.to_string()))?
            .endpoint_id
    };
    let endpoint_ids = messages::retry(&principal, &client, id, endpoint).await?;
    Ok((StatusCode::ACCEPTED, Json(Retried { endpoint_ids })))
}

/// States in the OpenAPI document the names an endpoint may subscribe to: the catalog's,
/// or `*` (the derived schema only says "strings").
pub fn state_event_types(doc: &mut serde_json::Value) {
    let names: Vec<&str> = std::iter::once("*")
        .chain(
            crate::services::webhooks::EventType::ALL
                .iter()
                .map(|e| e.as_str()),
        )
        .collect();
    for schema in ["CreateEndpoint", "UpdateEndpoint"] {
        let path = format!("/components/schemas/{schema}/properties");
        let Some(properties) = doc.pointer_mut(&path) else {
            continue;
        };
        properties["event_types"]["items"]["enum"] = serde_json::json!(names);
        // What `endpoints::check` refuses in a description.
        properties["description"]["maxLength"] = 500.into();
        properties["description"]["pattern"] = crate::text::NO_CONTROL_PATTERN.into();
    }
    // The message list's filter takes the catalog's names.
    let filter = doc
        .pointer_mut("/paths/~1api~1v1~1webhooks~1messages/get/parameters")
        .and_then(serde_json::Value::as_array_mut);
    for parameter in filter.into_iter().flatten() {
        if parameter["name"] == "event_type" {
            parameter["schema"]["enum"] = serde_json::json!(&names[1..]);
        }
    }
}
