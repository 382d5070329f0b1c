//! Executions and the durable queue: enqueue, claim with a lease, heartbeat, complete exactly
//! once, release/retry, reap expired leases, dead letter, cancel, and wake-up signals.
//!
//! Protocol (every backend):
//! - `enqueue_execution` inserts the row `queued` and sets the task's `last_execution_status`
//!   in ONE transaction, then signals waiting workers ([`QueueSignals::notify_work`]; on
//!   PostgreSQL also `NOTIFY` so other processes wake up).
//! - `claim_next` picks the claimable row (`queued`, `run_after <= now`, owner under the
//!   per-user running quota) with the highest priority, then oldest `created_at`, then lowest
//!   id; sets `running`, `lease_owner = worker_id`, `worker_id`, `lease_until`, `attempt + 1`,
//!   `started_at`. PostgreSQL uses `FOR UPDATE SKIP LOCKED`; SQLite `BEGIN IMMEDIATE`.
//! - A [`Lease`] (execution id + worker id + attempt) is the fencing token: `heartbeat`,
//!   `complete_execution` and `release_execution` change the row only while it is `running`
//!   with that exact owner and attempt. A stale worker gets [`CompleteOutcome::LeaseLost`] and
//!   changes nothing, so an execution completes exactly once.
//! - Program failures are results (`complete_execution`); only infrastructure failures are
//!   released for retry, and after `max_attempts` claims the row is dead-lettered
//!   (`status = failed`, verdict `sandbox_error`, `dead_lettered_at`, `last_error`).
//! - A running execution with a pending cancel request that comes back without a result
//!   (released, or its lease expired) is finished `cancelled` ([`ReleaseOutcome::Cancelled`]),
//!   never run again.
//! - Every status change sets the task's `last_execution_status` in the same transaction when
//!   the execution is the task's newest, so the task shows its latest run.

use std::time::Duration;

use voidrunner_domain::{
    Execution, ExecutionId, ResourceLimits, TaskId, Timestamp, UserId, Verdict,
};

use crate::{Scope, StoreResult};

/// An execution to enqueue. The snapshot (language … limits) is what will run, whatever
/// happens to the task afterwards.
#[derive(Debug, Clone)]
pub struct NewExecution {
    /// New id.
    pub id: ExecutionId,
    /// The task it belongs to (must be a live task of `owner_id`, else `NotFound`), or
    /// `None` for a one-shot run.
    pub task_id: Option<TaskId>,
    /// Owner.
    pub owner_id: UserId,
    /// 0–10.
    pub priority: u8,
    /// Language registry name.
    pub language: String,
    /// Code.
    pub code: String,
    /// Stdin.
    pub stdin: Option<String>,
    /// Environment.
    pub env: std::collections::BTreeMap<String, String>,
    /// Resolved limits.
    pub limits: ResourceLimits,
    /// Keep stdin open for input sent while it runs (see [`crate::InputStore`]).
    pub interactive: bool,
    /// Webhook target for the final result (already validated by the API).
    pub callback_url: Option<String>,
    /// Request id of the enqueuing API call.
    pub request_id: Option<String>,
    /// Claims allowed before dead-lettering (≥ 1).
    pub max_attempts: u32,
    /// Enqueue time (from [`crate::now`]); also the initial `run_after`.
    pub created_at: Timestamp,
}

/// Keyset position in a newest-first execution listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionCursor {
    /// `created_at` of the last row of the previous page.
    pub created_at: Timestamp,
    /// `id` of the last row of the previous page.
    pub id: ExecutionId,
}

/// One page of executions, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionPage {
    /// Rows, at most the requested limit.
    pub items: Vec<Execution>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<ExecutionCursor>,
}

/// What a worker asks for when it claims.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// Stable id of the claiming worker (node id + slot), recorded on the row.
    pub worker_id: String,
    /// Claim time.
    pub now: Timestamp,
    /// Lease length; the lease must be heartbeated before it runs out.
    pub lease: Duration,
    /// At most this many `running` executions per owner across the whole cluster;
    /// `None` = no quota.
    pub per_user_running_limit: Option<u32>,
}

/// The fencing token of one claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The claimed execution.
    pub execution_id: ExecutionId,
    /// The worker holding it.
    pub worker_id: String,
    /// The attempt number the claim produced.
    pub attempt: u32,
}

