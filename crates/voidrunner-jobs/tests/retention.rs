//! The CI retention cleaner end to end on a real SQLite store: an old finished job (with its
//! uploaded tarball), an old finished workflow (with its job) and an old hook delivery are
//! deleted and counted in the metric; a recent job, a queued job, a running workflow and a
//! recent delivery stay; two cleaners racing delete each row once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use voidrunner_domain::Timestamp;
use voidrunner_jobs::retention::{RetentionCleaner, RetentionReport, RetentionSettings};
use voidrunner_metrics::Metrics;
use voidrunner_store::conformance::{
    at, create_user, fan_nodes, new_delivery, new_job, new_repository, new_workflow, start_node,
};
use voidrunner_store::{
    JobId, JobStore, RepositoryStore, Scope, Store, StoreError, WorkflowId, WorkflowState,
    WorkflowStore,
};
use voidrunner_store_sqlite::SqliteStore;

/// One hour, in microseconds.
const HOUR: i64 = 3_600_000_000;

/// What the fixture created.
struct Fixture {
    old_job: JobId,
    recent_job: JobId,
    queued_job: JobId,
    old_workflow: WorkflowId,
    old_workflow_job: JobId,
    running_workflow: WorkflowId,
    repo: voidrunner_store::RepositoryId,
}

/// A standalone job cancelled while queued at `finished_at` (so it is finished then).
async fn finished_job(
    store: &SqliteStore,
    owner: voidrunner_domain::UserId,
    t: Timestamp,
) -> JobId {
    let job = new_job(owner, "build", 5, t);
    let id = job.id;
    store.create_job(job, BTreeMap::new()).await.expect("job");
    store
        .put_job_blob(id, "source.tar", b"tarball", t)
        .await
        .expect("tarball");
    store
        .request_job_cancel(Scope::All, id, t)
        .await
        .expect("cancel");
    id
}

async fn fixture(store: &SqliteStore, now: Timestamp) -> Fixture {
    let owner = create_user(store, "retention@example.com").await.id;
    let old = at(now, -48 * HOUR);
    let old_job = finished_job(store, owner, old).await;
    let recent_job = finished_job(store, owner, now).await;
    let queued = new_job(owner, "queued", 5, old);
    let queued_job = queued.id;
    store
        .create_job(queued, BTreeMap::new())
        .await
        .expect("job");

    let wf = new_workflow(owner, "old", old);
    let old_workflow = wf.id;
    store
        .create_workflow(wf, fan_nodes(), BTreeMap::new())
        .await
        .expect("workflow");
    let old_workflow_job = start_node(store, old_workflow, owner, "prepare").await;
    store
        .request_job_cancel(Scope::All, old_workflow_job, old)
        .await
        .expect("cancel");
    let finished = store
        .finish_workflow(
            old_workflow,
            WorkflowState::Cancelled,
            BTreeMap::new(),
            None,
            old,
        )
        .await
        .expect("finish");
    assert!(finished);
    let running = new_workflow(owner, "running", old);
    let running_workflow = running.id;
    store
        .create_workflow(running, fan_nodes(), BTreeMap::new())
        .await
        .expect("workflow");

    let repo = store
        .create_repository(new_repository(owner, "acme/app"), vec![1], BTreeMap::new())
        .await
        .expect("repo");
    for (id, t) in [("old", old), ("recent", now)] {
        let mut d = new_delivery(repo.id, id);
        d.received_at = t;
        store
            .record_delivery(d, Vec::new())
            .await
            .expect("delivery");
    }
    Fixture {
        old_job,
        recent_job,
        queued_job,
        old_workflow,
        old_workflow_job,
        running_workflow,
        repo: repo.id,
    }
}

fn settings(batch: u32) -> RetentionSettings {
    RetentionSettings {
        job_max_age: Some(Duration::from_secs(24 * 3600)),
        delivery_max_age: Some(Duration::from_secs(24 * 3600)),
        batch,
        interval: Duration::from_secs(3600),
    }
}

/// Whether a read answered `NotFound`.
fn gone<T>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound))
}

