//! Starting the archive side of a node from its `[logs]` configuration: the reader the API
//! uses, and the archiver and retention cleaner tasks (stopped together at shutdown).

use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use voidrunner_metrics::Metrics;
use voidrunner_store::Store;

use crate::{
    Archiver, ArchiverSettings, ConfigError, JobBlobArchiver, JobBlobSettings, LogReader,
    LogsConfig, RetentionCleaner, RetentionSettings,
};

/// Retention candidates listed per round trip.
const RETENTION_BATCH: u32 = 100;

/// The archiver and cleaner tasks of this process.
#[derive(Debug)]
pub struct LogTasks {
    stop: CancellationToken,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl LogTasks {
    /// Stops the tasks and waits for them (an archive in progress is abandoned; it is
    /// idempotent and the next process finishes it).
    pub async fn stop(self) {
        self.stop.cancel();
        for h in self.handles {
            let _ = h.await;
        }
    }
}

/// Builds the object store from `config`, the [`LogReader`] over it, and (when `background`)
/// starts the archiver (if `archive_enabled`), the cleaner (if a retention rule is set) and
/// the job blob archiver (always: with `job_blobs_archive_enabled` off it only deletes the
/// objects of deleted jobs) on the current runtime.
pub fn start(
    config: &LogsConfig,
    data_dir: &Path,
    store: Arc<dyn Store>,
    metrics: Option<Metrics>,
    background: bool,
) -> Result<(LogReader, LogTasks), ConfigError> {
    let objects = config.object_store.build(data_dir)?;
    let reader = LogReader::new(Arc::clone(&store), Some(Arc::clone(&objects)));
    let stop = CancellationToken::new();
    let mut handles = Vec::new();
    if background && config.archive_enabled {
        let archiver = Archiver::new(
            Arc::clone(&store),
            Arc::clone(&objects),
            ArchiverSettings {
                threshold_bytes: config.archive_threshold_bytes.max(1),
                batch: config.archive_batch.max(1),
                interval: config.archive_interval(),
            },
            metrics.clone(),
        );
        handles.push(archiver.spawn(stop.clone()));
    }
    if background {
        let blobs = JobBlobArchiver::new(
            Arc::clone(&store),
            Arc::clone(&objects),
            JobBlobSettings {
                archive: config.job_blobs_archive_enabled,
                min_bytes: config.job_blobs_threshold_bytes.max(1),
                batch: config.job_blobs_batch.max(1),
                interval: config.job_blobs_interval(),
            },
        );
        handles.push(blobs.spawn(stop.clone()));
    }
    if background && config.retention_enabled() {
        let cleaner = RetentionCleaner::new(
            store,
            objects,
            RetentionSettings {
                max_age: (config.retention_max_age_secs > 0)
                    .then(|| std::time::Duration::from_secs(config.retention_max_age_secs)),
                max_total_bytes: (config.retention_max_total_bytes > 0)
                    .then_some(config.retention_max_total_bytes),
                batch: RETENTION_BATCH,
                interval: config.retention_interval(),
            },
            metrics,
        );
        handles.push(cleaner.spawn(stop.clone()));
    }
    Ok((reader, LogTasks { stop, handles }))
}

/// Runs `pass` now and then every `interval` after the previous one ended, until `stop` is
/// cancelled (at once, also in the middle of a pass: every pass of this crate leaves the
/// database consistent and the next pass, here or on another node, finishes its work).
pub(crate) async fn every<F, Fut>(interval: std::time::Duration, stop: &CancellationToken, pass: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future,
{
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = pass() => {}
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
