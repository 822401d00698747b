//! Logs (tracing, JSON lines or pretty) and Prometheus metrics.

mod json_lines;
mod log_writer;
mod throttle;

use std::{
    collections::HashMap,
    sync::{LazyLock, OnceLock, RwLock},
    time::Duration,
};

use axum::http::{Method, StatusCode};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;
use tracing_subscriber::{
    EnvFilter,
    fmt::{self, writer::BoxMakeWriter},
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

use self::json_lines::{JsonLines, JsonPairs};
use self::log_writer::{BufferedWriter, DroppedLines, WriterGuard};
pub use self::throttle::Throttle;
use crate::config::{Config, LogFormat};

/// Log bytes waiting for the writer thread at most (about 25,000 request lines). Past
/// that, lines are dropped and counted rather than making requests wait on stdout.
const LOG_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// Lines dropped because the buffer was full, for `tenantry_log_lines_dropped_total`.
static DROPPED_LINES: OnceLock<DroppedLines> = OnceLock::new();

/// Keeps the log writer thread alive; dropping it writes out the lines still buffered.
/// `main` holds it until the process exits.
#[must_use = "dropping the guard stops the log writer: hold it until exit"]
pub struct LogGuard {
    _writer: Option<WriterGuard>,
}

/// Installs the global tracing subscriber. Span fields (request id, tenant, actor) are
/// printed on every line logged inside the request's span.
///
/// Lines are formatted on the logging thread but written to stdout by a thread of their
/// own (see [`log_writer`]), so a request never waits for stdout (a slow pipe or disk
/// would otherwise stall the async workers); when the buffer is full a line is dropped
/// and counted.
pub fn init_tracing(config: &Config) -> LogGuard {
    let filter =
        EnvFilter::try_new(&config.telemetry.rust_log).unwrap_or_else(|_| EnvFilter::new("info"));
    // A second call (tests build several apps) keeps the first subscriber and its writer.
    if DROPPED_LINES.get().is_some() {
        return LogGuard { _writer: None };
    }
    let (writer, dropped, guard) = match BufferedWriter::spawn(std::io::stdout(), LOG_BUFFER_BYTES)
    {
        Ok((writer, dropped, guard)) => (BoxMakeWriter::new(writer), Some(dropped), Some(guard)),
        Err(e) => {
            eprintln!("tenantry: no log writer thread ({e}): writing logs on the request path");
            (BoxMakeWriter::new(std::io::stdout), None, None)
        }
    };
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match config.telemetry.log_format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .fmt_fields(JsonPairs)
                    .event_format(JsonLines)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(fmt::layer().pretty().with_writer(writer))
            .try_init(),
    };
    match installed {
        Ok(()) => {
            if let Some(dropped) = dropped {
                let _ = DROPPED_LINES.set(dropped);
            }
            LogGuard { _writer: guard }
        }
        // Another subscriber was there first: ours would write nothing.
        Err(_) => LogGuard { _writer: None },
    }
}

/// Latency buckets (seconds) for `http_request_duration_seconds`.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's Prometheus recorder.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// Installs the global recorder once per process and returns its handle.
    pub fn install() -> anyhow::Result<Self> {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        if let Some(handle) = HANDLE.get() {
            return Ok(Self {
                handle: handle.clone(),
            });
        }
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                LATENCY_BUCKETS,
            )?
            .install_recorder()?;
        describe();
        let handle = HANDLE.get_or_init(|| handle).clone();
        Ok(Self { handle })
    }

    /// The Prometheus text exposition, with the pool gauges read now.
    pub fn render(&self, db: &PgPool) -> String {
        let size = db.size();
        let idle = db.num_idle() as u32;
        metrics::gauge!("tenantry_db_pool_connections", "state" => "idle").set(f64::from(idle));
        metrics::gauge!("tenantry_db_pool_connections", "state" => "in_use")
            .set(f64::from(size.saturating_sub(idle)));
        if let Some(dropped) = DROPPED_LINES.get() {
            metrics::counter!("tenantry_log_lines_dropped_total").absolute(dropped.get());
        }
        self.handle.run_upkeep();
        self.handle.render()
    }
}

