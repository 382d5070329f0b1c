//! Retention ([`crate::RetentionStore`]): old finished jobs, workflows and hook deliveries
//! are deleted with every row they own (counted per table with raw SQL, so a leftover no
//! trait method reads is still seen); recent, queued and running ones are kept; a workflow's
//! job is only ever deleted with its workflow.

mod workflows;

use std::collections::BTreeMap;

use voidrunner_domain::UserId;

use super::workflows::{fan_nodes, new_workflow, start_node};
use super::{TestHooks, at, create_user, new_delivery, new_job, new_repository};
use crate::{
    DeliveryOutcome, JobArtifact, JobCompleteOutcome, JobId, JobLease, JobResult, JobStatus,
    JobStream, NewJobEvent, StepState, StepUpdate, StoreResult,
};
pub use workflows::*;

/// Raw row counts for the retention cases (implemented by each backend's test support).
#[async_trait::async_trait]
pub trait RetentionHooks: TestHooks {
    /// Rows of `table`; with `key = Some((column, value))` only those whose `column` (an id,
    /// compared as text) equals `value`. Names are fixed identifiers of the schema.
    async fn count_rows(&self, table: &str, key: Option<(&str, &str)>) -> StoreResult<u64>;
}

/// Tables holding a job's rows, with the column naming the job.
const JOB_TABLES: [(&str, &str); 6] = [
    ("jobs", "id"),
    ("job_secrets", "job_id"),
    ("job_steps", "job_id"),
    ("job_events", "job_id"),
    ("job_artifacts", "job_id"),
    ("job_blobs", "job_id"),
];

/// Tables holding a workflow's rows, with the column naming the workflow.
const WORKFLOW_TABLES: [(&str, &str); 6] = [
    ("workflows", "id"),
    ("workflow_nodes", "workflow_id"),
    ("workflow_secrets", "workflow_id"),
    ("workflow_triggers", "workflow_id"),
    ("commit_statuses", "workflow_id"),
    ("jobs", "workflow_id"),
];

/// One hour, in microseconds.
const HOUR: i64 = 3_600_000_000;

/// Rows per table of the thing `id` (by `tables`).
async fn rows_of<S: RetentionHooks>(
    store: &S,
    tables: &[(&str, &str)],
    id: &str,
) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (table, column) in tables {
        let n = store
            .count_rows(table, Some((column, id)))
            .await
            .expect("count rows");
        out.insert(format!("{table}.{column}"), n);
    }
    out
}

/// Rows of a job in each of its tables.
async fn job_rows<S: RetentionHooks>(store: &S, id: JobId) -> BTreeMap<String, u64> {
    rows_of(store, &JOB_TABLES, &id.to_string()).await
}

/// Claims the next job, which must be `id`; returns its lease.
async fn claim_exact<S: TestHooks>(store: &S, id: JobId) -> JobLease {
    let now = crate::now();
    let job = store
        .claim_next_job("retention-worker", at(now, 30_000_000), now, None)
        .await
        .expect("claim")
        .expect("a queued job");
    assert_eq!(job.id, id, "claimed the expected job");
    JobLease::of(&job).expect("lease")
}

/// Creates a job (with a secret and the uploaded tarball), runs it with a step update, output,
/// an artifact and its blob, and completes it as finished at `finished_at`.
async fn finished_job<S: TestHooks>(
    store: &S,
    owner: UserId,
    finished_at: voidrunner_domain::Timestamp,
) -> JobId {
    let job = new_job(owner, "old", 5, crate::now());
    let id = job.id;
    let secrets = BTreeMap::from([("TOKEN".to_owned(), vec![1, 2, 3])]);
    store.create_job(job, secrets).await.expect("create job");
    store
        .put_job_blob(id, "source.tar", b"tarball", crate::now())
        .await
        .expect("tarball");
    let lease = claim_exact(store, id).await;
    fill_running_job(store, &lease).await;
    let result = JobResult {
        status: JobStatus::Succeeded,
        steps: Vec::new(),
        failures: Vec::new(),
        outputs: BTreeMap::new(),
        finished_at,
    };
    match store.complete_job(&lease, result).await.expect("complete") {
        JobCompleteOutcome::Completed(_) => id,
        JobCompleteOutcome::LeaseLost => panic!("lease lost"),
    }
}

/// What a worker writes while a job runs: a step, output, an artifact and its bytes.
async fn fill_running_job<S: TestHooks>(store: &S, lease: &JobLease) {
    let now = crate::now();
    let step = StepUpdate {
        idx: 0,
        state: StepState::Succeeded,
        exit_code: Some(0),
        detail: None,
        started_at: Some(now),
        finished_at: Some(now),
        wall_ms: Some(1),
        cpu_ms: Some(1),
        peak_memory_bytes: Some(1),
    };
    store.update_step(lease, step).await.expect("step");
    let out = NewJobEvent {
        step: Some("build".into()),
        stream: JobStream::Stdout,
        data: b"compiling\n".to_vec(),
    };
    store
        .append_job_events(lease, &[out], now)
        .await
        .expect("events");
    let artifact = JobArtifact {
        path: "dist/app".into(),
        size: 3,
        sha256: "ab".repeat(32),
        object_key: "db:artifacts/dist/app".into(),
    };
    store
        .record_job_artifact(lease, artifact)
        .await
        .expect("artifact");
    store
        .put_job_blob(lease.job_id, "artifacts/dist/app", b"app", now)
        .await
        .expect("artifact blob");
}

