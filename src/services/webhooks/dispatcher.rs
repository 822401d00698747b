//! The dispatcher: the webhook delivery lane, apart from tenants' jobs.
//!
//! Every process that runs it claims due rows of `platform.webhook_queue` with one
//! statement per round (`for update skip locked`, so any number of dispatchers share
//! the queue without taking the same row), whatever the number of tenants. A claim moves
//! the row's `next_attempt_at` a lease ahead and stamps it: a dispatcher that dies
//! mid-attempt leaves a row that comes due again, and a late one cannot finish a row
//! another has claimed since. It wakes on a NOTIFY sent when an event's transaction
//! commits, and polls every second for scheduled retries.
//!
//! Bounds: at most [`GLOBAL_IN_FLIGHT`] attempts at once per process, at most
//! [`PER_ENDPOINT`] of them to one endpoint, each bounded by the client's 15 s: an
//! endpoint that hangs holds its own slots and no one else's.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use uuid::Uuid;

use super::{
    events::{self, EventType, WAKE_CHANNEL},
    http_client::{TIMEOUT, WebhookClient},
    target::TargetRules,
};
use crate::services::metering::{Meter, Metric};
use crate::{background::Background, config::Config, db::TenantPools};

mod queue_rows;

use queue_rows::{claim, fence, release};

/// Attempts in flight in one process.
pub const GLOBAL_IN_FLIGHT: usize = 128;
/// Attempts in flight to one endpoint from one process.
pub const PER_ENDPOINT: usize = 8;
/// How long a claim holds a row: the attempt's 15 s and room to record it.
const LEASE: Duration = Duration::from_secs(60);
/// The fallback when no NOTIFY arrives (and the clock of scheduled retries).
const POLL: Duration = Duration::from_secs(1);
/// Delays before attempts 2, 3, ... (attempt 1 is at once); jittered by ±10 %.
pub const SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
/// An endpoint whose attempts have all failed for this long is disabled.
const FAILING_LIMIT_SECONDS: i64 = 5 * 24 * 3600;

/// Starts the dispatcher on `background`.
pub fn start(pools: TenantPools, meter: Arc<Meter>, config: &Config, background: &Background) {
    let dispatcher = Dispatcher::new(pools, meter, config);
    background.spawn("webhooks", move |stop| async move {
        let dispatcher = Arc::new(dispatcher);
        dispatcher.run(stop).await;
    });
}

/// The delay before attempt `next` (2 for the first retry), with jitter; `None` once
/// the schedule is spent.
pub fn retry_delay(next: i32) -> Option<Duration> {
    let index = usize::try_from(next).ok()?.checked_sub(2)?;
    let base = *SCHEDULE.get(index)?;
    let jitter = 0.9 + fastrand::f64() * 0.2;
    Some(base.mul_f64(jitter))
}

struct Dispatcher {
    pools: TenantPools,
    meter: Arc<Meter>,
    /// The database the wake-up notifications are heard on.
    listen_url: String,
    client: WebhookClient,
    slots: Arc<Semaphore>,
    per_endpoint: Mutex<HashMap<Uuid, usize>>,
    wake: Notify,
    attempts: TaskTracker,
}

/// A claimed row of the queue.
#[derive(Debug, sqlx::FromRow)]
struct Claimed {
    tenant_id: Uuid,
    message_id: Uuid,
    endpoint_id: Uuid,
    attempts: i32,
    manual: bool,
    lease: Uuid,
}

impl Dispatcher {
    fn new(pools: TenantPools, meter: Arc<Meter>, config: &Config) -> Self {
        let rules = TargetRules {
            require_https: config.is_production(),
            allow_private: config.webhooks.allow_private_targets,
        };
        Self {
            client: WebhookClient::new(rules),
            pools,
            meter,
            listen_url: config.database.url.clone(),
            slots: Arc::new(Semaphore::new(GLOBAL_IN_FLIGHT)),
            per_endpoint: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            attempts: TaskTracker::new(),
        }
    }

