//! Logs (tracing, JSON lines or pretty) and Prometheus metrics.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::{Config, LogFormat};

/// Installs the global tracing subscriber. Span fields (request id, tenant, actor) are
/// printed on every line logged inside the request's span.
pub fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_new(&config.rust_log).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    // A second call (tests build several apps) keeps the first subscriber.
    let _ = match config.log_format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
        LogFormat::Pretty => registry.with(fmt::layer().pretty()).try_init(),
    };
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
        self.handle.run_upkeep();
        self.handle.render()
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
    describe_gauge!(
        "tenantry_tenant_migrations_pending",
        "Tenant schemas still to migrate in the running migration."
    );
    describe_counter!(
        "tenantry_rate_limit_decisions_total",
        "Rate-limit decisions, by kind (tenant, ip, global, login, send_quota) and outcome (allowed, limited)."
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
