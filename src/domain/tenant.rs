//! A tenant: a customer organisation, as its `platform.tenants` row holds it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    Plan,
    tenant_settings::{Security, SelfRegistration},
};

/// A customer organisation.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    #[sqlx(try_from = "String")]
    pub plan: Plan,
    /// `provisioning`, `active`, `suspended` or `deleted`.
    pub status: String,
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Tenant {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }

    /// Whether and from which email domains users may register themselves
    /// (`settings.self_registration`); off unless the tenant opted in.
    pub fn self_registration(&self) -> SelfRegistration {
        SelfRegistration::of(&self.settings)
    }

    /// Whether users must pass a second factor (`settings.security.require_mfa`).
    pub fn requires_mfa(&self) -> bool {
        Security::of(&self.settings).require_mfa
    }
}
