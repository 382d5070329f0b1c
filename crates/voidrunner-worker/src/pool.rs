//! The pool: starts the slots and the reaper, counts what they do, and drains them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use voidrunner_domain::ExecutionId;
use voidrunner_exec::Executor;
use voidrunner_store::{RetryPolicy, Store};

use crate::WorkerConfig;

/// How long killed executions get to end after the drain grace ran out (the executor's
/// contract is that a cancel ends everything promptly; this bounds a broken one).
const KILL_WAIT: Duration = Duration::from_secs(10);

/// The queue half of the store, which is all the pool uses.
pub(crate) type Queue = dyn voidrunner_store::Store;

/// What the slots, the runs and the reaper share.
pub(crate) struct Shared {
    pub store: Arc<Queue>,
    pub executor: Arc<dyn Executor>,
    pub node_id: String,
    pub config: WorkerConfig,
    pub retry: RetryPolicy,
    /// Drain started: take no new execution.
    pub stop_claiming: CancellationToken,
    /// Drain grace over: kill what still runs and give it back to the queue.
    pub abort_running: CancellationToken,
    /// Held by the one idle slot that claims and waits for wake-ups, so a wake-up costs one
    /// claim per node, not one per idle slot (no thundering herd).
    pub claim_lock: tokio::sync::Mutex<()>,
    /// A slot of this pool finished: a per-user quota may have room again.
    pub slot_freed: Notify,
    pub stats: Counters,
    /// Executions given back with `ReleaseReason::Shutdown`.
    pub released: Mutex<Vec<ExecutionId>>,
    /// Executions that could not be given back on shutdown (store down): their leases
    /// expire and a reaper re-queues them.
    pub left_to_reaper: Mutex<Vec<ExecutionId>>,
    /// Executions this pool runs now.
    pub running_ids: Mutex<HashSet<ExecutionId>>,
    /// The process's Prometheus registry, when the pool reports to one.
    pub metrics: Option<voidrunner_metrics::Metrics>,
    /// Opens the sealed task secrets of executions; `None`: executions with secrets fail.
    pub secret_box: Option<Arc<voidrunner_mask::SecretBox>>,
}

/// Optional parts of a pool (see [`WorkerPool::start_with`]).
#[derive(Default)]
pub struct PoolOptions {
    /// Report to this Prometheus registry (see [`WorkerPool::start_with_metrics`]).
    pub metrics: Option<voidrunner_metrics::Metrics>,
    /// Opens the sealed per-task secrets (the key of `<data_dir>/secrets.key`); without it an
    /// execution whose task has secrets is not run (infrastructure failure, retried).
    pub secret_box: Option<Arc<voidrunner_mask::SecretBox>>,
}

/// Live counters of one pool.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub claimed: AtomicU64,
    pub running: AtomicU64,
    pub completed: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub released_on_shutdown: AtomicU64,
    pub lease_lost: AtomicU64,
    pub reaped: AtomicU64,
    pub store_errors: AtomicU64,
}

impl Counters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A snapshot of what a pool did since it started, for metrics, logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Executions claimed.
    pub claimed: u64,
    /// Executions running now.
    pub running: u64,
    /// Results recorded (any verdict except sandbox errors).
    pub completed: u64,
    /// Infrastructure failures given back for a retry.
    pub retried: u64,
    /// Infrastructure failures that used up the attempts.
    pub dead_lettered: u64,
    /// Executions given back because the pool shut down.
    pub released_on_shutdown: u64,
    /// Executions whose lease this pool lost (its result was dropped, never written).
    pub lease_lost: u64,
    /// Expired leases (of any node) this pool's reaper re-queued or dead-lettered.
    pub reaped: u64,
    /// Failed store calls (each retried with backoff); a growing number means an outage.
    pub store_errors: u64,
}

/// What [`WorkerPool::shutdown`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Executions running when the drain started.
    pub running_at_start: u64,
    /// Whether the grace period ran out with executions still running.
    pub grace_expired: bool,
    /// Executions killed after the grace and given back to the queue (another node re-runs
    /// them; the attempt does not count).
    pub released: Vec<ExecutionId>,
    /// Executions that could not be given back (store unavailable) or whose run did not end
    /// even after the kill: their leases expire and a reaper re-queues them.
    pub left_to_reaper: Vec<ExecutionId>,
    /// Slot tasks still running after the kill wait, aborted.
    pub aborted_slots: usize,
    /// How long the drain took.
    pub elapsed: Duration,
}

/// One worker node: `concurrency` slots and a reaper on the current tokio runtime.
pub struct WorkerPool {
    shared: Arc<Shared>,
    slots: JoinSet<()>,
    reaper: Option<tokio::task::JoinHandle<()>>,
    reaper_stop: CancellationToken,
}

impl std::fmt::Debug for PoolOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolOptions")
            .field("metrics", &self.metrics.is_some())
            .field("secret_box", &self.secret_box)
            .finish()
    }
}

