//! The lease side of CI jobs on SQLite: claim, heartbeat, fenced step updates, complete,
//! release, cancel and the reaper. Every change runs in one `BEGIN IMMEDIATE` transaction on
//! the single writer (so checks and writes cannot interleave); signals follow the commit.

use sqlx::types::Json;
use sqlx::{Sqlite, Transaction};
use uuid::fmt::Hyphenated;
use voidrunner_domain::Timestamp;
use voidrunner_store::{
    Job, JobCompleteOutcome, JobId, JobLease, JobResult, JobSignal, JobStatus, JobStream,
    LeaseStatus, ReleaseOutcome, ReleasePlan as Plan, ReleaseReason, STEP_CANCELLED,
    STEP_DEAD_LETTERED, Scope, StepUpdate, StoreError, StoreResult, failures_to_json,
    outputs_to_json, release_plan, step_status_event,
};

use crate::SqliteStore;
use crate::convert::{micros, opt_micros, text};
use crate::error::map_sqlx;
use crate::jobs::{JOB_COLUMNS, JobRow, clamp, insert_event, status_changed};
use crate::queue::{LEASE_EXPIRED, REAP_BATCH};

/// The fencing condition on `jobs`: still running, same worker, same attempt.
const HELD: &str = "id = ? AND status = 'running' AND lease_owner = ? AND attempt = ?";

/// The fields of a running job that decide what a release does to it.
#[derive(Debug, sqlx::FromRow)]
struct HeldJob {
    id: Hyphenated,
    attempt: i64,
    max_attempts: i64,
    cancel_requested_at: Option<i64>,
}

/// Writes one step's state and its status event inside `tx`; returns the event's seq.
/// `NotFound` when the step index does not exist.
pub(crate) async fn write_step(
    tx: &mut Transaction<'static, Sqlite>,
    lease: &JobLease,
    u: &StepUpdate,
) -> StoreResult<i64> {
    let id = text(lease.job_id.as_uuid());
    let name: Option<String> = sqlx::query_scalar(
        "UPDATE job_steps SET state = ?, exit_code = ?, detail = ?, \
             started_at = COALESCE(?, started_at), finished_at = ?, wall_ms = ?, cpu_ms = ?, \
             peak_memory_bytes = ? \
         WHERE job_id = ? AND idx = ? RETURNING name",
    )
    .bind(u.state.as_str())
    .bind(u.exit_code)
    .bind(&u.detail)
    .bind(opt_micros(u.started_at))
    .bind(opt_micros(u.finished_at))
    .bind(u.wall_ms.map(clamp))
    .bind(u.cpu_ms.map(clamp))
    .bind(u.peak_memory_bytes.map(clamp))
    .bind(id)
    .bind(i64::from(u.idx))
    .fetch_optional(&mut **tx)
    .await
    .map_err(map_sqlx)?;
    let name = name.ok_or(StoreError::NotFound)?;
    let data = step_status_event(u.state, u.exit_code, u.detail.as_deref());
    let now = u
        .finished_at
        .or(u.started_at)
        .unwrap_or_else(voidrunner_store::now);
    insert_event(
        tx,
        id,
        lease.attempt,
        Some(&name),
        JobStream::Status,
        &data,
        now,
    )
    .await
}

/// Forgets what an attempt left behind before the job runs again: steps back to `pending`,
/// artifact rows deleted.
pub(crate) async fn reset_attempt(
    tx: &mut Transaction<'static, Sqlite>,
    id: Hyphenated,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE job_steps SET state = 'pending', exit_code = NULL, detail = NULL, \
         started_at = NULL, finished_at = NULL, wall_ms = NULL, cpu_ms = NULL, \
         peak_memory_bytes = NULL WHERE job_id = ?",
    )
    .bind(id)
    .execute(&mut **tx)
    .await
    .map_err(map_sqlx)?;
    sqlx::query("DELETE FROM job_artifacts WHERE job_id = ?")
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(map_sqlx)?;
    Ok(())
}