/// One request's metric handles, for one method and status of a route.
struct RequestHandles {
    method: Method,
    status: StatusCode,
    count: Counter,
    latency: Histogram,
}

/// Handles of `http_requests_total` and `http_request_duration_seconds` by route
/// template, then method and status. Naming a metric by its labels builds and hashes a
/// key (several allocations) on every call; the handles are looked up here instead.
static REQUEST_HANDLES: LazyLock<RwLock<HashMap<Box<str>, Vec<RequestHandles>>>> =
    LazyLock::new(Default::default);
/// Label sets kept at most: routes are templates, but a client can make up methods.
const REQUEST_HANDLES_MAX: usize = 4096;

/// Counts a request and records its latency, by method, route template and status.
pub fn record_request(method: &Method, route: &str, status: StatusCode, latency: Duration) {
    let seconds = latency.as_secs_f64();
    {
        let handles = REQUEST_HANDLES.read().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = handles
            .get(route)
            .and_then(|v| v.iter().find(|h| h.status == status && h.method == *method))
        {
            found.count.increment(1);
            found.latency.record(seconds);
            return;
        }
    }
    let labels = [
        ("method", method.as_str().to_owned()),
        ("route", route.to_owned()),
        ("status", status.as_u16().to_string()),
    ];
    let count = metrics::counter!("http_requests_total", &labels);
    let latency = metrics::histogram!("http_request_duration_seconds", &labels);
    count.increment(1);
    latency.record(seconds);
    let mut handles = REQUEST_HANDLES.write().unwrap_or_else(|e| e.into_inner());
    if handles.values().map(Vec::len).sum::<usize>() < REQUEST_HANDLES_MAX {
        let for_route = handles.entry(route.into()).or_default();
        if !for_route
            .iter()
            .any(|h| h.status == status && h.method == *method)
        {
            for_route.push(RequestHandles {
                method: method.clone(),
                status,
                count,
                latency,
            });
        }
    }
}

/// HELP texts, so the exposition passes `promtool check metrics`.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by method, route template and status."
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency, by method, route template and status."
    );
    describe_gauge!(
        "tenantry_db_pool_connections",
        "Database pool connections, by state (idle, in_use)."
    );
    describe_counter!(
        "tenantry_tenant_migrations_total",
        "Tenant schema migrations, by outcome (applied, failed)."
    );
    describe_counter!(
        "tenantry_redis_errors_total",
        "Redis operations that failed and were worked around, by operation."
    );
    describe_counter!(
        "tenantry_log_lines_dropped_total",
        "Log lines dropped because the log writer's queue was full."
    );
    describe_gauge!(
        "tenantry_tenant_migrations_pending",
        "Tenant schemas still to migrate in the running migration."
    );
    describe_counter!(
        "tenantry_rate_limit_decisions_total",
        "Rate-limit decisions, by kind (tenant, ip, global, login, send_quota) and outcome (allowed, limited)."
    );
    describe_counter!(
        "tenantry_platform_mail_suppressed_total",
        "Mail the platform sends by itself that was not sent, by kind and reason (recipient_limit, daily_quota, unavailable)."
    );
    describe_counter!(
        "tenantry_rate_limit_fallback_total",
        "Switches to the in-process rate limiter because Redis did not answer."
    );
    describe_gauge!(
        "tenantry_rate_limit_degraded",
        "1 while this replica's own rate limiter answers instead of Redis."
    );
    describe_counter!(
        "tenantry_rate_limit_local_evictions_total",
        "Times the in-process rate limiter reached its bucket bound and started afresh."
    );
    describe_gauge!(
        "tenantry_metering_buffer_depth",
        "Usage entries (tenant and minute) buffered, not yet written."
    );
    describe_counter!(
        "tenantry_metering_events_dropped_total",
        "Usage events dropped because the buffer was full."
    );
    describe_histogram!(
        "tenantry_metering_flush_duration_seconds",
        Unit::Seconds,
        "Time to write one batch of usage rollups."
    );
    describe_counter!(
        "tenantry_metering_flush_failures_total",
        "Usage flushes that failed (their counts are kept for the next one)."
    );
    describe_counter!(
        "tenantry_metering_rows_flushed_total",
        "Usage rollup rows upserted."
    );
}

