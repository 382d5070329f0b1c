//! Executions on PostgreSQL: enqueue, reads, cancel, dead letters and stats; the lease side of the
//! queue is in `queue.rs`.

use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};
use voidrunner_domain::{Execution, ExecutionId, ExecutionStatus, TaskId, Timestamp};
use voidrunner_store::{
    ClaimRequest, CompleteOutcome, ExecutionCursor, ExecutionPage, ExecutionResult, ExecutionStore,
    Lease, LeaseStatus, NewExecution, QueueSignals, QueueStats, ReleaseOutcome, ReleaseReason,
    Scope, StoreError, StoreResult,
};

use crate::PostgresStore;
use crate::error::map_sqlx;
use crate::execution_row::{COLUMNS, ExecutionRow};
use crate::queue::{TOUCH_FROM, TOUCH_WHERE, cancel_row, touch_task};
use crate::signals::{CHANNEL, Kind, notify};

/// Appends `AND owner_id = $n` when the scope is one user.
fn push_scope(qb: &mut QueryBuilder<'_, Postgres>, scope: Scope) {
    if let Scope::Owner(owner) = scope {
        qb.push(" AND owner_id = ").push_bind(owner.as_uuid());
    }
}

/// Appends the keyset condition, order and limit (+1 to detect a next page) of a listing.
fn push_page(qb: &mut QueryBuilder<'_, Postgres>, after: Option<ExecutionCursor>, limit: u32) {
    if let Some(c) = after {
        qb.push(" AND (created_at, id) < (")
            .push_bind(c.created_at)
            .push(", ")
            .push_bind(c.id.as_uuid())
            .push(")");
    }
    qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(i64::from(limit) + 1);
}

