//! The queue's write side on SQLite: claim, heartbeat, complete, release, reap, and the shared
//! row transitions (requeue, dead letter, cancel) they and `request_cancel` use.
//!
//! Every multi-statement change runs in one `BEGIN IMMEDIATE` transaction on the single writer
//! connection, so the read-decide-write steps of a release can never interleave with a claim
//! or another release. Signals are sent after the commit.

use sqlx::types::Json;
use sqlx::{Sqlite, Transaction};
use voidrunner_domain::{ExecutionId, ExecutionStatus, TaskId, Timestamp, Verdict};
use voidrunner_store::{
    ClaimRequest, CompleteOutcome, ExecutionResult, Lease, LeaseStatus, ReleaseOutcome,
    ReleaseReason, StoreError, StoreResult,
};

use crate::SqliteStore;
use crate::convert::{micros, text};
use crate::error::map_sqlx;
use crate::execution_row::{COLUMNS, ExecutionRow};
use voidrunner_store::{ReleasePlan as Plan, release_plan as plan};

/// Reason recorded when the reaper finds an expired lease.
pub(crate) const LEASE_EXPIRED: &str = "lease expired: the worker stopped heartbeating";

/// The fields of a running row that decide what a release does to it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct HeldRow {
    pub id: uuid::fmt::Hyphenated,
    pub task_id: Option<uuid::fmt::Hyphenated>,
    pub created_at: i64,
    pub attempt: i64,
    pub max_attempts: i64,
    pub cancel_requested_at: Option<i64>,
}

/// Sets the task's `last_execution_status` when this execution is the task's newest, so the
/// task always shows the state of its latest run whatever order older runs finish in.
pub(crate) async fn touch_task(
    tx: &mut Transaction<'static, Sqlite>,
    task_id: Option<TaskId>,
    created_at: i64,
    id: ExecutionId,
    status: ExecutionStatus,
) -> StoreResult<()> {
    let Some(task_id) = task_id else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE tasks SET last_execution_status = ?1 WHERE id = ?2 AND NOT EXISTS ( \
             SELECT 1 FROM executions n WHERE n.task_id = ?2 AND (n.created_at, n.id) > (?3, ?4))",
    )
    .bind(status.as_str())
    .bind(text(task_id.as_uuid()))
    .bind(created_at)
    .bind(text(id.as_uuid()))
    .execute(&mut **tx)
    .await
    .map_err(map_sqlx)?;
    Ok(())
}

/// Applies a [`Plan`] to a held row inside `tx`; returns the outcome and the signal to send
/// after commit (`true` = work, `false` = finished).
pub(crate) async fn apply(
    tx: &mut Transaction<'static, Sqlite>,
    row: &HeldRow,
    plan: Plan,
    now: Timestamp,
) -> StoreResult<ReleaseOutcome> {
    let id = ExecutionId(row.id.into_uuid());
    let task_id = row.task_id.map(|t| TaskId(t.into_uuid()));
    let (outcome, status) = match plan {
        Plan::Requeue {
            run_after,
            refund,
            error,
        } => {
            sqlx::query(
                "UPDATE executions SET status = 'queued', lease_owner = NULL, \
                 lease_until = NULL, run_after = ?, attempt = attempt - ?, \
                 last_error = COALESCE(?, last_error) WHERE id = ?",
            )
            .bind(micros(run_after))
            .bind(i64::from(refund))
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
                 lease_until = NULL, finished_at = ?1, dead_lettered_at = ?1, \
                 last_error = ?2, verdict = ?3 WHERE id = ?4",
            )
            .bind(micros(now))
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
    touch_task(tx, task_id, row.created_at, id, status).await?;
    Ok(outcome)
}

/// Marks a queued or running row `cancelled` (verdict `cancelled`, lease cleared).
pub(crate) async fn cancel_row(
    tx: &mut Transaction<'static, Sqlite>,
    id: uuid::fmt::Hyphenated,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE executions SET status = 'cancelled', lease_owner = NULL, lease_until = NULL, \
         finished_at = ?1, cancel_requested_at = COALESCE(cancel_requested_at, ?1), \
         verdict = ?2 WHERE id = ?3",
    )
    .bind(micros(now))
    .bind(Json(Verdict::Cancelled))
    .bind(id)
    .execute(&mut **tx)
    .await
    .map_err(map_sqlx)?;
    Ok(())
}

