//! Job blobs in object storage: the uploaded `source.tar` and the collected
//! `artifacts/<path>` of jobs finished for good move from the database to the `[logs]`
//! object store, under `jobs/<job id>/<blob name>`.
//!
//! One pass of the [`JobBlobArchiver`]:
//! 1. for each candidate ([`JobBlobArchiveStore::list_job_blob_candidates`]): read the bytes
//!    from the database, upload them to the blob's key (one atomic put: the key's bytes are
//!    always whole), check the object's size, then let the database decide
//!    ([`JobBlobArchiveStore::mark_job_blob_archived`], a compare-and-set). The key is derived
//!    from the job id and the blob name, and an archivable blob never changes, so two nodes
//!    archiving the same blob write the same bytes to the same key and one of them records it.
//!    An object the database refused (its job was deleted meanwhile) is deleted;
//! 2. delete the objects of archived rows that were deleted (retention purging their job),
//!    which the database listed in the deleting transaction
//!    ([`JobBlobArchiveStore::deleted_job_blob_objects`]), then forget them.
//!
//! A crash anywhere leaves the row readable from the database (before the mark) or the object
//! in place (after it); the next pass finishes the work. Readers go through the
//! [`JobBlobReader`](crate::JobBlobReader), which serves the bytes from wherever they are.

use std::sync::Arc;
use std::time::Duration;

use object_store::path::{Path as ObjectPath, PathPart};
use object_store::{ObjectStore, PutPayload};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use voidrunner_domain::JobId;
use voidrunner_store::{
    ArchivedJobBlob, JobBlobArchiveOutcome, JobBlobCandidate, JobBlobLocation, Scope, Store,
    StoreError,
};

/// Deleted objects handled per round trip.
const SWEEP_BATCH: u32 = 100;
/// Sweep rounds per pass at most (a pass never runs unbounded).
const SWEEP_ROUNDS: usize = 16;

/// What went wrong with one blob (each is logged once, by the pass).
#[derive(Debug, thiserror::Error)]
pub enum JobBlobError {
    /// The database failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The object store failed.
    #[error("object {key}: {source}")]
    Object {
        /// Object key.
        key: String,
        /// Cause.
        source: object_store::Error,
    },
    /// The object does not hold what was written (or what the database recorded).
    #[error("object {key} holds {got} bytes, expected {expected}")]
    Size {
        /// Object key.
        key: String,
        /// Recorded size.
        expected: u64,
        /// Object size.
        got: u64,
    },
    /// The blob name cannot be a key (absolute, empty or `.`/`..` segment, backslash, NUL).
    #[error("blob name {0:?} cannot be an object key")]
    BadName(String),
    /// The blob is archived but this process has no object store configured.
    #[error("job blob archived in {0} but no object store is configured")]
    NotConfigured(String),
}

/// The object key of a job's blob: `jobs/<job id>/<name>`. The name (`source.tar`,
/// `artifacts/<path>`) was validated when it was stored; it is checked again here so a key
/// never leaves `jobs/<job id>/`.
pub fn job_blob_key(job: JobId, name: &str) -> Result<ObjectPath, JobBlobError> {
    let bad = || JobBlobError::BadName(name.to_owned());
    if name.is_empty() || name.starts_with('/') || name.contains(['\\', '\0']) {
        return Err(bad());
    }
    let mut parts = vec![PathPart::from("jobs"), PathPart::from(job.to_string())];
    for seg in name.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(bad());
        }
        parts.push(PathPart::from(seg.to_owned()));
    }
    Ok(ObjectPath::from_iter(parts))
}

/// The archiver's settings.
#[derive(Debug, Clone, Copy)]
pub struct JobBlobSettings {
    /// Move blobs (otherwise a pass only deletes the objects of deleted rows).
    pub archive: bool,
    /// Minimum blob size moved.
    pub min_bytes: u64,
    /// Blobs per pass at most.
    pub batch: u32,
    /// Pause between passes.
    pub interval: Duration,
}

