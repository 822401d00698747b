//! Reading metered usage: per-metric series at minute, hour or day granularity, and
//! totals, from `platform.usage_rollups`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    error::{AppError, FieldError},
    services::metering::Metric,
};

/// The width of one point of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Minute,
    Hour,
    Day,
}

impl Granularity {
    fn as_str(self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }

    fn width(self) -> Duration {
        match self {
            Granularity::Minute => Duration::minutes(1),
            Granularity::Hour => Duration::hours(1),
            Granularity::Day => Duration::days(1),
        }
    }
}

/// Most points one series may have (a week of minutes).
pub const MAX_POINTS: i64 = 7 * 24 * 60;
/// Most points one answer may have, every series together (periods × metrics): a day of
/// minutes of every metric fits, a week of minutes of every metric does not. Bounds the
/// rows read and the JSON written by a declared figure instead of a product.
pub const MAX_RESPONSE_POINTS: i64 = 2 * MAX_POINTS;

/// A checked usage question.
#[derive(Debug, Clone)]
pub struct UsageQuery {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub granularity: Granularity,
    pub metrics: Vec<Metric>,
}

impl UsageQuery {
    /// Checks the parameters as a client sent them: `to` defaults to now, `from` to a day
    /// before `to`, granularity to `hour`, metrics to all; `metric` may list several,
    /// comma-separated. 422 naming the field for anything else.
    pub fn parse(
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        granularity: Option<&str>,
        metric: Option<&str>,
    ) -> Result<Self, AppError> {
        let mut errors = Vec::new();
        let to = to.unwrap_or_else(Utc::now);
        let from = from.unwrap_or(to - Duration::hours(24));
        let granularity = match granularity.unwrap_or("hour") {
            "minute" => Some(Granularity::Minute),
            "hour" => Some(Granularity::Hour),
            "day" => Some(Granularity::Day),
            _ => {
                errors.push(FieldError::new(
                    "granularity",
                    "must be minute, hour or day",
                ));
                None
            }
        };
        if from > to {
            errors.push(FieldError::new("from", "must not be after `to`"));
        }
        let metrics = match metric.map(str::trim).filter(|m| !m.is_empty()) {
            None => Metric::ALL.to_vec(),
            Some(list) => {
                // Each metric once, however often it is named: a list of a thousand
                // repetitions is one series, not a thousand.
                let parsed: Result<Vec<Metric>, _> =
                    list.split(',').try_fold(Vec::new(), |mut seen, m| {
                        let metric = m.trim().parse::<Metric>()?;
                        if !seen.contains(&metric) {
                            seen.push(metric);
                        }
                        Ok(seen)
                    });
                parsed.unwrap_or_else(|()| {
                    let known: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
                    errors.push(FieldError::new(
                        "metric",
                        format!("unknown metric; known: {}", known.join(", ")),
                    ));
                    Vec::new()
                })
            }
        };
        if let Some(g) = granularity
            && from <= to
            && (to - from).num_seconds() / g.width().num_seconds() > MAX_POINTS
        {
            errors.push(FieldError::new(
                "from",
                format!(
                    "the range spans more than {MAX_POINTS} {}s; narrow it or use a coarser granularity",
                    g.as_str()
                ),
            ));
        }
        if let Some(g) = granularity
            && from <= to
            && !metrics.is_empty()
        {
            let periods = (to - from).num_seconds() / g.width().num_seconds();
            let points = periods.saturating_mul(metrics.len() as i64);
            if periods <= MAX_POINTS && points > MAX_RESPONSE_POINTS {
                errors.push(FieldError::new(
                    "metric",
                    format!(
                        "{periods} {}s × {} metrics is {points} points, more than \
                         {MAX_RESPONSE_POINTS} in one answer; ask for fewer metrics, a \
                         shorter range or a coarser granularity",
                        g.as_str(),
                        metrics.len()
                    ),
                ));
            }
        }
        match granularity {
            Some(granularity) if errors.is_empty() => Ok(Self {
                from,
                to,
                granularity,
                metrics,
            }),
            _ => Err(AppError::validation(errors)),
        }
    }
}

