//! The `executions` row and its conversion to the domain [`Execution`].

use std::collections::BTreeMap;

use sqlx::types::Json;
use uuid::Uuid;
use voidrunner_domain::{
    Execution, ExecutionId, ExecutionStatus, ResourceLimits, TaskId, Timestamp, UserId, Verdict,
};
use voidrunner_store::StoreResult;

use crate::error::corrupt;

/// An `executions` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ExecutionRow {
    pub id: Uuid,
    pub task_id: Option<Uuid>,
    pub owner_id: Uuid,
    pub status: String,
    pub priority: i16,
    pub language: String,
    pub code: String,
    pub stdin: Option<String>,
    pub env: Json<BTreeMap<String, String>>,
    pub limits: Json<ResourceLimits>,
    pub attempt: i32,
    pub max_attempts: i32,
    pub worker_id: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
    pub run_after: Timestamp,
    pub cancel_requested_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub verdict: Option<Json<Verdict>>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub compile_output: Option<String>,
    pub wall_time_ms: Option<i64>,
    pub cpu_time_ms: Option<i64>,
    pub peak_memory_bytes: Option<i64>,
    pub output_truncated: bool,
    pub last_error: Option<String>,
    pub interactive: bool,
    pub callback_url: Option<String>,
    pub request_id: Option<String>,
    pub dead_lettered_at: Option<Timestamp>,
}

/// Columns to select (or return), in [`ExecutionRow`] order.
pub(crate) const COLUMNS: &str = "id, task_id, owner_id, status, priority, language, code, \
    stdin, env, limits, attempt, max_attempts, worker_id, lease_owner, lease_until, run_after, \
    cancel_requested_at, created_at, started_at, finished_at, verdict, exit_code, signal, \
    stdout, stderr, compile_output, wall_time_ms, cpu_time_ms, peak_memory_bytes, \
    output_truncated, last_error, interactive, callback_url, request_id, dead_lettered_at";

/// A stored integer that must fit another integer type.
fn unsigned<S: Copy + ToString, T: TryFrom<S>>(column: &'static str, v: S) -> StoreResult<T> {
    T::try_from(v).map_err(|_| corrupt(column, v.to_string()))
}

/// A nullable stored integer that must fit another integer type.
fn opt_int<S: Copy + ToString, T: TryFrom<S>>(
    column: &'static str,
    v: Option<S>,
) -> StoreResult<Option<T>> {
    v.map(|v| unsigned(column, v)).transpose()
}

impl ExecutionRow {
    /// Converts to the domain execution.
    pub fn into_execution(self) -> StoreResult<Execution> {
        Ok(Execution {
            id: ExecutionId(self.id),
            task_id: self.task_id.map(TaskId),
            owner_id: UserId(self.owner_id),
            status: ExecutionStatus::parse(&self.status)
                .ok_or_else(|| corrupt("executions.status", &self.status))?,
            priority: unsigned("executions.priority", self.priority)?,
            language: self.language,
            code: self.code,
            stdin: self.stdin,
            env: self.env.0,
            limits: self.limits.0,
            interactive: self.interactive,
            callback_url: self.callback_url,
            request_id: self.request_id,
            attempt: unsigned("executions.attempt", self.attempt)?,
            max_attempts: unsigned("executions.max_attempts", self.max_attempts)?,
            worker_id: self.worker_id,
            lease_owner: self.lease_owner,
            lease_until: self.lease_until,
            run_after: self.run_after,
            cancel_requested_at: self.cancel_requested_at,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            verdict: self.verdict.map(|v| v.0),
            exit_code: self.exit_code,
            signal: self.signal,
            stdout: self.stdout,
            stderr: self.stderr,
            compile_output: self.compile_output,
            wall_time_ms: opt_int("executions.wall_time_ms", self.wall_time_ms)?,
            cpu_time_ms: opt_int("executions.cpu_time_ms", self.cpu_time_ms)?,
            peak_memory_bytes: opt_int("executions.peak_memory_bytes", self.peak_memory_bytes)?,
            output_truncated: self.output_truncated,
            last_error: self.last_error,
            dead_lettered_at: self.dead_lettered_at,
        })
    }
}