fn expired(metrics: &Metrics, kind: &str) -> f64 {
    let scrape = voidrunner_metrics::testing::parse(&metrics.render(None)).expect("parse");
    scrape
        .value("voidrunner_jobs_expired_total", &[("kind", kind)])
        .unwrap_or(0.0)
}

async fn assert_outcome(store: &SqliteStore, f: &Fixture) {
    assert!(
        gone(store.get_job(Scope::All, f.old_job).await),
        "old job deleted"
    );
    assert!(
        gone(store.job_blob(Scope::All, f.old_job, "source.tar").await),
        "its tarball too"
    );
    assert!(
        gone(store.get_workflow(Scope::All, f.old_workflow).await),
        "old workflow deleted"
    );
    assert!(
        gone(store.get_job(Scope::All, f.old_workflow_job).await),
        "with its job"
    );
    for id in [f.recent_job, f.queued_job] {
        store.get_job(Scope::All, id).await.expect("kept job");
    }
    let running = store
        .get_workflow(Scope::All, f.running_workflow)
        .await
        .expect("running workflow kept");
    assert_eq!(running.status, WorkflowState::Running);
}

#[tokio::test]
async fn cleaner_deletes_old_finished_history_and_counts_it() {
    let (store, _dir) = voidrunner_store_sqlite::testing::fresh_store().await;
    let now = voidrunner_store::now();
    let f = fixture(&store, now).await;
    let metrics = Metrics::new();
    let dyn_store: Arc<dyn Store> = Arc::new(store.clone());
    // Batches of one: the loop must go on while batches come back full.
    let cleaner = RetentionCleaner::new(dyn_store, settings(1), Some(metrics.clone()));
    let report = cleaner.run_pass(now).await;
    assert_eq!(
        report,
        RetentionReport {
            jobs: 1,
            workflows: 1,
            deliveries: 1,
            failed: 0
        }
    );
    assert_outcome(&store, &f).await;
    for kind in ["job", "workflow", "delivery"] {
        assert_eq!(expired(&metrics, kind), 1.0, "{kind}");
    }
    let again = cleaner.run_pass(now).await;
    assert_eq!(
        again,
        RetentionReport::default(),
        "a second pass finds nothing"
    );

    let delivery = store
        .record_delivery(new_delivery(f.repo, "old"), Vec::new())
        .await
        .expect("redelivery");
    assert_eq!(
        delivery,
        voidrunner_store::DeliveryOutcome::Created(Vec::new()),
        "a redelivery older than the window runs again"
    );
}

#[tokio::test]
async fn racing_cleaners_delete_each_row_once() {
    let (store, _dir) = voidrunner_store_sqlite::testing::fresh_store().await;
    let now = voidrunner_store::now();
    let f = fixture(&store, now).await;
    let dyn_store: Arc<dyn Store> = Arc::new(store.clone());
    let a = RetentionCleaner::new(dyn_store.clone(), settings(1), None);
    let b = RetentionCleaner::new(dyn_store, settings(1), None);
    let (ra, rb) = tokio::join!(a.run_pass(now), b.run_pass(now));
    assert_eq!((ra.failed, rb.failed), (0, 0));
    assert_eq!(ra.jobs + rb.jobs, 1);
    assert_eq!(ra.workflows + rb.workflows, 1);
    assert_eq!(ra.deliveries + rb.deliveries, 1);
    assert_outcome(&store, &f).await;
}

#[tokio::test]
async fn spawned_cleaner_runs_a_pass_at_start_and_stops() {
    let (store, _dir) = voidrunner_store_sqlite::testing::fresh_store().await;
    let f = fixture(&store, voidrunner_store::now()).await;
    let metrics = Metrics::new();
    let dyn_store: Arc<dyn Store> = Arc::new(store.clone());
    let task = RetentionCleaner::new(dyn_store, settings(100), Some(metrics.clone())).spawn();
    // Wait for the first pass (it starts at once), bounded.
    let deadline = Instant::now() + Duration::from_secs(20);
    while expired(&metrics, "delivery") < 1.0 {
        assert!(Instant::now() < deadline, "no pass within 20 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.stop().await;
    assert_outcome(&store, &f).await;
}
