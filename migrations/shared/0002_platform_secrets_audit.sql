-- Secrets the replicas must agree on and that no configuration supplies (outside
-- production: the development JWT signing key). Inserted if absent, then read back, so
-- replicas racing at start all end up with the first one's value.
create table platform.secrets (
    name       text primary key,
    value      text not null,
    created_at timestamptz not null default now()
);

-- Events about a tenant that must outlive its schema (tenant.deleted): the tenant's own
-- audit_logs table is dropped by the purge. Same columns as a tenant's audit_logs, plus
-- the tenant. No foreign key to platform.tenants, so the entry survives anything done to
-- the tenant row.
create table platform.audit_logs (
    id          uuid primary key,
    tenant_id   uuid not null,
    actor_type  text not null check (actor_type in ('user', 'api_key', 'platform')),
    actor_id    uuid,
    action      text not null,
    target_type text,
    target_id   text,
    ip          text,
    user_agent  text,
    metadata    jsonb not null default '{}'::jsonb,
    created_at  timestamptz not null default now()
);
create index audit_logs_tenant_idx on platform.audit_logs (tenant_id, id desc);

-- Idempotency records expire after 24 h (old ones are purged by age) and are removed
-- with the tenant they created.
alter table platform.idempotency_keys add column tenant_id uuid;
create index idempotency_keys_tenant_idx on platform.idempotency_keys (tenant_id);
create index idempotency_keys_created_idx on platform.idempotency_keys (created_at);
