//! Executions: enqueue (for a task or one-shot), read, list, cancel; languages; dead letters.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use voidrunner_domain::{Execution, Verdict};

use crate::tasks::{ExecutionStatusDto, LimitsRequest, LimitsResponse};

/// `POST /api/v1/tasks/{id}/executions`: optional overrides for this one run. The body may
/// be empty or absent; missing fields take the task's values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteTaskRequest {
    /// Standard input for this run instead of the task's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// Limit overrides; missing fields take the task's limits; each within the server maxima.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsRequest>,
    /// Priority 0–10 for this run instead of the task's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Keep stdin open while it runs, for input sent over the WebSocket
    /// (`GET /api/v1/executions/{id}/ws`) until the client closes it. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<bool>,
    /// `http(s)` URL that receives a signed POST of the final result (see docs/API.md,
    /// "Webhooks").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

/// `POST /api/v1/run`: run code once, without storing a task. Same rules as task creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// An enabled language or alias (see `GET /api/v1/languages`).
    pub language: String,
    /// Source code.
    pub code: String,
    /// Standard input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// Environment variables; names match `^[A-Za-z_][A-Za-z0-9_]*$`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Resource limits; missing fields take the server defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsRequest>,
    /// 0–10, default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Keep stdin open while it runs, for input sent over the WebSocket
    /// (`GET /api/v1/executions/{id}/ws`) until the client closes it. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<bool>,
    /// `http(s)` URL that receives a signed POST of the final result (see docs/API.md,
    /// "Webhooks").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

impl RunRequest {
    /// A request with only the required fields.
    pub fn new(language: impl Into<String>, code: impl Into<String>) -> Self {
        Self {
            language: language.into(),
            code: code.into(),
            stdin: None,
            env: None,
            limits: None,
            priority: None,
            interactive: None,
            callback_url: None,
        }
    }
}

/// Query of the enqueueing endpoints. With `wait=true` the server answers `200` with the
/// finished execution when it finishes within `timeout_secs`, else `202` with its current
/// state. The server parses it itself (each bad value is a 400 naming it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Wait for the result (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<bool>,
    /// How long to wait, ≥ 1; values above the server maximum (`max_wait_secs`, 60 by
    /// default) are lowered to it. Default: the maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u32>,
}

/// Query of execution listings (`GET /api/v1/tasks/{id}/executions`,
/// `GET /api/v1/admin/dead-letter`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListExecutionsQuery {
    /// Page size, 1–100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Opaque cursor from a previous page's `next_cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// How a run ended, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VerdictDto {
    /// The program exited with `code`.
    Exited {
        /// Exit code.
        code: i32,
    },
    /// The program was killed by `signal` (not by the supervisor).
    Signaled {
        /// Signal number.
        signal: i32,
    },
    /// Wall-clock timeout.
    Timeout,
    /// CPU-time limit.
    CpuLimit,
    /// Memory limit.
    MemoryLimit,
    /// Output limit; output was cut.
    OutputLimit,
    /// Cancelled by a user.
    Cancelled,
    /// Compilation failed with compiler exit `code`; see `compile_output`.
    CompileError {
        /// Compiler exit code.
        code: i32,
    },
    /// The sandbox failed (infrastructure); the reason is in the operator-only `last_error`.
    SandboxError,
}

impl From<Verdict> for VerdictDto {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Exited { code } => Self::Exited { code },
            Verdict::Signaled { signal } => Self::Signaled { signal },
            Verdict::Timeout => Self::Timeout,
            Verdict::CpuLimit => Self::CpuLimit,
            Verdict::MemoryLimit => Self::MemoryLimit,
            Verdict::OutputLimit => Self::OutputLimit,
            Verdict::Cancelled => Self::Cancelled,
            Verdict::CompileError { code } => Self::CompileError { code },
            Verdict::SandboxError { .. } => Self::SandboxError,
        }
    }
}

