//! Executions: one run of a task, and the state machine every status change goes through.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ExecutionId, ResourceLimits, TaskId, Timestamp, UserId};

/// Lifecycle of an execution.
///
/// ```text
/// queued ──claim──▶ running ──▶ completed | failed | timeout | cancelled
///   │  ▲              │
///   │  └──requeue─────┘   (lease expired / infrastructure failure, with backoff)
///   └──cancel──▶ cancelled
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Waiting in the queue.
    Queued,
    /// Claimed by a worker holding a lease.
    Running,
    /// The program ran and exited with code 0.
    Completed,
    /// The program failed (non-zero exit, signal, limit hit, compile error) or the execution
    /// was dead-lettered after repeated infrastructure failures.
    Failed,
    /// The wall-clock timeout fired.
    Timeout,
    /// Cancelled by a user.
    Cancelled,
}

/// A status change that the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot move an execution from {from:?} to {to:?}")]
pub struct TransitionError {
    /// Current status.
    pub from: ExecutionStatus,
    /// Requested status.
    pub to: ExecutionStatus,
}

impl ExecutionStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [ExecutionStatus; 6] = [
        ExecutionStatus::Queued,
        ExecutionStatus::Running,
        ExecutionStatus::Completed,
        ExecutionStatus::Failed,
        ExecutionStatus::Timeout,
        ExecutionStatus::Cancelled,
    ];

    /// Stable storage / wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses the storage / wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Terminal statuses never change again.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }

    /// The one place that decides which status changes are legal.
    pub fn transition(self, to: ExecutionStatus) -> Result<ExecutionStatus, TransitionError> {
        use ExecutionStatus::*;
        let ok = matches!(
            (self, to),
            (Queued, Running)
                | (Queued, Cancelled)
                | (Queued, Failed) // dead-lettered before running again
                | (Running, Queued) // lease expired or infrastructure failure: retry
                | (Running, Completed | Failed | Timeout | Cancelled)
        );
        if ok {
            Ok(to)
        } else {
            Err(TransitionError { from: self, to })
        }
    }
}

/// How a run ended, as the executor saw it. Distinguishes the program's outcome from the
/// sandbox's own failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// The program exited on its own with this code.
    Exited {
        /// Exit code.
        code: i32,
    },
    /// The program was killed by a signal it did not get from the supervisor.
    Signaled {
        /// Signal number.
        signal: i32,
    },
    /// Wall-clock timeout.
    Timeout,
    /// CPU-time limit.
    CpuLimit,
    /// Memory limit (OOM kill in the cgroup).
    MemoryLimit,
    /// Output exceeded `max_output_bytes`; output was cut and the program stopped.
    OutputLimit,
    /// Cancelled by a user.
    Cancelled,
    /// Compilation failed (compiled languages); compiler output is in the logs.
    CompileError {
        /// Compiler exit code.
        code: i32,
    },
    /// The sandbox itself failed: an infrastructure error, retried by the queue.
    SandboxError {
        /// Operator-facing reason (never shown with host details to clients).
        reason: String,
    },
}

impl Verdict {
    /// The terminal execution status this verdict maps to, or `None` for an infrastructure
    /// failure that must be retried rather than recorded as a result.
    pub fn status(&self) -> Option<ExecutionStatus> {
        Some(match self {
            Verdict::Exited { code: 0 } => ExecutionStatus::Completed,
            Verdict::Timeout => ExecutionStatus::Timeout,
            Verdict::Cancelled => ExecutionStatus::Cancelled,
            Verdict::SandboxError { .. } => return None,
            _ => ExecutionStatus::Failed,
        })
    }
}

