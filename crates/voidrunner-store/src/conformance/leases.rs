//! Leases: heartbeat, fencing of stale workers, exactly-once completion, release, retries,
//! dead letters and the reaper.

use voidrunner_domain::{Execution, ExecutionStatus, Timestamp, UserId, Verdict};

use super::{TestHooks, at, claim, complete, create_user, lease_of, new_execution, result};
use crate::{CompleteOutcome, LeaseStatus, ReleaseOutcome, ReleaseReason, Scope};

/// Enqueues one execution of `owner` allowing `max_attempts` claims and claims it as `worker`.
async fn running<S: TestHooks>(
    store: &S,
    owner: UserId,
    max_attempts: u32,
    worker: &str,
) -> Execution {
    let mut n = new_execution(owner, None, 5, crate::now());
    n.max_attempts = max_attempts;
    let e = store.enqueue_execution(n).await.expect("enqueue");
    let got = claim(store, worker, crate::now()).await.expect("claim");
    assert_eq!(got.id, e.id);
    got
}

/// A failure release at `retry_at`.
fn failure(error: &str, retry_at: Timestamp) -> ReleaseReason {
    ReleaseReason::Failure {
        error: error.to_owned(),
        retry_at,
    }
}

/// A heartbeat extends the lease and reports cancel requests; a wrong attempt or worker is
/// `Lost`.
pub async fn heartbeat_extends_and_reports_cancel<S: TestHooks>(store: &S) {
    let owner = create_user(store, "hb@example.com").await;
    let e = running(store, owner.id, 3, "w").await;
    let lease = lease_of(&e);
    let until = at(crate::now(), 120_000_000);
    assert_eq!(
        store.heartbeat(&lease, until).await.expect("hb"),
        LeaseStatus::Held {
            cancel_requested: false
        }
    );
    let row = store.get_execution(Scope::All, e.id).await.expect("get");
    assert_eq!(row.lease_until, Some(until));
    store
        .request_cancel(Scope::All, e.id, crate::now())
        .await
        .expect("cancel");
    assert_eq!(
        store.heartbeat(&lease, until).await.expect("hb"),
        LeaseStatus::Held {
            cancel_requested: true
        }
    );
    let mut wrong = lease.clone();
    wrong.attempt += 1;
    assert_eq!(
        store.heartbeat(&wrong, until).await.expect("hb"),
        LeaseStatus::Lost
    );
    wrong = lease.clone();
    wrong.worker_id = "impostor".to_owned();
    assert_eq!(
        store.heartbeat(&wrong, until).await.expect("hb"),
        LeaseStatus::Lost
    );
}

/// Worker A's lease expires, the reaper re-queues, worker B claims and completes; A's late
/// completion, heartbeat and release change nothing and B's result stands.
pub async fn stale_worker_cannot_complete<S: TestHooks>(store: &S) {
    let owner = create_user(store, "stale@example.com").await;
    let a = running(store, owner.id, 3, "worker-a").await;
    let expired = at(a.lease_until.expect("lease"), 1);
    let reaped = store
        .reap_expired_leases(expired, &|_| expired)
        .await
        .expect("reap");
    assert_eq!(reaped, vec![(a.id, ReleaseOutcome::Requeued)]);
    let b = claim(store, "worker-b", expired).await.expect("reclaimed");
    assert_eq!((b.id, b.attempt), (a.id, 2));
    assert_eq!(
        store
            .heartbeat(&lease_of(&a), at(expired, 1_000_000))
            .await
            .expect("hb"),
        LeaseStatus::Lost
    );
    let late = store
        .complete_execution(&lease_of(&a), result(Verdict::Exited { code: 1 }, expired))
        .await
        .expect("complete a");
    assert_eq!(late, CompleteOutcome::LeaseLost);
    let done = complete(store, &b, Verdict::Exited { code: 0 }).await;
    assert_eq!(
        store
            .release_execution(&lease_of(&a), ReleaseReason::Shutdown, crate::now())
            .await
            .expect("release a"),
        ReleaseOutcome::LeaseLost
    );
    let row = store.get_execution(Scope::All, a.id).await.expect("get");
    assert_eq!(row, done);
    assert_eq!(row.status, ExecutionStatus::Completed);
    assert_eq!(row.worker_id.as_deref(), Some("worker-b"));
}

