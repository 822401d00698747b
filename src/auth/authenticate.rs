//! Authentication: a bearer JWT or an `X-API-Key` becomes a [`Principal`], with its
//! tenant checked (suspended or deleted → 403) and its permissions resolved.

use std::{net::IpAddr, sync::Arc};

use sqlx::PgPool;

use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    api_key,
    cache::{AuthCache, KeyAccess, OperatorAccess, TenantAccess, UserAccess, UserEntry},
    deny_list::Lookup,
    invalidation::Invalidations,
    jwt::{Claims, JwtKeys, TokenError},
    principal::{Actor, PresentedToken, Principal, TenantPrincipal},
    token_cache::TokenCache,
};
use crate::{
    background::Background,
    db::{TenantPools, TenantScope},
    error::{AppError, ErrorCode},
    rbac::PermissionSet,
    services::tenants,
};

/// What authenticating a request reads: the pools, the signing keys, this replica's caches
/// and the deny-list. `App` builds one.
pub struct Authenticator {
    pub pools: TenantPools,
    pub jwt: Arc<JwtKeys>,
    /// Verified access tokens, so a token's signature is checked about once a minute.
    pub tokens: TokenCache,
    pub cache: Arc<AuthCache>,
    /// Asked when the in-memory deny-list overflowed.
    pub invalidations: Invalidations,
}

/// Writes the API keys' `last_used_at` in one statement; runs every few seconds, so a
/// request never writes to the database to record its key's use.
pub async fn flush_key_uses(cache: &AuthCache, db: &PgPool) -> anyhow::Result<()> {
    let uses = cache.take_key_uses();
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
    .execute(db)
    .await?;
    Ok(())
}

/// How often API keys' `last_used_at` is written.
const KEY_USE_FLUSH: std::time::Duration = std::time::Duration::from_secs(10);

/// Writes API keys' use every [`KEY_USE_FLUSH`] and, once the process's work has
/// drained, what the last requests recorded.
pub fn start_key_use_flusher(cache: Arc<AuthCache>, db: PgPool, background: &Background) {
    background.spawn_flusher(move |drained| async move {
        loop {
            let last = tokio::select! {
                () = tokio::time::sleep(KEY_USE_FLUSH) => false,
                () = drained.cancelled() => true,
            };
            if let Err(e) = flush_key_uses(&cache, &db).await {
                tracing::warn!(error = %format!("{e:#}"), "could not record API key use");
            }
            if last {
                return;
            }
        }
    });
}

