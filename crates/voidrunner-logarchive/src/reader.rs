//! Reading an execution's event log wherever it is: database rows, the archive object (events
//! up to its `last_seq`) followed by any later rows, or nothing when retention expired it.
//!
//! A [`LogCursor`] reads forward from a seq in pages with bounded memory: an archived log is
//! streamed through the decoder once (never loaded whole), then the cursor continues in the
//! database. If the archiver moves the log while a cursor reads rows, the next page shows a
//! gap (seqs are gap-free from 1, and the archive keeps only the row of its `last_seq`), so
//! the cursor looks the location up again and continues from the object: no event is lost or
//! repeated.

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use voidrunner_domain::{ExecutionId, Timestamp};
use voidrunner_store::{LogEvent, LogLocation, Store, StoreError};

use crate::format::{Decoder, FormatError, Frame};

/// Why a log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Retention deleted this execution's output.
    #[error("the logs of this execution expired at {at}")]
    Expired {
        /// When.
        at: Timestamp,
    },
    /// The database failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The log is archived but this process has no object store configured.
    #[error("log archived in {key} but no object store is configured")]
    NotConfigured {
        /// Object key.
        key: String,
    },
    /// The object store failed.
    #[error("object {key}: {source}")]
    Object {
        /// Object key.
        key: String,
        /// Cause.
        source: object_store::Error,
    },
    /// The object is not a valid `.vrlog`.
    #[error("object {key}: {source}")]
    Format {
        /// Object key.
        key: String,
        /// Cause.
        source: FormatError,
    },
}

/// Serves event logs from the database or the archive; cheap to clone.
#[derive(Clone)]
pub struct LogReader {
    store: Arc<dyn Store>,
    objects: Option<Arc<dyn ObjectStore>>,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("objects", &self.objects.as_ref().map(|o| o.to_string()))
            .finish_non_exhaustive()
    }
}

/// An object error, unless the object vanished because retention expired the log. (A free
/// function: a cursor holds a `Send`-only byte stream, so `&LogCursor` must not live across an
/// await.)
async fn object_error(
    store: &dyn Store,
    id: ExecutionId,
    key: String,
    source: object_store::Error,
) -> ReadError {
    if matches!(source, object_store::Error::NotFound { .. })
        && let Ok(LogLocation::Expired { at }) = store.log_location(id).await
    {
        return ReadError::Expired { at };
    }
    ReadError::Object { key, source }
}

impl LogReader {
    /// A reader over `store`; `objects` is where archived logs are (`None`: archived logs
    /// cannot be read by this process).
    pub fn new(store: Arc<dyn Store>, objects: Option<Arc<dyn ObjectStore>>) -> Self {
        Self { store, objects }
    }

    /// The job blob reader over the same database and object store (CI job artifacts
    /// archived by the [`JobBlobArchiver`](crate::JobBlobArchiver)).
    pub fn job_blobs(&self) -> crate::JobBlobReader {
        crate::JobBlobReader::new(Arc::clone(&self.store), self.objects.clone())
    }

    /// Events with `seq > after`, in order, at most `limit` (fewer at the end of what is
    /// stored now). Each call locates the log anew; to read many pages use [`Self::cursor`].
    pub async fn read(
        &self,
        id: ExecutionId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<LogEvent>, ReadError> {
        self.cursor(id, after).await?.next_page(limit).await
    }

    /// A cursor reading forward from `after`; [`ReadError::Expired`] when the logs expired.
    pub async fn cursor(&self, id: ExecutionId, after: u64) -> Result<LogCursor, ReadError> {
        let mut cursor = LogCursor {
            reader: self.clone(),
            id,
            after,
            source: Source::Database,
        };
        cursor.locate().await?;
        Ok(cursor)
    }
}

enum Source {
    Database,
    Archive {
        key: String,
        last_seq: u64,
        bytes: BoxStream<'static, object_store::Result<bytes::Bytes>>,
        decoder: Decoder,
    },
}

/// Reads one execution's log forward; see the module docs.
pub struct LogCursor {
    reader: LogReader,
    id: ExecutionId,
    after: u64,
    source: Source,
}

impl std::fmt::Debug for LogCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogCursor")
            .field("id", &self.id)
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

impl LogCursor {
    /// The seq of the last event returned (or the starting point).
    pub fn position(&self) -> u64 {
        self.after
    }

