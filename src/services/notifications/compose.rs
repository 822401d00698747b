//! What a send says: its own text, or a template filled from variables, checked against
//! the channel's limits.

use serde_json::{Map, Value};

use super::{Channel, template};
use crate::{
    db::TenantScope,
    error::{AppError, AppResult, FieldError},
};

/// The longest subject or push title, in characters, given or filled from a template.
const MAX_SUBJECT: usize = 200;

/// What the message says: its own text, or a template filled from variables.
pub struct Content {
    pub subject: Option<String>,
    pub body: Option<String>,
    pub template: Option<String>,
    pub variables: Option<Map<String, Value>>,
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
pub async fn compose(
    scope: &TenantScope,
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
            let Some(stored) = super::find_template(scope, &name).await? else {
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
