//! [`RetentionStore`] on PostgreSQL. Each batch is one transaction that locks its rows
//! (`FOR UPDATE SKIP LOCKED`: cleaners on several nodes take disjoint batches, and a row
//! changed meanwhile, e.g. a rerun workflow, is re-checked against the conditions when
//! locked). Owned rows (job secrets, steps, events, artifacts, blobs; workflow nodes, secrets,
//! triggers, commit statuses) go by `ON DELETE CASCADE`; a workflow's jobs are deleted
//! explicitly first, since `jobs.workflow_id` does not cascade.

use std::collections::HashSet;

use uuid::Uuid;
use voidrunner_domain::Timestamp;
use voidrunner_store::{RetentionStore, StoreResult};

use crate::PostgresStore;
use crate::error::map_sqlx;

#[async_trait::async_trait]
impl RetentionStore for PostgresStore {
    async fn purge_jobs(&self, finished_before: Timestamp, limit: u32) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let deleted = sqlx::query(
            "WITH doomed AS (SELECT id FROM jobs \
                 WHERE workflow_id IS NULL AND finished_at < $1 \
                 AND status IN ('succeeded', 'failed', 'cancelled') \
                 ORDER BY finished_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
             DELETE FROM jobs WHERE id IN (SELECT id FROM doomed)",
        )
        .bind(finished_before)
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?
        .rows_affected();
        tx.commit().await.map_err(map_sqlx)?;
        Ok(deleted)
    }

    async fn purge_workflows(&self, finished_before: Timestamp, limit: u32) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT w.id FROM workflows w \
             WHERE w.status <> 'running' AND w.finished_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.workflow_id = w.id \
                 AND j.status IN ('queued', 'running')) \
             ORDER BY w.finished_at, w.id LIMIT $2 FOR UPDATE OF w SKIP LOCKED",
        )
        .bind(finished_before)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        if ids.is_empty() {
            tx.commit().await.map_err(map_sqlx)?;
            return Ok(0);
        }
        // Lock the workflows' jobs and read their current status: a workflow with a job still
        // queued or running (a late requeue) is kept.
        let jobs: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT workflow_id, status FROM jobs WHERE workflow_id = ANY($1) \
             ORDER BY id FOR UPDATE",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let active: HashSet<Uuid> = jobs
            .into_iter()
            .filter(|(_, status)| status == "queued" || status == "running")
            .map(|(workflow, _)| workflow)
            .collect();
        let doomed: Vec<Uuid> = ids.into_iter().filter(|id| !active.contains(id)).collect();
        sqlx::query("DELETE FROM jobs WHERE workflow_id = ANY($1)")
            .bind(&doomed)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        let deleted = sqlx::query("DELETE FROM workflows WHERE id = ANY($1)")
            .bind(&doomed)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?
            .rows_affected();
        tx.commit().await.map_err(map_sqlx)?;
        Ok(deleted)
    }

    async fn purge_hook_deliveries(
        &self,
        received_before: Timestamp,
        limit: u32,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let deleted = sqlx::query(
            "WITH doomed AS (SELECT provider, delivery_id FROM hook_deliveries \
                 WHERE received_at < $1 ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
             DELETE FROM hook_deliveries h USING doomed d \
             WHERE h.provider = d.provider AND h.delivery_id = d.delivery_id",
        )
        .bind(received_before)
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?
        .rows_affected();
        tx.commit().await.map_err(map_sqlx)?;
        Ok(deleted)
    }
}

/// Raw row counts for the conformance suite's retention cases.
#[cfg(feature = "testing")]
#[async_trait::async_trait]
impl voidrunner_store::conformance::RetentionHooks for crate::PostgresStore {
    async fn count_rows(&self, table: &str, key: Option<(&str, &str)>) -> StoreResult<u64> {
        let ident =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        assert!(ident(table), "table name {table:?}");
        let n: i64 = match key {
            None => sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&self.pool)
                .await
                .map_err(map_sqlx)?,
            Some((column, value)) => {
                assert!(ident(column), "column name {column:?}");
                sqlx::query_scalar(&format!(
                    "SELECT COUNT(*) FROM {table} WHERE {column}::text = $1"
                ))
                .bind(value)
                .fetch_one(&self.pool)
                .await
                .map_err(map_sqlx)?
            }
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
