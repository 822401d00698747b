//! Integration tests: the real service against real PostgreSQL and Redis.

mod api_keys;
mod audit;
mod auth;
mod authz;
mod binary;
mod docs;
mod errors;
mod health;
mod helpers;
mod isolation;
mod jobs;
mod metrics;
mod migrate;
mod onboarding;
mod rbac;
mod registration;
mod resources;
mod routes;
mod sessions;
mod tenant_scope;
mod tenants;
mod tokens;
mod users;
