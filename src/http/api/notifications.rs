//! `/api/v1/notifications`: email, SMS and push sends and the send history.
//!
//! Every send takes one from the tenant's daily send quota; the templates are in
//! [`super::notification_templates`].

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::{
    AppState,
    auth::granted::Granted,
    domain::{Email, channel, template_name},
    error::{AppError, AppResult, FieldError, FieldErrors, Problem},
    http::{
        extract::{AppJson, AppQuery},
        pagination::{PageParams, Paginated},
        validate,
    },
    rbac::needs,
    services::notifications::{
        self, Channel, LogEntry, Outgoing, Queued,
        compose::{Content, compose},
    },
};

/// The largest email body, in bytes (SPEC: 256 KiB).
pub const MAX_EMAIL_BODY: usize = 256 * 1024;
/// The longest SMS, in characters (SNS splits it into up to 10 parts).
pub const MAX_SMS_BODY: usize = 1600;
/// The largest push notification body, in bytes (what APNs and FCM take).
pub const MAX_PUSH_BODY: usize = 4 * 1024;
/// The largest push `data` object, serialised.
const MAX_PUSH_DATA: usize = 2048;

/// A send parsed: the recipient and what the message says, its template named by a
/// valid name.
pub struct Send {
    pub to: String,
    pub content: Content,
}

/// The template name of a send, if one is given.
fn template(errors: &mut FieldErrors, raw: Option<String>) -> Option<Option<String>> {
    errors.take(
        raw.as_deref()
            .map(|name| template_name::parse("template", name))
            .transpose(),
    )
}

/// Queues `message` (see [`notifications::send`]) and answers 202 with its log row.
async fn send(
    app: &AppState,
    principal: &Granted<needs::NotificationsSend>,
    message: Outgoing,
) -> AppResult<(StatusCode, Json<Queued>)> {
    let queued = notifications::send(&app.mailer, principal, message).await?;
    Ok((StatusCode::ACCEPTED, Json(queued)))
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct SendEmail {
    /// The recipient's email address.
    #[schema(format = "email", max_length = 254)]
    pub to: String,
    /// Overrides the template's subject; at most 200 characters, no control characters.
    #[validate(length(max = 200), custom(function = "validate::no_control"))]
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub subject: Option<String>,
    /// The message (at most 256 KiB); required unless `template` is given.
    pub body: Option<String>,
    /// The name of an `email` template, instead of `body`.
    #[schema(pattern = "^[a-z][a-z0-9_.-]{0,99}$")]
    pub template: Option<String>,
    /// Values for the template's `{{ name }}` placeholders: strings, numbers or booleans,
    /// inserted as text, each at most 16 KiB. The filled body must fit the channel's limit
    /// (computed before rendering).
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Map<String, Value>>,
}

/// The address parsed (trimmed, lowercased) and the template name checked.
impl TryFrom<SendEmail> for Send {
    type Error = FieldErrors;

    fn try_from(req: SendEmail) -> Result<Self, FieldErrors> {
        let mut errors = validate::rules(&req);
        let to = errors.take(Email::parse("to", &req.to));
        let template = template(&mut errors, req.template);
        errors.finish(|| {
            Some(Send {
                to: to?.as_str().to_owned(),
                content: Content {
                    subject: req.subject,
                    body: req.body,
                    template: template?,
                    variables: req.variables,
                },
            })
        })
    }
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
    principal: Granted<needs::NotificationsSend>,
    AppJson(req): AppJson<SendEmail>,
) -> AppResult<(StatusCode, Json<Queued>)> {
    let Send { to, content } = Send::try_from(req)?;
    let (template, subject, body) =
        compose(&principal.scope, Channel::Email, content, MAX_EMAIL_BODY).await?;
    let message = Outgoing {
        channel: Channel::Email,
        to,
        template,
        subject,
        body,
        data: None,
    };
    send(&app, &principal, message).await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SendSms {
    /// E.164: `+` then 2 to 15 digits, the first not 0.
    #[schema(pattern = r"^\+[1-9][0-9]{1,14}$", example = "+15551234567")]
    pub to: String,
    /// The text (at most 1,600 characters); required unless `template` is given.
    pub body: Option<String>,
    /// The name of an `sms` template, instead of `body`.
    #[schema(pattern = "^[a-z][a-z0-9_.-]{0,99}$")]
    pub template: Option<String>,
    /// Values for the template's placeholders (strings, numbers or booleans, each at most
    /// 16 KiB).
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Map<String, Value>>,
}

/// The number checked (E.164) and the template name.
impl TryFrom<SendSms> for Send {
    type Error = FieldErrors;

    fn try_from(req: SendSms) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::by_field();
        let to = errors.take(channel::phone_number("to", &req.to));
        let template = template(&mut errors, req.template);
        errors.finish(|| {
            Some(Send {
                to: to?,
                content: Content {
                    subject: None,
                    body: req.body,
                    template: template?,
                    variables: req.variables,
                },
            })
        })
    }
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
    principal: Granted<needs::NotificationsSend>,
    AppJson(req): AppJson<SendSms>,
) -> AppResult<(StatusCode, Json<Queued>)> {
    let Send { to, content } = Send::try_from(req)?;
    let (template, _, body) =
        compose(&principal.scope, Channel::Sms, content, MAX_SMS_BODY).await?;
    let message = Outgoing {
        channel: Channel::Sms,
        to,
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

/// A push parsed: the target checked (an endpoint ARN), the template name, and `data`
/// (within its rule) kept for the message.
pub struct Push {
    pub send: Send,
    pub data: Option<Value>,
}

impl TryFrom<SendPush> for Push {
    type Error = FieldErrors;

    fn try_from(req: SendPush) -> Result<Self, FieldErrors> {
        let mut errors = validate::rules(&req);
        let target = errors.take(channel::endpoint_arn("target", &req.target));
        let template = template(&mut errors, req.template);
        errors.finish(|| {
            Some(Push {
                send: Send {
                    to: target?,
                    content: Content {
                        subject: req.title,
                        body: req.body,
                        template: template?,
                        variables: req.variables,
                    },
                },
                data: req.data,
            })
        })
    }
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
    principal: Granted<needs::NotificationsSend>,
    AppJson(req): AppJson<SendPush>,
) -> AppResult<(StatusCode, Json<Queued>)> {
    let Push {
        send: Send { to, content },
        data,
    } = Push::try_from(req)?;
    let (template, title, body) =
        compose(&principal.scope, Channel::Push, content, MAX_PUSH_BODY).await?;
    let message = Outgoing {
        channel: Channel::Push,
        to,
        template,
        subject: title,
        body,
        data,
    };
    send(&app, &principal, message).await
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
    principal: Granted<needs::NotificationsRead>,
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
