//! Keeping every replica's authentication caches honest.
//!
//! A change to roles, assignments, users, keys or a tenant's status invalidates this
//! replica's caches at once and is published on a Redis channel; every replica listens
//! and drops the same entries. If Redis is unreachable the caches still expire on their
//! own (30 s), which bounds how long another replica can act on stale permissions.

use std::time::Duration;

use futures::StreamExt;
use uuid::Uuid;

use crate::app::{App, AppState};

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Anything about a tenant: status, roles, assignments, users.
    Tenant(Uuid),
    /// One API key (revoked, rotated).
    ApiKey(Uuid),
}

impl Change {
    fn encode(self) -> String {
        match self {
            Change::Tenant(id) => format!("tenant:{id}"),
            Change::ApiKey(id) => format!("key:{id}"),
        }
    }

    fn decode(message: &str) -> Option<Self> {
        let (kind, id) = message.split_once(':')?;
        let id = Uuid::parse_str(id).ok()?;
        match kind {
            "tenant" => Some(Change::Tenant(id)),
            "key" => Some(Change::ApiKey(id)),
            _ => None,
        }
    }
}

fn channel(app: &App) -> String {
    app.redis_key("auth-invalidate")
}

fn apply(app: &App, change: Change) {
    match change {
        Change::Tenant(id) => app.auth.invalidate_tenant(id),
        Change::ApiKey(id) => app.auth.invalidate_key(id),
    }
}

/// Drops the cached entries here and tells the other replicas.
pub async fn invalidate(app: &App, change: Change) {
    apply(app, change);
    let published = async {
        let mut conn = app.redis.clone();
        redis::cmd("PUBLISH")
            .arg(channel(app))
            .arg(change.encode())
            .query_async::<i64>(&mut conn)
            .await?;
        anyhow::Ok(())
    };
    if let Err(e) = published.await {
        metrics::counter!("tenantry_redis_errors_total", "op" => "invalidate").increment(1);
        tracing::warn!(
            error = %format!("{e:#}"),
            "could not publish a cache invalidation; other replicas catch up within 30 s"
        );
    }
}

/// Listens for other replicas' changes until the process ends, reconnecting after a
/// Redis outage.
pub fn spawn_listener(app: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = listen(&app).await {
                tracing::warn!(error = %format!("{e:#}"), "cache invalidation listener lost Redis");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

async fn listen(app: &App) -> anyhow::Result<()> {
    let client = redis::Client::open(app.config.redis_url.as_str())?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel(app)).await?;
    tracing::debug!("listening for cache invalidations");
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let payload: String = message.get_payload()?;
        if let Some(change) = Change::decode(&payload) {
            apply(app, change);
        }
    }
    anyhow::bail!("the subscription ended")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_through_their_message() {
        let id = Uuid::now_v7();
        for change in [Change::Tenant(id), Change::ApiKey(id)] {
            assert_eq!(Change::decode(&change.encode()), Some(change));
        }
        assert_eq!(Change::decode("tenant:nope"), None);
        assert_eq!(
            Change::decode("other:0192f0c4-6d2a-7c3e-9f10-aabbccddeeff"),
            None
        );
    }
}
