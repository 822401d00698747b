//! Citus (schema-based sharding): each tenant schema becomes a distributed schema placed
//! on one worker node; `platform` stays a regular schema on the coordinator. See
//! `docs/scaling.md` "Beyond one PostgreSQL server".

use sqlx::PgExecutor;

/// Whether the database has the `citus` extension (then this is a Citus coordinator).
pub async fn detect(db: impl PgExecutor<'_>) -> sqlx::Result<bool> {
    sqlx::query_scalar("select exists (select 1 from pg_extension where extname = 'citus')")
        .fetch_one(db)
        .await
}

/// Whether `schema` is a distributed schema.
pub async fn is_distributed(db: impl PgExecutor<'_>, schema: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from pg_dist_schema where schemaid::regnamespace::text = $1)",
    )
    .bind(schema)
    .fetch_one(db)
    .await
}

/// The distributed schemas, by name.
pub async fn distributed_schemas(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("select schemaid::regnamespace::text from pg_dist_schema")
        .fetch_all(db)
        .await
}
