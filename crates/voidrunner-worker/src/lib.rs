//! The worker pool of VoidRunner: claims executions from the durable queue of the store, runs
//! them through an [`Executor`](voidrunner_exec::Executor), keeps their leases alive, records
//! each result exactly once, retries infrastructure failures with backoff, reaps leases of
//! dead workers, and drains gracefully on shutdown.
//!
//! The queue protocol as a worker sees it is written down in this crate's `README.md`; the
//! store side is in `voidrunner_store::ExecutionStore`.
//!
//! One [`WorkerPool`] is one node: `concurrency` slots (each claims and runs one execution at
//! a time, worker id `<node_id>/<slot>`) and one reaper. Any number of pools, in one process
//! or many, may share one store.

mod config;
mod input;
mod logs;
mod masking;
mod metrics;
mod outcome;
mod pool;
mod reaper;
mod run;
mod slot;
mod streak;

pub use config::{ConfigError, RetrySettings, WorkerConfig};
pub use pool::{DrainReport, PoolOptions, PoolStats, WorkerPool};

/// A node id unique across a cluster and across restarts: `<hostname>-<pid>-<6 hex>`. The
/// random part keeps ids unique when a pid is reused after a crash-restart, so a restarted
/// node never mistakes an old lease for its own.
pub fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "node".to_owned());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[..6])
}

#[cfg(test)]
mod tests {
    #[test]
    fn node_ids_differ_and_name_the_process() {
        let a = super::default_node_id();
        let b = super::default_node_id();
        assert_ne!(a, b);
        assert!(a.contains(&format!("-{}-", std::process::id())), "{a}");
        assert!(!a.contains('/'), "slot ids append /<slot>: {a}");
    }
}