impl WorkerPool {
    /// Starts `concurrency` slots + a reaper on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(
        store: Arc<dyn Store>,
        executor: Arc<dyn Executor>,
        node_id: String,
        config: WorkerConfig,
    ) -> WorkerPool {
        Self::start_with(store, executor, node_id, config, PoolOptions::default())
    }

    /// [`WorkerPool::start`], reporting to `metrics`: finished executions by language and
    /// verdict, their durations, and this pool's busy/total slots.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start_with_metrics(
        store: Arc<dyn Store>,
        executor: Arc<dyn Executor>,
        node_id: String,
        config: WorkerConfig,
        metrics: voidrunner_metrics::Metrics,
    ) -> WorkerPool {
        let options = PoolOptions {
            metrics: Some(metrics),
            ..PoolOptions::default()
        };
        Self::start_with(store, executor, node_id, config, options)
    }

    /// [`WorkerPool::start`] with optional parts: metrics, the box opening task secrets.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start_with(
        store: Arc<dyn Store>,
        executor: Arc<dyn Executor>,
        node_id: String,
        config: WorkerConfig,
        options: PoolOptions,
    ) -> WorkerPool {
        let PoolOptions {
            metrics,
            secret_box,
        } = options;
        if let Err(e) = config.validate() {
            tracing::warn!(worker.node_id = %node_id, error = %e, "worker pool starts with a questionable config: {e}");
        }
        let shared = Arc::new(Shared {
            store,
            executor,
            retry: config.retry.policy(),
            node_id,
            stop_claiming: CancellationToken::new(),
            abort_running: CancellationToken::new(),
            claim_lock: tokio::sync::Mutex::new(()),
            slot_freed: Notify::new(),
            stats: Counters::default(),
            released: Mutex::new(Vec::new()),
            left_to_reaper: Mutex::new(Vec::new()),
            running_ids: Mutex::new(HashSet::new()),
            metrics,
            secret_box,
            config,
        });
        crate::metrics::attach(&shared);
        let mut slots = JoinSet::new();
        for slot in 0..shared.config.concurrency {
            slots.spawn(crate::slot::slot_loop(Arc::clone(&shared), slot));
        }
        let reaper_stop = CancellationToken::new();
        let reaper = tokio::spawn(crate::reaper::reaper_loop(
            Arc::clone(&shared),
            reaper_stop.clone(),
        ));
        tracing::info!(
            worker.node_id = %shared.node_id,
            worker.concurrency = shared.config.concurrency,
            "worker pool {} started with {} slots",
            shared.node_id,
            shared.config.concurrency
        );
        WorkerPool {
            shared,
            slots,
            reaper: Some(reaper),
            reaper_stop,
        }
    }

    /// This node's id (worker ids are `<node_id>/<slot>`).
    pub fn node_id(&self) -> &str {
        &self.shared.node_id
    }

    /// What the pool did so far.
    pub fn stats(&self) -> PoolStats {
        let c = &self.shared.stats;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PoolStats {
            claimed: get(&c.claimed),
            running: get(&c.running),
            completed: get(&c.completed),
            retried: get(&c.retried),
            dead_lettered: get(&c.dead_lettered),
            released_on_shutdown: get(&c.released_on_shutdown),
            lease_lost: get(&c.lease_lost),
            reaped: get(&c.reaped),
            store_errors: get(&c.store_errors),
        }
    }

    /// Graceful drain: stop claiming; running executions may finish within drain_grace; then
    /// cancel the rest and release them with `ReleaseReason::Shutdown`; returns what happened.
    pub async fn shutdown(mut self) -> DrainReport {
        let started = Instant::now();
        let shared = Arc::clone(&self.shared);
        let running_at_start = shared.stats.running.load(Ordering::Relaxed);
        tracing::info!(worker.node_id = %shared.node_id, worker.running = running_at_start, "worker pool {} draining: {running_at_start} executions running", shared.node_id);
        shared.stop_claiming.cancel();
        let grace = shared.config.drain_grace();
        let grace_expired = !join_all(&mut self.slots, grace).await;
        let mut aborted_slots = 0;
        if grace_expired {
            tracing::warn!(worker.node_id = %shared.node_id, "drain grace of {grace:?} ran out: killing and releasing the remaining executions");
            shared.abort_running.cancel();
            if !join_all(&mut self.slots, KILL_WAIT).await {
                aborted_slots = self.slots.len();
                if let (Ok(running), Ok(mut left)) =
                    (shared.running_ids.lock(), shared.left_to_reaper.lock())
                {
                    left.extend(running.iter().copied());
                }
                self.slots.abort_all();
                while self.slots.join_next().await.is_some() {}
            }
        }
        self.reaper_stop.cancel();
        if let Some(reaper) = self.reaper.take() {
            let _ = reaper.await;
        }
        let report = DrainReport {
            running_at_start,
            grace_expired,
            released: take(&shared.released),
            left_to_reaper: take(&shared.left_to_reaper),
            aborted_slots,
            elapsed: started.elapsed(),
        };
        tracing::info!(
            worker.node_id = %shared.node_id,
            worker.released = report.released.len(),
            worker.left_to_reaper = report.left_to_reaper.len(),
            elapsed_ms = u64::try_from(report.elapsed.as_millis()).unwrap_or(u64::MAX),
            "worker pool {} stopped",
            shared.node_id
        );
        report
    }
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("node_id", &self.shared.node_id)
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Drop for WorkerPool {
    /// A pool dropped without [`WorkerPool::shutdown`] stops at once: nothing new is claimed,
    /// running executions are killed and given back (by their own tasks, asynchronously).
    fn drop(&mut self) {
        self.shared.stop_claiming.cancel();
        self.shared.abort_running.cancel();
        self.reaper_stop.cancel();
    }
}

/// Waits for every task of `set` for at most `limit`; true when all ended.
async fn join_all(set: &mut JoinSet<()>, limit: Duration) -> bool {
    let all = async {
        while let Some(res) = set.join_next().await {
            if let Err(e) = res
                && e.is_panic()
            {
                tracing::error!(error = %e, "worker slot panicked: {e}");
            }
        }
    };
    tokio::time::timeout(limit, all).await.is_ok()
}

fn take(list: &Mutex<Vec<ExecutionId>>) -> Vec<ExecutionId> {
    list.lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default()
}
