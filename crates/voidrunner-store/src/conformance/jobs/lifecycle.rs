//! CI jobs, lifecycle: cancel, release/retry/dead letter and the reaper, the event log,
//! artifacts and signals.

use std::collections::BTreeMap;

use super::{claim, create_user, job_statuses, lease, new_job, result, step};
use crate::conformance::{TestHooks, at};
use crate::{
    AppendOutcome, JobArtifact, JobCompleteOutcome, JobId, JobSignal, JobStatus, JobStream,
    JobWrite, LeaseStatus, NewJobEvent, ReleaseOutcome, ReleaseReason, Scope, StepState,
    StepUpdate, StoreError,
};

/// Queued → cancelled at once (steps skipped); running → request, signal, heartbeat, and
/// the release finishes it cancelled; finished → `Conflict`.
pub async fn job_cancel_queued_and_running<S: TestHooks>(store: &S) {
    let owner = create_user(store, "job-cancel@example.com").await;
    let scope = Scope::Owner(owner.id);
    let now = crate::now();
    let queued = store
        .create_job(new_job(owner.id, "q", 1, now), BTreeMap::new())
        .await
        .expect("create");
    let cancelled = store
        .request_job_cancel(scope, queued.id, now)
        .await
        .expect("cancel");
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert_eq!(cancelled.finished_at, Some(now));
    let steps = store.job_steps(scope, queued.id).await.expect("steps");
    assert!(steps.iter().all(|s| s.state == StepState::Skipped));
    assert!(claim(store, "w", now).await.is_none(), "never runs");
    let again = store.request_job_cancel(scope, queued.id, now).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    store
        .create_job(new_job(owner.id, "r", 1, now), BTreeMap::new())
        .await
        .expect("create");
    let running = claim(store, "w", now).await.expect("claim");
    let l = lease(&running);
    store
        .update_step(
            &l,
            StepUpdate {
                finished_at: None,
                ..step(0, StepState::Running, None)
            },
        )
        .await
        .expect("step");
    let mut signals = store.queue_signals().subscribe_jobs();
    let requested = store
        .request_job_cancel(scope, running.id, now)
        .await
        .expect("cancel");
    assert_eq!(requested.status, JobStatus::Running);
    assert_eq!(requested.cancel_requested_at, Some(now));
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            if let Ok(JobSignal::Cancel(id)) = signals.recv().await {
                return id;
            }
        }
    })
    .await
    .expect("cancel signal");
    assert_eq!(got, running.id);
    assert_eq!(
        store
            .heartbeat_job(&l, at(now, 60_000_000))
            .await
            .expect("hb"),
        LeaseStatus::Held {
            cancel_requested: true
        }
    );
    let out = store
        .release_job(&l, ReleaseReason::Shutdown, now)
        .await
        .expect("release");
    assert_eq!(out, ReleaseOutcome::Cancelled);
    let done = store.get_job(scope, running.id).await.expect("get");
    assert_eq!(done.status, JobStatus::Cancelled);
    let states: Vec<_> = store
        .job_steps(scope, running.id)
        .await
        .expect("steps")
        .into_iter()
        .map(|s| s.state)
        .collect();
    assert_eq!(
        states,
        [StepState::Cancelled, StepState::Skipped, StepState::Skipped]
    );
}