impl Lease {
    /// The lease a claim returned.
    pub fn of(execution: &Execution) -> Option<Lease> {
        Some(Lease {
            execution_id: execution.id,
            worker_id: execution.lease_owner.clone()?,
            attempt: execution.attempt,
        })
    }
}

/// Heartbeat answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStatus {
    /// Still ours; `cancel_requested` tells the worker to kill the program.
    Held {
        /// A user asked to cancel.
        cancel_requested: bool,
    },
    /// Expired and re-queued, cancelled, or completed by someone else: stop and drop it.
    Lost,
}

/// The result of a run, recorded once.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionResult {
    /// How it ended; never `SandboxError` (that is a release, not a result).
    pub verdict: Verdict,
    /// Exit code when it exited.
    pub exit_code: Option<i32>,
    /// Signal when it was killed by one.
    pub signal: Option<i32>,
    /// Captured stdout (already capped).
    pub stdout: String,
    /// Captured stderr (already capped).
    pub stderr: String,
    /// Compiler output, compiled languages only.
    pub compile_output: Option<String>,
    /// Output was cut at the limit.
    pub output_truncated: bool,
    /// Wall time.
    pub wall_time_ms: u64,
    /// CPU time (user + system).
    pub cpu_time_ms: u64,
    /// Peak memory, when the sandbox could measure it.
    pub peak_memory_bytes: Option<u64>,
    /// Memory/CPU timeline of the run phase (empty for short runs or when not measurable).
    pub resource_samples: Vec<voidrunner_domain::ResourceSample>,
    /// Completion time.
    pub finished_at: Timestamp,
}

/// `complete_execution` answer.
#[derive(Debug, Clone, PartialEq)]
pub enum CompleteOutcome {
    /// Recorded; the final row.
    Completed(Box<Execution>),
    /// The lease was no longer held: nothing was written.
    LeaseLost,
}

/// Why a worker gives an execution back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseReason {
    /// The worker is shutting down (drain): re-queue at once; the attempt does not count
    /// towards `max_attempts`.
    Shutdown,
    /// Infrastructure failure (sandbox error, executor crash): counts as an attempt; retried
    /// at `retry_at`, or dead-lettered when attempts are used up.
    Failure {
        /// Operator-facing reason, recorded as `last_error`.
        error: String,
        /// Earliest retry time (backoff with jitter, see [`backoff`]).
        retry_at: Timestamp,
    },
}

/// `release_execution` / reaper answer for one execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// Back in the queue.
    Requeued,
    /// Attempts used up: dead-lettered.
    DeadLettered,
    /// A user had asked to cancel it: finished as `cancelled` instead of running again.
    Cancelled,
    /// The lease was no longer held: nothing was written.
    LeaseLost,
}

/// Counts for dashboards and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Executions waiting.
    pub queued: u64,
    /// Executions running.
    pub running: u64,
    /// Dead-lettered executions not requeued.
    pub dead_lettered: u64,
}

