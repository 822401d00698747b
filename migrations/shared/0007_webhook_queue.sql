-- Webhook deliveries that are due or will be: one row per (message, endpoint) until it
-- succeeds or gives up. The messages, endpoints and attempts live in each tenant's
-- schema; this index of what to send next is shared so that one statement finds due
-- work across every tenant, whatever their number. A claim moves `next_attempt_at` a
-- lease into the future and stamps `lease`: a dispatcher that dies mid-attempt leaves a
-- row that comes due again, and only the holder of the lease may finish it. No foreign
-- key reaches a tenant schema (Citus forbids them).
create table platform.webhook_queue (
    tenant_id       uuid not null,
    message_id      uuid not null,
    endpoint_id     uuid not null,
    -- attempts made so far (the next attempt's number minus one)
    attempts        integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    lease           uuid,
    -- a manual retry: one attempt, no schedule after it
    manual          boolean not null default false,
    created_at      timestamptz not null default now(),
    primary key (tenant_id, message_id, endpoint_id)
);
create index webhook_queue_due_idx on platform.webhook_queue (next_attempt_at);
