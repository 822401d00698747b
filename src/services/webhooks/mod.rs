//! Outbound webhooks: tenants' own systems hear what happens in their tenant.
//!
//! Where things live: endpoints, messages, deliveries and attempts in the tenant's
//! schema (every API read is then scoped like any tenant table, and a tenant's webhook
//! history goes with its schema when it moves between Citus workers or is purged);
//! the queue of what is due in `platform.webhook_queue`, so one statement finds due
//! work across every tenant. An event is written by [`emit`] in the transaction of the
//! change (the outbox); the [`dispatcher`] delivers it (Standard Webhooks signatures,
//! the SPEC's retry schedule).

pub mod dispatcher;
pub mod endpoints;
pub mod events;
pub mod http_client;
pub mod messages;
pub mod signing;
pub mod target;

pub use events::{EventType, emit};
