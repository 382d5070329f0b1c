//! [`voidrunner_store::JobBlobArchiveStore`] on SQLite: archive columns of `job_blobs` and the
//! `job_blob_deleted_objects` work list (migration `0011`). The compare-and-set is one
//! `UPDATE` on the single writer, so racing archivers cannot both win.

use voidrunner_store::{
    ArchivedJobBlob, JobBlobArchiveOutcome, JobBlobArchiveStore, JobBlobCandidate, JobBlobLocation,
    JobId, JobStore, Scope, StoreError, StoreResult,
};

use crate::SqliteStore;
use crate::convert::{micros, text, ts};
use crate::error::{corrupt, map_sqlx};

/// SQL condition on `jobs j`: finished for good (never claimed or requeued again).
const ARCHIVABLE: &str = "j.status IN ('succeeded', 'failed', 'cancelled') \
     AND j.dead_lettered_at IS NULL";

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u64_of(column: &'static str, v: i64) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| corrupt(column, v))
}

#[async_trait::async_trait]
impl JobBlobArchiveStore for SqliteStore {
    async fn list_job_blob_candidates(
        &self,
        min_bytes: u64,
        limit: u32,
    ) -> StoreResult<Vec<JobBlobCandidate>> {
        let rows: Vec<(uuid::fmt::Hyphenated, String, i64, i64)> = sqlx::query_as(&format!(
            "SELECT b.job_id, b.name, length(b.data), b.created_at FROM job_blobs b \
             JOIN jobs j ON j.id = b.job_id \
             WHERE b.object_key IS NULL AND length(b.data) >= ? AND {ARCHIVABLE} \
             ORDER BY b.created_at, b.job_id, b.name LIMIT ?"
        ))
        .bind(i64_of(min_bytes))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_sqlx)?;
        rows.into_iter()
            .map(|(id, name, size, created_at)| {
                Ok(JobBlobCandidate {
                    job_id: JobId::from(*id.as_uuid()),
                    name,
                    size: u64_of("job_blobs.data", size)?,
                    created_at: ts("job_blobs.created_at", created_at)?,
                })
            })
            .collect()
    }

    async fn mark_job_blob_archived(
        &self,
        c: &JobBlobCandidate,
        archive: &ArchivedJobBlob,
    ) -> StoreResult<JobBlobArchiveOutcome> {
        let mut tx = self.begin_immediate().await?;
        let done = sqlx::query(&format!(
            "UPDATE job_blobs SET data = x'', object_key = ?, size_bytes = ?, sha256 = ?, \
                 archived_at = ? \
             WHERE job_id = ? AND name = ? AND object_key IS NULL AND created_at = ? \
               AND length(data) = ? \
               AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = job_blobs.job_id AND {ARCHIVABLE})"
        ))
        .bind(&archive.object_key)
        .bind(i64_of(archive.size))
        .bind(&archive.sha256)
        .bind(micros(archive.archived_at))
        .bind(text(c.job_id.as_uuid()))
        .bind(&c.name)
        .bind(micros(c.created_at))
        .bind(i64_of(c.size))
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?
        .rows_affected();
        let outcome = if done == 1 {
            JobBlobArchiveOutcome::Archived
        } else {
            let key: Option<Option<String>> = sqlx::query_scalar(
                "SELECT object_key FROM job_blobs WHERE job_id = ? AND name = ?",
            )
            .bind(text(c.job_id.as_uuid()))
            .bind(&c.name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_sqlx)?;
            match key.flatten() {
                Some(k) => JobBlobArchiveOutcome::AlreadyArchived(k),
                None => JobBlobArchiveOutcome::NotEligible,
            }
        };
        tx.commit().await.map_err(map_sqlx)?;
        Ok(outcome)
    }

    async fn job_blob_location(
        &self,
        scope: Scope,
        id: JobId,
        name: &str,
    ) -> StoreResult<JobBlobLocation> {
        self.get_job(scope, id).await?;
        type Row = (
            Vec<u8>,
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<i64>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT data, object_key, size_bytes, sha256, archived_at FROM job_blobs \
             WHERE job_id = ? AND name = ?",
        )
        .bind(text(id.as_uuid()))
        .bind(name)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_sqlx)?;
        match row.ok_or(StoreError::NotFound)? {
            (_, Some(object_key), Some(size), Some(sha256), Some(at)) => {
                Ok(JobBlobLocation::Archived(ArchivedJobBlob {
                    object_key,
                    size: u64_of("job_blobs.size_bytes", size)?,
                    sha256,
                    archived_at: ts("job_blobs.archived_at", at)?,
                }))
            }
            (_, Some(key), ..) => Err(corrupt("job_blobs.object_key", key)),
            (data, None, ..) => Ok(JobBlobLocation::Stored(data)),
        }
    }

    async fn deleted_job_blob_objects(&self, limit: u32) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT object_key FROM job_blob_deleted_objects \
             ORDER BY deleted_at, object_key LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_sqlx)
    }

    async fn forget_deleted_job_blob_objects(&self, keys: &[String]) -> StoreResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "DELETE FROM job_blob_deleted_objects WHERE object_key IN (",
        );
        let mut sep = q.separated(", ");
        for k in keys {
            sep.push_bind(k);
        }
        sep.push_unseparated(")");
        q.build().execute(&self.writer).await.map_err(map_sqlx)?;
        Ok(())
    }
}
