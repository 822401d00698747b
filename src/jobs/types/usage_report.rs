//! `usage_report`: the tenant's usage of a period as CSV (`bucket_start,metric,value`,
//! one line per minute bucket), stored as a file (`usage-report-<from>-<to>.csv`); the
//! job's result holds its `file_id`, downloadable through `/api/v1/files/{id}/download`.

use chrono::{DateTime, Duration, Utc};

use super::invalid;
use crate::error::FieldError;

/// The longest period one report covers.
pub const MAX_PERIOD_DAYS: i64 = 31;

/// The longest metric name, in bytes.
pub const MAX_METRIC_BYTES: usize = 64;
/// Rows in one report at most (a month of minutes for a few metrics), so a result stays
/// a bounded row value.
pub const MAX_ROWS: i64 = 50_000;

#[derive(Debug, PartialEq, Eq)]
pub struct Params {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub metric: Option<String>,
}

impl Params {
    pub fn parse(payload: &serde_json::Value) -> Result<Self, FieldError> {
        let time = |name: &str| -> Result<DateTime<Utc>, FieldError> {
            payload
                .get(name)
                .and_then(|v| v.as_str())
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| invalid(name, "must be an RFC 3339 timestamp"))
        };
        let from = time("from")?;
        let to = time("to")?;
        if from >= to {
            return Err(invalid("from", "must be before to"));
        }
        if to - from > Duration::days(MAX_PERIOD_DAYS) {
            return Err(invalid("to", "the period is at most 31 days"));
        }
        let metric = match payload.get("metric") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(
                v.as_str()
                    .filter(|m| !m.is_empty() && m.len() <= MAX_METRIC_BYTES)
                    .ok_or_else(|| invalid("metric", "must be a metric name"))?
                    .to_owned(),
            ),
        };
        Ok(Self { from, to, metric })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_period_is_checked() {
        let ok = json!({"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"});
        assert!(Params::parse(&ok).is_ok());
        let reversed = json!({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"});
        assert!(Params::parse(&reversed).is_err());
        let long = json!({"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"});
        assert!(Params::parse(&long).is_err());
        assert!(Params::parse(&json!({"from": "yesterday"})).is_err());
    }
}