/// One execution: what ran (snapshot), where it is in the queue, and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExecutionResponse {
    /// Execution id.
    pub id: Uuid,
    /// The task it runs; `null` for one-shot runs (`POST /api/v1/run`).
    pub task_id: Option<Uuid>,
    /// Owner's account id.
    pub owner_id: Uuid,
    /// `queued → running → completed | failed | timeout | cancelled`.
    pub status: ExecutionStatusDto,
    /// How it ended; `null` until it finishes (and for dead-lettered executions).
    pub verdict: Option<VerdictDto>,
    /// Exit code when the program exited.
    pub exit_code: Option<i32>,
    /// Signal number when the program was killed by one.
    pub signal: Option<i32>,
    /// Standard output (capped at `limits.max_output_bytes`).
    pub stdout: String,
    /// Standard error (capped).
    pub stderr: String,
    /// Output was cut at the limit.
    pub output_truncated: bool,
    /// Compiler output (compiled languages).
    pub compile_output: Option<String>,
    /// Wall time in milliseconds.
    pub wall_time_ms: Option<u64>,
    /// CPU time (user + system) in milliseconds.
    pub cpu_time_ms: Option<u64>,
    /// Peak memory in bytes, when measured.
    pub peak_memory_bytes: Option<u64>,
    /// Claims so far.
    pub attempt: u32,
    /// Infrastructure failures allowed before the execution is dead-lettered.
    pub max_attempts: u32,
    /// Worker (node + slot) of the current/last attempt.
    pub worker_id: Option<String>,
    /// Enqueue time.
    pub queued_at: DateTime<Utc>,
    /// Start of the current/last attempt.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal status.
    pub finished_at: Option<DateTime<Utc>>,
    /// `started_at − queued_at` in milliseconds, once started.
    pub queue_wait_ms: Option<u64>,
    /// A cancel was requested while it was running (the worker kills it).
    pub cancel_requested: bool,
    /// Snapshot: language.
    pub language: String,
    /// Snapshot: code.
    pub code: String,
    /// Snapshot: standard input.
    pub stdin: Option<String>,
    /// Snapshot: environment.
    pub env: BTreeMap<String, String>,
    /// Snapshot: resolved limits.
    pub limits: LimitsResponse,
    /// Priority 0–10.
    pub priority: u8,
    /// Stdin stays open for input over the WebSocket.
    pub interactive: bool,
    /// Webhook target of the final result, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Last infrastructure error; present for admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it was dead-lettered; present for admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_lettered_at: Option<DateTime<Utc>>,
}

/// An execution in a listing: without code, stdin, env, stdout, stderr and compile output,
/// which can be large or sensitive; `GET /api/v1/executions/{id}` returns everything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExecutionSummaryResponse {
    /// Execution id.
    pub id: Uuid,
    /// The task it runs; `null` for one-shot runs.
    pub task_id: Option<Uuid>,
    /// Owner's account id.
    pub owner_id: Uuid,
    /// Status.
    pub status: ExecutionStatusDto,
    /// How it ended.
    pub verdict: Option<VerdictDto>,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Signal number.
    pub signal: Option<i32>,
    /// Output was cut at the limit.
    pub output_truncated: bool,
    /// Wall time in milliseconds.
    pub wall_time_ms: Option<u64>,
    /// CPU time in milliseconds.
    pub cpu_time_ms: Option<u64>,
    /// Peak memory in bytes.
    pub peak_memory_bytes: Option<u64>,
    /// Claims so far.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Worker of the current/last attempt.
    pub worker_id: Option<String>,
    /// Enqueue time.
    pub queued_at: DateTime<Utc>,
    /// Start of the current/last attempt.
    pub started_at: Option<DateTime<Utc>>,
    /// Terminal time.
    pub finished_at: Option<DateTime<Utc>>,
    /// `started_at − queued_at` in milliseconds.
    pub queue_wait_ms: Option<u64>,
    /// A cancel was requested while running.
    pub cancel_requested: bool,
    /// Language.
    pub language: String,
    /// Resolved limits.
    pub limits: LimitsResponse,
    /// Priority 0–10.
    pub priority: u8,
    /// Last infrastructure error; admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Dead-letter time; admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_lettered_at: Option<DateTime<Utc>>,
}