/// The credentials of a request, if it has any: `Ok(None)` when there are none.
/// `client` tells the request's client address, asked only before an API key lookup.
pub async fn authenticate(
    auth: &Authenticator,
    headers: &HeaderMap,
    client: impl FnOnce() -> Option<IpAddr>,
) -> Result<Option<Principal>, AppError> {
    if let Some(key) = headers.get("x-api-key") {
        let key = key.to_str().map_err(|_| bad_key())?;
        return with_api_key(auth, key, client).await.map(Some);
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
    with_bearer(auth, token).await.map(Some)
}

fn bad_key() -> AppError {
    AppError::unauthenticated("the API key is not valid")
}

async fn with_bearer(auth: &Authenticator, token: &str) -> Result<Principal, AppError> {
    let claims = auth
        .tokens
        .verify_cached(&auth.jwt, token)
        .map_err(|e| match e {
            TokenError::Expired => {
                AppError::new(ErrorCode::TokenExpired, "the access token has expired")
            }
            TokenError::Invalid => AppError::unauthenticated("the access token is not valid"),
        })?;
    if is_denied(auth, claims.jti).await? {
        return Err(AppError::unauthenticated("the access token was logged out"));
    }
    // An ended session (`DELETE /auth/sessions/{id}`) retires its family id the way a
    // logout retires a `jti`: every access token of the session is refused.
    if let Some(sid) = claims.sid
        && is_denied(auth, sid).await?
    {
        return Err(AppError::unauthenticated(
            "the session has ended; log in again",
        ));
    }
    if claims.scope.as_deref() == Some("platform") {
        let operator = operator_access(auth, claims.sub)
            .await?
            .ok_or_else(|| AppError::unauthenticated("the operator account is disabled"))?;
        if issued_before(&claims, operator.tokens_valid_after) {
            return Err(AppError::unauthenticated(
                "the session has ended; log in again",
            ));
        }
        return Ok(Principal::Platform {
            admin_id: claims.sub,
            token: PresentedToken::of(&claims),
        });
    }
    let tenant_id = claims
        .tid
        .ok_or_else(|| AppError::unauthenticated("the access token names no tenant"))?;
    let tenant = active_tenant(auth, tenant_id).await?;
    let scope = auth.pools.scope(tenant_id);
    let user = user_access(auth, &scope, tenant.auth_epoch, claims.sub)
        .await?
        .ok_or_else(|| AppError::unauthenticated("the account no longer exists or is disabled"))?;
    if issued_before(&claims, user.tokens_valid_after) {
        return Err(AppError::unauthenticated(
            "the session has ended; log in again",
        ));
    }
    Ok(Principal::Tenant(Box::new(TenantPrincipal {
        tenant: tenant.tenant,
        actor: Actor::User(claims.sub),
        roles: user.roles,
        permissions: user.permissions,
        scope,
        token: Some(PresentedToken::of(&claims)),
    })))
}

/// Whether the token was issued before `valid_after` (a password reset, deactivation,
/// refresh-token reuse or operator logout). The issue instant is read from the `jti`, a
/// UUIDv7 whose millisecond timestamp is set when the token is signed, so a token minted
/// in the same second as the reset but after it still counts; `iat` (whole seconds) is
/// the fallback.
fn issued_before(claims: &Claims, valid_after: Option<DateTime<Utc>>) -> bool {
    let Some(valid_after) = valid_after else {
        return false;
    };
    let issued_ms = claims
        .jti
        .get_timestamp()
        .map(|ts| {
            let (secs, nanos) = ts.to_unix();
            i64::try_from(secs).unwrap_or(i64::MAX) * 1000 + i64::from(nanos / 1_000_000)
        })
        .unwrap_or(claims.iat * 1000);
    issued_ms < valid_after.timestamp_millis()
}

/// Whether the token was logged out. The in-memory deny-list answers unless it
/// overflowed; then Redis does, and if Redis cannot, the token is refused (503) rather
/// than let through.
async fn is_denied(auth: &Authenticator, jti: Uuid) -> Result<bool, AppError> {
    match auth.cache.denied.lookup(&jti) {
        Lookup::Denied => Ok(true),
        Lookup::Allowed => Ok(false),
        Lookup::Unknown => auth
            .invalidations
            .is_denied_in_redis(jti)
            .await
            .map_err(|e| {
                tracing::warn!(error = %format!("{e:#}"), "deny-list lookup in Redis failed");
                AppError::new(
                    ErrorCode::ServiceUnavailable,
                    "the session store is unavailable; try again shortly",
                )
            }),
    }
}

async fn with_api_key(
    auth: &Authenticator,
    key: &str,
    client: impl FnOnce() -> Option<IpAddr>,
) -> Result<Principal, AppError> {
    // Format and checksum first: a made-up key costs no lookup.
    let hash = api_key::parse(key).ok_or_else(bad_key)?;
    let mut access = match auth.cache.keys.get(&hash) {
        Some(cached) => Some(cached),
        None if auth.cache.unknown_keys.get(&hash).is_some() => None,
        None => {
            // A client whose failed authentications were just refused (429) gets no
            // lookup for a key that no cache knows.
            if client().is_some_and(|ip| auth.cache.is_refused_client(ip)) {
                return Err(AppError::rate_limited(
                    "too many requests with credentials that are not valid from this address",
                    super::cache::REFUSED_CLIENT_TTL.as_secs(),
                ));
            }
            load_key_cached(auth, &hash).await?
        }
    }
    .ok_or_else(bad_key)?;
    let tenant = active_tenant(auth, access.tenant_id).await?;
    if access.auth_epoch < tenant.auth_epoch {
        // The tenant's users, roles or keys changed since the key was loaded.
        access = load_key_cached(auth, &hash).await?.ok_or_else(bad_key)?;
    }
    if access.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(AppError::unauthenticated("the API key has expired"));
    }
    let tenant = tenant.tenant;
    auth.cache.record_key_use(access.id);
    Ok(Principal::Tenant(Box::new(TenantPrincipal {
        scope: auth.pools.scope(tenant.id),
        tenant,
        actor: Actor::ApiKey(access.id),
        roles: access.roles,
        permissions: access.permissions,
        token: None,
    })))
}

/// [`load_key`], stored in the key cache unless an invalidation happened meanwhile. A
/// key that does not exist (or is revoked) goes to the small cache of unknown keys,
/// never to the cache of known ones: invented keys cannot push real keys out.
async fn load_key_cached(auth: &Authenticator, hash: &[u8]) -> Result<Option<KeyAccess>, AppError> {
    let seen = auth.cache.keys.generation();
    let loaded = load_key(auth, hash).await?;
    match &loaded {
        Some(access) => auth
            .cache
            .keys
            .insert_loaded(seen, hash.to_vec(), access.clone()),
        // An unknown key never becomes known (new keys are random), and a revoked
        // one stays revoked: no generation check needed.
        None => auth.cache.unknown_keys.insert(hash.to_vec(), ()),
    }
    Ok(loaded)
}

/// An `api_keys` row: id, tenant, role id, scopes, expiry, and the tenant's `auth_epoch`.
type KeyRow = (
    Uuid,
    Uuid,
    Option<Uuid>,
    Option<Vec<String>>,
    Option<DateTime<Utc>>,
    i64,
);

