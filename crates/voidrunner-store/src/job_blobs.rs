//! Job blobs in object storage: the bytes of finished jobs (the uploaded `source.tar`, the
//! collected `artifacts/<path>`) move out of the database, the row keeps where they went.
//!
//! A blob is *archivable* once its job is finished for good: `succeeded`, `cancelled`, or
//! `failed` without being dead-lettered (a dead-lettered job may be requeued, and its worker
//! reads `source.tar` from the database). Those statuses never change again, so an archived
//! blob's bytes never change either and its object key (`jobs/<job id>/<blob name>`) is
//! written with the same bytes by whichever archiver gets there.
//!
//! The archiver uploads, then [`JobBlobArchiveStore::mark_job_blob_archived`] records the key
//! and empties the row in one compare-and-set (still unarchived, same `created_at` and size,
//! job still archivable): the database decides, so any number of nodes may archive at once.
//!
//! Deleting an archived row (retention purging its job, or anything else) records its key in
//! `job_blob_deleted_objects` in the same transaction (a trigger, migration `0011`), so the
//! object is deleted later by the archiver ([`JobBlobArchiveStore::deleted_job_blob_objects`],
//! [`JobBlobArchiveStore::forget_deleted_job_blob_objects`]) and never leaks, whatever
//! deleted the row.

use voidrunner_domain::Timestamp;

use crate::{JobId, Scope, StoreResult};

/// A blob that may move to object storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobBlobCandidate {
    /// Its job.
    pub job_id: JobId,
    /// `source.tar` or `artifacts/<path>`.
    pub name: String,
    /// Bytes in the database.
    pub size: u64,
    /// When it was (last) written: part of the compare-and-set.
    pub created_at: Timestamp,
}

/// What the database records about an archived blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedJobBlob {
    /// Object key (relative to the `[logs] object_store`).
    pub object_key: String,
    /// Object size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// When it was archived.
    pub archived_at: Timestamp,
}

/// Where a blob's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobBlobLocation {
    /// In the database: the bytes.
    Stored(Vec<u8>),
    /// In object storage.
    Archived(ArchivedJobBlob),
}

/// What [`JobBlobArchiveStore::mark_job_blob_archived`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobBlobArchiveOutcome {
    /// This call recorded the archive and emptied the row.
    Archived,
    /// Another archiver did first (with this key).
    AlreadyArchived(String),
    /// The row is gone, was rewritten, or its job is no longer archivable: the uploaded
    /// object is not referenced and may be deleted.
    NotEligible,
}

/// Moving job blobs to object storage; see the module docs.
#[async_trait::async_trait]
pub trait JobBlobArchiveStore {
    /// Up to `limit` unarchived blobs of at least `min_bytes` whose job is archivable (see
    /// the module docs), oldest first.
    async fn list_job_blob_candidates(
        &self,
        min_bytes: u64,
        limit: u32,
    ) -> StoreResult<Vec<JobBlobCandidate>>;

    /// Records that `candidate`'s bytes are in `archive.object_key` and empties the row, if
    /// it is still unarchived, unchanged (`created_at`, size) and its job still archivable.
    async fn mark_job_blob_archived(
        &self,
        candidate: &JobBlobCandidate,
        archive: &ArchivedJobBlob,
    ) -> StoreResult<JobBlobArchiveOutcome>;

    /// Where the blob `name` of a job is; `NotFound` when the job is out of scope or has none.
    async fn job_blob_location(
        &self,
        scope: Scope,
        id: JobId,
        name: &str,
    ) -> StoreResult<JobBlobLocation>;

    /// Object keys of archived blobs whose rows were deleted, oldest first, at most `limit`:
    /// objects to delete.
    async fn deleted_job_blob_objects(&self, limit: u32) -> StoreResult<Vec<String>>;

    /// Forgets deleted objects (after they were deleted from object storage); idempotent.
    async fn forget_deleted_job_blob_objects(&self, keys: &[String]) -> StoreResult<()>;
}
