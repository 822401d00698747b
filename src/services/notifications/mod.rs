//! Notifications: templates, sends and their history.
//!
//! A send is a `notification.send` job with a row in `notification_logs`, both written
//! in one transaction: the row starts `queued`, and the job moves it to `sent` (with the
//! provider's message id) or, after its last attempt, to `failed`. The job reads the row
//! before sending, so a retry after a delivery that went through does not deliver again.
//! The message body lives only in the job's payload (hidden from the jobs API, and
//! removed once the row is final): identity messages carry reset and verification tokens.

pub mod backend;
pub mod compose;
mod mailer;
pub mod manage_templates;
pub mod outbox;
pub mod template;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

pub use backend::{Notifier, Outgoing};
pub use mailer::Mailer;

use crate::{
    auth::granted::Granted,
    db::{TenantScope, TenantTx},
    error::{AppError, AppResult, ErrorCode, on_unique},
    jobs::{JobMessage, JobQueue, JobType, Lane},
    rbac::needs,
    services::{
        jobs::{self, DEFAULT_MAX_ATTEMPTS, NewJob},
        rate_limit::{MailRefusal, RateLimiter},
        tenants::Plan,
    },
};

pub use crate::domain::channel::{Channel, is_e164, is_endpoint_arn};

pub use crate::domain::template_name::parse as parse_template_name;

// ---------------------------------------------------------------------------------------
// Templates

/// A stored message with `{{ name }}` placeholders.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct Template {
    pub id: Uuid,
    /// Unique in the tenant.
    pub name: String,
    /// `email`, `sms` or `push`.
    pub channel: String,
    /// Email subject or push title (may hold placeholders).
    pub subject: Option<String>,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields of a template, checked.
#[derive(Debug, Clone)]
pub struct TemplateInput {
    pub name: String,
    pub channel: Channel,
    pub subject: Option<String>,
    pub body: String,
}

const TEMPLATE_COLUMNS: &str = "select id, name, channel, subject, body, created_at, updated_at from {schema}.notification_templates";

fn name_taken() -> AppError {
    AppError::conflict(
        ErrorCode::Conflict,
        "a notification template with this name already exists",
    )
}

pub async fn create_template(tx: &mut TenantTx, input: &TemplateInput) -> AppResult<Template> {
    let sql = tx.sql(
        "insert into {schema}.notification_templates (id, name, channel, subject, body)
         values ($1, $2, $3, $4, $5)
         returning id, name, channel, subject, body, created_at, updated_at",
    );
    sqlx::query_as(sql)
        .bind(Uuid::now_v7())
        .bind(&input.name)
        .bind(input.channel.as_str())
        .bind(&input.subject)
        .bind(&input.body)
        .fetch_one(tx.conn())
        .await
        .map_err(on_unique("notification_templates_name_key", name_taken))
}

pub async fn replace_template(
    tx: &mut TenantTx,
    id: Uuid,
    input: &TemplateInput,
) -> AppResult<Template> {
    let sql = tx.sql(
        "update {schema}.notification_templates
         set name = $2, channel = $3, subject = $4, body = $5, updated_at = now()
         where id = $1
         returning id, name, channel, subject, body, created_at, updated_at",
    );
    sqlx::query_as(sql)
        .bind(id)
        .bind(&input.name)
        .bind(input.channel.as_str())
        .bind(&input.subject)
        .bind(&input.body)
        .fetch_optional(tx.conn())
        .await
        .map_err(on_unique("notification_templates_name_key", name_taken))?
        .ok_or_else(AppError::not_found)
}

pub async fn delete_template(tx: &mut TenantTx, id: Uuid) -> AppResult<Template> {
    let sql = tx.sql(
        "delete from {schema}.notification_templates where id = $1
         returning id, name, channel, subject, body, created_at, updated_at",
    );
    sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(AppError::not_found)
}