/// Runs a listing built by [`push_page`] and cuts it into a page.
async fn page(
    store: &PostgresStore,
    mut qb: QueryBuilder<'_, Postgres>,
    limit: u32,
) -> StoreResult<ExecutionPage> {
    let rows = qb
        .build_query_as::<ExecutionRow>()
        .fetch_all(&store.pool)
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
impl ExecutionStore for PostgresStore {
    async fn enqueue_execution(&self, new: NewExecution) -> StoreResult<Execution> {
        // One autocommit statement: insert only for a live task of the owner (or no task),
        // set the task's status, and NOTIFY (evaluated only when a row was inserted).
        let sql = format!(
            "WITH ins AS ( \
               INSERT INTO executions (id, task_id, owner_id, status, priority, language, \
                   code, stdin, env, limits, max_attempts, run_after, created_at, interactive, \
                   callback_url, request_id) \
               SELECT $1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10, $11, $11, $14, $15, $16 \
               WHERE $2::uuid IS NULL OR EXISTS (SELECT 1 FROM tasks \
                   WHERE id = $2 AND owner_id = $3 AND deleted_at IS NULL) \
               RETURNING {COLUMNS}), \
             secrets AS (INSERT INTO execution_secrets (execution_id, name, sealed) \
               SELECT ins.id, s.name, s.sealed FROM ins \
               JOIN task_secrets s ON s.task_id = ins.task_id), \
             touched AS ({TOUCH_FROM} ins c WHERE {TOUCH_WHERE}) \
             SELECT {COLUMNS}, pg_notify($12, $13)::text AS notified FROM ins"
        );
        let execution = sqlx::query_as::<_, ExecutionRow>(&sql)
            .bind(new.id.as_uuid())
            .bind(new.task_id.map(|t| t.as_uuid()))
            .bind(new.owner_id.as_uuid())
            .bind(i16::from(new.priority))
            .bind(&new.language)
            .bind(&new.code)
            .bind(&new.stdin)
            .bind(Json(&new.env))
            .bind(Json(&new.limits))
            .bind(i32::try_from(new.max_attempts.max(1)).unwrap_or(i32::MAX))
            .bind(new.created_at)
            .bind(CHANNEL)
            .bind(self.hub.payload(Kind::Work, None))
            .bind(new.interactive)
            .bind(&new.callback_url)
            .bind(&new.request_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_sqlx)?
            .ok_or(StoreError::NotFound)?
            .into_execution()?;
        self.hub.signals.notify_work();
        Ok(execution)
    }

    async fn execution_secrets(
        &self,
        id: ExecutionId,
    ) -> StoreResult<std::collections::BTreeMap<String, Vec<u8>>> {
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT name, sealed FROM execution_secrets WHERE execution_id = $1")
                .bind(id.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(map_sqlx)?;
        Ok(rows.into_iter().collect())
    }

    async fn get_execution(&self, scope: Scope, id: ExecutionId) -> StoreResult<Execution> {
        let mut qb = QueryBuilder::new(format!("SELECT {COLUMNS} FROM executions WHERE id = "));
        qb.push_bind(id.as_uuid());
        push_scope(&mut qb, scope);
        qb.build_query_as::<ExecutionRow>()
            .fetch_one(&self.pool)
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
        check.push_bind(task_id.as_uuid());
        push_scope(&mut check, scope);
        check
            .build_query_scalar::<i32>()
            .fetch_one(&self.pool)
            .await
            .map_err(map_sqlx)?;
        let limit = limit.max(1);
        let mut qb =
            QueryBuilder::new(format!("SELECT {COLUMNS} FROM executions WHERE task_id = "));
        qb.push_bind(task_id.as_uuid());
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
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let mut qb = QueryBuilder::new(format!("SELECT {COLUMNS} FROM executions WHERE id = "));
        qb.push_bind(id.as_uuid());
        push_scope(&mut qb, scope);
        qb.push(" FOR UPDATE");
        let current = qb
            .build_query_as::<ExecutionRow>()
            .fetch_one(&mut *tx)
            .await
            .map_err(map_sqlx)?
            .into_execution()?;
        let key = id.as_uuid();
        let finished = match current.status {
            ExecutionStatus::Queued => {
                cancel_row(&mut tx, key, now).await?;
                touch_task(
                    &mut tx,
                    current.task_id,
                    current.created_at,
                    id,
                    ExecutionStatus::Cancelled,
                )
                .await?;
                true
            }
            ExecutionStatus::Running => {
                sqlx::query(
                    "UPDATE executions SET cancel_requested_at = \
                     COALESCE(cancel_requested_at, $1) WHERE id = $2",
                )
                .bind(now)
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
            "SELECT {COLUMNS} FROM executions WHERE id = $1"
        ))
        .bind(key)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_sqlx)?
        .into_execution()?;
        let kind = if finished {
            Kind::Finished
        } else {
            Kind::Cancel
        };
        notify(&mut tx, &self.hub, kind, Some(id)).await?;
        tx.commit().await.map_err(map_sqlx)?;
        if finished {
            self.hub.signals.notify_finished(id);
        } else {
            self.hub.signals.notify_cancel(id);
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
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let sql = format!(
            "UPDATE executions SET status = 'queued', attempt = 0, run_after = $1, \
                 dead_lettered_at = NULL, finished_at = NULL, verdict = NULL, \
                 cancel_requested_at = NULL, lease_owner = NULL, lease_until = NULL \
             WHERE id = $2 AND dead_lettered_at IS NOT NULL RETURNING {COLUMNS}"
        );
        let execution = sqlx::query_as::<_, ExecutionRow>(&sql)
            .bind(now)
            .bind(id.as_uuid())
            .fetch_one(&mut *tx)
            .await
            .map_err(map_sqlx)?
            .into_execution()?;
        touch_task(
            &mut tx,
            execution.task_id,
            execution.created_at,
            id,
            ExecutionStatus::Queued,
        )
        .await?;
        notify(&mut tx, &self.hub, Kind::Work, None).await?;
        tx.commit().await.map_err(map_sqlx)?;
        self.hub.signals.notify_work();
        Ok(execution)
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        let (queued, running, dead): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM executions WHERE status = 'queued'), \
                    (SELECT count(*) FROM executions WHERE status = 'running'), \
                    (SELECT count(*) FROM executions WHERE dead_lettered_at IS NOT NULL)",
        )
        .fetch_one(&self.pool)
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
        &self.hub.signals
    }
}