/// A failure re-queues at `retry_at` with steps reset and artifacts forgotten; a shutdown
/// refunds the attempt; after `max_attempts` the job is dead-lettered; the reaper releases
/// only expired leases.
pub async fn job_release_retry_and_dead_letter<S: TestHooks>(store: &S) {
    let owner = create_user(store, "job-retry@example.com").await;
    let now = crate::now();
    let job = store
        .create_job(new_job(owner.id, "flaky", 1, now), BTreeMap::new())
        .await
        .expect("create");
    let first = claim(store, "w", now).await.expect("claim");
    let l = lease(&first);
    store
        .update_step(&l, step(0, StepState::Succeeded, Some(0)))
        .await
        .expect("step");
    store
        .record_job_artifact(&l, artifact("artifacts/a.bin"))
        .await
        .expect("artifact");
    let retry_at = at(now, 5_000_000);
    let out = store
        .release_job(
            &l,
            ReleaseReason::Failure {
                error: "sandbox broke".into(),
                retry_at,
            },
            now,
        )
        .await
        .expect("release");
    assert_eq!(out, ReleaseOutcome::Requeued);
    let queued = store.get_job(Scope::All, job.id).await.expect("get");
    assert_eq!(queued.status, JobStatus::Queued);
    assert_eq!((queued.attempt, queued.run_after), (1, retry_at));
    assert_eq!(queued.last_error.as_deref(), Some("sandbox broke"));
    assert!(queued.lease_owner.is_none());
    let steps = store.job_steps(Scope::All, job.id).await.expect("steps");
    assert!(
        steps
            .iter()
            .all(|s| s.state == StepState::Pending && s.exit_code.is_none())
    );
    assert!(
        store
            .job_artifacts(Scope::All, job.id)
            .await
            .expect("a")
            .is_empty()
    );
    assert_eq!(
        store
            .release_job(&l, ReleaseReason::Shutdown, now)
            .await
            .expect("stale"),
        ReleaseOutcome::LeaseLost
    );
    assert!(claim(store, "w", now).await.is_none(), "backoff respected");
    // Shutdown: back at once, attempt refunded.
    let second = claim(store, "w", retry_at).await.expect("claim");
    assert_eq!(second.attempt, 2);
    let out = store
        .release_job(&lease(&second), ReleaseReason::Shutdown, retry_at)
        .await
        .expect("release");
    assert_eq!(out, ReleaseOutcome::Requeued);
    assert_eq!(
        store
            .get_job(Scope::All, job.id)
            .await
            .expect("get")
            .attempt,
        1
    );
    // The reaper ignores live leases and releases the expired one; attempts used up.
    let third = claim(store, "w", retry_at).await.expect("claim");
    assert_eq!(third.attempt, 2);
    let reaped = store
        .reap_expired_job_leases(retry_at, &|_| retry_at)
        .await
        .expect("reap");
    assert!(reaped.is_empty(), "lease still live: {reaped:?}");
    let expired = at(retry_at, 31_000_000);
    let reaped = store
        .reap_expired_job_leases(expired, &|_| expired)
        .await
        .expect("reap");
    assert_eq!(reaped, [(job.id, ReleaseOutcome::DeadLettered)]);
    let dead = store.get_job(Scope::All, job.id).await.expect("get");
    assert_eq!(dead.status, JobStatus::Failed);
    assert_eq!(dead.dead_lettered_at, Some(expired));
    assert!(dead.last_error.is_some());
    let steps = store.job_steps(Scope::All, job.id).await.expect("steps");
    assert!(steps.iter().all(|s| s.state == StepState::Skipped));
    let stats = store.job_queue_stats().await.expect("stats");
    assert_eq!(
        (stats.queued, stats.running, stats.dead_lettered),
        (0, 0, 1)
    );
    assert_eq!(
        job_statuses(store, job.id).await,
        [
            "queued", "running", "queued", "running", "queued", "running", "failed"
        ]
    );
    // An admin puts it back: attempts reset, runnable at once; only dead letters qualify.
    let back = store
        .requeue_job_dead_letter(job.id, expired)
        .await
        .expect("requeue");
    assert_eq!(back.status, JobStatus::Queued);
    assert_eq!((back.attempt, back.run_after), (0, expired));
    assert!(back.dead_lettered_at.is_none() && back.finished_at.is_none());
    let steps = store.job_steps(Scope::All, job.id).await.expect("steps");
    assert!(steps.iter().all(|s| s.state == StepState::Pending));
    let again = store.requeue_job_dead_letter(job.id, expired).await;
    assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");
    let reclaimed = claim(store, "w", expired).await.expect("claim again");
    assert_eq!((reclaimed.id, reclaimed.attempt), (job.id, 1));
}

/// An artifact row for `path`.
fn artifact(path: &str) -> JobArtifact {
    JobArtifact {
        path: path.to_owned(),
        size: 3,
        sha256: "ab".repeat(32),
        object_key: format!("jobs/x/{path}"),
    }
}

/// Worker events get consecutive seqs after the store's status events; a stale lease appends
/// nothing; `Status` events are refused; reads page by seq.
pub async fn job_events_in_seq_order_and_need_lease<S: TestHooks>(store: &S) {
    let owner = create_user(store, "job-events@example.com").await;
    let job = store
        .create_job(new_job(owner.id, "ev", 1, crate::now()), BTreeMap::new())
        .await
        .expect("create");
    let running = claim(store, "w", crate::now()).await.expect("claim");
    let l = lease(&running);
    let ev = |step: Option<&str>, stream, data: &str| NewJobEvent {
        step: step.map(str::to_owned),
        stream,
        data: data.as_bytes().to_vec(),
    };
    let out = store
        .append_job_events(
            &l,
            &[
                ev(None, JobStream::Phase, "pre_execution"),
                ev(Some("build"), JobStream::Stdout, "compiling"),
                ev(Some("build"), JobStream::Stderr, "warning"),
            ],
            crate::now(),
        )
        .await
        .expect("append");
    assert_eq!(out, AppendOutcome::Appended { last_seq: 5 });
    store
        .update_step(&l, step(0, StepState::Succeeded, Some(0)))
        .await
        .expect("step");
    let empty = store.append_job_events(&l, &[], crate::now()).await;
    assert_eq!(
        empty.expect("empty"),
        AppendOutcome::Appended { last_seq: 6 }
    );
    let refused = store
        .append_job_events(&l, &[ev(None, JobStream::Status, "{}")], crate::now())
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    let mut stale = l.clone();
    stale.worker_id = "ghost".into();
    let lost = store
        .append_job_events(&stale, &[ev(None, JobStream::Stdout, "x")], crate::now())
        .await
        .expect("stale");
    assert_eq!(lost, AppendOutcome::LeaseLost);
    let all = store.read_job_events(job.id, 0, 100).await.expect("read");
    let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    let kinds: Vec<_> = all
        .iter()
        .map(|e| (e.stream, e.step.as_deref(), e.attempt))
        .collect();
    assert_eq!(
        kinds,
        [
            (JobStream::Status, None, 0),
            (JobStream::Status, None, 1),
            (JobStream::Phase, None, 1),
            (JobStream::Stdout, Some("build"), 1),
            (JobStream::Stderr, Some("build"), 1),
            (JobStream::Status, Some("build"), 1),
        ]
    );
    assert_eq!(all[3].data, b"compiling");
    let step_event: serde_json::Value = serde_json::from_slice(&all[5].data).expect("json");
    assert_eq!(step_event["state"], "succeeded");
    assert_eq!(step_event["exit_code"], 0);
    let page = store.read_job_events(job.id, 3, 2).await.expect("page");
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
    assert!(
        store
            .read_job_events(JobId::new(), 0, 10)
            .await
            .expect("none")
            .is_empty()
    );
}