/// One point of a series: the start of its minute, hour or day (UTC) and the sum.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Point {
    pub ts: DateTime<Utc>,
    pub value: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Series {
    pub metric: Metric,
    /// Oldest first; periods without usage are left out.
    pub points: Vec<Point>,
}

/// A tenant's usage over a period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Usage {
    pub tenant_id: Uuid,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub granularity: Granularity,
    /// One series per metric asked for.
    pub series: Vec<Series>,
    /// Each metric's sum over the period.
    #[schema(value_type = Object)]
    pub totals: BTreeMap<&'static str, i64>,
}

/// Usage of `tenant` for the minutes that start in `[from, to)`.
pub async fn usage(db: impl PgExecutor<'_>, tenant: Uuid, q: &UsageQuery) -> sqlx::Result<Usage> {
    let names: Vec<&str> = q.metrics.iter().map(|m| m.as_str()).collect();
    let rows: Vec<(String, DateTime<Utc>, i64)> = sqlx::query_as(
        "select metric, date_trunc($4, bucket_start, 'UTC') as ts, sum(value)::bigint
         from platform.usage_rollups
         where tenant_id = $1 and bucket_start >= $2 and bucket_start < $3
           and metric = any($5)
         group by 1, 2
         order by 1, 2",
    )
    .bind(tenant)
    .bind(q.from)
    .bind(q.to)
    .bind(q.granularity.as_str())
    .bind(&names)
    .fetch_all(db)
    .await?;
    let mut series: Vec<Series> = q
        .metrics
        .iter()
        .map(|&metric| Series {
            metric,
            points: Vec::new(),
        })
        .collect();
    for (name, ts, value) in rows {
        if let Some(s) = series.iter_mut().find(|s| s.metric.as_str() == name) {
            s.points.push(Point { ts, value });
        }
    }
    let totals = series
        .iter()
        .map(|s| (s.metric.as_str(), s.points.iter().map(|p| p.value).sum()))
        .collect();
    Ok(Usage {
        tenant_id: tenant,
        from: q.from,
        to: q.to,
        granularity: q.granularity,
        series,
        totals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_a_day_by_hour_of_every_metric() {
        let q = UsageQuery::parse(None, None, None, None).expect("valid");
        assert_eq!(q.granularity, Granularity::Hour);
        assert_eq!(q.to - q.from, Duration::hours(24));
        assert_eq!(q.metrics.len(), Metric::ALL.len());
    }

    #[test]
    fn bad_parameters_are_refused() {
        let now = Utc::now();
        assert!(UsageQuery::parse(Some(now), Some(now - Duration::hours(1)), None, None).is_err());
        assert!(UsageQuery::parse(None, None, Some("week"), None).is_err());
        assert!(UsageQuery::parse(None, None, None, Some("api_requests,nope")).is_err());
        let long = UsageQuery::parse(
            Some(now - Duration::days(30)),
            Some(now),
            Some("minute"),
            None,
        );
        assert!(long.is_err(), "a month of minutes is too many points");
        let q = UsageQuery::parse(None, None, Some("minute"), Some("api_requests, bytes_out"))
            .expect("valid");
        assert_eq!(q.metrics, [Metric::ApiRequests, Metric::BytesOut]);
    }

    #[test]
    fn metrics_times_periods_is_bounded() {
        let now = Utc::now();
        let week = Some(now - Duration::days(7));
        let all = UsageQuery::parse(week, Some(now), Some("minute"), None);
        assert!(all.is_err(), "a week of minutes of every metric");
        let two = UsageQuery::parse(
            week,
            Some(now),
            Some("minute"),
            Some("api_requests,bytes_in"),
        );
        assert!(two.is_ok(), "a week of minutes of two metrics");
        let day = UsageQuery::parse(None, None, Some("minute"), None);
        assert!(day.is_ok(), "a day of minutes of every metric");
        let repeated = vec!["api_requests"; 5000].join(",");
        let q = UsageQuery::parse(week, Some(now), Some("minute"), Some(&repeated)).expect("one");
        assert_eq!(q.metrics, [Metric::ApiRequests]);
    }
}
