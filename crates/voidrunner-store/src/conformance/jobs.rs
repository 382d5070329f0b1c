//! CI jobs: creation with steps and secrets, scope, claim order, fencing, cancel,
//! release/retry/dead letter, the reaper, the event log and artifacts.

use std::collections::{BTreeMap, HashSet};

use voidrunner_domain::{Timestamp, UserId};

use super::{TestHooks, at, create_user};
use crate::{
    AppendOutcome, Job, JobArtifact, JobCompleteOutcome, JobFailure, JobId, JobLease, JobResult,
    JobSignal, JobStatus, JobStream, JobWrite, LeaseStatus, NewJob, NewJobEvent, ReleaseOutcome,
    ReleaseReason, Scope, StepState, StepUpdate, StoreError,
};

/// A job of `owner` with steps `build`, `test`, `package`.
pub fn new_job(owner: UserId, name: &str, priority: u8, created_at: Timestamp) -> NewJob {
    NewJob {
        id: JobId::new(),
        owner_id: owner,
        name: name.to_owned(),
        definition: serde_json::json!({"name": name, "steps": [
            {"name": "build", "command": "make"},
            {"name": "test", "command": "make test", "depends_on": ["build"]},
            {"name": "package", "command": "tar", "depends_on": ["test"]},
        ]}),
        steps: vec!["build".into(), "test".into(), "package".into()],
        priority,
        max_attempts: 2,
        request_id: Some("req-1".into()),
        has_tarball: true,
        created_at,
    }
}

/// Claims the next job as `worker` at `now` with a 30 s lease (panics on a store error).
async fn claim<S: TestHooks>(store: &S, worker: &str, now: Timestamp) -> Option<Job> {
    store
        .claim_next_job(worker, at(now, 30_000_000), now)
        .await
        .expect("claim job")
}

/// The lease of a claimed job.
fn lease(j: &Job) -> JobLease {
    JobLease::of(j).expect("claimed job has a lease owner")
}

/// A finished step update.
fn step(idx: u32, state: StepState, exit_code: Option<i32>) -> StepUpdate {
    let now = crate::now();
    StepUpdate {
        idx,
        state,
        exit_code,
        detail: None,
        started_at: Some(now),
        finished_at: Some(now),
        wall_ms: Some(15),
        cpu_ms: Some(4),
        peak_memory_bytes: Some(1 << 20),
    }
}

/// A result with `status`, one failure and one output.
fn result(status: JobStatus) -> JobResult {
    JobResult {
        status,
        steps: vec![step(2, StepState::Skipped, None)],
        failures: vec![JobFailure {
            phase: "post_execution".into(),
            reason: "hook exited 1".into(),
        }],
        outputs: BTreeMap::from([("version".to_owned(), "1.2.3".to_owned())]),
        finished_at: crate::now(),
    }
}

/// Statuses of the job-level status events, in order.
async fn job_statuses<S: TestHooks>(store: &S, id: JobId) -> Vec<String> {
    let events = store.read_job_events(id, 0, 1000).await.expect("events");
    events
        .iter()
        .filter(|e| e.stream == JobStream::Status && e.step.is_none())
        .map(|e| {
            let v: serde_json::Value = serde_json::from_slice(&e.data).expect("json");
            v["status"].as_str().expect("status").to_owned()
        })
        .collect()
}

/// Everything given at creation reads back; steps start pending; secrets are kept sealed.
pub async fn job_round_trip_with_steps<S: TestHooks>(store: &S) {
    let owner = create_user(store, "jobs@example.com").await;
    let new = new_job(owner.id, "build-and-test", 7, crate::now());
    let secrets = BTreeMap::from([("TOKEN".to_owned(), vec![1, 2, 3])]);
    let job = store
        .create_job(new.clone(), secrets.clone())
        .await
        .expect("create");
    assert_eq!(job.id, new.id);
    assert_eq!(job.owner_id, owner.id);
    assert_eq!(job.name, "build-and-test");
    assert_eq!(job.definition, new.definition);
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!((job.priority, job.attempt, job.max_attempts), (7, 0, 2));
    assert_eq!(job.run_after, new.created_at);
    assert_eq!(job.created_at, new.created_at);
    assert_eq!(job.request_id.as_deref(), Some("req-1"));
    assert!(job.has_tarball);
    assert!(job.failures.is_empty() && job.outputs.is_empty());
    assert_eq!(store.get_job(Scope::All, job.id).await.expect("get"), job);
    let steps = store.job_steps(Scope::All, job.id).await.expect("steps");
    let names: Vec<_> = steps.iter().map(|s| (s.idx, s.name.as_str())).collect();
    assert_eq!(names, [(0, "build"), (1, "test"), (2, "package")]);
    assert!(steps.iter().all(|s| s.state == StepState::Pending));
    assert_eq!(store.job_secrets(job.id).await.expect("secrets"), secrets);
    assert_eq!(job_statuses(store, job.id).await, ["queued"]);
    let dup = store.create_job(new, BTreeMap::new()).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let mut orphan = new_job(UserId::new(), "orphan", 1, crate::now());
    orphan.steps.clear();
    let orphan = store.create_job(orphan, BTreeMap::new()).await;
    assert!(matches!(orphan, Err(StoreError::Conflict(_))), "{orphan:?}");
}

