//! The scheduler's sweep is the safety net for lost signals, and it does not re-read
//! workflows it passed recently: a node's job is completed through a second handle on the
//! same SQLite file, whose signals the scheduler (on the first handle) never hears, exactly
//! like a lost `NOTIFY`. No sandbox is needed: the test claims and completes the jobs itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use voidrunner_jobs::Format;
use voidrunner_jobs::scheduler::{SchedulerConfig, WorkflowScheduler};
use voidrunner_jobs::workflow::{instantiate, parse_workflow};
use voidrunner_store::{
    JobLease, JobResult, JobSignal, JobStatus, JobStore, NewWorkflow, NodeStatus, Scope, Store,
    WorkflowId, WorkflowStore,
};
use voidrunner_store_sqlite::{SqliteOptions, SqliteStore};

const CHAIN: &str = "name: chain\njobs:\n  a: {job: {name: a, steps: [{name: s, command: 'true'}]}}\n  b: {depends_on: [a], job: {name: b, steps: [{name: s, command: 'true'}]}}\n";

struct Env {
    _dir: tempfile::TempDir,
    /// The scheduler's handle.
    seen: Arc<dyn Store>,
    /// Another handle on the same file: its signals never reach the scheduler.
    unseen: SqliteStore,
    id: WorkflowId,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("voidrunner.db");
    let seen = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .expect("open");
    let unseen = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .expect("open again");
    let owner = voidrunner_store::conformance::create_user(&seen, "sweep@example.com").await;
    let def = parse_workflow(CHAIN, Format::Yaml).expect("valid");
    let nodes = instantiate(&def, &BTreeMap::new(), &BTreeMap::new())
        .expect("instantiate")
        .into_iter()
        .map(|s| s.into_new_node(None).expect("json"))
        .collect();
    let id = WorkflowId::new();
    let new = NewWorkflow {
        id,
        owner_id: owner.id,
        name: def.name.clone(),
        definition: serde_json::to_value(&def).expect("json"),
        vars: def.vars.clone(),
        trusted: true,
        files: BTreeMap::new(),
        origin: serde_json::json!({"kind": "test"}),
        request_id: None,
        created_at: voidrunner_store::now(),
    };
    seen.create_workflow(new, nodes, BTreeMap::new())
        .await
        .expect("create");
    Env {
        _dir: dir,
        seen: Arc::new(seen),
        unseen,
        id,
    }
}

/// The status of node `name`, read through the unseen handle.
async fn node(env: &Env, name: &str) -> NodeStatus {
    env.unseen
        .workflow_nodes(Scope::All, env.id)
        .await
        .expect("nodes")
        .into_iter()
        .find(|n| n.name == name)
        .expect("node")
        .status
}

async fn wait_for(env: &Env, name: &str, want: NodeStatus, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if node(env, name).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Claims node `a`'s job and completes it `succeeded` through the unseen handle; answers
/// the job id.
async fn finish_a_unseen(env: &Env) -> voidrunner_store::JobId {
    let now = voidrunner_store::now();
    let job = env
        .unseen
        .claim_next_job("t", now + chrono::Duration::seconds(60), now, None)
        .await
        .expect("claim")
        .expect("a's job is queued");
    let lease = JobLease::of(&job).expect("lease");
    let result = JobResult {
        status: JobStatus::Succeeded,
        steps: Vec::new(),
        failures: Vec::new(),
        outputs: BTreeMap::new(),
        finished_at: voidrunner_store::now(),
    };
    env.unseen
        .complete_job(&lease, result)
        .await
        .expect("complete");
    job.id
}

fn scheduler(env: &Env, revisit: Duration) -> WorkflowScheduler {
    WorkflowScheduler::start(
        env.seen.clone(),
        SchedulerConfig {
            sweep_interval: Duration::from_millis(20),
            revisit_after: revisit,
            ..SchedulerConfig::default()
        },
    )
}

#[tokio::test]
async fn a_lost_signal_is_caught_by_the_sweep_within_the_revisit_time() {
    let env = env().await;
    let s = scheduler(&env, Duration::from_millis(300));
    // Never passed by this node: the first sweep starts the workflow.
    assert!(wait_for(&env, "a", NodeStatus::Queued, Duration::from_secs(10)).await);
    finish_a_unseen(&env).await;
    assert!(
        wait_for(&env, "b", NodeStatus::Queued, Duration::from_secs(10)).await,
        "the sweep passed the workflow again after the revisit time"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_recently_passed_workflow_is_left_to_its_signals() {
    let env = env().await;
    let s = scheduler(&env, Duration::from_secs(3600));
    assert!(wait_for(&env, "a", NodeStatus::Queued, Duration::from_secs(10)).await);
    let job = finish_a_unseen(&env).await;
    // 25 sweeps run meanwhile; none re-reads the workflow passed moments ago.
    assert!(
        !wait_for(&env, "b", NodeStatus::Queued, Duration::from_millis(500)).await,
        "a sweep re-read a workflow passed less than the revisit time ago"
    );
    // The finished signal (here sent by hand, as the worker's store would) passes it at once.
    env.seen
        .queue_signals()
        .notify_job(JobSignal::Finished(job));
    assert!(wait_for(&env, "b", NodeStatus::Queued, Duration::from_secs(10)).await);
    s.stop().await;
}
