//! Integration tests: the real service against real PostgreSQL and Redis.

mod api_keys;
mod auth;
mod binary;
mod docs;
mod errors;
mod health;
mod helpers;
mod metrics;
mod migrate;
mod onboarding;
mod routes;
mod tenant_scope;
mod tenants;
mod tokens;
mod users;
