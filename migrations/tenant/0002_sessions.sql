-- Access tokens issued before this instant are refused (password reset, deactivation,
-- refresh-token reuse). Self-registered users must verify their email before login.
alter table users
    add column tokens_valid_after timestamptz,
    add column self_registered boolean not null default false;
