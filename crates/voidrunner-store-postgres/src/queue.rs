//! The queue's write side on PostgreSQL: claim, heartbeat, complete, release, reap, and the
//! shared row transitions (requeue, dead letter, cancel) they and `request_cancel` use.
//!
//! A claim is one `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1)`, so
//! concurrent claimers never block on each other's row and never get the same row. With a
//! per-user quota the claimer then takes a transaction-scoped advisory lock on the owner and
//! re-counts the owner's running rows in a fresh snapshot; over the quota it rolls back and
//! retries without that owner. Claimers of one owner therefore serialize on that lock between
//! their claim and their commit, which makes the quota strict cluster-wide.

use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;
use voidrunner_domain::{Execution, ExecutionId, ExecutionStatus, TaskId, Timestamp, Verdict};
use voidrunner_store::{
    ClaimRequest, CompleteOutcome, ExecutionResult, Lease, LeaseStatus, ReleaseOutcome,
    ReleaseReason, StoreError, StoreResult,
};

use crate::PostgresStore;
use crate::error::map_sqlx;
use crate::execution_row::{COLUMNS, ExecutionRow};
use crate::signals::{CHANNEL, Kind, notify};
use voidrunner_store::{ReleasePlan as Plan, release_plan as plan};

/// Reason recorded when the reaper finds an expired lease.
pub(crate) const LEASE_EXPIRED: &str = "lease expired: the worker stopped heartbeating";

/// Most expired leases handled by one reaper call.
const REAP_BATCH: i64 = 500;

/// How many owners over quota one claim call skips before giving up for this round.
pub(crate) const QUOTA_RETRIES: usize = 8;

/// The fields of a running row that decide what a release does to it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct HeldRow {
    pub id: Uuid,
    pub task_id: Option<Uuid>,
    pub created_at: Timestamp,
    pub attempt: i32,
    pub max_attempts: i32,
    pub cancel_requested_at: Option<Timestamp>,
}

/// `UPDATE tasks … FROM` head of a data-modifying CTE that sets the status of the task of the
/// row `c` (an `executions` row set with a `status` column).
pub(crate) const TOUCH_FROM: &str = "UPDATE tasks t SET last_execution_status = c.status FROM";

/// Condition of [`TOUCH_FROM`]: the task of `c`, when `c` is the task's newest execution.
pub(crate) const TOUCH_WHERE: &str = "t.id = c.task_id AND NOT EXISTS (SELECT 1 FROM executions n \
     WHERE n.task_id = c.task_id AND (n.created_at, n.id) > (c.created_at, c.id))";

/// Sets the task's `last_execution_status` when this execution is the task's newest, so the
/// task always shows the state of its latest run whatever order older runs finish in.
pub(crate) async fn touch_task(
    conn: &mut PgConnection,
    task_id: Option<TaskId>,
    created_at: Timestamp,
    id: ExecutionId,
    status: ExecutionStatus,
) -> StoreResult<()> {
    let Some(task_id) = task_id else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE tasks SET last_execution_status = $1 WHERE id = $2 AND NOT EXISTS ( \
             SELECT 1 FROM executions n WHERE n.task_id = $2 AND (n.created_at, n.id) > ($3, $4))",
    )
    .bind(status.as_str())
    .bind(task_id.as_uuid())
    .bind(created_at)
    .bind(id.as_uuid())
    .execute(conn)
    .await
    .map_err(map_sqlx)?;
    Ok(())
}

/// Marks a queued or running row `cancelled` (verdict `cancelled`, lease cleared).
pub(crate) async fn cancel_row(
    conn: &mut PgConnection,
    id: Uuid,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE executions SET status = 'cancelled', lease_owner = NULL, lease_until = NULL, \
         finished_at = $1, cancel_requested_at = COALESCE(cancel_requested_at, $1), \
         verdict = $2 WHERE id = $3",
    )
    .bind(now)
    .bind(Json(Verdict::Cancelled))
    .bind(id)
    .execute(conn)
    .await
    .map_err(map_sqlx)?;
    Ok(())
}

