//! Per-replica caches in front of the lookups every authenticated request makes.
//!
//! A tenant's row (its status, and its `auth_epoch`) lives at most 30 s (a random 15–30 s
//! each, [`crate::cache::jittered`]), which bounds how long another replica can act on a
//! change it missed. A user's or an API key's roles and permissions are kept longer, but
//! only while the tenant's row shows the epoch they were loaded at: every change to users,
//! roles, role assignments, sessions or keys bumps it in its own transaction
//! ([`super::invalidation::Invalidations::commit`]), so the same 30 s bound holds without
//! re-reading every user and key from the tenant's schema every 30 s — over thousands of tenants, most
//! requests would otherwise pay that query.
//! The replica that makes a change invalidates at once and tells the others
//! (`auth::invalidation`). Loads go through [`TtlCache::insert_loaded`], so a value read
//! before an invalidation is never stored after it. Cached values share their roles and
//! permissions (`Arc`), so handing them to a request copies no strings.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::deny_list::DenyList;
use crate::{cache::TtlCache, rbac::PermissionSet, services::tenants::Tenant};

/// How long another replica may keep serving a revoked key, a changed user or a
/// suspended tenant. (Tenant status had 5 s once: over 2,000 busy tenants that reloaded a
/// tenant's row every few seconds, about one statement in ten, for a change that is
/// published to every replica anyway.)
const CACHE_TTL: Duration = Duration::from_secs(30);
/// How long a user's or a key's access is kept while its tenant's epoch stands still: a
/// bound on memory, not on staleness (the epoch bounds that).
const ACCESS_TTL: Duration = Duration::from_secs(600);
const CACHE_MAX: usize = 100_000;
/// Unknown (or revoked) API keys remembered, apart from the known ones, and for how long.
const UNKNOWN_KEYS_MAX: usize = 10_000;
const UNKNOWN_KEY_TTL: Duration = Duration::from_secs(60);
/// How long a client whose failed authentications were refused (429) gets no lookups
/// for keys no cache knows; then its next failure is charged (and refused) again.
pub const REFUSED_CLIENT_TTL: Duration = Duration::from_secs(10);
const REFUSED_CLIENTS_MAX: usize = 10_000;

/// An API key as authentication needs it.
#[derive(Debug, Clone)]
pub struct KeyAccess {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub permissions: Arc<PermissionSet>,
    pub roles: Arc<[String]>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The tenant's epoch when the key was loaded (read with it); the key stands while the
    /// tenant's row shows no later one.
    pub auth_epoch: i64,
}

/// An active user as authentication needs it.
#[derive(Debug, Clone)]
pub struct UserAccess {
    pub roles: Arc<[String]>,
    pub permissions: Arc<PermissionSet>,
    /// Access tokens issued before this are refused.
    pub tokens_valid_after: Option<DateTime<Utc>>,
}

/// A tenant as authentication keeps it: the row, and the epoch of its authentication
/// data when the row was read.
#[derive(Debug, Clone)]
pub struct TenantAccess {
    pub tenant: Arc<Tenant>,
    pub auth_epoch: i64,
}

/// A user's access (`None`: no such active user), and the tenant's epoch when it was
/// loaded; it stands while the tenant's epoch is the same.
#[derive(Debug, Clone)]
pub struct UserEntry {
    pub auth_epoch: i64,
    pub access: Option<UserAccess>,
}

/// An active platform operator.
#[derive(Debug, Clone)]
pub struct OperatorAccess {
    pub tokens_valid_after: Option<DateTime<Utc>>,
}

pub struct AuthCache {
    pub(super) tenants: TtlCache<Uuid, TenantAccess>,
    /// Known, live keys only: unknown ones go to `unknown_keys`, so a flood of invented
    /// keys cannot evict them.
    pub(super) keys: TtlCache<Vec<u8>, KeyAccess>,
    pub(super) unknown_keys: TtlCache<Vec<u8>, ()>,
    /// Client addresses whose failed authentications were just refused.
    refused_clients: TtlCache<IpAddr, ()>,
    pub(super) users: TtlCache<(Uuid, Uuid), UserEntry>,
    pub(super) operators: TtlCache<Uuid, Option<OperatorAccess>>,
    /// Logged-out access tokens. Filled by this replica's logouts, other replicas'
    /// (through the invalidation channel) and a load from Redis whenever the channel
    /// (re)connects.
    pub(super) denied: DenyList,
    key_uses: Mutex<HashMap<Uuid, DateTime<Utc>>>,
}

impl AuthCache {
    /// Caches for access tokens that live `access_ttl`, holding at most `deny_capacity`
    /// logged-out tokens in memory.
    pub fn new(access_ttl: Duration, deny_capacity: usize) -> Self {
        Self {
            tenants: TtlCache::new(CACHE_TTL, CACHE_MAX),
            keys: TtlCache::new(ACCESS_TTL, CACHE_MAX),
            unknown_keys: TtlCache::new(UNKNOWN_KEY_TTL, UNKNOWN_KEYS_MAX),
            refused_clients: TtlCache::new(REFUSED_CLIENT_TTL, REFUSED_CLIENTS_MAX),
            users: TtlCache::new(ACCESS_TTL, CACHE_MAX),
            operators: TtlCache::new(CACHE_TTL, 1_000),
            // A denied token needs remembering only while it could still verify.
            denied: DenyList::new(access_ttl + Duration::from_secs(60), deny_capacity),
            key_uses: Default::default(),
        }
    }

    /// Forgets everything cached about a tenant: its status, keys and users.
    pub fn invalidate_tenant(&self, tenant_id: Uuid) {
        self.tenants.remove(&tenant_id);
        self.keys.remove_where(|_, k| k.tenant_id == tenant_id);
        self.users.remove_where(|(t, _), _| *t == tenant_id);
    }

    /// Forgets one key at once (revocation, rotation).
    pub fn invalidate_key(&self, key_id: Uuid) {
        self.keys.remove_where(|_, k| k.id == key_id);
    }

    pub fn invalidate_operator(&self, admin_id: Uuid) {
        self.operators.remove(&admin_id);
    }

    /// Remembers that `ip`'s failed authentications are being refused.
    pub fn refuse_client(&self, ip: IpAddr) {
        self.refused_clients.insert(ip, ());
    }

    pub fn is_refused_client(&self, ip: IpAddr) -> bool {
        self.refused_clients.get(&ip).is_some()
    }

    /// Logged-out tokens held in memory now.
    pub fn denied_in_memory(&self) -> usize {
        self.denied.len()
    }

    pub fn deny_locally(&self, jti: Uuid) {
        self.denied.insert(jti);
    }

    pub(super) fn record_key_use(&self, key_id: Uuid) {
        self.key_uses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key_id, Utc::now());
    }

    pub(super) fn take_key_uses(&self) -> Vec<(Uuid, DateTime<Utc>)> {
        let mut uses = self.key_uses.lock().unwrap_or_else(|e| e.into_inner());
        uses.drain().collect()
    }
}
