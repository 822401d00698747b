//! Usage metering: what each tenant used, per minute, written to
//! `platform.usage_rollups` off the request path.
//!
//! Requests and other services [`Meter::record`] into an in-process buffer of counters
//! keyed by (tenant, minute): recording is one short lock and a few additions, never a
//! wait on the database. A flusher writes the buffer every `METERING_FLUSH_INTERVAL_MS`
//! in one statement (an `unnest` upsert that adds to what is there) and once more at
//! shutdown. The buffer holds at most a fixed number of (tenant, minute) entries; past
//! that, events are dropped, counted and logged, and the caller never blocks. A flush
//! that fails puts its counts back for the next one.

use std::{
    collections::HashMap,
    str::FromStr,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::telemetry::Throttle;

pub mod flusher;

/// What is metered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    ApiRequests,
    ComputeMs,
    BytesIn,
    BytesOut,
    JobsExecuted,
    NotificationsSent,
    FilesUploaded,
    /// Recorded as changes (an upload adds its size, a deletion subtracts it).
    StorageBytes,
    /// Webhook messages delivered (a 2xx answer), per endpoint.
    WebhooksDelivered,
}

const METRICS: usize = 9;

impl Metric {
    pub const ALL: [Metric; METRICS] = [
        Metric::ApiRequests,
        Metric::ComputeMs,
        Metric::BytesIn,
        Metric::BytesOut,
        Metric::JobsExecuted,
        Metric::NotificationsSent,
        Metric::FilesUploaded,
        Metric::StorageBytes,
        Metric::WebhooksDelivered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::ApiRequests => "api_requests",
            Metric::ComputeMs => "compute_ms",
            Metric::BytesIn => "bytes_in",
            Metric::BytesOut => "bytes_out",
            Metric::JobsExecuted => "jobs_executed",
            Metric::NotificationsSent => "notifications_sent",
            Metric::FilesUploaded => "files_uploaded",
            Metric::StorageBytes => "storage_bytes",
            Metric::WebhooksDelivered => "webhooks_delivered",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl FromStr for Metric {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Metric::ALL.into_iter().find(|m| m.as_str() == s).ok_or(())
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// (tenant, minute since the epoch).
type Key = (Uuid, i64);
/// One value per [`Metric`]; `compute_ms` is held in microseconds until the flush, so
/// sub-millisecond requests add up.
type Counts = [i64; METRICS];

/// Default bound of the buffer: (tenant, minute) entries, about 100 bytes each.
pub const DEFAULT_MAX_KEYS: usize = 50_000;
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The in-process usage buffer of this replica.
pub struct Meter {
    enabled: bool,
    max_keys: usize,
    buffer: Mutex<HashMap<Key, Counts>>,
    dropped_since_warning: AtomicU64,
    warning: Throttle,
    depth: metrics::Gauge,
    dropped: metrics::Counter,
}

impl Meter {
    pub fn new(enabled: bool, max_keys: usize) -> Self {
        Self {
            enabled,
            max_keys,
            buffer: Mutex::new(HashMap::new()),
            dropped_since_warning: AtomicU64::new(0),
            warning: Throttle::new(WARN_EVERY),
            depth: metrics::gauge!("tenantry_metering_buffer_depth"),
            dropped: metrics::counter!("tenantry_metering_events_dropped_total"),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Records `value` of `metric` for `tenant` in the current minute.
    pub fn record(&self, tenant: Uuid, metric: Metric, value: i64) {
        let value = if metric == Metric::ComputeMs {
            value.saturating_mul(1000)
        } else {
            value
        };
        self.add(tenant, |counts| counts[metric.index()] += value);
    }

    /// Records one API request: its count, handler time and body sizes.
    pub fn record_request(&self, tenant: Uuid, compute: Duration, bytes_in: u64, bytes_out: u64) {
        let micros = i64::try_from(compute.as_micros()).unwrap_or(i64::MAX);
        self.add(tenant, |counts| {
            counts[Metric::ApiRequests.index()] += 1;
            counts[Metric::ComputeMs.index()] += micros;
            counts[Metric::BytesIn.index()] += i64::try_from(bytes_in).unwrap_or(i64::MAX);
            counts[Metric::BytesOut.index()] += i64::try_from(bytes_out).unwrap_or(i64::MAX);
        });
    }

    fn add(&self, tenant: Uuid, update: impl FnOnce(&mut Counts)) {
        if !self.enabled {
            return;
        }
        let key = (tenant, current_minute());
        let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(counts) = buffer.get_mut(&key) {
            update(counts);
            return;
        }
        if buffer.len() >= self.max_keys {
            drop(buffer);
            self.dropped(1);
            return;
        }
        let mut counts = [0; METRICS];
        update(&mut counts);
        buffer.insert(key, counts);
        self.depth.set(buffer.len() as f64);
    }

    /// Counts and (at most once a minute) logs events that found the buffer full.
    fn dropped(&self, events: u64) {
        self.dropped.increment(events);
        let pending = self
            .dropped_since_warning
            .fetch_add(events, Ordering::Relaxed)
            + events;
        if self.warning.ready() {
            self.dropped_since_warning.store(0, Ordering::Relaxed);
            tracing::warn!(
                dropped = pending,
                max_keys = self.max_keys,
                "usage metering buffer is full: events dropped"
            );
        }
    }

    /// (tenant, minute) entries waiting to be written.
    /// Whether the buffer is half full: a flusher that waits longer than configured
    /// flushes now instead.
    pub fn half_full(&self) -> bool {
        self.depth() >= self.max_keys / 2
    }

    pub fn depth(&self) -> usize {
        self.buffer.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Writes everything buffered in one statement; returns the rows upserted. On
    /// failure the counts go back into the buffer for the next flush.
    ///
    /// `compute_ms` is held in microseconds: for a minute still under way only whole
    /// milliseconds are written and the rest stays in the buffer, so a tenant whose
    /// requests take well under a millisecond each is still counted (rounding each flush
    /// alone wrote 0 for them forever); a minute that has ended is rounded to the
    /// nearest millisecond, once.
    pub async fn flush(&self, db: &PgPool) -> anyhow::Result<usize> {
        self.flush_with(db, Some(current_minute())).await
    }

    /// [`Self::flush`] at shutdown: every minute is rounded, nothing stays behind.
    pub async fn flush_final(&self, db: &PgPool) -> anyhow::Result<usize> {
        self.flush_with(db, None).await
    }

    async fn flush_with(&self, db: &PgPool, open_minute: Option<i64>) -> anyhow::Result<usize> {
        let taken = std::mem::take(&mut *self.buffer.lock().unwrap_or_else(|e| e.into_inner()));
        self.depth.set(self.depth() as f64);
        if taken.is_empty() {
            return Ok(0);
        }
        let mut entries: Vec<(Key, Counts)> = taken.into_iter().collect();
        // One order on every replica, so concurrent flushes lock rows in the same order.
        entries.sort_unstable_by_key(|(key, _)| *key);
        let mut tenants = Vec::with_capacity(entries.len() * 4);
        let mut names = Vec::with_capacity(entries.len() * 4);
        let mut minutes = Vec::with_capacity(entries.len() * 4);
        let mut values = Vec::with_capacity(entries.len() * 4);
        let mut carried = Vec::new();
        for ((tenant, minute), counts) in &entries {
            for metric in Metric::ALL {
                let mut value = counts[metric.index()];
                if metric == Metric::ComputeMs {
                    // Held in µs: an open minute writes whole ms and keeps the rest.
                    let micros = value;
                    let open = open_minute == Some(*minute);
                    value = (if open { micros } else { micros + 500 }).div_euclid(1000);
                    if open && micros != value * 1000 {
                        let mut rest = [0; METRICS];
                        rest[Metric::ComputeMs.index()] = micros - value * 1000;
                        carried.push(((*tenant, *minute), rest));
                    }
                }
                if value != 0 {
                    tenants.push(*tenant);
                    names.push(metric.as_str());
                    minutes.push(minute_start(*minute));
                    values.push(value);
                }
            }
        }
        let started = Instant::now();
        let result = sqlx::query(
            "insert into platform.usage_rollups (tenant_id, metric, bucket_start, value)
             select * from unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::bigint[])
             on conflict (tenant_id, metric, bucket_start)
             do update set value = usage_rollups.value + excluded.value",
        )
        .bind(&tenants)
        .bind(&names)
        .bind(&minutes)
        .bind(&values)
        .execute(db)
        .await;
        metrics::histogram!("tenantry_metering_flush_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(_) => {
                metrics::counter!("tenantry_metering_rows_flushed_total")
                    .increment(values.len() as u64);
                self.put_back(carried);
                Ok(values.len())
            }
            Err(e) => {
                metrics::counter!("tenantry_metering_flush_failures_total").increment(1);
                self.put_back(entries);
                Err(anyhow::Error::new(e).context("failed to write usage rollups"))
            }
        }
    }

    /// Returns counts of a failed flush to the buffer, merging with newer ones.
    fn put_back(&self, entries: Vec<(Key, Counts)>) {
        let mut lost = 0;
        {
            let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
            for (key, counts) in entries {
                if let Some(existing) = buffer.get_mut(&key) {
                    for (sum, value) in existing.iter_mut().zip(counts) {
                        *sum += value;
                    }
                } else if buffer.len() < self.max_keys {
                    buffer.insert(key, counts);
                } else {
                    lost += u64::try_from(counts[Metric::ApiRequests.index()].max(1)).unwrap_or(1);
                }
            }
            self.depth.set(buffer.len() as f64);
        }
        if lost > 0 {
            self.dropped(lost);
        }
    }
}

fn current_minute() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    i64::try_from(secs / 60).unwrap_or(0)
}

fn minute_start(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(minute * 60, 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_round_trip() {
        for metric in Metric::ALL {
            assert_eq!(metric.as_str().parse::<Metric>(), Ok(metric));
            assert_eq!(Metric::ALL[metric.index()], metric);
        }
        assert!("requests".parse::<Metric>().is_err());
    }

    #[test]
    fn requests_of_a_tenant_and_minute_share_one_entry() {
        let meter = Meter::new(true, 10);
        let tenant = Uuid::now_v7();
        for _ in 0..5 {
            meter.record_request(tenant, Duration::from_micros(300), 10, 20);
        }
        meter.record(tenant, Metric::JobsExecuted, 2);
        assert_eq!(meter.depth(), 1);
        let buffer = meter.buffer.lock().expect("lock");
        let counts = buffer.values().next().expect("entry");
        assert_eq!(counts[Metric::ApiRequests.index()], 5);
        assert_eq!(counts[Metric::ComputeMs.index()], 1500, "held in µs");
        assert_eq!(counts[Metric::BytesOut.index()], 100);
        assert_eq!(counts[Metric::JobsExecuted.index()], 2);
    }

    #[test]
    fn a_full_buffer_drops_and_counts_without_blocking() {
        let meter = Meter::new(true, 2);
        for _ in 0..5 {
            meter.record(Uuid::now_v7(), Metric::ApiRequests, 1);
        }
        assert_eq!(meter.depth(), 2);
        assert!(meter.warning.has_passed(), "warned");
        assert_eq!(
            meter.dropped_since_warning.load(Ordering::Relaxed),
            2,
            "drops after the warning wait for the next one"
        );
    }

    #[test]
    fn a_disabled_meter_records_nothing() {
        let meter = Meter::new(false, 10);
        meter.record(Uuid::now_v7(), Metric::ApiRequests, 1);
        assert_eq!(meter.depth(), 0);
    }

    #[test]
    fn put_back_merges_with_newer_counts() {
        let meter = Meter::new(true, 10);
        let tenant = Uuid::now_v7();
        meter.record(tenant, Metric::ApiRequests, 1);
        let taken: Vec<_> = std::mem::take(&mut *meter.buffer.lock().expect("lock"))
            .into_iter()
            .collect();
        meter.record(tenant, Metric::ApiRequests, 1);
        meter.put_back(taken);
        let buffer = meter.buffer.lock().expect("lock");
        assert_eq!(buffer.values().next().expect("entry")[0], 2);
    }
}
