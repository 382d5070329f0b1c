//! Executions: enqueue snapshot, one-shot runs, scopes, listing, cancel, stats, signals.

use std::collections::BTreeMap;
use std::time::Duration;

use voidrunner_domain::{ExecutionId, ExecutionStatus, ResourceLimits, Verdict};

use super::{TestHooks, at, claim, complete, create_user, lease_of, new_execution, new_task};
use crate::{ExecutionCursor, QueueStats, Scope, StoreError};

/// Every snapshot field survives enqueue → get, the row starts queued with no lease or
/// result, and the task's last status follows the execution through its lifecycle.
pub async fn enqueue_snapshot_round_trip_and_task_status<S: TestHooks>(store: &S) {
    let owner = create_user(store, "enq@example.com").await;
    let task = store
        .create_task(new_task(owner.id, "t", crate::now()))
        .await
        .expect("task");
    let mut new = new_execution(owner.id, Some(task.id), 7, crate::now());
    new.language = "python".to_owned();
    new.code = "print('✓')\n\ttabbed".to_owned();
    new.stdin = Some("in\n".to_owned());
    new.env = BTreeMap::from([("K".to_owned(), "ß".to_owned())]);
    new.limits = ResourceLimits {
        timeout_secs: 3,
        memory_mb: 64,
        cpu_cores: 0.25,
        max_processes: 2,
        max_output_bytes: 4096,
    };
    new.max_attempts = 5;
    let e = store.enqueue_execution(new.clone()).await.expect("enqueue");
    assert_eq!(
        (e.id, e.task_id, e.owner_id, e.status, e.priority),
        (new.id, Some(task.id), owner.id, ExecutionStatus::Queued, 7)
    );
    assert_eq!(
        (&e.language, &e.code, &e.stdin, &e.env, &e.limits),
        (&new.language, &new.code, &new.stdin, &new.env, &new.limits)
    );
    assert_eq!((e.attempt, e.max_attempts), (0, 5));
    assert_eq!(
        (e.created_at, e.run_after),
        (new.created_at, new.created_at)
    );
    assert!(e.lease_owner.is_none() && e.lease_until.is_none() && e.worker_id.is_none());
    assert!(e.verdict.is_none() && e.finished_at.is_none() && e.started_at.is_none());
    assert!(e.stdout.is_empty() && e.stderr.is_empty() && e.compile_output.is_none());
    let got = store
        .get_execution(Scope::Owner(owner.id), e.id)
        .await
        .expect("get");
    assert_eq!(got, e);
    let status = || async {
        store
            .get_task(Scope::All, task.id)
            .await
            .expect("task")
            .last_execution_status
    };
    assert_eq!(status().await, Some(ExecutionStatus::Queued));

    let running = claim(store, "w1", crate::now()).await.expect("claimed");
    assert_eq!(status().await, Some(ExecutionStatus::Running));
    let done = complete(store, &running, Verdict::Exited { code: 3 }).await;
    assert_eq!(status().await, Some(ExecutionStatus::Failed));
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(
        (done.exit_code, done.stdout.as_str(), done.stderr.as_str()),
        (Some(3), "out ✓\n", "err\n")
    );
    assert_eq!(done.compile_output.as_deref(), Some("cc: ok"));
    assert_eq!(
        (done.wall_time_ms, done.cpu_time_ms, done.peak_memory_bytes),
        (Some(12), Some(7), Some(1 << 20))
    );
    assert_eq!(done.worker_id.as_deref(), Some("w1"));
    assert!(done.lease_owner.is_none() && done.finished_at.is_some());
    assert_eq!(
        store.get_execution(Scope::All, e.id).await.expect("get"),
        done
    );

    // An older execution finishing late does not hide the newest one's status.
    let newer = store
        .enqueue_execution(new_execution(owner.id, Some(task.id), 0, crate::now()))
        .await
        .expect("newer");
    assert_eq!(status().await, Some(ExecutionStatus::Queued));
    store
        .request_cancel(Scope::All, newer.id, crate::now())
        .await
        .expect("cancel");
    assert_eq!(status().await, Some(ExecutionStatus::Cancelled));
}