/// The first completion wins; a second one (even by the same worker) is `LeaseLost`.
pub async fn complete_exactly_once<S: TestHooks>(store: &S) {
    let owner = create_user(store, "once@example.com").await;
    let e = running(store, owner.id, 3, "w").await;
    let first = complete(store, &e, Verdict::Timeout).await;
    assert_eq!(first.status, ExecutionStatus::Timeout);
    assert_eq!(first.verdict, Some(Verdict::Timeout));
    let second = store
        .complete_execution(
            &lease_of(&e),
            result(Verdict::Exited { code: 0 }, crate::now()),
        )
        .await
        .expect("second");
    assert_eq!(second, CompleteOutcome::LeaseLost);
    assert_eq!(
        store.get_execution(Scope::All, e.id).await.expect("get"),
        first
    );
    // A sandbox error is not a result.
    let e2 = running(store, owner.id, 3, "w").await;
    let r = store
        .complete_execution(
            &lease_of(&e2),
            result(
                Verdict::SandboxError {
                    reason: "x".to_owned(),
                },
                crate::now(),
            ),
        )
        .await;
    assert!(r.is_err(), "{r:?}");
}

/// A failure release re-queues with the attempt kept, `last_error` set, and not claimable
/// before `retry_at`.
pub async fn release_failure_requeues_with_backoff<S: TestHooks>(store: &S) {
    let owner = create_user(store, "retry@example.com").await;
    let e = running(store, owner.id, 3, "w").await;
    let now = crate::now();
    let retry_at = at(now, 2_000_000);
    let outcome = store
        .release_execution(&lease_of(&e), failure("sandbox exploded", retry_at), now)
        .await
        .expect("release");
    assert_eq!(outcome, ReleaseOutcome::Requeued);
    let row = store.get_execution(Scope::All, e.id).await.expect("get");
    assert_eq!(row.status, ExecutionStatus::Queued);
    assert_eq!((row.attempt, row.run_after), (1, retry_at));
    assert_eq!(row.last_error.as_deref(), Some("sandbox exploded"));
    assert!(row.lease_owner.is_none() && row.lease_until.is_none());
    assert!(claim(store, "w", now).await.is_none(), "backoff honoured");
    let again = claim(store, "w2", retry_at).await.expect("after backoff");
    assert_eq!((again.id, again.attempt), (e.id, 2));
}

/// At `max_attempts` a failure dead-letters (failed, `sandbox_error` verdict, listed for
/// admins); requeueing resets attempts and it runs again.
pub async fn max_attempts_dead_letters_and_requeue_resets<S: TestHooks>(store: &S) {
    let owner = create_user(store, "dead@example.com").await;
    let mut finished = store.queue_signals().subscribe_finished();
    let mut e = running(store, owner.id, 2, "w").await;
    let now = crate::now();
    let first = store
        .release_execution(&lease_of(&e), failure("boom 1", now), now)
        .await
        .expect("release 1");
    assert_eq!(first, ReleaseOutcome::Requeued);
    e = claim(store, "w", now).await.expect("claim 2");
    assert_eq!(e.attempt, 2);
    let second = store
        .release_execution(&lease_of(&e), failure("boom 2", now), now)
        .await
        .expect("release 2");
    assert_eq!(second, ReleaseOutcome::DeadLettered);
    assert_eq!(super::executions::recv(&mut finished).await, e.id);
    let row = store.get_execution(Scope::All, e.id).await.expect("get");
    assert_eq!(row.status, ExecutionStatus::Failed);
    assert_eq!(row.last_error.as_deref(), Some("boom 2"));
    assert_eq!(
        row.verdict,
        Some(Verdict::SandboxError {
            reason: "boom 2".to_owned()
        })
    );
    assert!(row.dead_lettered_at.is_some() && row.finished_at.is_some());
    assert!(claim(store, "w", now).await.is_none());
    let dead = store.list_dead_letters(None, 10).await.expect("list");
    assert_eq!(dead.items, vec![row.clone()]);
    assert_eq!(dead.next, None);
    assert_eq!(store.queue_stats().await.expect("stats").dead_lettered, 1);

    let requeued = store
        .requeue_dead_letter(e.id, crate::now())
        .await
        .expect("requeue");
    assert_eq!(requeued.status, ExecutionStatus::Queued);
    assert_eq!(requeued.attempt, 0);
    assert!(requeued.dead_lettered_at.is_none() && requeued.verdict.is_none());
    assert!(
        store
            .list_dead_letters(None, 10)
            .await
            .expect("list")
            .items
            .is_empty()
    );
    assert!(matches!(
        store.requeue_dead_letter(e.id, crate::now()).await,
        Err(crate::StoreError::NotFound)
    ));
    let again = claim(store, "w", crate::now()).await.expect("runs again");
    assert_eq!(again.attempt, 1);
    complete(store, &again, Verdict::Exited { code: 0 }).await;
}

