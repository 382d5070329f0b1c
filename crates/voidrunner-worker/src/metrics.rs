//! The pool's side of the shared Prometheus registry (optional): slot gauges read at scrape
//! time, and one record per result written.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use voidrunner_domain::Execution;
use voidrunner_metrics::WorkerGauges;
use voidrunner_store::ReleaseOutcome;

use crate::pool::Shared;

/// Registers this pool's busy/total slots with the registry. The source holds the pool
/// weakly, so a pool that is gone stops being counted.
pub(crate) fn attach(shared: &Arc<Shared>) {
    let Some(metrics) = &shared.metrics else {
        return;
    };
    let pool: Weak<Shared> = Arc::downgrade(shared);
    metrics.add_worker_source(move || {
        let s = pool.upgrade()?;
        Some(WorkerGauges {
            busy: s.stats.running.load(Ordering::Relaxed),
            total: u64::try_from(s.config.concurrency).unwrap_or(u64::MAX),
        })
    });
}

/// Counts a result this pool recorded (the row the store returned).
pub(crate) fn finished(shared: &Shared, row: &Execution) {
    if let Some(metrics) = &shared.metrics {
        metrics.record_execution(row);
    }
}

/// Counts an execution given back to the queue (or finished by the give-back) without a
/// result of its own. `None` (the store kept failing) is not counted.
pub(crate) fn released(shared: &Shared, outcome: Option<&ReleaseOutcome>, shutdown: bool) {
    let (Some(metrics), Some(outcome)) = (&shared.metrics, outcome) else {
        return;
    };
    metrics.record_release(match outcome {
        ReleaseOutcome::Requeued if shutdown => "shutdown",
        ReleaseOutcome::Requeued => "retried",
        ReleaseOutcome::DeadLettered => "dead_lettered",
        ReleaseOutcome::Cancelled => "cancelled",
        ReleaseOutcome::LeaseLost => "lease_lost",
    });
}
