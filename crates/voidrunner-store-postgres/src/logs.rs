//! The execution event log on PostgreSQL (see [`voidrunner_store::LogStore`]): status events
//! come from a trigger (migration `0002`), chunks from [`LogStore::append_logs`], which locks
//! the execution row (the lock every status change takes) before allocating seqs and adds the
//! chunks' bytes to `executions.log_bytes` (what the log archiver selects by). Both send
//! `NOTIFY` in their transaction; the listener of every process forwards it as a log signal.

use voidrunner_domain::{ExecutionId, Timestamp};
use voidrunner_store::{
    AppendOutcome, Lease, LogChunk, LogEvent, LogStore, LogStream, StoreError, StoreResult,
};

use crate::PostgresStore;
use crate::error::{corrupt, map_sqlx};
use crate::queue::HELD;
use crate::signals::CHANNEL;

#[async_trait::async_trait]
impl LogStore for PostgresStore {
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
        let id = lease.execution_id.as_uuid();
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let held: Option<i32> =
            sqlx::query_scalar(&format!("SELECT 1 FROM executions WHERE {HELD} FOR UPDATE"))
                .bind(id)
                .bind(&lease.worker_id)
                .bind(i32::try_from(lease.attempt).unwrap_or(i32::MAX))
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        if held.is_none() {
            return Ok(AppendOutcome::LeaseLost);
        }
        let first: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM execution_logs WHERE execution_id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        if chunks.is_empty() {
            return Ok(AppendOutcome::Appended {
                last_seq: u64::try_from(first - 1).unwrap_or(0),
            });
        }
        let streams: Vec<&str> = chunks.iter().map(|c| c.stream.as_str()).collect();
        let data: Vec<&[u8]> = chunks.iter().map(|c| c.data.as_slice()).collect();
        let last: i64 = sqlx::query_scalar(
            "WITH ins AS (INSERT INTO execution_logs \
                 (execution_id, seq, stream, data, created_at, attempt) \
               SELECT $1, $2 + t.ord - 1, t.stream, t.data, $5, $6 \
               FROM unnest($3::text[], $4::bytea[]) WITH ORDINALITY AS t(stream, data, ord) \
               RETURNING seq) \
             SELECT max(seq) FROM ins",
        )
        .bind(id)
        .bind(first)
        .bind(&streams)
        .bind(&data)
        .bind(now)
        .bind(i32::try_from(lease.attempt).unwrap_or(i32::MAX))
        .fetch_one(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let bytes: usize = chunks.iter().map(|c| c.data.len()).sum();
        sqlx::query("UPDATE executions SET log_bytes = log_bytes + $2 WHERE id = $1")
            .bind(id)
            .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("log db {id}/{last} {}", self.hub_scope()))
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(AppendOutcome::Appended {
            last_seq: u64::try_from(last).unwrap_or(0),
        })
    }

    async fn read_logs(
        &self,
        id: ExecutionId,
        after: u64,
        limit: u32,
    ) -> StoreResult<Vec<LogEvent>> {
        let rows: Vec<(i64, i32, String, Vec<u8>, Timestamp)> = sqlx::query_as(
            "SELECT seq, attempt, stream, data, created_at FROM execution_logs \
             WHERE execution_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(id.as_uuid())
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
                    created_at,
                })
            })
            .collect()
    }
}
