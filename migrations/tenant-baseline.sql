-- A new tenant's tables: the schema as tenant migrations 0001 to 0005 leave it, created
-- in one pass (BASELINE_VERSION in src/db/migrate.rs, which appends 0006 and 0007 to this
-- script as they are: they only create). The ALTER TABLE ... ADD COLUMN
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