    async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut listener = None;
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backlog_at = Instant::now();
        loop {
            if listener.is_none() {
                listener = self.listen().await;
            }
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "webhook dispatcher round failed");
            }
            if backlog_at.elapsed() >= Duration::from_secs(10) {
                backlog_at = Instant::now();
                self.export_backlog().await;
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.wake.notified() => {}
                _ = poll.tick() => {}
                received = recv(&mut listener) => {
                    if let Err(e) = received {
                        tracing::warn!(error = %e, "webhook wake-up channel lost; polling until it is back");
                        listener = None;
                    }
                }
            }
        }
        // Attempts in flight end within their 15 s and are recorded.
        self.attempts.close();
        self.attempts.wait().await;
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect(&self.listen_url)
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "cannot listen for webhook wake-ups"))
            .ok()?;
        listener.listen(WAKE_CHANNEL).await.ok()?;
        Some(listener)
    }

    /// Claims and starts what is due, as long as slots are free.
    async fn round(self: &Arc<Self>) -> sqlx::Result<()> {
        loop {
            let room = self.slots.available_permits().min(64);
            if room == 0 {
                return Ok(());
            }
            let saturated: Vec<Uuid> = {
                let busy = self.per_endpoint.lock().expect("not poisoned");
                busy.iter()
                    .filter(|(_, n)| **n >= PER_ENDPOINT)
                    .map(|(id, _)| *id)
                    .collect()
            };
            let claimed = claim(self.pools.platform(), room, &saturated).await?;
            let full = claimed.len() >= room;
            for row in claimed {
                if !self.take_endpoint_slot(row.endpoint_id) {
                    release(self.pools.platform(), &row).await?;
                    continue;
                }
                let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                    self.give_endpoint_slot(row.endpoint_id);
                    release(self.pools.platform(), &row).await?;
                    continue;
                };
                let this = Arc::clone(self);
                self.attempts.spawn(async move {
                    let endpoint = row.endpoint_id;
                    if let Err(e) = this.deliver(row).await {
                        tracing::warn!(error = %e, "webhook attempt could not be recorded; it is retried after its lease");
                    }
                    drop(permit);
                    this.give_endpoint_slot(endpoint);
                    // A freed slot may take a row left behind by a bound (global or this
                    // endpoint's): look again now. Wake-ups coalesce into one round.
                    this.wake.notify_one();
                });
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn take_endpoint_slot(&self, endpoint: Uuid) -> bool {
        let mut busy = self.per_endpoint.lock().expect("not poisoned");
        let n = busy.entry(endpoint).or_default();
        if *n >= PER_ENDPOINT {
            return false;
        }
        *n += 1;
        true
    }

    fn give_endpoint_slot(&self, endpoint: Uuid) {
        let mut busy = self.per_endpoint.lock().expect("not poisoned");
        if let Some(n) = busy.get_mut(&endpoint) {
            *n -= 1;
            if *n == 0 {
                busy.remove(&endpoint);
            }
        }
    }

    async fn export_backlog(&self) {
        let due: Result<i64, _> = sqlx::query_scalar(
            "select count(*) from platform.webhook_queue where next_attempt_at <= now()",
        )
        .fetch_one(self.pools.platform())
        .await;
        if let Ok(due) = due {
            metrics::gauge!("tenantry_webhook_backlog").set(due as f64);
        }
    }

    /// One attempt of a claimed row, and its record.
    async fn deliver(&self, row: Claimed) -> sqlx::Result<()> {
        let scope = self.pools.scope(row.tenant_id);
        let loaded: sqlx::Result<Option<Loaded>> = sqlx::query_as(scope.sql(
            "select m.event_type, m.data, m.created_at, e.url, e.secret, e.enabled,
                e.failing_since is not null as failing,
                case when e.previous_secret_expires_at > now() then e.previous_secret end
                    as previous_secret
             from {schema}.webhook_messages m, {schema}.webhook_endpoints e
             where m.id = $1 and e.id = $2",
        ))
        .bind(row.message_id)
        .bind(row.endpoint_id)
        .fetch_optional(scope.db())
        .await;
        let loaded = match loaded {
            Ok(Some(l)) if l.enabled => l,
            Ok(_) => return self.abandon(&row, true).await,
            // The tenant's schema is gone (purged): nothing left to deliver.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {
                return self.abandon(&row, false).await;
            }
            Err(e) => return Err(e),
        };
        let body = json!({
            "type": loaded.event_type,
            "timestamp": loaded.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "data": loaded.data,
        });
        let body =
            Bytes::from(serde_json::to_vec(&body).map_err(|e| sqlx::Error::Decode(Box::new(e)))?);
        let webhook_id = row.message_id.to_string();
        let timestamp = Utc::now().timestamp();
        let mut secrets = vec![loaded.secret.as_str()];
        if let Some(previous) = &loaded.previous_secret {
            secrets.push(previous);
        }
        let headers = [
            ("webhook-id", webhook_id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            (
                "webhook-signature",
                super::signing::header(&secrets, &webhook_id, timestamp, &body),
            ),
        ];
        let started = Instant::now();
        let answer = self.client.post(&loaded.url, &headers, body).await;
        let elapsed = started.elapsed().min(TIMEOUT + Duration::from_secs(1));
        metrics::histogram!("tenantry_webhook_attempt_duration_seconds")
            .record(elapsed.as_secs_f64());
        let outcome = Outcome::of(&answer);
        metrics::counter!("tenantry_webhook_attempts_total", "outcome" => outcome.label())
            .increment(1);
        let (status_code, response_body, error) = match &answer {
            Ok(a) => (
                Some(i32::from(a.status)),
                Some(a.body.clone()),
                (!(200..300).contains(&a.status)).then(|| format!("answered {}", a.status)),
            ),
            Err(e) => (None, None, Some(e.clone())),
        };
        let attempt = row.attempts + 1;
        let next = match outcome {
            Outcome::Success | Outcome::Gone => None,
            _ if row.manual => None,
            _ => retry_delay(attempt + 1),
        };
        let status = match (outcome, next) {
            (Outcome::Success, _) => "succeeded",
            (_, Some(_)) => "pending",
            (_, None) => "failed",
        };
        let mut tx = scope.begin().await?;
        // Fenced by the lease: a dispatcher whose claim expired and was taken by another
        // records nothing (the other one records its own attempt).
        let fenced = fence(tx.conn(), &row, next).await?;
        if !fenced {
            return Ok(());
        }
        let sql = tx.sql(
            "with attempt as (
                insert into {schema}.webhook_attempts
                    (id, message_id, endpoint_id, attempt, trigger, status_code, duration_ms,
                     response_body, error)
                values ($1, $2, $3, $4, $5, $6, $7, $8, $9))
             update {schema}.webhook_deliveries set status = $10, attempts = attempts + 1,
                next_attempt_at = now() + $11 * interval '1 millisecond', updated_at = now()
             where message_id = $2 and endpoint_id = $3",
        );
        sqlx::query(sql)
            .bind(Uuid::now_v7())
            .bind(row.message_id)
            .bind(row.endpoint_id)
            .bind(attempt)
            .bind(if row.manual { "manual" } else { "scheduled" })
            .bind(status_code)
            .bind(i32::try_from(elapsed.as_millis()).unwrap_or(i32::MAX))
            .bind(response_body)
            .bind(error)
            .bind(status)
            .bind(next.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
            .execute(tx.conn())
            .await?;
        let disable = if outcome == Outcome::Success {
            if loaded.failing {
                let sql = tx.sql(
                    "update {schema}.webhook_endpoints set failing_since = null where id = $1",
                );
                sqlx::query(sql)
                    .bind(row.endpoint_id)
                    .execute(tx.conn())
                    .await?;
            }
            None
        } else if outcome == Outcome::Gone {
            Some("gone")
        } else {
            let sql = tx.sql(
                "update {schema}.webhook_endpoints set failing_since = coalesce(failing_since, now())
                 where id = $1
                 returning extract(epoch from now() - failing_since)::bigint",
            );
            let failing: Option<i64> = sqlx::query_scalar(sql)
                .bind(row.endpoint_id)
                .fetch_optional(tx.conn())
                .await?;
            failing
                .is_some_and(|s| s >= FAILING_LIMIT_SECONDS)
                .then_some("failing")
        };
        if let Some(reason) = disable {
            disable_endpoint(&mut tx, row.endpoint_id, reason).await?;
        }
        tx.commit().await?;
        match (outcome, status) {
            (Outcome::Success, _) => {
                self.meter
                    .record(row.tenant_id, Metric::WebhooksDelivered, 1);
                metrics::counter!("tenantry_webhook_deliveries_total", "outcome" => "delivered")
                    .increment(1);
            }
            (_, "failed") => {
                metrics::counter!("tenantry_webhook_deliveries_total", "outcome" => "failed")
                    .increment(1);
            }
            _ => {}
        }
        Ok(())
    }

    /// Drops a row that cannot be delivered: its endpoint is disabled or deleted, or its
    /// message is gone. `mark` records the delivery as failed (it can be retried once the
    /// endpoint is enabled again).
    async fn abandon(&self, row: &Claimed, mark: bool) -> sqlx::Result<()> {
        let scope = self.pools.scope(row.tenant_id);
        let mut tx = scope.begin().await?;
        // The queue row first, as everywhere (see `endpoints::delete`), under this
        // claim's lease: a dispatcher whose claim was taken over leaves the row alone.
        if !fence(tx.conn(), row, None).await? {
            return Ok(());
        }
        if mark {
            let sql = tx.sql(
                "update {schema}.webhook_deliveries set status = 'failed', next_attempt_at = null,
                    updated_at = now()
                 where message_id = $1 and endpoint_id = $2 and status = 'pending'",
            );
            sqlx::query(sql)
                .bind(row.message_id)
                .bind(row.endpoint_id)
                .execute(tx.conn())
                .await?;
        }
        tx.commit().await
    }
}

/// Disables an endpoint and emits `webhook_endpoint.disabled` (to the tenant's other
/// endpoints that listen for it), in the caller's transaction.
async fn disable_endpoint(
    tx: &mut crate::db::TenantTx,
    endpoint: Uuid,
    reason: &'static str,
) -> sqlx::Result<()> {
    let sql = tx.sql(
        "update {schema}.webhook_endpoints set enabled = false, disabled_reason = $2,
            updated_at = now()
         where id = $1 and enabled returning url",
    );
    let url: Option<String> = sqlx::query_scalar(sql)
        .bind(endpoint)
        .bind(reason)
        .fetch_optional(tx.conn())
        .await?;
    if let Some(url) = url {
        metrics::counter!("tenantry_webhook_endpoints_disabled_total", "reason" => reason)
            .increment(1);
        events::emit(
            tx,
            EventType::WebhookEndpointDisabled,
            json!({"id": endpoint, "url": url, "reason": reason}),
        )
        .await?;
    }
    Ok(())
}

#[derive(Debug, sqlx::FromRow)]
struct Loaded {
    event_type: String,
    data: Value,
    created_at: DateTime<Utc>,
    url: String,
    secret: String,
    enabled: bool,
    failing: bool,
    previous_secret: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Gone,
    HttpError,
    NoAnswer,
}

impl Outcome {
    fn of(answer: &Result<super::http_client::Answer, String>) -> Self {
        match answer {
            Ok(a) if (200..300).contains(&a.status) => Self::Success,
            Ok(a) if a.status == 410 => Self::Gone,
            Ok(_) => Self::HttpError,
            Err(_) => Self::NoAnswer,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Gone => "gone",
            Self::HttpError => "http_error",
            Self::NoAnswer => "no_answer",
        }
    }
}

async fn recv(listener: &mut Option<PgListener>) -> sqlx::Result<()> {
    match listener {
        Some(l) => l.recv().await.map(drop),
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_the_specs_with_jitter() {
        assert_eq!(retry_delay(1), None);
        let second = retry_delay(2).expect("a retry");
        assert!(second >= Duration::from_millis(4500) && second <= Duration::from_millis(5500));
        let last = retry_delay(8).expect("the eighth attempt");
        assert!(last >= Duration::from_secs(9 * 3600));
        assert_eq!(retry_delay(9), None);
    }
}
