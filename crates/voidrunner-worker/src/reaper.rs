//! The reaper: re-queues executions whose worker stopped heartbeating (crashed, partitioned,
//! paused), with backoff, or dead-letters them when their attempts are used up.
//!
//! Every node runs one. That is safe: each reap is a conditional update of rows whose lease
//! expired, so two reapers never re-queue the same expiry twice, and a worker that comes back
//! finds its lease lost and writes nothing.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use voidrunner_domain::Timestamp;
use voidrunner_store::{ReleaseOutcome, backoff};

use crate::pool::{Counters, Shared};
use crate::run::after;
use crate::streak::ErrorStreak;

/// Reaps expired leases every `reaper_interval` until `stop`.
pub(crate) async fn reaper_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let period = shared.config.reaper_interval();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut streak = ErrorStreak::new("reap_expired_leases");
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = voidrunner_store::now();
        let policy = shared.retry;
        let retry_at = move |attempt: u32| -> Timestamp {
            after(now, backoff(&policy, attempt, rand::random::<f64>()))
        };
        match shared.store.reap_expired_leases(now, &retry_at).await {
            Ok(reaped) => {
                streak.recovered();
                for (id, outcome) in reaped {
                    Counters::bump(&shared.stats.reaped);
                    match outcome {
                        ReleaseOutcome::Requeued => {
                            tracing::warn!(execution.id = %id, "execution {id}: lease expired (worker gone?), re-queued")
                        }
                        ReleaseOutcome::DeadLettered => {
                            tracing::warn!(execution.id = %id, "execution {id}: lease expired and attempts used up, dead-lettered")
                        }
                        ReleaseOutcome::Cancelled => {
                            tracing::info!(execution.id = %id, "execution {id}: lease expired after a cancel request, finished as cancelled")
                        }
                        ReleaseOutcome::LeaseLost => {}
                    }
                }
            }
            Err(e) => {
                // The next tick retries; a long outage logs once.
                Counters::bump(&shared.stats.store_errors);
                let _ = streak.failed(&e);
            }
        }
    }
}