/// Another user's job is `NotFound` everywhere; listing pages and filters by status.
pub async fn jobs_scoped_to_owner<S: TestHooks>(store: &S) {
    let alice = create_user(store, "alice-jobs@example.com").await;
    let bob = create_user(store, "bob-jobs@example.com").await;
    let base = crate::now();
    let mut mine = Vec::new();
    for i in 0..5 {
        let j = new_job(alice.id, &format!("a{i}"), 1, at(base, i));
        mine.push(
            store
                .create_job(j, BTreeMap::new())
                .await
                .expect("create")
                .id,
        );
    }
    let theirs = store
        .create_job(new_job(bob.id, "b", 1, base), BTreeMap::new())
        .await
        .expect("create");
    let as_alice = Scope::Owner(alice.id);
    let nf = |r: Result<(), StoreError>| assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    nf(store.get_job(as_alice, theirs.id).await.map(|_| ()));
    nf(store.job_steps(as_alice, theirs.id).await.map(|_| ()));
    nf(store.job_artifacts(as_alice, theirs.id).await.map(|_| ()));
    nf(store
        .request_job_cancel(as_alice, theirs.id, base)
        .await
        .map(|_| ()));
    nf(store.get_job(Scope::All, JobId::new()).await.map(|_| ()));
    assert_eq!(
        store
            .get_job(Scope::Owner(bob.id), theirs.id)
            .await
            .expect("own")
            .status,
        JobStatus::Queued
    );
    // Pages of 2, newest first, no gaps or duplicates, only alice's jobs.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_jobs(as_alice, None, after, 2)
            .await
            .expect("list");
        seen.extend(page.items.iter().map(|j| j.id));
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    mine.reverse();
    assert_eq!(seen, mine);
    store
        .request_job_cancel(as_alice, mine[0], base)
        .await
        .expect("cancel");
    let cancelled = store
        .list_jobs(as_alice, Some(JobStatus::Cancelled), None, 10)
        .await
        .expect("list");
    assert_eq!(
        cancelled.items.iter().map(|j| j.id).collect::<Vec<_>>(),
        [mine[0]]
    );
    let all = store
        .list_jobs(Scope::All, Some(JobStatus::Queued), None, 100)
        .await
        .expect("all");
    assert_eq!(all.items.len(), 5);
}

/// Higher priority first, then oldest, and never before `run_after`.
pub async fn job_claim_order_priority_then_fifo<S: TestHooks>(store: &S) {
    let owner = create_user(store, "job-order@example.com").await;
    let base = crate::now();
    for (name, priority, created) in [
        ("low-old", 1, 0),
        ("high-new", 9, 30),
        ("high-old", 9, 10),
        ("top", 10, 40),
        ("future", 10, 60_000_000),
    ] {
        let j = new_job(owner.id, name, priority, at(base, created));
        store.create_job(j, BTreeMap::new()).await.expect("create");
    }
    let now = at(base, 100);
    let mut order = Vec::new();
    while let Some(j) = claim(store, "w", now).await {
        assert_eq!(j.status, JobStatus::Running);
        assert_eq!(j.attempt, 1);
        assert_eq!(j.worker_id.as_deref(), Some("w"));
        assert_eq!(j.lease_owner.as_deref(), Some("w"));
        assert_eq!(j.started_at, Some(now));
        assert_eq!(j.lease_until, Some(at(now, 30_000_000)));
        order.push(j.name);
    }
    assert_eq!(order, ["top", "high-old", "high-new", "low-old"]);
    let later = claim(store, "w", at(base, 60_000_000)).await.expect("due");
    assert_eq!(later.name, "future");
}

