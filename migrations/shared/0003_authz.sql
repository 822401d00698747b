-- API keys reference their role by id: renaming a role never changes what a key may do,
-- and a role that keys use cannot be deleted. `role` stays as the role's name for
-- listings (kept in step on rename).
alter table platform.api_keys add column role_id uuid;

do $$
declare
    k record;
begin
    for k in select id, tenant_id, role from platform.api_keys where role is not null loop
        begin
            execute format('update platform.api_keys set role_id = (select id from %I.roles where name = $1) where id = $2',
                           't_' || replace(k.tenant_id::text, '-', ''))
                using k.role, k.id;
        exception when undefined_table or invalid_schema_name then
            null; -- a purged tenant: its keys go with it
        end;
    end loop;
end $$;

create index api_keys_role_idx on platform.api_keys (tenant_id, role_id) where revoked_at is null;

-- Platform operators: deactivation and session invalidation (logout of every token).
alter table platform.platform_admins
    add column is_active boolean not null default true,
    add column tokens_valid_after timestamptz;
