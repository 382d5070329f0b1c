//! Dashboard aggregates and resource samples: numbers computed from executions run through
//! the real queue, scope isolation, the window bound and the sample cap.

use voidrunner_domain::{ExecutionStatus, ResourceSample, UserId, Verdict};

use super::{TestHooks, at, claim_at, create_user, lease_of, new_execution, result};
use crate::{
    CompleteOutcome, ExecutionStats, ReleaseOutcome, ReleaseReason, Scope, StatsRequest, StoreError,
};

/// Enqueues at `created`, claims `wait_ms` later, completes after `wall_ms` with `verdict`.
async fn run_one<S: TestHooks>(
    store: &S,
    owner: UserId,
    language: &str,
    created: voidrunner_domain::Timestamp,
    wait_ms: i64,
    wall_ms: u64,
    verdict: Verdict,
) {
    let mut n = new_execution(owner, None, 5, created);
    n.language = language.to_owned();
    let e = store.enqueue_execution(n).await.expect("enqueue");
    let started = at(created, wait_ms * 1000);
    let running = store
        .claim_next(&claim_at("stats-worker", started))
        .await
        .expect("claim")
        .expect("claimable");
    assert_eq!(running.id, e.id, "one claimable row at a time");
    let mut r = result(
        verdict,
        at(started, i64::try_from(wall_ms).expect("ms") * 1000),
    );
    r.wall_time_ms = wall_ms;
    match store
        .complete_execution(&lease_of(&running), r)
        .await
        .expect("complete")
    {
        CompleteOutcome::Completed(_) => {}
        CompleteOutcome::LeaseLost => panic!("lease lost"),
    }
}

fn request(scope: Scope, max_samples: u32) -> StatsRequest {
    let until = crate::now();
    StatsRequest {
        scope,
        since: until - chrono::Duration::hours(1),
        until,
        buckets: 60,
        max_samples,
    }
}

fn status(s: &ExecutionStats, st: ExecutionStatus) -> u64 {
    s.by_status
        .iter()
        .find(|(x, _)| *x == st)
        .map_or(0, |(_, n)| *n)
}

