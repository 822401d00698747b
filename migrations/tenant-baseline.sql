-- A new tenant's tables: the schema as tenant migrations 0001 to 0007 leave it, created
-- in one pass (BASELINE_VERSION in src/db/migrate.rs). Their ALTER TABLE ... ADD COLUMN
-- ... DEFAULT statements each scanned the whole of pg_class (60 ms at 6,000 tenants), so
-- onboarding slowed as tenants accumulated; existing tenants still get the migrations
-- themselves. Applied with a transaction-local search_path naming the tenant schema.
-- tests/api/migrate.rs checks that both ways give the same schema.
create table users (
    id             uuid primary key,
    email          text not null,
    password_hash  text not null,
    first_name     text,
    last_name      text,
    email_verified boolean not null default false,
    is_active      boolean not null default true,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    tokens_valid_after timestamptz,
    self_registered boolean not null default false
);
create unique index users_email_idx on users (lower(email));

create table roles (
    id          uuid primary key,
    name        text not null unique,
    description text,
    is_system   boolean not null default false,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);

create table role_permissions (
    role_id    uuid not null references roles (id) on delete cascade,
    permission text not null,
    primary key (role_id, permission)
);

create table user_roles (
    user_id uuid not null references users (id) on delete cascade,
    role_id uuid not null references roles (id) on delete cascade,
    primary key (user_id, role_id)
);

create table refresh_tokens (
    id         uuid primary key,
    user_id    uuid not null references users (id) on delete cascade,
    family_id  uuid not null,
    token_hash bytea not null unique,
    expires_at timestamptz not null,
    rotated_at timestamptz,
    revoked_at timestamptz,
    created_at timestamptz not null default now()
);
create index refresh_tokens_family_idx on refresh_tokens (family_id);

create table one_time_tokens (
    id         uuid primary key,
    user_id    uuid not null references users (id) on delete cascade,
    purpose    text not null check (purpose in ('password_reset', 'email_verification')),
    token_hash bytea not null unique,
    expires_at timestamptz not null,
    used_at    timestamptz
);

create table resources (
    id         uuid primary key,
    name       text not null,
    data       jsonb not null default '{}'::jsonb,
    owner_id   uuid,
    version    integer not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table jobs (
    id           uuid primary key,
    type         text not null,
    payload      jsonb not null default '{}'::jsonb,
    status       text not null default 'queued'
                 check (status in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts     integer not null default 0,
    max_attempts integer not null default 3,
    result       jsonb,
    error        text,
    created_by   uuid,
    created_at   timestamptz not null default now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    lease_until         timestamptz,
    run_after           timestamptz,
    enqueued_at         timestamptz not null default now(),
    cancel_requested_at timestamptz
);
create index jobs_status_idx on jobs (status, id desc);
create index jobs_type_idx on jobs (type, id desc);
create index jobs_unfinished_idx on jobs (status, enqueued_at) where status in ('queued', 'running');

create table files (
    id              uuid primary key,
    object_key      text not null unique,
    name            text not null,
    content_type    text not null,
    size            bigint not null,
    checksum_sha256 text,
    uploaded_by     uuid,
    status          text not null default 'pending',
    created_at      timestamptz not null default now(),
    constraint files_size_check check (size >= 0),
    constraint files_status_check check (status in ('pending', 'available'))
);
create index files_pending_idx on files (created_at) where status = 'pending';

create table notification_templates (
    id         uuid primary key,
    name       text not null unique,
    channel    text not null check (channel in ('email', 'sms', 'push')),
    subject    text,
    body       text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table notification_logs (
    id                  uuid primary key,
    channel             text not null check (channel in ('email', 'sms', 'push')),
    recipient           text not null,
    template_name       text,
    status              text not null default 'queued' check (status in ('queued', 'sent', 'failed')),
    provider_message_id text,
    error               text,
    created_by          uuid,
    created_at          timestamptz not null default now(),
    sent_at             timestamptz
);
create index notification_logs_status_idx on notification_logs (channel, status, id desc);
create index notification_logs_status_only_idx on notification_logs (status, id desc);

create table audit_logs (
    id          uuid primary key,
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
create index audit_logs_action_idx on audit_logs (action, id desc);

-- As 0006_identity.sql:
-- Sessions (one row per refresh-token family), TOTP second factors and invitations.

-- A session is a refresh-token family: when and from where it was used, and how its
-- user authenticated (`amr` of its access tokens, kept across refreshes).
create table user_sessions (
    id           uuid primary key,
    user_id      uuid not null references users (id) on delete cascade,
    amr          text[] not null default '{pwd}',
    ip           text,
    user_agent   text,
    created_at   timestamptz not null default now(),
    last_used_at timestamptz not null default now()
);
create index user_sessions_user_idx on user_sessions (user_id, id desc);

-- A user's TOTP secret, sealed with MFA_ENCRYPTION_KEY (AES-256-GCM); pending until
-- confirmed with a code. `last_used_step` refuses a code's second use.
create table user_mfa (
    user_id        uuid primary key references users (id) on delete cascade,
    secret_sealed  bytea not null,
    confirmed_at   timestamptz,
    last_used_step bigint,
    created_at     timestamptz not null default now()
);

create table mfa_recovery_codes (
    id        uuid primary key,
    user_id   uuid not null references users (id) on delete cascade,
    code_hash bytea not null,
    used_at   timestamptz
);
create index mfa_recovery_codes_user_idx on mfa_recovery_codes (user_id);

-- The second step of a login: a short-lived token good only for /auth/mfa/verify.
create table mfa_challenges (
    id         uuid primary key,
    user_id    uuid not null references users (id) on delete cascade,
    token_hash bytea not null unique,
    expires_at timestamptz not null,
    used_at    timestamptz
);

-- Wrong codes, counted per user over 15 minutes.
create table mfa_failures (
    user_id uuid not null references users (id) on delete cascade,
    at      timestamptz not null default now()
);
create index mfa_failures_user_idx on mfa_failures (user_id, at);

create table invitations (
    id               uuid primary key,
    email            text not null,
    role_ids         uuid[] not null,
    token_hash       bytea not null unique,
    invited_by       uuid,
    expires_at       timestamptz not null,
    accepted_at      timestamptz,
    accepted_user_id uuid references users (id) on delete set null,
    revoked_at       timestamptz,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now()
);
create index invitations_email_idx on invitations (lower(email));

-- Mail the platform sends by itself is limited per recipient and hour.
create index notification_logs_recipient_idx on notification_logs (recipient, created_at)
    where template_name is not null;

-- As 0007_webhooks.sql:
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
