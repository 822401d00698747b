//! Authentication: a bearer JWT or an `X-API-Key` becomes a [`Principal`], with its
//! tenant checked (suspended or deleted → 403) and its permissions resolved.

use std::time::Duration;

use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    api_key,
    jwt::TokenError,
    principal::{Actor, PresentedToken, Principal, TenantPrincipal},
};
use crate::{
    app::App,
    cache::TtlCache,
    db::TenantScope,
    error::{AppError, ErrorCode},
    rbac::PermissionSet,
    services::tenants::{self, Tenant},
};

/// How long another replica may keep serving a revoked key or a changed tenant.
const CACHE_TTL: Duration = Duration::from_secs(30);
/// Tenant status (suspension) is cached more briefly.
const TENANT_TTL: Duration = Duration::from_secs(5);
const CACHE_MAX: usize = 100_000;
/// Logged-out tokens held per replica at most: far above the logouts of one token
/// lifetime, and bounded so memory is.
const DENIED_MAX: usize = 1_000_000;

/// An API key as authentication needs it.
#[derive(Debug, Clone)]
struct KeyAccess {
    id: Uuid,
    tenant_id: Uuid,
    permissions: PermissionSet,
    roles: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
}

/// A user as authentication needs it.
#[derive(Debug, Clone)]
struct UserAccess {
    roles: Vec<String>,
    permissions: PermissionSet,
}

/// Per-replica caches in front of the lookups every request makes, and the API-key
/// use times waiting to be written.
pub struct AuthCache {
    tenants: TtlCache<Uuid, Tenant>,
    keys: TtlCache<Vec<u8>, Option<KeyAccess>>,
    users: TtlCache<(Uuid, Uuid), Option<UserAccess>>,
    /// Logged-out access tokens, kept until they would have expired anyway. Filled by
    /// this replica's logouts, other replicas' (through the invalidation channel) and a
    /// load from Redis whenever the channel (re)connects.
    denied: TtlCache<Uuid, ()>,
    key_uses: std::sync::Mutex<std::collections::HashMap<Uuid, DateTime<Utc>>>,
}

impl AuthCache {
    /// Caches for access tokens that live `access_ttl`.
    pub fn new(access_ttl: Duration) -> Self {
        Self {
            tenants: TtlCache::new(TENANT_TTL, CACHE_MAX),
            keys: TtlCache::new(CACHE_TTL, CACHE_MAX),
            users: TtlCache::new(CACHE_TTL, CACHE_MAX),
            // A denied token needs remembering only while it could still verify.
            denied: TtlCache::new(access_ttl + Duration::from_secs(60), DENIED_MAX),
            key_uses: Default::default(),
        }
    }

    /// Forgets everything cached about a tenant: its status, keys and users' roles.
    /// Called on this replica by every change to them.
    pub fn invalidate_tenant(&self, tenant_id: Uuid) {
        self.tenants.remove(&tenant_id);
        self.keys
            .remove_where(|_, k| k.as_ref().is_some_and(|k| k.tenant_id == tenant_id));
        self.users.remove_where(|(t, _), _| *t == tenant_id);
    }

    /// Forgets one key at once (revocation, rotation).
    pub fn invalidate_key(&self, key_id: Uuid) {
        self.keys
            .remove_where(|_, k| k.as_ref().is_some_and(|k| k.id == key_id));
    }

    pub fn deny_locally(&self, jti: Uuid) {
        self.denied.insert(jti, ());
    }

    fn take_key_uses(&self) -> Vec<(Uuid, DateTime<Utc>)> {
        let mut uses = self.key_uses.lock().unwrap_or_else(|e| e.into_inner());
        uses.drain().collect()
    }
}

/// Writes the API keys' `last_used_at` in one statement; runs every few seconds, so a
/// request never writes to the database to record its key's use.
pub async fn flush_key_uses(app: &App) -> anyhow::Result<()> {
    let uses = app.auth.take_key_uses();
    if uses.is_empty() {
        return Ok(());
    }
    let (ids, times): (Vec<Uuid>, Vec<DateTime<Utc>>) = uses.into_iter().unzip();
    sqlx::query(
        "update platform.api_keys k set last_used_at = greatest(k.last_used_at, u.at)
         from unnest($1::uuid[], $2::timestamptz[]) as u(id, at) where k.id = u.id",
    )
    .bind(ids)
    .bind(times)
    .execute(&app.db)
    .await?;
    Ok(())
}

/// The credentials of a request, if it has any: `Ok(None)` when there are none.
pub async fn authenticate(app: &App, headers: &HeaderMap) -> Result<Option<Principal>, AppError> {
    if let Some(key) = headers.get("x-api-key") {
        let key = key.to_str().map_err(|_| bad_key())?;
        return with_api_key(app, key).await.map(Some);
    }
    let Some(authorization) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = authorization
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AppError::unauthenticated("expected 'Authorization: Bearer <token>'"))?;
    with_bearer(app, token).await.map(Some)
}

fn bad_key() -> AppError {
    AppError::unauthenticated("the API key is not valid")
}

