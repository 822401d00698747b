-- Cross-tenant tables. No foreign key points into a tenant schema (Citus forbids it).
create schema if not exists platform;

create table platform.tenants (
    id          uuid primary key,
    name        text not null,
    slug        text not null unique,
    plan        text not null default 'free' check (plan in ('free', 'standard', 'premium')),
    status      text not null default 'provisioning'
                check (status in ('provisioning', 'active', 'suspended', 'deleted')),
    settings    jsonb not null default '{}'::jsonb,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    deleted_at  timestamptz
);
create index tenants_status_idx on platform.tenants (status);

create table platform.platform_admins (
    id            uuid primary key,
    email         text not null,
    password_hash text not null,
    created_at    timestamptz not null default now()
);
create unique index platform_admins_email_idx on platform.platform_admins (lower(email));

create table platform.api_keys (
    id           uuid primary key,
    tenant_id    uuid not null references platform.tenants (id) on delete cascade,
    name         text not null,
    prefix       text not null,
    key_hash     bytea not null unique,
    role         text,
    scopes       text[],
    created_by   uuid,
    created_at   timestamptz not null default now(),
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);
create index api_keys_tenant_idx on platform.api_keys (tenant_id, created_at desc);

create table platform.rate_limit_overrides (
    tenant_id           uuid primary key references platform.tenants (id) on delete cascade,
    requests_per_minute integer not null check (requests_per_minute > 0),
    burst               integer not null check (burst > 0),
    updated_at          timestamptz not null default now()
);

create table platform.usage_rollups (
    tenant_id    uuid not null,
    metric       text not null,
    bucket_start timestamptz not null,
    value        bigint not null default 0,
    primary key (tenant_id, metric, bucket_start)
);

create table platform.scaling_policies (
    tenant_id                  uuid primary key references platform.tenants (id) on delete cascade,
    min_capacity               integer not null,
    max_capacity               integer not null,
    target_rps_per_unit        double precision not null,
    tolerance                  double precision not null default 0.1,
    scale_up_cooldown_s        integer not null default 60,
    scale_down_stabilization_s integer not null default 300,
    current_capacity           integer not null,
    updated_at                 timestamptz not null default now(),
    check (min_capacity >= 0 and min_capacity <= max_capacity)
);

create table platform.scaling_events (
    id            uuid primary key,
    tenant_id     uuid not null,
    action        text not null check (action in ('scale_up', 'scale_down')),
    from_capacity integer not null,
    to_capacity   integer not null,
    reason        text not null,
    metrics       jsonb not null default '{}'::jsonb,
    created_at    timestamptz not null default now()
);
create index scaling_events_tenant_idx on platform.scaling_events (tenant_id, created_at desc);

-- The ledger of tenant schema migrations: one row per tenant and applied version.
create table platform.tenant_migrations (
    tenant_id  uuid not null,
    version    bigint not null,
    applied_at timestamptz not null default now(),
    primary key (tenant_id, version)
);

create table platform.idempotency_keys (
    scope        text not null,
    key          text not null,
    request_hash bytea not null,
    response     jsonb,
    created_at   timestamptz not null default now(),
    primary key (scope, key)
);