/// A one-shot run has no task and goes through the queue like any other.
pub async fn enqueue_one_shot_without_task<S: TestHooks>(store: &S) {
    let owner = create_user(store, "oneshot@example.com").await;
    let e = store
        .enqueue_execution(new_execution(owner.id, None, 5, crate::now()))
        .await
        .expect("enqueue");
    assert_eq!(e.task_id, None);
    let running = claim(store, "w", crate::now()).await.expect("claim");
    assert_eq!(running.id, e.id);
    let done = complete(store, &running, Verdict::Exited { code: 0 }).await;
    assert_eq!(done.status, ExecutionStatus::Completed);
    assert_eq!(done.task_id, None);
}

/// Enqueueing for another user's task, a deleted task or a missing task is `NotFound` and
/// leaves nothing behind.
pub async fn enqueue_for_foreign_or_deleted_task_is_not_found<S: TestHooks>(store: &S) {
    let alice = create_user(store, "alice-e@example.com").await;
    let bob = create_user(store, "bob-e@example.com").await;
    let task = store
        .create_task(new_task(alice.id, "a", crate::now()))
        .await
        .expect("task");
    let deleted = store
        .create_task(new_task(bob.id, "gone", crate::now()))
        .await
        .expect("task");
    store
        .delete_task(Scope::All, deleted.id, crate::now())
        .await
        .expect("delete");
    for task_id in [task.id, deleted.id, voidrunner_domain::TaskId::new()] {
        let r = store
            .enqueue_execution(new_execution(bob.id, Some(task_id), 5, crate::now()))
            .await;
        assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    }
    assert_eq!(store.queue_stats().await.expect("stats").queued, 0);
    assert!(claim(store, "w", crate::now()).await.is_none());
}