async fn with_bearer(app: &App, token: &str) -> Result<Principal, AppError> {
    let claims = app
        .tokens
        .verify_cached(&app.jwt, token)
        .map_err(|e| match e {
            TokenError::Expired => {
                AppError::new(ErrorCode::TokenExpired, "the access token has expired")
            }
            TokenError::Invalid => AppError::unauthenticated("the access token is not valid"),
        })?;
    if app.auth.denied.get(&claims.jti).is_some() {
        return Err(AppError::unauthenticated("the access token was logged out"));
    }
    if claims.scope.as_deref() == Some("platform") {
        return Ok(Principal::Platform {
            admin_id: claims.sub,
        });
    }
    let tenant_id = claims
        .tid
        .ok_or_else(|| AppError::unauthenticated("the access token names no tenant"))?;
    let tenant = active_tenant(app, tenant_id).await?;
    let scope = TenantScope::new(app.db.clone(), tenant_id);
    let user = user_access(app, &scope, claims.sub)
        .await?
        .ok_or_else(|| AppError::unauthenticated("the account no longer exists or is disabled"))?;
    Ok(Principal::Tenant(Box::new(TenantPrincipal {
        tenant,
        actor: Actor::User(claims.sub),
        roles: user.roles,
        permissions: user.permissions,
        scope,
        token: Some(PresentedToken {
            jti: claims.jti,
            exp: claims.exp,
            session: claims.sid,
        }),
    })))
}

async fn with_api_key(app: &App, key: &str) -> Result<Principal, AppError> {
    // Format and checksum first: a made-up key costs no lookup.
    let hash = api_key::parse(key).ok_or_else(bad_key)?;
    let access = match app.auth.keys.get(&hash) {
        Some(cached) => cached,
        None => {
            let loaded = load_key(app, &hash).await?;
            app.auth.keys.insert(hash, loaded.clone());
            loaded
        }
    };
    let access = access.ok_or_else(bad_key)?;
    if access.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(AppError::unauthenticated("the API key has expired"));
    }
    let tenant = active_tenant(app, access.tenant_id).await?;
    app.auth
        .key_uses
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(access.id, Utc::now());
    Ok(Principal::Tenant(Box::new(TenantPrincipal {
        scope: TenantScope::new(app.db.clone(), tenant.id),
        tenant,
        actor: Actor::ApiKey(access.id),
        roles: access.roles,
        permissions: access.permissions,
        token: None,
    })))
}

/// An `api_keys` row: id, tenant, role, scopes, expiry.
type KeyRow = (
    Uuid,
    Uuid,
    Option<String>,
    Option<Vec<String>>,
    Option<DateTime<Utc>>,
);

/// A live (not revoked) key and what it may do; `None` when there is no such key.
async fn load_key(app: &App, hash: &[u8]) -> Result<Option<KeyAccess>, AppError> {
    let row: Option<KeyRow> = sqlx::query_as(
        "select id, tenant_id, role, scopes, expires_at from platform.api_keys
             where key_hash = $1 and revoked_at is null",
    )
    .bind(hash)
    .fetch_optional(&app.db)
    .await?;
    let Some((id, tenant_id, role, scopes, expires_at)) = row else {
        return Ok(None);
    };
    // A suspended or deleted tenant answers before its schema (maybe being purged) is read.
    active_tenant(app, tenant_id).await?;
    let (roles, permissions) = match role {
        Some(role) => {
            let scope = TenantScope::new(app.db.clone(), tenant_id);
            let grants = crate::services::roles::grants_of(&scope, &role)
                .await?
                .unwrap_or_default();
            (vec![role], PermissionSet::from_stored(grants))
        }
        None => (
            Vec::new(),
            PermissionSet::from_stored(scopes.unwrap_or_default()),
        ),
    };
    Ok(Some(KeyAccess {
        id,
        tenant_id,
        permissions,
        roles,
        expires_at,
    }))
}

/// The tenant, if it may act: suspended and deleted tenants answer 403.
async fn active_tenant(app: &App, tenant_id: Uuid) -> Result<Tenant, AppError> {
    let tenant = match app.auth.tenants.get(&tenant_id) {
        Some(tenant) => tenant,
        None => {
            let tenant = tenants::find(&app.db, tenant_id)
                .await?
                .ok_or_else(|| AppError::unauthenticated("the tenant does not exist"))?;
            app.auth.tenants.insert(tenant_id, tenant.clone());
            tenant
        }
    };
    if !tenant.is_active() {
        return Err(AppError::new(
            ErrorCode::TenantSuspended,
            format!("the tenant is {}", tenant.status),
        ));
    }
    Ok(tenant)
}

/// An active user's roles and permissions, in one round trip (cached).
async fn user_access(
    app: &App,
    scope: &TenantScope,
    user_id: Uuid,
) -> Result<Option<UserAccess>, AppError> {
    let key = (scope.tenant_id(), user_id);
    if let Some(cached) = app.auth.users.get(&key) {
        return Ok(cached);
    }
    let row: Option<(bool, Vec<String>, Vec<String>)> = sqlx::query_as(scope.sql(
        "select u.is_active,
            array(select r.name from {schema}.user_roles ur
                  join {schema}.roles r on r.id = ur.role_id
                  where ur.user_id = u.id order by r.name),
            array(select distinct rp.permission from {schema}.user_roles ur
                  join {schema}.role_permissions rp on rp.role_id = ur.role_id
                  where ur.user_id = u.id)
         from {schema}.users u where u.id = $1",
    ))
    .bind(user_id)
    .fetch_optional(scope.db())
    .await?;
    let access = row
        .filter(|(active, _, _)| *active)
        .map(|(_, roles, grants)| UserAccess {
            roles,
            permissions: PermissionSet::from_stored(grants),
        });
    app.auth.users.insert(key, access.clone());
    Ok(access)
}
