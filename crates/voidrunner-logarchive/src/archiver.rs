//! The archiver: moves the logs of finished executions over the size threshold into one
//! object each, then lets the database record it and drop the rows.
//!
//! One execution, in order:
//! 1. stream its events from the database into a new object
//!    `<yyyy>/<mm>/<execution_id>/<nonce>.vrlog` (the finish month groups objects; the nonce
//!    makes every attempt's object distinct, so two archivers racing on one execution never
//!    overwrite each other's object);
//! 2. read the object back and compare its summary (event count, last seq, bytes, digest)
//!    with what was written;
//! 3. [`LogArchiveStore::mark_logs_archived`]: the database decides. The winner deletes any
//!    other object under the execution's prefix (left by an archiver that crashed between
//!    steps 1 and 3, or that lost a race); a loser deletes its own object.
//!
//! A crash anywhere before step 3 leaves the rows in place, so the log stays readable from
//! the database and the next pass archives it again.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, WriteMultipart};
use tokio_util::sync::CancellationToken;
use voidrunner_domain::{ExecutionId, Timestamp};
use voidrunner_metrics::Metrics;
use voidrunner_store::{ArchiveCandidate, ArchiveOutcome, LogArchive, Store, StoreError};

use crate::format::{Decoder, Encoder, FormatError, HEADER, Summary};

/// Events read from the database per round trip.
const PAGE: u32 = 512;
/// Bytes buffered before they are handed to the object writer.
const FLUSH_AT: usize = 256 << 10;
/// Multipart part size (S3's minimum is 5 MiB).
const PART: usize = 8 << 20;
/// Parts uploaded concurrently at most (bounds memory to about `PART * (PARALLEL + 1)`).
const PARALLEL: usize = 2;

/// What went wrong archiving one execution (each is logged once, by the pass).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
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
    /// Reading the object back did not give what was written.
    #[error("object {key} failed verification: {source}")]
    Verify {
        /// Object key.
        key: String,
        /// Cause.
        source: FormatError,
    },
    /// The rows changed while they were copied (another archiver deleted them, or a gap).
    #[error("log of {0} changed while it was copied")]
    Changed(ExecutionId),
}

/// An object written for an execution but not yet recorded in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenObject {
    /// The record to commit.
    pub archive: LogArchive,
    /// What the object holds.
    pub summary: Summary,
}

/// What one execution's archiving ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archived {
    /// This process archived it.
    Done {
        /// Object size.
        bytes: u64,
    },
    /// Another archiver had done it (our object was deleted).
    LostRace,
    /// It was requeued, expired or deleted meanwhile (our object was deleted).
    NotEligible,
}

/// The archiver's settings.
#[derive(Debug, Clone, Copy)]
pub struct ArchiverSettings {
    /// Minimum output bytes.
    pub threshold_bytes: u64,
    /// Executions per pass at most.
    pub batch: u32,
    /// Pause between passes.
    pub interval: Duration,
}

/// Moves large logs of finished executions to object storage; see the module docs.
#[derive(Clone)]
pub struct Archiver {
    store: Arc<dyn Store>,
    objects: Arc<dyn ObjectStore>,
    settings: ArchiverSettings,
    metrics: Option<Metrics>,
}

impl std::fmt::Debug for Archiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archiver")
            .field("objects", &self.objects.to_string())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The directory of an execution's objects: `<yyyy>/<mm>/<execution_id>/`.
pub fn execution_prefix(id: ExecutionId, finished_at: Timestamp) -> ObjectPath {
    ObjectPath::from(format!("{}/{id}", finished_at.format("%Y/%m")))
}

impl Archiver {
    /// An archiver over `store` writing to `objects`; counts into `metrics` when given.
    pub fn new(
        store: Arc<dyn Store>,
        objects: Arc<dyn ObjectStore>,
        settings: ArchiverSettings,
        metrics: Option<Metrics>,
    ) -> Self {
        Self {
            store,
            objects,
            settings,
            metrics,
        }
    }

