-- The unfinished jobs of every tenant, as one index the job reconciler reads with one
-- statement whatever the number of tenants. A row is written with its job and deleted
-- when the job ends; `watch_from` is when the reconciler looks at the job next, less
-- `JOB_REQUEUE_AFTER_MS` (for a queued job it is the job's own `enqueued_at`). The job
-- row stays the record of truth: a watch row whose job ended, or that was left behind,
-- is dropped the first time the reconciler looks at it. No foreign key reaches a tenant
-- schema (Citus forbids them).
create table platform.job_watch (
    tenant_id  uuid not null,
    job_id     uuid not null,
    watch_from timestamptz not null,
    primary key (tenant_id, job_id)
);
create index job_watch_due_idx on platform.job_watch (watch_from);

-- The unfinished jobs written before this index existed.
do $$
declare
    s record;
begin
    for s in
        select n.nspname
        from pg_namespace n
        join pg_class c on c.relnamespace = n.oid and c.relname = 'jobs' and c.relkind in ('r', 'p')
        where n.nspname ~ '^t_[0-9a-f]{32}$'
    loop
        execute format(
            'insert into platform.job_watch (tenant_id, job_id, watch_from)
             select %L::uuid, id, enqueued_at from %I.jobs where status in (''queued'', ''running'')
             on conflict do nothing',
            substr(s.nspname, 3), s.nspname);
    end loop;
end
$$;
