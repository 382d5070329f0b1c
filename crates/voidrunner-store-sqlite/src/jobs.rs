//! CI jobs on SQLite (see [`voidrunner_store::JobStore`]): rows, reads and creation here; the
//! lease side (claim, fenced writes, complete, release, cancel, reaper) in `jobs_queue.rs`.

mod row;

use std::collections::BTreeMap;

use sqlx::{QueryBuilder, Sqlite};
use voidrunner_domain::Timestamp;
use voidrunner_store::{
    AppendOutcome, Job, JobArtifact, JobCompleteOutcome, JobCursor, JobEventRecord, JobId,
    JobLease, JobPage, JobResult, JobSignal, JobStatus, JobStep, JobStore, JobStream, JobWrite,
    LeaseStatus, NewJob, NewJobEvent, ReleaseOutcome, ReleaseReason, Scope, StepUpdate, StoreError,
    StoreResult,
};

pub(crate) use row::{
    JOB_COLUMNS, JobRow, StepRow, clamp, insert_event, insert_job, status_changed,
};

use crate::SqliteStore;
use crate::convert::{micros, text, ts};
use crate::error::{corrupt, map_sqlx};

impl SqliteStore {
    /// Fails with `NotFound` unless the job exists within scope.
    async fn job_in_scope(&self, scope: Scope, id: JobId) -> StoreResult<()> {
        self.get_job(scope, id).await.map(|_| ())
    }
}

#[async_trait::async_trait]
impl JobStore for SqliteStore {
    async fn create_job(
        &self,
        new: NewJob,
        sealed_secrets: BTreeMap<String, Vec<u8>>,
    ) -> StoreResult<Job> {
        let mut tx = self.begin_immediate().await?;
        let job = insert_job(&mut tx, &new, &sealed_secrets, None).await?;
        tx.commit().await.map_err(map_sqlx)?;
        self.signals.notify_work();
        Ok(job)
    }

    async fn get_job(&self, scope: Scope, id: JobId) -> StoreResult<Job> {
        let mut qb =
            QueryBuilder::<Sqlite>::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = "));
        qb.push_bind(text(id.as_uuid()));
        if let Scope::Owner(owner) = scope {
            qb.push(" AND owner_id = ").push_bind(text(owner.as_uuid()));
        }
        qb.build_query_as::<JobRow>()
            .fetch_one(&self.reader)
            .await
            .map_err(map_sqlx)?
            .into_job()
    }