/// Counts by status/verdict/language, percentiles of wall time and queue wait, throughput,
/// queue depth and dead letters, per owner and for everybody; old rows stay outside.
pub async fn stats_aggregate_window_and_scope<S: TestHooks>(store: &S) {
    let a = create_user(store, "stats-a@example.com").await;
    let b = create_user(store, "stats-b@example.com").await;
    let now = crate::now();
    // Outside the window: enqueued and finished three hours ago.
    let old = now - chrono::Duration::hours(3);
    run_one(store, a.id, "bash", old, 5, 999_999, Verdict::Timeout).await;
    // Ten finished runs of `a`: wall 10..100 ms, queue wait 0..900 ms.
    let base = now - chrono::Duration::minutes(30);
    for i in 0..10_i64 {
        let verdict = match i {
            0..=5 => Verdict::Exited { code: 0 },
            6..=8 => Verdict::Exited { code: 1 },
            _ => Verdict::Timeout,
        };
        let language = if i % 2 == 0 { "python" } else { "bash" };
        let created = at(base, i * 60_000_000);
        let wall = u64::try_from(i + 1).expect("positive") * 10;
        run_one(store, a.id, language, created, i * 100, wall, verdict).await;
    }
    // `b`: one completed, one dead-lettered.
    run_one(store, b.id, "bash", base, 1, 5, Verdict::Exited { code: 0 }).await;
    let mut dl = new_execution(b.id, None, 5, at(base, 1_000));
    dl.max_attempts = 1;
    store.enqueue_execution(dl).await.expect("enqueue");
    let claimed = store
        .claim_next(&claim_at("stats-worker", crate::now()))
        .await
        .expect("claim")
        .expect("claimable");
    let reason = ReleaseReason::Failure {
        error: "sandbox broke".to_owned(),
        retry_at: crate::now(),
    };
    let out = store
        .release_execution(&lease_of(&claimed), reason, crate::now())
        .await
        .expect("release");
    assert_eq!(out, ReleaseOutcome::DeadLettered);
    // `a`: one running, one queued, now.
    let r = store
        .enqueue_execution(new_execution(a.id, None, 5, crate::now()))
        .await
        .expect("enqueue");
    let claimed = store
        .claim_next(&claim_at("stats-worker", crate::now()))
        .await
        .expect("claim")
        .expect("claimable");
    assert_eq!(claimed.id, r.id);
    store
        .enqueue_execution(new_execution(a.id, None, 5, crate::now()))
        .await
        .expect("enqueue");

    let s = store
        .execution_stats(&request(Scope::Owner(a.id), 1000))
        .await
        .expect("stats a");
    assert_eq!(status(&s, ExecutionStatus::Completed), 6, "{s:?}");
    assert_eq!(status(&s, ExecutionStatus::Failed), 3);
    assert_eq!(status(&s, ExecutionStatus::Timeout), 1, "old run excluded");
    assert_eq!(status(&s, ExecutionStatus::Queued), 1);
    assert_eq!(status(&s, ExecutionStatus::Running), 1);
    assert_eq!(s.by_language.get("python"), Some(&5));
    assert_eq!(s.by_language.get("bash"), Some(&7));
    assert_eq!(s.by_verdict.get("exited"), Some(&9));
    assert_eq!(s.by_verdict.get("timeout"), Some(&1));
    assert_eq!(s.finished, 10);
    assert_eq!(s.samples, 10);
    assert!(!s.samples_capped);
    let d = s.duration_ms;
    assert_eq!(
        (d.count, d.p50, d.p95, d.p99, d.max),
        (10, Some(50), Some(100), Some(100), Some(100))
    );
    let q = s.queue_wait_ms;
    assert_eq!((q.p50, q.p95, q.max), (Some(400), Some(900), Some(900)));
    assert_eq!(s.throughput.len(), 60);
    assert_eq!(s.throughput.iter().map(|b| b.finished).sum::<u64>(), 10);
    assert_eq!(s.bucket_width, std::time::Duration::from_secs(60));
    assert_eq!((s.queued_now, s.running_now, s.dead_lettered), (1, 1, 0));

    let s = store
        .execution_stats(&request(Scope::Owner(b.id), 1000))
        .await
        .expect("stats b");
    assert_eq!(s.finished, 2, "{s:?}");
    assert_eq!(status(&s, ExecutionStatus::Completed), 1);
    assert_eq!(status(&s, ExecutionStatus::Failed), 1);
    assert_eq!((s.queued_now, s.running_now, s.dead_lettered), (0, 0, 1));
    assert_eq!(s.duration_ms.max, Some(5), "b never sees a's runs");

    let s = store
        .execution_stats(&request(Scope::All, 4))
        .await
        .expect("stats all");
    assert_eq!(s.finished, 12);
    assert_eq!((s.queued_now, s.running_now, s.dead_lettered), (1, 1, 1));
    assert!(s.samples_capped);
    assert_eq!(s.samples, 4);
}

/// The timeline written with a result reads back in order; none is empty; scope applies.
pub async fn resource_samples_round_trip_and_scope<S: TestHooks>(store: &S) {
    let a = create_user(store, "samples-a@example.com").await;
    let b = create_user(store, "samples-b@example.com").await;
    let e = store
        .enqueue_execution(new_execution(a.id, None, 5, crate::now()))
        .await
        .expect("enqueue");
    assert_eq!(
        store
            .resource_samples(Scope::Owner(a.id), e.id)
            .await
            .expect("queued"),
        Vec::new()
    );
    let running = store
        .claim_next(&claim_at("w", crate::now()))
        .await
        .expect("claim")
        .expect("claimable");
    let samples: Vec<ResourceSample> = (0..5)
        .map(|i| ResourceSample {
            t_ms: i * 250,
            memory_bytes: (i + 1) << 20,
            cpu_ms: i * 200,
        })
        .collect();
    let mut r = result(Verdict::Exited { code: 0 }, crate::now());
    r.resource_samples = samples.clone();
    store
        .complete_execution(&lease_of(&running), r)
        .await
        .expect("complete");
    let got = store
        .resource_samples(Scope::Owner(a.id), e.id)
        .await
        .expect("read");
    assert_eq!(got, samples);
    assert_eq!(
        store.resource_samples(Scope::All, e.id).await.expect("all"),
        samples
    );
    assert!(matches!(
        store.resource_samples(Scope::Owner(b.id), e.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .resource_samples(Scope::All, voidrunner_domain::ExecutionId::new())
            .await,
        Err(StoreError::NotFound)
    ));
}
