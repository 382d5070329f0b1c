//! Infrastructure faults: retries with backoff, dead letter, and leases lost to the reaper.

use std::time::Duration;

use voidrunner_domain::{ExecutionStatus, Verdict};
use voidrunner_worker::WorkerConfig;

use crate::helpers::{
    Fault, FaultExecutor, Job, TestStore, both_backends, config, eventually, native, running,
};

both_backends!(
    sandbox_errors_retry_with_backoff_then_dead_letter,
    unknown_language_is_dead_lettered_by_the_real_executor,
    stale_worker_cannot_complete_after_its_lease_expired,
    heartbeat_that_finds_the_lease_lost_cancels_and_writes_nothing,
    executor_panic_is_retried_and_the_slot_survives,
    store_outage_is_survived_and_nothing_is_lost,
);

async fn sandbox_errors_retry_with_backoff_then_dead_letter(t: TestStore) {
    let owner = t.user().await;
    let fault = FaultExecutor::new(Fault::SandboxError);
    let pool = t.pool(fault.clone(), "faulty", config(1));
    let e = t
        .enqueue(Job {
            max_attempts: 3,
            ..Job::bash(owner, "echo never")
        })
        .await;
    let e = t
        .wait_for(e.id, "dead-lettered", |e| e.dead_lettered_at.is_some())
        .await;
    assert_eq!(e.status, ExecutionStatus::Failed);
    assert_eq!(e.attempt, 3);
    assert!(
        e.last_error
            .as_deref()
            .is_some_and(|m| m.contains("injected")),
        "{e:?}"
    );
    assert!(e.stdout.is_empty());
    let calls = fault.calls();
    assert_eq!(
        calls.len(),
        3,
        "one run per attempt, none after the dead letter"
    );
    // Backoff without jitter: 50 ms after the first failure, 100 ms after the second.
    assert!(
        calls[1] - calls[0] >= Duration::from_millis(50),
        "{calls:?}"
    );
    assert!(
        calls[2] - calls[1] >= Duration::from_millis(100),
        "{calls:?}"
    );
    let stats = pool.stats();
    assert_eq!(
        (stats.retried, stats.dead_lettered, stats.completed),
        (2, 1, 0)
    );
    pool.shutdown().await;
}

async fn unknown_language_is_dead_lettered_by_the_real_executor(t: TestStore) {
    let owner = t.user().await;
    let pool = t.pool(native(), "real", config(1));
    let e = t
        .enqueue(Job {
            language: "no-such-language",
            max_attempts: 2,
            ..Job::bash(owner, "x")
        })
        .await;
    let e = t
        .wait_for(e.id, "dead-lettered", |e| e.dead_lettered_at.is_some())
        .await;
    assert_eq!((e.status, e.attempt), (ExecutionStatus::Failed, 2));
    assert!(
        e.last_error
            .as_deref()
            .is_some_and(|m| m.contains("no-such-language")),
        "{e:?}"
    );
    pool.shutdown().await;
}

/// A worker stalls (its heartbeat never runs within the lease), the reaper re-queues its
/// execution, another node completes it; when the stalled worker comes back its result is
/// refused and the other node's result stays.
async fn stale_worker_cannot_complete_after_its_lease_expired(t: TestStore) {
    let owner = t.user().await;
    let stalled = FaultExecutor::new(Fault::BlockUntilOpened);
    let stale_config = WorkerConfig {
        lease_secs: 1,
        heartbeat_interval_ms: 3_600_000,
        ..config(1)
    };
    let stale = t.pool(stalled.clone(), "stale", stale_config);
    let e = t.enqueue(Job::bash(owner, "echo fresh")).await;
    t.wait_for(e.id, "claimed by the stale node", |e| {
        running(e) && e.worker_id.as_deref() == Some("stale/0")
    })
    .await;
    // The stale node's own reaper re-queues it once the 1 s lease ran out; a healthy node
    // then runs it.
    let healthy = t.pool(native(), "healthy", config(1));
    let done = t.wait_finished(e.id).await;
    assert_eq!(done.status, ExecutionStatus::Completed);
    assert_eq!(done.worker_id.as_deref(), Some("healthy/0"));
    assert_eq!(done.attempt, 2);
    assert_eq!(done.stdout, "fresh\n");
    stalled.open();
    eventually("the stale node notices its lease is lost", || async {
        (stale.stats().lease_lost == 1).then_some(())
    })
    .await;
    let after = t.get(e.id).await;
    assert_eq!(after, done, "the stale result overwrote nothing");
    assert_eq!(stale.stats().completed, 0);
    healthy.shutdown().await;
    stale.shutdown().await;
}

