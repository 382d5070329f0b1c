//! The lease side of CI jobs on PostgreSQL: claim (`FOR UPDATE SKIP LOCKED`, so concurrent
//! claimers never share a job), heartbeat, fenced step updates, complete, release, cancel and
//! the reaper. Each change is one transaction that locks the job row first; `NOTIFY`s ride in
//! it (delivered on commit) and the local signals follow the commit.

use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;
use voidrunner_domain::Timestamp;
use voidrunner_store::{
    Job, JobCompleteOutcome, JobId, JobLease, JobResult, JobSignal, JobStatus, JobStream,
    LeaseStatus, ReleaseOutcome, ReleasePlan as Plan, ReleaseReason, STEP_CANCELLED,
    STEP_DEAD_LETTERED, Scope, StepUpdate, StoreError, StoreResult, failures_to_json,
    outputs_to_json, release_plan, step_status_event,
};

use crate::PostgresStore;
use crate::error::map_sqlx;
use crate::jobs::{JOB_COLUMNS, JobRow, clamp, insert_event, int, notify_job, status_changed};
use crate::queue::{LEASE_EXPIRED, QUOTA_RETRIES, owner_within_quota};
use crate::signals::{Kind, notify};

/// The fencing condition on `jobs`: still running, same worker, same attempt.
const HELD: &str = "id = $1 AND status = 'running' AND lease_owner = $2 AND attempt = $3";

/// Most expired leases handled by one reaper call.
const REAP_BATCH: i64 = 500;

/// The fields of a running job that decide what a release does to it.
#[derive(Debug, sqlx::FromRow)]
struct HeldJob {
    id: Uuid,
    attempt: i32,
    max_attempts: i32,
    cancel_requested_at: Option<Timestamp>,
}

/// Locks the job row if `lease` is still held; `false` when it is not.
pub(crate) async fn lock_held(conn: &mut PgConnection, lease: &JobLease) -> StoreResult<bool> {
    let held: Option<i32> =
        sqlx::query_scalar(&format!("SELECT 1 FROM jobs WHERE {HELD} FOR UPDATE"))
            .bind(lease.job_id.as_uuid())
            .bind(&lease.worker_id)
            .bind(int(lease.attempt))
            .fetch_optional(conn)
            .await
            .map_err(map_sqlx)?;
    Ok(held.is_some())
}

/// Writes one step's state and its status event (job row locked); returns the event's seq.
/// `NotFound` when the step index does not exist.
pub(crate) async fn write_step(
    conn: &mut PgConnection,
    lease: &JobLease,
    u: &StepUpdate,
) -> StoreResult<i64> {
    let id = lease.job_id.as_uuid();
    let name: Option<String> = sqlx::query_scalar(
        "UPDATE job_steps SET state = $1, exit_code = $2, detail = $3, \
             started_at = COALESCE($4, started_at), finished_at = $5, wall_ms = $6, \
             cpu_ms = $7, peak_memory_bytes = $8 \
         WHERE job_id = $9 AND idx = $10 RETURNING name",
    )
    .bind(u.state.as_str())
    .bind(u.exit_code)
    .bind(&u.detail)
    .bind(u.started_at)
    .bind(u.finished_at)
    .bind(u.wall_ms.map(clamp))
    .bind(u.cpu_ms.map(clamp))
    .bind(u.peak_memory_bytes.map(clamp))
    .bind(id)
    .bind(int(u.idx))
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    let name = name.ok_or(StoreError::NotFound)?;
    let data = step_status_event(u.state, u.exit_code, u.detail.as_deref());
    let now = u
        .finished_at
        .or(u.started_at)
        .unwrap_or_else(voidrunner_store::now);
    insert_event(
        conn,
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
pub(crate) async fn reset_attempt(conn: &mut PgConnection, id: Uuid) -> StoreResult<()> {
    sqlx::query(
        "UPDATE job_steps SET state = 'pending', exit_code = NULL, detail = NULL, \
         started_at = NULL, finished_at = NULL, wall_ms = NULL, cpu_ms = NULL, \
         peak_memory_bytes = NULL WHERE job_id = $1",
    )
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    sqlx::query("DELETE FROM job_artifacts WHERE job_id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map_err(map_sqlx)?;
    Ok(())
}

/// Closes unfinished steps of an ending job: `running` → `cancelled`, `pending` → `skipped`.
async fn close_steps(
    conn: &mut PgConnection,
    id: Uuid,
    detail: &str,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE job_steps SET state = CASE state WHEN 'running' THEN 'cancelled' \
             ELSE 'skipped' END, detail = COALESCE(detail, $1), \
             finished_at = CASE state WHEN 'running' THEN $2 ELSE finished_at END \
         WHERE job_id = $3 AND state IN ('pending', 'running')",
    )
    .bind(detail)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await
    .map_err(map_sqlx)?;
    Ok(())
}

/// Marks a queued or running job `cancelled`, closes its steps, announces it.
async fn cancel_row(
    conn: &mut PgConnection,
    store: &PostgresStore,
    id: Uuid,
    now: Timestamp,
) -> StoreResult<Job> {
    sqlx::query(
        "UPDATE jobs SET status = 'cancelled', lease_owner = NULL, lease_until = NULL, \
         finished_at = $1, cancel_requested_at = COALESCE(cancel_requested_at, $1) WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    close_steps(conn, id, STEP_CANCELLED, now).await?;
    notify_job(conn, store, Kind::JobFinished, JobId(id)).await?;
    status_changed(conn, store, id, now).await
}

/// Applies a release plan to a held (locked) job inside `tx`, including its `NOTIFY`.
async fn apply(
    store: &PostgresStore,
    tx: &mut Transaction<'static, Postgres>,
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
                 run_after = $1, attempt = attempt - $2, last_error = COALESCE($3, last_error) \
                 WHERE id = $4",
            )
            .bind(run_after)
            .bind(i32::from(refund))
            .bind(error)
            .bind(row.id)
            .execute(&mut **tx)
            .await
            .map_err(map_sqlx)?;
            reset_attempt(tx, row.id).await?;
            notify(tx, &store.hub, Kind::Work, None).await?;
            ReleaseOutcome::Requeued
        }
        Plan::DeadLetter { error } => {
            sqlx::query(
                "UPDATE jobs SET status = 'failed', lease_owner = NULL, lease_until = NULL, \
                 finished_at = $1, dead_lettered_at = $1, last_error = $2 WHERE id = $3",
            )
            .bind(now)
            .bind(error)
            .bind(row.id)
            .execute(&mut **tx)
            .await
            .map_err(map_sqlx)?;
            close_steps(tx, row.id, STEP_DEAD_LETTERED, now).await?;
            notify_job(tx, store, Kind::JobFinished, JobId(row.id)).await?;
            ReleaseOutcome::DeadLettered
        }
        Plan::Cancel => {
            cancel_row(tx, store, row.id, now).await?;
            return Ok(ReleaseOutcome::Cancelled);
        }
    };
    status_changed(tx, store, row.id, now).await?;
    Ok(outcome)
}

