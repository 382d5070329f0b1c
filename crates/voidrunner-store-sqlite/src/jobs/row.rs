//! `jobs` and `job_steps` rows and the event-log writes every job change shares.

use std::collections::BTreeMap;

use sqlx::types::Json;
use sqlx::{Sqlite, Transaction};
use uuid::fmt::Hyphenated;
use voidrunner_domain::{Timestamp, UserId};
use voidrunner_store::{
    Job, JobId, JobStatus, JobStep, JobStream, JobWorkflowLink, NewJob, StepState, StoreResult,
    WorkflowId, failures_from_json, job_status_event, outputs_from_json,
};

use crate::convert::{micros, opt_ts, text, ts};
use crate::error::{corrupt, map_sqlx};

/// Columns of [`JobRow`].
pub(crate) const JOB_COLUMNS: &str = "id, owner_id, name, definition, status, priority, \
    attempt, max_attempts, worker_id, lease_owner, lease_until, run_after, cancel_requested_at, \
    created_at, started_at, finished_at, failures, outputs, request_id, has_tarball, last_error, \
    dead_lettered_at, workflow_id, workflow_node, workflow_context";

/// A `jobs` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct JobRow {
    id: Hyphenated,
    owner_id: Hyphenated,
    name: String,
    definition: Json<serde_json::Value>,
    status: String,
    priority: i64,
    attempt: i64,
    max_attempts: i64,
    worker_id: Option<String>,
    lease_owner: Option<String>,
    lease_until: Option<i64>,
    run_after: i64,
    cancel_requested_at: Option<i64>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    failures: Json<serde_json::Value>,
    outputs: Json<serde_json::Value>,
    request_id: Option<String>,
    has_tarball: bool,
    last_error: Option<String>,
    dead_lettered_at: Option<i64>,
    workflow_id: Option<Hyphenated>,
    workflow_node: Option<String>,
    workflow_context: Option<Json<serde_json::Value>>,
}

impl JobRow {
    /// Converts to the store's job.
    pub(crate) fn into_job(self) -> StoreResult<Job> {
        Ok(Job {
            id: JobId(self.id.into_uuid()),
            owner_id: UserId(self.owner_id.into_uuid()),
            name: self.name,
            definition: self.definition.0,
            status: JobStatus::parse(&self.status)
                .ok_or_else(|| corrupt("jobs.status", &self.status))?,
            priority: u8::try_from(self.priority)
                .map_err(|_| corrupt("jobs.priority", self.priority))?,
            attempt: u32::try_from(self.attempt)
                .map_err(|_| corrupt("jobs.attempt", self.attempt))?,
            max_attempts: u32::try_from(self.max_attempts)
                .map_err(|_| corrupt("jobs.max_attempts", self.max_attempts))?,
            worker_id: self.worker_id,
            lease_owner: self.lease_owner,
            lease_until: opt_ts("jobs.lease_until", self.lease_until)?,
            run_after: ts("jobs.run_after", self.run_after)?,
            cancel_requested_at: opt_ts("jobs.cancel_requested_at", self.cancel_requested_at)?,
            created_at: ts("jobs.created_at", self.created_at)?,
            started_at: opt_ts("jobs.started_at", self.started_at)?,
            finished_at: opt_ts("jobs.finished_at", self.finished_at)?,
            failures: failures_from_json(&self.failures.0)
                .ok_or_else(|| corrupt("jobs.failures", &self.failures.0))?,
            outputs: outputs_from_json(&self.outputs.0)
                .ok_or_else(|| corrupt("jobs.outputs", &self.outputs.0))?,
            request_id: self.request_id,
            has_tarball: self.has_tarball,
            last_error: self.last_error,
            dead_lettered_at: opt_ts("jobs.dead_lettered_at", self.dead_lettered_at)?,
            workflow: match (self.workflow_id, self.workflow_node) {
                (Some(id), Some(node)) => Some(JobWorkflowLink {
                    workflow_id: WorkflowId(id.into_uuid()),
                    node,
                    context: self
                        .workflow_context
                        .map_or(serde_json::Value::Null, |c| c.0),
                }),
                (None, None) => None,
                (id, _) => return Err(corrupt("jobs.workflow_node", format!("{id:?}"))),
            },
        })
    }
}

/// A `job_steps` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StepRow {
    idx: i64,
    name: String,
    state: String,
    exit_code: Option<i32>,
    detail: Option<String>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    wall_ms: Option<i64>,
    cpu_ms: Option<i64>,
    peak_memory_bytes: Option<i64>,
}

/// Nullable non-negative INTEGER → `u64`.
fn opt_u64(column: &'static str, v: Option<i64>) -> StoreResult<Option<u64>> {
    v.map(|v| u64::try_from(v).map_err(|_| corrupt(column, v)))
        .transpose()
}