    /// Runs passes every `interval` until `stop` is cancelled (at once: an interrupted
    /// archive leaves at most an unrecorded object, removed by the next successful archive of
    /// that execution).
    pub fn spawn(self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            tracing::info!(
                logs.threshold_bytes = self.settings.threshold_bytes,
                logs.objects = %self.objects,
                "log archiver started (threshold {} bytes, objects in {})",
                self.settings.threshold_bytes,
                self.objects
            );
            crate::background::every(self.settings.interval, &stop, || self.run_pass()).await;
        })
    }

    /// One pass: archives up to `batch` candidates; returns how many this process archived.
    /// Every failure is logged once here, with the execution id.
    pub async fn run_pass(&self) -> usize {
        let candidates = match self
            .store
            .list_archive_candidates(self.settings.threshold_bytes, self.settings.batch)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "log archiver: listing candidates failed: {e}");
                self.count("failed", 0);
                return 0;
            }
        };
        let mut done = 0;
        for c in candidates {
            match self.archive(&c).await {
                Ok(Archived::Done { bytes }) => {
                    done += 1;
                    self.count("archived", bytes);
                    tracing::info!(execution.id = %c.execution_id, logs.bytes = bytes, "log of execution {} archived ({bytes} bytes)", c.execution_id);
                }
                Ok(Archived::LostRace) => self.count("lost_race", 0),
                Ok(Archived::NotEligible) => self.count("not_eligible", 0),
                Err(e) => {
                    self.count("failed", 0);
                    tracing::warn!(execution.id = %c.execution_id, error = %e, "archiving the log of execution {} failed: {e}", c.execution_id);
                }
            }
        }
        done
    }

    fn count(&self, outcome: &'static str, bytes: u64) {
        if let Some(m) = &self.metrics {
            m.record_log_archive(outcome, bytes);
        }
    }

    /// Archives one execution (steps 1–3 of the module docs).
    pub async fn archive(&self, c: &ArchiveCandidate) -> Result<Archived, ArchiveError> {
        let written = self.write_object(c).await?;
        self.commit(c, written).await
    }

    /// Steps 1 and 2: writes and verifies the object, records nothing. Public so tests can
    /// stop here (a crash before the database transaction).
    pub async fn write_object(&self, c: &ArchiveCandidate) -> Result<WrittenObject, ArchiveError> {
        let nonce = uuid::Uuid::now_v7().simple();
        let key = execution_prefix(c.execution_id, c.finished_at).child(format!("{nonce}.vrlog"));
        let written = match self.copy_rows(c.execution_id, &key).await {
            Ok(w) => w,
            Err(e) => {
                self.delete_quietly(&key).await;
                return Err(e);
            }
        };
        let (summary, bytes) = written;
        if let Err(e) = self.verify(&key, summary).await {
            self.delete_quietly(&key).await;
            return Err(e);
        }
        Ok(WrittenObject {
            archive: LogArchive {
                execution_id: c.execution_id,
                object_key: key.to_string(),
                bytes,
                events: summary.events,
                last_seq: summary.last_seq,
                archived_at: voidrunner_store::now(),
            },
            summary,
        })
    }

    /// Step 3: lets the database decide, then removes the objects that lost.
    pub async fn commit(
        &self,
        c: &ArchiveCandidate,
        written: WrittenObject,
    ) -> Result<Archived, ArchiveError> {
        let key = ObjectPath::from(written.archive.object_key.as_str());
        match self.store.mark_logs_archived(&written.archive).await {
            Ok(ArchiveOutcome::Archived) => {
                let prefix = execution_prefix(c.execution_id, c.finished_at);
                self.delete_others(&prefix, &key).await;
                Ok(Archived::Done {
                    bytes: written.archive.bytes,
                })
            }
            Ok(ArchiveOutcome::AlreadyArchived(winner)) => {
                if winner.object_key != written.archive.object_key {
                    self.delete_quietly(&key).await;
                }
                Ok(Archived::LostRace)
            }
            Ok(ArchiveOutcome::NotEligible) => {
                self.delete_quietly(&key).await;
                Ok(Archived::NotEligible)
            }
            // Unknown whether it committed: keep the object (if it did not, the next pass
            // writes a new one and removes this one).
            Err(e) => Err(e.into()),
        }
    }

    /// Streams the rows into the object; answers its summary and size.
    async fn copy_rows(
        &self,
        id: ExecutionId,
        key: &ObjectPath,
    ) -> Result<(Summary, u64), ArchiveError> {
        let object_err = |source| ArchiveError::Object {
            key: key.to_string(),
            source,
        };
        let upload = self.objects.put_multipart(key).await.map_err(object_err)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let result = async {
            let mut enc = Encoder::new();
            let mut buf = HEADER.to_vec();
            let mut size = 0u64;
            let mut after = 0u64;
            loop {
                let page = self.store.read_logs(id, after, PAGE).await?;
                let Some(last) = page.last().map(|e| e.seq) else {
                    break;
                };
                for e in &page {
                    if e.seq != after + 1 {
                        return Err(ArchiveError::Changed(id));
                    }
                    after = e.seq;
                    enc.event(e, &mut buf);
                }
                debug_assert_eq!(after, last);
                if buf.len() >= FLUSH_AT {
                    writer
                        .wait_for_capacity(PARALLEL)
                        .await
                        .map_err(object_err)?;
                    size += buf.len() as u64;
                    writer.write(&buf);
                    buf.clear();
                }
                if page.len() < PAGE as usize {
                    break;
                }
            }
            let summary = enc.finish(&mut buf);
            size += buf.len() as u64;
            writer.write(&buf);
            Ok((summary, size))
        }
        .await;
        match result {
            Ok(done) if done.0.events > 0 => {
                writer.finish().await.map_err(object_err)?;
                Ok(done)
            }
            Ok(_) => {
                let _ = writer.abort().await;
                Err(ArchiveError::Changed(id))
            }
            Err(e) => {
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }

    /// Reads the object back and compares its trailer and size with what was written.
    async fn verify(&self, key: &ObjectPath, expected: Summary) -> Result<(), ArchiveError> {
        let got = read_summary(self.objects.as_ref(), key).await?;
        if got != expected {
            return Err(ArchiveError::Verify {
                key: key.to_string(),
                source: FormatError::Mismatch,
            });
        }
        Ok(())
    }

    /// Deletes every object under `prefix` except `keep` (leftovers of crashed or losing
    /// archivers of the same execution).
    async fn delete_others(&self, prefix: &ObjectPath, keep: &ObjectPath) {
        let mut list = self.objects.list(Some(prefix));
        while let Some(item) = list.next().await {
            match item {
                Ok(meta) if &meta.location != keep => self.delete_quietly(&meta.location).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(logs.prefix = %prefix, error = %e, "listing archived log objects under {prefix} failed: {e}");
                    return;
                }
            }
        }
    }

    async fn delete_quietly(&self, key: &ObjectPath) {
        match self.objects.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(logs.object = %key, error = %e, "deleting the unused log object {key} failed: {e}");
            }
        }
    }
}

/// Streams an object through the decoder; its verified trailer.
pub(crate) async fn read_summary(
    objects: &dyn ObjectStore,
    key: &ObjectPath,
) -> Result<Summary, ArchiveError> {
    let object_err = |source| ArchiveError::Object {
        key: key.to_string(),
        source,
    };
    let verify_err = |source| ArchiveError::Verify {
        key: key.to_string(),
        source,
    };
    let mut stream = objects.get(key).await.map_err(object_err)?.into_stream();
    let mut dec = Decoder::new();
    while let Some(bytes) = stream.next().await {
        dec.push(&bytes.map_err(object_err)?);
        while dec.next_frame().map_err(verify_err)?.is_some() {}
    }
    dec.finish().map_err(verify_err)
}
