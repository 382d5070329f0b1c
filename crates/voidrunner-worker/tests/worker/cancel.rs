//! Cancel: a running execution's process is killed within a second on whichever node runs
//! it; a queued one never runs.

use std::time::{Duration, Instant};

use voidrunner_domain::{ExecutionStatus, Verdict};
use voidrunner_store::Scope;

use crate::helpers::{Job, TestStore, both_backends, config, eventually, native, running};

both_backends!(
    cancel_of_a_running_execution_kills_it_within_a_second,
    cancel_of_a_queued_execution_means_it_never_runs
);

/// Pids of live processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            text.contains(marker).then_some(pid)
        })
        .collect()
}

/// A unique `sleep` duration, so the test finds exactly its own sandboxed process.
fn marker() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 1_000_000;
    format!("1000.{n:06}")
}

async fn cancel_of_a_running_execution_kills_it_within_a_second(t: TestStore) {
    let owner = t.user().await;
    // Heartbeats every 10 s: only the cancel signal can meet the one-second bound.
    let pool = t.pool(native(), "node", config(1));
    let marker = marker();
    let code = format!("echo started\nexec sleep {marker}\n");
    let e = t.enqueue(Job::bash(owner, &code)).await;
    t.wait_for(e.id, "running", running).await;
    eventually("the sandboxed program is alive", || async {
        (!processes_with(&format!("sleep {marker}")).is_empty()).then_some(())
    })
    .await;
    let asked = Instant::now();
    let row = t
        .queue
        .request_cancel(Scope::Owner(owner), e.id, voidrunner_store::now())
        .await
        .expect("cancel");
    assert!(row.cancel_requested_at.is_some());
    let done = t.wait_finished(e.id).await;
    let took = asked.elapsed();
    assert_eq!(done.status, ExecutionStatus::Cancelled, "{done:?}");
    assert_eq!(done.verdict, Some(Verdict::Cancelled));
    assert_eq!(done.stdout, "started\n");
    assert!(
        processes_with(&format!("sleep {marker}")).is_empty(),
        "the program is gone once the execution is cancelled"
    );
    println!("{}: cancel of a running execution took {took:?}", t.backend);
    assert!(took < Duration::from_secs(1), "cancel took {took:?}");
    pool.shutdown().await;
}

async fn cancel_of_a_queued_execution_means_it_never_runs(t: TestStore) {
    let owner = t.user().await;
    let pool = t.pool(native(), "node", config(1));
    let marker = marker();
    let blocker_code = format!("exec sleep {marker}\n");
    let blocker = t.enqueue(Job::bash(owner, &blocker_code)).await;
    t.wait_for(blocker.id, "blocker running", running).await;
    let queued = t.enqueue(Job::bash(owner, "echo must-not-run")).await;
    let row = t
        .queue
        .request_cancel(Scope::Owner(owner), queued.id, voidrunner_store::now())
        .await
        .expect("cancel queued");
    assert_eq!(row.status, ExecutionStatus::Cancelled);
    t.queue
        .request_cancel(Scope::All, blocker.id, voidrunner_store::now())
        .await
        .expect("cancel blocker");
    t.wait_finished(blocker.id).await;
    let report = pool.shutdown().await;
    assert!(report.released.is_empty());
    let never = t.get(queued.id).await;
    assert_eq!(never.status, ExecutionStatus::Cancelled);
    assert_eq!(never.attempt, 0, "never claimed");
    assert!(never.started_at.is_none() && never.stdout.is_empty());
}
