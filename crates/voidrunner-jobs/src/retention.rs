//! The CI retention cleaner: deletes finished standalone jobs and finished workflows (with
//! their jobs) older than `[jobs] retention_max_age_secs`, and hook deliveries older than
//! `[hooks] delivery_retention_secs`.
//!
//! Each rule calls its [`RetentionStore`](voidrunner_store::RetentionStore) method batch after
//! batch until a batch comes back short (or [`MAX_BATCHES`] per pass, so a pass never runs
//! unbounded). Every batch is one idempotent transaction, so any number of nodes may run a
//! cleaner at once: a row is deleted by exactly one of them, and an interrupted pass leaves
//! nothing half-deleted. A failed batch is logged once and retried at the next pass.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use voidrunner_domain::Timestamp;
use voidrunner_metrics::Metrics;
use voidrunner_store::{Store, StoreResult};

/// Batches per rule and pass at most.
pub const MAX_BATCHES: usize = 64;

/// The cleaner's settings.
#[derive(Debug, Clone, Copy)]
pub struct RetentionSettings {
    /// Jobs and workflows finished longer ago are deleted (`None`: kept forever).
    pub job_max_age: Option<Duration>,
    /// Hook deliveries received longer ago are deleted (`None`: kept forever). A redelivery
    /// of a deleted delivery is no longer recognised as a duplicate.
    pub delivery_max_age: Option<Duration>,
    /// Rows deleted per transaction.
    pub batch: u32,
    /// Pause between passes.
    pub interval: Duration,
}

impl RetentionSettings {
    /// Whether any rule is set (otherwise no task is started).
    pub fn enabled(&self) -> bool {
        self.job_max_age.is_some() || self.delivery_max_age.is_some()
    }
}

/// What a pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Standalone jobs.
    pub jobs: u64,
    /// Workflows (their jobs are not counted in `jobs`).
    pub workflows: u64,
    /// Hook deliveries.
    pub deliveries: u64,
    /// Failed batches (each logged once).
    pub failed: usize,
}

/// The three rules, named as the metric's `kind` label.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Job,
    Workflow,
    Delivery,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Job => "job",
            Kind::Workflow => "workflow",
            Kind::Delivery => "delivery",
        }
    }
}

/// Deletes old CI history; see the module docs.
#[derive(Clone)]
pub struct RetentionCleaner {
    store: Arc<dyn Store>,
    settings: RetentionSettings,
    metrics: Option<Metrics>,
}

impl std::fmt::Debug for RetentionCleaner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetentionCleaner")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A running cleaner task; [`RetentionTask::stop`] ends it.
#[derive(Debug)]
pub struct RetentionTask {
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

impl RetentionTask {
    /// Stops the task and waits for it (a batch in progress is rolled back or committed
    /// whole by the store).
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.handle.await;
    }
}

impl RetentionCleaner {
    /// A cleaner over `store`; counts into `metrics` when given.
    pub fn new(
        store: Arc<dyn Store>,
        settings: RetentionSettings,
        metrics: Option<Metrics>,
    ) -> Self {
        Self {
            store,
            settings,
            metrics,
        }
    }

    /// Runs a pass every `interval` on the current runtime until stopped.
    pub fn spawn(self) -> RetentionTask {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let handle = tokio::spawn(async move {
            tracing::info!(
                jobs.retention_max_age_secs = self.settings.job_max_age.map(|d| d.as_secs()),
                hooks.delivery_retention_secs = self.settings.delivery_max_age.map(|d| d.as_secs()),
                "job retention cleaner started"
            );
            loop {
                tokio::select! {
                    () = token.cancelled() => break,
                    _ = self.run_pass(voidrunner_store::now()) => {}
                }
                tokio::select! {
                    () = token.cancelled() => break,
                    () = tokio::time::sleep(self.settings.interval) => {}
                }
            }
        });
        RetentionTask { stop, handle }
    }

    /// One pass over every rule, with ages measured from `now`.
    pub async fn run_pass(&self, now: Timestamp) -> RetentionReport {
        let mut report = RetentionReport::default();
        if let Some(age) = self.settings.job_max_age {
            let cutoff = before(now, age);
            report.jobs = self.apply(Kind::Job, cutoff, &mut report.failed).await;
            report.workflows = self.apply(Kind::Workflow, cutoff, &mut report.failed).await;
        }
        if let Some(age) = self.settings.delivery_max_age {
            let cutoff = before(now, age);
            report.deliveries = self.apply(Kind::Delivery, cutoff, &mut report.failed).await;
        }
        if report.jobs + report.workflows + report.deliveries > 0 {
            tracing::info!(
                retention.jobs = report.jobs,
                retention.workflows = report.workflows,
                retention.deliveries = report.deliveries,
                "job retention deleted {} jobs, {} workflows, {} hook deliveries",
                report.jobs,
                report.workflows,
                report.deliveries
            );
        }
        report
    }

    /// Deletes batch after batch until one comes back short; answers how many it deleted.
    async fn apply(&self, kind: Kind, cutoff: Timestamp, failed: &mut usize) -> u64 {
        let batch = self.settings.batch.max(1);
        let mut deleted = 0;
        for _ in 0..MAX_BATCHES {
            match self.purge(kind, cutoff, batch).await {
                Ok(n) => {
                    deleted += n;
                    if let Some(m) = &self.metrics {
                        m.record_jobs_expired(kind.name(), n);
                    }
                    if n < u64::from(batch) {
                        break;
                    }
                }
                Err(e) => {
                    *failed += 1;
                    tracing::warn!(retention.kind = kind.name(), error = %e, "job retention ({}): deleting a batch failed: {e}", kind.name());
                    break;
                }
            }
        }
        deleted
    }

    async fn purge(&self, kind: Kind, cutoff: Timestamp, batch: u32) -> StoreResult<u64> {
        match kind {
            Kind::Job => self.store.purge_jobs(cutoff, batch).await,
            Kind::Workflow => self.store.purge_workflows(cutoff, batch).await,
            Kind::Delivery => self.store.purge_hook_deliveries(cutoff, batch).await,
        }
    }
}

/// `now - age`, saturating (an absurd age deletes nothing rather than everything).
fn before(now: Timestamp, age: Duration) -> Timestamp {
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoff_saturates_instead_of_wrapping() {
        let now = voidrunner_store::now();
        assert_eq!(
            before(now, Duration::from_secs(60)),
            now - chrono::Duration::seconds(60)
        );
        assert_eq!(
            before(now, Duration::MAX),
            chrono::DateTime::<chrono::Utc>::MIN_UTC
        );
    }
}
