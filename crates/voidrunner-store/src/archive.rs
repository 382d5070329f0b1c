//! Log archiving (large logs moved to object storage) and log retention.
//!
//! The event log of a finished execution is immutable, so once it grows past a threshold a
//! background archiver copies it into one object (outside this crate) and then calls
//! [`LogArchiveStore::mark_logs_archived`], which records where the object is and deletes the
//! copied rows in ONE transaction. The database decides: the call succeeds only while the
//! execution is terminal, not archived and not expired, so several archivers (several
//! processes) may race on the same execution and exactly one wins; the losers delete their own
//! object. A crash between writing the object and this transaction leaves the rows in place
//! (the log stays readable from the database) and the next pass archives again.
//!
//! What stays in the database: the row of the last archived event (`seq = last_seq`, the
//! terminal status event: a small JSON summary, no output) is kept, so `max(seq)` of the
//! execution never goes back and a later status event (a dead-letter requeue) continues the
//! numbering instead of restarting at 1. Readers take events `seq <= last_seq` from the object
//! and `seq > last_seq` from the database.
//!
//! Retention ([`LogArchiveStore::expire_logs`]) deletes an execution's output for good: its
//! log rows (again except the last one), its archive row, and the result's `stdout`, `stderr`
//! and `compile_output` (a user who is told "logs are deleted after N days" expects the output
//! to be gone, not merely moved). The execution row itself (status, verdict, measurements)
//! stays; `logs_expired_at` is set and log reads answer "expired".

use voidrunner_domain::{ExecutionId, Timestamp};

use crate::StoreResult;

/// Where an archived log is, as recorded by [`LogArchiveStore::mark_logs_archived`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogArchive {
    /// The execution.
    pub execution_id: ExecutionId,
    /// Key of the object holding events `1..=last_seq`.
    pub object_key: String,
    /// Size of the object, for the total-size retention cap.
    pub bytes: u64,
    /// Events in the object.
    pub events: u64,
    /// Seq of the last archived event.
    pub last_seq: u64,
    /// When the archive was recorded.
    pub archived_at: Timestamp,
}

/// An execution whose log is due for archiving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveCandidate {
    /// The execution.
    pub execution_id: ExecutionId,
    /// Output bytes in its log (`executions.log_bytes`).
    pub log_bytes: u64,
    /// When it finished (object keys are grouped by finish month).
    pub finished_at: Timestamp,
}

/// Where an execution's log is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLocation {
    /// All events are rows of the database.
    Database,
    /// Events up to `last_seq` are in the object, later ones (if any) in the database.
    Archived(LogArchive),
    /// Retention deleted the output at this time.
    Expired {
        /// `executions.logs_expired_at`.
        at: Timestamp,
    },
}

/// `mark_logs_archived` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveOutcome {
    /// This call recorded the archive and deleted the rows.
    Archived,
    /// Another archiver won; its record is returned (keep its object, delete yours).
    AlreadyArchived(LogArchive),
    /// The execution is gone, not terminal any more (requeued) or its logs expired: nothing
    /// was changed (delete your object).
    NotEligible,
}

/// What `expire_logs` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpireOutcome {
    /// Output deleted now; `archive` is the archive record that was removed, if any (its
    /// object should be gone already: the cleaner deletes objects first).
    Expired {
        /// The removed archive record.
        archive: Option<LogArchive>,
    },
    /// Already expired, unknown, or not terminal: nothing changed.
    Unchanged,
}

/// Which logs to archive or expire, and where archived logs are.
#[async_trait::async_trait]
pub trait LogArchiveStore {
    /// Terminal executions, not archived and not expired, with some output and
    /// `log_bytes >= min_bytes`, oldest finish first, at most `limit`.
    async fn list_archive_candidates(
        &self,
        min_bytes: u64,
        limit: u32,
    ) -> StoreResult<Vec<ArchiveCandidate>>;

    /// Records `archive` and deletes the execution's log rows with `seq < last_seq` (the
    /// last one stays, see the module docs), in one transaction, only if the execution is
    /// still terminal, not archived and not expired. Idempotent: a second call answers
    /// [`ArchiveOutcome::AlreadyArchived`].
    async fn mark_logs_archived(&self, archive: &LogArchive) -> StoreResult<ArchiveOutcome>;

    /// Where the execution's log is (an unknown id reads as [`LogLocation::Database`], like
    /// an empty log; callers check access with `get_execution` first).
    async fn log_location(&self, id: ExecutionId) -> StoreResult<LogLocation>;

    /// Terminal executions that finished before `finished_before` and whose logs have not
    /// expired, oldest first, at most `limit` (retention by age).
    async fn list_expired_by_age(
        &self,
        finished_before: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<LogLocationEntry>>;

    /// The oldest archives (by `archived_at`) that must go so the archived bytes that remain
    /// are at most `max_total_bytes`, oldest first, at most `limit` (retention by size).
    async fn list_expired_by_size(
        &self,
        max_total_bytes: u64,
        limit: u32,
    ) -> StoreResult<Vec<LogLocationEntry>>;

    /// Sum of `bytes` over all archives (the retention cleaner checks it against the cap
    /// before listing anything).
    async fn archived_bytes_total(&self) -> StoreResult<u64>;

    /// Deletes the execution's output for good (see the module docs) and sets
    /// `logs_expired_at = now`, in one transaction; only for terminal executions whose logs
    /// have not expired yet.
    async fn expire_logs(&self, id: ExecutionId, now: Timestamp) -> StoreResult<ExpireOutcome>;
}

/// A retention candidate: the execution and its archive record, if archived (the cleaner
/// deletes that object before calling `expire_logs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLocationEntry {
    /// The execution.
    pub execution_id: ExecutionId,
    /// Its archive record, when its log is in object storage.
    pub archive: Option<LogArchive>,
}