pub async fn get_template(scope: &TenantScope, id: Uuid) -> AppResult<Template> {
    sqlx::query_as(scope.sql_parts(&[TEMPLATE_COLUMNS, " where id = $1"]))
        .bind(id)
        .fetch_optional(scope.db())
        .await?
        .ok_or_else(AppError::not_found)
}

pub async fn find_template(scope: &TenantScope, name: &str) -> sqlx::Result<Option<Template>> {
    sqlx::query_as(scope.sql_parts(&[TEMPLATE_COLUMNS, " where name = $1"]))
        .bind(name)
        .fetch_optional(scope.db())
        .await
}

/// Newest first, keyset-paginated, optionally of one channel.
pub async fn list_templates(
    scope: &TenantScope,
    channel: Option<Channel>,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Template>> {
    sqlx::query_as(scope.sql_parts(&[
        TEMPLATE_COLUMNS,
        " where ($1::uuid is null or id < $1) and ($2::text is null or channel = $2)
          order by id desc limit $3",
    ]))
    .bind(before)
    .bind(channel.map(Channel::as_str))
    .bind(limit)
    .fetch_all(scope.db())
    .await
}

// ---------------------------------------------------------------------------------------
// Sends and their history

/// One send as the history shows it: never the body.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct LogEntry {
    pub id: Uuid,
    /// `email`, `sms` or `push`.
    pub channel: String,
    pub recipient: String,
    pub template_name: Option<String>,
    /// `queued`, `sent` or `failed`.
    pub status: String,
    /// The provider's message id once sent (`log-<id>` on the `log` backend).
    pub provider_message_id: Option<String>,
    /// Why the last attempt failed (kept while a retry is queued).
    pub error: Option<String>,
    /// The user or API key that asked; `null` for the service's own messages.
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

const LOG_COLUMNS: &str = "select id, channel, recipient, template_name, status,
    provider_message_id, error, created_by, created_at, sent_at from {schema}.notification_logs";

/// Newest first, keyset-paginated, filtered by channel and status.
pub async fn history(
    scope: &TenantScope,
    channel: Option<Channel>,
    status: Option<&str>,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<LogEntry>> {
    sqlx::query_as(scope.sql_parts(&[
        LOG_COLUMNS,
        " where ($1::uuid is null or id < $1) and ($2::text is null or channel = $2)
          and ($3::text is null or status = $3) order by id desc limit $4",
    ]))
    .bind(before)
    .bind(channel.map(Channel::as_str))
    .bind(status)
    .bind(limit)
    .fetch_all(scope.db())
    .await
}

/// A send accepted: its log row and the job that delivers it.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Queued {
    /// The `notification_logs` row (see the history).
    pub id: Uuid,
    /// Always `queued`.
    #[schema(value_type = String, example = "queued")]
    pub status: &'static str,
    /// The `notification.send` job (payload and result are not shown: they may hold secrets).
    pub job_id: Uuid,
    /// The service's own mail goes through the platform's lane.
    #[serde(skip)]
    #[schema(ignore)]
    pub lane: Lane,
}

/// Writes the log row (`queued`) and its `notification.send` job inside `tx`; after the
/// commit, [`dispatch`] hands the job to the queue.
pub async fn queue_in(
    tx: &mut TenantTx,
    message: &Outgoing,
    created_by: Option<Uuid>,
) -> sqlx::Result<Queued> {
    let id = Uuid::now_v7();
    let sql = tx.sql(
        "insert into {schema}.notification_logs (id, channel, recipient, template_name, created_by)
         values ($1, $2, $3, $4, $5)",
    );
    sqlx::query(sql)
        .bind(id)
        .bind(message.channel.as_str())
        .bind(&message.to)
        .bind(&message.template)
        .bind(created_by)
        .execute(tx.conn())
        .await?;
    let mut payload = json!({
        "log_id": id,
        "channel": message.channel,
        "to": message.to,
        "subject": message.subject,
        "body": message.body,
    });
    if let Some(template) = &message.template {
        payload["template"] = template.clone().into();
    }
    if let Some(data) = &message.data {
        payload["data"] = data.clone();
    }
    let job = NewJob {
        job_type: JobType::NotificationSend,
        payload,
        max_attempts: DEFAULT_MAX_ATTEMPTS,
    };
    let job = jobs::insert(tx, &job, created_by).await?;
    Ok(Queued {
        id,
        status: "queued",
        job_id: job.id,
        lane: Lane::of_row(created_by, JobType::NotificationSend.as_str()),
    })
}

/// Hands a committed send to the queue (the reconciler does it if this fails).
pub async fn dispatch(queue: &JobQueue, tenant_id: Uuid, queued: &Queued) {
    jobs::enqueue(
        queue,
        JobMessage::row(tenant_id, queued.job_id, queued.lane),
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Mail the platform sends by itself

/// The mail the platform sends by itself. Each kind has a fixed subject: no
/// tenant-controlled text (a tenant's or a user's name) ever reaches a mail header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformMail {
    Welcome,
    EmailVerification,
    /// Somebody tried to register an address that already has an account.
    RegistrationExistingAccount,
    PasswordReset,
    /// An invitation to join a tenant.
    Invitation,
}

impl PlatformMail {
    /// The `template` the send log and the message record.
    pub fn template(self) -> &'static str {
        match self {
            Self::Welcome => "welcome",
            Self::EmailVerification => "email_verification",
            Self::RegistrationExistingAccount => "registration_existing_account",
            Self::PasswordReset => "password_reset",
            Self::Invitation => "invitation",
        }
    }

    pub fn subject(self) -> &'static str {
        match self {
            Self::Welcome => "Welcome to Tenantry",
            Self::EmailVerification => "Confirm your email address",
            Self::RegistrationExistingAccount => "Someone tried to register with your address",
            Self::PasswordReset => "Reset your password",
            Self::Invitation => "You are invited",
        }
    }
}

