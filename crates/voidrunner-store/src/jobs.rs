//! CI jobs run by the server (see `docs/JOBS.md`): the durable job queue, per-step state, the
//! job's event log, its sealed secrets and its artifacts.
//!
//! Protocol (every backend), modelled on the execution queue ([`crate::ExecutionStore`]):
//! - `create_job` inserts the job `queued`, one `pending` row per step of the definition, the
//!   sealed secrets and the first `status` event in ONE transaction, then signals work.
//! - `claim_next_job` takes the `queued` job with `run_after <= now` of highest priority, then
//!   oldest `created_at`, then lowest id, and sets it `running` with `attempt + 1`, the lease
//!   and `started_at` (PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite `BEGIN IMMEDIATE`).
//!   With a per-user limit, jobs of an owner who already has that many `running` jobs are
//!   passed over (cluster-wide: PostgreSQL re-counts under a per-owner advisory lock, SQLite
//!   has one writer), so one user's burst cannot hold every worker.
//! - A [`JobLease`] (job id + worker id + attempt) is the fencing token of every worker write
//!   (heartbeat, step updates, events, artifacts, complete, release): the row must still be
//!   `running` with that owner and attempt, else the write changes nothing and answers
//!   "lease lost". So a job completes exactly once.
//! - Release follows [`crate::release_plan`]: a pending cancel request finishes the job
//!   `cancelled`; a shutdown re-queues without using the attempt; a failure re-queues at
//!   `retry_at` until `max_attempts`, then dead-letters (`failed`, `dead_lettered_at`,
//!   `last_error`). A re-queue resets the steps to `pending` and forgets the attempt's
//!   artifact rows (object keys are derived from job id and path, so the next attempt
//!   overwrites the objects); a cancel or dead letter closes unfinished steps (`running` →
//!   `cancelled`, `pending` → `skipped`, with the reason in `detail`).
//! - Status events are written by the store code (not triggers), in the same transaction as
//!   the change: every job status change appends a `status` event with `step = None` and data
//!   `{"status", "attempt", "last_error"}`; every step update appends a `status` event with
//!   `step = Some(name)` and data `{"state", "exit_code", "detail"}`. Worker output and
//!   `phase` events come from [`JobStore::append_job_events`]. Every writer of a job's log
//!   holds the job row's lock (PostgreSQL: the status UPDATE or `FOR UPDATE`; SQLite: the one
//!   writer), so `max(seq) + 1` never races.
//! - Signals (after commit; on PostgreSQL also `NOTIFY`): work on create/re-queue, and
//!   [`JobSignal`]s through [`crate::QueueSignals::notify_job`] for cancel requests, terminal
//!   statuses and committed events.

mod types;

use std::collections::BTreeMap;

use voidrunner_domain::{Timestamp, UserId};

pub use types::*;

use crate::{AppendOutcome, LeaseStatus, ReleaseOutcome, ReleaseReason, Scope, StoreResult};

/// A job to create (definition already validated by the caller).
#[derive(Debug, Clone)]
pub struct NewJob {
    /// New id.
    pub id: JobId,
    /// Owner (must exist, else `Conflict`).
    pub owner_id: UserId,
    /// The definition's name.
    pub name: String,
    /// The validated definition as JSON (what the worker runs).
    pub definition: serde_json::Value,
    /// Step names in definition order: one `pending` step row each (index = position).
    pub steps: Vec<String>,
    /// 0–10.
    pub priority: u8,
    /// Claims allowed before dead-lettering (≥ 1).
    pub max_attempts: u32,
    /// Request id of the creating API call.
    pub request_id: Option<String>,
    /// A source tarball was uploaded with the job (stored by the API under the job's id).
    pub has_tarball: bool,
    /// Creation time (from [`crate::now`]); also the initial `run_after`.
    pub created_at: Timestamp,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Id.
    pub id: JobId,
    /// Owner.
    pub owner_id: UserId,
    /// The definition's name.
    pub name: String,
    /// The validated definition.
    pub definition: serde_json::Value,
    /// Status.
    pub status: JobStatus,
    /// 0–10.
    pub priority: u8,
    /// Claims so far (the current one while running).
    pub attempt: u32,
    /// Claims allowed before dead-lettering.
    pub max_attempts: u32,
    /// Worker of the current/last attempt (kept for display).
    pub worker_id: Option<String>,
    /// Worker holding the lease while running.
    pub lease_owner: Option<String>,
    /// Lease end while running.
    pub lease_until: Option<Timestamp>,
    /// Earliest next claim.
    pub run_after: Timestamp,
    /// When a user asked to cancel.
    pub cancel_requested_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last claim time.
    pub started_at: Option<Timestamp>,
    /// Terminal time.
    pub finished_at: Option<Timestamp>,
    /// Failures outside the steps, in order.
    pub failures: Vec<JobFailure>,
    /// Outputs recorded through the in-job socket.
    pub outputs: BTreeMap<String, String>,
    /// Request id of the creating API call.
    pub request_id: Option<String>,
    /// A source tarball was uploaded.
    pub has_tarball: bool,
    /// Last infrastructure error (release/reaper/dead letter).
    pub last_error: Option<String>,
    /// When it was dead-lettered.
    pub dead_lettered_at: Option<Timestamp>,
    /// The workflow node it runs, when it belongs to a workflow.
    pub workflow: Option<crate::JobWorkflowLink>,
}

