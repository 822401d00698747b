-- Outbound webhooks. Endpoints hold their signing secret (needed to sign, so not
-- hashable) and, for 24 h after a rotation, the previous one. A message is the event as
-- delivered (`{type, timestamp, data}`), written in the transaction of the change; a
-- delivery is its state towards one endpoint; an attempt is one POST. What is due next
-- is indexed in platform.webhook_queue.
create table webhook_endpoints (
    id                         uuid primary key,
    url                        text not null,
    description                text,
    event_types                text[] not null,
    enabled                    boolean not null default true,
    secret                     text not null,
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    disabled_reason            text,
    -- when the current run of failed attempts began (null while deliveries succeed)
    failing_since              timestamptz,
    created_at                 timestamptz not null default now(),
    updated_at                 timestamptz not null default now()
);

create table webhook_messages (
    id         uuid primary key,
    event_type text not null,
    data       jsonb not null,
    created_at timestamptz not null default now()
);
create index webhook_messages_type_idx on webhook_messages (event_type, id desc);

create table webhook_deliveries (
    message_id      uuid not null references webhook_messages (id) on delete cascade,
    endpoint_id     uuid not null,
    status          text not null default 'pending',
    attempts        integer not null default 0,
    next_attempt_at timestamptz,
    updated_at      timestamptz not null default now(),
    primary key (message_id, endpoint_id)
);
alter table webhook_deliveries add constraint webhook_deliveries_status_check
    check (status in ('pending', 'succeeded', 'failed'));
create index webhook_deliveries_endpoint_idx on webhook_deliveries (endpoint_id, message_id desc);
create index webhook_deliveries_status_idx on webhook_deliveries (status, message_id desc);

create table webhook_attempts (
    id            uuid primary key,
    message_id    uuid not null references webhook_messages (id) on delete cascade,
    endpoint_id   uuid not null,
    attempt       integer not null,
    trigger       text not null,
    status_code   integer,
    duration_ms   integer not null,
    response_body text,
    error         text,
    created_at    timestamptz not null default now()
);
create index webhook_attempts_message_idx on webhook_attempts (message_id, id);

-- The new permissions for the system roles of existing tenants (new tenants are seeded
-- from the catalog): manager manages webhooks, developer and viewer read them.
insert into role_permissions (role_id, permission)
    select id, 'webhooks:manage' from roles where is_system and name = 'manager'
    on conflict do nothing;
insert into role_permissions (role_id, permission)
    select id, 'webhooks:read' from roles where is_system and name in ('manager', 'developer', 'viewer')
    on conflict do nothing;
