//! Executions on SQLite: enqueue, reads, cancel, dead letters and stats; the lease side of the
//! queue is in `queue.rs`.

use sqlx::types::Json;
use sqlx::{QueryBuilder, Sqlite};
use voidrunner_domain::{Execution, ExecutionId, ExecutionStatus, TaskId, Timestamp};
use voidrunner_store::{
    ClaimRequest, CompleteOutcome, ExecutionCursor, ExecutionPage, ExecutionResult, ExecutionStore,
    Lease, LeaseStatus, NewExecution, QueueSignals, QueueStats, ReleaseOutcome, ReleaseReason,
    Scope, StoreError, StoreResult,
};

use crate::SqliteStore;
use crate::convert::{micros, text};
use crate::error::map_sqlx;
use crate::execution_row::{COLUMNS, ExecutionRow};
use crate::queue::{cancel_row, touch_task};

/// Appends `AND owner_id = ?` when the scope is one user.
fn push_scope(qb: &mut QueryBuilder<'_, Sqlite>, scope: Scope) {
    if let Scope::Owner(owner) = scope {
        qb.push(" AND owner_id = ").push_bind(text(owner.as_uuid()));
    }
}

/// Appends the keyset condition, order and limit (+1 to detect a next page) of a listing.
fn push_page(qb: &mut QueryBuilder<'_, Sqlite>, after: Option<ExecutionCursor>, limit: u32) {
    if let Some(c) = after {
        qb.push(" AND (created_at, id) < (")
            .push_bind(micros(c.created_at))
            .push(", ")
            .push_bind(text(c.id.as_uuid()))
            .push(")");
    }
    qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(i64::from(limit) + 1);
}

/// Runs a listing built by [`push_page`] and cuts it into a page.
async fn page(
    store: &SqliteStore,
    mut qb: QueryBuilder<'_, Sqlite>,
    limit: u32,
) -> StoreResult<ExecutionPage> {
    let rows = qb
        .build_query_as::<ExecutionRow>()
        .fetch_all(&store.reader)
        .await
        .map_err(map_sqlx)?;
    let mut items = rows
        .into_iter()
        .map(ExecutionRow::into_execution)
        .collect::<StoreResult<Vec<_>>>()?;
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|e| ExecutionCursor {
            created_at: e.created_at,
            id: e.id,
        })
    } else {
        None
    };
    Ok(ExecutionPage { items, next })
}

