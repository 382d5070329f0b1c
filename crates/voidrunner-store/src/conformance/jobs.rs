//! CI jobs: creation with steps and secrets, scope, claim order, fencing, cancel,
//! release/retry/dead letter, the reaper, the event log and artifacts (the lifecycle cases
//! are in `jobs/lifecycle.rs`).

mod lifecycle;

use std::collections::{BTreeMap, HashSet};

use voidrunner_domain::{Timestamp, UserId};

use super::{TestHooks, at, create_user};

use crate::{
    Job, JobCompleteOutcome, JobFailure, JobId, JobLease, JobResult, JobSignal, JobStatus,
    JobStream, JobWrite, LeaseStatus, NewJob, Scope, StepState, StepUpdate, StoreError,
};
pub use lifecycle::*;

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
        .claim_next_job(worker, at(now, 30_000_000), now, None)
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
    let stats = store.job_queue_stats().await.expect("stats");
    assert_eq!(
        (stats.queued, stats.running, stats.dead_lettered),
        (1, 4, 0)
    );
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
                    .claim_next_job(&format!("w{w}"), at(now, 30_000_000), now, None)
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

/// A per-user limit of 2 with six claimers racing: the owner with the older burst gets
/// exactly 2 running jobs, the other owner is not blocked behind it, and a finished job
/// frees a place for the next one of its owner.
pub async fn per_user_job_limit_holds_under_concurrent_claimers<S: TestHooks>(store: &S) {
    let burst = create_user(store, "job-burst@example.com").await;
    let other = create_user(store, "job-other@example.com").await;
    let start = crate::now();
    for i in 0..6u8 {
        let j = new_job(burst.id, &format!("b{i}"), 5, at(start, i64::from(i)));
        store.create_job(j, BTreeMap::new()).await.expect("create");
    }
    for i in 0..2u8 {
        let j = new_job(other.id, &format!("o{i}"), 5, at(start, 100 + i64::from(i)));
        store.create_job(j, BTreeMap::new()).await.expect("create");
    }
    let claimers: Vec<_> = (0..6)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let now = crate::now();
                while let Some(j) = store
                    .claim_next_job(&format!("q{w}"), at(now, 30_000_000), now, Some(2))
                    .await
                    .expect("claim")
                {
                    got.push(j);
                }
                got
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for c in futures::future::join_all(claimers).await {
        claimed.extend(c.expect("claimer panicked"));
    }
    let of = |owner: UserId| claimed.iter().filter(|j| j.owner_id == owner).count();
    assert_eq!(of(burst.id), 2, "the burst owner is held to its limit");
    assert_eq!(
        of(other.id),
        2,
        "the other owner is not blocked behind the burst"
    );
    let now = crate::now();
    assert!(
        store
            .claim_next_job("q9", at(now, 30_000_000), now, Some(2))
            .await
            .expect("claim")
            .is_none(),
        "both owners are at their limit"
    );
    let done = claimed
        .iter()
        .find(|j| j.owner_id == burst.id)
        .expect("a burst job");
    store
        .complete_job(&lease(done), result(JobStatus::Succeeded))
        .await
        .expect("complete");
    let next = claim_limited(store, "q9").await.expect("a place is free");
    assert_eq!(next.owner_id, burst.id);
    assert!(claim_limited(store, "q9").await.is_none(), "full again");
    let unlimited = claim(store, "q9", crate::now()).await.expect("no limit");
    assert_eq!(unlimited.owner_id, burst.id);
}

/// Claims with a per-user limit of 2.
async fn claim_limited<S: TestHooks>(store: &S, worker: &str) -> Option<Job> {
    let now = crate::now();
    store
        .claim_next_job(worker, at(now, 30_000_000), now, Some(2))
        .await
        .expect("claim")
}

/// Blobs (the uploaded tarball, artifacts) round-trip as bytes, are replaced by name, and are
/// only readable within the job's scope.
pub async fn job_blobs_round_trip_and_scope<S: TestHooks>(store: &S) {
    let owner = create_user(store, "job-blobs@example.com").await;
    let other = create_user(store, "job-blobs-other@example.com").await;
    let job = store
        .create_job(new_job(owner.id, "blobs", 5, crate::now()), BTreeMap::new())
        .await
        .expect("create");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    store
        .put_job_blob(job.id, "source.tar", &bytes, crate::now())
        .await
        .expect("put");
    let mine = Scope::Owner(owner.id);
    assert_eq!(
        store
            .job_blob(mine, job.id, "source.tar")
            .await
            .expect("get"),
        bytes
    );
    store
        .put_job_blob(job.id, "source.tar", b"replaced", crate::now())
        .await
        .expect("replace");
    assert_eq!(
        store
            .job_blob(Scope::All, job.id, "source.tar")
            .await
            .expect("get"),
        b"replaced"
    );
    assert!(matches!(
        store.job_blob(mine, job.id, "artifacts/none").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .job_blob(Scope::Owner(other.id), job.id, "source.tar")
            .await,
        Err(StoreError::NotFound)
    ));
}