/// Applies a [`Plan`] to a held row inside `tx`, including its `NOTIFY`.
async fn apply(
    store: &PostgresStore,
    tx: &mut Transaction<'static, Postgres>,
    row: &HeldRow,
    plan: Plan,
    now: Timestamp,
) -> StoreResult<ReleaseOutcome> {
    let id = ExecutionId(row.id);
    let (outcome, status) = match plan {
        Plan::Requeue {
            run_after,
            refund,
            error,
        } => {
            sqlx::query(
                "UPDATE executions SET status = 'queued', lease_owner = NULL, \
                 lease_until = NULL, run_after = $1, attempt = attempt - $2, \
                 last_error = COALESCE($3, last_error) WHERE id = $4",
            )
            .bind(run_after)
            .bind(i32::from(refund))
            .bind(error)
            .bind(row.id)
            .execute(&mut **tx)
            .await
            .map_err(map_sqlx)?;
            (ReleaseOutcome::Requeued, ExecutionStatus::Queued)
        }
        Plan::DeadLetter { error } => {
            let verdict = Verdict::SandboxError {
                reason: error.clone(),
            };
            sqlx::query(
                "UPDATE executions SET status = 'failed', lease_owner = NULL, \
                 lease_until = NULL, finished_at = $1, dead_lettered_at = $1, \
                 last_error = $2, verdict = $3 WHERE id = $4",
            )
            .bind(now)
            .bind(error)
            .bind(Json(verdict))
            .bind(row.id)
            .execute(&mut **tx)
            .await
            .map_err(map_sqlx)?;
            (ReleaseOutcome::DeadLettered, ExecutionStatus::Failed)
        }
        Plan::Cancel => {
            cancel_row(tx, row.id, now).await?;
            (ReleaseOutcome::Cancelled, ExecutionStatus::Cancelled)
        }
    };
    touch_task(tx, row.task_id.map(TaskId), row.created_at, id, status).await?;
    match outcome {
        ReleaseOutcome::Requeued => notify(tx, &store.hub, Kind::Work, None).await?,
        _ => notify(tx, &store.hub, Kind::Finished, Some(id)).await?,
    }
    Ok(outcome)
}

/// Sends the local wake-up matching a release outcome (after commit).
fn signal(store: &PostgresStore, id: ExecutionId, outcome: ReleaseOutcome) {
    let signals = &store.hub.signals;
    match outcome {
        ReleaseOutcome::Requeued => signals.notify_work(),
        ReleaseOutcome::DeadLettered | ReleaseOutcome::Cancelled => signals.notify_finished(id),
        ReleaseOutcome::LeaseLost => {}
    }
}

/// The fencing condition: still running, same worker, same attempt.
pub(crate) const HELD: &str =
    "id = $1 AND status = 'running' AND lease_owner = $2 AND attempt = $3";

/// Lease length as a PostgreSQL-compatible duration.
fn lease_delta(lease: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::days(365))
}