/// Sends the wake-up matching a release outcome (after commit).
pub(crate) fn signal(store: &SqliteStore, id: ExecutionId, outcome: ReleaseOutcome) {
    if outcome != ReleaseOutcome::LeaseLost {
        // A status event was written by the trigger: wake streams.
        store.signals.notify_log(id, 0);
    }
    match outcome {
        ReleaseOutcome::Requeued => store.signals.notify_work(),
        ReleaseOutcome::DeadLettered | ReleaseOutcome::Cancelled => {
            store.signals.notify_finished(id);
        }
        ReleaseOutcome::LeaseLost => {}
    }
}

/// The fencing condition: still running, same worker, same attempt.
pub(crate) const HELD: &str = "id = ? AND status = 'running' AND lease_owner = ? AND attempt = ?";

/// Lease length as microseconds.
fn lease_micros(lease: std::time::Duration) -> i64 {
    i64::try_from(lease.as_micros()).unwrap_or(i64::MAX / 2)
}

impl SqliteStore {
    /// See [`voidrunner_store::ExecutionStore::claim_next`].
    pub(crate) async fn claim(
        &self,
        req: &ClaimRequest,
    ) -> StoreResult<Option<voidrunner_domain::Execution>> {
        let now = micros(req.now);
        let mut tx = self.begin_immediate().await?;
        // The quota subquery is uncorrelated: it is computed once over the (few) running rows.
        // Present only with a quota: without one a claim does not look at running rows.
        let quota = if req.per_user_running_limit.is_some() {
            "AND e.owner_id NOT IN (SELECT r.owner_id FROM executions r \
                 WHERE r.status = 'running' GROUP BY r.owner_id HAVING count(*) >= ?4)"
        } else {
            "AND ?4 IS NULL"
        };
        let sql = format!(
            "UPDATE executions SET status = 'running', attempt = attempt + 1, \
                 lease_owner = ?1, worker_id = ?1, lease_until = ?2, started_at = ?3 \
             WHERE id = (SELECT e.id FROM executions e \
                 WHERE e.status = 'queued' AND e.run_after <= ?3 {quota} \
                 ORDER BY e.priority DESC, e.created_at, e.id LIMIT 1) \
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query_as::<_, ExecutionRow>(&sql)
            .bind(&req.worker_id)
            .bind(now.saturating_add(lease_micros(req.lease)))
            .bind(now)
            .bind(req.per_user_running_limit.map(i64::from))
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let execution = row.into_execution()?;
        touch_task(
            &mut tx,
            execution.task_id,
            micros(execution.created_at),
            execution.id,
            ExecutionStatus::Running,
        )
        .await?;
        tx.commit().await.map_err(map_sqlx)?;
        // The `running` status event (written by the trigger) is committed: wake streams.
        self.signals.notify_log(execution.id, 0);
        Ok(Some(execution))
    }

    /// See [`voidrunner_store::ExecutionStore::heartbeat`].
    pub(crate) async fn extend_lease(
        &self,
        lease: &Lease,
        lease_until: Timestamp,
    ) -> StoreResult<LeaseStatus> {
        let sql = format!(
            "UPDATE executions SET lease_until = ? WHERE {HELD} \
             RETURNING cancel_requested_at IS NOT NULL"
        );
        let cancel: Option<bool> = sqlx::query_scalar(&sql)
            .bind(micros(lease_until))
            .bind(text(lease.execution_id.as_uuid()))
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
        let mut tx = self.begin_immediate().await?;
        let sql = format!(
            "UPDATE executions SET status = ?, verdict = ?, exit_code = ?, signal = ?, \
                 stdout = ?, stderr = ?, compile_output = ?, output_truncated = ?, \
                 wall_time_ms = ?, cpu_time_ms = ?, peak_memory_bytes = ?, finished_at = ?, \
                 resource_samples = ?, lease_owner = NULL, lease_until = NULL \
             WHERE {HELD} RETURNING {COLUMNS}"
        );
        let row = sqlx::query_as::<_, ExecutionRow>(&sql)
            .bind(status.as_str())
            .bind(Json(&r.verdict))
            .bind(r.exit_code)
            .bind(r.signal)
            .bind(&r.stdout)
            .bind(&r.stderr)
            .bind(&r.compile_output)
            .bind(r.output_truncated)
            .bind(i64::try_from(r.wall_time_ms).unwrap_or(i64::MAX))
            .bind(i64::try_from(r.cpu_time_ms).unwrap_or(i64::MAX))
            .bind(
                r.peak_memory_bytes
                    .map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
            )
            .bind(micros(r.finished_at))
            .bind((!r.resource_samples.is_empty()).then_some(Json(&r.resource_samples)))
            .bind(text(lease.execution_id.as_uuid()))
            .bind(&lease.worker_id)
            .bind(i64::from(lease.attempt))
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        let Some(row) = row else {
            return Ok(CompleteOutcome::LeaseLost);
        };
        let execution = row.into_execution()?;
        touch_task(
            &mut tx,
            execution.task_id,
            micros(execution.created_at),
            execution.id,
            status,
        )
        .await?;
        tx.commit().await.map_err(map_sqlx)?;
        self.signals.notify_finished(execution.id);
        Ok(CompleteOutcome::Completed(Box::new(execution)))
    }

    /// See [`voidrunner_store::ExecutionStore::release_execution`].
    pub(crate) async fn release(
        &self,
        lease: &Lease,
        reason: ReleaseReason,
        now: Timestamp,
    ) -> StoreResult<ReleaseOutcome> {
        let mut tx = self.begin_immediate().await?;
        let sql = format!(
            "SELECT id, task_id, created_at, attempt, max_attempts, cancel_requested_at \
             FROM executions WHERE {HELD}"
        );
        let row = sqlx::query_as::<_, HeldRow>(&sql)
            .bind(text(lease.execution_id.as_uuid()))
            .bind(&lease.worker_id)
            .bind(i64::from(lease.attempt))
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        let Some(row) = row else {
            return Ok(ReleaseOutcome::LeaseLost);
        };
        let p = plan(
            row.attempt,
            row.max_attempts,
            row.cancel_requested_at.is_some(),
            reason,
            now,
        );
        let outcome = apply(&mut tx, &row, p, now).await?;
        tx.commit().await.map_err(map_sqlx)?;
        signal(self, lease.execution_id, outcome);
        Ok(outcome)
    }

    /// See [`voidrunner_store::ExecutionStore::reap_expired_leases`]. At most
    /// [`REAP_BATCH`] rows per call, so one transaction stays short.
    pub(crate) async fn reap(
        &self,
        now: Timestamp,
        retry_at: &(dyn Fn(u32) -> Timestamp + Send + Sync),
    ) -> StoreResult<Vec<(ExecutionId, ReleaseOutcome)>> {
        let mut tx = self.begin_immediate().await?;
        let rows = sqlx::query_as::<_, HeldRow>(
            "SELECT id, task_id, created_at, attempt, max_attempts, cancel_requested_at \
             FROM executions WHERE status = 'running' AND lease_until < ? \
             ORDER BY lease_until LIMIT ?",
        )
        .bind(micros(now))
        .bind(REAP_BATCH)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let mut done = Vec::with_capacity(rows.len());
        for row in rows {
            let attempt = u32::try_from(row.attempt).unwrap_or(u32::MAX);
            let reason = ReleaseReason::Failure {
                error: LEASE_EXPIRED.to_owned(),
                retry_at: retry_at(attempt),
            };
            let p = plan(
                row.attempt,
                row.max_attempts,
                row.cancel_requested_at.is_some(),
                reason,
                now,
            );
            let outcome = apply(&mut tx, &row, p, now).await?;
            done.push((ExecutionId(row.id.into_uuid()), outcome));
        }
        tx.commit().await.map_err(map_sqlx)?;
        for (id, outcome) in &done {
            signal(self, *id, *outcome);
        }
        Ok(done)
    }
}

/// Most expired leases handled by one reaper call.
pub(crate) const REAP_BATCH: i64 = 500;