#[async_trait::async_trait]
impl ExecutionStore for SqliteStore {
    async fn enqueue_execution(&self, new: NewExecution) -> StoreResult<Execution> {
        let mut tx = self.begin_immediate().await?;
        if let Some(task_id) = new.task_id {
            let live: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM tasks WHERE id = ? AND owner_id = ? AND deleted_at IS NULL",
            )
            .bind(text(task_id.as_uuid()))
            .bind(text(new.owner_id.as_uuid()))
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_sqlx)?;
            if live.is_none() {
                return Err(StoreError::NotFound);
            }
        }
        let sql = format!(
            "INSERT INTO executions (id, task_id, owner_id, status, priority, language, code, \
                 stdin, env, limits, max_attempts, run_after, created_at, interactive, \
                 callback_url, request_id) \
             VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {COLUMNS}"
        );
        let execution = sqlx::query_as::<_, ExecutionRow>(&sql)
            .bind(text(new.id.as_uuid()))
            .bind(new.task_id.map(|t| text(t.as_uuid())))
            .bind(text(new.owner_id.as_uuid()))
            .bind(i64::from(new.priority))
            .bind(&new.language)
            .bind(&new.code)
            .bind(&new.stdin)
            .bind(Json(&new.env))
            .bind(Json(&new.limits))
            .bind(i64::from(new.max_attempts.max(1)))
            .bind(micros(new.created_at))
            .bind(micros(new.created_at))
            .bind(new.interactive)
            .bind(&new.callback_url)
            .bind(&new.request_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_sqlx)?
            .into_execution()?;
        if let Some(task_id) = new.task_id {
            // The task's sealed secrets, snapshot like the rest of the execution.
            sqlx::query(
                "INSERT INTO execution_secrets (execution_id, name, sealed) \
                 SELECT ?, name, sealed FROM task_secrets WHERE task_id = ?",
            )
            .bind(text(new.id.as_uuid()))
            .bind(text(task_id.as_uuid()))
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        }
        touch_task(
            &mut tx,
            new.task_id,
            micros(new.created_at),
            new.id,
            ExecutionStatus::Queued,
        )
        .await?;
        tx.commit().await.map_err(map_sqlx)?;
        self.signals.notify_work();
        // Its `queued` status event (written by the trigger) is committed: wake streams.
        self.signals.notify_log(execution.id, 0);
        Ok(execution)
    }

    async fn execution_secrets(
        &self,
        id: ExecutionId,
    ) -> StoreResult<std::collections::BTreeMap<String, Vec<u8>>> {
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT name, sealed FROM execution_secrets WHERE execution_id = ?")
                .bind(text(id.as_uuid()))
                .fetch_all(&self.reader)
                .await
                .map_err(map_sqlx)?;
        Ok(rows.into_iter().collect())
    }

    async fn get_execution(&self, scope: Scope, id: ExecutionId) -> StoreResult<Execution> {
        let mut qb = QueryBuilder::new(format!("SELECT {COLUMNS} FROM executions WHERE id = "));
        qb.push_bind(text(id.as_uuid()));
        push_scope(&mut qb, scope);
        qb.build_query_as::<ExecutionRow>()
            .fetch_one(&self.reader)
            .await
            .map_err(map_sqlx)?
            .into_execution()
    }

    async fn list_task_executions(
        &self,
        scope: Scope,
        task_id: TaskId,
        after: Option<ExecutionCursor>,
        limit: u32,
    ) -> StoreResult<ExecutionPage> {
        let mut check = QueryBuilder::new("SELECT 1 FROM tasks WHERE deleted_at IS NULL AND id = ");
        check.push_bind(text(task_id.as_uuid()));
        push_scope(&mut check, scope);
        check
            .build_query_scalar::<i64>()
            .fetch_one(&self.reader)
            .await
            .map_err(map_sqlx)?;
        let limit = limit.max(1);
        let mut qb =
            QueryBuilder::new(format!("SELECT {COLUMNS} FROM executions WHERE task_id = "));
        qb.push_bind(text(task_id.as_uuid()));
        push_page(&mut qb, after, limit);
        page(self, qb, limit).await
    }

    async fn claim_next(&self, req: &ClaimRequest) -> StoreResult<Option<Execution>> {
        self.claim(req).await
    }

    async fn heartbeat(&self, lease: &Lease, lease_until: Timestamp) -> StoreResult<LeaseStatus> {
        self.extend_lease(lease, lease_until).await
    }

    async fn complete_execution(
        &self,
        lease: &Lease,
        result: ExecutionResult,
    ) -> StoreResult<CompleteOutcome> {
        self.complete(lease, result).await
    }

    async fn release_execution(
        &self,
        lease: &Lease,
        reason: ReleaseReason,
        now: Timestamp,
    ) -> StoreResult<ReleaseOutcome> {
        self.release(lease, reason, now).await
    }

    async fn reap_expired_leases(
        &self,
        now: Timestamp,
        retry_at: &(dyn Fn(u32) -> Timestamp + Send + Sync),
    ) -> StoreResult<Vec<(ExecutionId, ReleaseOutcome)>> {
        self.reap(now, retry_at).await
    }

    async fn request_cancel(
        &self,
        scope: Scope,
        id: ExecutionId,
        now: Timestamp,
    ) -> StoreResult<Execution> {
        let mut tx = self.begin_immediate().await?;
        let mut qb = QueryBuilder::new(format!("SELECT {COLUMNS} FROM executions WHERE id = "));
        qb.push_bind(text(id.as_uuid()));
        push_scope(&mut qb, scope);
        let current = qb
            .build_query_as::<ExecutionRow>()
            .fetch_one(&mut *tx)
            .await
            .map_err(map_sqlx)?
            .into_execution()?;
        let key = text(id.as_uuid());
        let finished = match current.status {
            ExecutionStatus::Queued => {
                cancel_row(&mut tx, key, now).await?;
                touch_task(
                    &mut tx,
                    current.task_id,
                    micros(current.created_at),
                    id,
                    ExecutionStatus::Cancelled,
                )
                .await?;
                true
            }
            ExecutionStatus::Running => {
                sqlx::query(
                    "UPDATE executions SET cancel_requested_at = \
                     COALESCE(cancel_requested_at, ?) WHERE id = ?",
                )
                .bind(micros(now))
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
                false
            }
            _ => {
                return Err(StoreError::Conflict(
                    "execution already finished".to_owned(),
                ));
            }
        };
        let row = sqlx::query_as::<_, ExecutionRow>(&format!(
            "SELECT {COLUMNS} FROM executions WHERE id = ?"
        ))
        .bind(key)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_sqlx)?
        .into_execution()?;
        tx.commit().await.map_err(map_sqlx)?;
        if finished {
            self.signals.notify_finished(id);
        } else {
            self.signals.notify_cancel(id);
        }
        Ok(row)
    }

    async fn list_dead_letters(
        &self,
        after: Option<ExecutionCursor>,
        limit: u32,
    ) -> StoreResult<ExecutionPage> {
        let limit = limit.max(1);
        let mut qb = QueryBuilder::new(format!(
            "SELECT {COLUMNS} FROM executions WHERE dead_lettered_at IS NOT NULL"
        ));
        push_page(&mut qb, after, limit);
        page(self, qb, limit).await
    }

    async fn requeue_dead_letter(&self, id: ExecutionId, now: Timestamp) -> StoreResult<Execution> {
        let mut tx = self.begin_immediate().await?;
        let sql = format!(
            "UPDATE executions SET status = 'queued', attempt = 0, run_after = ?, \
                 dead_lettered_at = NULL, finished_at = NULL, verdict = NULL, \
                 cancel_requested_at = NULL, lease_owner = NULL, lease_until = NULL \
             WHERE id = ? AND dead_lettered_at IS NOT NULL RETURNING {COLUMNS}"
        );
        let execution = sqlx::query_as::<_, ExecutionRow>(&sql)
            .bind(micros(now))
            .bind(text(id.as_uuid()))
            .fetch_one(&mut *tx)
            .await
            .map_err(map_sqlx)?
            .into_execution()?;
        touch_task(
            &mut tx,
            execution.task_id,
            micros(execution.created_at),
            id,
            ExecutionStatus::Queued,
        )
        .await?;
        tx.commit().await.map_err(map_sqlx)?;
        self.signals.notify_work();
        // Its `queued` status event (written by the trigger) is committed: wake streams.
        self.signals.notify_log(execution.id, 0);
        Ok(execution)
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        let (queued, running, dead): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM executions WHERE status = 'queued'), \
                    (SELECT count(*) FROM executions WHERE status = 'running'), \
                    (SELECT count(*) FROM executions WHERE dead_lettered_at IS NOT NULL)",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(map_sqlx)?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(QueueStats {
            queued: count(queued),
            running: count(running),
            dead_lettered: count(dead),
        })
    }

    fn queue_signals(&self) -> &QueueSignals {
        &self.signals
    }
}