/// One step row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStep {
    /// Position in the definition, from 0.
    pub idx: u32,
    /// Step name.
    pub name: String,
    /// State.
    pub state: StepState,
    /// Exit code when it exited.
    pub exit_code: Option<i32>,
    /// Why it ended that way when not a plain exit (limit, signal, skip reason).
    pub detail: Option<String>,
    /// Start time.
    pub started_at: Option<Timestamp>,
    /// End time.
    pub finished_at: Option<Timestamp>,
    /// Wall time.
    pub wall_ms: Option<u64>,
    /// CPU time.
    pub cpu_ms: Option<u64>,
    /// Peak memory, when measured.
    pub peak_memory_bytes: Option<u64>,
}

/// The fencing token of one claim of a job.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobLease {
    /// The claimed job.
    pub job_id: JobId,
    /// The worker holding it.
    pub worker_id: String,
    /// The attempt the claim produced.
    pub attempt: u32,
}

impl JobLease {
    /// The lease of a job a claim returned.
    pub fn of(job: &Job) -> Option<JobLease> {
        Some(JobLease {
            job_id: job.id,
            worker_id: job.lease_owner.clone()?,
            attempt: job.attempt,
        })
    }
}

/// A change to one step (the whole row's result fields are replaced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpdate {
    /// Which step (position in the definition).
    pub idx: u32,
    /// New state.
    pub state: StepState,
    /// Exit code when it exited.
    pub exit_code: Option<i32>,
    /// Reason when not a plain exit.
    pub detail: Option<String>,
    /// Start time (kept when `None` and already set).
    pub started_at: Option<Timestamp>,
    /// End time.
    pub finished_at: Option<Timestamp>,
    /// Wall time.
    pub wall_ms: Option<u64>,
    /// CPU time.
    pub cpu_ms: Option<u64>,
    /// Peak memory.
    pub peak_memory_bytes: Option<u64>,
}

/// The final result of a job, recorded once.
#[derive(Debug, Clone, PartialEq)]
pub struct JobResult {
    /// `Succeeded`, `Failed` or `Cancelled` (anything else is a `Conflict`).
    pub status: JobStatus,
    /// Final step states, applied in the same transaction (may be empty when the worker
    /// already sent them with [`JobStore::update_step`]).
    pub steps: Vec<StepUpdate>,
    /// Failures outside the steps.
    pub failures: Vec<JobFailure>,
    /// Outputs recorded through the socket.
    pub outputs: BTreeMap<String, String>,
    /// Completion time.
    pub finished_at: Timestamp,
}

/// `complete_job` answer.
#[derive(Debug, Clone, PartialEq)]
pub enum JobCompleteOutcome {
    /// Recorded; the final row.
    Completed(Box<Job>),
    /// The lease was no longer held: nothing was written.
    LeaseLost,
}

/// Answer of a fenced worker write that returns nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobWrite {
    /// Written.
    Written,
    /// The lease was no longer held: nothing was written.
    LeaseLost,
}

/// Keyset position in a newest-first job listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobCursor {
    /// `created_at` of the last row of the previous page.
    pub created_at: Timestamp,
    /// `id` of the last row of the previous page.
    pub id: JobId,
}

/// One page of jobs, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPage {
    /// Rows, at most the requested limit.
    pub items: Vec<Job>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<JobCursor>,
}

/// What a job signal announces (fan-out of [`crate::QueueSignals::notify_job`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobSignal {
    /// A user asked to cancel this running job: its worker kills every step.
    Cancel(JobId),
    /// The job reached a terminal status.
    Finished(JobId),
    /// Events up to `last_seq` are committed (0 = "re-read").
    Events {
        /// The job.
        job_id: JobId,
        /// Highest committed seq known to the sender.
        last_seq: u64,
    },
}