/// A live (not revoked) key and what it may do; `None` when there is no such key.
async fn load_key(auth: &Authenticator, hash: &[u8]) -> Result<Option<KeyAccess>, AppError> {
    // The key and its tenant's epoch in one snapshot: a revocation commits both together,
    // so the entry is never stored with an epoch newer than what it saw.
    let row: Option<KeyRow> = sqlx::query_as(
        "select k.id, k.tenant_id, k.role_id, k.scopes, k.expires_at, t.auth_epoch
         from platform.api_keys k join platform.tenants t on t.id = k.tenant_id
         where k.key_hash = $1 and k.revoked_at is null",
    )
    .bind(hash)
    .fetch_optional(auth.pools.platform())
    .await?;
    let Some((id, tenant_id, role_id, scopes, expires_at, auth_epoch)) = row else {
        return Ok(None);
    };
    // A suspended or deleted tenant answers before its schema (maybe being purged) is read.
    active_tenant(auth, tenant_id).await?;
    let (roles, permissions) = match role_id {
        Some(role_id) => {
            let scope = auth.pools.scope(tenant_id);
            // The role by id: a rename never changes the key; a deleted role (refused
            // while keys use it) would leave the key with nothing.
            match crate::services::roles::name_and_grants(&scope, role_id).await? {
                Some((name, grants)) => (vec![name], PermissionSet::from_stored(grants)),
                None => (Vec::new(), PermissionSet::default()),
            }
        }
        None => (
            Vec::new(),
            PermissionSet::from_stored(scopes.unwrap_or_default()),
        ),
    };
    Ok(Some(KeyAccess {
        id,
        tenant_id,
        permissions: Arc::new(permissions),
        roles: roles.into(),
        expires_at,
        auth_epoch,
    }))
}

/// The tenant, if it may act: suspended and deleted tenants answer 403.
async fn active_tenant(auth: &Authenticator, tenant_id: Uuid) -> Result<TenantAccess, AppError> {
    let access = match auth.cache.tenants.get(&tenant_id) {
        Some(access) => access,
        None => {
            let seen = auth.cache.tenants.generation();
            let (tenant, auth_epoch) =
                tenants::find_with_auth_epoch(auth.pools.platform(), tenant_id)
                    .await?
                    .ok_or_else(|| AppError::unauthenticated("the tenant does not exist"))?;
            let access = TenantAccess {
                tenant: Arc::new(tenant),
                auth_epoch,
            };
            auth.cache
                .tenants
                .insert_loaded(seen, tenant_id, access.clone());
            access
        }
    };
    if !access.tenant.is_active() {
        return Err(AppError::new(
            ErrorCode::TenantSuspended,
            format!("the tenant is {}", access.tenant.status),
        ));
    }
    Ok(access)
}

/// An active user's roles, permissions and session cut-off, in one round trip; cached
/// while the tenant's `auth_epoch` (as its cached row shows it) stays the same.
async fn user_access(
    auth: &Authenticator,
    scope: &TenantScope,
    auth_epoch: i64,
    user_id: Uuid,
) -> Result<Option<UserAccess>, AppError> {
    let key = (scope.tenant_id(), user_id);
    if let Some(cached) = auth.cache.users.get(&key)
        && cached.auth_epoch == auth_epoch
    {
        return Ok(cached.access);
    }
    let seen = auth.cache.users.generation();
    type Row = (bool, Option<DateTime<Utc>>, Vec<String>, Vec<String>);
    let row: Option<Row> = sqlx::query_as(scope.sql(
        "select u.is_active, u.tokens_valid_after,
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
    let access =
        row.filter(|(active, ..)| *active)
            .map(|(_, tokens_valid_after, roles, grants)| UserAccess {
                roles: roles.into(),
                permissions: Arc::new(PermissionSet::from_stored(grants)),
                tokens_valid_after,
            });
    // Stored under the epoch read before this load: a change committed since has a
    // higher one, so the entry cannot outlive the next read of the tenant's row.
    let entry = UserEntry {
        auth_epoch,
        access: access.clone(),
    };
    auth.cache.users.insert_loaded(seen, key, entry);
    Ok(access)
}

/// An active platform operator (cached like users).
async fn operator_access(
    auth: &Authenticator,
    admin_id: Uuid,
) -> Result<Option<OperatorAccess>, AppError> {
    if let Some(cached) = auth.cache.operators.get(&admin_id) {
        return Ok(cached);
    }
    let seen = auth.cache.operators.generation();
    let row: Option<(bool, Option<DateTime<Utc>>)> = sqlx::query_as(
        "select is_active, tokens_valid_after from platform.platform_admins where id = $1",
    )
    .bind(admin_id)
    .fetch_optional(auth.pools.platform())
    .await?;
    let access = row
        .filter(|(active, _)| *active)
        .map(|(_, tokens_valid_after)| OperatorAccess { tokens_valid_after });
    auth.cache
        .operators
        .insert_loaded(seen, admin_id, access.clone());
    Ok(access)
}
