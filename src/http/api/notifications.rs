//! `/api/v1/notifications`: email, SMS and push sends, templates and the send history.
//!
//! Templates are the tenant's shared data, not owned by a user: the permission
//! (`notifications:manage_templates`) is the whole rule, so no owner-model policy
//! question arises. Every send takes one from the tenant's daily send quota.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::{Validate, ValidationError};

use crate::{
    AppState,
    auth::principal::TenantPrincipal,
    client_address::ClientInfo,
    error::{AppError, AppResult, FieldError, Problem},
    http::{
        extract::{AppPath, AppQuery},
        pagination::{PageParams, Paginated},
        validate::{self, ValidJson},
    },
    services::{
        audit::{self, AuditEntry},
        notifications::{
            self, Channel, LogEntry, Outgoing, Queued, Template, TemplateInput, template,
        },
    },
};

/// The largest email body, in bytes (SPEC: 256 KiB).
const MAX_EMAIL_BODY: usize = 256 * 1024;
/// The longest SMS, in characters (SNS splits it into up to 10 parts).
const MAX_SMS_BODY: usize = 1600;
/// The largest push notification body, in bytes (what APNs and FCM take).
const MAX_PUSH_BODY: usize = 4 * 1024;
/// The longest subject or push title, in characters, given or filled from a template.
const MAX_SUBJECT: usize = 200;
/// The largest push `data` object, serialised.
const MAX_PUSH_DATA: usize = 2048;
/// The largest template body.
const MAX_TEMPLATE_BODY: usize = 64 * 1024;

fn invalid(code: &'static str, message: &'static str) -> ValidationError {
    ValidationError::new(code).with_message(message.into())
}

fn e164(value: &str) -> Result<(), ValidationError> {
    if notifications::is_e164(value) {
        Ok(())
    } else {
        Err(invalid(
            "e164",
            "must be a phone number in E.164 form (+ then 2 to 15 digits, e.g. +15551234567)",
        ))
    }
}

fn endpoint_arn(value: &str) -> Result<(), ValidationError> {
    if notifications::is_endpoint_arn(value) {
        Ok(())
    } else {
        Err(invalid(
            "endpoint_arn",
            "must be an SNS platform endpoint ARN (arn:aws:sns:<region>:<account>:endpoint/...)",
        ))
    }
}

fn template_name(value: &str) -> Result<(), ValidationError> {
    notifications::parse_template_name("", value)
        .map(drop)
        .map_err(|_| invalid("template_name", "must match ^[a-z][a-z0-9_.-]{0,99}$"))
}

/// What the message says: its own text, or a template filled from variables.
struct Content {
    subject: Option<String>,
    body: Option<String>,
    template: Option<String>,
    variables: Option<Map<String, Value>>,
}

/// The unit a channel's body limit counts: bytes for email and push, characters for SMS.
fn unit_of(channel: Channel) -> template::Unit {
    match channel {
        Channel::Email | Channel::Push => template::Unit::Bytes,
        Channel::Sms => template::Unit::Chars,
    }
}

fn too_long(field: &str, size: usize, max: usize, unit: template::Unit) -> FieldError {
    FieldError::new(
        field,
        format!(
            "would be {size} {unit} once filled in, more than the limit of {max} {unit}",
            unit = unit.name()
        ),
    )
}

