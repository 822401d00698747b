-- Recording a webhook event, written once as two functions so that one statement can
-- record events for any number of tenants: the autoscaler's pass records the
-- `scaling.changed` events of every tenant whose capacity changed with one call per
-- pass, not one statement per tenant. Every other event is recorded through the same
-- function, one tenant at a time.
--
-- The tenant schema is derived here the way `TenantSchema` derives it (`t_` and the id
-- as 32 hex digits) and quoted with `%I`; nothing from a request becomes SQL text.

-- Puts deliveries of `p_message` to `p_endpoints` in the platform queue, due now, and
-- wakes the dispatchers on `p_channel` when the transaction commits (a NOTIFY is sent at
-- commit, and not at all on rollback).
create function platform.webhook_queue_deliveries(
    p_tenant uuid, p_message uuid, p_endpoints uuid[], p_manual boolean, p_channel text
) returns void language plpgsql as $$
begin
    insert into platform.webhook_queue (tenant_id, message_id, endpoint_id, manual)
    select p_tenant, p_message, unnest(p_endpoints), p_manual
    on conflict (tenant_id, message_id, endpoint_id) do update
        set next_attempt_at = now(), lease = null, manual = excluded.manual
        -- never under an attempt in flight: its record would be lost
        where webhook_queue.lease is null or webhook_queue.next_attempt_at <= now();
    if found then
        perform pg_notify(p_channel, '');
    end if;
end
$$;

-- Records event `p_event` with `p_data` in the tenant's schema: a message for the
-- endpoints subscribed to it (or only for `p_only`, the test event), their deliveries,
-- and their place in the platform queue. None subscribed: nothing is written. Returns
-- the endpoints the message goes to.
create function platform.webhook_emit(
    p_tenant uuid, p_message uuid, p_event text, p_data jsonb, p_only uuid, p_channel text
) returns uuid[] language plpgsql as $$
declare
    endpoints uuid[];
begin
    execute format(
        'with targets as (
            select id from %1$I.webhook_endpoints
            where enabled and ($4::uuid is null or id = $4)
              and ($4::uuid is not null or event_types && array[$2, ''*''])),
         message as (
            insert into %1$I.webhook_messages (id, event_type, data)
            select $1, $2, $3 where exists (select 1 from targets) returning id),
         deliveries as (
            insert into %1$I.webhook_deliveries (message_id, endpoint_id, next_attempt_at)
            select message.id, targets.id, now() from message, targets returning endpoint_id)
         select coalesce(array_agg(endpoint_id), ''{}'') from deliveries',
        't_' || replace(p_tenant::text, '-', ''))
    into endpoints
    using p_message, p_event, p_data, p_only;
    if cardinality(endpoints) > 0 then
        perform platform.webhook_queue_deliveries(p_tenant, p_message, endpoints, false, p_channel);
    end if;
    return endpoints;
end
$$;