/// What one blob's archiving ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobArchived {
    /// This process recorded it.
    Done {
        /// Bytes moved.
        bytes: u64,
    },
    /// Another archiver had recorded it.
    LostRace,
    /// The row was deleted or is no longer archivable (our object was deleted).
    NotEligible,
}

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobBlobPass {
    /// Blobs this process archived.
    pub archived: usize,
    /// Bytes it moved.
    pub bytes: u64,
    /// Objects of deleted rows it deleted.
    pub deleted: usize,
    /// Failures (each logged once).
    pub failed: usize,
}

/// Moves job blobs to object storage and deletes the objects of deleted rows; see the
/// module docs.
#[derive(Clone)]
pub struct JobBlobArchiver {
    store: Arc<dyn Store>,
    objects: Arc<dyn ObjectStore>,
    settings: JobBlobSettings,
}

impl std::fmt::Debug for JobBlobArchiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobBlobArchiver")
            .field("objects", &self.objects.to_string())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl JobBlobArchiver {
    /// An archiver over `store` writing to `objects`.
    pub fn new(
        store: Arc<dyn Store>,
        objects: Arc<dyn ObjectStore>,
        settings: JobBlobSettings,
    ) -> Self {
        Self {
            store,
            objects,
            settings,
        }
    }

    /// Runs a pass every `interval` until `stop` is cancelled (at once: an interrupted blob
    /// is finished by the next pass, here or on another node).
    pub fn spawn(self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            tracing::info!(
                logs.job_blobs_archive = self.settings.archive,
                logs.job_blobs_threshold_bytes = self.settings.min_bytes,
                logs.objects = %self.objects,
                "job blob archiver started (threshold {} bytes, objects in {})",
                self.settings.min_bytes,
                self.objects
            );
            crate::background::every(self.settings.interval, &stop, || self.run_pass()).await;
        })
    }

    /// One pass: archives up to `batch` candidates (when archiving is on), then deletes the
    /// objects of deleted rows. Every failure is logged once here.
    pub async fn run_pass(&self) -> JobBlobPass {
        let mut pass = JobBlobPass::default();
        if self.settings.archive {
            self.archive_batch(&mut pass).await;
        }
        self.sweep(&mut pass).await;
        if pass.archived + pass.deleted > 0 {
            tracing::info!(
                logs.job_blobs_archived = pass.archived,
                logs.job_blobs_bytes = pass.bytes,
                logs.job_blobs_deleted = pass.deleted,
                "job blob archiver moved {} blobs ({} bytes), deleted {} objects",
                pass.archived,
                pass.bytes,
                pass.deleted
            );
        }
        pass
    }

    async fn archive_batch(&self, pass: &mut JobBlobPass) {
        let candidates = match self
            .store
            .list_job_blob_candidates(self.settings.min_bytes.max(1), self.settings.batch.max(1))
            .await
        {
            Ok(c) => c,
            Err(e) => {
                pass.failed += 1;
                tracing::warn!(error = %e, "job blob archiver: listing candidates failed: {e}");
                return;
            }
        };
        for c in candidates {
            match self.archive(&c).await {
                Ok(BlobArchived::Done { bytes }) => {
                    pass.archived += 1;
                    pass.bytes += bytes;
                }
                Ok(BlobArchived::LostRace | BlobArchived::NotEligible) => {}
                Err(e) => {
                    pass.failed += 1;
                    tracing::warn!(job.id = %c.job_id, job.blob = %c.name, error = %e, "archiving blob {} of job {} failed: {e}", c.name, c.job_id);
                }
            }
        }
    }

    /// Archives one blob (step 1 of the module docs).
    pub async fn archive(&self, c: &JobBlobCandidate) -> Result<BlobArchived, JobBlobError> {
        let key = job_blob_key(c.job_id, &c.name)?;
        let bytes = match self
            .store
            .job_blob_location(Scope::All, c.job_id, &c.name)
            .await
        {
            Ok(JobBlobLocation::Stored(b)) if b.len() as u64 == c.size => b,
            Ok(JobBlobLocation::Archived(_)) => return Ok(BlobArchived::LostRace),
            Ok(JobBlobLocation::Stored(_)) | Err(StoreError::NotFound) => {
                return Ok(BlobArchived::NotEligible);
            }
            Err(e) => return Err(e.into()),
        };
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let object_err = |source| JobBlobError::Object {
            key: key.to_string(),
            source,
        };
        self.objects
            .put(&key, PutPayload::from(bytes))
            .await
            .map_err(object_err)?;
        let got = self.objects.head(&key).await.map_err(object_err)?.size;
        if got != c.size {
            return Err(JobBlobError::Size {
                key: key.to_string(),
                expected: c.size,
                got,
            });
        }
        let record = ArchivedJobBlob {
            object_key: key.to_string(),
            size: c.size,
            sha256,
            archived_at: voidrunner_store::now(),
        };
        match self.store.mark_job_blob_archived(c, &record).await? {
            JobBlobArchiveOutcome::Archived => Ok(BlobArchived::Done { bytes: c.size }),
            JobBlobArchiveOutcome::AlreadyArchived(winner) => {
                if winner != record.object_key {
                    self.delete_quietly(&key).await;
                }
                Ok(BlobArchived::LostRace)
            }
            JobBlobArchiveOutcome::NotEligible => {
                self.delete_quietly(&key).await;
                Ok(BlobArchived::NotEligible)
            }
        }
    }

    /// Step 2: deletes the objects the database listed, then forgets them.
    async fn sweep(&self, pass: &mut JobBlobPass) {
        for _ in 0..SWEEP_ROUNDS {
            let keys = match self.store.deleted_job_blob_objects(SWEEP_BATCH).await {
                Ok(k) => k,
                Err(e) => {
                    pass.failed += 1;
                    tracing::warn!(error = %e, "job blob archiver: listing deleted objects failed: {e}");
                    return;
                }
            };
            let mut gone = Vec::with_capacity(keys.len());
            for k in &keys {
                let deleted = match ObjectPath::parse(k) {
                    Ok(path) => match self.objects.delete(&path).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => true,
                        Err(e) => {
                            pass.failed += 1;
                            tracing::warn!(logs.object = %k, error = %e, "deleting the job blob object {k} failed: {e}");
                            false
                        }
                    },
                    // Not a key this archiver writes: nothing to delete.
                    Err(_) => true,
                };
                if deleted {
                    gone.push(k.clone());
                }
            }
            pass.deleted += gone.len();
            if let Err(e) = self.store.forget_deleted_job_blob_objects(&gone).await {
                pass.failed += 1;
                tracing::warn!(error = %e, "job blob archiver: forgetting deleted objects failed: {e}");
                return;
            }
            if keys.len() < SWEEP_BATCH as usize || gone.len() < keys.len() {
                return;
            }
        }
    }

    async fn delete_quietly(&self, key: &ObjectPath) {
        match self.objects.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(logs.object = %key, error = %e, "deleting the unused job blob object {key} failed: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_under_the_job() {
        let id = JobId::new();
        assert_eq!(
            job_blob_key(id, "artifacts/dist/app.tgz")
                .expect("key")
                .to_string(),
            format!("jobs/{id}/artifacts/dist/app.tgz")
        );
        assert_eq!(
            job_blob_key(id, "source.tar").expect("key").to_string(),
            format!("jobs/{id}/source.tar")
        );
        let odd = job_blob_key(id, "artifacts/a b%.txt").expect("key");
        assert!(
            odd.to_string()
                .starts_with(&format!("jobs/{id}/artifacts/"))
        );
        assert_eq!(ObjectPath::parse(odd.as_ref()).expect("parse"), odd);
        for bad in [
            "",
            "/etc/passwd",
            "artifacts/../x",
            "..",
            "a//b",
            "./a",
            "a\\b",
            "a\0b",
            "a/",
        ] {
            assert!(
                matches!(job_blob_key(id, bad), Err(JobBlobError::BadName(_))),
                "{bad:?}"
            );
        }
    }
}
