//! Keeping every replica's authentication state honest.
//!
//! A change to roles, assignments, users, keys or a tenant's status invalidates this
//! replica's caches at once and is published on a Redis channel; every replica listens
//! and drops the same entries. If Redis is unreachable, the tenant's row, re-read at least
//! every 30 s with the `auth_epoch` each such change bumps ([`Invalidations::commit`]), bounds how long
//! another replica can act on stale permissions.
//!
//! Logouts travel the same way, so checking an access token against the deny-list costs
//! no round trip: each replica holds the logged-out tokens in memory. They are also
//! stored in Redis (`<prefix>deny:<jti>`, expiring with the token), and a replica loads
//! them whenever its subscription (re)connects, so one that started late or lost Redis
//! for a while catches up.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use uuid::Uuid;

use super::cache::AuthCache;
use crate::{
    background::Background,
    config::RedisConfig,
    db::TenantTx,
    redis::Redis,
    services::rate_limit::{Override, Overrides},
};

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Anything about a tenant: status, roles, assignments, users.
    Tenant(Uuid),
    /// One API key (revoked, rotated).
    ApiKey(Uuid),
    /// An access token that was logged out.
    Logout(Uuid),
    /// A platform operator (logged out everywhere, disabled).
    Operator(Uuid),
}

impl Change {
    fn encode(self) -> String {
        match self {
            Change::Tenant(id) => format!("tenant:{id}"),
            Change::ApiKey(id) => format!("key:{id}"),
            Change::Logout(jti) => format!("deny:{jti}"),
            Change::Operator(id) => format!("operator:{id}"),
        }
    }

    fn decode(message: &str) -> Option<Self> {
        let (kind, id) = message.split_once(':')?;
        let id = Uuid::parse_str(id).ok()?;
        match kind {
            "tenant" => Some(Change::Tenant(id)),
            "key" => Some(Change::ApiKey(id)),
            "deny" => Some(Change::Logout(id)),
            "operator" => Some(Change::Operator(id)),
            _ => None,
        }
    }
}

/// Publishes authentication changes and applies them here: this replica's caches, the
/// deny-list in Redis, and the channel every replica listens on. `App` builds one; the
/// services that change what authenticates take it.
#[derive(Clone)]
pub struct Invalidations {
    redis: Redis,
    /// For the subscription, which needs a connection of its own.
    redis_url: String,
    channel: String,
    /// The Redis keys that mark logged-out access tokens: this prefix and the `jti`.
    deny_prefix: String,
    cache: Arc<AuthCache>,
    /// A tenant's change may be its rate-limit override's.
    overrides: Arc<Overrides>,
}

impl Invalidations {
    pub fn new(
        redis: Redis,
        config: &RedisConfig,
        cache: Arc<AuthCache>,
        overrides: Arc<Overrides>,
    ) -> Self {
        Self {
            redis,
            redis_url: config.url.clone(),
            channel: format!("{}auth-invalidate", config.key_prefix),
            deny_prefix: format!("{}deny:", config.key_prefix),
            cache,
            overrides,
        }
    }

    fn apply(&self, change: Change) {
        match change {
            Change::Tenant(id) => {
                self.cache.invalidate_tenant(id);
                // Its rate-limit override may have changed too.
                self.overrides.changed();
            }
            Change::ApiKey(id) => self.cache.invalidate_key(id),
            Change::Logout(jti) => self.cache.deny_locally(jti),
            Change::Operator(id) => self.cache.invalidate_operator(id),
        }
    }

    /// Retires an access token everywhere until `exp`: here at once, in Redis for replicas
    /// that start later, and on the channel for the running ones.
    pub async fn deny_token(&self, jti: Uuid, exp: i64) {
        let ttl = (exp - chrono::Utc::now().timestamp()).max(1);
        let stored = async {
            let mut conn = self.redis.clone();
            redis::cmd("SET")
                .arg(format!("{}{jti}", self.deny_prefix))
                .arg(1)
                .arg("EX")
                .arg(ttl)
                .query_async::<()>(&mut conn)
                .await?;
            anyhow::Ok(())
        };
        if let Err(e) = stored.await {
            metrics::counter!("tenantry_redis_errors_total", "op" => "deny_list").increment(1);
            tracing::warn!(error = %format!("{e:#}"), "could not store a logout in Redis");
        }
        self.invalidate(Change::Logout(jti)).await;
    }