/// Closes unfinished steps of an ending job: `running` → `cancelled`, `pending` → `skipped`.
async fn close_steps(
    tx: &mut Transaction<'static, Sqlite>,
    id: Hyphenated,
    detail: &str,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE job_steps SET state = CASE state WHEN 'running' THEN 'cancelled' \
             ELSE 'skipped' END, detail = COALESCE(detail, ?), \
             finished_at = CASE state WHEN 'running' THEN ? ELSE finished_at END \
         WHERE job_id = ? AND state IN ('pending', 'running')",
    )
    .bind(detail)
    .bind(micros(now))
    .bind(id)
    .execute(&mut **tx)
    .await
    .map_err(map_sqlx)?;
    Ok(())
}

/// Marks a queued or running job `cancelled` and closes its steps.
async fn cancel_row(
    tx: &mut Transaction<'static, Sqlite>,
    id: Hyphenated,
    now: Timestamp,
) -> StoreResult<Job> {
    sqlx::query(
        "UPDATE jobs SET status = 'cancelled', lease_owner = NULL, lease_until = NULL, \
         finished_at = ?1, cancel_requested_at = COALESCE(cancel_requested_at, ?1) WHERE id = ?2",
    )
    .bind(micros(now))
    .bind(id)
    .execute(&mut **tx)
    .await
    .map_err(map_sqlx)?;
    close_steps(tx, id, STEP_CANCELLED, now).await?;
    status_changed(tx, id, now).await
}

/// Applies a release plan to a held job inside `tx`.
async fn apply(
    tx: &mut Transaction<'static, Sqlite>,
    row: &HeldJob,
    plan: Plan,
    now: Timestamp,
) -> StoreResult<ReleaseOutcome> {
    let outcome = match plan {
        Plan::Requeue {
            run_after,
            refund,
            error,
        } => {
            sqlx::query(
                "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_until = NULL, \
                 run_after = ?, attempt = attempt - ?, last_error = COALESCE(?, last_error) \
                 WHERE id = ?",
            )
            .bind(micros(run_after))
            .bind(i64::from(refund))
            .bind(error)
            .bind(row.id)
            .execute(&mut **tx)
            .await
            .map_err(map_sqlx)?;
            reset_attempt(tx, row.id).await?;
            ReleaseOutcome::Requeued
        }
        Plan::DeadLetter { error } => {
            sqlx::query(
                "UPDATE jobs SET status = 'failed', lease_owner = NULL, lease_until = NULL, \
                 finished_at = ?1, dead_lettered_at = ?1, last_error = ?2 WHERE id = ?3",
            )
            .bind(micros(now))
            .bind(error)
            .bind(row.id)
            .execute(&mut **tx)
            .await
            .map_err(map_sqlx)?;
            close_steps(tx, row.id, STEP_DEAD_LETTERED, now).await?;
            ReleaseOutcome::DeadLettered
        }
        Plan::Cancel => {
            cancel_row(tx, row.id, now).await?;
            return Ok(ReleaseOutcome::Cancelled);
        }
    };
    status_changed(tx, row.id, now).await?;
    Ok(outcome)
}

/// Sends the wake-ups matching a release outcome (after commit).
fn signal(store: &SqliteStore, id: JobId, outcome: ReleaseOutcome) {
    if outcome == ReleaseOutcome::LeaseLost {
        return;
    }
    store.signals.notify_job(JobSignal::Events {
        job_id: id,
        last_seq: 0,
    });
    match outcome {
        ReleaseOutcome::Requeued => store.signals.notify_work(),
        _ => store.signals.notify_job(JobSignal::Finished(id)),
    }
}

impl SqliteStore {
    /// Whether `lease` is still held (inside a write transaction).
    pub(crate) async fn job_held(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        lease: &JobLease,
    ) -> StoreResult<bool> {
        let held: Option<i64> = sqlx::query_scalar(&format!("SELECT 1 FROM jobs WHERE {HELD}"))
            .bind(text(lease.job_id.as_uuid()))
            .bind(&lease.worker_id)
            .bind(i64::from(lease.attempt))
            .fetch_optional(&mut **tx)
            .await
            .map_err(map_sqlx)?;
        Ok(held.is_some())
    }

