//! `tenantry_tenant_capacity{tenant}` with a cardinality guard: one series for each of
//! the N busiest tenants (by request rate at the last evaluation) and one
//! `tenant="other"` series summing everybody else's capacity, so thousands of tenants
//! add N + 1 series to Prometheus, not thousands.
//!
//! The series are rendered here rather than through the `metrics` recorder because the
//! set changes every pass: a tenant that leaves the top N must disappear at once, and a
//! replica that loses the evaluator lease must stop exporting stale values — the
//! recorder cannot unregister a series.

use std::{fmt::Write, sync::Mutex};

use uuid::Uuid;

/// Label value of the bucket that sums the tenants outside the top N.
pub const OTHER: &str = "other";

/// One tenant's figures from an evaluation pass.
#[derive(Debug, Clone, Copy)]
pub struct TenantLoad {
    pub tenant_id: Uuid,
    pub rps: f64,
    pub capacity: i32,
}

/// The series of the last pass; empty on replicas that do not evaluate.
#[derive(Debug, Default)]
pub struct CapacityGauge {
    series: Mutex<Vec<(String, i64)>>,
}

impl CapacityGauge {
    /// Replaces the series with the `top` busiest of `loads` plus `other`.
    pub fn publish(&self, loads: Vec<TenantLoad>, top: usize) {
        let series = busiest(loads, top);
        *self.series.lock().unwrap_or_else(|e| e.into_inner()) = series;
    }

    /// Stops exporting (this replica no longer evaluates).
    pub fn clear(&self) {
        self.series
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Appends the Prometheus text of the series to `out` (nothing when empty).
    pub fn render(&self, out: &mut String) {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        if series.is_empty() {
            return;
        }
        out.push_str(
            "# HELP tenantry_tenant_capacity Capacity units the autoscaler decided, for the \
             busiest tenants (by tenant id) and the rest summed as tenant=\"other\".\n\
             # TYPE tenantry_tenant_capacity gauge\n",
        );
        for (tenant, capacity) in series.iter() {
            // Labels are tenant ids or "other": nothing that needs escaping.
            let _ = writeln!(
                out,
                "tenantry_tenant_capacity{{tenant=\"{tenant}\"}} {capacity}"
            );
        }
    }
}

/// The `top` tenants by request rate (ties: larger capacity, then id, so the set is
/// stable), each as its own series, and the sum of the others under [`OTHER`] (present
/// even when zero, so dashboards always find it).
fn busiest(mut loads: Vec<TenantLoad>, top: usize) -> Vec<(String, i64)> {
    loads.sort_by(|a, b| {
        b.rps
            .total_cmp(&a.rps)
            .then(b.capacity.cmp(&a.capacity))
            .then(a.tenant_id.cmp(&b.tenant_id))
    });
    let rest = loads.split_off(top.min(loads.len()));
    let mut series: Vec<(String, i64)> = loads
        .iter()
        .map(|l| (l.tenant_id.to_string(), i64::from(l.capacity)))
        .collect();
    series.push((
        OTHER.to_owned(),
        rest.iter().map(|l| i64::from(l.capacity)).sum(),
    ));
    series
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(n: u128, rps: f64, capacity: i32) -> TenantLoad {
        TenantLoad {
            tenant_id: Uuid::from_u128(n),
            rps,
            capacity,
        }
    }

    #[test]
    fn the_busiest_get_their_own_series_and_the_rest_are_summed() {
        let series = busiest(
            vec![
                load(1, 5.0, 1),
                load(2, 500.0, 10),
                load(3, 50.0, 2),
                load(4, 0.0, 1),
            ],
            2,
        );
        assert_eq!(
            series,
            [
                (Uuid::from_u128(2).to_string(), 10),
                (Uuid::from_u128(3).to_string(), 2),
                (OTHER.to_owned(), 2),
            ]
        );
    }

    #[test]
    fn thousands_of_tenants_make_n_plus_one_series() {
        let loads = (0..5_000).map(|n| load(n, n as f64, 1)).collect();
        let gauge = CapacityGauge::default();
        gauge.publish(loads, 20);
        let mut text = String::new();
        gauge.render(&mut text);
        assert_eq!(text.matches("tenantry_tenant_capacity{").count(), 21);
        assert!(text.contains("tenant=\"other\"} 4980"));
        gauge.clear();
        let mut text = String::new();
        gauge.render(&mut text);
        assert!(text.is_empty());
    }
}
