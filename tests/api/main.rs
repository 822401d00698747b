//! Integration tests: the real service against real PostgreSQL and Redis.

mod api_keys;
mod audit;
mod auth;
mod binary;
mod docs;
mod errors;
mod health;
mod helpers;
mod isolation;
mod metrics;
mod migrate;
mod onboarding;
mod rate_limits;
mod rbac;
mod resources;
mod routes;
mod tenant_scope;
mod tenants;
mod tokens;
mod usage;
mod users;
