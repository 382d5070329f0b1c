//! One slot: claim an execution, run it, repeat, until the pool drains.
//!
//! Waiting follows the store's "subscribe, then poll, then wait" rule, so no wake-up is lost
//! between an empty claim and the wait. Only one idle slot per pool claims and waits at a time
//! (it holds `claim_lock`); when it gets an execution it hands the lock to the next idle slot,
//! which claims at once — a burst is picked up slot after slot without every idle slot
//! querying the store on every wake-up.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio_util::task::AbortOnDropHandle;
use voidrunner_domain::{Execution, ExecutionId};
use voidrunner_store::ClaimRequest;

use crate::pool::{Counters, Shared};
use crate::streak::ErrorStreak;

/// Runs one slot until the pool stops claiming.
pub(crate) async fn slot_loop(shared: Arc<Shared>, slot: usize) {
    let worker_id = format!("{}/{slot}", shared.node_id);
    let mut work = shared.store.queue_signals().subscribe_work();
    let mut streak = ErrorStreak::new("claim_next");
    while let Some((execution, cancels)) =
        next_claim(&shared, &worker_id, &mut work, &mut streak).await
    {
        run_supervised(&shared, &worker_id, execution, cancels).await;
        if shared.config.per_user_limit().is_some() {
            // A quota may have room again; without quotas nothing became claimable.
            shared.slot_freed.notify_one();
        }
    }
    tracing::debug!(worker.id = %worker_id, "worker slot {worker_id} stopped");
}

/// Runs one execution in its own task, so that a panic (a bug) costs a retry of that
/// execution, not this slot; keeps the pool's running bookkeeping.
async fn run_supervised(
    shared: &Arc<Shared>,
    worker_id: &str,
    execution: Execution,
    cancels: broadcast::Receiver<ExecutionId>,
) {
    let lease = crate::run::lease_of(&execution, worker_id);
    let id = execution.id;
    if let Ok(mut ids) = shared.running_ids.lock() {
        ids.insert(id);
    }
    shared.stats.running.fetch_add(1, Ordering::Relaxed);
    let task = AbortOnDropHandle::new(tokio::spawn(crate::run::run_claimed(
        Arc::clone(shared),
        lease.clone(),
        execution,
        cancels,
    )));
    if let Err(e) = task.await {
        tracing::error!(execution.id = %id, error = %e, "execution {id}: worker task failed: {e}");
        crate::run::release_after_panic(shared, lease, e.to_string()).await;
    }
    shared.stats.running.fetch_sub(1, Ordering::Relaxed);
    if let Ok(mut ids) = shared.running_ids.lock() {
        ids.remove(&id);
    }
}

/// Claims the next execution, waiting for wake-ups when the queue has nothing claimable.
/// Returns the execution with a cancel receiver subscribed *before* the claim, so a cancel
/// requested right after the claim is not missed. `None` once the pool stops claiming.
async fn next_claim(
    shared: &Shared,
    worker_id: &str,
    work: &mut watch::Receiver<u64>,
    streak: &mut ErrorStreak,
) -> Option<(Execution, broadcast::Receiver<ExecutionId>)> {
    let _leader = tokio::select! {
        biased;
        () = shared.stop_claiming.cancelled() => return None,
        guard = shared.claim_lock.lock() => guard,
    };
    let signals = shared.store.queue_signals();
    loop {
        if shared.stop_claiming.is_cancelled() {
            return None;
        }
        work.borrow_and_update();
        let cancels = signals.subscribe_cancels();
        let req = ClaimRequest {
            worker_id: worker_id.to_owned(),
            now: voidrunner_store::now(),
            lease: shared.config.lease(),
            per_user_running_limit: shared.config.per_user_limit(),
        };
        // Never raced against shutdown: a claim that commits must be run or released.
        let wait = match shared.store.claim_next(&req).await {
            Ok(Some(execution)) => {
                streak.recovered();
                Counters::bump(&shared.stats.claimed);
                return Some((execution, cancels));
            }
            Ok(None) => {
                streak.recovered();
                shared.config.poll_interval()
            }
            Err(e) => {
                Counters::bump(&shared.stats.store_errors);
                streak.failed(&e)
            }
        };
        drop(cancels);
        if !wait_for_work(shared, work, wait).await {
            return None;
        }
    }
}

/// Waits for a wake-up (new work, a freed slot) or `fallback`; false when the pool stops.
async fn wait_for_work(
    shared: &Shared,
    work: &mut watch::Receiver<u64>,
    fallback: Duration,
) -> bool {
    tokio::select! {
        biased;
        () = shared.stop_claiming.cancelled() => false,
        changed = work.changed() => {
            if changed.is_err() {
                // The store's hub is gone (cannot happen while we hold the store): poll.
                tokio::time::sleep(fallback).await;
            }
            true
        }
        () = shared.slot_freed.notified() => true,
        () = tokio::time::sleep(fallback) => true,
    }
}