/// `u64` → INTEGER, saturating.
pub(crate) fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl StepRow {
    pub(crate) fn into_step(self) -> StoreResult<JobStep> {
        Ok(JobStep {
            idx: u32::try_from(self.idx).map_err(|_| corrupt("job_steps.idx", self.idx))?,
            name: self.name,
            state: StepState::parse(&self.state)
                .ok_or_else(|| corrupt("job_steps.state", &self.state))?,
            exit_code: self.exit_code,
            detail: self.detail,
            started_at: opt_ts("job_steps.started_at", self.started_at)?,
            finished_at: opt_ts("job_steps.finished_at", self.finished_at)?,
            wall_ms: opt_u64("job_steps.wall_ms", self.wall_ms)?,
            cpu_ms: opt_u64("job_steps.cpu_ms", self.cpu_ms)?,
            peak_memory_bytes: opt_u64("job_steps.peak_memory_bytes", self.peak_memory_bytes)?,
        })
    }
}

/// Appends one event with the next seq of the job's log inside `tx`; returns the seq.
pub(crate) async fn insert_event(
    tx: &mut Transaction<'static, Sqlite>,
    id: Hyphenated,
    attempt: u32,
    step: Option<&str>,
    stream: JobStream,
    data: &[u8],
    now: Timestamp,
) -> StoreResult<i64> {
    sqlx::query_scalar(
        "INSERT INTO job_events (job_id, seq, attempt, step, stream, data, created_at) \
         VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_id = ?1), \
                 ?2, ?3, ?4, ?5, ?6) RETURNING seq",
    )
    .bind(id)
    .bind(i64::from(attempt))
    .bind(step)
    .bind(stream.as_str())
    .bind(data)
    .bind(micros(now))
    .fetch_one(&mut **tx)
    .await
    .map_err(map_sqlx)
}

/// Reads a job row inside `tx` (after a change) and writes its status event.
pub(crate) async fn status_changed(
    tx: &mut Transaction<'static, Sqlite>,
    id: Hyphenated,
    now: Timestamp,
) -> StoreResult<Job> {
    let job = sqlx::query_as::<_, JobRow>(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"))
        .bind(id)
        .fetch_one(&mut **tx)
        .await
        .map_err(map_sqlx)?
        .into_job()?;
    let data = job_status_event(job.status, job.attempt, job.last_error.as_deref());
    insert_event(tx, id, job.attempt, None, JobStream::Status, &data, now).await?;
    Ok(job)
}

/// Inserts a `queued` job with its step rows, sealed secrets and first status event inside
/// `tx` (the caller commits and signals work): what `create_job` writes, shared with
/// `start_workflow_node`, which passes the node's `link`.
pub(crate) async fn insert_job(
    tx: &mut Transaction<'static, Sqlite>,
    new: &NewJob,
    sealed_secrets: &BTreeMap<String, Vec<u8>>,
    link: Option<&JobWorkflowLink>,
) -> StoreResult<Job> {
    let id = text(new.id.as_uuid());
    let at = micros(new.created_at);
    sqlx::query(
        "INSERT INTO jobs (id, owner_id, name, definition, status, priority, max_attempts, \
             run_after, created_at, request_id, has_tarball, workflow_id, workflow_node, \
             workflow_context) \
         VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(text(new.owner_id.as_uuid()))
    .bind(&new.name)
    .bind(Json(&new.definition))
    .bind(i64::from(new.priority))
    .bind(i64::from(new.max_attempts.max(1)))
    .bind(at)
    .bind(at)
    .bind(&new.request_id)
    .bind(new.has_tarball)
    .bind(link.map(|l| text(l.workflow_id.0)))
    .bind(link.map(|l| l.node.as_str()))
    .bind(link.map(|l| Json(&l.context)))
    .execute(&mut **tx)
    .await
    .map_err(map_sqlx)?;
    for (idx, name) in new.steps.iter().enumerate() {
        sqlx::query("INSERT INTO job_steps (job_id, idx, name, state) VALUES (?, ?, ?, 'pending')")
            .bind(id)
            .bind(i64::try_from(idx).unwrap_or(i64::MAX))
            .bind(name)
            .execute(&mut **tx)
            .await
            .map_err(map_sqlx)?;
    }
    for (name, sealed) in sealed_secrets {
        sqlx::query("INSERT INTO job_secrets (job_id, name, sealed) VALUES (?, ?, ?)")
            .bind(id)
            .bind(name)
            .bind(sealed)
            .execute(&mut **tx)
            .await
            .map_err(map_sqlx)?;
    }
    status_changed(tx, id, new.created_at).await
}
