//! `jobs` and `job_steps` rows and the event-log writes every job change shares.

use std::collections::BTreeMap;

use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;
use voidrunner_domain::{Timestamp, UserId};
use voidrunner_store::{
    Job, JobId, JobStatus, JobStep, JobStream, JobWorkflowLink, NewJob, StepState, StoreResult,
    WorkflowId, failures_from_json, job_status_event, outputs_from_json,
};

use crate::PostgresStore;
use crate::error::{corrupt, map_sqlx};
use crate::signals::{CHANNEL, Kind, notify};

/// Columns of [`JobRow`].
pub(crate) const JOB_COLUMNS: &str = "id, owner_id, name, definition, status, priority, \
    attempt, max_attempts, worker_id, lease_owner, lease_until, run_after, cancel_requested_at, \
    created_at, started_at, finished_at, failures, outputs, request_id, has_tarball, last_error, \
    dead_lettered_at, workflow_id, workflow_node, workflow_context";

/// A `jobs` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct JobRow {
    id: Uuid,
    owner_id: Uuid,
    name: String,
    definition: Json<serde_json::Value>,
    status: String,
    priority: i16,
    attempt: i32,
    max_attempts: i32,
    worker_id: Option<String>,
    lease_owner: Option<String>,
    lease_until: Option<Timestamp>,
    run_after: Timestamp,
    cancel_requested_at: Option<Timestamp>,
    created_at: Timestamp,
    started_at: Option<Timestamp>,
    finished_at: Option<Timestamp>,
    failures: Json<serde_json::Value>,
    outputs: Json<serde_json::Value>,
    request_id: Option<String>,
    has_tarball: bool,
    last_error: Option<String>,
    dead_lettered_at: Option<Timestamp>,
    workflow_id: Option<Uuid>,
    workflow_node: Option<String>,
    workflow_context: Option<Json<serde_json::Value>>,
}

