//! Aggregates for dashboards (`GET /api/v1/stats`) and per-execution resource timelines.
//!
//! Counting and bucketing happen in SQL (exact over the whole window). Percentiles are
//! computed here, in Rust, over the durations of the newest finished executions of the window
//! (at most [`StatsRequest::max_samples`]), so both backends answer the same numbers and
//! SQLite needs no percentile function; [`ExecutionStats::samples_capped`] says when the cap
//! cut the sample.

use std::collections::BTreeMap;

use voidrunner_domain::{ExecutionId, ExecutionStatus, ResourceSample, Timestamp};

use crate::{Scope, StoreResult};

/// What to aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsRequest {
    /// Whose executions: one owner's, or everybody's (admins).
    pub scope: Scope,
    /// Window start (inclusive).
    pub since: Timestamp,
    /// Window end (inclusive), normally now.
    pub until: Timestamp,
    /// Number of equal throughput buckets over `[since, until]` (≥ 1).
    pub buckets: u32,
    /// Most finished executions whose durations are read for percentiles (newest first).
    pub max_samples: u32,
}

/// Nearest-rank percentiles of a set of durations, in milliseconds; all `None` when empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Percentiles {
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

impl Percentiles {
    /// Nearest-rank percentiles (the smallest value with at least p% of the values at or
    /// below it). Sorts `values` in place. Pure so it is table-tested.
    pub fn of(values: &mut [u64]) -> Self {
        values.sort_unstable();
        let n = values.len();
        let rank = |p: usize| -> Option<u64> {
            if n == 0 {
                return None;
            }
            let r = (p * n).div_ceil(100).clamp(1, n);
            values.get(r - 1).copied()
        };
        Self {
            count: n as u64,
            p50: rank(50),
            p95: rank(95),
            p99: rank(99),
            max: values.last().copied(),
        }
    }
}

/// One throughput bucket: executions that finished in `[start, start + width)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThroughputBucket {
    /// Bucket start.
    pub start: Timestamp,
    /// Executions finished in the bucket.
    pub finished: u64,
}

/// Aggregate over a window, for one scope.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionStats {
    /// Executions enqueued in the window, by current status (every status present, maybe 0).
    pub by_status: Vec<(ExecutionStatus, u64)>,
    /// Executions enqueued in the window, by language.
    pub by_language: BTreeMap<String, u64>,
    /// Executions finished in the window, by verdict kind (`exited`, `timeout`, …); finished
    /// rows without a verdict (dead-lettered) count as `none`.
    pub by_verdict: BTreeMap<String, u64>,
    /// Executions finished in the window.
    pub finished: u64,
    /// Wall time of the sampled finished executions that have one.
    pub duration_ms: Percentiles,
    /// Queue wait (`started_at − created_at`) of the sampled finished executions that ran.
    pub queue_wait_ms: Percentiles,
    /// Finished executions whose durations were read (≤ `max_samples`).
    pub samples: u64,
    /// More executions finished in the window than `max_samples`: percentiles describe the
    /// newest `samples` of them.
    pub samples_capped: bool,
    /// Width of each throughput bucket.
    pub bucket_width: std::time::Duration,
    /// `buckets` buckets covering the window, oldest first.
    pub throughput: Vec<ThroughputBucket>,
    /// Executions of the scope waiting now (whatever their age).
    pub queued_now: u64,
    /// Executions of the scope running now.
    pub running_now: u64,
    /// Dead-lettered executions of the scope not requeued.
    pub dead_lettered: u64,
}

/// Raw window rows a backend reads; [`ExecutionStats::assemble`] turns them into the aggregate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsRows {
    /// `(status, count)` of executions enqueued in the window.
    pub status_counts: Vec<(String, u64)>,
    /// `(language, count)` of executions enqueued in the window.
    pub language_counts: Vec<(String, u64)>,
    /// `(verdict kind or None, count)` of executions finished in the window.
    pub verdict_counts: Vec<(Option<String>, u64)>,
    /// `(bucket index, count)` of executions finished in the window.
    pub bucket_counts: Vec<(i64, u64)>,
    /// `(wall_time_ms, queue wait in microseconds)` of the newest finished executions, at
    /// most `max_samples + 1` rows (one more tells that the cap was hit).
    pub samples: Vec<(Option<i64>, Option<i64>)>,
    /// Queued now, running now, dead-lettered (scope only, any age).
    pub queued_now: u64,
    /// See `queued_now`.
    pub running_now: u64,
    /// See `queued_now`.
    pub dead_lettered: u64,
}

impl StatsRequest {
    /// Width of one bucket in microseconds (≥ 1), used by the backends' bucketing query.
    pub fn bucket_width_micros(&self) -> i64 {
        let span = (self.until - self.since)
            .num_microseconds()
            .unwrap_or(i64::MAX);
        (span / i64::from(self.buckets.max(1))).max(1)
    }
}