/// Executions and the durable queue.
#[async_trait::async_trait]
pub trait ExecutionStore {
    /// Inserts a `queued` execution, sets the task's `last_execution_status` in the same
    /// transaction, and signals workers. `NotFound` when `task_id` is not a live task of the
    /// owner.
    async fn enqueue_execution(&self, new: NewExecution) -> StoreResult<Execution>;
    /// Gets an execution within scope; `NotFound` otherwise.
    async fn get_execution(&self, scope: Scope, id: ExecutionId) -> StoreResult<Execution>;
    /// The sealed secrets copied from its task when the execution was enqueued (name → sealed
    /// value); empty for an execution without a task or a task without secrets. For the
    /// worker that runs it, never for an API response.
    async fn execution_secrets(
        &self,
        id: ExecutionId,
    ) -> StoreResult<std::collections::BTreeMap<String, Vec<u8>>>;
    /// A task's executions, newest first; `NotFound` when the task is missing/out of scope.
    async fn list_task_executions(
        &self,
        scope: Scope,
        task_id: TaskId,
        after: Option<ExecutionCursor>,
        limit: u32,
    ) -> StoreResult<ExecutionPage>;
    /// Claims the next claimable execution (see the module docs), or `Ok(None)`.
    async fn claim_next(&self, req: &ClaimRequest) -> StoreResult<Option<Execution>>;
    /// Extends the lease to `lease_until` if still held.
    async fn heartbeat(&self, lease: &Lease, lease_until: Timestamp) -> StoreResult<LeaseStatus>;
    /// Records the result if the lease is still held: status from `verdict.status()`, result
    /// fields, `finished_at`, lease cleared, task's `last_execution_status` updated — one
    /// transaction.
    async fn complete_execution(
        &self,
        lease: &Lease,
        result: ExecutionResult,
    ) -> StoreResult<CompleteOutcome>;
    /// Gives a claimed execution back (see [`ReleaseReason`]) if the lease is still held.
    async fn release_execution(
        &self,
        lease: &Lease,
        reason: ReleaseReason,
        now: Timestamp,
    ) -> StoreResult<ReleaseOutcome>;
    /// Re-queues (or dead-letters, when attempts are used up) every `running` execution whose
    /// lease expired before `now`; `retry_at(attempt)` gives each one's earliest retry time.
    /// Signals workers when something was re-queued.
    async fn reap_expired_leases(
        &self,
        now: Timestamp,
        retry_at: &(dyn Fn(u32) -> Timestamp + Send + Sync),
    ) -> StoreResult<Vec<(ExecutionId, ReleaseOutcome)>>;
    /// Cancels: a `queued` execution becomes `cancelled` at once (verdict `cancelled`) and
    /// never runs; a `running` one gets `cancel_requested_at` and a cancel signal to the
    /// worker running it (on PostgreSQL through `NOTIFY`, so any node sees it). `Conflict`
    /// when it already finished; `NotFound` when missing/out of scope. Returns the row.
    async fn request_cancel(
        &self,
        scope: Scope,
        id: ExecutionId,
        now: Timestamp,
    ) -> StoreResult<Execution>;
    /// Dead-lettered executions, newest first (admins).
    async fn list_dead_letters(
        &self,
        after: Option<ExecutionCursor>,
        limit: u32,
    ) -> StoreResult<ExecutionPage>;
    /// Puts a dead-lettered execution back in the queue with its attempts reset; `NotFound`
    /// when it is not dead-lettered.
    async fn requeue_dead_letter(&self, id: ExecutionId, now: Timestamp) -> StoreResult<Execution>;
    /// Queue depth for dashboards.
    async fn queue_stats(&self) -> StoreResult<QueueStats>;
    /// Wake-up and cancel signals of this store (cluster-wide on PostgreSQL).
    fn queue_signals(&self) -> &QueueSignals;
}

/// In-process fan-out of queue events. Backends own one and feed it: on enqueue/requeue
/// (`notify_work`), cancel requests (`notify_cancel`) and terminal statuses
/// (`notify_finished`). The PostgreSQL backend also feeds
/// it from `LISTEN`, so events from other processes arrive here too.
///
/// Workers follow "subscribe, then poll, then wait": take a `work` receiver, mark it seen,
/// try `claim_next`, and only when that finds nothing wait on `changed()` with a polling
/// timeout as fallback. No notification can be missed between the poll and the wait.
#[derive(Debug)]
pub struct QueueSignals {
    work: tokio::sync::watch::Sender<u64>,
    cancel: tokio::sync::broadcast::Sender<ExecutionId>,
    finished: tokio::sync::broadcast::Sender<ExecutionId>,
    logs: tokio::sync::broadcast::Sender<crate::LogSignal>,
    input: tokio::sync::broadcast::Sender<ExecutionId>,
    jobs: tokio::sync::broadcast::Sender<crate::JobSignal>,
}

impl Default for QueueSignals {
    fn default() -> Self {
        Self::new()
    }
}

impl QueueSignals {
    /// A hub with no subscribers.
    pub fn new() -> Self {
        let (work, _) = tokio::sync::watch::channel(0);
        let (cancel, _) = tokio::sync::broadcast::channel(1024);
        let (finished, _) = tokio::sync::broadcast::channel(4096);
        let (logs, _) = tokio::sync::broadcast::channel(4096);
        let (input, _) = tokio::sync::broadcast::channel(1024);
        let (jobs, _) = tokio::sync::broadcast::channel(4096);
        Self {
            work,
            cancel,
            finished,
            logs,
            input,
            jobs,
        }
    }

    /// A CI job was cancel-requested, finished, or got events (see [`crate::JobStore`]).
    /// Never blocks: slow receivers lag and re-read the store.
    pub fn notify_job(&self, signal: crate::JobSignal) {
        let _ = self.jobs.send(signal);
    }