impl JobRow {
    /// Converts to the store's job.
    pub(crate) fn into_job(self) -> StoreResult<Job> {
        Ok(Job {
            id: JobId(self.id),
            owner_id: UserId(self.owner_id),
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
            lease_until: self.lease_until,
            run_after: self.run_after,
            cancel_requested_at: self.cancel_requested_at,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            failures: failures_from_json(&self.failures.0)
                .ok_or_else(|| corrupt("jobs.failures", &self.failures.0))?,
            outputs: outputs_from_json(&self.outputs.0)
                .ok_or_else(|| corrupt("jobs.outputs", &self.outputs.0))?,
            request_id: self.request_id,
            has_tarball: self.has_tarball,
            last_error: self.last_error,
            dead_lettered_at: self.dead_lettered_at,
            workflow: match (self.workflow_id, self.workflow_node) {
                (Some(id), Some(node)) => Some(JobWorkflowLink {
                    workflow_id: WorkflowId(id),
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
    idx: i32,
    name: String,
    state: String,
    exit_code: Option<i32>,
    detail: Option<String>,
    started_at: Option<Timestamp>,
    finished_at: Option<Timestamp>,
    wall_ms: Option<i64>,
    cpu_ms: Option<i64>,
    peak_memory_bytes: Option<i64>,
}

/// Nullable non-negative bigint → `u64`.
fn opt_u64(column: &'static str, v: Option<i64>) -> StoreResult<Option<u64>> {
    v.map(|v| u64::try_from(v).map_err(|_| corrupt(column, v)))
        .transpose()
}

/// `u64` → bigint, saturating.
pub(crate) fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `u32` → integer, saturating.
pub(crate) fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
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
            started_at: self.started_at,
            finished_at: self.finished_at,
            wall_ms: opt_u64("job_steps.wall_ms", self.wall_ms)?,
            cpu_ms: opt_u64("job_steps.cpu_ms", self.cpu_ms)?,
            peak_memory_bytes: opt_u64("job_steps.peak_memory_bytes", self.peak_memory_bytes)?,
        })
    }
}

/// Appends one event with the next seq of the job's log (the caller holds the job row's
/// lock); returns the seq.
pub(crate) async fn insert_event(
    conn: &mut PgConnection,
    id: Uuid,
    attempt: u32,
    step: Option<&str>,
    stream: JobStream,
    data: &[u8],
    now: Timestamp,
) -> StoreResult<i64> {
    sqlx::query_scalar(
        "INSERT INTO job_events (job_id, seq, attempt, step, stream, data, created_at) \
         VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_id = $1), \
                 $2, $3, $4, $5, $6) RETURNING seq",
    )
    .bind(id)
    .bind(int(attempt))
    .bind(step)
    .bind(stream.as_str())
    .bind(data)
    .bind(now)
    .fetch_one(conn)
    .await
    .map_err(map_sqlx)
}

/// Announces committed events of a job (delivered on commit, to every handle).
pub(crate) async fn notify_events(
    conn: &mut PgConnection,
    store: &PostgresStore,
    id: Uuid,
    last_seq: i64,
) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(format!(
            "jobevents db {id}/{last_seq} {}",
            store.hub_scope()
        ))
        .execute(conn)
        .await
        .map_err(map_sqlx)?;
    Ok(())
}

/// `NOTIFY` of a job kind (cancel, finished) to the other handles.
pub(crate) async fn notify_job(
    conn: &mut PgConnection,
    store: &PostgresStore,
    kind: Kind,
    id: JobId,
) -> StoreResult<()> {
    notify(
        conn,
        &store.hub,
        kind,
        Some(voidrunner_domain::ExecutionId(id.as_uuid())),
    )
    .await
}

/// Reads a job row (after a change, row locked) and writes and announces its status event.
pub(crate) async fn status_changed(
    conn: &mut PgConnection,
    store: &PostgresStore,
    id: Uuid,
    now: Timestamp,
) -> StoreResult<Job> {
    let job = sqlx::query_as::<_, JobRow>(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .map_err(map_sqlx)?
        .into_job()?;
    let data = job_status_event(job.status, job.attempt, job.last_error.as_deref());
    let seq = insert_event(conn, id, job.attempt, None, JobStream::Status, &data, now).await?;
    notify_events(conn, store, id, seq).await?;
    Ok(job)
}

/// Inserts a `queued` job with its step rows, sealed secrets and first status event and
/// queues the work `NOTIFY` on `conn` (the caller commits, then signals work locally): what
/// `create_job` writes, shared with `start_workflow_node`, which passes the node's `link`.
pub(crate) async fn insert_job(
    conn: &mut PgConnection,
    store: &PostgresStore,
    new: &NewJob,
    sealed_secrets: &BTreeMap<String, Vec<u8>>,
    link: Option<&JobWorkflowLink>,
) -> StoreResult<Job> {
    let id = new.id.as_uuid();
    sqlx::query(
        "INSERT INTO jobs (id, owner_id, name, definition, status, priority, max_attempts, \
             run_after, created_at, request_id, has_tarball, workflow_id, workflow_node, \
             workflow_context) \
         VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $7, $8, $9, $10, $11, $12)",
    )
    .bind(id)
    .bind(new.owner_id.as_uuid())
    .bind(&new.name)
    .bind(Json(&new.definition))
    .bind(i16::from(new.priority))
    .bind(int(new.max_attempts.max(1)))
    .bind(new.created_at)
    .bind(&new.request_id)
    .bind(new.has_tarball)
    .bind(link.map(|l| l.workflow_id.0))
    .bind(link.map(|l| l.node.as_str()))
    .bind(link.map(|l| Json(&l.context)))
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    let names: Vec<&str> = new.steps.iter().map(String::as_str).collect();
    sqlx::query(
        "INSERT INTO job_steps (job_id, idx, name, state) \
         SELECT $1, (t.ord - 1)::integer, t.name, 'pending' \
         FROM unnest($2::text[]) WITH ORDINALITY AS t(name, ord)",
    )
    .bind(id)
    .bind(&names)
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    let (snames, sealed): (Vec<&str>, Vec<&[u8]>) = sealed_secrets
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .unzip();
    sqlx::query(
        "INSERT INTO job_secrets (job_id, name, sealed) \
         SELECT $1, t.name, t.sealed FROM unnest($2::text[], $3::bytea[]) AS t(name, sealed)",
    )
    .bind(id)
    .bind(&snames)
    .bind(&sealed)
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    let job = status_changed(&mut *conn, store, id, new.created_at).await?;
    notify(conn, &store.hub, Kind::Work, None).await?;
    Ok(job)
}
