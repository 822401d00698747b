-- Platform operators' own events (every operator login, failed or not) have no tenant:
-- they go to platform.audit_logs with tenant_id null.
alter table platform.audit_logs alter column tenant_id drop not null;
