-- Stored files (the table itself came with 0001). The object lives in the storage
-- backend under `object_key` (`tenants/<tenant id>/<file id>`); `name` is the user's file
-- name, metadata only. `pending` rows are presigned uploads not completed yet (`size` is
-- then the declared size and `checksum_sha256` null); `available` rows can be downloaded.
-- One constraint per statement: Citus refuses ADD CONSTRAINT beside other subcommands.
alter table files add constraint files_size_check check (size >= 0);
alter table files add constraint files_status_check check (status in ('pending', 'available'));
-- The files.cleanup job looks for pending uploads by age.
create index files_pending_idx on files (created_at) where status = 'pending';