/// Another node reaped the lease while the program still runs: the next heartbeat says
/// `Lost`, the program is cancelled and nothing is written (not even `cancelled`).
async fn heartbeat_that_finds_the_lease_lost_cancels_and_writes_nothing(t: TestStore) {
    let owner = t.user().await;
    let blocked = FaultExecutor::new(Fault::BlockUntilOpened);
    let cfg = WorkerConfig {
        heartbeat_interval_ms: 50,
        reaper_interval_ms: 3_600_000,
        ..config(1)
    };
    let pool = t.pool(blocked.clone(), "node", cfg);
    let e = t.enqueue(Job::bash(owner, "x")).await;
    t.wait_for(e.id, "running", running).await;
    // A reaper of another node whose clock says the lease ran out.
    let later = voidrunner_store::now() + chrono::TimeDelta::hours(1);
    let reaped = t
        .queue
        .reap_expired_leases(later, &move |_| later)
        .await
        .expect("reap");
    assert_eq!(reaped.len(), 1);
    eventually("the pool sees the lost lease", || async {
        (pool.stats().lease_lost == 1).then_some(())
    })
    .await;
    let row = t.get(e.id).await;
    assert_eq!(row.status, ExecutionStatus::Queued);
    assert_eq!(row.verdict, None::<Verdict>);
    assert_eq!(blocked.calls().len(), 1);
    let report = pool.shutdown().await;
    assert!(report.released.is_empty());
}

async fn executor_panic_is_retried_and_the_slot_survives(t: TestStore) {
    let owner = t.user().await;
    let fault = FaultExecutor::new(Fault::Panic);
    let pool = t.pool(fault.clone(), "buggy", config(1));
    for round in 1..=2 {
        let e = t
            .enqueue(Job {
                max_attempts: 2,
                ..Job::bash(owner, "echo x")
            })
            .await;
        let e = t
            .wait_for(e.id, "dead-lettered", |e| e.dead_lettered_at.is_some())
            .await;
        assert_eq!(e.attempt, 2);
        assert!(
            e.last_error.as_deref().is_some_and(|m| m.contains("panic")),
            "{e:?}"
        );
        assert_eq!(fault.calls().len(), 2 * round, "the one slot keeps running");
    }
    assert_eq!(pool.stats().running, 0);
    pool.shutdown().await;
}

/// The database fails while a result is being written: the pool logs, backs off, keeps
/// trying, writes the result once the database is back, and keeps claiming afterwards.
async fn store_outage_is_survived_and_nothing_is_lost(t: TestStore) {
    let owner = t.user().await;
    let gate = FaultExecutor::new(Fault::BlockUntilOpened);
    let pool = t.pool(gate.clone(), "node", config(1));
    let e = t.enqueue(Job::bash(owner, "survived")).await;
    t.wait_for(e.id, "running", running).await;
    let outage = t.outage(e.id).await;
    gate.open();
    eventually("the pool hits the outage", || async {
        (pool.stats().store_errors >= 1).then_some(())
    })
    .await;
    outage.repair().await;
    let done = t.wait_finished(e.id).await;
    assert_eq!(done.status, ExecutionStatus::Completed);
    assert_eq!((done.stdout.as_str(), done.attempt), ("survived", 1));
    assert_eq!(pool.stats().completed, 1);
    let next = t.enqueue(Job::bash(owner, "again")).await;
    gate.open();
    assert_eq!(t.wait_finished(next.id).await.stdout, "again");
    println!(
        "{}: store errors during the outage: {}",
        t.backend,
        pool.stats().store_errors
    );
    pool.shutdown().await;
}