    async fn list_jobs(
        &self,
        scope: Scope,
        status: Option<JobStatus>,
        after: Option<JobCursor>,
        limit: u32,
    ) -> StoreResult<JobPage> {
        let mut qb =
            QueryBuilder::<Sqlite>::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1"));
        if let Scope::Owner(owner) = scope {
            qb.push(" AND owner_id = ").push_bind(text(owner.as_uuid()));
        }
        if let Some(s) = status {
            qb.push(" AND status = ").push_bind(s.as_str());
        }
        if let Some(c) = after {
            qb.push(" AND (created_at, id) < (")
                .push_bind(micros(c.created_at))
                .push(", ")
                .push_bind(text(c.id.as_uuid()))
                .push(")");
        }
        qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = qb
            .build_query_as::<JobRow>()
            .fetch_all(&self.reader)
            .await
            .map_err(map_sqlx)?;
        let mut items = rows
            .into_iter()
            .map(JobRow::into_job)
            .collect::<StoreResult<Vec<_>>>()?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|j| JobCursor {
                created_at: j.created_at,
                id: j.id,
            })
        } else {
            None
        };
        Ok(JobPage { items, next })
    }

    async fn job_steps(&self, scope: Scope, id: JobId) -> StoreResult<Vec<JobStep>> {
        self.job_in_scope(scope, id).await?;
        sqlx::query_as::<_, StepRow>(
            "SELECT idx, name, state, exit_code, detail, started_at, finished_at, wall_ms, \
             cpu_ms, peak_memory_bytes FROM job_steps WHERE job_id = ? ORDER BY idx",
        )
        .bind(text(id.as_uuid()))
        .fetch_all(&self.reader)
        .await
        .map_err(map_sqlx)?
        .into_iter()
        .map(StepRow::into_step)
        .collect()
    }

    async fn job_secrets(&self, id: JobId) -> StoreResult<BTreeMap<String, Vec<u8>>> {
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT name, sealed FROM job_secrets WHERE job_id = ?")
                .bind(text(id.as_uuid()))
                .fetch_all(&self.reader)
                .await
                .map_err(map_sqlx)?;
        Ok(rows.into_iter().collect())
    }

    async fn claim_next_job(
        &self,
        worker_id: &str,
        lease_until: Timestamp,
        now: Timestamp,
        per_user_limit: Option<u32>,
    ) -> StoreResult<Option<Job>> {
        self.claim_job(worker_id, lease_until, now, per_user_limit)
            .await
    }

    async fn heartbeat_job(
        &self,
        lease: &JobLease,
        lease_until: Timestamp,
    ) -> StoreResult<LeaseStatus> {
        self.heartbeat_job_lease(lease, lease_until).await
    }

    async fn update_step(&self, lease: &JobLease, update: StepUpdate) -> StoreResult<JobWrite> {
        let mut tx = self.begin_immediate().await?;
        if !self.job_held(&mut tx, lease).await? {
            return Ok(JobWrite::LeaseLost);
        }
        let last_seq = crate::jobs_queue::write_step(&mut tx, lease, &update).await?;
        tx.commit().await.map_err(map_sqlx)?;
        self.signals.notify_job(JobSignal::Events {
            job_id: lease.job_id,
            last_seq: u64::try_from(last_seq).unwrap_or(0),
        });
        Ok(JobWrite::Written)
    }

    async fn append_job_events(
        &self,
        lease: &JobLease,
        events: &[NewJobEvent],
        now: Timestamp,
    ) -> StoreResult<AppendOutcome> {
        if events.iter().any(|e| e.stream == JobStream::Status) {
            return Err(StoreError::Conflict(
                "status events are written by the store".into(),
            ));
        }
        let id = text(lease.job_id.as_uuid());
        let mut tx = self.begin_immediate().await?;
        if !self.job_held(&mut tx, lease).await? {
            return Ok(AppendOutcome::LeaseLost);
        }
        let mut last: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM job_events WHERE job_id = ?")
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        for e in events {
            last = insert_event(
                &mut tx,
                id,
                lease.attempt,
                e.step.as_deref(),
                e.stream,
                &e.data,
                now,
            )
            .await?;
        }
        tx.commit().await.map_err(map_sqlx)?;
        let last_seq = u64::try_from(last).unwrap_or(0);
        if !events.is_empty() {
            self.signals.notify_job(JobSignal::Events {
                job_id: lease.job_id,
                last_seq,
            });
        }
        Ok(AppendOutcome::Appended { last_seq })
    }

    async fn read_job_events(
        &self,
        id: JobId,
        after: u64,
        limit: u32,
    ) -> StoreResult<Vec<JobEventRecord>> {
        let rows: Vec<(i64, i64, Option<String>, String, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT seq, attempt, step, stream, data, created_at FROM job_events \
             WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(text(id.as_uuid()))
        .bind(clamp(after))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_sqlx)?;
        rows.into_iter()
            .map(|(seq, attempt, step, stream, data, created_at)| {
                Ok(JobEventRecord {
                    seq: u64::try_from(seq).map_err(|_| corrupt("job_events.seq", seq))?,
                    attempt: u32::try_from(attempt)
                        .map_err(|_| corrupt("job_events.attempt", attempt))?,
                    step,
                    stream: JobStream::parse(&stream)
                        .ok_or_else(|| corrupt("job_events.stream", &stream))?,
                    data,
                    created_at: ts("job_events.created_at", created_at)?,
                })
            })
            .collect()
    }

    async fn record_job_artifact(
        &self,
        lease: &JobLease,
        artifact: JobArtifact,
    ) -> StoreResult<JobWrite> {
        let mut tx = self.begin_immediate().await?;
        if !self.job_held(&mut tx, lease).await? {
            return Ok(JobWrite::LeaseLost);
        }
        sqlx::query(
            "INSERT INTO job_artifacts (job_id, path, size, sha256, object_key) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (job_id, path) DO UPDATE SET \
             size = excluded.size, sha256 = excluded.sha256, object_key = excluded.object_key",
        )
        .bind(text(lease.job_id.as_uuid()))
        .bind(&artifact.path)
        .bind(clamp(artifact.size))
        .bind(&artifact.sha256)
        .bind(&artifact.object_key)
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(JobWrite::Written)
    }

    async fn put_job_blob(
        &self,
        id: JobId,
        name: &str,
        data: &[u8],
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO job_blobs (job_id, name, data, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (job_id, name) DO UPDATE SET data = excluded.data, \
             created_at = excluded.created_at, object_key = NULL, size_bytes = NULL, \
             sha256 = NULL, archived_at = NULL",
        )
        .bind(text(id.as_uuid()))
        .bind(name)
        .bind(data)
        .bind(micros(now))
        .execute(&self.writer)
        .await
        .map_err(map_sqlx)?;
        Ok(())
    }

    async fn job_blob(&self, scope: Scope, id: JobId, name: &str) -> StoreResult<Vec<u8>> {
        self.job_in_scope(scope, id).await?;
        sqlx::query_scalar(
            "SELECT data FROM job_blobs WHERE job_id = ? AND name = ? AND object_key IS NULL",
        )
        .bind(text(id.as_uuid()))
        .bind(name)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_sqlx)?
        .ok_or(StoreError::NotFound)
    }

    async fn job_artifacts(&self, scope: Scope, id: JobId) -> StoreResult<Vec<JobArtifact>> {
        self.job_in_scope(scope, id).await?;
        let rows: Vec<(String, i64, String, String)> = sqlx::query_as(
            "SELECT path, size, sha256, object_key FROM job_artifacts WHERE job_id = ? \
             ORDER BY path",
        )
        .bind(text(id.as_uuid()))
        .fetch_all(&self.reader)
        .await
        .map_err(map_sqlx)?;
        rows.into_iter()
            .map(|(path, size, sha256, object_key)| {
                Ok(JobArtifact {
                    path,
                    size: u64::try_from(size).map_err(|_| corrupt("job_artifacts.size", size))?,
                    sha256,
                    object_key,
                })
            })
            .collect()
    }

    async fn complete_job(
        &self,
        lease: &JobLease,
        result: JobResult,
    ) -> StoreResult<JobCompleteOutcome> {
        self.complete_job_lease(lease, result).await
    }

    async fn release_job(
        &self,
        lease: &JobLease,
        reason: ReleaseReason,
        now: Timestamp,
    ) -> StoreResult<ReleaseOutcome> {
        self.release_job_lease(lease, reason, now).await
    }

    async fn request_job_cancel(
        &self,
        scope: Scope,
        id: JobId,
        now: Timestamp,
    ) -> StoreResult<Job> {
        self.cancel_job(scope, id, now).await
    }

    async fn requeue_job_dead_letter(&self, id: JobId, now: Timestamp) -> StoreResult<Job> {
        let mut tx = self.begin_immediate().await?;
        let key: Option<uuid::fmt::Hyphenated> = sqlx::query_scalar(
            "UPDATE jobs SET status = 'queued', attempt = 0, run_after = ?, finished_at = NULL, \
                 dead_lettered_at = NULL, cancel_requested_at = NULL, failures = '[]', \
                 outputs = '{}' \
             WHERE id = ? AND status = 'failed' AND dead_lettered_at IS NOT NULL RETURNING id",
        )
        .bind(micros(now))
        .bind(text(id.as_uuid()))
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let key = key.ok_or(StoreError::NotFound)?;
        crate::jobs_queue::reset_attempt(&mut tx, key).await?;
        let job = status_changed(&mut tx, key, now).await?;
        tx.commit().await.map_err(map_sqlx)?;
        self.signals.notify_work();
        self.signals.notify_job(JobSignal::Events {
            job_id: id,
            last_seq: 0,
        });
        Ok(job)
    }

    async fn job_queue_stats(&self) -> StoreResult<voidrunner_store::QueueStats> {
        let (queued, running, dead): (i64, i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(status = 'queued'), 0), COALESCE(SUM(status = 'running'), 0), \
             COALESCE(SUM(dead_lettered_at IS NOT NULL), 0) FROM jobs",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(map_sqlx)?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(voidrunner_store::QueueStats {
            queued: n(queued),
            running: n(running),
            dead_lettered: n(dead),
        })
    }

    async fn reap_expired_job_leases(
        &self,
        now: Timestamp,
        retry_at: &(dyn Fn(u32) -> Timestamp + Send + Sync),
    ) -> StoreResult<Vec<(JobId, ReleaseOutcome)>> {
        self.reap_jobs(now, retry_at).await
    }
}
