//! [`RetentionStore`] on SQLite. Every batch runs in one `BEGIN IMMEDIATE` transaction: the
//! single writer makes the select-then-delete of a batch atomic. Owned rows (job secrets,
//! steps, events, artifacts, blobs; workflow nodes, secrets, triggers, commit statuses) go by
//! `ON DELETE CASCADE` (`foreign_keys` is on for every connection); a workflow's jobs are
//! deleted explicitly first, since `jobs.workflow_id` does not cascade.

use voidrunner_domain::Timestamp;
use voidrunner_store::{RetentionStore, StoreResult};

use crate::SqliteStore;
use crate::convert::micros;
use crate::error::map_sqlx;

/// Terminal job statuses, as an SQL list.
const JOB_FINISHED: &str = "('succeeded', 'failed', 'cancelled')";

#[async_trait::async_trait]
impl RetentionStore for SqliteStore {
    async fn purge_jobs(&self, finished_before: Timestamp, limit: u32) -> StoreResult<u64> {
        let mut tx = self.begin_immediate().await?;
        let deleted = sqlx::query(&format!(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs \
             WHERE workflow_id IS NULL AND finished_at < ?1 AND status IN {JOB_FINISHED} \
             ORDER BY finished_at, id LIMIT ?2)"
        ))
        .bind(micros(finished_before))
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?
        .rows_affected();
        tx.commit().await.map_err(map_sqlx)?;
        Ok(deleted)
    }

    async fn purge_workflows(&self, finished_before: Timestamp, limit: u32) -> StoreResult<u64> {
        let mut tx = self.begin_immediate().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT w.id FROM workflows w \
             WHERE w.status <> 'running' AND w.finished_at < ?1 \
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.workflow_id = w.id \
                 AND j.status IN ('queued', 'running')) \
             ORDER BY w.finished_at, w.id LIMIT ?2",
        )
        .bind(micros(finished_before))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let mut deleted = 0;
        for id in &ids {
            sqlx::query("DELETE FROM jobs WHERE workflow_id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
            deleted += sqlx::query("DELETE FROM workflows WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?
                .rows_affected();
        }
        tx.commit().await.map_err(map_sqlx)?;
        Ok(deleted)
    }

    async fn purge_hook_deliveries(
        &self,
        received_before: Timestamp,
        limit: u32,
    ) -> StoreResult<u64> {
        let mut tx = self.begin_immediate().await?;
        let deleted = sqlx::query(
            "DELETE FROM hook_deliveries WHERE (provider, delivery_id) IN \
             (SELECT provider, delivery_id FROM hook_deliveries \
             WHERE received_at < ?1 ORDER BY received_at LIMIT ?2)",
        )
        .bind(micros(received_before))
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
impl voidrunner_store::conformance::RetentionHooks for crate::SqliteStore {
    async fn count_rows(&self, table: &str, key: Option<(&str, &str)>) -> StoreResult<u64> {
        let ident =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        assert!(ident(table), "table name {table:?}");
        let n: i64 = match key {
            None => sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&self.reader)
                .await
                .map_err(map_sqlx)?,
            Some((column, value)) => {
                assert!(ident(column), "column name {column:?}");
                sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {column} = ?"))
                    .bind(value)
                    .fetch_one(&self.reader)
                    .await
                    .map_err(map_sqlx)?
            }
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