/// One execution with its snapshot of what to run (taken at enqueue time, so later task edits
/// never change a queued or running execution), its queue bookkeeping and its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// Execution id (UUIDv7).
    pub id: ExecutionId,
    /// The task it runs; `None` for one-shot runs (`POST /api/v1/run`) with no stored task.
    pub task_id: Option<TaskId>,
    /// Owner (copied from the task for access checks and per-user quotas).
    pub owner_id: UserId,
    /// Current status.
    pub status: ExecutionStatus,
    /// 0–10, higher claimed first; FIFO within a priority.
    pub priority: u8,
    /// Snapshot: language registry name.
    pub language: String,
    /// Snapshot: code.
    pub code: String,
    /// Snapshot: stdin.
    pub stdin: Option<String>,
    /// Snapshot: environment.
    pub env: BTreeMap<String, String>,
    /// Snapshot: limits.
    pub limits: ResourceLimits,
    /// Stdin stays open for input sent while it runs (WebSocket) until the client closes it;
    /// `stdin` above, if any, is fed first.
    pub interactive: bool,
    /// Where the final result is POSTed (signed), if anywhere.
    pub callback_url: Option<String>,
    /// Request id of the API call that enqueued it, carried into the worker's spans.
    pub request_id: Option<String>,
    /// Claims so far (each claim increments it).
    pub attempt: u32,
    /// Infrastructure failures allowed before dead-lettering.
    pub max_attempts: u32,
    /// Worker that ran the current/last attempt (kept after the lease ends, for display).
    pub worker_id: Option<String>,
    /// Worker currently holding the lease.
    pub lease_owner: Option<String>,
    /// When the current lease expires unless heartbeated.
    pub lease_until: Option<Timestamp>,
    /// Not claimable before this time (retry backoff).
    pub run_after: Timestamp,
    /// Set when a user asked to cancel a running execution; the worker running it kills it.
    pub cancel_requested_at: Option<Timestamp>,
    /// When it was enqueued.
    pub created_at: Timestamp,
    /// When the current/last attempt started.
    pub started_at: Option<Timestamp>,
    /// When it reached a terminal status.
    pub finished_at: Option<Timestamp>,
    /// How it ended.
    pub verdict: Option<Verdict>,
    /// Exit code when the program exited.
    pub exit_code: Option<i32>,
    /// Signal number when the program was killed by a signal.
    pub signal: Option<i32>,
    /// Standard output (capped at the limit; see `output_truncated`).
    pub stdout: String,
    /// Standard error (capped at the limit; see `output_truncated`).
    pub stderr: String,
    /// Compiler output for compiled languages.
    pub compile_output: Option<String>,
    /// Wall time in milliseconds.
    pub wall_time_ms: Option<u64>,
    /// CPU time (user + system) in milliseconds.
    pub cpu_time_ms: Option<u64>,
    /// Peak memory in bytes.
    pub peak_memory_bytes: Option<u64>,
    /// Whether output was cut at the limit.
    pub output_truncated: bool,
    /// Last infrastructure error (operator-facing).
    pub last_error: Option<String>,
    /// Set when the execution was dead-lettered.
    pub dead_lettered_at: Option<Timestamp>,
}

/// One point of the memory/CPU timeline the sandbox samples while a program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceSample {
    /// Milliseconds since the program started.
    pub t_ms: u64,
    /// Memory in use (cgroup usage) at that moment, in bytes.
    pub memory_bytes: u64,
    /// CPU time (user + system) consumed so far, in milliseconds.
    pub cpu_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::ExecutionStatus::*;
    use super::*;

    #[test]
    fn transitions_table() {
        for from in ExecutionStatus::ALL {
            for to in ExecutionStatus::ALL {
                let allowed = from.transition(to).is_ok();
                let expected = matches!(
                    (from, to),
                    (Queued, Running | Cancelled | Failed)
                        | (Running, Queued | Completed | Failed | Timeout | Cancelled)
                );
                assert_eq!(allowed, expected, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn terminal_statuses_never_move() {
        for s in ExecutionStatus::ALL
            .into_iter()
            .filter(ExecutionStatus::is_terminal)
        {
            for to in ExecutionStatus::ALL {
                assert!(s.transition(to).is_err());
            }
        }
    }

    #[test]
    fn verdict_maps_to_status() {
        assert_eq!(Verdict::Exited { code: 0 }.status(), Some(Completed));
        assert_eq!(Verdict::Exited { code: 1 }.status(), Some(Failed));
        assert_eq!(Verdict::MemoryLimit.status(), Some(Failed));
        assert_eq!(Verdict::Timeout.status(), Some(Timeout));
        assert_eq!(Verdict::SandboxError { reason: "x".into() }.status(), None);
        let json = serde_json::to_string(&Verdict::Exited { code: 3 }).expect("json");
        assert_eq!(json, r#"{"kind":"exited","code":3}"#);
    }

    #[test]
    fn status_names_round_trip() {
        for s in ExecutionStatus::ALL {
            assert_eq!(ExecutionStatus::parse(s.as_str()), Some(s));
        }
    }
}