/// Another owner's execution is `NotFound` for get, list and cancel; admins reach it.
pub async fn executions_scoped_to_owner<S: TestHooks>(store: &S) {
    let alice = create_user(store, "alice-s@example.com").await;
    let bob = create_user(store, "bob-s@example.com").await;
    let task = store
        .create_task(new_task(alice.id, "a", crate::now()))
        .await
        .expect("task");
    let e = store
        .enqueue_execution(new_execution(alice.id, Some(task.id), 5, crate::now()))
        .await
        .expect("enqueue");
    let bob_scope = Scope::Owner(bob.id);
    for id in [e.id, ExecutionId::new()] {
        assert!(matches!(
            store.get_execution(bob_scope, id).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.request_cancel(bob_scope, id, crate::now()).await,
            Err(StoreError::NotFound)
        ));
    }
    assert!(matches!(
        store
            .list_task_executions(bob_scope, task.id, None, 10)
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store
            .get_execution(Scope::All, e.id)
            .await
            .expect("admin")
            .status,
        ExecutionStatus::Queued
    );
    let page = store
        .list_task_executions(Scope::All, task.id, None, 10)
        .await
        .expect("admin list");
    assert_eq!(page.items.len(), 1);
}

/// Newest-first keyset pages cover every execution once, including equal `created_at`.
pub async fn task_executions_paging_has_no_gaps_or_dupes<S: TestHooks>(store: &S) {
    let owner = create_user(store, "page-e@example.com").await;
    let task = store
        .create_task(new_task(owner.id, "p", crate::now()))
        .await
        .expect("task");
    let other = store
        .create_task(new_task(owner.id, "other", crate::now()))
        .await
        .expect("task");
    let base = crate::now();
    let mut expected = Vec::new();
    for i in 0..23_i64 {
        // Pairs share a created_at, so the id breaks ties.
        let e = store
            .enqueue_execution(new_execution(owner.id, Some(task.id), 5, at(base, i / 2)))
            .await
            .expect("enqueue");
        expected.push(e.id);
    }
    store
        .enqueue_execution(new_execution(owner.id, Some(other.id), 5, base))
        .await
        .expect("other task");
    let mut seen = Vec::new();
    let mut after: Option<ExecutionCursor> = None;
    loop {
        let page = store
            .list_task_executions(Scope::Owner(owner.id), task.id, after, 5)
            .await
            .expect("page");
        assert!(page.items.len() <= 5);
        seen.extend(page.items.iter().map(|e| (e.created_at, e.id)));
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first by (created_at, id)");
    let mut ids: Vec<_> = seen.into_iter().map(|(_, id)| id).collect();
    ids.sort_unstable();
    expected.sort_unstable();
    assert_eq!(ids, expected, "every execution exactly once");
}

/// Queued → cancelled at once (never claimed); running → cancel requested (and signalled);
/// finished → conflict.
pub async fn cancel_queued_running_and_finished<S: TestHooks>(store: &S) {
    let owner = create_user(store, "cancel@example.com").await;
    let scope = Scope::Owner(owner.id);
    let mut finished = store.queue_signals().subscribe_finished();
    let mut cancels = store.queue_signals().subscribe_cancels();
    let queued = store
        .enqueue_execution(new_execution(owner.id, None, 5, crate::now()))
        .await
        .expect("enqueue");
    let c = store
        .request_cancel(scope, queued.id, crate::now())
        .await
        .expect("cancel queued");
    assert_eq!(c.status, ExecutionStatus::Cancelled);
    assert_eq!(c.verdict, Some(Verdict::Cancelled));
    assert!(c.finished_at.is_some());
    assert_eq!(recv(&mut finished).await, queued.id);
    assert!(
        claim(store, "w", crate::now()).await.is_none(),
        "never runs"
    );

    store
        .enqueue_execution(new_execution(owner.id, None, 5, crate::now()))
        .await
        .expect("enqueue");
    let running = claim(store, "w", crate::now()).await.expect("claim");
    let r = store
        .request_cancel(scope, running.id, crate::now())
        .await
        .expect("cancel running");
    assert_eq!(r.status, ExecutionStatus::Running);
    assert!(r.cancel_requested_at.is_some());
    assert_eq!(recv(&mut cancels).await, running.id);
    let again = store
        .request_cancel(scope, running.id, crate::now())
        .await
        .expect("cancel twice");
    assert_eq!(again.cancel_requested_at, r.cancel_requested_at);
    let done = complete(store, &running, Verdict::Cancelled).await;
    assert_eq!(done.status, ExecutionStatus::Cancelled);
    for id in [queued.id, running.id] {
        assert!(matches!(
            store.request_cancel(scope, id, crate::now()).await,
            Err(StoreError::Conflict(_))
        ));
    }
}

/// Receives the next id from a broadcast signal (bounded wait: a missing signal fails).
pub(super) async fn recv(rx: &mut tokio::sync::broadcast::Receiver<ExecutionId>) -> ExecutionId {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("signal within 10 s")
        .expect("signal channel open")
}

/// Counts of queued, running and dead-lettered executions.
pub async fn queue_stats_count_states<S: TestHooks>(store: &S) {
    let owner = create_user(store, "stats@example.com").await;
    assert_eq!(
        store.queue_stats().await.expect("stats"),
        QueueStats::default()
    );
    for _ in 0..4 {
        let mut n = new_execution(owner.id, None, 5, crate::now());
        n.max_attempts = 1;
        store.enqueue_execution(n).await.expect("enqueue");
    }
    let a = claim(store, "w", crate::now()).await.expect("a");
    let b = claim(store, "w", crate::now()).await.expect("b");
    let _c = claim(store, "w", crate::now()).await.expect("c");
    complete(store, &a, Verdict::Exited { code: 0 }).await;
    store
        .release_execution(
            &lease_of(&b),
            crate::ReleaseReason::Failure {
                error: "sandbox broke".to_owned(),
                retry_at: crate::now(),
            },
            crate::now(),
        )
        .await
        .expect("release");
    assert_eq!(
        store.queue_stats().await.expect("stats"),
        QueueStats {
            queued: 1,
            running: 1,
            dead_lettered: 1
        }
    );
}

/// Enqueue wakes a work subscriber of the same store; subscribing first means the signal
/// cannot be missed.
pub async fn enqueue_signals_work_on_same_store<S: TestHooks>(store: &S) {
    let owner = create_user(store, "sig@example.com").await;
    let mut work = store.queue_signals().subscribe_work();
    work.borrow_and_update();
    store
        .enqueue_execution(new_execution(owner.id, None, 5, crate::now()))
        .await
        .expect("enqueue");
    tokio::time::timeout(Duration::from_secs(10), work.changed())
        .await
        .expect("work signal")
        .expect("sender alive");
}