/// A page of executions, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExecutionListResponse {
    /// At most `limit` executions.
    pub items: Vec<ExecutionSummaryResponse>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Who may see operator-facing fields (`last_error`, `dead_lettered_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The owner: no operator fields.
    User,
    /// An admin: everything.
    Admin,
}

fn queue_wait_ms(e: &Execution) -> Option<u64> {
    let started = e.started_at?;
    u64::try_from((started - e.created_at).num_milliseconds()).ok()
}

impl ExecutionResponse {
    /// The wire form of `e` for `audience`.
    pub fn from_execution(e: Execution, audience: Audience) -> Self {
        let admin = audience == Audience::Admin;
        Self {
            queue_wait_ms: queue_wait_ms(&e),
            id: e.id.as_uuid(),
            task_id: e.task_id.map(|t| t.as_uuid()),
            owner_id: e.owner_id.as_uuid(),
            status: e.status.into(),
            verdict: e.verdict.map(Into::into),
            exit_code: e.exit_code,
            signal: e.signal,
            stdout: e.stdout,
            stderr: e.stderr,
            output_truncated: e.output_truncated,
            compile_output: e.compile_output,
            wall_time_ms: e.wall_time_ms,
            cpu_time_ms: e.cpu_time_ms,
            peak_memory_bytes: e.peak_memory_bytes,
            attempt: e.attempt,
            max_attempts: e.max_attempts,
            worker_id: e.worker_id,
            queued_at: e.created_at,
            started_at: e.started_at,
            finished_at: e.finished_at,
            cancel_requested: e.cancel_requested_at.is_some(),
            language: e.language,
            code: e.code,
            stdin: e.stdin,
            env: e.env,
            limits: e.limits.into(),
            priority: e.priority,
            last_error: e.last_error.filter(|_| admin),
            interactive: e.interactive,
            callback_url: e.callback_url,
            dead_lettered_at: e.dead_lettered_at.filter(|_| admin),
        }
    }
}

impl ExecutionSummaryResponse {
    /// The listing form of `e` for `audience`.
    pub fn from_execution(e: Execution, audience: Audience) -> Self {
        let admin = audience == Audience::Admin;
        Self {
            queue_wait_ms: queue_wait_ms(&e),
            id: e.id.as_uuid(),
            task_id: e.task_id.map(|t| t.as_uuid()),
            owner_id: e.owner_id.as_uuid(),
            status: e.status.into(),
            verdict: e.verdict.map(Into::into),
            exit_code: e.exit_code,
            signal: e.signal,
            output_truncated: e.output_truncated,
            wall_time_ms: e.wall_time_ms,
            cpu_time_ms: e.cpu_time_ms,
            peak_memory_bytes: e.peak_memory_bytes,
            attempt: e.attempt,
            max_attempts: e.max_attempts,
            worker_id: e.worker_id,
            queued_at: e.created_at,
            started_at: e.started_at,
            finished_at: e.finished_at,
            cancel_requested: e.cancel_requested_at.is_some(),
            language: e.language,
            limits: e.limits.into(),
            priority: e.priority,
            last_error: e.last_error.filter(|_| admin),
            dead_lettered_at: e.dead_lettered_at.filter(|_| admin),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_tagged_and_hide_sandbox_reasons() {
        let v: VerdictDto = Verdict::Exited { code: 3 }.into();
        assert_eq!(
            serde_json::to_value(&v).expect("json"),
            serde_json::json!({"kind": "exited", "code": 3})
        );
        let v: VerdictDto = Verdict::SandboxError {
            reason: "mount /srv/secret failed".into(),
        }
        .into();
        assert_eq!(
            serde_json::to_value(&v).expect("json"),
            serde_json::json!({"kind": "sandbox_error"})
        );
    }

    #[test]
    fn requests_reject_unknown_fields() {
        assert!(serde_json::from_str::<ExecuteTaskRequest>(r#"{"exit_code":0}"#).is_err());
        assert!(serde_json::from_str::<RunRequest>(r#"{"language":"python"}"#).is_err());
        let q = WaitQuery {
            wait: Some(true),
            timeout_secs: None,
        };
        assert_eq!(
            serde_json::to_value(q).expect("json"),
            serde_json::json!({"wait": true})
        );
    }
}
