//! Business rules, between the HTTP handlers and storage.

pub mod api_keys;
pub mod audit;
pub mod identity;
pub mod jobs;
pub mod notify;
pub mod onboarding;
pub mod resources;
pub mod roles;
pub mod sessions;
pub mod tenants;
pub mod users;