/// Artifacts are recorded under the lease (same path replaces) and listed by path, scoped.
pub async fn job_artifacts_recorded_under_lease<S: TestHooks>(store: &S) {
    let owner = create_user(store, "job-art@example.com").await;
    let job = store
        .create_job(new_job(owner.id, "art", 1, crate::now()), BTreeMap::new())
        .await
        .expect("create");
    let running = claim(store, "w", crate::now()).await.expect("claim");
    let l = lease(&running);
    for path in ["artifacts/z.tgz", "artifacts/a.txt"] {
        let w = store
            .record_job_artifact(&l, artifact(path))
            .await
            .expect("record");
        assert_eq!(w, JobWrite::Written);
    }
    let mut replaced = artifact("artifacts/z.tgz");
    replaced.size = 99;
    store
        .record_job_artifact(&l, replaced.clone())
        .await
        .expect("replace");
    let mut stale = l.clone();
    stale.attempt = 7;
    assert_eq!(
        store
            .record_job_artifact(&stale, artifact("artifacts/evil"))
            .await
            .expect("stale"),
        JobWrite::LeaseLost
    );
    let listed = store
        .job_artifacts(Scope::Owner(owner.id), job.id)
        .await
        .expect("list");
    assert_eq!(listed, [artifact("artifacts/a.txt"), replaced]);
    match store
        .complete_job(&l, result(JobStatus::Succeeded))
        .await
        .expect("complete")
    {
        JobCompleteOutcome::Completed(j) => assert_eq!(j.status, JobStatus::Succeeded),
        JobCompleteOutcome::LeaseLost => panic!("lease lost"),
    }
    assert_eq!(
        store
            .job_artifacts(Scope::All, job.id)
            .await
            .expect("kept")
            .len(),
        2
    );
}

/// Waits (bounded) for the first job signal matching `want`.
async fn job_signal(
    rx: &mut tokio::sync::broadcast::Receiver<JobSignal>,
    want: impl Fn(&JobSignal) -> bool,
) -> JobSignal {
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match rx.recv().await {
                Ok(s) if want(&s) => return s,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("job signals closed: {e}"),
            }
        }
    })
    .await
    .expect("job signal within 10 s")
}

/// Creation wakes workers; appends announce their last seq; a cancel request reaches the
/// worker; the release that follows announces the finish.
pub async fn job_signals_work_events_cancel_and_finish<S: TestHooks>(store: &S) {
    let owner = create_user(store, "job-signals@example.com").await;
    let mut work = store.queue_signals().subscribe_work();
    let mut jobs = store.queue_signals().subscribe_jobs();
    work.borrow_and_update();
    let job = store
        .create_job(new_job(owner.id, "sig", 1, crate::now()), BTreeMap::new())
        .await
        .expect("create");
    tokio::time::timeout(std::time::Duration::from_secs(10), work.changed())
        .await
        .expect("work signal")
        .expect("sender alive");
    let running = claim(store, "w", crate::now()).await.expect("claim");
    let l = lease(&running);
    let out = store
        .append_job_events(
            &l,
            &[NewJobEvent {
                step: Some("build".into()),
                stream: JobStream::Stdout,
                data: b"x".to_vec(),
            }],
            crate::now(),
        )
        .await
        .expect("append");
    assert_eq!(out, AppendOutcome::Appended { last_seq: 3 });
    let id = job.id;
    job_signal(
        &mut jobs,
        |s| matches!(s, JobSignal::Events { job_id, last_seq: 3 } if *job_id == id),
    )
    .await;
    store
        .request_job_cancel(Scope::All, id, crate::now())
        .await
        .expect("cancel");
    job_signal(&mut jobs, |s| *s == JobSignal::Cancel(id)).await;
    let out = store
        .release_job(&l, ReleaseReason::Shutdown, crate::now())
        .await
        .expect("release");
    assert_eq!(out, ReleaseOutcome::Cancelled);
    job_signal(&mut jobs, |s| *s == JobSignal::Finished(id)).await;
}
