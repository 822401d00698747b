//! Tenantry: a multi-tenant SaaS backend platform.
//!
//! Layers, top to bottom: [`http`] (routes, extractors, the layer stack) over the services
//! over storage ([`db`], [`redis`]). Every tenant's tables live in their own PostgreSQL
//! schema and are reached only through a [`db::TenantScope`].

pub mod app;
pub mod auth;
pub mod aws;
pub mod background;
pub mod cache;
pub mod cli;
pub mod client_address;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod jobs;
pub mod lease;
pub mod rbac;
pub mod redis;
pub mod services;
pub mod storage;
pub mod subsystem;
pub mod telemetry;
pub mod text;

pub use app::{App, AppState};
pub use config::Config;
pub use error::{AppError, AppResult};