    /// Whether Redis holds a logout of `jti`; asked when this replica's in-memory set
    /// overflowed and may not hold it. Errors when Redis does not answer in time.
    pub async fn is_denied_in_redis(&self, jti: Uuid) -> anyhow::Result<bool> {
        let mut conn = self.redis.clone();
        let mut exists = redis::cmd("EXISTS");
        exists.arg(format!("{}{jti}", self.deny_prefix));
        let exists: i64 =
            tokio::time::timeout(crate::redis::TIMEOUT, exists.query_async(&mut conn)).await??;
        Ok(exists > 0)
    }

    /// Loads every logged-out token from Redis into this replica's deny-list.
    pub async fn load_deny_list(&self) -> anyhow::Result<usize> {
        let mut conn = self.redis.clone();
        let prefix = &self.deny_prefix;
        let pattern = format!("{prefix}*");
        let mut cursor: u64 = 0;
        let mut loaded = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            for key in keys {
                if let Some(jti) = key
                    .strip_prefix(prefix.as_str())
                    .and_then(|j| Uuid::parse_str(j).ok())
                {
                    self.cache.deny_locally(jti);
                    loaded += 1;
                }
            }
            if next == 0 {
                return Ok(loaded);
            }
            cursor = next;
        }
    }

    /// Commits `tx`, a change to what authenticates in its tenant (users, roles, role
    /// assignments, sessions, API keys), and invalidates `change` here and on the other
    /// replicas.
    ///
    /// The tenant's `auth_epoch` is bumped in the same transaction, so a replica that misses
    /// the message (Redis down, a crash between commit and publish) still drops what it
    /// cached of the tenant's users and keys when it next reads the tenant's row, within 30 s.
    pub async fn commit(&self, mut tx: TenantTx, change: Change) -> sqlx::Result<()> {
        sqlx::query("update platform.tenants set auth_epoch = auth_epoch + 1 where id = $1")
            .bind(tx.tenant_id())
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        self.invalidate(change).await;
        Ok(())
    }

    /// Drops the cached entries here and tells the other replicas.
    pub async fn invalidate(&self, change: Change) {
        self.apply(change);
        let published = async {
            let mut conn = self.redis.clone();
            redis::cmd("PUBLISH")
                .arg(&self.channel)
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

    /// A tenant's rate-limit override changed (`None`: removed): applied here at once,
    /// and the other replicas reload theirs.
    pub async fn override_changed(&self, tenant: Uuid, row: Option<&Override>) {
        self.overrides.apply(tenant, row);
        self.invalidate(Change::Tenant(tenant)).await;
    }

    /// Listens for other replicas' changes until shutdown, reconnecting after a Redis
    /// outage.
    pub fn start(&self, background: &Background) {
        let this = self.clone();
        background.spawn("invalidations", move |stop| async move {
            while !stop.is_cancelled() {
                tokio::select! {
                    result = this.listen() => if let Err(e) = result {
                        tracing::warn!(error = %format!("{e:#}"), "cache invalidation listener lost Redis");
                    },
                    () = stop.cancelled() => return,
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = stop.cancelled() => return,
                }
            }
        });
    }

    async fn listen(&self) -> anyhow::Result<()> {
        let client = redis::Client::open(self.redis_url.as_str())?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(&self.channel).await?;
        // Subscribed first, loaded second: a logout published in between is in the load or
        // in the stream, never in neither.
        let loaded = self.load_deny_list().await?;
        tracing::debug!(loaded, "listening for cache invalidations");
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let payload: String = message.get_payload()?;
            if let Some(change) = Change::decode(&payload) {
                self.apply(change);
            }
        }
        anyhow::bail!("the subscription ended")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_through_their_message() {
        let id = Uuid::now_v7();
        for change in [
            Change::Tenant(id),
            Change::ApiKey(id),
            Change::Logout(id),
            Change::Operator(id),
        ] {
            assert_eq!(Change::decode(&change.encode()), Some(change));
        }
        assert_eq!(Change::decode("tenant:nope"), None);
        assert_eq!(
            Change::decode("other:0192f0c4-6d2a-7c3e-9f10-aabbccddeeff"),
            None
        );
    }
}
