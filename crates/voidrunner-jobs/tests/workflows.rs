//! The durable workflow scheduler end to end (issue 10 acceptance): a real SQLite store, a
//! real job worker and workflow scheduler, the real sandbox, and jobs that clone a git
//! repository the test creates (`file://`, allowed by the test's source policy).
//!
//! Fan-out/fan-in in dependency order with overlapping builds, `any_failed` cleanup only on a
//! failure, cascading skips, outputs flowing into a dependant, a conflicting output failing
//! the workflow, cancel, and concurrent schedulers starting every node exactly once.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use voidrunner_jobs::Format;
use voidrunner_jobs::runner::RunnerConfig;
use voidrunner_jobs::scheduler::{SchedulerConfig, WorkflowScheduler, advance};
use voidrunner_jobs::server::{JobWorker, JobWorkerConfig};
use voidrunner_jobs::source::SourcePolicy;
use voidrunner_jobs::workflow::{instantiate, parse_workflow};
use voidrunner_sandbox::Limits;
use voidrunner_store::{
    Job, JobStatus, JobStream, NewWorkflow, NodeStatus, RetryPolicy, Scope, Store, Workflow,
    WorkflowId, WorkflowNode, WorkflowState,
};

struct Env {
    dir: tempfile::TempDir,
    _db: tempfile::TempDir,
    store: Arc<dyn Store>,
    owner: voidrunner_domain::UserId,
    repo: String,
    secret_box: Arc<voidrunner_mask::SecretBox>,
    worker: Option<JobWorker>,
    scheduler: Option<WorkflowScheduler>,
}

impl Env {
    async fn stop(mut self) {
        if let Some(w) = self.worker.take() {
            w.stop().await;
        }
        if let Some(s) = self.scheduler.take() {
            s.stop().await;
        }
    }
}

/// The parent job of the trigger test: two follow-up jobs through the socket (the second
/// replayed with the same operation id), one through `/job/triggers.json`, and an attempt to
/// name another workflow (refused: the payload has no such field).
const TRIGGER_PY: &str = r#"
import voidrunner_job as v
def child(name, deps=None):
    job = {"name": name, "steps": [{"name": "s", "command": "echo " + name + " sees FOO=$FOO"}]}
    return {"job_name": name, "job": job, **({"depends_on": deps} if deps else {})}
first = v.trigger_jobs([child("child-a"), child("child-b", ["child-a"])], operation_id="op-1")
again = v.trigger_jobs([child("child-a"), child("child-b", ["child-a"])], operation_id="op-1")
print("first", first["nodes"], first["duplicate"])
print("again", again["nodes"], again["duplicate"])
try:
    v.trigger_jobs([dict(child("elsewhere"), workflow_id="00000000-0000-0000-0000-000000000000")])
    print("foreign accepted")
except Exception as e:
    print("foreign refused")
v.write_triggers([child("child-c", ["child-b"])], operation_id="op-file")
"#;

/// A git repository with `VERSION` and `trigger.py` on `main`; answers its `file://` URL.
fn repo(dir: &std::path::Path) -> String {
    let r = dir.join("repo");
    std::fs::create_dir_all(&r).expect("mkdir");
    common::git(&r, &["init", "-q", "-b", "main"]);
    std::fs::write(r.join("VERSION"), "1.2.3\n").expect("write");
    std::fs::write(r.join("trigger.py"), TRIGGER_PY).expect("write");
    common::git(&r, &["add", "."]);
    common::git(&r, &["commit", "-q", "-m", "first"]);
    format!("file://{}", r.display())
}

