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

use super::notifications::template_name;
use crate::{
    auth::granted::Granted,
    client_address::ClientInfo,
    error::{AppError, AppResult, FieldError, Problem},
    http::{
        extract::{AppPath, AppQuery},
        pagination::{PageParams, Paginated},
        validate::{self, ValidJson},
    },
    rbac::needs,
    services::notifications::{self, Channel, Template, TemplateInput, manage_templates, template},
};

/// The largest template body.
const MAX_TEMPLATE_BODY: usize = 64 * 1024;

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
    ValidJson(req): ValidJson<TemplateRequest>,
) -> AppResult<(StatusCode, Json<Template>)> {
    let input = req.input()?;
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
    ValidJson(req): ValidJson<TemplateRequest>,
) -> AppResult<Json<Template>> {
    let input = req.input()?;
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
