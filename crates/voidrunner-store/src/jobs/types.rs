//! The vocabulary of CI jobs shared by the store, its backends and the API: ids, statuses,
//! step states, event kinds, artifacts, and the JSON forms the backends store.

use std::collections::BTreeMap;

use voidrunner_domain::Timestamp;

pub use voidrunner_domain::JobId;

/// Where a job is in its life. Terminal: `succeeded`, `failed`, `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// Claimed by a worker.
    Running,
    /// Every required step succeeded.
    Succeeded,
    /// A step or phase failed, or the job was dead-lettered.
    Failed,
    /// Cancelled by a user.
    Cancelled,
}

impl JobStatus {
    /// The stored (and wire) name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<JobStatus> {
        Some(match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            "cancelled" => JobStatus::Cancelled,
            _ => return None,
        })
    }

    /// No further change will happen.
    pub fn is_terminal(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

/// State of one step (the runner's `StepReport::state` names plus `pending`/`running`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepState {
    /// Not started.
    Pending,
    /// Its process runs.
    Running,
    /// Exited 0.
    Succeeded,
    /// Exited non-zero or hit a limit.
    Failed,
    /// Hit its timeout.
    TimedOut,
    /// Killed by a cancel.
    Cancelled,
    /// Its condition was false (or the job ended before it started).
    Skipped,
}

impl StepState {
    /// The stored (and wire) name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::TimedOut => "timed_out",
            StepState::Cancelled => "cancelled",
            StepState::Skipped => "skipped",
        }
    }

    /// Parses a stored name (also what the runner reports).
    pub fn parse(s: &str) -> Option<StepState> {
        Some(match s {
            "pending" => StepState::Pending,
            "running" => StepState::Running,
            "succeeded" => StepState::Succeeded,
            "failed" => StepState::Failed,
            "timed_out" => StepState::TimedOut,
            "cancelled" => StepState::Cancelled,
            "skipped" => StepState::Skipped,
            _ => return None,
        })
    }
}

/// A failure outside the steps (source preparation, a hook, the timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    /// `validation`, `source`, a hook phase, `workspace`, `timeout`.
    pub phase: String,
    /// Why (already masked).
    pub reason: String,
}

/// What an event of a job's log is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStream {
    /// Standard output of a step or hook.
    Stdout,
    /// Standard error of a step or hook.
    Stderr,
    /// A job or step status change (written by the store); `data` is JSON.
    Status,
    /// A lifecycle phase began; `data` is the phase name.
    Phase,
}

impl JobStream {
    /// The stored (and wire) name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStream::Stdout => "stdout",
            JobStream::Stderr => "stderr",
            JobStream::Status => "status",
            JobStream::Phase => "phase",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<JobStream> {
        Some(match s {
            "stdout" => JobStream::Stdout,
            "stderr" => JobStream::Stderr,
            "status" => JobStream::Status,
            "phase" => JobStream::Phase,
            _ => return None,
        })
    }
}

/// An event to append (output already masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJobEvent {
    /// The step (or `hook:<phase>`) it belongs to; `None` for job-level events.
    pub step: Option<String>,
    /// `Stdout`, `Stderr` or `Phase` (never `Status`: the store writes those).
    pub stream: JobStream,
    /// Bytes.
    pub data: Vec<u8>,
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEventRecord {
    /// Position in the job's log, from 1 (the SSE event id).
    pub seq: u64,
    /// The attempt that produced it.
    pub attempt: u32,
    /// The step it belongs to.
    pub step: Option<String>,
    /// Kind.
    pub stream: JobStream,
    /// Bytes (JSON for status events).
    pub data: Vec<u8>,
    /// When it was stored.
    pub created_at: Timestamp,
}

/// One collected artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobArtifact {
    /// Path relative to `/job`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Where the bytes are kept (object store key or file path, the worker's choice).
    pub object_key: String,
}

/// Failures as the stored JSON array of `{phase, reason}`.
pub fn failures_to_json(failures: &[JobFailure]) -> serde_json::Value {
    serde_json::Value::Array(
        failures
            .iter()
            .map(|f| serde_json::json!({"phase": f.phase, "reason": f.reason}))
            .collect(),
    )
}

/// Parses the stored failures; `None` when the JSON has another shape.
pub fn failures_from_json(v: &serde_json::Value) -> Option<Vec<JobFailure>> {
    v.as_array()?
        .iter()
        .map(|f| {
            Some(JobFailure {
                phase: f.get("phase")?.as_str()?.to_owned(),
                reason: f.get("reason")?.as_str()?.to_owned(),
            })
        })
        .collect()
}

/// Outputs as the stored JSON object.
pub fn outputs_to_json(outputs: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::Value::Object(
        outputs
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

/// Parses the stored outputs; `None` when the JSON has another shape.
pub fn outputs_from_json(v: &serde_json::Value) -> Option<BTreeMap<String, String>> {
    v.as_object()?
        .iter()
        .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// The `data` of a job status event.
pub fn job_status_event(status: JobStatus, attempt: u32, last_error: Option<&str>) -> Vec<u8> {
    serde_json::json!({"status": status.as_str(), "attempt": attempt, "last_error": last_error})
        .to_string()
        .into_bytes()
}

/// The `data` of a step status event.
pub fn step_status_event(
    state: StepState,
    exit_code: Option<i32>,
    detail: Option<&str>,
) -> Vec<u8> {
    serde_json::json!({"state": state.as_str(), "exit_code": exit_code, "detail": detail})
        .to_string()
        .into_bytes()
}

/// Detail recorded on steps closed by a cancel.
pub const STEP_CANCELLED: &str = "job cancelled";
/// Detail recorded on steps closed by a dead letter.
pub const STEP_DEAD_LETTERED: &str = "job dead-lettered";