async fn env(concurrency: usize, with_scheduler: bool) -> Option<Env> {
    if !common::is_root() {
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (sqlite, db) = voidrunner_store_sqlite::testing::fresh_store().await;
    let owner = voidrunner_store::conformance::create_user(&sqlite, "wf@example.com").await;
    let store: Arc<dyn Store> = Arc::new(sqlite);
    let (sandbox, _) = common::sandbox(dir.path());
    let cfg = JobWorkerConfig {
        worker_id: "wf-node".into(),
        concurrency,
        per_user_concurrency: None,
        lease: Duration::from_secs(5),
        poll: Duration::from_millis(200),
        retry: RetryPolicy::default(),
        runner: RunnerConfig {
            width: 2,
            sources: SourcePolicy {
                git_protocols: vec!["file".into()],
                ..SourcePolicy::default()
            },
            step_limits: Limits {
                wall_timeout: Duration::from_secs(60),
                ..Limits::default()
            },
            job_timeout: Duration::from_secs(120),
            workspace_bytes: 32 << 20,
            allow_network: false,
            artifacts_dir: dir.path().join("artifacts"),
            max_artifact_bytes: 8 << 20,
            keep_failed_workspaces: None,
        },
    };
    let secret_box = Arc::new(voidrunner_mask::SecretBox::new(
        &voidrunner_mask::SecretKey::generate(),
    ));
    let worker = JobWorker::start(store.clone(), sandbox, Some(secret_box.clone()), cfg);
    let scheduler = with_scheduler.then(|| {
        WorkflowScheduler::start(
            store.clone(),
            SchedulerConfig {
                sweep_interval: Duration::from_secs(1),
                ..SchedulerConfig::default()
            },
        )
    });
    let repo = repo(dir.path());
    Some(Env {
        dir,
        _db: db,
        store,
        owner: owner.id,
        repo,
        secret_box,
        worker: Some(worker),
        scheduler,
    })
}

/// Creates the workflow `yaml` (`{REPO}` replaced by the test repository's URL) the way the
/// API does: validated, instantiated, stored; no pass is run here.
async fn create(env: &Env, yaml: &str) -> WorkflowId {
    create_with(env, yaml, true, &[]).await
}

/// [`create`] with a trust level and secret values (sealed to the workflow like the API).
async fn create_with(env: &Env, yaml: &str, trusted: bool, secrets: &[(&str, &str)]) -> WorkflowId {
    let id = WorkflowId::new();
    let sealed = secrets
        .iter()
        .map(|(name, value)| {
            let sealed = env
                .secret_box
                .seal_with_context(value.as_bytes(), format!("{id}/{name}").as_bytes())
                .expect("seal");
            ((*name).to_owned(), sealed)
        })
        .collect();
    let yaml = yaml.replace("{REPO}", &env.repo);
    let def = parse_workflow(&yaml, Format::Yaml).expect("valid workflow");
    let specs = instantiate(&def, &BTreeMap::new(), &BTreeMap::new()).expect("instantiate");
    let nodes = specs
        .into_iter()
        .map(|s| s.into_new_node(None).expect("json"))
        .collect();
    let new = NewWorkflow {
        id,
        owner_id: env.owner,
        name: def.name.clone(),
        definition: serde_json::to_value(&def).expect("json"),
        vars: def.vars.clone(),
        trusted,
        files: BTreeMap::new(),
        origin: serde_json::json!({"kind": "test"}),
        request_id: Some("req-wf".into()),
        created_at: voidrunner_store::now(),
    };
    env.store
        .create_workflow(new, nodes, sealed)
        .await
        .expect("create workflow")
        .id
}

/// Creates and starts (one pass, as the API does after creating) a workflow.
async fn submit(env: &Env, yaml: &str) -> WorkflowId {
    let id = create(env, yaml).await;
    advance(&*env.store, id).await.expect("first pass");
    id
}

async fn wait_finished(env: &Env, id: WorkflowId, limit: Duration) -> Workflow {
    let t = Instant::now();
    loop {
        let wf = env.store.get_workflow(Scope::All, id).await.expect("get");
        if wf.status.is_terminal() {
            return wf;
        }
        assert!(t.elapsed() < limit, "workflow still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn nodes(env: &Env, id: WorkflowId) -> BTreeMap<String, WorkflowNode> {
    env.store
        .workflow_nodes(Scope::All, id)
        .await
        .expect("nodes")
        .into_iter()
        .map(|n| (n.name.clone(), n))
        .collect()
}

async fn job(env: &Env, node: &WorkflowNode) -> Job {
    let id = node
        .job_id
        .unwrap_or_else(|| panic!("node {} has a job", node.name));
    env.store.get_job(Scope::All, id).await.expect("job")
}

async fn stdout(env: &Env, job: &Job) -> String {
    env.store
        .read_job_events(job.id, 0, 10_000)
        .await
        .expect("events")
        .iter()
        .filter(|e| e.stream == JobStream::Stdout)
        .map(|e| String::from_utf8_lossy(&e.data).into_owned())
        .collect()
}

fn statuses(nodes: &BTreeMap<String, WorkflowNode>) -> Vec<(&str, NodeStatus)> {
    nodes.iter().map(|(k, n)| (k.as_str(), n.status)).collect()
}

const FAN: &str = r#"
name: release
vars: {channel: stable}
jobs:
  prepare:
    job:
      name: prepare
      source: {type: git, url: "{REPO}", ref: main}
      steps: [{name: check, command: "test \"$(cat /job/src/VERSION)\" = 1.2.3"}]
  build:
    needs: [prepare]
    for_each: [linux, windows, mac]
    item_var: TARGET
    job:
      name: build
      source: {type: git, url: "{REPO}", ref: main}
      steps:
        - name: compile
          command: "sleep 1.5 && test \"$TARGET\" != FAILME && /usr/bin/python3 -c 'import voidrunner_job as v; v.set_output(\"version\", open(\"/job/src/VERSION\").read().strip()); v.set_output(\"built_'$TARGET'\", \"yes\")'"
  publish:
    depends_on: [build]
    job:
      name: publish
      steps:
        - name: read
          command: "/usr/bin/python3 -c 'import voidrunner_job as v; print(\"version=\" + str(v.get_output(\"build.version\")))'; cat /job/workflow.json || true"
  cleanup:
    depends_on: [build]
    condition: any_failed
    job: {name: cleanup, steps: [{name: rm, command: "echo cleaned"}]}
  notify:
    depends_on: [publish]
    job: {name: notify, steps: [{name: say, command: "echo notified"}]}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_fan_in_runs_in_order_with_parallel_builds_and_outputs_flow() {
    let Some(env) = env(3, true).await else {
        return;
    };
    let id = submit(&env, FAN).await;
    let wf = wait_finished(&env, id, Duration::from_secs(120)).await;
    let nodes = nodes(&env, id).await;
    assert_eq!(
        wf.status,
        WorkflowState::Succeeded,
        "{:?}",
        statuses(&nodes)
    );
    assert_eq!(
        statuses(&nodes),
        [
            ("build[0]", NodeStatus::Succeeded),
            ("build[1]", NodeStatus::Succeeded),
            ("build[2]", NodeStatus::Succeeded),
            ("cleanup", NodeStatus::Skipped),
            ("notify", NodeStatus::Succeeded),
            ("prepare", NodeStatus::Succeeded),
            ("publish", NodeStatus::Succeeded),
        ]
    );
    assert_eq!(
        nodes["cleanup"].reason.as_deref(),
        Some("no dependency failed")
    );
    let prepare = job(&env, &nodes["prepare"]).await;
    let mut builds = Vec::new();
    for i in 0..3 {
        builds.push(job(&env, &nodes[&format!("build[{i}]")]).await);
    }
    let publish = job(&env, &nodes["publish"]).await;
    let notify = job(&env, &nodes["notify"]).await;
    let started = |j: &Job| j.started_at.expect("started");
    let finished = |j: &Job| j.finished_at.expect("finished");
    // Dependency order.
    for b in &builds {
        assert!(
            finished(&prepare) <= b.created_at,
            "build created after prepare"
        );
        assert!(
            finished(b) <= publish.created_at,
            "publish created after every build"
        );
    }
    assert!(finished(&publish) <= notify.created_at);
    // The builds overlap: each started before any finished.
    let last_start = builds.iter().map(started).max().expect("builds");
    let first_finish = builds.iter().map(finished).min().expect("builds");
    assert!(
        last_start < first_finish,
        "builds overlap: last start {last_start}, first finish {first_finish}"
    );
    // Hand-over latency: last build finished → publish's job created.
    let last_build = builds.iter().map(finished).max().expect("builds");
    let handover = (publish.created_at - last_build).num_milliseconds();
    let prepare_handover = (builds.iter().map(|b| b.created_at).min().expect("b")
        - finished(&prepare))
    .num_milliseconds();
    eprintln!(
        "hand-over job finished → next created: {prepare_handover} ms (prepare→build), {handover} ms (build→publish); → claimed {} ms",
        (started(&publish) - publish.created_at).num_milliseconds()
    );
    // Outputs: merged under the group, frozen into publish's context, read in the job.
    assert_eq!(
        wf.outputs.get("build.version").map(String::as_str),
        Some("1.2.3")
    );
    assert_eq!(
        wf.outputs.get("build.built_mac").map(String::as_str),
        Some("yes")
    );
    let link = publish
        .workflow
        .as_ref()
        .expect("publish is a workflow job");
    assert_eq!(link.workflow_id, id);
    assert_eq!(link.node, "publish");
    assert_eq!(link.context["outputs"]["build.version"], "1.2.3");
    assert_eq!(link.context["vars"]["channel"], "stable");
    assert_eq!(link.context["trusted"], true);
    let out = stdout(&env, &publish).await;
    assert!(
        out.contains("version=1.2.3"),
        "publish read the output: {out}"
    );
    assert!(out.contains("\"build.version\""), "workflow.json: {out}");
    // Exactly one job per node.
    let jobs = env
        .store
        .list_jobs(Scope::All, None, None, 100)
        .await
        .expect("jobs");
    assert_eq!(jobs.items.len(), 6, "one job per started node");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_build_runs_cleanup_and_skips_cascade() {
    let Some(env) = env(3, true).await else {
        return;
    };
    let yaml = FAN.replace("[linux, windows, mac]", "[linux, FAILME]");
    let id = submit(&env, &yaml).await;
    let wf = wait_finished(&env, id, Duration::from_secs(120)).await;
    let nodes = nodes(&env, id).await;
    assert_eq!(wf.status, WorkflowState::Failed, "{:?}", statuses(&nodes));
    assert_eq!(
        statuses(&nodes),
        [
            ("build[0]", NodeStatus::Succeeded),
            ("build[1]", NodeStatus::Failed),
            ("cleanup", NodeStatus::Succeeded),
            ("notify", NodeStatus::Skipped),
            ("prepare", NodeStatus::Succeeded),
            ("publish", NodeStatus::Skipped),
        ]
    );
    assert_eq!(
        nodes["publish"].reason.as_deref(),
        Some("dependency build[1] did not succeed")
    );
    assert_eq!(
        nodes["notify"].reason.as_deref(),
        Some("dependency publish did not succeed"),
        "the skip cascades"
    );
    let cleanup = job(&env, &nodes["cleanup"]).await;
    assert_eq!(stdout(&env, &cleanup).await, "cleaned\n");
    assert!(nodes["publish"].job_id.is_none() && nodes["notify"].job_id.is_none());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_output_fails_the_workflow() {
    let Some(env) = env(2, true).await else {
        return;
    };
    let id = submit(
        &env,
        r#"
name: conflict
jobs:
  build:
    for_each: [a, b]
    job:
      name: build
      steps: [{name: out, command: "/usr/bin/python3 -c 'import os, voidrunner_job as v; v.set_output(\"version\", os.environ[\"ITEM\"])'"}]
  publish:
    depends_on: [build]
    job: {name: publish, steps: [{name: p, command: "echo published"}]}
"#,
    )
    .await;
    let wf = wait_finished(&env, id, Duration::from_secs(60)).await;
    let nodes = nodes(&env, id).await;
    assert_eq!(wf.status, WorkflowState::Failed, "{:?}", statuses(&nodes));
    assert_eq!(
        wf.error.as_deref(),
        Some("output build.version written twice with different values")
    );
    assert_eq!(nodes["build[0]"].status, NodeStatus::Succeeded);
    assert_eq!(nodes["build[1]"].status, NodeStatus::Succeeded);
    assert_eq!(nodes["publish"].status, NodeStatus::Skipped);
    assert!(nodes["publish"].job_id.is_none(), "publish never started");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_cancels_running_and_pending_nodes() {
    let Some(env) = env(2, true).await else {
        return;
    };
    // Created without a pass: the scheduler's sweep starts it.
    let id = create(
        &env,
        r#"
name: cancel
jobs:
  slow: {job: {name: slow, steps: [{name: s, command: "echo started; sleep 60"}]}}
  sibling:
    job: {name: sibling, steps: [{name: s, command: "sleep 60"}]}
  next:
    depends_on: [slow]
    job: {name: next, steps: [{name: n, command: "echo next"}]}
"#,
    )
    .await;
    // Wait until `slow` runs.
    let t = Instant::now();
    loop {
        let n = nodes(&env, id).await;
        if n["slow"].status == NodeStatus::Running && n["sibling"].job_id.is_some() {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "slow never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let asked = Instant::now();
    env.store
        .request_workflow_cancel(Scope::All, id, None, voidrunner_store::now())
        .await
        .expect("cancel");
    // What the API does after recording the request (the sweep would, within a second).
    advance(&*env.store, id).await.expect("pass");
    let wf = wait_finished(&env, id, Duration::from_secs(30)).await;
    eprintln!(
        "cancel → workflow finished: {} ms",
        asked.elapsed().as_millis()
    );
    let nodes = nodes(&env, id).await;
    assert_eq!(
        wf.status,
        WorkflowState::Cancelled,
        "{:?}",
        statuses(&nodes)
    );
    assert_eq!(nodes["slow"].status, NodeStatus::Cancelled);
    assert_eq!(nodes["sibling"].status, NodeStatus::Cancelled);
    assert_eq!(nodes["next"].status, NodeStatus::Skipped);
    assert!(nodes["next"].job_id.is_none());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_triggers_follow_up_jobs_in_its_own_workflow_once() {
    let Some(env) = env(2, true).await else {
        return;
    };
    let id = submit(
        &env,
        r#"
name: triggers
jobs:
  parent:
    job:
      name: parent
      source: {type: git, url: "{REPO}", ref: main}
      env: {FOO: bar}
      steps: [{name: t, command: "/usr/bin/python3 /job/src/trigger.py"}]
"#,
    )
    .await;
    let wf = wait_finished(&env, id, Duration::from_secs(60)).await;
    let nodes = nodes(&env, id).await;
    assert_eq!(
        wf.status,
        WorkflowState::Succeeded,
        "{:?}",
        statuses(&nodes)
    );
    let parent = job(&env, &nodes["parent"]).await;
    let out = stdout(&env, &parent).await;
    assert!(out.contains("first ['child-a', 'child-b'] False"), "{out}");
    assert!(
        out.contains("again ['child-a', 'child-b'] True"),
        "a replay adds nothing: {out}"
    );
    assert!(out.contains("foreign refused"), "{out}");
    assert_eq!(
        nodes.keys().map(String::as_str).collect::<Vec<_>>(),
        ["child-a", "child-b", "child-c", "parent"]
    );
    let mut last_finished = None;
    for name in ["child-a", "child-b", "child-c"] {
        let n = &nodes[name];
        assert_eq!(n.status, NodeStatus::Succeeded, "{name}");
        assert_eq!(n.parent_job_id, Some(parent.id), "{name}");
        let j = job(&env, n).await;
        assert_eq!(
            stdout(&env, &j).await,
            format!("{name} sees FOO=bar\n"),
            "inherits the parent's env"
        );
        if let Some(prev) = last_finished {
            assert!(prev <= j.created_at, "{name} after its dependency");
        }
        last_finished = j.finished_at;
    }
    let jobs = env
        .store
        .list_jobs(Scope::All, None, None, 100)
        .await
        .expect("jobs");
    assert_eq!(jobs.items.len(), 4, "one job per node, nothing twice");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_secrets_reach_trusted_jobs_and_a_missing_one_is_absent() {
    let Some(env) = env(2, true).await else {
        return;
    };
    let yaml = r#"
name: secrets
jobs:
  use:
    job:
      name: use
      secrets: [TOKEN, MISSING]
      steps:
        - name: s
          command: "if [ \"$TOKEN\" = s3cret-value-1 ]; then echo token-ok; else echo no-token; fi; if [ -z \"${MISSING+x}\" ]; then echo missing-absent; fi"
"#;
    for (trusted, expected) in [
        (true, "token-ok\nmissing-absent\n"),
        (false, "no-token\nmissing-absent\n"),
    ] {
        let id = create_with(&env, yaml, trusted, &[("TOKEN", "s3cret-value-1")]).await;
        advance(&*env.store, id).await.expect("pass");
        let wf = wait_finished(&env, id, Duration::from_secs(60)).await;
        let nodes = nodes(&env, id).await;
        assert_eq!(wf.status, WorkflowState::Succeeded, "trusted={trusted}");
        let j = job(&env, &nodes["use"]).await;
        assert_eq!(stdout(&env, &j).await, expected, "trusted={trusted}");
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_runs_only_the_failed_and_skipped_nodes_again() {
    let Some(env) = env(2, true).await else {
        return;
    };
    let id = submit(
        &env,
        r#"
name: rerun
jobs:
  prepare: {job: {name: prepare, steps: [{name: s, command: "echo prepared"}]}}
  build:
    needs: [prepare]
    job:
      name: build
      source: {type: git, url: "{REPO}", ref: main}
      steps: [{name: s, command: "test -f /job/src/FIXED"}]
  publish:
    needs: [build]
    job: {name: publish, steps: [{name: s, command: "echo published"}]}
"#,
    )
    .await;
    let wf = wait_finished(&env, id, Duration::from_secs(60)).await;
    let first = nodes(&env, id).await;
    assert_eq!(wf.status, WorkflowState::Failed, "{:?}", statuses(&first));
    assert_eq!(first["build"].status, NodeStatus::Failed);
    assert_eq!(first["publish"].status, NodeStatus::Skipped);
    // Fix the repository, then re-run.
    let repo = env.dir.path().join("repo");
    std::fs::write(repo.join("FIXED"), "").expect("write");
    common::git(&repo, &["add", "."]);
    common::git(&repo, &["commit", "-q", "-m", "fix"]);
    let rerun = env
        .store
        .rerun_workflow(Scope::All, id, voidrunner_store::now())
        .await
        .expect("rerun");
    assert_eq!(rerun.run, 2);
    advance(&*env.store, id).await.expect("pass");
    let wf = wait_finished(&env, id, Duration::from_secs(60)).await;
    let second = nodes(&env, id).await;
    assert_eq!(
        wf.status,
        WorkflowState::Succeeded,
        "{:?}",
        statuses(&second)
    );
    assert_eq!(
        second["prepare"].job_id, first["prepare"].job_id,
        "a succeeded node keeps its job"
    );
    assert!(second["prepare"].previous_job_ids.is_empty());
    let old_build = first["build"].job_id.expect("build ran");
    assert_eq!(second["build"].previous_job_ids, [old_build]);
    assert_ne!(second["build"].job_id, Some(old_build));
    assert_eq!(second["publish"].status, NodeStatus::Succeeded);
    let jobs = env
        .store
        .list_jobs(Scope::All, None, None, 100)
        .await
        .expect("jobs");
    assert_eq!(
        jobs.items.len(),
        4,
        "prepare once, build twice, publish once"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_schedulers_start_every_node_exactly_once() {
    // No background scheduler: the test's own passes race each other, many at a time, while
    // the worker runs the jobs.
    let Some(env) = env(3, false).await else {
        return;
    };
    let mut yaml = String::from("name: race\njobs:\n");
    yaml.push_str("  wide:\n    for_each: [");
    yaml.push_str(
        &(0..12)
            .map(|i| format!("\"w{i}\""))
            .collect::<Vec<_>>()
            .join(", "),
    );
    yaml.push_str("]\n    job: {name: wide, steps: [{name: s, command: \"echo $ITEM\"}]}\n");
    yaml.push_str("  join:\n    depends_on: [wide]\n    job: {name: join, steps: [{name: s, command: \"echo joined\"}]}\n");
    yaml.push_str("  after:\n    depends_on: [join]\n    condition: always\n    job: {name: after, steps: [{name: s, command: \"echo after\"}]}\n");
    let id = create(&env, &yaml).await;
    let store = env.store.clone();
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    let passes = futures::future::join_all((0..4).map(|_| advance(&*store, id)));
                    let states = passes.await;
                    let mut done = false;
                    for s in states {
                        if s.expect("pass").is_terminal() {
                            done = true;
                        }
                    }
                    if done {
                        return;
                    }
                    // Pacing only (the passes are what race).
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    let t = Instant::now();
    for r in racers {
        tokio::time::timeout(Duration::from_secs(120).saturating_sub(t.elapsed()), r)
            .await
            .expect("finishes in time")
            .expect("racer");
    }
    let wf = env.store.get_workflow(Scope::All, id).await.expect("get");
    let nodes = nodes(&env, id).await;
    assert_eq!(
        wf.status,
        WorkflowState::Succeeded,
        "{:?}",
        statuses(&nodes)
    );
    let job_ids: HashSet<_> = nodes.values().filter_map(|n| n.job_id).collect();
    assert_eq!(job_ids.len(), 14, "every node has its own job");
    let jobs = env
        .store
        .list_jobs(Scope::All, None, None, 100)
        .await
        .expect("jobs");
    assert_eq!(jobs.items.len(), 14, "no node was started twice");
    for j in &jobs.items {
        assert_eq!(j.status, JobStatus::Succeeded);
        assert_eq!(j.attempt, 1, "job {} ran once", j.id);
    }
    let _ = &env.dir;
    env.stop().await;
}
