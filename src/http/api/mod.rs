//! Handlers of the tenant API under `/api/v1`: parse, call a service, shape the answer.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod auth_sessions;
pub mod files;
pub mod invitations;
pub mod jobs;
pub mod mfa;
pub mod notification_templates;
pub mod notifications;
pub mod rate_limits;
pub mod resources;
pub mod roles;
pub mod scaling;
pub mod tenants;
pub mod usage;
pub mod users;
pub mod webhooks;
