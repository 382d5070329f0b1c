//! Large execution logs in object storage, retention, and reading logs wherever they are.
//!
//! The database holds every execution's event log while it runs (so live streaming is one
//! query). Once an execution has finished and its output reached
//! [`LogsConfig::archive_threshold_bytes`], the [`Archiver`] copies the whole log into one
//! object (the [`format`] `.vrlog`), verifies it, and lets the database record the archive and
//! drop the rows in one transaction. The [`RetentionCleaner`] deletes output by age and caps
//! the archived total. Readers (the HTTP logs endpoint, SSE replay) go through the
//! [`LogReader`], which serves the same events from either place, so clients cannot tell.
//!
//! Job blobs (a CI job's uploaded `source.tar` and collected artifacts) follow the same path
//! once their job is finished for good: the [`JobBlobArchiver`] moves them to
//! `jobs/<job id>/<name>` in the same object store and deletes the objects of jobs that
//! retention deleted; the [`JobBlobReader`] serves them from either place.
//!
//! Objects live in the local filesystem (`<data_dir>/logs`) by default or an S3-compatible
//! bucket ([`ObjectStoreConfig`]), through the `object_store` crate. Every step is safe with
//! several processes: the database transaction decides who archives or expires a log.

mod archiver;
mod background;
mod config;
pub mod format;
mod job_reader;
mod jobs;
mod reader;
mod retention;

pub use archiver::{
    ArchiveError, Archived, Archiver, ArchiverSettings, WrittenObject, execution_prefix,
};
pub use background::{LogTasks, start};
pub use config::{ConfigError, LogsConfig, ObjectStoreConfig, SecretString, Target};
pub use job_reader::{JobBlobBody, JobBlobReader};
pub use jobs::{
    BlobArchived, JobBlobArchiver, JobBlobError, JobBlobPass, JobBlobSettings, job_blob_key,
};
pub use object_store::ObjectStore;
pub use reader::{LogCursor, LogReader, ReadError};
pub use retention::{RetentionCleaner, RetentionReport, RetentionSettings};
