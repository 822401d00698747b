-- What the autoscaling evaluator keeps between passes, beside each tenant's policy.
alter table platform.scaling_policies
    -- What the last measured load asked for (within bounds), before cooldown and
    -- stabilization; null until the first evaluation.
    add column desired_capacity  integer,
    add column last_evaluated_at timestamptz,
    -- The measurement behind the last decision: {rps, requests_previous_minute, ...}.
    add column last_metrics      jsonb,
    -- When capacity last went up (the cooldown runs from here).
    add column last_scale_up_at  timestamptz,
    -- Recommendations still inside the stabilization window that can be its highest:
    -- [{"t": epoch seconds, "desired": units}], times increasing, values decreasing.
    add column recommendations   jsonb not null default '[]'::jsonb;