/// Queues one platform mail inside `tx`, when its limits allow: at most
/// [`PLATFORM_MAIL_PER_HOUR`](crate::services::rate_limit::PLATFORM_MAIL_PER_HOUR) to
/// one recipient per hour, and one send from the tenant's daily send quota. `to` must be
/// the address stored for the account, never the one a request typed. `None` when the
/// mail may not go out: it is not sent, whoever asked gets the same answer (a 202 stays a
/// 202), and `tenantry_platform_mail_suppressed_total` counts it. Job and log row carry
/// no creator: the platform, not a tenant principal, sends it (so no tenant may cancel it).
pub async fn queue_platform_in(
    limits: &RateLimiter,
    tx: &mut TenantTx,
    plan: Plan,
    kind: PlatformMail,
    to: &str,
    body: String,
) -> sqlx::Result<Option<Queued>> {
    let tenant_id = tx.tenant_id();
    let refused = match limits.consume_platform_mail(tenant_id, to).await {
        Err(MailRefusal::RecipientLimit) => Some("recipient_limit"),
        Err(MailRefusal::Unavailable) => Some("unavailable"),
        Ok(()) => match limits.consume_send_quota(tenant_id, plan).await {
            Ok(()) => None,
            Err(e) if e.code() == ErrorCode::RateLimited => Some("daily_quota"),
            Err(_) => Some("unavailable"),
        },
    };
    if let Some(reason) = refused {
        metrics::counter!(
            "tenantry_platform_mail_suppressed_total",
            "kind" => kind.template(),
            "reason" => reason
        )
        .increment(1);
        tracing::info!(%tenant_id, kind = kind.template(), reason, "platform mail not sent");
        return Ok(None);
    }
    let message = Outgoing {
        channel: Channel::Email,
        to: to.to_owned(),
        template: Some(kind.template().to_owned()),
        subject: kind.subject().to_owned(),
        body,
        data: None,
    };
    queue_in(tx, &message, None).await.map(Some)
}