/// The subject and body to send, or every problem with them (422). `max_body` counts
/// bytes for email and push, characters for SMS. A template's output is measured before
/// it is rendered, so a send past the limit costs no more than reading its request.
async fn compose(
    principal: &TenantPrincipal,
    channel: Channel,
    content: Content,
    max_body: usize,
) -> AppResult<(Option<String>, String, String)> {
    let fail =
        |field: &str, message: String| AppError::validation(vec![FieldError::new(field, message)]);
    let unit = unit_of(channel);
    let variables = content.variables.unwrap_or_default();
    let errors = template::check_variables(&variables);
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let (subject, body, template) = match (content.body, content.template) {
        (Some(_), Some(_)) => {
            return Err(fail(
                "template",
                "give either body or template, not both".into(),
            ));
        }
        (None, None) => {
            return Err(fail(
                "body",
                "is required unless a template is given".into(),
            ));
        }
        (Some(body), None) => {
            if body.trim().is_empty() {
                return Err(fail("body", "must not be blank".into()));
            }
            (content.subject.unwrap_or_default(), body, None)
        }
        (None, Some(name)) => {
            let Some(stored) = notifications::find_template(&principal.scope, &name).await? else {
                return Err(fail(
                    "template",
                    format!("there is no template named {name}"),
                ));
            };
            if stored.channel != channel.as_str() {
                return Err(fail(
                    "template",
                    format!(
                        "is a {} template; this route sends {}",
                        stored.channel,
                        channel.as_str()
                    ),
                ));
            }
            // A given subject replaces the template's: its placeholders are not filled.
            let subject_template = match &content.subject {
                Some(_) => String::new(),
                None => stored.subject.clone().unwrap_or_default(),
            };
            let texts = [subject_template.as_str(), stored.body.as_str()];
            let sizes =
                template::measure(&texts, &variables, unit).map_err(AppError::validation)?;
            let subject_chars = template::measure(&texts[..1], &variables, template::Unit::Chars)
                .map_err(AppError::validation)?[0];
            let mut errors = Vec::new();
            if subject_chars > MAX_SUBJECT {
                errors.push(too_long(
                    "subject",
                    subject_chars,
                    MAX_SUBJECT,
                    template::Unit::Chars,
                ));
            }
            if sizes[1] > max_body {
                errors.push(too_long("body", sizes[1], max_body, unit));
            }
            if !errors.is_empty() {
                return Err(AppError::validation(errors));
            }
            let mut texts = template::render(&texts, &variables).map_err(AppError::validation)?;
            let body = texts.pop().unwrap_or_default();
            let subject = texts.pop().unwrap_or_default();
            (content.subject.unwrap_or(subject), body, Some(stored.name))
        }
    };
    // A template's subject is checked when stored; a variable could still bring a CR/LF.
    if crate::text::has_control(&subject) {
        return Err(fail(
            "subject",
            format!("{} (once filled in)", crate::text::NO_CONTROL_MESSAGE),
        ));
    }
    let size = match unit {
        template::Unit::Bytes => body.len(),
        template::Unit::Chars => body.chars().count(),
    };
    if size > max_body {
        return Err(AppError::validation(vec![FieldError::new(
            "body",
            format!("is longer than {max_body} {} once filled in", unit.name()),
        )]));
    }
    Ok((template, subject, body))
}

