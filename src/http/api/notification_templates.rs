//! `/api/v1/notifications/templates`: the tenant's message templates.
//!
//! Templates are the tenant's shared data, not owned by a user: the permission
//! (`notifications:manage_templates`) is the whole rule, so no owner-model policy
//! question arises.

use axum::{Json, http::StatusCode};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use crate::{
    auth::granted::Granted,
    client_address::ClientInfo,
    domain::template_name,
    error::{AppResult, FieldError, FieldErrors, Problem},
    http::{
        extract::{AppJson, AppPath, AppQuery},
        pagination::{PageParams, Paginated},
        validate,
    },
    rbac::needs,
    services::notifications::{self, Channel, Template, TemplateInput, manage_templates, template},
};

/// The largest template body.
const MAX_TEMPLATE_BODY: usize = 64 * 1024;

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub struct TemplateRequest {
    /// `^[a-z][a-z0-9_.-]{0,99}$`, unique in the tenant.
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

/// The name parsed along with the declared rules, every broken field named at once; the
/// text's own checks (placeholders, size in bytes, no subject for sms) follow once those
/// all hold, as a second answer (a template whose name is wrong is not read further).
impl TryFrom<TemplateRequest> for TemplateInput {
    type Error = FieldErrors;

    fn try_from(req: TemplateRequest) -> Result<Self, FieldErrors> {
        let mut errors = validate::rules(&req);
        let name = errors.take(template_name::parse("name", &req.name));
        let read_text = errors.is_empty();
        if read_text {
            if req.body.len() > MAX_TEMPLATE_BODY {
                errors.push(FieldError::new("body", "must be at most 64 KiB"));
            }
            errors.check(template::check("body", &req.body));
            let texts = [req.subject.as_deref().unwrap_or_default(), &req.body];
            errors.check(template::check_placeholders("body", &texts));
        }
        let subject = req.subject.filter(|s| !s.is_empty());
        if let Some(subject) = &subject
            && read_text
        {
            if req.channel == Channel::Sms {
                errors.push(FieldError::new("subject", "sms templates have no subject"));
            } else {
                errors.check(template::check("subject", subject));
            }
        }
        errors.finish(|| {
            Some(TemplateInput {
                name: name?,
                channel: req.channel,
                subject,
                body: req.body,
            })
        })
    }
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
    principal: Granted<needs::NotificationsRead>,
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
    principal: Granted<needs::NotificationsManageTemplates>,
    client: ClientInfo,
    AppJson(req): AppJson<TemplateRequest>,
) -> AppResult<(StatusCode, Json<Template>)> {
    let input = TemplateInput::try_from(req)?;
    let template = manage_templates::create(&principal, &client, &input).await?;
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
    principal: Granted<needs::NotificationsRead>,
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
    principal: Granted<needs::NotificationsManageTemplates>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
    AppJson(req): AppJson<TemplateRequest>,
) -> AppResult<Json<Template>> {
    let input = TemplateInput::try_from(req)?;
    let template = manage_templates::replace(&principal, &client, id, &input).await?;
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
    principal: Granted<needs::NotificationsManageTemplates>,
    client: ClientInfo,
    AppPath(id): AppPath<Uuid>,
) -> AppResult<StatusCode> {
    manage_templates::delete(&principal, &client, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
