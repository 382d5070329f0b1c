//! `GET /api/v1/stats`: dashboard aggregates of the caller's executions (admins: everybody's
//! with `scope=all`) over a window ending now.

use std::time::Duration;

use axum::Json;
use axum::extract::{RawQuery, State};
use serde::Deserialize;
use voidrunner_api_types::{
    ErrorBody, PercentilesResponse, QueueNowResponse, SamplingResponse, StatsQuery, StatsResponse,
    StatusCountsResponse, ThroughputPointResponse, ThroughputResponse,
};
use voidrunner_domain::ExecutionStatus;
use voidrunner_store::{ExecutionStats, Percentiles, Scope, StatsRequest};

use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::{ApiError, ApiResult};

/// Shortest and longest window.
const MIN_WINDOW: Duration = Duration::from_secs(5 * 60);
const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// Throughput buckets per window.
const BUCKETS: u32 = 60;
/// Most finished executions read for percentiles (the newest of the window).
pub(crate) const MAX_SAMPLE_ROWS: u32 = 100_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStats {
    window: Option<String>,
    scope: Option<String>,
}

/// `30s`, `5m`, `1h`, `7d` → a duration; anything else → `None`. Pure.
pub(crate) fn parse_window(s: &str) -> Option<Duration> {
    let unit = s.chars().last()?;
    let digits = s.get(..s.len() - unit.len_utf8())?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let secs = match unit {
        's' => n,
        'm' => n.checked_mul(60)?,
        'h' => n.checked_mul(3600)?,
        'd' => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

fn percentiles(p: Percentiles) -> PercentilesResponse {
    PercentilesResponse {
        count: p.count,
        p50: p.p50,
        p95: p.p95,
        p99: p.p99,
        max: p.max,
    }
}

fn status_counts(s: &ExecutionStats) -> StatusCountsResponse {
    let mut out = StatusCountsResponse::default();
    for (status, n) in &s.by_status {
        let slot = match status {
            ExecutionStatus::Queued => &mut out.queued,
            ExecutionStatus::Running => &mut out.running,
            ExecutionStatus::Completed => &mut out.completed,
            ExecutionStatus::Failed => &mut out.failed,
            ExecutionStatus::Timeout => &mut out.timeout,
            ExecutionStatus::Cancelled => &mut out.cancelled,
        };
        *slot = *n;
    }
    out
}

fn response(scope: &str, window: Duration, req: &StatsRequest, s: ExecutionStats) -> StatsResponse {
    let bucket_ms = u64::try_from(s.bucket_width.as_millis()).unwrap_or(u64::MAX);
    let minutes = s.bucket_width.as_secs_f64() / 60.0;
    let points = s
        .throughput
        .iter()
        .map(|b| ThroughputPointResponse {
            start: b.start,
            finished: b.finished,
            per_minute: if minutes > 0.0 {
                b.finished as f64 / minutes
            } else {
                0.0
            },
        })
        .collect();
    StatsResponse {
        scope: scope.to_owned(),
        window_secs: window.as_secs(),
        since: req.since,
        until: req.until,
        by_status: status_counts(&s),
        by_language: s.by_language,
        by_verdict: s.by_verdict,
        finished: s.finished,
        duration_ms: percentiles(s.duration_ms),
        queue_wait_ms: percentiles(s.queue_wait_ms),
        sampling: SamplingResponse {
            rows: s.samples,
            max_rows: u64::from(req.max_samples),
            capped: s.samples_capped,
        },
        throughput: ThroughputResponse { bucket_ms, points },
        queue: QueueNowResponse {
            queued: s.queued_now,
            running: s.running_now,
            dead_lettered: s.dead_lettered,
        },
    }
}

/// Gets dashboard statistics over a window ending now: counts by status, verdict and
/// language, p50/p95/p99 of wall time and queue wait, throughput in 60 buckets, and the queue
/// now. Users see their own executions; admins may pass `scope=all`.
#[utoipa::path(get, path = "/api/v1/stats", tag = "executions",
    security(("bearer" = [])),
    params(StatsQuery),
    responses(
        (status = 200, description = "Statistics of the window", body = StatsResponse),
        (status = 400, description = "Bad `window` or `scope` (`field` names it)", body = ErrorBody),
        (status = 403, description = "`scope=all` without admin", body = ErrorBody),
    ))]
pub(crate) async fn get_stats(
    State(ctx): State<ApiContext>,
    auth: AuthUser,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<StatsResponse>> {
    let q: RawStats = serde_urlencoded::from_str(raw.as_deref().unwrap_or_default())
        .map_err(|_| ApiError::invalid_query("query", "unknown or duplicated query parameter"))?;
    let window = match q.window.as_deref() {
        None => Duration::from_secs(3600),
        Some(w) => parse_window(w)
            .filter(|d| (MIN_WINDOW..=MAX_WINDOW).contains(d))
            .ok_or_else(|| {
                ApiError::invalid_query("window", "must be like 5m, 1h or 7d, from 5m to 7d")
            })?,
    };
    let (scope, label) = match q.scope.as_deref() {
        None | Some("own") => (Scope::Owner(auth.id), "own"),
        Some("all") if auth.is_admin() => (Scope::All, "all"),
        Some("all") => {
            return Err(
                ApiError::forbidden("only admins may read stats of all users").with_field("scope"),
            );
        }
        Some(_) => return Err(ApiError::invalid_query("scope", "must be own or all")),
    };
    let until = voidrunner_store::now();
    let span = chrono::Duration::from_std(window)
        .map_err(|_| ApiError::invalid_query("window", "too long"))?;
    let req = StatsRequest {
        scope,
        since: until - span,
        until,
        buckets: BUCKETS,
        max_samples: MAX_SAMPLE_ROWS,
    };
    let stats = ctx.store().execution_stats(&req).await?;
    Ok(Json(response(label, window, &req, stats)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_with_units() {
        assert_eq!(parse_window("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_window("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_window("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_window("90s"), Some(Duration::from_secs(90)));
        for bad in ["", "h", "1", "1w", "-1h", "1.5h", "+1h", " 1h", "1hh", "१h"] {
            assert_eq!(parse_window(bad), None, "{bad:?}");
        }
    }
}
