//! Counters of the log archiver and the retention cleaner (`voidrunner-logarchive`).

use crate::Metrics;
use crate::family::CounterFamily;
use crate::text::Writer;

/// The log archive series.
#[derive(Debug)]
pub(crate) struct LogCounters {
    archive: CounterFamily<1>,
    archived_bytes: CounterFamily<0>,
    expired: CounterFamily<1>,
}

impl LogCounters {
    pub(crate) fn new() -> Self {
        Self {
            archive: CounterFamily::new(["outcome"]),
            archived_bytes: CounterFamily::new([]),
            expired: CounterFamily::new(["rule"]),
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        self.archive.write(
            w,
            "voidrunner_log_archive_total",
            "Log archiving attempts of this process by outcome (archived, lost_race, not_eligible, failed).",
        );
        self.archived_bytes.write(
            w,
            "voidrunner_log_archived_bytes_total",
            "Bytes of log objects this process archived.",
        );
        self.expired.write(
            w,
            "voidrunner_log_expired_total",
            "Executions whose output this process deleted by retention rule (age, size).",
        );
    }
}

impl Metrics {
    /// Counts one archiving attempt: `archived` (with the object's bytes), `lost_race`,
    /// `not_eligible` or `failed` (a fixed set; callers pass one of these).
    pub fn record_log_archive(&self, outcome: &'static str, bytes: u64) {
        let logs = &self.inner.logs;
        logs.archive.inc([outcome]);
        if bytes > 0 {
            logs.archived_bytes.add([], bytes);
        }
    }

    /// Counts one execution whose output retention deleted, by rule (`age` or `size`).
    pub fn record_log_expired(&self, rule: &'static str) {
        self.inner.logs.expired.inc([rule]);
    }
}