    /// Picks the source for reading after `self.after`.
    async fn locate(&mut self) -> Result<(), ReadError> {
        self.source = match self.reader.store.log_location(self.id).await? {
            LogLocation::Expired { at } => return Err(ReadError::Expired { at }),
            LogLocation::Archived(a) if self.after < a.last_seq => {
                let objects =
                    self.reader
                        .objects
                        .as_ref()
                        .ok_or_else(|| ReadError::NotConfigured {
                            key: a.object_key.clone(),
                        })?;
                let path = ObjectPath::from(a.object_key.as_str());
                let bytes = match objects.get(&path).await {
                    Ok(got) => got.into_stream(),
                    Err(e) => {
                        return Err(object_error(
                            self.reader.store.as_ref(),
                            self.id,
                            a.object_key,
                            e,
                        )
                        .await);
                    }
                };
                Source::Archive {
                    key: a.object_key,
                    last_seq: a.last_seq,
                    bytes,
                    decoder: Decoder::new(),
                }
            }
            LogLocation::Archived(_) | LogLocation::Database => Source::Database,
        };
        Ok(())
    }

    /// The next events (at most `limit`); empty when nothing more is stored now.
    pub async fn next_page(&mut self, limit: u32) -> Result<Vec<LogEvent>, ReadError> {
        let limit = limit.max(1);
        loop {
            match &mut self.source {
                Source::Database => {
                    let page = self
                        .reader
                        .store
                        .read_logs(self.id, self.after, limit)
                        .await?;
                    if page.first().is_some_and(|e| e.seq != self.after + 1) {
                        // A gap: the rows were archived (or expired) under us.
                        let before = self.after;
                        self.locate().await?;
                        if matches!(self.source, Source::Archive { .. }) {
                            continue;
                        }
                        debug_assert_eq!(before, self.after);
                    }
                    if let Some(last) = page.last() {
                        self.after = last.seq;
                    }
                    return Ok(page);
                }
                Source::Archive { .. } => {
                    let page = self.archive_page(limit).await?;
                    if !page.is_empty() {
                        return Ok(page);
                    }
                    // The archive is exhausted: later events are rows.
                    self.source = Source::Database;
                }
            }
        }
    }

    /// Events from the archive after `self.after`, up to `limit`; empty at its end.
    async fn archive_page(&mut self, limit: u32) -> Result<Vec<LogEvent>, ReadError> {
        let mut page = Vec::new();
        let Source::Archive {
            key,
            last_seq,
            bytes,
            decoder,
        } = &mut self.source
        else {
            return Ok(page);
        };
        loop {
            match decoder.next_frame() {
                Ok(Some(Frame::Event(e))) => {
                    if e.seq > self.after && e.seq <= *last_seq {
                        self.after = e.seq;
                        page.push(e);
                        if page.len() >= limit as usize {
                            return Ok(page);
                        }
                    }
                    continue;
                }
                Ok(Some(Frame::End(_))) => {
                    self.after = self.after.max(*last_seq);
                    return Ok(page);
                }
                Ok(None) => {}
                Err(source) => {
                    return Err(ReadError::Format {
                        key: key.clone(),
                        source,
                    });
                }
            }
            match bytes.next().await {
                Some(Ok(b)) => decoder.push(&b),
                Some(Err(e)) => {
                    let key = key.clone();
                    return Err(object_error(self.reader.store.as_ref(), self.id, key, e).await);
                }
                None => {
                    return match decoder.finish() {
                        Ok(_) => {
                            self.after = self.after.max(*last_seq);
                            Ok(page)
                        }
                        Err(source) => Err(ReadError::Format {
                            key: key.clone(),
                            source,
                        }),
                    };
                }
            }
        }
    }
}
