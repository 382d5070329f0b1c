//! Who runs when: priorities, per-user quotas, and several nodes on one store.

use std::collections::HashMap;

use voidrunner_domain::{ExecutionStatus, Verdict};
use voidrunner_store::Scope;
use voidrunner_worker::WorkerConfig;

use crate::helpers::{
    Counting, Job, TestStore, both_backends, config, eventually, native, running,
};

both_backends!(
    higher_priority_runs_first,
    per_user_quota_keeps_one_user_from_blocking_another,
    two_pools_on_one_store_run_each_execution_once,
);

async fn higher_priority_runs_first(t: TestStore) {
    let owner = t.user().await;
    let pool = t.pool(native(), "node", config(1));
    let blocker = t.enqueue(Job::bash(owner, "exec sleep 1000\n")).await;
    t.wait_for(blocker.id, "blocker running", running).await;
    let low = t
        .enqueue(Job {
            priority: 1,
            ..Job::bash(owner, "echo low")
        })
        .await;
    let high = t
        .enqueue(Job {
            priority: 9,
            ..Job::bash(owner, "echo high")
        })
        .await;
    t.queue
        .request_cancel(Scope::All, blocker.id, voidrunner_store::now())
        .await
        .expect("cancel blocker");
    let low = t.wait_finished(low.id).await;
    let high = t.wait_finished(high.id).await;
    assert_eq!(
        (low.stdout.as_str(), high.stdout.as_str()),
        ("low\n", "high\n")
    );
    assert!(
        high.started_at < low.started_at,
        "high {:?} must start before low {:?}",
        high.started_at,
        low.started_at
    );
    pool.shutdown().await;
}

async fn per_user_quota_keeps_one_user_from_blocking_another(t: TestStore) {
    let (a, b) = (t.user().await, t.user().await);
    let cfg = WorkerConfig {
        per_user_concurrency: Some(1),
        ..config(3)
    };
    let pool = t.pool(native(), "node", cfg);
    let mut a_ids = Vec::new();
    for _ in 0..5 {
        a_ids.push(t.enqueue(Job::bash(a, "exec sleep 1000\n")).await.id);
    }
    t.wait_for(a_ids[0], "a's first running", running).await;
    let b_exec = t.enqueue(Job::bash(b, "echo b")).await;
    let b_done = t.wait_finished(b_exec.id).await;
    assert_eq!(
        (b_done.status, b_done.stdout.as_str()),
        (ExecutionStatus::Completed, "b\n")
    );
    let mut statuses = HashMap::new();
    for id in &a_ids {
        *statuses.entry(t.get(*id).await.status).or_insert(0) += 1;
    }
    assert_eq!(
        statuses.get(&ExecutionStatus::Running),
        Some(&1),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.get(&ExecutionStatus::Queued),
        Some(&4),
        "{statuses:?}"
    );
    for id in a_ids.iter().rev() {
        t.queue
            .request_cancel(Scope::All, *id, voidrunner_store::now())
            .await
            .expect("cancel");
    }
    for id in &a_ids {
        let e = t.wait_finished(*id).await;
        assert_eq!(e.verdict, Some(Verdict::Cancelled));
    }
    pool.shutdown().await;
}

async fn two_pools_on_one_store_run_each_execution_once(t: TestStore) {
    let owner = t.user().await;
    let first = Counting::new(native());
    let second = Counting::new(native());
    let p1 = t.pool(first.clone(), "one", config(2));
    let p2 = t.pool(second.clone(), "two", config(2));
    let mut ids = Vec::new();
    for n in 0..30 {
        let code = format!("echo {n}\n");
        ids.push((n, t.enqueue(Job::bash(owner, &code)).await.id));
    }
    for (n, id) in &ids {
        let e = t.wait_finished(*id).await;
        assert_eq!(e.status, ExecutionStatus::Completed, "{e:?}");
        assert_eq!(e.stdout, format!("{n}\n"));
        assert_eq!(e.attempt, 1);
    }
    let mut runs = first.runs();
    runs.extend(second.runs());
    runs.sort();
    let mut expected: Vec<String> = (0..30).map(|n| format!("echo {n}\n")).collect();
    expected.sort();
    assert_eq!(runs, expected, "every execution ran exactly once");
    println!(
        "{}: node one ran {}, node two ran {}",
        t.backend,
        first.runs().len(),
        second.runs().len()
    );
    let (s1, s2) = (p1.shutdown().await, p2.shutdown().await);
    assert!(s1.released.is_empty() && s2.released.is_empty());
    eventually("nothing left queued", || async {
        let stats = t.queue.queue_stats().await.expect("stats");
        (stats.queued == 0 && stats.running == 0).then_some(())
    })
    .await;
}
