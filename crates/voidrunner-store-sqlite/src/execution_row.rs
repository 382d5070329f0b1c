//! The `executions` row and its conversion to the domain [`Execution`].

use std::collections::BTreeMap;

use sqlx::types::Json;
use uuid::fmt::Hyphenated;
use voidrunner_domain::{
    Execution, ExecutionId, ExecutionStatus, ResourceLimits, TaskId, UserId, Verdict,
};
use voidrunner_store::StoreResult;

use crate::convert::{opt_ts, ts};
use crate::error::corrupt;

/// An `executions` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ExecutionRow {
    pub id: Hyphenated,
    pub task_id: Option<Hyphenated>,
    pub owner_id: Hyphenated,
    pub status: String,
    pub priority: i64,
    pub language: String,
    pub code: String,
    pub stdin: Option<String>,
    pub env: Json<BTreeMap<String, String>>,
    pub limits: Json<ResourceLimits>,
    pub attempt: i64,
    pub max_attempts: i64,
    pub worker_id: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub run_after: i64,
    pub cancel_requested_at: Option<i64>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub verdict: Option<Json<Verdict>>,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
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
    pub dead_lettered_at: Option<i64>,
}

/// Columns to select (or return), in [`ExecutionRow`] order.
pub(crate) const COLUMNS: &str = "id, task_id, owner_id, status, priority, language, code, \
    stdin, env, limits, attempt, max_attempts, worker_id, lease_owner, lease_until, run_after, \
    cancel_requested_at, created_at, started_at, finished_at, verdict, exit_code, signal, \
    stdout, stderr, compile_output, wall_time_ms, cpu_time_ms, peak_memory_bytes, \
    output_truncated, last_error, interactive, callback_url, request_id, dead_lettered_at";

/// A stored integer that must fit a smaller unsigned type.
fn unsigned<T: TryFrom<i64>>(column: &'static str, v: i64) -> StoreResult<T> {
    T::try_from(v).map_err(|_| corrupt(column, v))
}

/// A nullable stored integer that must fit a smaller type.
fn opt_int<T: TryFrom<i64>>(column: &'static str, v: Option<i64>) -> StoreResult<Option<T>> {
    v.map(|v| unsigned(column, v)).transpose()
}

impl ExecutionRow {
    /// Converts to the domain execution.
    pub fn into_execution(self) -> StoreResult<Execution> {
        Ok(Execution {
            id: ExecutionId(self.id.into_uuid()),
            task_id: self.task_id.map(|t| TaskId(t.into_uuid())),
            owner_id: UserId(self.owner_id.into_uuid()),
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
            lease_until: opt_ts("executions.lease_until", self.lease_until)?,
            run_after: ts("executions.run_after", self.run_after)?,
            cancel_requested_at: opt_ts(
                "executions.cancel_requested_at",
                self.cancel_requested_at,
            )?,
            created_at: ts("executions.created_at", self.created_at)?,
            started_at: opt_ts("executions.started_at", self.started_at)?,
            finished_at: opt_ts("executions.finished_at", self.finished_at)?,
            verdict: self.verdict.map(|v| v.0),
            exit_code: opt_int("executions.exit_code", self.exit_code)?,
            signal: opt_int("executions.signal", self.signal)?,
            stdout: self.stdout,
            stderr: self.stderr,
            compile_output: self.compile_output,
            wall_time_ms: opt_int("executions.wall_time_ms", self.wall_time_ms)?,
            cpu_time_ms: opt_int("executions.cpu_time_ms", self.cpu_time_ms)?,
            peak_memory_bytes: opt_int("executions.peak_memory_bytes", self.peak_memory_bytes)?,
            output_truncated: self.output_truncated,
            last_error: self.last_error,
            dead_lettered_at: opt_ts("executions.dead_lettered_at", self.dead_lettered_at)?,
        })
    }
}
