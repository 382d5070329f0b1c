//! The retention cleaner: deletes the output of executions finished longer ago than
//! `max_age`, and the oldest archives while the archived total exceeds `max_total_bytes`.
//!
//! Per execution it deletes the archive object first, then calls
//! [`LogArchiveStore::expire_logs`](voidrunner_store::LogArchiveStore::expire_logs). If the
//! database step fails after the object is gone, the execution stays listed and the next pass
//! finishes it (deleting a missing object is not an error), so every interruption converges.
//! Several processes may run cleaners: the database transaction makes expiry happen once.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use tokio_util::sync::CancellationToken;
use voidrunner_metrics::Metrics;
use voidrunner_store::{ExpireOutcome, LogLocationEntry, Store};

/// Batches per rule and pass at most (a pass never runs unbounded).
const MAX_BATCHES: usize = 64;

/// The cleaner's settings.
#[derive(Debug, Clone, Copy)]
pub struct RetentionSettings {
    /// Output of executions finished longer ago is deleted (`None`: no age limit).
    pub max_age: Option<Duration>,
    /// Cap on the archived total (`None`: no cap).
    pub max_total_bytes: Option<u64>,
    /// Executions listed per store round trip.
    pub batch: u32,
    /// Pause between passes.
    pub interval: Duration,
}

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Expired by age.
    pub by_age: usize,
    /// Expired by the size cap.
    pub by_size: usize,
    /// Failures (each logged once).
    pub failed: usize,
}

/// Deletes old logs; see the module docs.
#[derive(Clone)]
pub struct RetentionCleaner {
    store: Arc<dyn Store>,
    objects: Arc<dyn ObjectStore>,
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

#[derive(Clone, Copy)]
enum Rule {
    Age,
    Size,
}

impl Rule {
    fn name(self) -> &'static str {
        match self {
            Rule::Age => "age",
            Rule::Size => "size",
        }
    }
}

impl RetentionCleaner {
    /// A cleaner over `store` and the archive `objects`; counts into `metrics` when given.
    pub fn new(
        store: Arc<dyn Store>,
        objects: Arc<dyn ObjectStore>,
        settings: RetentionSettings,
        metrics: Option<Metrics>,
    ) -> Self {
        Self {
            store,
            objects,
            settings,
            metrics,
        }
    }

    /// Runs passes every `interval` until `stop` is cancelled.
    pub fn spawn(self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            tracing::info!(
                logs.max_age_secs = self.settings.max_age.map(|d| d.as_secs()),
                logs.max_total_bytes = self.settings.max_total_bytes,
                "log retention cleaner started"
            );
            crate::background::every(self.settings.interval, &stop, || self.run_pass()).await;
        })
    }

    /// One pass over both rules.
    pub async fn run_pass(&self) -> RetentionReport {
        let mut report = RetentionReport::default();
        if let Some(age) = self.settings.max_age {
            report.by_age = self.apply(Rule::Age, age, &mut report.failed).await;
        }
        if let Some(cap) = self.settings.max_total_bytes {
            // One aggregate first: most passes find the total under the cap.
            let over = match self.store.archived_bytes_total().await {
                Ok(total) => total > cap,
                Err(e) => {
                    tracing::warn!(error = %e, "log retention (size): reading the archived total failed: {e}");
                    report.failed += 1;
                    false
                }
            };
            if over {
                report.by_size = self
                    .apply(Rule::Size, Duration::ZERO, &mut report.failed)
                    .await;
            }
        }
        report
    }

    async fn list(&self, rule: Rule, age: Duration) -> Option<Vec<LogLocationEntry>> {
        let listed = match rule {
            Rule::Age => {
                let cutoff = voidrunner_store::now()
                    - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
                self.store
                    .list_expired_by_age(cutoff, self.settings.batch)
                    .await
            }
            Rule::Size => {
                let cap = self.settings.max_total_bytes.unwrap_or(u64::MAX);
                self.store
                    .list_expired_by_size(cap, self.settings.batch)
                    .await
            }
        };
        match listed {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(logs.rule = rule.name(), error = %e, "log retention ({}): listing failed: {e}", rule.name());
                None
            }
        }
    }

    /// Expires what `rule` lists, batch after batch, until nothing is due or a batch makes
    /// no progress; answers how many it expired.
    async fn apply(&self, rule: Rule, age: Duration, failed: &mut usize) -> usize {
        let mut expired = 0;
        for _ in 0..MAX_BATCHES {
            let Some(due) = self.list(rule, age).await else {
                *failed += 1;
                break;
            };
            let full = due.len() == self.settings.batch as usize;
            let mut progress = 0;
            for entry in due {
                match self.expire(&entry).await {
                    Ok(true) => {
                        progress += 1;
                        if let Some(m) = &self.metrics {
                            m.record_log_expired(rule.name());
                        }
                    }
                    Ok(false) => {}
                    Err(e) => {
                        *failed += 1;
                        tracing::warn!(execution.id = %entry.execution_id, logs.rule = rule.name(), error = %e, "expiring the logs of execution {} failed: {e}", entry.execution_id);
                    }
                }
            }
            expired += progress;
            if !full || progress == 0 {
                break;
            }
        }
        expired
    }

    /// Deletes the archive object(s) then the rows; `true` when this call expired it.
    async fn expire(&self, entry: &LogLocationEntry) -> Result<bool, String> {
        if let Some(archive) = &entry.archive {
            let key = ObjectPath::from(archive.object_key.as_str());
            // The execution's whole prefix: its object and any leftover of a crashed archiver.
            let prefix = parent(&key);
            let mut keys = vec![key.clone()];
            if let Some(prefix) = &prefix {
                let mut list = self.objects.list(Some(prefix));
                while let Some(item) = list.next().await {
                    match item {
                        Ok(meta) if meta.location != key => keys.push(meta.location),
                        Ok(_) => {}
                        Err(e) => return Err(format!("listing {prefix}: {e}")),
                    }
                }
            }
            for k in keys {
                match self.objects.delete(&k).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(format!("deleting object {k}: {e}")),
                }
            }
        }
        match self
            .store
            .expire_logs(entry.execution_id, voidrunner_store::now())
            .await
        {
            Ok(ExpireOutcome::Expired { .. }) => Ok(true),
            Ok(ExpireOutcome::Unchanged) => Ok(false),
            Err(e) => Err(format!("store: {e}")),
        }
    }
}

/// `a/b/c.vrlog` → `a/b`.
fn parent(key: &ObjectPath) -> Option<ObjectPath> {
    let parts: Vec<_> = key.parts().collect();
    let (_, dir) = parts.split_last()?;
    if dir.is_empty() {
        return None;
    }
    Some(ObjectPath::from_iter(dir.iter().cloned()))
}
