//! [`voidrunner_store::LogArchiveStore`] on SQLite: archive records in
//! `execution_log_archives`, retention through `executions.logs_expired_at` (migration `0004`).
//! Every decision is taken inside one `BEGIN IMMEDIATE` transaction (one writer), so racing
//! archivers or cleaners cannot both win.

use uuid::fmt::Hyphenated;
use voidrunner_domain::{ExecutionId, Timestamp};
use voidrunner_store::{
    ArchiveCandidate, ArchiveOutcome, ExpireOutcome, LogArchive, LogArchiveStore, LogLocation,
    LogLocationEntry, StoreResult,
};

use crate::SqliteStore;
use crate::convert::{micros, text, ts};
use crate::error::{corrupt, map_sqlx};

/// SQL list of terminal statuses.
const TERMINAL: &str = "('completed', 'failed', 'timeout', 'cancelled')";

/// An `execution_log_archives` row.
type ArchiveRow = (Hyphenated, String, i64, i64, i64, i64);

/// A retention candidate row: the execution and its (left-joined) archive columns.
type EntryRow = (
    Hyphenated,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn u64_of(column: &'static str, v: i64) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| corrupt(column, v))
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn archive_of(row: ArchiveRow) -> StoreResult<LogArchive> {
    let (id, object_key, bytes, events, last_seq, archived_at) = row;
    Ok(LogArchive {
        execution_id: ExecutionId::from(*id.as_uuid()),
        object_key,
        bytes: u64_of("bytes", bytes)?,
        events: u64_of("events", events)?,
        last_seq: u64_of("last_seq", last_seq)?,
        archived_at: ts("archived_at", archived_at)?,
    })
}

fn entry_of(row: EntryRow) -> StoreResult<LogLocationEntry> {
    let (id, key, bytes, events, last_seq, archived_at) = row;
    let archive = match (key, bytes, events, last_seq, archived_at) {
        (Some(k), Some(b), Some(e), Some(l), Some(a)) => Some(archive_of((id, k, b, e, l, a))?),
        _ => None,
    };
    Ok(LogLocationEntry {
        execution_id: ExecutionId::from(*id.as_uuid()),
        archive,
    })
}

const ARCHIVE_COLUMNS: &str = "execution_id, object_key, bytes, events, last_seq, archived_at";

#[async_trait::async_trait]
impl LogArchiveStore for SqliteStore {
    async fn list_archive_candidates(
        &self,
        min_bytes: u64,
        limit: u32,
    ) -> StoreResult<Vec<ArchiveCandidate>> {
        let rows: Vec<(Hyphenated, i64, i64)> = sqlx::query_as(&format!(
            "SELECT e.id, e.log_bytes, COALESCE(e.finished_at, e.created_at) AS f \
             FROM executions e \
             WHERE e.log_bytes > 0 AND e.status IN {TERMINAL} AND e.logs_expired_at IS NULL AND e.log_bytes >= ? \
               AND NOT EXISTS (SELECT 1 FROM execution_log_archives a WHERE a.execution_id = e.id) \
             ORDER BY f, e.id LIMIT ?"
        ))
        .bind(i64_of(min_bytes))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_sqlx)?;
        rows.into_iter()
            .map(|(id, bytes, finished)| {
                Ok(ArchiveCandidate {
                    execution_id: ExecutionId::from(*id.as_uuid()),
                    log_bytes: u64_of("log_bytes", bytes)?,
                    finished_at: ts("finished_at", finished)?,
                })
            })
            .collect()
    }

    async fn mark_logs_archived(&self, archive: &LogArchive) -> StoreResult<ArchiveOutcome> {
        let id = text(archive.execution_id.as_uuid());
        let mut tx = self.begin_immediate().await?;
        let existing: Option<ArchiveRow> = sqlx::query_as(&format!(
            "SELECT {ARCHIVE_COLUMNS} FROM execution_log_archives WHERE execution_id = ?"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        if let Some(row) = existing {
            return Ok(ArchiveOutcome::AlreadyArchived(archive_of(row)?));
        }
        let eligible: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT 1 FROM executions WHERE id = ? AND status IN {TERMINAL} \
             AND logs_expired_at IS NULL"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        if eligible.is_none() {
            return Ok(ArchiveOutcome::NotEligible);
        }
        sqlx::query(&format!(
            "INSERT INTO execution_log_archives ({ARCHIVE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
        ))
        .bind(id)
        .bind(&archive.object_key)
        .bind(i64_of(archive.bytes))
        .bind(i64_of(archive.events))
        .bind(i64_of(archive.last_seq))
        .bind(micros(archive.archived_at))
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        sqlx::query("DELETE FROM execution_logs WHERE execution_id = ? AND seq < ?")
            .bind(id)
            .bind(i64_of(archive.last_seq))
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        sqlx::query("UPDATE executions SET log_bytes = 0 WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(ArchiveOutcome::Archived)
    }

    async fn log_location(&self, id: ExecutionId) -> StoreResult<LogLocation> {
        let row: Option<(
            Option<i64>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        )> = sqlx::query_as(
            "SELECT e.logs_expired_at, a.object_key, a.bytes, a.events, a.last_seq, a.archived_at \
                 FROM executions e LEFT JOIN execution_log_archives a ON a.execution_id = e.id \
                 WHERE e.id = ?",
        )
        .bind(text(id.as_uuid()))
        .fetch_optional(&self.reader)
        .await
        .map_err(map_sqlx)?;
        let Some((expired, key, bytes, events, last_seq, archived_at)) = row else {
            return Ok(LogLocation::Database);
        };
        if let Some(at) = expired {
            return Ok(LogLocation::Expired {
                at: ts("logs_expired_at", at)?,
            });
        }
        let entry = entry_of((
            id.as_uuid().hyphenated(),
            key,
            bytes,
            events,
            last_seq,
            archived_at,
        ))?;
        Ok(entry
            .archive
            .map_or(LogLocation::Database, LogLocation::Archived))
    }

    async fn list_expired_by_age(
        &self,
        finished_before: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<LogLocationEntry>> {
        let rows: Vec<EntryRow> = sqlx::query_as(&format!(
            "SELECT e.id, a.object_key, a.bytes, a.events, a.last_seq, a.archived_at \
             FROM executions e LEFT JOIN execution_log_archives a ON a.execution_id = e.id \
             WHERE e.finished_at IS NOT NULL AND e.finished_at < ? \
               AND e.status IN {TERMINAL} AND e.logs_expired_at IS NULL \
             ORDER BY e.finished_at, e.id LIMIT ?"
        ))
        .bind(micros(finished_before))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_sqlx)?;
        rows.into_iter().map(entry_of).collect()
    }

    async fn list_expired_by_size(
        &self,
        max_total_bytes: u64,
        limit: u32,
    ) -> StoreResult<Vec<LogLocationEntry>> {
        // Running total from the newest archive backwards: every archive whose running total
        // exceeds the cap is older than what fits.
        let rows: Vec<ArchiveRow> = sqlx::query_as(&format!(
            "SELECT {ARCHIVE_COLUMNS} FROM ( \
                SELECT {ARCHIVE_COLUMNS}, SUM(bytes) OVER ( \
                    ORDER BY archived_at DESC, execution_id DESC ROWS UNBOUNDED PRECEDING) AS newer \
                FROM execution_log_archives) \
             WHERE newer > ? ORDER BY archived_at, execution_id LIMIT ?"
        ))
        .bind(i64_of(max_total_bytes))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_sqlx)?;
        rows.into_iter()
            .map(|row| {
                let archive = archive_of(row)?;
                Ok(LogLocationEntry {
                    execution_id: archive.execution_id,
                    archive: Some(archive),
                })
            })
            .collect()
    }

    async fn archived_bytes_total(&self) -> StoreResult<u64> {
        let total: i64 =
            sqlx::query_scalar("SELECT COALESCE(SUM(bytes), 0) FROM execution_log_archives")
                .fetch_one(&self.reader)
                .await
                .map_err(map_sqlx)?;
        u64_of("bytes", total)
    }

    async fn expire_logs(&self, id: ExecutionId, now: Timestamp) -> StoreResult<ExpireOutcome> {
        let id_text = text(id.as_uuid());
        let mut tx = self.begin_immediate().await?;
        let eligible: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT 1 FROM executions WHERE id = ? AND status IN {TERMINAL} \
             AND logs_expired_at IS NULL"
        ))
        .bind(id_text)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        if eligible.is_none() {
            return Ok(ExpireOutcome::Unchanged);
        }
        let archive: Option<ArchiveRow> = sqlx::query_as(&format!(
            "DELETE FROM execution_log_archives WHERE execution_id = ? RETURNING {ARCHIVE_COLUMNS}"
        ))
        .bind(id_text)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        // Output goes; the last status event stays so seq numbering never restarts.
        sqlx::query(
            "DELETE FROM execution_logs WHERE execution_id = ?1 AND (stream <> 'status' OR \
             seq < (SELECT MAX(seq) FROM execution_logs WHERE execution_id = ?1))",
        )
        .bind(id_text)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        sqlx::query(
            "UPDATE executions SET logs_expired_at = ?, log_bytes = 0, stdout = '', stderr = '', \
             compile_output = NULL WHERE id = ?",
        )
        .bind(micros(now))
        .bind(id_text)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(ExpireOutcome::Expired {
            archive: archive.map(archive_of).transpose()?,
        })
    }
}
