//! Storage for VoidRunner: repository traits with use-case methods, the one storage error type,
//! and (feature `conformance`) the test suite every backend must pass.
//!
//! Backends live in their own crates (`voidrunner-store-sqlite`, `voidrunner-store-postgres`)
//! with their own migrations. Callers (API, worker) depend only on these traits, never on sqlx.
//!
//! Rules every backend follows:
//! - Timestamps are stored with microsecond precision; callers pass values from [`now`] so what
//!   is read back equals what was written.
//! - Soft-deleted tasks behave exactly like missing ones.
//! - A row outside the caller's [`Scope`] is [`StoreError::NotFound`], never a different error,
//!   so the API cannot leak existence.
//! - Driver errors are mapped once, in the backend, to the three variants of [`StoreError`].

mod archive;
mod auth;
mod error;
mod execution;
mod input;
mod job_blobs;
mod jobs;
mod logs;
mod release;
mod repos;
mod retention;
mod stats;
mod task;
mod webhooks;
mod workflows;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use archive::{
    ArchiveCandidate, ArchiveOutcome, ExpireOutcome, LogArchive, LogArchiveStore, LogLocation,
    LogLocationEntry,
};
pub use auth::{
    ApiKey, AuthStore, NewApiKey, NewRefreshToken, NewUser, RefreshOutcome, RefreshTokenSeed,
    UserCredentials, UserStore,
};
pub use error::{StoreError, StoreResult};
pub use execution::{
    ClaimRequest, CompleteOutcome, ExecutionCursor, ExecutionPage, ExecutionResult, ExecutionStore,
    Lease, LeaseStatus, NewExecution, QueueSignals, QueueStats, ReleaseOutcome, ReleaseReason,
    RetryPolicy, backoff,
};
pub use input::{
    InputChunk, InputState, InputStore, MAX_INPUT_BYTES, MAX_INPUT_CHUNKS, input_conflict,
};
pub use job_blobs::{
    ArchivedJobBlob, JobBlobArchiveOutcome, JobBlobArchiveStore, JobBlobCandidate, JobBlobLocation,
};
pub use jobs::{
    Job, JobArtifact, JobCompleteOutcome, JobCursor, JobEventRecord, JobFailure, JobId, JobLease,
    JobPage, JobResult, JobSignal, JobStatus, JobStep, JobStore, JobStream, JobWrite, NewJob,
    NewJobEvent, STEP_CANCELLED, STEP_DEAD_LETTERED, StepState, StepUpdate, failures_from_json,
    failures_to_json, job_status_event, outputs_from_json, outputs_to_json, step_status_event,
};
pub use logs::{AppendOutcome, LogChunk, LogEvent, LogSignal, LogStore, LogStream};
pub use release::{ReleasePlan, release_plan};
pub use repos::{
    CommitStatus, Delivery, DeliveryOutcome, DeliveryWorkflow, NewCommitStatus, NewDelivery,
    NewRepository, Repository, RepositoryId, RepositoryStore, StatusReport, StatusReportOutcome,
};
pub use retention::RetentionStore;
pub use stats::{
    ExecutionStats, Percentiles, StatsRequest, StatsRows, StatsStore, ThroughputBucket,
};
pub use task::{Page, PageRequest, Scope, TaskCursor, TaskFilter, TaskStore};
pub use webhooks::{AttemptOutcome, DeliveryState, WebhookDelivery, WebhookStore};
pub use workflows::{
    JobWorkflowLink, NewWorkflow, NewWorkflowNode, NodeStatus, TriggerOutcome, Workflow,
    WorkflowCursor, WorkflowId, WorkflowNode, WorkflowPage, WorkflowState, WorkflowStore,
};

use voidrunner_domain::Timestamp;

/// Everything the service needs from a backend. One object implements all repositories so a
/// handler can hold a single `Arc<dyn Store>`.
#[async_trait::async_trait]
pub trait Store:
    UserStore
    + AuthStore
    + TaskStore
    + ExecutionStore
    + LogStore
    + InputStore
    + WebhookStore
    + LogArchiveStore
    + StatsStore
    + JobStore
    + JobBlobArchiveStore
    + WorkflowStore
    + RepositoryStore
    + RetentionStore
    + Send
    + Sync
    + 'static
{
    /// Cheap round trip used by `/ready`.
    async fn ping(&self) -> StoreResult<()>;

    /// `"sqlite"` or `"postgres"`, for logs and `/ready`.
    fn backend_name(&self) -> &'static str;
}

/// The current time truncated to microseconds, the precision every backend stores.
pub fn now() -> Timestamp {
    truncate_to_micros(chrono::Utc::now())
}

/// Truncates a timestamp to the microsecond precision every backend stores.
pub fn truncate_to_micros(t: Timestamp) -> Timestamp {
    let micros = t.timestamp_micros();
    chrono::DateTime::from_timestamp_micros(micros).unwrap_or(t)
}