/// CI jobs: creation, listing, the queue and the worker's fenced writes.
#[async_trait::async_trait]
pub trait JobStore {
    /// Inserts the job (`queued`), its step rows, its sealed secrets (name → value sealed by
    /// the caller) and its first status event in one transaction, then signals work.
    /// `Conflict` for a duplicate id or unknown owner.
    async fn create_job(
        &self,
        new: NewJob,
        sealed_secrets: BTreeMap<String, Vec<u8>>,
    ) -> StoreResult<Job>;
    /// A job within scope; `NotFound` otherwise.
    async fn get_job(&self, scope: Scope, id: JobId) -> StoreResult<Job>;
    /// Jobs within scope, newest first, optionally of one status.
    async fn list_jobs(
        &self,
        scope: Scope,
        status: Option<JobStatus>,
        after: Option<JobCursor>,
        limit: u32,
    ) -> StoreResult<JobPage>;
    /// The job's steps in definition order; `NotFound` when out of scope.
    async fn job_steps(&self, scope: Scope, id: JobId) -> StoreResult<Vec<JobStep>>;
    /// The sealed secrets given at creation. For the worker, never for an API response.
    async fn job_secrets(&self, id: JobId) -> StoreResult<BTreeMap<String, Vec<u8>>>;
    /// Claims the next claimable job (see the module docs), or `Ok(None)`. With
    /// `per_user_limit`, an owner already running that many jobs is passed over.
    async fn claim_next_job(
        &self,
        worker_id: &str,
        lease_until: Timestamp,
        now: Timestamp,
        per_user_limit: Option<u32>,
    ) -> StoreResult<Option<Job>>;
    /// Extends the lease if still held; reports a pending cancel request.
    async fn heartbeat_job(
        &self,
        lease: &JobLease,
        lease_until: Timestamp,
    ) -> StoreResult<LeaseStatus>;
    /// Records a step's state (and its status event) if the lease is held; `NotFound` for an
    /// unknown step index.
    async fn update_step(&self, lease: &JobLease, update: StepUpdate) -> StoreResult<JobWrite>;
    /// Appends events in order, in one transaction, if the lease is held; then signals.
    /// `Conflict` for a `Status` event. An empty slice answers the current last seq.
    async fn append_job_events(
        &self,
        lease: &JobLease,
        events: &[NewJobEvent],
        now: Timestamp,
    ) -> StoreResult<AppendOutcome>;
    /// Events with `seq > after`, in order, at most `limit`. Not scoped: check access with
    /// `get_job` first (an unknown id reads as empty).
    async fn read_job_events(
        &self,
        id: JobId,
        after: u64,
        limit: u32,
    ) -> StoreResult<Vec<JobEventRecord>>;
    /// Records (or replaces, same path) a collected artifact if the lease is held.
    async fn record_job_artifact(
        &self,
        lease: &JobLease,
        artifact: JobArtifact,
    ) -> StoreResult<JobWrite>;
    /// The job's artifacts by path; `NotFound` when out of scope.
    async fn job_artifacts(&self, scope: Scope, id: JobId) -> StoreResult<Vec<JobArtifact>>;
    /// Records the result if the lease is held (status, steps, failures, outputs,
    /// `finished_at`, lease cleared, status event) in one transaction, exactly once.
    async fn complete_job(
        &self,
        lease: &JobLease,
        result: JobResult,
    ) -> StoreResult<JobCompleteOutcome>;
    /// Gives a claimed job back (see the module docs) if the lease is held.
    async fn release_job(
        &self,
        lease: &JobLease,
        reason: ReleaseReason,
        now: Timestamp,
    ) -> StoreResult<ReleaseOutcome>;
    /// Cancels: a `queued` job becomes `cancelled` at once (steps skipped); a `running` one
    /// gets `cancel_requested_at` and a cancel signal. `Conflict` when already finished;
    /// `NotFound` when out of scope. Returns the row.
    async fn request_job_cancel(&self, scope: Scope, id: JobId, now: Timestamp)
    -> StoreResult<Job>;
    /// Puts a dead-lettered job back in the queue (attempts reset, steps `pending`, results
    /// and artifact rows cleared); `NotFound` when it is not dead-lettered.
    async fn requeue_job_dead_letter(&self, id: JobId, now: Timestamp) -> StoreResult<Job>;
    /// Job queue depth (queued, running, dead-lettered) for dashboards and `/metrics`.
    async fn job_queue_stats(&self) -> StoreResult<crate::QueueStats>;
    /// Stores `data` under `name` for the job, replacing an earlier value: `source.tar` (the
    /// uploaded archive, by the API at creation) or `artifacts/<path>` (by the worker). Kept
    /// in the database so every node reaches them; sizes are capped by the callers.
    async fn put_job_blob(
        &self,
        id: JobId,
        name: &str,
        data: &[u8],
        now: Timestamp,
    ) -> StoreResult<()>;
    /// The bytes stored under `name`; `NotFound` when the job is out of scope or has none,
    /// or when they moved to object storage (see
    /// [`JobBlobArchiveStore::job_blob_location`](crate::JobBlobArchiveStore::job_blob_location),
    /// which only happens once the job is finished for good).
    async fn job_blob(&self, scope: Scope, id: JobId, name: &str) -> StoreResult<Vec<u8>>;
    /// Releases every `running` job whose lease expired before `now` as a failure
    /// (`retry_at(attempt)` = earliest retry); at most a batch per call.
    async fn reap_expired_job_leases(
        &self,
        now: Timestamp,
        retry_at: &(dyn Fn(u32) -> Timestamp + Send + Sync),
    ) -> StoreResult<Vec<(JobId, ReleaseOutcome)>>;
}
