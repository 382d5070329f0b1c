//! Two nodes on one PostgreSQL (two store handles, as two processes have): wake-ups and
//! cancels cross between them through `LISTEN/NOTIFY`, not through polling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use voidrunner_domain::{ExecutionStatus, Verdict};
use voidrunner_store::Scope;
use voidrunner_worker::{WorkerConfig, WorkerPool};

use crate::helpers::{Job, native, postgres_two_nodes, running};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_wake_and_cancel_each_other() {
    let Some((api, node)) = postgres_two_nodes().await else {
        return;
    };
    // Polls and heartbeats far apart: only notifications can meet the bounds below.
    let cfg = WorkerConfig {
        poll_interval_ms: 60_000,
        heartbeat_interval_ms: 10_000,
        ..crate::helpers::config(1)
    };
    let pool = WorkerPool::start(Arc::clone(&node), native(), "remote".into(), cfg);
    let owner = api.user().await;
    let first = api.enqueue(Job::bash(owner, "echo one")).await;
    api.wait_finished(first.id).await;
    // The remote slot now waits for a wake-up (up to 60 s by polling).
    let t0 = Instant::now();
    let second = api.enqueue(Job::bash(owner, "echo two")).await;
    let second = api.wait_finished(second.id).await;
    let woke = t0.elapsed();
    assert_eq!(second.stdout, "two\n");
    assert_eq!(second.worker_id.as_deref(), Some("remote/0"));
    assert!(
        woke < Duration::from_secs(5),
        "remote wake-up took {woke:?}"
    );

    let blocker = api.enqueue(Job::bash(owner, "exec sleep 1000\n")).await;
    api.wait_for(blocker.id, "running remotely", running).await;
    let asked = Instant::now();
    api.queue
        .request_cancel(Scope::Owner(owner), blocker.id, voidrunner_store::now())
        .await
        .expect("cancel");
    let done = api.wait_finished(blocker.id).await;
    let took = asked.elapsed();
    assert_eq!(done.status, ExecutionStatus::Cancelled);
    assert_eq!(done.verdict, Some(Verdict::Cancelled));
    println!("postgres: remote wake-up {woke:?}, remote cancel {took:?}");
    assert!(took < Duration::from_secs(1), "remote cancel took {took:?}");
    pool.shutdown().await;
}
