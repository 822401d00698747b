//! The use cases of `/api/v1/notifications/templates`: each opens the transaction,
//! writes, audits and commits. Templates are the tenant's shared data, not owned by a
//! user: the route's permission is the whole rule.

use serde_json::json;
use uuid::Uuid;

use crate::{
    auth::{granted::Granted, principal::TenantPrincipal},
    client_address::ClientInfo,
    db::TenantTx,
    error::AppResult,
    rbac::needs,
    services::{
        audit::{self, AuditEntry},
        notifications::{self, Template, TemplateInput},
    },
};

/// Creates a template.
pub async fn create(
    principal: &Granted<needs::NotificationsManageTemplates>,
    client: &ClientInfo,
    input: &TemplateInput,
) -> AppResult<Template> {
    let mut tx = principal.scope.begin().await?;
    let template = notifications::create_template(&mut tx, input).await?;
    audit_template(
        &mut tx,
        principal,
        client,
        "notification_template.created",
        &template,
    )
    .await?;
    tx.commit().await?;
    Ok(template)
}

/// Replaces a template.
pub async fn replace(
    principal: &Granted<needs::NotificationsManageTemplates>,
    client: &ClientInfo,
    id: Uuid,
    input: &TemplateInput,
) -> AppResult<Template> {
    let mut tx = principal.scope.begin().await?;
    let template = notifications::replace_template(&mut tx, id, input).await?;
    audit_template(
        &mut tx,
        principal,
        client,
        "notification_template.updated",
        &template,
    )
    .await?;
    tx.commit().await?;
    Ok(template)
}

/// Deletes a template (sends already queued with it are not affected).
pub async fn delete(
    principal: &Granted<needs::NotificationsManageTemplates>,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<()> {
    let mut tx = principal.scope.begin().await?;
    let template = notifications::delete_template(&mut tx, id).await?;
    audit_template(
        &mut tx,
        principal,
        client,
        "notification_template.deleted",
        &template,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn audit_template(
    tx: &mut TenantTx,
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
