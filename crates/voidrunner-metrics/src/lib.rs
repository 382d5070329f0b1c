//! Prometheus metrics of a VoidRunner process: one [`Metrics`] registry, cheap to clone,
//! shared by the HTTP API (requests by route template) and the worker pool (executions by
//! language and verdict), rendered in the text exposition format 0.0.4 by [`Metrics::render`].
//!
//! Labels are bounded by construction: route templates (`/api/v1/executions/{id}`, never a
//! raw path), HTTP methods, status codes, language names and verdict kinds. No ids, tokens,
//! user data or error texts ever become label values.
//!
//! The registry is hand-rolled (a few mutex-guarded maps) rather than a client library: the
//! set of metrics is small and fixed, and this keeps the output exactly the 0.0.4 text format.

mod family;
mod hooks;
mod logs;
mod process;
mod retention;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod text;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use voidrunner_domain::{Execution, Verdict};

use crate::family::{CounterFamily, HistogramFamily};
use crate::text::Writer;

/// `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Route label of requests that matched no route (404s of unknown paths), so unknown paths
/// cannot create series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const RUN_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
const WAIT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
];

/// Worker slots of one pool, read at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerGauges {
    /// Slots running an execution now.
    pub busy: u64,
    /// Slots of the pool.
    pub total: u64,
}

/// Queue depth as the store reports it (cluster-wide on PostgreSQL), read at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Executions waiting to be claimed.
    pub queued: u64,
    /// Executions claimed and running.
    pub running: u64,
    /// Dead-lettered executions not requeued.
    pub dead_lettered: u64,
}

/// A source of worker gauges; `None` once its pool is gone (the source is then dropped).
type WorkerSource = Box<dyn Fn() -> Option<WorkerGauges> + Send + Sync>;

/// The metrics registry of one process. Clones share the same series.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    started: Instant,
    http_requests: CounterFamily<3>,
    http_duration: HistogramFamily<2>,
    executions: CounterFamily<2>,
    execution_duration: HistogramFamily<1>,
    queue_wait: HistogramFamily<1>,
    overhead: HistogramFamily<1>,
    releases: CounterFamily<1>,
    webhooks: CounterFamily<1>,
    workers: Mutex<Vec<WorkerSource>>,
    /// Log archiver and retention counters (see `logs.rs`).
    logs: logs::LogCounters,
    /// CI retention counter (see `retention.rs`).
    retention: retention::RetentionCounters,
    /// Commit-status reconciler and git mirror cleaner (see `hooks.rs`).
    hooks: hooks::HookCounters,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// An empty registry; uptime counts from now.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                started: Instant::now(),
                http_requests: CounterFamily::new(["method", "route", "status"]),
                http_duration: HistogramFamily::new(["method", "route"], HTTP_BUCKETS),
                executions: CounterFamily::new(["language", "verdict"]),
                execution_duration: HistogramFamily::new(["language"], RUN_BUCKETS),
                queue_wait: HistogramFamily::new(["language"], WAIT_BUCKETS),
                overhead: HistogramFamily::new(["language"], RUN_BUCKETS),
                releases: CounterFamily::new(["outcome"]),
                webhooks: CounterFamily::new(["outcome"]),
                workers: Mutex::new(Vec::new()),
                logs: logs::LogCounters::new(),
                retention: retention::RetentionCounters::new(),
                hooks: hooks::HookCounters::new(),
            }),
        }
    }

    /// Counts one HTTP request. `route` must be the matched route template (or
    /// [`UNMATCHED_ROUTE`]), never the raw path; unusual methods are counted as `OTHER`.
    pub fn record_http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let method = match method {
            "GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS" => method,
            _ => "OTHER",
        };
        let status = status.to_string();
        let i = &self.inner;
        i.http_requests.inc([method, route, &status]);
        i.http_duration.observe([method, route], elapsed);
    }

    /// Counts an execution whose result was just recorded (the row the store returned), with
    /// its program wall time, its queue wait (enqueue to claim) and the claim-to-finish time
    /// not spent in the program's deciding phase (sandbox setup, compile, teardown, output
    /// flush).
    pub fn record_execution(&self, row: &Execution) {
        let verdict = row.verdict.as_ref().map_or("none", verdict_kind);
        let language = row.language.as_str();
        let i = &self.inner;
        i.executions.inc([language, verdict]);
        let wall = row.wall_time_ms.map(Duration::from_millis);
        if let Some(wall) = wall {
            i.execution_duration.observe([language], wall);
        }
        if let Some(started) = row.started_at {
            if let Ok(wait) = (started - row.created_at).to_std() {
                i.queue_wait.observe([language], wait);
            }
            if let Some(finished) = row.finished_at
                && let Ok(busy) = (finished - started).to_std()
            {
                let overhead = busy.saturating_sub(wall.unwrap_or_default());
                i.overhead.observe([language], overhead);
            }
        }
    }

    /// Counts an execution a worker gave back instead of recording a result: `retried`,
    /// `dead_lettered`, `cancelled`, `shutdown` or `lease_lost` (a fixed set; callers pass
    /// one of these).
    pub fn record_release(&self, outcome: &'static str) {
        self.inner.releases.inc([outcome]);
    }

    /// Counts one webhook delivery attempt by outcome: `delivered`, `retried`, `failed` or
    /// `refused` (a fixed set; callers pass one of these).
    pub fn record_webhook(&self, outcome: &'static str) {
        self.inner.webhooks.inc([outcome]);
    }

    /// Adds a worker pool whose slot gauges are read at each scrape (summed over pools). The
    /// source returns `None` once its pool is gone; it is then forgotten.
    pub fn add_worker_source(
        &self,
        source: impl Fn() -> Option<WorkerGauges> + Send + Sync + 'static,
    ) {
        if let Ok(mut w) = self.inner.workers.lock() {
            w.push(Box::new(source));
        }
    }

    /// The exposition text (format 0.0.4). `queue` is what the store reported at this scrape,
    /// `None` when it could not be read (then `voidrunner_queue_stats_up` is 0).
    pub fn render(&self, queue: Option<QueueDepth>) -> String {
        let i = &self.inner;
        let mut w = Writer::default();
        i.http_requests.write(
            &mut w,
            "voidrunner_http_requests_total",
            "HTTP requests by method, matched route template and status code.",
        );
        i.http_duration.write(
            &mut w,
            "voidrunner_http_request_duration_seconds",
            "Time to the response head by method and route template (streams end later).",
        );
        i.executions.write(
            &mut w,
            "voidrunner_executions_finished_total",
            "Execution results recorded by this process's workers, by language and verdict kind.",
        );
        i.execution_duration.write(
            &mut w,
            "voidrunner_execution_duration_seconds",
            "Wall time of the program's deciding phase, by language.",
        );
        i.queue_wait.write(
            &mut w,
            "voidrunner_execution_queue_wait_seconds",
            "Time from enqueue to the (last) claim, by language.",
        );
        i.overhead.write(
            &mut w,
            "voidrunner_execution_overhead_seconds",
            "Claim-to-finish time outside the program's deciding phase (sandbox setup, compile, teardown, output flush), by language.",
        );
        i.releases.write(
            &mut w,
            "voidrunner_execution_releases_total",
            "Executions this process's workers gave back without a result, by outcome (retried, dead_lettered, cancelled, shutdown, lease_lost).",
        );
        i.webhooks.write(
            &mut w,
            "voidrunner_webhook_deliveries_total",
            "Webhook delivery attempts made by this process, by outcome (delivered, retried, failed, refused).",
        );
        let workers = self.workers();
        w.gauge(
            "voidrunner_workers_busy",
            "Worker slots of this process running an execution.",
            workers.busy as f64,
        );
        w.gauge(
            "voidrunner_workers_total",
            "Worker slots of this process.",
            workers.total as f64,
        );
        i.logs.write(&mut w);
        i.retention.write(&mut w);
        i.hooks.write(&mut w);
        write_queue(&mut w, queue);
        write_process(&mut w, i.started.elapsed());
        w.finish()
    }

    fn workers(&self) -> WorkerGauges {
        let mut sum = WorkerGauges::default();
        if let Ok(mut sources) = self.inner.workers.lock() {
            sources.retain(|source| match source() {
                Some(g) => {
                    sum.busy += g.busy;
                    sum.total += g.total;
                    true
                }
                None => false,
            });
        }
        sum
    }
}

