//! Workflow overhead (issue 10): how long the durable scheduler takes to hand over from one
//! node's finished job to the next node's job, and what a graph of trivial jobs costs end to
//! end, on a real SQLite store with the real job worker, scheduler and sandbox.
//! Run with `cargo bench -p voidrunner-jobs --bench workflows` (root: the sandbox needs it).

#[path = "../tests/common/mod.rs"]
#[expect(dead_code, reason = "the benchmark uses a subset of the test helpers")]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use voidrunner_jobs::Format;
use voidrunner_jobs::runner::RunnerConfig;
use voidrunner_jobs::scheduler::{SchedulerConfig, WorkflowScheduler, advance};
use voidrunner_jobs::server::{JobWorker, JobWorkerConfig};
use voidrunner_jobs::source::SourcePolicy;
use voidrunner_jobs::workflow::{instantiate, parse_workflow};
use voidrunner_sandbox::Limits;
use voidrunner_store::{NewWorkflow, RetryPolicy, Scope, Store, WorkflowId, WorkflowState};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

const JOB: &str = "{name: n, steps: [{name: s, command: 'true'}]}";

/// `n` nodes, each depending on the previous one.
fn chain(n: usize) -> String {
    let mut s = String::from("name: chain\njobs:\n");
    for i in 0..n {
        let needs = if i == 0 {
            String::new()
        } else {
            format!(", needs: [n{}]", i - 1)
        };
        s.push_str(&format!("  n{i}: {{job: {JOB}{needs}}}\n"));
    }
    s
}

/// One root, `n` parallel instances, one join.
fn fan(n: usize) -> String {
    let items: Vec<String> = (0..n).map(|i| format!("i{i}")).collect();
    format!(
        "name: fan\njobs:\n  root: {{job: {JOB}}}\n  mid: {{job: {JOB}, needs: [root], for_each: [{}]}}\n  join: {{job: {JOB}, needs: [mid]}}\n",
        items.join(", ")
    )
}

async fn submit(
    store: &Arc<dyn Store>,
    owner: voidrunner_domain::UserId,
    yaml: &str,
) -> WorkflowId {
    let def = parse_workflow(yaml, Format::Yaml).expect("valid");
    let nodes = instantiate(&def, &BTreeMap::new(), &BTreeMap::new())
        .expect("instantiate")
        .into_iter()
        .map(|s| s.into_new_node(None).expect("json"))
        .collect();
    let id = WorkflowId::new();
    let new = NewWorkflow {
        id,
        owner_id: owner,
        name: def.name.clone(),
        definition: serde_json::to_value(&def).expect("json"),
        vars: BTreeMap::new(),
        trusted: true,
        files: BTreeMap::new(),
        origin: serde_json::json!({"kind": "bench"}),
        request_id: None,
        created_at: voidrunner_store::now(),
    };
    store
        .create_workflow(new, nodes, BTreeMap::new())
        .await
        .expect("create");
    advance(&**store, id).await.expect("first pass");
    id
}

/// Runs `yaml` to its end: (wall ms, hand-over gaps in ms: a node's job created minus the
/// latest finish among its dependencies' jobs).
async fn run(
    store: &Arc<dyn Store>,
    owner: voidrunner_domain::UserId,
    yaml: &str,
) -> (f64, Vec<f64>) {
    let t = Instant::now();
    let id = submit(store, owner, yaml).await;
    loop {
        let w = store.get_workflow(Scope::All, id).await.expect("get");
        if w.status.is_terminal() {
            assert_eq!(w.status, WorkflowState::Succeeded, "{w:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let wall = t.elapsed().as_secs_f64() * 1e3;
    let nodes = store.workflow_nodes(Scope::All, id).await.expect("nodes");
    let finished: BTreeMap<&str, _> = nodes
        .iter()
        .filter_map(|n| Some((n.name.as_str(), n.finished_at?)))
        .collect();
    let gaps = nodes
        .iter()
        .filter(|n| !n.depends_on.is_empty())
        .filter_map(|n| {
            let ready = n
                .depends_on
                .iter()
                .filter_map(|d| finished.get(d.as_str()))
                .max()?;
            let started = n.started_at?;
            Some((started - *ready).num_microseconds()? as f64 / 1e3)
        })
        .collect();
    (wall, gaps)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") || !common::is_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (sqlite, _db) = voidrunner_store_sqlite::testing::fresh_store().await;
    let owner = voidrunner_store::conformance::create_user(&sqlite, "bench@example.com")
        .await
        .id;
    let store: Arc<dyn Store> = Arc::new(sqlite);
    let (sandbox, _) = common::sandbox(dir.path());
    let cfg = JobWorkerConfig {
        worker_id: "bench".into(),
        concurrency: 4,
        per_user_concurrency: None,
        lease: Duration::from_secs(10),
        poll: Duration::from_millis(200),
        retry: RetryPolicy::default(),
        runner: RunnerConfig {
            width: 2,
            sources: SourcePolicy::default(),
            step_limits: Limits {
                wall_timeout: Duration::from_secs(30),
                ..Limits::default()
            },
            job_timeout: Duration::from_secs(60),
            workspace_bytes: 16 << 20,
            allow_network: false,
            artifacts_dir: dir.path().join("artifacts"),
            max_artifact_bytes: 1 << 20,
            keep_failed_workspaces: None,
        },
    };
    let worker = JobWorker::start(store.clone(), sandbox, None, cfg);
    let scheduler = WorkflowScheduler::start(store.clone(), SchedulerConfig::default());
    let rounds = 5;
    for (label, yaml) in [
        ("chain of 10 trivial nodes", chain(10)),
        ("fan-out 1 → 8 → 1 trivial nodes", fan(8)),
    ] {
        let (mut walls, mut gaps) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let (wall, g) = run(&store, owner, &yaml).await;
            walls.push(wall);
            gaps.extend(g);
        }
        let p95 = {
            let mut g = gaps.clone();
            g.sort_by(f64::total_cmp);
            g[(g.len() * 95 / 100).min(g.len() - 1)]
        };
        println!(
            "{label:<34} wall {:>7.1} ms   hand-over p50 {:>5.1} ms  p95 {:>5.1} ms   [median of {rounds} runs, {} hand-overs]",
            median(walls),
            median(gaps.clone()),
            p95,
            gaps.len(),
        );
    }
    scheduler.stop().await;
    worker.stop().await;
}