/// [`queue_platform_in`] in a transaction of its own, then handed to the queue.
pub async fn send_platform(
    mailer: &Mailer,
    scope: &TenantScope,
    plan: Plan,
    kind: PlatformMail,
    to: &str,
    body: String,
) -> sqlx::Result<Option<Queued>> {
    let mut tx = scope.begin().await?;
    let queued = queue_platform_in(&mailer.limits, &mut tx, plan, kind, to, body).await?;
    tx.commit().await?;
    if let Some(queued) = &queued {
        dispatch(&mailer.queue, scope.tenant_id(), queued).await;
    }
    Ok(queued)
}

/// A log row's status and message id, for the job.
pub async fn log_status(
    scope: &TenantScope,
    id: Uuid,
) -> sqlx::Result<Option<(String, Option<String>)>> {
    sqlx::query_as(
        scope.sql(
            "select status, provider_message_id from {schema}.notification_logs where id = $1",
        ),
    )
    .bind(id)
    .fetch_optional(scope.db())
    .await
}

/// A send that failed for good, as its `notification.failed` webhook event shows it.
#[derive(Debug, Serialize, sqlx::FromRow)]
struct FailedSend {
    id: Uuid,
    channel: String,
    recipient: String,
    template_name: Option<String>,
    error: Option<String>,
}

/// What the job records after an attempt.
pub enum Outcome<'a> {
    Sent(&'a str),
    /// Another attempt follows: the row stays `queued` with the error.
    Retrying(&'a str),
    Failed(&'a str),
}

/// Updates the log row after an attempt; once it is final (`sent` or `failed`), the
/// message content is removed from the job's payload.
pub async fn record(
    scope: &TenantScope,
    log_id: Uuid,
    job_id: Uuid,
    outcome: Outcome<'_>,
) -> sqlx::Result<()> {
    let mut tx = scope.begin().await?;
    let (status, message_id, error) = match outcome {
        Outcome::Sent(id) => ("sent", Some(id), None),
        Outcome::Retrying(e) => ("queued", None, Some(e)),
        Outcome::Failed(e) => ("failed", None, Some(e)),
    };
    let sql = tx.sql(
        "update {schema}.notification_logs set status = $2, provider_message_id = $3,
            error = $4, sent_at = case when $2 = 'sent' then now() end
         where id = $1 and status = 'queued'
         returning id, channel, recipient, template_name, error",
    );
    let changed: Option<FailedSend> = sqlx::query_as(sql)
        .bind(log_id)
        .bind(status)
        .bind(message_id)
        .bind(error)
        .fetch_optional(tx.conn())
        .await?;
    if let Some(failed) = changed
        && status == "failed"
    {
        crate::services::webhooks::emit(
            &mut tx,
            crate::services::webhooks::EventType::NotificationFailed,
            failed,
        )
        .await?;
    }
    if status != "queued" {
        let sql = tx.sql(
            "update {schema}.jobs set payload = payload - 'subject' - 'body' - 'data'
             where id = $1",
        );
        sqlx::query(sql).bind(job_id).execute(tx.conn()).await?;
    }
    tx.commit().await
}

/// A tenant's send: takes one from the daily quota, then writes the log row and its job in one
/// transaction, and hands the job to the queue.
pub async fn send(
    mailer: &Mailer,
    principal: &Granted<needs::NotificationsSend>,
    message: Outgoing,
) -> AppResult<Queued> {
    let plan = principal.tenant.plan;
    mailer
        .limits
        .consume_send_quota(principal.tenant_id(), plan)
        .await?;
    let mut tx = principal.scope.begin().await?;
    let queued = queue_in(&mut tx, &message, Some(principal.actor.id())).await?;
    tx.commit().await?;
    dispatch(&mailer.queue, principal.tenant_id(), &queued).await;
    Ok(queued)
}