/// Takes one from the daily quota, then writes the log row and its job in one
/// transaction, and hands the job to the queue.
async fn send(
    app: &AppState,
    principal: &TenantPrincipal,
    message: Outgoing,
) -> AppResult<(StatusCode, Json<Queued>)> {
    let plan = principal.tenant.plan;
    app.limits
        .consume_send_quota(principal.tenant_id(), plan)
        .await?;
    let mut tx = principal.scope.begin().await?;
    let queued = notifications::queue_in(&mut tx, &message, Some(principal.actor.id())).await?;
    tx.commit().await?;
    notifications::dispatch(app, principal.tenant_id(), &queued).await;
    Ok((StatusCode::ACCEPTED, Json(queued)))
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct SendEmail {
    /// The recipient's email address.
    #[validate(custom(function = "validate::email"))]
    #[schema(format = "email", max_length = 254)]
    pub to: String,
    /// Overrides the template's subject; at most 200 characters, no control characters.
    #[validate(length(max = 200), custom(function = "validate::no_control"))]
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub subject: Option<String>,
    /// The message (at most 256 KiB); required unless `template` is given.
    pub body: Option<String>,
    /// The name of an `email` template, instead of `body`.
    #[validate(custom(function = "template_name"))]
    #[schema(pattern = "^[a-z][a-z0-9_.-]{0,99}$")]
    pub template: Option<String>,
    /// Values for the template's `{{ name }}` placeholders: strings, numbers or booleans,
    /// inserted as text, each at most 16 KiB. The filled body must fit the channel's limit
    /// (computed before rendering).
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Map<String, Value>>,
}

/// Send an email (SNS: published to the email topic with `recipient`, `subject` and
/// `from` message attributes).
#[utoipa::path(post, path = "/api/v1/notifications/email", tag = "notifications", request_body = SendEmail,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Queued: the log row (see the history) and its job", body = Queued),
        (status = 422, description = "Invalid address, no body or template, a template of another channel, a missing or too large variable (`variables.<name>`, at most 16 KiB each), or a body past 256 KiB once filled in (measured before rendering)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The daily send quota is used up (Retry-After: until midnight UTC)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The send quota cannot be checked now", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn email(
    State(app): State<AppState>,
    principal: TenantPrincipal,
    ValidJson(req): ValidJson<SendEmail>,
) -> AppResult<(StatusCode, Json<Queued>)> {
    let content = Content {
        subject: req.subject,
        body: req.body,
        template: req.template,
        variables: req.variables,
    };
    let (template, subject, body) =
        compose(&principal, Channel::Email, content, MAX_EMAIL_BODY).await?;
    let to = crate::services::users::Email::parse("to", &req.to)
        .map_err(|e| AppError::validation(vec![e]))?;
    let message = Outgoing {
        channel: Channel::Email,
        to: to.as_str().to_owned(),
        template,
        subject,
        body,
        data: None,
    };
    send(&app, &principal, message).await
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct SendSms {
    /// E.164: `+` then 2 to 15 digits, the first not 0.
    #[validate(custom(function = "e164"))]
    #[schema(pattern = r"^\+[1-9][0-9]{1,14}$", example = "+15551234567")]
    pub to: String,
    /// The text (at most 1,600 characters); required unless `template` is given.
    pub body: Option<String>,
    /// The name of an `sms` template, instead of `body`.
    #[validate(custom(function = "template_name"))]
    #[schema(pattern = "^[a-z][a-z0-9_.-]{0,99}$")]
    pub template: Option<String>,
    /// Values for the template's placeholders (strings, numbers or booleans, each at most
    /// 16 KiB).
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Map<String, Value>>,
}

/// Send an SMS (SNS `Publish` with `PhoneNumber`).
#[utoipa::path(post, path = "/api/v1/notifications/sms", tag = "notifications", request_body = SendSms,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Queued", body = Queued),
        (status = 422, description = "Not an E.164 number, no body or template, a missing or too large variable (16 KiB each), or a body past 1,600 characters once filled in (measured before rendering)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The daily send quota is used up", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The send quota cannot be checked now", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn sms(
    State(app): State<AppState>,
    principal: TenantPrincipal,
    ValidJson(req): ValidJson<SendSms>,
) -> AppResult<(StatusCode, Json<Queued>)> {
    let content = Content {
        subject: None,
        body: req.body,
        template: req.template,
        variables: req.variables,
    };
    let (template, _, body) = compose(&principal, Channel::Sms, content, MAX_SMS_BODY).await?;
    let message = Outgoing {
        channel: Channel::Sms,
        to: req.to,
        template,
        subject: String::new(),
        body,
        data: None,
    };
    send(&app, &principal, message).await
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct SendPush {
    /// An SNS platform endpoint ARN (`arn:aws:sns:<region>:<account>:endpoint/<platform>/<app>/<id>`).
    #[validate(custom(function = "endpoint_arn"))]
    #[schema(
        pattern = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:endpoint/.+/.+$",
        max_length = 1024
    )]
    pub target: String,
    /// At most 200 characters, no control characters; overrides a template's subject.
    #[validate(length(max = 200), custom(function = "validate::no_control"))]
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub title: Option<String>,
    /// The text (at most 4 KiB); required unless `template` is given.
    pub body: Option<String>,
    /// The name of a `push` template (its subject is the title), instead of `body`.
    #[validate(custom(function = "template_name"))]
    #[schema(pattern = "^[a-z][a-z0-9_.-]{0,99}$")]
    pub template: Option<String>,
    /// Values for the template's placeholders (strings, numbers or booleans, each at most
    /// 16 KiB).
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Map<String, Value>>,
    /// A JSON object for the app, at most 2 KiB serialised, its numbers between -1e300 and
    /// 1e300.
    #[validate(custom(function = "validate::json_object_within::<MAX_PUSH_DATA>"))]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
}

/// Send a push notification to a platform endpoint (SNS `Publish` with `TargetArn`; the
/// message is the JSON `{title, body, data}`).
#[utoipa::path(post, path = "/api/v1/notifications/push", tag = "notifications", request_body = SendPush,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Queued", body = Queued),
        (status = 422, description = "Not an endpoint ARN, no body or template, bad data, a missing or too large variable (16 KiB each), or a body past 4 KiB once filled in (measured before rendering)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The daily send quota is used up", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The send quota cannot be checked now", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn push(
    State(app): State<AppState>,
    principal: TenantPrincipal,
    ValidJson(req): ValidJson<SendPush>,
) -> AppResult<(StatusCode, Json<Queued>)> {
    let content = Content {
        subject: req.title,
        body: req.body,
        template: req.template,
        variables: req.variables,
    };
    let (template, title, body) =
        compose(&principal, Channel::Push, content, MAX_PUSH_BODY).await?;
    let message = Outgoing {
        channel: Channel::Push,
        to: req.target,
        template,
        subject: title,
        body,
        data: req.data,
    };
    send(&app, &principal, message).await
}

// ---------------------------------------------------------------------------------------
// Templates

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct TemplateRequest {
    /// `^[a-z][a-z0-9_.-]{0,99}$`, unique in the tenant.
    #[validate(custom(function = "template_name"))]
    #[schema(pattern = "^[a-z][a-z0-9_.-]{0,99}$", min_length = 1, max_length = 100)]
    pub name: String,
    pub channel: Channel,
    /// Email subject or push title (not for `sms`); at most 200 characters, no control
    /// characters, may hold placeholders.
    #[validate(length(max = 200), custom(function = "validate::no_control"))]
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub subject: Option<String>,
    /// At most 64 KiB, not blank; `{{ name }}` placeholders (letters, digits, `_ . -`),
    /// at most 100 in the subject and body together.
    #[validate(length(max = 65536), custom(function = "validate::not_blank"))]
    #[schema(min_length = 1, max_length = 65536)]
    pub body: String,
}

impl TemplateRequest {
    fn input(self) -> AppResult<TemplateInput> {
        let mut errors = Vec::new();
        if self.body.len() > MAX_TEMPLATE_BODY {
            errors.push(FieldError::new("body", "must be at most 64 KiB"));
        }
        if let Err(e) = template::check("body", &self.body) {
            errors.push(e);
        }
        let texts = [self.subject.as_deref().unwrap_or_default(), &self.body];
        if let Err(e) = template::check_placeholders("body", &texts) {
            errors.push(e);
        }
        let subject = self.subject.filter(|s| !s.is_empty());
        if let Some(subject) = &subject {
            if self.channel == Channel::Sms {
                errors.push(FieldError::new("subject", "sms templates have no subject"));
            } else if let Err(e) = template::check("subject", subject) {
                errors.push(e);
            }
        }
        if !errors.is_empty() {
            return Err(AppError::validation(errors));
        }
        Ok(TemplateInput {
            name: self.name,
            channel: self.channel,
            subject,
            body: self.body,
        })
    }
}

async fn audit_template(
    tx: &mut crate::db::TenantTx,
    principal: &TenantPrincipal,
    client: &ClientInfo,
    action: &'static str,
    template: &Template,
) -> AppResult<()> {
    let entry = AuditEntry::new(Some(principal.actor), action, client)
        .target("notification_template", template.id)
        .metadata(json!({"name": template.name, "channel": template.channel}));
    audit::record_in(tx, entry).await?;
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TemplateFilter {
    /// Only templates of this channel.
    pub channel: Option<Channel>,
    /// 1 to 100; default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(schema_with = crate::http::pagination::cursor_schema)]
    pub cursor: Option<String>,
}

/// The tenant's templates, newest first.
#[utoipa::path(get, path = "/api/v1/notifications/templates", tag = "notifications", params(TemplateFilter),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Templates", body = Paginated<Template>),
        (status = 422, description = "Bad channel, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_templates(
    principal: TenantPrincipal,
    AppQuery(filter): AppQuery<TemplateFilter>,
) -> AppResult<Json<Paginated<Template>>> {
    let page = PageParams {
        limit: filter.limit,
        cursor: filter.cursor,
    }
    .page()?;
    let rows =
        notifications::list_templates(&principal.scope, filter.channel, page.before, page.fetch())
            .await?;
    Ok(Json(Paginated::new(rows, page, |t| t.id)))
}

/// Create a template.
#[utoipa::path(post, path = "/api/v1/notifications/templates", tag = "notifications", request_body = TemplateRequest,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = Template),
        (status = 409, description = "Name taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields or placeholders, or more than 100 placeholders", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_template(
    principal: TenantPrincipal,
    client: ClientInfo,
    ValidJson(req): ValidJson<TemplateRequest>,
) -> AppResult<(StatusCode, Json<Template>)> {
    let input = req.input()?;
    let mut tx = principal.scope.begin().await?;
    let template = notifications::create_template(&mut tx, &input).await?;
    audit_template(
        &mut tx,
        &principal,
        &client,
        "notification_template.created",
        &template,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(template)))
}

/// One template.
#[utoipa::path(get, path = "/api/v1/notifications/templates/{id}", tag = "notifications", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The template", body = Template),
        (status = 404, description = "No such template in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_template(
    principal: TenantPrincipal,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<Json<Template>> {
    Ok(Json(
        notifications::get_template(&principal.scope, id).await?,
    ))
}

/// Replace a template.
#[utoipa::path(put, path = "/api/v1/notifications/templates/{id}", tag = "notifications", params(("id" = Uuid, Path)),
    request_body = TemplateRequest, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Replaced", body = Template),
        (status = 404, description = "No such template in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Name taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields or placeholders, or more than 100 placeholders", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn replace_template(
    principal: TenantPrincipal,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
    ValidJson(req): ValidJson<TemplateRequest>,
) -> AppResult<Json<Template>> {
    let input = req.input()?;
    let mut tx = principal.scope.begin().await?;
    let template = notifications::replace_template(&mut tx, id, &input).await?;
    audit_template(
        &mut tx,
        &principal,
        &client,
        "notification_template.updated",
        &template,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(template))
}

/// Delete a template (sends already queued with it are not affected).
#[utoipa::path(delete, path = "/api/v1/notifications/templates/{id}", tag = "notifications", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such template in this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_template(
    principal: TenantPrincipal,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<StatusCode> {
    let mut tx = principal.scope.begin().await?;
    let template = notifications::delete_template(&mut tx, id).await?;
    audit_template(
        &mut tx,
        &principal,
        &client,
        "notification_template.deleted",
        &template,
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------
// History

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryFilter {
    /// `email`, `sms` or `push`.
    #[param(schema_with = channel_schema)]
    pub channel: Option<String>,
    /// `queued`, `sent` or `failed`.
    #[param(schema_with = send_status_schema)]
    pub status: Option<String>,
    /// 1 to 100; default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(schema_with = crate::http::pagination::cursor_schema)]
    pub cursor: Option<String>,
}

fn channel_schema() -> utoipa::openapi::Object {
    crate::http::pagination::one_of(&["email", "sms", "push"])
}

fn send_status_schema() -> utoipa::openapi::Object {
    crate::http::pagination::one_of(SEND_STATUSES)
}

const SEND_STATUSES: &[&str] = &["queued", "sent", "failed"];

/// The tenant's sends, newest first: recipient, status and provider message id, never
/// the content.
#[utoipa::path(get, path = "/api/v1/notifications/history", tag = "notifications", params(HistoryFilter),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Sends", body = Paginated<LogEntry>),
        (status = 422, description = "Bad channel, status, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn history(
    principal: TenantPrincipal,
    AppQuery(filter): AppQuery<HistoryFilter>,
) -> AppResult<Json<Paginated<LogEntry>>> {
    let mut errors = Vec::new();
    let channel = filter.channel.as_deref().map(Channel::parse);
    if channel == Some(None) {
        errors.push(FieldError::new("channel", "must be email, sms or push"));
    }
    if let Some(status) = &filter.status
        && !SEND_STATUSES.contains(&status.as_str())
    {
        errors.push(FieldError::new("status", "must be queued, sent or failed"));
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let page = PageParams {
        limit: filter.limit,
        cursor: filter.cursor,
    }
    .page()?;
    let rows = notifications::history(
        &principal.scope,
        channel.flatten(),
        filter.status.as_deref(),
        page.before,
        page.fetch(),
    )
    .await?;
    Ok(Json(Paginated::new(rows, page, |e| e.id)))
}
