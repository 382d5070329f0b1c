//! Graceful drain: running executions finish within the grace; past it they are killed and
//! given back, and another node re-runs them.

use voidrunner_domain::ExecutionStatus;
use voidrunner_worker::WorkerConfig;

use crate::helpers::{Job, TestStore, both_backends, config, native, running};

both_backends!(
    drain_lets_a_short_execution_finish,
    drain_past_the_grace_releases_and_another_node_completes,
);

async fn drain_lets_a_short_execution_finish(t: TestStore) {
    let owner = t.user().await;
    let pool = t.pool(native(), "node", config(1));
    let e = t
        .enqueue(Job::bash(owner, "echo started\nsleep 0.3\necho done\n"))
        .await;
    t.wait_for(e.id, "running", running).await;
    let report = pool.shutdown().await;
    assert!(
        !report.grace_expired && report.released.is_empty(),
        "{report:?}"
    );
    let e = t.get(e.id).await;
    assert_eq!(e.status, ExecutionStatus::Completed);
    assert_eq!(e.stdout, "started\ndone\n");
    // Nothing is claimed after the drain started.
    let later = t.enqueue(Job::bash(owner, "echo later")).await;
    assert_eq!(t.get(later.id).await.status, ExecutionStatus::Queued);
}

async fn drain_past_the_grace_releases_and_another_node_completes(t: TestStore) {
    let owner = t.user().await;
    let cfg = WorkerConfig {
        drain_grace_secs: 0,
        ..config(1)
    };
    let first = t.pool(native(), "first", cfg);
    let e = t
        .enqueue(Job::bash(owner, "echo started\nsleep 1\necho done\n"))
        .await;
    t.wait_for(e.id, "running on the first node", running).await;
    let report = first.shutdown().await;
    assert!(report.grace_expired);
    assert_eq!(report.released, vec![e.id]);
    let back = t.get(e.id).await;
    assert_eq!(back.status, ExecutionStatus::Queued, "{back:?}");
    let second = t.pool(native(), "second", config(1));
    let done = t.wait_finished(e.id).await;
    assert_eq!(done.status, ExecutionStatus::Completed);
    assert_eq!(done.stdout, "started\ndone\n");
    assert_eq!(done.worker_id.as_deref(), Some("second/0"));
    second.shutdown().await;
}
