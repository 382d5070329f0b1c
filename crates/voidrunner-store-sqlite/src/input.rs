//! [`voidrunner_store::InputStore`] for SQLite: one `BEGIN IMMEDIATE` transaction per append
//! checks the execution's state and the input so far, then inserts the next seq.

use voidrunner_domain::{ExecutionId, ExecutionStatus, Timestamp};
use voidrunner_store::{
    InputChunk, InputState, InputStore, Scope, StoreError, StoreResult, input_conflict,
};

use crate::SqliteStore;
use crate::convert::{micros, text};
use crate::error::map_sqlx;

#[async_trait::async_trait]
impl InputStore for SqliteStore {
    async fn append_input(
        &self,
        scope: Scope,
        id: ExecutionId,
        data: &[u8],
        eof: bool,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let key = text(id.as_uuid());
        let mut tx = self.begin_immediate().await?;
        let owner = match scope {
            Scope::Owner(me) => Some(text(me.as_uuid())),
            Scope::All => None,
        };
        let row: Option<(bool, String)> = sqlx::query_as(
            "SELECT interactive, status FROM executions \
             WHERE id = ?1 AND (?2 IS NULL OR owner_id = ?2)",
        )
        .bind(key)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let Some((interactive, status)) = row else {
            return Err(StoreError::NotFound);
        };
        let (last, eof_seen, bytes, chunks): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT COALESCE(MAX(seq), 0), COALESCE(MAX(eof), 0), COALESCE(SUM(length(data)), 0), \
             COUNT(*) FROM execution_input WHERE execution_id = ?",
        )
        .bind(key)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let state = InputState {
            interactive,
            terminal: ExecutionStatus::parse(&status).is_none_or(|s| s.is_terminal()),
            eof: eof_seen != 0,
            bytes: u64::try_from(bytes).unwrap_or(0),
            chunks: u64::try_from(chunks).unwrap_or(0),
        };
        if let Some(why) = input_conflict(&state, data.len(), eof) {
            return Err(StoreError::Conflict(why));
        }
        let seq = last + 1;
        sqlx::query(
            "INSERT INTO execution_input (execution_id, seq, data, eof, created_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(key)
        .bind(seq)
        .bind(data)
        .bind(eof)
        .bind(micros(now))
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        self.signals.notify_input(id);
        Ok(u64::try_from(seq).unwrap_or(0))
    }

    async fn read_input(
        &self,
        id: ExecutionId,
        after: u64,
        limit: u32,
    ) -> StoreResult<Vec<InputChunk>> {
        let rows: Vec<(i64, Vec<u8>, bool)> = sqlx::query_as(
            "SELECT seq, data, eof FROM execution_input WHERE execution_id = ? AND seq > ? \
             ORDER BY seq LIMIT ?",
        )
        .bind(text(id.as_uuid()))
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_sqlx)?;
        Ok(rows
            .into_iter()
            .map(|(seq, data, eof)| InputChunk {
                seq: u64::try_from(seq).unwrap_or(0),
                data,
                eof,
            })
            .collect())
    }
}
