//! The execution event log on SQLite (see [`voidrunner_store::LogStore`]): status events come
//! from triggers (migration `0002`), chunks from [`LogStore::append_logs`] under the lease,
//! which also adds their bytes to `executions.log_bytes` (what the log archiver selects by).

use voidrunner_domain::{ExecutionId, Timestamp};
use voidrunner_store::{
    AppendOutcome, Lease, LogChunk, LogEvent, LogStore, LogStream, StoreError, StoreResult,
};

use crate::SqliteStore;
use crate::convert::{micros, text, ts};
use crate::error::{corrupt, map_sqlx};
use crate::queue::HELD;

#[async_trait::async_trait]
impl LogStore for SqliteStore {
    async fn append_logs(
        &self,
        lease: &Lease,
        chunks: &[LogChunk],
        now: Timestamp,
    ) -> StoreResult<AppendOutcome> {
        if chunks.iter().any(|c| c.stream == LogStream::Status) {
            return Err(StoreError::Conflict(
                "status events are written by the store".into(),
            ));
        }
        let id = text(lease.execution_id.as_uuid());
        let mut tx = self.begin_immediate().await?;
        let held: Option<i64> =
            sqlx::query_scalar(&format!("SELECT 1 FROM executions WHERE {HELD}"))
                .bind(id)
                .bind(&lease.worker_id)
                .bind(i64::from(lease.attempt))
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        if held.is_none() {
            return Ok(AppendOutcome::LeaseLost);
        }
        let mut seq: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(seq), 0) FROM execution_logs WHERE execution_id = ?",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        for chunk in chunks {
            seq += 1;
            sqlx::query(
                "INSERT INTO execution_logs (execution_id, seq, stream, data, created_at, attempt) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(seq)
            .bind(chunk.stream.as_str())
            .bind(&chunk.data)
            .bind(micros(now))
            .bind(i64::from(lease.attempt))
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        }
        let bytes: usize = chunks.iter().map(|c| c.data.len()).sum();
        if bytes > 0 {
            sqlx::query("UPDATE executions SET log_bytes = log_bytes + ? WHERE id = ?")
                .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        }
        tx.commit().await.map_err(map_sqlx)?;
        let last_seq = u64::try_from(seq).unwrap_or(0);
        if !chunks.is_empty() {
            self.signals.notify_log(lease.execution_id, last_seq);
        }
        Ok(AppendOutcome::Appended { last_seq })
    }

    async fn read_logs(
        &self,
        id: ExecutionId,
        after: u64,
        limit: u32,
    ) -> StoreResult<Vec<LogEvent>> {
        let rows: Vec<(i64, i64, String, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT seq, attempt, stream, data, created_at FROM execution_logs \
             WHERE execution_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(text(id.as_uuid()))
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_sqlx)?;
        rows.into_iter()
            .map(|(seq, attempt, stream, data, created_at)| {
                Ok(LogEvent {
                    seq: u64::try_from(seq).map_err(|_| corrupt("seq", seq))?,
                    attempt: u32::try_from(attempt).map_err(|_| corrupt("attempt", attempt))?,
                    stream: LogStream::parse(&stream)
                        .ok_or_else(|| corrupt("stream", stream.clone()))?,
                    data,
                    created_at: ts("created_at", created_at)?,
                })
            })
            .collect()
    }
}