    /// Receiver for job signals. Take it BEFORE reading what it follows; a lagging receiver
    /// must re-read (job workers also see cancel requests through heartbeats).
    pub fn subscribe_jobs(&self) -> tokio::sync::broadcast::Receiver<crate::JobSignal> {
        self.jobs.subscribe()
    }

    /// An execution reached a terminal status (completed, cancelled while queued,
    /// dead-lettered). Waiters (`?wait=true`, streams) re-read the row.
    pub fn notify_finished(&self, id: ExecutionId) {
        let _ = self.finished.send(id);
    }

    /// Receiver for finished signals. A lagging receiver must re-read the rows it waits for.
    pub fn subscribe_finished(&self) -> tokio::sync::broadcast::Receiver<ExecutionId> {
        self.finished.subscribe()
    }

    /// Events up to `last_seq` of an execution's log are committed (see [`crate::LogStore`]).
    /// Never blocks: a full channel makes slow receivers lag, and they re-read the store.
    pub fn notify_log(&self, execution_id: ExecutionId, last_seq: u64) {
        let _ = self.logs.send(crate::LogSignal {
            execution_id,
            last_seq,
        });
    }

    /// Receiver for log signals. Take it BEFORE reading the log; a lagging receiver must
    /// re-read the logs it follows.
    pub fn subscribe_logs(&self) -> tokio::sync::broadcast::Receiver<crate::LogSignal> {
        self.logs.subscribe()
    }

    /// Stdin was appended to an interactive execution (see [`crate::InputStore`]).
    pub fn notify_input(&self, id: ExecutionId) {
        let _ = self.input.send(id);
    }

    /// Receiver for input signals. Take it BEFORE reading the input; a lagging receiver must
    /// re-read the input of what it follows.
    pub fn subscribe_input(&self) -> tokio::sync::broadcast::Receiver<ExecutionId> {
        self.input.subscribe()
    }

    /// New work may be claimable.
    pub fn notify_work(&self) {
        self.work.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A running execution should be cancelled by whoever runs it.
    pub fn notify_cancel(&self, id: ExecutionId) {
        let _ = self.cancel.send(id);
    }

    /// Receiver for work signals (see the type docs for the wait protocol).
    pub fn subscribe_work(&self) -> tokio::sync::watch::Receiver<u64> {
        self.work.subscribe()
    }

    /// Receiver for cancel signals. A lagging receiver must fall back to heartbeats, which
    /// also report cancel requests.
    pub fn subscribe_cancels(&self) -> tokio::sync::broadcast::Receiver<ExecutionId> {
        self.cancel.subscribe()
    }
}

/// Retry backoff policy for infrastructure failures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub base: Duration,
    /// Upper bound of the delay.
    pub max: Duration,
    /// Fraction of the delay randomised (0.0–1.0): "full jitter" at 1.0.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
            jitter: 0.5,
        }
    }
}

/// Exponential backoff with jitter: `min(max, base * 2^(attempt-1))`, of which a `jitter`
/// fraction is scaled by `random01` (a number in [0, 1)). Pure so it is table-tested.
pub fn backoff(policy: &RetryPolicy, attempt: u32, random01: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let raw = policy.base.saturating_mul(1u32 << exp).min(policy.max);
    let jitter = policy.jitter.clamp(0.0, 1.0);
    let fixed = raw.mul_f64(1.0 - jitter);
    fixed + raw.mul_f64(jitter * random01.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let p = RetryPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: 0.0,
        };
        assert_eq!(backoff(&p, 1, 0.7), Duration::from_millis(100));
        assert_eq!(backoff(&p, 2, 0.7), Duration::from_millis(200));
        assert_eq!(backoff(&p, 4, 0.7), Duration::from_millis(800));
        assert_eq!(backoff(&p, 5, 0.7), Duration::from_secs(1));
        assert_eq!(backoff(&p, 1000, 0.7), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_the_band() {
        let p = RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
            jitter: 0.5,
        };
        assert_eq!(backoff(&p, 1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(&p, 1, 1.0), Duration::from_secs(1));
        let mid = backoff(&p, 1, 0.5);
        assert!(mid > Duration::from_millis(500) && mid < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn work_signal_seen_after_subscribe_is_not_lost() {
        let hub = QueueSignals::new();
        let mut rx = hub.subscribe_work();
        rx.borrow_and_update();
        hub.notify_work();
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .expect("signal arrives")
            .expect("sender alive");
    }
}