    /// See [`voidrunner_store::JobStore::claim_next_job`].
    pub(crate) async fn claim_job(
        &self,
        worker_id: &str,
        lease_until: Timestamp,
        now: Timestamp,
        per_user_limit: Option<u32>,
    ) -> StoreResult<Option<Job>> {
        let mut tx = self.begin_immediate().await?;
        // One writer: the count the quota filter sees cannot change before the commit.
        let quota = if per_user_limit.is_some() {
            "AND j.owner_id NOT IN (SELECT r.owner_id FROM jobs r \
                 WHERE r.status = 'running' GROUP BY r.owner_id HAVING count(*) >= ?4)"
        } else {
            "AND ?4 IS NULL"
        };
        let id: Option<Hyphenated> = sqlx::query_scalar(&format!(
            "UPDATE jobs SET status = 'running', attempt = attempt + 1, lease_owner = ?1, \
                 worker_id = ?1, lease_until = ?2, started_at = ?3 \
             WHERE id = (SELECT j.id FROM jobs j WHERE j.status = 'queued' AND j.run_after <= ?3 \
                 {quota} ORDER BY j.priority DESC, j.created_at, j.id LIMIT 1) \
             RETURNING id"
        ))
        .bind(worker_id)
        .bind(micros(lease_until))
        .bind(micros(now))
        .bind(per_user_limit.map(i64::from))
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let Some(id) = id else {
            return Ok(None);
        };
        let job = status_changed(&mut tx, id, now).await?;
        tx.commit().await.map_err(map_sqlx)?;
        self.signals.notify_job(JobSignal::Events {
            job_id: job.id,
            last_seq: 0,
        });
        Ok(Some(job))
    }

    /// See [`voidrunner_store::JobStore::heartbeat_job`].
    pub(crate) async fn heartbeat_job_lease(
        &self,
        lease: &JobLease,
        lease_until: Timestamp,
    ) -> StoreResult<LeaseStatus> {
        let cancel: Option<bool> = sqlx::query_scalar(&format!(
            "UPDATE jobs SET lease_until = ? WHERE {HELD} RETURNING cancel_requested_at IS NOT NULL"
        ))
        .bind(micros(lease_until))
        .bind(text(lease.job_id.as_uuid()))
        .bind(&lease.worker_id)
        .bind(i64::from(lease.attempt))
        .fetch_optional(&self.writer)
        .await
        .map_err(map_sqlx)?;
        Ok(match cancel {
            Some(cancel_requested) => LeaseStatus::Held { cancel_requested },
            None => LeaseStatus::Lost,
        })
    }

    /// See [`voidrunner_store::JobStore::complete_job`].
    pub(crate) async fn complete_job_lease(
        &self,
        lease: &JobLease,
        r: JobResult,
    ) -> StoreResult<JobCompleteOutcome> {
        if !r.status.is_terminal() {
            return Err(StoreError::Conflict(
                "a job completes as succeeded, failed or cancelled".into(),
            ));
        }
        let id = text(lease.job_id.as_uuid());
        let mut tx = self.begin_immediate().await?;
        if !self.job_held(&mut tx, lease).await? {
            return Ok(JobCompleteOutcome::LeaseLost);
        }
        for u in &r.steps {
            write_step(&mut tx, lease, u).await?;
        }
        sqlx::query(
            "UPDATE jobs SET status = ?, failures = ?, outputs = ?, finished_at = ?, \
             lease_owner = NULL, lease_until = NULL WHERE id = ?",
        )
        .bind(r.status.as_str())
        .bind(Json(failures_to_json(&r.failures)))
        .bind(Json(outputs_to_json(&r.outputs)))
        .bind(micros(r.finished_at))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let job = status_changed(&mut tx, id, r.finished_at).await?;
        tx.commit().await.map_err(map_sqlx)?;
        self.signals.notify_job(JobSignal::Events {
            job_id: job.id,
            last_seq: 0,
        });
        self.signals.notify_job(JobSignal::Finished(job.id));
        Ok(JobCompleteOutcome::Completed(Box::new(job)))
    }