fn write_queue(w: &mut Writer, queue: Option<QueueDepth>) {
    w.gauge(
        "voidrunner_queue_stats_up",
        "1 when the store answered the queue statistics query at this scrape.",
        if queue.is_some() { 1.0 } else { 0.0 },
    );
    let Some(q) = queue else { return };
    let name = "voidrunner_queue_executions";
    w.header(
        name,
        "Executions in the queue by status (whole cluster).",
        "gauge",
    );
    w.sample(name, &[("status", "queued".to_owned())], q.queued as f64);
    w.sample(name, &[("status", "running".to_owned())], q.running as f64);
    w.gauge(
        "voidrunner_dead_letter_executions",
        "Dead-lettered executions not requeued (whole cluster).",
        q.dead_lettered as f64,
    );
}

fn write_process(w: &mut Writer, uptime: Duration) {
    let p = process::sample();
    w.gauge(
        "voidrunner_uptime_seconds",
        "Seconds since the metrics registry (the process) started.",
        uptime.as_secs_f64(),
    );
    let optional = [
        (
            "process_resident_memory_bytes",
            "Resident memory of this process.",
            p.resident_bytes,
        ),
        (
            "process_open_fds",
            "Open file descriptors of this process.",
            p.open_fds,
        ),
        ("process_threads", "Threads of this process.", p.threads),
    ];
    for (name, help, value) in optional {
        if let Some(v) = value {
            w.gauge(name, help, v as f64);
        }
    }
}

/// The verdict's kind as a label value (`exited_ok`, `exited_error`, `timeout`, …): bounded,
/// never the exit code, signal number or sandbox error text.
pub fn verdict_kind(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Exited { code: 0 } => "exited_ok",
        Verdict::Exited { .. } => "exited_error",
        Verdict::Signaled { .. } => "signaled",
        Verdict::Timeout => "timeout",
        Verdict::CpuLimit => "cpu_limit",
        Verdict::MemoryLimit => "memory_limit",
        Verdict::OutputLimit => "output_limit",
        Verdict::Cancelled => "cancelled",
        Verdict::CompileError { .. } => "compile_error",
        Verdict::SandboxError { .. } => "sandbox_error",
    }
}

#[cfg(test)]
mod tests;
