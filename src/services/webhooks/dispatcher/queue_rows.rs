//! The dispatcher's statements on `platform.webhook_queue`: claim due rows, end an
//! attempt's claim (fence), hand a row back (release).

use std::time::Duration;

use uuid::Uuid;

use super::{Claimed, LEASE, PER_ENDPOINT};

/// Claims up to `limit` due rows (at most [`PER_ENDPOINT`] per endpoint, none of the
/// endpoints this process already keeps busy), across every tenant, in one statement.
pub(super) async fn claim(
    db: &sqlx::PgPool,
    limit: usize,
    saturated: &[Uuid],
) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as(
        "with due as (
            select tenant_id, message_id, endpoint_id from (
                select tenant_id, message_id, endpoint_id, next_attempt_at,
                    row_number() over (partition by endpoint_id order by next_attempt_at) as n
                -- a deleted tenant's rows wait for its purge, which removes them
                from (select q.* from platform.webhook_queue q
                      join platform.tenants t on t.id = q.tenant_id and t.status <> 'deleted'
                      where q.next_attempt_at <= now() and q.endpoint_id <> all($2)
                      order by q.next_attempt_at limit 1000) candidates) ranked
            where n <= $3 order by next_attempt_at limit $1),
         locked as (
            select q.tenant_id, q.message_id, q.endpoint_id from platform.webhook_queue q
            join due using (tenant_id, message_id, endpoint_id)
            where q.next_attempt_at <= now()
            for update of q skip locked)
         update platform.webhook_queue q
            set next_attempt_at = now() + $4 * interval '1 millisecond', lease = gen_random_uuid()
         from locked
         where (q.tenant_id, q.message_id, q.endpoint_id)
             = (locked.tenant_id, locked.message_id, locked.endpoint_id)
         returning q.tenant_id, q.message_id, q.endpoint_id, q.attempts, q.manual, q.lease",
    )
    .bind(i64::try_from(limit).unwrap_or(64))
    .bind(saturated)
    .bind(i64::try_from(PER_ENDPOINT).unwrap_or(8))
    .bind(i64::try_from(LEASE.as_millis()).unwrap_or(60_000))
    .fetch_all(db)
    .await
}

/// Ends this attempt's claim in the queue: the row waits for its next attempt, or is
/// removed when there is none. `false` when the claim is no longer ours.
pub(super) async fn fence(
    conn: &mut sqlx::PgConnection,
    row: &Claimed,
    next: Option<Duration>,
) -> sqlx::Result<bool> {
    let done = match next {
        Some(delay) => {
            sqlx::query(
                "update platform.webhook_queue set attempts = $5, lease = null,
                    next_attempt_at = now() + $6 * interval '1 millisecond'
                 where tenant_id = $1 and message_id = $2 and endpoint_id = $3 and lease = $4",
            )
            .bind(row.tenant_id)
            .bind(row.message_id)
            .bind(row.endpoint_id)
            .bind(row.lease)
            .bind(row.attempts + 1)
            .bind(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
            .execute(conn)
            .await?
        }
        None => {
            sqlx::query(
                "delete from platform.webhook_queue
                 where tenant_id = $1 and message_id = $2 and endpoint_id = $3 and lease = $4",
            )
            .bind(row.tenant_id)
            .bind(row.message_id)
            .bind(row.endpoint_id)
            .bind(row.lease)
            .execute(conn)
            .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

/// Hands a claimed row back, due at once.
pub(super) async fn release(db: &sqlx::PgPool, row: &Claimed) -> sqlx::Result<()> {
    sqlx::query(
        "update platform.webhook_queue set next_attempt_at = now(), lease = null
         where tenant_id = $1 and message_id = $2 and endpoint_id = $3 and lease = $4",
    )
    .bind(row.tenant_id)
    .bind(row.message_id)
    .bind(row.endpoint_id)
    .bind(row.lease)
    .execute(db)
    .await?;
    Ok(())
}
