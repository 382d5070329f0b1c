//! Dashboards and per-execution measurements: `GET /api/v1/stats` and
//! `GET /api/v1/executions/{id}/metrics`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Query of `GET /api/v1/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Window ending now: a whole number with unit `s`, `m`, `h` or `d`, from `5m` to `7d`
    /// (default `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// `all`: every user's executions (admins only, `403` otherwise); default: the caller's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Executions enqueued in the window, by their current status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusCountsResponse {
    /// Waiting.
    pub queued: u64,
    /// Running.
    pub running: u64,
    /// Exited with code 0.
    pub completed: u64,
    /// Failed (non-zero exit, signal, limit, compile error, dead letter).
    pub failed: u64,
    /// Wall-clock timeout.
    pub timeout: u64,
    /// Cancelled.
    pub cancelled: u64,
}

/// Nearest-rank percentiles in milliseconds; `null` when nothing was measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PercentilesResponse {
    /// Values the percentiles were computed over.
    pub count: u64,
    /// Median.
    pub p50: Option<u64>,
    /// 95th percentile.
    pub p95: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
    /// Largest value.
    pub max: Option<u64>,
}

/// One throughput bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ThroughputPointResponse {
    /// Bucket start; the bucket lasts `bucket_ms`.
    pub start: DateTime<Utc>,
    /// Executions that finished in the bucket.
    pub finished: u64,
    /// `finished` per minute of the bucket.
    pub per_minute: f64,
}

/// Finished executions over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ThroughputResponse {
    /// Length of each bucket in milliseconds (the window divided into 60).
    pub bucket_ms: u64,
    /// Buckets covering the window, oldest first.
    pub points: Vec<ThroughputPointResponse>,
}

/// What the percentiles were computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SamplingResponse {
    /// Finished executions whose durations were read.
    pub rows: u64,
    /// At most this many (the newest) are read.
    pub max_rows: u64,
    /// More finished in the window than `max_rows`: percentiles describe the newest ones.
    pub capped: bool,
}

/// The queue now (whatever the window), within the scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueNowResponse {
    /// Waiting now.
    pub queued: u64,
    /// Running now.
    pub running: u64,
    /// Dead-lettered and not requeued.
    pub dead_lettered: u64,
}

/// `GET /api/v1/stats`: one scope's executions over a window ending now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsResponse {
    /// `own` (the caller's executions) or `all` (admins).
    pub scope: String,
    /// Window length in seconds.
    pub window_secs: u64,
    /// Window start.
    pub since: DateTime<Utc>,
    /// Window end (the time of the request).
    pub until: DateTime<Utc>,
    /// Enqueued in the window, by current status.
    pub by_status: StatusCountsResponse,
    /// Enqueued in the window, by language.
    pub by_language: BTreeMap<String, u64>,
    /// Finished in the window, by `verdict.kind` (`none`: dead-lettered without a verdict).
    pub by_verdict: BTreeMap<String, u64>,
    /// Finished in the window.
    pub finished: u64,
    /// Wall time of finished executions.
    pub duration_ms: PercentilesResponse,
    /// `started_at − queued_at` of finished executions.
    pub queue_wait_ms: PercentilesResponse,
    /// How many rows the percentiles were computed over.
    pub sampling: SamplingResponse,
    /// Finished per bucket.
    pub throughput: ThroughputResponse,
    /// The queue now.
    pub queue: QueueNowResponse,
}

/// One point of the sampled timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResourceSampleResponse {
    /// Milliseconds since the program started.
    pub t_ms: u64,
    /// Memory in use at that moment.
    pub memory_bytes: u64,
    /// CPU time (user + system) consumed so far.
    pub cpu_ms: u64,
}

/// `GET /api/v1/executions/{id}/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExecutionMetricsResponse {
    /// The execution.
    pub execution_id: uuid::Uuid,
    /// Its status (measurements are `null` until it finished).
    pub status: crate::ExecutionStatusDto,
    /// Wall time of the program.
    pub wall_time_ms: Option<u64>,
    /// CPU time (user + system).
    pub cpu_time_ms: Option<u64>,
    /// Peak memory.
    pub peak_memory_bytes: Option<u64>,
    /// `started_at − queued_at`, once it started.
    pub queue_wait_ms: Option<u64>,
    /// Memory/CPU timeline sampled while it ran (empty for short runs, unfinished runs, or
    /// when the sandbox could not measure).
    pub samples: Vec<ResourceSampleResponse>,
}
