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