/// Sends the local wake-up matching a release outcome (after commit). Event signals come
/// back through `LISTEN` (origin `db`).
fn signal(store: &PostgresStore, id: JobId, outcome: ReleaseOutcome) {
    match outcome {
        ReleaseOutcome::Requeued => store.hub.signals.notify_work(),
        ReleaseOutcome::DeadLettered | ReleaseOutcome::Cancelled => {
            store.hub.signals.notify_job(JobSignal::Finished(id));
        }
        ReleaseOutcome::LeaseLost => {}
    }
}

impl PostgresStore {
    /// See [`voidrunner_store::JobStore::claim_next_job`].
    pub(crate) async fn claim_job(
        &self,
        worker_id: &str,
        lease_until: Timestamp,
        now: Timestamp,
        per_user_limit: Option<u32>,
    ) -> StoreResult<Option<Job>> {
        // With a quota, like executions (see `queue.rs`): claim, then re-count the owner's
        // running jobs under its advisory lock; over the quota, roll back and pass it over.
        let quota = if per_user_limit.is_some() {
            "AND j.owner_id <> ALL($4) AND j.owner_id NOT IN ( \
                 SELECT r.owner_id FROM jobs r WHERE r.status = 'running' \
                 GROUP BY r.owner_id HAVING count(*) >= $5)"
        } else {
            "AND cardinality($4::uuid[]) = 0 AND $5::bigint IS NULL"
        };
        let sql = format!(
            "UPDATE jobs SET status = 'running', attempt = attempt + 1, lease_owner = $1, \
                 worker_id = $1, lease_until = $2, started_at = $3 \
             WHERE id = (SELECT j.id FROM jobs j WHERE j.status = 'queued' AND j.run_after <= $3 \
                 {quota} ORDER BY j.priority DESC, j.created_at, j.id \
                 LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, owner_id"
        );
        let limit = per_user_limit.map(i64::from);
        let mut skipped: Vec<Uuid> = Vec::new();
        for _ in 0..=QUOTA_RETRIES {
            let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
            let claimed: Option<(Uuid, Uuid)> = sqlx::query_as(&sql)
                .bind(worker_id)
                .bind(lease_until)
                .bind(now)
                .bind(&skipped)
                .bind(limit)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_sqlx)?;
            let Some((id, owner)) = claimed else {
                return Ok(None);
            };
            if let Some(limit) = limit
                && !owner_within_quota(&mut tx, self.hub_scope(), "jobs", owner, limit).await?
            {
                // Another claimer of this owner committed first: give the row back.
                tx.rollback().await.map_err(map_sqlx)?;
                skipped.push(owner);
                continue;
            }
            let job = status_changed(&mut tx, self, id, now).await?;
            tx.commit().await.map_err(map_sqlx)?;
            return Ok(Some(job));
        }
        Ok(None)
    }

    /// See [`voidrunner_store::JobStore::heartbeat_job`].
    pub(crate) async fn heartbeat_job_lease(
        &self,
        lease: &JobLease,
        lease_until: Timestamp,
    ) -> StoreResult<LeaseStatus> {
        let cancel: Option<bool> = sqlx::query_scalar(&format!(
            "UPDATE jobs SET lease_until = $4 WHERE {HELD} \
             RETURNING cancel_requested_at IS NOT NULL"
        ))
        .bind(lease.job_id.as_uuid())
        .bind(&lease.worker_id)
        .bind(int(lease.attempt))
        .bind(lease_until)
        .fetch_optional(&self.pool)
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
        let id = lease.job_id.as_uuid();
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        if !lock_held(&mut tx, lease).await? {
            return Ok(JobCompleteOutcome::LeaseLost);
        }
        for u in &r.steps {
            write_step(&mut tx, lease, u).await?;
        }
        sqlx::query(
            "UPDATE jobs SET status = $1, failures = $2, outputs = $3, finished_at = $4, \
             lease_owner = NULL, lease_until = NULL WHERE id = $5",
        )
        .bind(r.status.as_str())
        .bind(Json(failures_to_json(&r.failures)))
        .bind(Json(outputs_to_json(&r.outputs)))
        .bind(r.finished_at)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let job = status_changed(&mut tx, self, id, r.finished_at).await?;
        notify_job(&mut tx, self, Kind::JobFinished, job.id).await?;
        tx.commit().await.map_err(map_sqlx)?;
        self.hub.signals.notify_job(JobSignal::Finished(job.id));
        Ok(JobCompleteOutcome::Completed(Box::new(job)))
    }

    /// See [`voidrunner_store::JobStore::release_job`].
    pub(crate) async fn release_job_lease(
        &self,
        lease: &JobLease,
        reason: ReleaseReason,
        now: Timestamp,
    ) -> StoreResult<ReleaseOutcome> {
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let row = sqlx::query_as::<_, HeldJob>(&format!(
            "SELECT id, attempt, max_attempts, cancel_requested_at FROM jobs WHERE {HELD} \
             FOR UPDATE"
        ))
        .bind(lease.job_id.as_uuid())
        .bind(&lease.worker_id)
        .bind(int(lease.attempt))
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let Some(row) = row else {
            return Ok(ReleaseOutcome::LeaseLost);
        };
        let plan = release_plan(
            i64::from(row.attempt),
            i64::from(row.max_attempts),
            row.cancel_requested_at.is_some(),
            reason,
            now,
        );
        let outcome = apply(self, &mut tx, &row, plan, now).await?;
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
        let key = id.as_uuid();
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let current = sqlx::query_as::<_, JobRow>(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 FOR UPDATE"
        ))
        .bind(key)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_sqlx)?
        .into_job()?;
        if matches!(scope, Scope::Owner(o) if o != current.owner_id) {
            return Err(StoreError::NotFound);
        }
        let (job, finished) = match current.status {
            JobStatus::Queued => (cancel_row(&mut tx, self, key, now).await?, true),
            JobStatus::Running => {
                let job = sqlx::query_as::<_, JobRow>(&format!(
                    "UPDATE jobs SET cancel_requested_at = COALESCE(cancel_requested_at, $1) \
                     WHERE id = $2 RETURNING {JOB_COLUMNS}"
                ))
                .bind(now)
                .bind(key)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_sqlx)?
                .into_job()?;
                notify_job(&mut tx, self, Kind::JobCancel, id).await?;
                (job, false)
            }
            _ => return Err(StoreError::Conflict("job already finished".to_owned())),
        };
        tx.commit().await.map_err(map_sqlx)?;
        if finished {
            signal(self, id, ReleaseOutcome::Cancelled);
        } else {
            self.hub.signals.notify_job(JobSignal::Cancel(id));
        }
        Ok(job)
    }

    /// See [`voidrunner_store::JobStore::reap_expired_job_leases`].
    pub(crate) async fn reap_jobs(
        &self,
        now: Timestamp,
        retry_at: &(dyn Fn(u32) -> Timestamp + Send + Sync),
    ) -> StoreResult<Vec<(JobId, ReleaseOutcome)>> {
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let rows = sqlx::query_as::<_, HeldJob>(
            "SELECT id, attempt, max_attempts, cancel_requested_at FROM jobs \
             WHERE status = 'running' AND lease_until < $1 ORDER BY lease_until LIMIT $2 \
             FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
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
                i64::from(row.attempt),
                i64::from(row.max_attempts),
                row.cancel_requested_at.is_some(),
                reason,
                now,
            );
            let outcome = apply(self, &mut tx, &row, plan, now).await?;
            done.push((JobId(row.id), outcome));
        }
        tx.commit().await.map_err(map_sqlx)?;
        for (id, outcome) in &done {
            signal(self, *id, *outcome);
        }
        Ok(done)
    }
}
