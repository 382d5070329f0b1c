//! Counter of the CI retention cleaner (`voidrunner_jobs::retention`).

use crate::Metrics;
use crate::family::CounterFamily;
use crate::text::Writer;

/// The CI retention series.
#[derive(Debug)]
pub(crate) struct RetentionCounters {
    expired: CounterFamily<1>,
}

impl RetentionCounters {
    pub(crate) fn new() -> Self {
        Self {
            expired: CounterFamily::new(["kind"]),
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        self.expired.write(
            w,
            "voidrunner_jobs_expired_total",
            "Jobs, workflows and hook deliveries this process's retention cleaner deleted, by kind (job, workflow, delivery).",
        );
    }
}

impl Metrics {
    /// Counts `n` rows of `kind` (`job`, `workflow` or `delivery`: a fixed set) deleted by
    /// the CI retention cleaner; a workflow's jobs count under `workflow` only.
    pub fn record_jobs_expired(&self, kind: &'static str, n: u64) {
        if n > 0 {
            self.inner.retention.expired.add([kind], n);
        }
    }
}