/// Old finished standalone jobs go with every row they own, batch by batch; recent, queued
/// and running jobs and a finished job of a running workflow stay.
pub async fn retention_purges_finished_jobs_with_all_rows<S: RetentionHooks>(store: &S) {
    let a = create_user(store, "retention-jobs@example.com").await;
    let now = crate::now();
    let old1 = finished_job(store, a.id, at(now, -3 * HOUR)).await;
    let old2 = finished_job(store, a.id, at(now, -2 * HOUR)).await;
    let recent = finished_job(store, a.id, now).await;
    for (table, n) in job_rows(store, old1).await {
        assert!(n > 0, "the fixture fills {table}");
    }
    // A workflow (still running) whose job finished long ago.
    let wf = store
        .create_workflow(new_workflow(a.id, "wf", now), fan_nodes(), BTreeMap::new())
        .await
        .expect("workflow");
    let wf_job = start_node(store, wf.id, a.id, "prepare").await;
    let lease = claim_exact(store, wf_job).await;
    let result = JobResult {
        status: JobStatus::Succeeded,
        steps: Vec::new(),
        failures: Vec::new(),
        outputs: BTreeMap::new(),
        finished_at: at(now, -3 * HOUR),
    };
    store.complete_job(&lease, result).await.expect("complete");
    // A running and a queued job, created long ago.
    let running = new_job(a.id, "running", 5, at(now, -5 * HOUR));
    let running_id = running.id;
    store.create_job(running, BTreeMap::new()).await.expect("j");
    claim_exact(store, running_id).await;
    let queued = new_job(a.id, "queued", 5, at(now, -5 * HOUR));
    let queued_id = queued.id;
    store.create_job(queued, BTreeMap::new()).await.expect("j");
    let kept = [recent, wf_job, running_id, queued_id];
    let before: Vec<_> = rows_of_jobs(store, &kept).await;

    let cutoff = at(now, -HOUR);
    assert_eq!(store.purge_jobs(cutoff, 1).await.expect("purge"), 1);
    assert!(job_rows(store, old1).await.values().all(|n| *n == 0));
    assert_eq!(
        store
            .get_job(crate::Scope::All, old2)
            .await
            .map(|j| j.id)
            .ok(),
        Some(old2)
    );
    assert_eq!(store.purge_jobs(cutoff, 10).await.expect("purge"), 1);
    assert_eq!(
        store.purge_jobs(cutoff, 10).await.expect("purge"),
        0,
        "idempotent"
    );
    for old in [old1, old2] {
        let rows = job_rows(store, old).await;
        assert!(rows.values().all(|n| *n == 0), "{old}: {rows:?}");
    }
    assert_eq!(rows_of_jobs(store, &kept).await, before, "the rest is kept");
    assert_eq!(
        store.count_rows("jobs", None).await.expect("count"),
        4,
        "recent, workflow, running and queued jobs"
    );
}

/// Rows of each job in `ids`, in order.
async fn rows_of_jobs<S: RetentionHooks>(store: &S, ids: &[JobId]) -> Vec<BTreeMap<String, u64>> {
    let mut out = Vec::new();
    for id in ids {
        out.push(job_rows(store, *id).await);
    }
    out
}

/// Deliveries received before the cutoff go, batch by batch; afterwards the same delivery id
/// is new again (the duplicate guard only spans the retention window).
pub async fn retention_purges_old_hook_deliveries<S: RetentionHooks>(store: &S) {
    let a = create_user(store, "retention-hooks@example.com").await;
    let repo = store
        .create_repository(
            new_repository(a.id, "acme/retention"),
            vec![1],
            BTreeMap::new(),
        )
        .await
        .expect("repo");
    let now = crate::now();
    for (id, age) in [("old-1", 3), ("old-2", 2), ("old-3", 2), ("new", 0)] {
        let mut d = new_delivery(repo.id, id);
        d.received_at = at(now, -age * HOUR);
        let got = store.record_delivery(d, Vec::new()).await.expect("record");
        assert_eq!(got, DeliveryOutcome::Created(Vec::new()));
    }
    let cutoff = at(now, -HOUR);
    assert_eq!(
        store.purge_hook_deliveries(cutoff, 2).await.expect("purge"),
        2
    );
    let count = |id: &'static str| async move {
        store
            .count_rows("hook_deliveries", Some(("delivery_id", id)))
            .await
            .expect("count")
    };
    assert_eq!(count("old-1").await, 0, "oldest first");
    assert_eq!(
        store.purge_hook_deliveries(cutoff, 2).await.expect("purge"),
        1
    );
    assert_eq!(
        store.purge_hook_deliveries(cutoff, 2).await.expect("purge"),
        0
    );
    assert_eq!(count("new").await, 1, "recent kept");
    assert_eq!(
        store.count_rows("hook_deliveries", None).await.expect("n"),
        1
    );
    let again = store
        .record_delivery(new_delivery(repo.id, "old-1"), Vec::new())
        .await
        .expect("again");
    assert_eq!(
        again,
        DeliveryOutcome::Created(Vec::new()),
        "a purged delivery is new again"
    );
}
