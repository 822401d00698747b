-- The history filtered by status alone (the channel filter uses
-- notification_logs_status_idx on (channel, status, id desc)).
create index notification_logs_status_only_idx on notification_logs (status, id desc);