    /// See [`voidrunner_store::JobStore::release_job`].
    pub(crate) async fn release_job_lease(
        &self,
        lease: &JobLease,
        reason: ReleaseReason,
        now: Timestamp,
    ) -> StoreResult<ReleaseOutcome> {
        let mut tx = self.begin_immediate().await?;
        let row = sqlx::query_as::<_, HeldJob>(&format!(
            "SELECT id, attempt, max_attempts, cancel_requested_at FROM jobs WHERE {HELD}"
        ))
        .bind(text(lease.job_id.as_uuid()))
        .bind(&lease.worker_id)
        .bind(i64::from(lease.attempt))
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let Some(row) = row else {
            return Ok(ReleaseOutcome::LeaseLost);
        };
        let plan = release_plan(
            row.attempt,
            row.max_attempts,
            row.cancel_requested_at.is_some(),
            reason,
            now,
        );
        let outcome = apply(&mut tx, &row, plan, now).await?;
        tx.commit().await.map_err(map_sqlx)?;
        signal(self, lease.job_id, outcome);
        Ok(outcome)
    }

    /// See [`voidrunner_store::JobStore::request_job_cancel`].
    pub(crate) async fn cancel_job(
        &self,
        scope: Scope,
        id: JobId,
        now: Timestamp,
    ) -> StoreResult<Job> {
        let key = text(id.as_uuid());
        let mut tx = self.begin_immediate().await?;
        let current =
            sqlx::query_as::<_, JobRow>(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"))
                .bind(key)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_sqlx)?
                .into_job()?;
        if matches!(scope, Scope::Owner(o) if o != current.owner_id) {
            return Err(StoreError::NotFound);
        }
        let (job, finished) = match current.status {
            JobStatus::Queued => (cancel_row(&mut tx, key, now).await?, true),
            JobStatus::Running => {
                let job = sqlx::query_as::<_, JobRow>(&format!(
                    "UPDATE jobs SET cancel_requested_at = COALESCE(cancel_requested_at, ?) \
                     WHERE id = ? RETURNING {JOB_COLUMNS}"
                ))
                .bind(micros(now))
                .bind(key)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_sqlx)?
                .into_job()?;
                (job, false)
            }
            _ => return Err(StoreError::Conflict("job already finished".to_owned())),
        };
        tx.commit().await.map_err(map_sqlx)?;
        if finished {
            signal(self, id, ReleaseOutcome::Cancelled);
        } else {
            self.signals.notify_job(JobSignal::Cancel(id));
        }
        Ok(job)
    }

    /// See [`voidrunner_store::JobStore::reap_expired_job_leases`].
    pub(crate) async fn reap_jobs(
        &self,
        now: Timestamp,
        retry_at: &(dyn Fn(u32) -> Timestamp + Send + Sync),
    ) -> StoreResult<Vec<(JobId, ReleaseOutcome)>> {
        let mut tx = self.begin_immediate().await?;
        let rows = sqlx::query_as::<_, HeldJob>(
            "SELECT id, attempt, max_attempts, cancel_requested_at FROM jobs \
             WHERE status = 'running' AND lease_until < ? ORDER BY lease_until LIMIT ?",
        )
        .bind(micros(now))
        .bind(REAP_BATCH)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let mut done = Vec::with_capacity(rows.len());
        for row in rows {
            let reason = ReleaseReason::Failure {
                error: LEASE_EXPIRED.to_owned(),
                retry_at: retry_at(u32::try_from(row.attempt).unwrap_or(u32::MAX)),
            };
            let plan = release_plan(
                row.attempt,
                row.max_attempts,
                row.cancel_requested_at.is_some(),
                reason,
                now,
            );
            let outcome = apply(&mut tx, &row, plan, now).await?;
            done.push((JobId(row.id.into_uuid()), outcome));
        }
        tx.commit().await.map_err(map_sqlx)?;
        for (id, outcome) in &done {
            signal(self, *id, *outcome);
        }
        Ok(done)
    }
}
