-- Job execution bookkeeping. `lease_until` fences a running job to the worker that
-- claimed it (a dead worker's job is reclaimed once its lease runs out);
-- `enqueued_at` tells the reconciler when the row was last handed to Redis;
-- `run_after` is when a retried job is due; `cancel_requested_at` asks a running job
-- to stop at its next check.
alter table jobs
    add column lease_until         timestamptz,
    add column run_after           timestamptz,
    add column enqueued_at         timestamptz not null default now(),
    add column cancel_requested_at timestamptz;
create index jobs_type_idx on jobs (type, id desc);
create index jobs_unfinished_idx on jobs (status, enqueued_at) where status in ('queued', 'running');