/// A shutdown release re-queues at once and does not use up an attempt, even at the last
/// attempt.
pub async fn shutdown_release_keeps_attempt_budget<S: TestHooks>(store: &S) {
    let owner = create_user(store, "drain@example.com").await;
    let e = running(store, owner.id, 1, "w").await;
    let mut work = store.queue_signals().subscribe_work();
    work.borrow_and_update();
    let outcome = store
        .release_execution(&lease_of(&e), ReleaseReason::Shutdown, crate::now())
        .await
        .expect("release");
    assert_eq!(outcome, ReleaseOutcome::Requeued);
    tokio::time::timeout(std::time::Duration::from_secs(10), work.changed())
        .await
        .expect("work signal")
        .expect("open");
    let row = store.get_execution(Scope::All, e.id).await.expect("get");
    assert_eq!((row.status, row.attempt), (ExecutionStatus::Queued, 0));
    let again = claim(store, "w2", crate::now()).await.expect("reclaim");
    assert_eq!(again.attempt, 1);
    // Still the first (and only) attempt: a failure now dead-letters.
    assert_eq!(
        store
            .release_execution(&lease_of(&again), failure("x", crate::now()), crate::now())
            .await
            .expect("fail"),
        ReleaseOutcome::DeadLettered
    );
}

/// The reaper touches only expired leases: it re-queues those with attempts left (with the
/// backoff it is given) and dead-letters those without.
pub async fn reaper_requeues_only_expired_leases<S: TestHooks>(store: &S) {
    let owner = create_user(store, "reap@example.com").await;
    let short = running(store, owner.id, 3, "w").await;
    let last = running(store, owner.id, 1, "w").await;
    let fresh = running(store, owner.id, 3, "w").await;
    let now = crate::now();
    let far = at(now, 3_600_000_000);
    for e in [&short, &last] {
        assert!(matches!(
            store
                .heartbeat(&lease_of(e), at(now, 1_000))
                .await
                .expect("hb"),
            LeaseStatus::Held { .. }
        ));
    }
    store
        .heartbeat(&lease_of(&fresh), far)
        .await
        .expect("hb fresh");
    assert!(
        store
            .reap_expired_leases(now, &|_| now)
            .await
            .expect("reap early")
            .is_empty()
    );
    let t = at(now, 2_000);
    let retry = at(now, 10_000_000);
    let mut reaped = store
        .reap_expired_leases(t, &|attempt| {
            assert_eq!(attempt, 1);
            retry
        })
        .await
        .expect("reap");
    reaped.sort_by_key(|(id, _)| *id);
    let mut expected = vec![
        (short.id, ReleaseOutcome::Requeued),
        (last.id, ReleaseOutcome::DeadLettered),
    ];
    expected.sort_by_key(|(id, _)| *id);
    assert_eq!(reaped, expected);
    let s = store.get_execution(Scope::All, short.id).await.expect("s");
    assert_eq!((s.status, s.run_after), (ExecutionStatus::Queued, retry));
    assert!(s.last_error.is_some());
    let l = store.get_execution(Scope::All, last.id).await.expect("l");
    assert!(l.dead_lettered_at.is_some());
    let f = store.get_execution(Scope::All, fresh.id).await.expect("f");
    assert_eq!(f.status, ExecutionStatus::Running);
    assert!(
        store
            .reap_expired_leases(t, &|_| t)
            .await
            .expect("again")
            .is_empty()
    );
}

/// A running execution whose cancel was requested is finished as cancelled when it comes
/// back (released or reaped), never re-run.
pub async fn released_after_cancel_request_is_cancelled<S: TestHooks>(store: &S) {
    let owner = create_user(store, "rc@example.com").await;
    let e = running(store, owner.id, 3, "w").await;
    store
        .request_cancel(Scope::All, e.id, crate::now())
        .await
        .expect("cancel");
    let outcome = store
        .release_execution(&lease_of(&e), ReleaseReason::Shutdown, crate::now())
        .await
        .expect("release");
    assert_eq!(outcome, ReleaseOutcome::Cancelled);
    let row = store.get_execution(Scope::All, e.id).await.expect("get");
    assert_eq!(row.status, ExecutionStatus::Cancelled);
    assert_eq!(row.verdict, Some(Verdict::Cancelled));
    assert!(claim(store, "w", crate::now()).await.is_none());

    let e2 = running(store, owner.id, 3, "w").await;
    store
        .request_cancel(Scope::All, e2.id, crate::now())
        .await
        .expect("cancel");
    let t = at(e2.lease_until.expect("lease"), 1);
    let reaped = store.reap_expired_leases(t, &|_| t).await.expect("reap");
    assert_eq!(reaped, vec![(e2.id, ReleaseOutcome::Cancelled)]);
}