impl PostgresStore {
    /// See [`voidrunner_store::ExecutionStore::claim_next`].
    pub(crate) async fn claim(&self, req: &ClaimRequest) -> StoreResult<Option<Execution>> {
        // One statement claims the row and sets the task's status (a data-modifying CTE), so
        // without a quota a claim is a single round trip in autocommit.
        // The quota filter only exists when a quota is set: the running rows it groups are
        // as many as the cluster's worker slots, but a claim without quota skips them.
        let quota = if req.per_user_running_limit.is_some() {
            "AND e.owner_id <> ALL($5) AND e.owner_id NOT IN ( \
                 SELECT r.owner_id FROM executions r WHERE r.status = 'running' \
                 GROUP BY r.owner_id HAVING count(*) >= $4)"
        } else {
            "AND $4::bigint IS NULL AND cardinality($5::uuid[]) = 0"
        };
        let sql = format!(
            "WITH claimed AS ( \
               UPDATE executions SET status = 'running', attempt = attempt + 1, \
                   lease_owner = $1, worker_id = $1, lease_until = $2, started_at = $3 \
               WHERE id = (SELECT e.id FROM executions e \
                   WHERE e.status = 'queued' AND e.run_after <= $3 \
                     {quota} \
                   ORDER BY e.priority DESC, e.created_at, e.id \
                   LIMIT 1 FOR UPDATE SKIP LOCKED) \
               RETURNING {COLUMNS}), \
             touched AS ({TOUCH_FROM} claimed c WHERE {TOUCH_WHERE}) \
             SELECT {COLUMNS} FROM claimed"
        );
        let query = |skipped: &[Uuid]| {
            sqlx::query_as::<_, ExecutionRow>(&sql)
                .bind(req.worker_id.clone())
                .bind(req.now + lease_delta(req.lease))
                .bind(req.now)
                .bind(req.per_user_running_limit.map(i64::from))
                .bind(skipped.to_vec())
        };
        let Some(limit) = req.per_user_running_limit.map(i64::from) else {
            let row = query(&[])
                .fetch_optional(&self.pool)
                .await
                .map_err(map_sqlx)?;
            return row.map(ExecutionRow::into_execution).transpose();
        };
        let mut skipped: Vec<Uuid> = Vec::new();
        for _ in 0..=QUOTA_RETRIES {
            let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
            let row = query(&skipped)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_sqlx)?;
            let Some(row) = row else {
                return Ok(None);
            };
            let execution = row.into_execution()?;
            let owner = execution.owner_id.as_uuid();
            if !owner_within_quota(&mut tx, self.hub_scope(), "executions", owner, limit).await? {
                // Another claimer of this owner committed first: give the row back.
                tx.rollback().await.map_err(map_sqlx)?;
                skipped.push(execution.owner_id.as_uuid());
                continue;
            }
            tx.commit().await.map_err(map_sqlx)?;
            return Ok(Some(execution));
        }
        Ok(None)
    }

    /// See [`voidrunner_store::ExecutionStore::heartbeat`].
    pub(crate) async fn extend_lease(
        &self,
        lease: &Lease,
        lease_until: Timestamp,
    ) -> StoreResult<LeaseStatus> {
        let sql = format!(
            "UPDATE executions SET lease_until = $4 WHERE {HELD} \
             RETURNING cancel_requested_at IS NOT NULL"
        );
        let cancel: Option<bool> = sqlx::query_scalar(&sql)
            .bind(lease.execution_id.as_uuid())
            .bind(&lease.worker_id)
            .bind(attempt(lease))
            .bind(lease_until)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(match cancel {
            Some(cancel_requested) => LeaseStatus::Held { cancel_requested },
            None => LeaseStatus::Lost,
        })
    }

    /// See [`voidrunner_store::ExecutionStore::complete_execution`].
    pub(crate) async fn complete(
        &self,
        lease: &Lease,
        r: ExecutionResult,
    ) -> StoreResult<CompleteOutcome> {
        let status = r
            .verdict
            .status()
            .and_then(|s| ExecutionStatus::Running.transition(s).ok())
            .ok_or_else(|| {
                StoreError::Conflict("a sandbox error is released for retry, not completed".into())
            })?;
        // One autocommit statement: record the result, set the task's status, and NOTIFY
        // (only when a row was updated: the notify is evaluated per returned row).
        let sql = format!(
            "WITH done AS ( \
               UPDATE executions SET status = $4, verdict = $5, exit_code = $6, signal = $7, \
                   stdout = $8, stderr = $9, compile_output = $10, output_truncated = $11, \
                   wall_time_ms = $12, cpu_time_ms = $13, peak_memory_bytes = $14, \
                   finished_at = $15, resource_samples = $18, lease_owner = NULL, \
                   lease_until = NULL \
               WHERE {HELD} RETURNING {COLUMNS}), \
             touched AS ({TOUCH_FROM} done c WHERE {TOUCH_WHERE}) \
             SELECT {COLUMNS}, pg_notify($16, $17)::text AS notified FROM done"
        );
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let row = sqlx::query_as::<_, ExecutionRow>(&sql)
            .bind(lease.execution_id.as_uuid())
            .bind(&lease.worker_id)
            .bind(attempt(lease))
            .bind(status.as_str())
            .bind(Json(&r.verdict))
            .bind(r.exit_code)
            .bind(r.signal)
            .bind(&r.stdout)
            .bind(&r.stderr)
            .bind(&r.compile_output)
            .bind(r.output_truncated)
            .bind(clamp(r.wall_time_ms))
            .bind(clamp(r.cpu_time_ms))
            .bind(r.peak_memory_bytes.map(clamp))
            .bind(r.finished_at)
            .bind(CHANNEL)
            .bind(self.hub.payload(Kind::Finished, Some(lease.execution_id)))
            .bind((!r.resource_samples.is_empty()).then_some(Json(&r.resource_samples)))
            .fetch_optional(&self.pool)
            .await
            .map_err(map_sqlx)?;
        let Some(row) = row else {
            return Ok(CompleteOutcome::LeaseLost);
        };
        let execution = row.into_execution()?;
        self.hub.signals.notify_finished(execution.id);
        Ok(CompleteOutcome::Completed(Box::new(execution)))
    }

    /// See [`voidrunner_store::ExecutionStore::release_execution`].
    pub(crate) async fn release(
        &self,
        lease: &Lease,
        reason: ReleaseReason,
        now: Timestamp,
    ) -> StoreResult<ReleaseOutcome> {
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let sql = format!(
            "SELECT id, task_id, created_at, attempt, max_attempts, cancel_requested_at \
             FROM executions WHERE {HELD} FOR UPDATE"
        );
        let row = sqlx::query_as::<_, HeldRow>(&sql)
            .bind(lease.execution_id.as_uuid())
            .bind(&lease.worker_id)
            .bind(attempt(lease))
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        let Some(row) = row else {
            return Ok(ReleaseOutcome::LeaseLost);
        };
        let p = plan(
            row.attempt.into(),
            row.max_attempts.into(),
            row.cancel_requested_at.is_some(),
            reason,
            now,
        );
        let outcome = apply(self, &mut tx, &row, p, now).await?;
        tx.commit().await.map_err(map_sqlx)?;
        signal(self, lease.execution_id, outcome);
        Ok(outcome)
    }

    /// See [`voidrunner_store::ExecutionStore::reap_expired_leases`]. At most
    /// [`REAP_BATCH`] rows per call; rows another reaper is handling are skipped.
    pub(crate) async fn reap(
        &self,
        now: Timestamp,
        retry_at: &(dyn Fn(u32) -> Timestamp + Send + Sync),
    ) -> StoreResult<Vec<(ExecutionId, ReleaseOutcome)>> {
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let rows = sqlx::query_as::<_, HeldRow>(
            "SELECT id, task_id, created_at, attempt, max_attempts, cancel_requested_at \
             FROM executions WHERE status = 'running' AND lease_until < $1 \
             ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED",
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
            let cancel = row.cancel_requested_at.is_some();
            let p = plan(
                row.attempt.into(),
                row.max_attempts.into(),
                cancel,
                reason,
                now,
            );
            let outcome = apply(self, &mut tx, &row, p, now).await?;
            done.push((ExecutionId(row.id), outcome));
        }
        tx.commit().await.map_err(map_sqlx)?;
        for (id, outcome) in &done {
            signal(self, *id, *outcome);
        }
        Ok(done)
    }
}

/// A lease's attempt as the column type.
fn attempt(lease: &Lease) -> i32 {
    i32::try_from(lease.attempt).unwrap_or(i32::MAX)
}

/// Whether `owner`'s running rows of `table` (its own claim included) stay within `limit`.
/// Serializes this owner's claimers of that table on an advisory lock, then re-counts in a
/// fresh snapshot (READ COMMITTED takes one per statement) that includes every claim
/// committed before the lock was ours. `table` is one of this crate's constants.
pub(crate) async fn owner_within_quota(
    tx: &mut Transaction<'static, Postgres>,
    scope: &str,
    table: &'static str,
    owner: Uuid,
    limit: i64,
) -> StoreResult<bool> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("voidrunner.quota:{scope}:{table}:{owner}"))
        .execute(&mut **tx)
        .await
        .map_err(map_sqlx)?;
    let running: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {table} WHERE owner_id = $1 AND status = 'running'"
    ))
    .bind(owner)
    .fetch_one(&mut **tx)
    .await
    .map_err(map_sqlx)?;
    Ok(running <= limit)
}