/// Last time a [`QueueDepthPublisher`] wrote a line (Unix milliseconds).
static QUEUE_DEPTH_PUBLISHED_MS: std::sync::atomic::AtomicI64 =
    std::sync::atomic::AtomicI64::new(0);
/// CloudWatch keeps one-minute points: two lines a minute per worker are plenty.
const QUEUE_DEPTH_EVERY_MS: i64 = 30_000;

/// Publishes the job backlog to CloudWatch, which the worker service scales on
/// (`terraform/modules/compute`): a line in CloudWatch's Embedded Metric Format on stdout,
/// which CloudWatch Logs turns into the metric `Tenantry/JobsQueueDepth` (dimension
/// `Deployment`, the Redis key prefix without its colon). Only in production with JSON
/// logs (the ECS tasks), at most every 30 seconds.
#[derive(Debug, Clone)]
pub struct QueueDepthPublisher {
    /// The `Deployment` dimension; `None` where nothing is published.
    deployment: Option<String>,
}

impl QueueDepthPublisher {
    pub fn from_config(config: &Config) -> Self {
        let publishes = config.is_production() && config.telemetry.log_format == LogFormat::Json;
        Self {
            deployment: publishes.then(|| deployment(config).to_owned()),
        }
    }

    pub fn publish(&self, ready: u64, scheduled: u64) {
        let Some(deployment) = &self.deployment else {
            return;
        };
        let now = chrono::Utc::now().timestamp_millis();
        let last = QUEUE_DEPTH_PUBLISHED_MS.load(std::sync::atomic::Ordering::Relaxed);
        if now - last < QUEUE_DEPTH_EVERY_MS
            || QUEUE_DEPTH_PUBLISHED_MS
                .compare_exchange(
                    last,
                    now,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        // println! holds the stdout lock, as the log writer does: the line lands whole.
        println!("{}", queue_depth_emf(deployment, now, ready, scheduled));
    }
}

/// The deployment's name in CloudWatch: the Redis key prefix without its colon.
fn deployment(config: &Config) -> &str {
    config.redis.key_prefix.trim_end_matches(':')
}

fn queue_depth_emf(deployment: &str, now_ms: i64, ready: u64, scheduled: u64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": "Tenantry",
                "Dimensions": [["Deployment"]],
                "Metrics": [
                    {"Name": "JobsQueueDepth", "Unit": "Count"},
                    {"Name": "JobsScheduled", "Unit": "Count"},
                ],
            }],
        },
        "Deployment": deployment,
        "JobsQueueDepth": ready,
        "JobsScheduled": scheduled,
    })
    .to_string()
}

#[cfg(test)]
mod emf_tests {
    use super::*;

    #[test]
    fn the_queue_depth_line_is_embedded_metric_format() {
        let config = Config::from_lookup(|name| {
            (name == "REDIS_KEY_PREFIX").then(|| "tenantry-production:".to_owned())
        })
        .expect("valid");
        let line: serde_json::Value = serde_json::from_str(&queue_depth_emf(
            deployment(&config),
            1_700_000_000_000,
            12,
            3,
        ))
        .expect("JSON");
        assert_eq!(line["Deployment"], "tenantry-production");
        assert_eq!(line["JobsQueueDepth"], 12);
        assert_eq!(line["JobsScheduled"], 3);
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Tenantry");
        assert_eq!(directive["Dimensions"][0][0], "Deployment");
        assert_eq!(directive["Metrics"][0]["Name"], "JobsQueueDepth");
    }
}
