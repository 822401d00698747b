//! Handlers of the tenant API under `/api/v1`: parse, call a service, shape the answer.

pub mod api_keys;
pub mod auth;
pub mod tenants;
pub mod users;
