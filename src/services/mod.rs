//! Business rules, between the HTTP handlers and storage.

pub mod active_sessions;
pub mod api_keys;
pub mod audit;
pub mod files;
pub mod identity;
pub mod invitations;
pub mod jobs;
pub mod metering;
pub mod mfa;
pub mod notifications;
pub mod onboarding;
pub mod rate_limit;
pub mod resources;
pub mod roles;
pub mod scaling;
pub mod sessions;
pub mod tenants;
pub mod usage;
pub mod users;
pub mod webhooks;