impl ExecutionStats {
    /// Builds the aggregate from what a backend read. Pure, shared by every backend.
    pub fn assemble(req: &StatsRequest, rows: StatsRows) -> Self {
        let by_status = ExecutionStatus::ALL
            .into_iter()
            .map(|s| {
                let n = rows
                    .status_counts
                    .iter()
                    .filter(|(name, _)| name == s.as_str())
                    .map(|(_, n)| n)
                    .sum();
                (s, n)
            })
            .collect();
        let by_language = rows.language_counts.into_iter().collect();
        let mut by_verdict = BTreeMap::new();
        let mut finished = 0;
        for (kind, n) in rows.verdict_counts {
            *by_verdict
                .entry(kind.unwrap_or_else(|| "none".to_owned()))
                .or_insert(0) += n;
            finished += n;
        }
        let cap = req.max_samples as usize;
        let samples_capped = rows.samples.len() > cap;
        let sampled = &rows.samples[..rows.samples.len().min(cap)];
        let non_negative = |v: i64| u64::try_from(v).ok();
        let mut walls: Vec<u64> = sampled
            .iter()
            .filter_map(|(w, _)| w.and_then(non_negative))
            .collect();
        let mut waits: Vec<u64> = sampled
            .iter()
            .filter_map(|(_, q)| q.and_then(non_negative).map(|us| us / 1000))
            .collect();
        let width = req.bucket_width_micros();
        let buckets = i64::from(req.buckets.max(1));
        let throughput = (0..buckets)
            .map(|i| ThroughputBucket {
                start: req.since + chrono::Duration::microseconds(width.saturating_mul(i)),
                finished: rows
                    .bucket_counts
                    .iter()
                    // The last instant of the window falls into the last bucket.
                    .filter(|(b, _)| (*b).min(buckets - 1) == i)
                    .map(|(_, n)| n)
                    .sum(),
            })
            .collect();
        Self {
            by_status,
            by_language,
            by_verdict,
            finished,
            duration_ms: Percentiles::of(&mut walls),
            queue_wait_ms: Percentiles::of(&mut waits),
            samples: sampled.len() as u64,
            samples_capped,
            bucket_width: std::time::Duration::from_micros(width.unsigned_abs()),
            throughput,
            queued_now: rows.queued_now,
            running_now: rows.running_now,
            dead_lettered: rows.dead_lettered,
        }
    }
}

/// Dashboard statistics and resource samples.
#[async_trait::async_trait]
pub trait StatsStore {
    /// The aggregate of the scope's executions over `[since, until]` (see [`ExecutionStats`]).
    async fn execution_stats(&self, req: &StatsRequest) -> StoreResult<ExecutionStats>;

    /// The memory/CPU timeline recorded with an execution's result (empty when none was
    /// sampled or it has not finished); `NotFound` when missing or out of scope.
    async fn resource_samples(
        &self,
        scope: Scope,
        id: ExecutionId,
    ) -> StoreResult<Vec<ResourceSample>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        let p = Percentiles::of(&mut v);
        assert_eq!(
            (p.count, p.p50, p.p95, p.p99, p.max),
            (100, Some(50), Some(95), Some(99), Some(100))
        );
        let mut one = [7];
        let p = Percentiles::of(&mut one);
        assert_eq!((p.p50, p.p95, p.p99), (Some(7), Some(7), Some(7)));
        let mut ten: Vec<u64> = (1..=10).map(|x| x * 10).collect();
        let p = Percentiles::of(&mut ten);
        assert_eq!((p.p50, p.p95, p.p99), (Some(50), Some(100), Some(100)));
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
    }

    #[test]
    fn assemble_fills_buckets_and_caps_samples() {
        let since = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let req = StatsRequest {
            scope: Scope::All,
            since,
            until: since + chrono::Duration::seconds(60),
            buckets: 6,
            max_samples: 2,
        };
        let rows = StatsRows {
            status_counts: vec![("completed".into(), 3), ("queued".into(), 1)],
            verdict_counts: vec![(Some("exited".into()), 2), (None, 1)],
            bucket_counts: vec![(0, 1), (5, 1), (6, 1)],
            samples: vec![
                (Some(10), Some(5_000)),
                (Some(30), None),
                (Some(20), Some(1)),
            ],
            ..StatsRows::default()
        };
        let s = ExecutionStats::assemble(&req, rows);
        assert_eq!(s.by_status[0], (ExecutionStatus::Queued, 1));
        assert_eq!(s.by_status[1], (ExecutionStatus::Running, 0));
        assert_eq!(s.by_status[2], (ExecutionStatus::Completed, 3));
        assert_eq!(s.finished, 3);
        assert_eq!(s.by_verdict["none"], 1);
        assert_eq!(s.bucket_width, std::time::Duration::from_secs(10));
        let counts: Vec<u64> = s.throughput.iter().map(|b| b.finished).collect();
        assert_eq!(counts, [1, 0, 0, 0, 0, 2]);
        assert_eq!(s.throughput[1].start, since + chrono::Duration::seconds(10));
        assert!(s.samples_capped);
        assert_eq!(s.samples, 2);
        assert_eq!(s.duration_ms.max, Some(30));
        assert_eq!(s.queue_wait_ms.count, 1);
        assert_eq!(s.queue_wait_ms.p50, Some(5));
    }
}
