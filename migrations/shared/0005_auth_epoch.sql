-- A counter of the changes to a tenant's users, roles and role assignments, bumped in the
-- transaction of each change. A replica keeps a user's cached roles and permissions while
-- the tenant's row, which it re-reads at least every 30 s, still shows the counter they
-- were loaded at: the 30 s bound on a missed invalidation holds without re-reading every
-- user's permissions from the tenant's schema.
alter table platform.tenants add column auth_epoch bigint not null default 0;
