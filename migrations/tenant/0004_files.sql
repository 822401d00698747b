-- Stored files. The object lives in the storage backend under `object_key`
-- (`tenants/<tenant id>/<file id>`); `name` is the user's file name, metadata only.
-- `pending` rows are presigned uploads not completed yet (`size` is then the declared
-- size and `checksum_sha256` null); `available` rows can be downloaded.
create table files (
    id              uuid primary key,
    object_key      text not null unique,
    name            text not null,
    content_type    text not null,
    size            bigint not null check (size >= 0),
    checksum_sha256 text,
    uploaded_by     uuid,
    status          text not null default 'available' check (status in ('pending', 'available')),
    created_at      timestamptz not null default now()
);
create index files_pending_idx on files (created_at) where status = 'pending';
