//! [`voidrunner_store::InputStore`] for PostgreSQL: an append locks the execution row (so
//! appends of one execution are serialised and see its current status), checks the input so
//! far, inserts the next seq and sends an `input` `NOTIFY` in the same transaction, so the
//! worker running the execution hears it whichever process it lives in.

use voidrunner_domain::{ExecutionId, ExecutionStatus, Timestamp};
use voidrunner_store::{
    InputChunk, InputState, InputStore, Scope, StoreError, StoreResult, input_conflict,
};

use crate::PostgresStore;
use crate::error::map_sqlx;
use crate::signals::{Kind, notify};

#[async_trait::async_trait]
impl InputStore for PostgresStore {
    async fn append_input(
        &self,
        scope: Scope,
        id: ExecutionId,
        data: &[u8],
        eof: bool,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let owner = match scope {
            Scope::Owner(me) => Some(me.as_uuid()),
            Scope::All => None,
        };
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let row: Option<(bool, String)> = sqlx::query_as(
            "SELECT interactive, status FROM executions \
             WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2) FOR UPDATE",
        )
        .bind(id.as_uuid())
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let Some((interactive, status)) = row else {
            return Err(StoreError::NotFound);
        };
        let (last, eof_seen, bytes, chunks): (i64, bool, i64, i64) = sqlx::query_as(
            "SELECT COALESCE(MAX(seq), 0), COALESCE(bool_or(eof), false), \
             COALESCE(SUM(length(data)), 0)::bigint, COUNT(*) \
             FROM execution_input WHERE execution_id = $1",
        )
        .bind(id.as_uuid())
        .fetch_one(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let state = InputState {
            interactive,
            terminal: ExecutionStatus::parse(&status).is_none_or(|s| s.is_terminal()),
            eof: eof_seen,
            bytes: u64::try_from(bytes).unwrap_or(0),
            chunks: u64::try_from(chunks).unwrap_or(0),
        };
        if let Some(why) = input_conflict(&state, data.len(), eof) {
            return Err(StoreError::Conflict(why));
        }
        let seq = last + 1;
        sqlx::query(
            "INSERT INTO execution_input (execution_id, seq, data, eof, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.as_uuid())
        .bind(seq)
        .bind(data)
        .bind(eof)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        notify(&mut tx, &self.hub, Kind::Input, Some(id)).await?;
        tx.commit().await.map_err(map_sqlx)?;
        self.hub.signals.notify_input(id);
        Ok(u64::try_from(seq).unwrap_or(0))
    }

    async fn read_input(
        &self,
        id: ExecutionId,
        after: u64,
        limit: u32,
    ) -> StoreResult<Vec<InputChunk>> {
        let rows: Vec<(i64, Vec<u8>, bool)> = sqlx::query_as(
            "SELECT seq, data, eof FROM execution_input WHERE execution_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(id.as_uuid())
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
