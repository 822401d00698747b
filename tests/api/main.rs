//! Integration tests: the real service against real PostgreSQL and Redis.

mod auth;
mod binary;
mod docs;
mod errors;
mod health;
mod helpers;
mod metrics;
mod migrate;
mod onboarding;
mod tenant_scope;