/// Only the current lease completes, once; a stale or second completion writes nothing.
pub async fn job_complete_exactly_once<S: TestHooks>(store: &S) {
    let owner = create_user(store, "job-once@example.com").await;
    let job = store
        .create_job(new_job(owner.id, "once", 5, crate::now()), BTreeMap::new())
        .await
        .expect("create");
    let running = claim(store, "w1", crate::now()).await.expect("claim");
    let l = lease(&running);
    let mut stale = l.clone();
    stale.attempt += 1;
    let mut other = l.clone();
    other.worker_id = "w2".into();
    for bad in [&stale, &other] {
        let r = store
            .complete_job(bad, result(JobStatus::Succeeded))
            .await
            .expect("complete");
        assert_eq!(r, JobCompleteOutcome::LeaseLost);
        let w = store
            .update_step(bad, step(0, StepState::Failed, Some(1)))
            .await
            .expect("step");
        assert_eq!(w, JobWrite::LeaseLost);
        assert_eq!(
            store.heartbeat_job(bad, crate::now()).await.expect("hb"),
            LeaseStatus::Lost
        );
    }
    let running_status = store.complete_job(&l, result(JobStatus::Running)).await;
    assert!(
        matches!(running_status, Err(StoreError::Conflict(_))),
        "{running_status:?}"
    );
    assert_eq!(
        store
            .update_step(&l, step(0, StepState::Succeeded, Some(0)))
            .await
            .expect("step"),
        JobWrite::Written
    );
    let unknown = store
        .update_step(&l, step(9, StepState::Failed, None))
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
    let mut signals = store.queue_signals().subscribe_jobs();
    let done = match store
        .complete_job(&l, result(JobStatus::Failed))
        .await
        .expect("complete")
    {
        JobCompleteOutcome::Completed(j) => *j,
        JobCompleteOutcome::LeaseLost => panic!("lease lost"),
    };
    assert_eq!(done.status, JobStatus::Failed);
    assert!(done.finished_at.is_some() && done.lease_owner.is_none());
    assert_eq!(done.failures[0].phase, "post_execution");
    assert_eq!(done.outputs["version"], "1.2.3");
    assert_eq!(store.get_job(Scope::All, job.id).await.expect("get"), done);
    let again = store
        .complete_job(&l, result(JobStatus::Succeeded))
        .await
        .expect("again");
    assert_eq!(again, JobCompleteOutcome::LeaseLost);
    let steps = store.job_steps(Scope::All, job.id).await.expect("steps");
    let states: Vec<_> = steps.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [StepState::Succeeded, StepState::Pending, StepState::Skipped]
    );
    assert_eq!(steps[0].exit_code, Some(0));
    assert_eq!(
        (
            steps[0].wall_ms,
            steps[0].cpu_ms,
            steps[0].peak_memory_bytes
        ),
        (Some(15), Some(4), Some(1 << 20))
    );
    assert_eq!(
        job_statuses(store, job.id).await,
        ["queued", "running", "failed"]
    );
    let finished = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            if let Ok(JobSignal::Finished(id)) = signals.recv().await {
                return id;
            }
        }
    })
    .await
    .expect("finished signal");
    assert_eq!(finished, job.id);
}

/// Eight claimers over 80 jobs: every job claimed exactly once.
pub async fn concurrent_job_claimers_never_share<S: TestHooks>(store: &S) {
    let owner = create_user(store, "job-race@example.com").await;
    let mut all = HashSet::new();
    for i in 0..80u8 {
        let j = new_job(owner.id, &format!("j{i}"), i % 3, crate::now());
        all.insert(
            store
                .create_job(j, BTreeMap::new())
                .await
                .expect("create")
                .id,
        );
    }
    let claimers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let now = crate::now();
                while let Some(j) = store
                    .claim_next_job(&format!("w{w}"), at(now, 30_000_000), now)
                    .await
                    .expect("claim")
                {
                    got.push(j.id);
                }
                got
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for c in futures::future::join_all(claimers).await {
        claimed.extend(c.expect("claimer panicked"));
    }
    assert_eq!(claimed.len(), all.len(), "no job claimed twice");
    assert_eq!(claimed.into_iter().collect::<HashSet<_>>(), all);
}

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
    assert_eq!(
        job_statuses(store, job.id).await,
        [
            "queued", "running", "queued", "running", "queued", "running", "failed"
        ]
    );
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
